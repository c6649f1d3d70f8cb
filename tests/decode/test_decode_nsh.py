"""NSH (RFC 8300) as Suricata's decode-nsh.c: MD type 1/2, next protocol, and its events."""

from __future__ import annotations

import struct

import pytest
from scapy.all import IP, UDP, Ether, raw  # type: ignore[import-untyped]
from scapy.layers.inet6 import IPv6  # type: ignore[import-untyped]

from netsentry.decode import Decoder

ETH = raw(Ether(dst="52:54:00:00:00:01", src="52:54:00:00:00:02", type=0x894F))
INNER4 = raw(IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=52377, dport=52464) / b"data\n\n")


def nsh(md_type: int = 1, next_proto: int = 1, words: int = 6, version: int = 0, context: bytes | None = None) -> bytes:
    base = struct.pack("!HBB", (version << 14) | words, md_type, next_proto) + struct.pack("!I", (0x102 << 8) | 0xFF)
    ctx = context if context is not None else bytes(words * 4 - 8)
    return base + ctx


def test_md1_ipv4_reaches_the_inner_udp_packet() -> None:
    d = Decoder()
    pkt = d.decode(ETH + nsh() + INNER4, 1)
    assert (pkt.src_ip, pkt.dst_ip, pkt.proto, pkt.sp, pkt.dp) == ("10.0.0.1", "10.0.0.2", 17, 52377, 52464)
    assert pkt.payload == b"data\n\n" and pkt.events is None
    assert d.stats()["decoder.nsh"] == 1


def test_md2_variable_length_ipv6_and_ethernet() -> None:
    inner6 = raw(IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=1, dport=2) / b"x")
    pkt = Decoder().decode(ETH + nsh(md_type=2, next_proto=2, words=4) + inner6, 1)
    assert (pkt.src_ip, pkt.dp) == ("2001:db8::1", 2)
    inner_eth = raw(Ether() / IP(src="10.1.1.1", dst="10.1.1.2") / UDP(sport=3, dport=4))
    pkt = Decoder().decode(ETH + nsh(md_type=2, next_proto=3, words=2) + inner_eth, 1)
    assert (pkt.src_ip, pkt.dp) == ("10.1.1.1", 4)


@pytest.mark.parametrize("header, event, invalid", [
    (nsh()[:7], "nsh.header_too_small", True),
    (nsh(version=1), "nsh.unsupported_version", False),
    (nsh(words=40), "nsh.bad_header_length", True),              # longer than the packet
    (nsh(md_type=1, words=4), "nsh.bad_header_length", True),    # MD type 1 is always 24 bytes
    (nsh(md_type=0), "nsh.reserved_type", False),
    (nsh(md_type=0xF), "nsh.reserved_type", False),
    (nsh(md_type=3), "nsh.unsupported_type", False),
    (nsh(next_proto=4), "nsh.unknown_payload", False),           # NSH in NSH: Suricata stops too
])
def test_bad_headers_are_events_never_crashes(header: bytes, event: str, invalid: bool) -> None:
    d = Decoder()
    pkt = d.decode(ETH + header + (INNER4 if len(header) >= 8 else b""), 1)
    assert pkt.events == [event]
    assert pkt.ip_version == 0
    assert d.stats()["decoder.invalid"] == (1 if invalid else 0)
    assert d.stats()[f"decoder.event.{event}"] == 1
