"""Packet header sticky buffers (ipv4.hdr ... icmpv6.hdr): content/byte_* over raw header bytes."""

from __future__ import annotations

import pytest
from detect_helpers import Detect
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6, IPv6ExtHdrHopByHop
from scapy.layers.l2 import Ether

from netsentry.rules import load_rules


def fired(detect: Detect, rules: str, frames: list[bytes]) -> list[tuple[int, int]]:
    return [(n, sid) for n, sid, _a in detect.run(rules, frames).alerts]


def test_tcp_hdr_ports_window_and_relative(detect: Detect) -> None:
    syn = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=2904, dport=80, flags="S", window=0x2000))
    rules = (
        'alert tcp-pkt any any -> any 80 (tcp.hdr; content:"|00 50|"; offset:2; depth:2; sid:1;)\n'
        'alert tcp-pkt any any -> any 80 (tcp.hdr; content:"|00 51|"; offset:2; depth:2; sid:2;)\n'
        # flags byte 13 (SYN) then the window, relative to the destination port
        'alert tcp-pkt any any -> any 80 (tcp.hdr; content:"|00 50|"; offset:2; depth:2; '
        'tcp.hdr; content:"|02 20 00|"; distance:9; within:3; sid:3;)\n'
        # a header buffer does not see the payload, nor the payload the header
        'alert tcp-pkt any any -> any 80 (content:"|00 50|"; sid:4;)\n'
    )
    assert fired(detect, rules, [syn]) == [(1, 1), (1, 3)]


def test_tcp_hdr_includes_options(detect: Detect) -> None:
    syn = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2")
                / TCP(sport=1, dport=80, flags="S", options=[("MSS", 1460)]))
    rules = 'alert tcp any any -> any any (tcp.hdr; content:"|02 04 05 b4|"; offset:20; depth:4; sid:1;)\n'
    assert fired(detect, rules, [syn]) == [(1, 1)]


def test_ipv4_hdr_with_byte_math_and_options(detect: Detect) -> None:
    pkt = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2", ttl=9, options=b"\x01\x01\x01\x01") / UDP() / b"x")
    rules = (
        # IHL 6 (options) in the first byte; ttl at 8; version/IHL byte 0x46 (70) + ttl 9 = 79
        'alert udp any any -> any any (ipv4.hdr; content:"|46|"; depth:1; bsize:24; sid:1;)\n'
        'alert udp any any -> any any (ipv4.hdr; byte_extract:1,0,vihl; byte_math:bytes 1, offset 8, '
        'oper +, rvalue vihl, result sum; byte_test:1,>,sum,8; sid:2;)\n'     # 9 > 79: no
        'alert udp any any -> any any (ipv4.hdr; byte_extract:1,0,vihl; byte_math:bytes 1, offset 8, '
        'oper +, rvalue vihl, result sum; byte_test:1,<,sum,8; sid:3;)\n'     # 9 < 79
        'alert udp any any -> any any (ipv6.hdr; content:"|60|"; sid:4;)\n'
    )
    assert fired(detect, rules, [pkt]) == [(1, 1), (1, 3)]


def test_ipv6_hdr_covers_extension_headers_and_icmpv6_hdr(detect: Detect) -> None:
    pkt = bytes(Ether() / IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrHopByHop()
                / ICMPv6EchoRequest(id=0x1234, seq=7))
    rules = (
        'alert ip any any -> any any (ipv6.hdr; content:"|3a|"; offset:40; depth:1; bsize:48; sid:1;)\n'
        'alert icmpv6 any any -> any any (icmpv6.hdr; content:"|80 00|"; depth:2; '
        'content:"|12 34 00 07|"; distance:2; within:4; bsize:8; sid:2;)\n'
        'alert ip any any -> any any (ipv4.hdr; content:"|45|"; sid:3;)\n'
    )
    assert fired(detect, rules, [pkt]) == [(1, 1), (1, 2)]


def test_udp_and_icmpv4_hdr(detect: Detect) -> None:
    u = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=53, dport=5353) / b"payload")
    ts = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=13) / (b"\x00" * 12))
    echo = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=8) / (b"\x00" * 12))
    rules = (
        'alert udp any any -> any any (udp.hdr; content:"|00 35 14 e9|"; depth:4; bsize:8; sid:1;)\n'
        # a timestamp request's header carries its 12 timestamp bytes (Suricata's icmpv4 hlen)
        'alert icmp any any -> any any (icmpv4.hdr; bsize:20; sid:2;)\n'
        'alert icmp any any -> any any (icmpv4.hdr; bsize:8; sid:3;)\n'
    )
    assert fired(detect, rules, [u, ts, echo]) == [(1, 1), (2, 2), (3, 3)]


def test_header_buffer_rules_are_packet_only(detect: Detect, tmp_path) -> None:
    path = tmp_path / "r.rules"
    path.write_text('alert tcp any any -> any any (tcp.hdr; content:"|00 50|"; sid:1;)\n')
    sig = load_rules([path], {}).signatures[0]
    assert sig.pkt_only and sig.fast_pattern is None


@pytest.mark.parametrize("rule, reason", [
    ('alert udp any any -> any any (tcp.hdr; content:"a"; sid:1;)', "has no tcp header"),
    ('alert tcp any any -> any any (udp.hdr; content:"a"; sid:1;)', "has no udp header"),
    ('alert tcp any any -> any any (icmpv6.hdr; content:"a"; sid:1;)', "has no icmpv6 header"),
    ('alert ipv6 any any -> any any (ipv4.hdr; content:"a"; sid:1;)', "has no ipv4 header"),
])
def test_header_buffer_on_wrong_protocol_is_an_error(tmp_path, rule: str, reason: str) -> None:
    path = tmp_path / "r.rules"
    path.write_text(rule + "\n")
    rs = load_rules([path], {})
    assert not rs.signatures and reason in str(rs.errors[0])


def test_variables_carry_across_header_buffers(detect: Detect) -> None:
    """Suricata keeps byte_extract values for the whole rule: ipv4.hdr sets, tcp.hdr reads."""
    syn = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2", ttl=80) / TCP(sport=80, dport=81, flags="S"))
    rules = (
        # destination port 81: its low byte (tcp.hdr offset 3) is the ttl (ipv4.hdr offset 8) + 1
        'alert tcp any any -> any any (ipv4.hdr; byte_extract:1,8,ttl; '
        'byte_math:bytes 1, offset 8, oper +, rvalue 1, result want; '
        'tcp.hdr; byte_test:1,=,want,3; sid:1;)\n'
        'alert tcp any any -> any any (ipv4.hdr; byte_extract:1,8,ttl; tcp.hdr; byte_test:1,=,ttl,3; sid:2;)\n'
    )
    assert fired(detect, rules, [syn]) == [(1, 1)]
