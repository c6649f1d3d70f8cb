"""Reject responses: who gets them, their sequence numbers, and valid checksums.

Input packets are crafted with scapy and decoded by netsentry's own decoder;
the responses are decoded again with checksum validation on, so a wrong
checksum or length shows up as a decoder event.
"""

from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6

from netsentry.decode import Decoder
from netsentry.respond.reject import REJECT_DIRECTIONS, build_rst, build_unreachable

RAW = 101
DEC = Decoder(checksums=True)
C4, S4 = "10.9.0.1", "10.9.0.2"
C6, S6 = "fd00:9::1", "fd00:9::2"


def decode(frame: bytes):
    pkt = DEC.decode(bytes(frame), RAW)
    assert not pkt.checksum_bad and not pkt.events, pkt.events
    return pkt


def addr(pkt, which: str) -> str:
    import ipaddress
    return str(ipaddress.ip_address(getattr(pkt, which)))


def test_rst_to_source_answers_a_syn() -> None:
    syn = decode(IP(src=C4, dst=S4) / TCP(sport=40000, dport=80, flags="S", seq=1000))
    rst = decode(build_rst(syn, "src"))
    assert (addr(rst, "src"), addr(rst, "dst"), rst.sp, rst.dp) == (S4, C4, 80, 40000)
    assert rst.tcp_flags == 0x14                       # RST+ACK
    assert rst.seq == 0 and rst.ack == 1001            # the SYN occupies one sequence number


def test_rst_to_source_mid_stream_uses_its_ack() -> None:
    data = decode(IP(src=C4, dst=S4) / TCP(sport=40000, dport=80, flags="PA", seq=5000, ack=9000) / b"evil!")
    rst = decode(build_rst(data, "src"))
    assert rst.seq == 9000 and rst.ack == 5005
    assert addr(rst, "dst") == C4


def test_rst_to_destination_continues_the_stream() -> None:
    data = decode(IP(src=C4, dst=S4) / TCP(sport=40000, dport=80, flags="PA", seq=5000, ack=9000) / b"evil!")
    rst = decode(build_rst(data, "dst"))
    assert (addr(rst, "src"), addr(rst, "dst"), rst.sp, rst.dp) == (C4, S4, 40000, 80)
    assert rst.seq == 5000 and rst.ack == 9000


def test_rst_ipv6() -> None:
    syn = decode(IPv6(src=C6, dst=S6) / TCP(sport=40000, dport=443, flags="S", seq=7))
    rst = decode(build_rst(syn, "src"))
    assert rst.ip_version == 6 and addr(rst, "dst") == C6 and rst.ack == 8


def test_icmp_port_unreachable_quotes_the_packet() -> None:
    frame = bytes(IP(src=C4, dst=S4) / UDP(sport=5555, dport=53) / b"query-bytes")
    udp = decode(frame)
    icmp = decode(build_unreachable(udp, "src"))
    assert (icmp.proto, icmp.icmp_type, icmp.icmp_code) == (1, 3, 3)
    assert addr(icmp, "src") == S4 and addr(icmp, "dst") == C4
    quoted = icmp.data[icmp.l4_off + 8:]
    assert quoted == frame[:28]                         # IP header + 8 bytes (the UDP header)


def test_icmpv6_port_unreachable() -> None:
    frame = bytes(IPv6(src=C6, dst=S6) / UDP(sport=5555, dport=53) / b"q")
    icmp = decode(build_unreachable(decode(frame), "src"))
    assert (icmp.proto, icmp.icmp_type, icmp.icmp_code) == (58, 1, 4)
    assert addr(icmp, "dst") == C6
    assert IPv6(icmp.data).haslayer(ICMPv6DestUnreach)


def test_no_icmp_error_about_an_icmp_error() -> None:
    err = decode(IP(src=C4, dst=S4) / ICMP(type=3, code=1) / IP(src=S4, dst=C4) / UDP(sport=1, dport=2))
    assert build_unreachable(err, "src") is None
    echo = decode(IP(src=C4, dst=S4) / ICMP(type=8))
    assert build_unreachable(echo, "src") is not None


@pytest.mark.parametrize("action,expected", [("reject", ("src",)), ("rejectsrc", ("src",)),
                                             ("rejectdst", ("dst",)), ("rejectboth", ("src", "dst"))])
def test_directions_as_suricata(action: str, expected: tuple[str, ...]) -> None:
    assert REJECT_DIRECTIONS[action] == expected
