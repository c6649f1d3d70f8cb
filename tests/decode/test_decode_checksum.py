"""Checksum validation (-k all): bad IPv4/TCP/UDP/ICMP checksums are flagged only when enabled."""

from __future__ import annotations

import pytest
from decode_frames import DST4, DST6, SRC4, SRC6, decode, eth
from scapy.all import ICMP, IP, TCP, UDP, ICMPv6EchoRequest, IPv6  # type: ignore[import-untyped]

CASES = [
    ("ipv4", eth(IP(src=SRC4, dst=DST4, chksum=0x1234) / UDP(sport=1, dport=2)), "ipv4.csum_invalid"),
    ("tcp", eth(IP(src=SRC4, dst=DST4) / TCP(sport=1, dport=2, chksum=0x1234) / b"abc"), "tcp.csum_invalid"),
    ("udp", eth(IP(src=SRC4, dst=DST4) / UDP(sport=1, dport=2, chksum=0x1234) / b"abc"), "udp.csum_invalid"),
    ("icmp", eth(IP(src=SRC4, dst=DST4) / ICMP(chksum=0x1234)), "icmpv4.csum_invalid"),
    ("tcp6", eth(IPv6(src=SRC6, dst=DST6) / TCP(sport=1, dport=2, chksum=0x1234)), "tcp.csum_invalid"),
    ("icmp6", eth(IPv6(src=SRC6, dst=DST6) / ICMPv6EchoRequest(cksum=0x1234)), "icmpv6.csum_invalid"),
]


@pytest.mark.parametrize("name,frame,event", CASES, ids=[c[0] for c in CASES])
def test_bad_checksum_flagged_only_with_validation(name: str, frame: bytes, event: str) -> None:
    checked = decode(frame, checksums=True)
    assert checked.checksum_bad is True and event in checked.events
    unchecked = decode(frame)
    assert unchecked.checksum_bad is False and not unchecked.events


@pytest.mark.parametrize("frame", [
    eth(IP(src=SRC4, dst=DST4) / TCP(sport=1, dport=2) / b"odd-length!"),
    eth(IP(src=SRC4, dst=DST4) / UDP(sport=1, dport=2) / b"x"),
    eth(IP(src=SRC4, dst=DST4) / ICMP() / b"ping"),
    eth(IPv6(src=SRC6, dst=DST6) / UDP(sport=1, dport=2) / b"abc"),
    eth(IPv6(src=SRC6, dst=DST6) / ICMPv6EchoRequest(data=b"123")),
])
def test_good_checksums_pass(frame: bytes) -> None:
    pkt = decode(frame, checksums=True)
    assert pkt.checksum_bad is False and pkt.events is None


def test_udp_zero_checksum_over_ipv4_means_none() -> None:
    frame = eth(IP(src=SRC4, dst=DST4) / UDP(sport=1, dport=2, chksum=0) / b"abc")
    assert decode(frame, checksums=True).checksum_bad is False
