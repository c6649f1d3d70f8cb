"""TCP, UDP, ICMPv4/v6 and GRE: fields match scapy's dissection; malformed headers raise Suricata's events."""

from __future__ import annotations

import struct

import pytest
from decode_frames import DST4, DST6, SRC4, SRC6, decode, eth, tcp_syn
from scapy.all import (  # type: ignore[import-untyped]
    GRE, ICMP, IP, TCP, UDP, Ether, ICMPv6DestUnreach, ICMPv6EchoReply, ICMPv6MLQuery, IPv6, raw,
)

from netsentry.decode import Decoder


def test_tcp_fields_and_options_match_scapy() -> None:
    frame = eth(IP(src=SRC4, dst=DST4) / tcp_syn())
    pkt = decode(frame)
    ref = Ether(frame)[TCP]
    assert (pkt.sp, pkt.dp, pkt.seq, pkt.ack, pkt.win) == (ref.sport, ref.dport, ref.seq, ref.ack, ref.window)
    assert pkt.tcp_flags == int(ref.flags) == 0x02
    assert pkt.tcp_hlen == ref.dataofs * 4
    opts = dict(ref.options)
    assert pkt.tcp_mss == opts["MSS"] == 1460
    assert pkt.tcp_wscale == opts["WScale"] == 7
    assert pkt.tcp_sackok is True
    assert (pkt.tcp_tsval, pkt.tcp_tsecr) == opts["Timestamp"]
    assert pkt.payload_len == 0 and pkt.events is None


def test_tcp_without_options_keeps_defaults() -> None:
    pkt = decode(eth(IP(src=SRC4, dst=DST4) / TCP(sport=1, dport=2, flags="PA") / b"hello"))
    assert (pkt.tcp_mss, pkt.tcp_wscale, pkt.tcp_sackok, pkt.tcp_tsval) == (-1, -1, False, -1)
    assert pkt.payload == b"hello" and pkt.tcp_hlen == 20


@pytest.mark.parametrize("options,event", [
    (b"\x02\x03\x05\x00", "tcp.opt_invalid_len"),           # MSS with length 3
    (b"\x02\x04\x05\xb4\x02\x04\x05\xb4", "tcp.opt_duplicate"),
    (b"\x08\x01\x00\x00", "tcp.opt_invalid_len"),           # length below 2
    (b"\x01\x01\x01\x05", "tcp.opt_invalid_len"),           # option running past the header
])
def test_tcp_option_events(options: bytes, event: str) -> None:
    pkt = decode(eth(IP(src=SRC4, dst=DST4) / TCP(sport=1, dport=2, options=[]) / b""))
    base = pkt.data
    hdr = base[34:54]
    hdr = hdr[:12] + bytes([((20 + len(options)) // 4) << 4]) + hdr[13:]
    body = base[:14] + IP(src=SRC4, dst=DST4, proto=6, len=20 + 20 + len(options)).build()[:20] \
        + hdr + options
    pkt = decode(body)
    assert event in pkt.events
    assert pkt.sp == 1      # option trouble leaves the packet usable


def test_tcp_header_events() -> None:
    good = eth(IP(src=SRC4, dst=DST4) / TCP(sport=1, dport=2) / b"abc")
    assert decode(eth(IP(src=SRC4, dst=DST4, proto=6) / (b"\x00" * 19))).events == ["tcp.pkt_too_small"]
    assert decode(good[:46] + b"\x40" + good[47:]).events == ["tcp.hlen_too_small"]
    assert decode(good[:46] + b"\xf0" + good[47:]).events == ["tcp.pkt_too_small"]


def test_udp_fields_and_events() -> None:
    frame = eth(IP(src=SRC4, dst=DST4) / UDP(sport=5353, dport=53) / b"query")
    pkt = decode(frame)
    assert (pkt.sp, pkt.dp, pkt.payload) == (5353, 53, b"query")
    assert decode(eth(IP(src=SRC4, dst=DST4, proto=17) / (b"\x00" * 7))).events == ["udp.hlen_too_small"]
    longer = frame[:38] + struct.pack("!H", 100) + frame[40:]
    assert decode(longer).events == ["udp.pkt_too_small"]
    shorter = frame[:38] + struct.pack("!H", 9) + frame[40:]      # 4 trailing bytes: fine (Suricata 5379)
    trailed = decode(shorter)
    assert trailed.events is None and (trailed.sp, trailed.dp, trailed.payload) == (5353, 53, b"q")
    bogus = frame[:38] + struct.pack("!H", 7) + frame[40:]        # shorter than the header itself
    assert decode(bogus).events == ["udp.len_invalid"]


def test_icmpv4_echo_and_errors() -> None:
    echo = decode(eth(IP(src=SRC4, dst=DST4) / ICMP(type=0, id=77, seq=3) / b"abcd"))
    assert (echo.icmp_type, echo.icmp_code, echo.icmp_id, echo.icmp_seq) == (0, 0, 77, 3)
    assert echo.payload == b"abcd"
    inner = raw(IP(src=DST4, dst=SRC4) / UDP(sport=1, dport=2))
    unreach = decode(eth(IP(src=SRC4, dst=DST4) / ICMP(type=3, code=1) / inner))
    assert (unreach.icmp_type, unreach.icmp_code, unreach.icmp_id) == (3, 1, -1)
    assert unreach.events is None
    assert decode(eth(IP(src=SRC4, dst=DST4) / ICMP(type=3, code=1) / inner[:10])).events == ["icmpv4.ipv4_trunc_pkt"]
    assert decode(eth(IP(src=SRC4, dst=DST4) / ICMP(type=3) / (b"\x65" + inner[1:]))).events == \
        ["icmpv4.ipv4_unknown_ver"]
    assert decode(eth(IP(src=SRC4, dst=DST4) / ICMP(type=99))).events == ["icmpv4.unknown_type"]
    assert decode(eth(IP(src=SRC4, dst=DST4) / ICMP(type=8, code=4))).events == ["icmpv4.unknown_code"]
    assert decode(eth(IP(src=SRC4, dst=DST4, proto=1) / b"\x08\x00")).events == ["icmpv4.pkt_too_small"]


def test_icmpv6() -> None:
    echo = decode(eth(IPv6(src=SRC6, dst=DST6) / ICMPv6EchoReply(id=9, seq=10, data=b"zz")))
    assert (echo.icmp_type, echo.icmp_id, echo.icmp_seq, echo.proto) == (129, 9, 10, 58)
    inner = raw(IPv6(src=DST6, dst=SRC6) / UDP())
    assert decode(eth(IPv6(src=SRC6, dst=DST6) / ICMPv6DestUnreach(code=4) / inner)).events is None
    assert decode(eth(IPv6(src=SRC6, dst=DST6) / ICMPv6DestUnreach() / inner[:20])).events == \
        ["icmpv6.ipv6_trunc_pkt"]
    assert decode(eth(IPv6(src=SRC6, dst=DST6, hlim=64) / ICMPv6MLQuery())).events == \
        ["icmpv6.mld_message_with_invalid_hl"]
    assert decode(eth(IPv6(src=SRC6, dst=DST6, nh=58) / (b"\x32\x00\x00\x00" + b"\x00" * 4))).events == \
        ["icmpv6.unassigned_type"]
    assert decode(eth(IPv6(src=SRC6, dst=DST6, nh=58) / (b"\x64\x00\x00\x00" + b"\x00" * 4))).events == \
        ["icmpv6.experimentation_type"]
    assert decode(eth(IPv6(src=SRC6, dst=DST6, nh=58) / b"\x80\x00")).events == ["icmpv6.pkt_too_small"]


def test_gre_inner_packet_is_analysed_outer_kept() -> None:
    d = Decoder()
    inner = IP(src=SRC4, dst=DST4, ttl=5) / TCP(sport=999, dport=25, flags="S") / b"helo"
    pkt = d.decode(eth(IP(src="1.1.1.1", dst="2.2.2.2", ttl=60) / GRE(proto=0x0800, seqnum_present=1, sequence_number=4)
                       / inner), 1)
    assert pkt.tunnel == (b"\x01\x01\x01\x01", b"\x02\x02\x02\x02", 47, 0, 0, "gre tunnel", 14 + 20 + 8)
    assert (pkt.src_ip, pkt.dst_ip, pkt.sp, pkt.dp, pkt.ttl) == (SRC4, DST4, 999, 25, 5)
    assert pkt.payload == b"helo"
    s = d.stats()
    assert s["decoder.gre"] == 1 and s["decoder.ipv4"] == 2 and s["decoder.tcp"] == 1


@pytest.mark.parametrize("gre_hdr,event", [
    (b"\x00", "gre.pkt_too_small"),
    (b"\x00\x02\x08\x00", "gre.wrong_version"),
    (b"\x01\x00\x08\x00", "gre.version0_recur"),
    (b"\x00\x40\x08\x00", "gre.version0_flags"),
    (b"\x20\x00\x08\x00\x00", "gre.version0_hdr_too_big"),        # key bit set, key missing
    (b"\x00\x01\x88\x0b\x00\x00\x00\x00", "gre.version1_no_key"),
    (b"\x20\x01\x08\x00\x00\x00\x00\x00", "gre.version1_wrong_protocol"),
    (b"\xa0\x01\x88\x0b\x00\x00\x00\x00", "gre.version1_chksum"),
])
def test_gre_events(gre_hdr: bytes, event: str) -> None:
    pkt = decode(eth(IP(src="1.1.1.1", dst="2.2.2.2", proto=47) / gre_hdr))
    assert pkt.events == [event]


def test_gre_nesting_is_bounded() -> None:
    inner = raw(IP(src=SRC4, dst=DST4) / UDP(sport=1, dport=2))
    for _ in range(50):
        inner = raw(IP(src="1.1.1.1", dst="2.2.2.2", proto=47)) + b"\x00\x00\x08\x00" + inner
        inner = inner[:2] + struct.pack("!H", len(inner)) + inner[4:]
    pkt = decode(eth(IP(src="9.9.9.9", dst="8.8.8.8", proto=47) / (b"\x00\x00\x08\x00" + inner)))
    assert pkt.proto == 47          # stopped at the depth limit, inside an outer GRE layer
    assert pkt.tunnel is not None


def test_decoder_stats_counts_every_packet_and_event() -> None:
    d = Decoder()
    d.decode(eth(IP(src=SRC4, dst=DST4) / UDP(sport=1, dport=2)), 1)
    d.decode(eth(IP(src=SRC4, dst=DST4) / TCP(sport=1, dport=2)), 1)
    d.decode(b"\x00" * 5, 1)
    s = d.stats()
    assert s["decoder.pkts"] == 3
    assert s["decoder.ethernet"] == 3 and s["decoder.ipv4"] == 2
    assert s["decoder.udp"] == 1 and s["decoder.tcp"] == 1
    assert s["decoder.invalid"] == 1 and s["decoder.event.ethernet.pkt_too_small"] == 1
    assert s["decoder.bytes"] == 14 + 28 + 14 + 40 + 5
    assert s["decoder.avg_pkt_size"] == (14 + 28 + 14 + 40 + 5) // 3
    # Suricata's counters under decoder.*, our own (issue #14's caps) under netsentry.decoder.*
    assert all(k.startswith(("decoder.", "netsentry.decoder.")) for k in s)
    assert s["netsentry.decoder.events_overflow"] == 0 and s["netsentry.decoder.ipv6_exthdr_limit"] == 0


@pytest.mark.parametrize("outer,inner,proto", [
    (IP(src="1.1.1.1", dst="2.2.2.2"), IP(src=SRC4, dst=DST4) / UDP(sport=7, dport=8), 4),
    (IP(src="1.1.1.1", dst="2.2.2.2"), IPv6(src=SRC6, dst=DST6) / UDP(sport=7, dport=8), 41),
    (IPv6(src="2001:db8::a", dst="2001:db8::b"), IP(src=SRC4, dst=DST4) / UDP(sport=7, dport=8), 4),
    (IPv6(src="2001:db8::a", dst="2001:db8::b"), IPv6(src=SRC6, dst=DST6) / UDP(sport=7, dport=8), 41),
])
def test_ip_in_ip_tunnels_analyse_the_inner_packet(outer, inner, proto: int) -> None:  # type: ignore[no-untyped-def]
    outer = outer.copy()
    if isinstance(outer, IP):
        outer.proto = proto
    else:
        outer.nh = proto
    d = Decoder()
    pkt = d.decode(eth(outer / inner), 1)
    assert pkt.tunnel is not None and pkt.tunnel[2] == proto
    inner_v = "ipv4" if proto == 4 else "ipv6"
    outer_v = "ipv4" if isinstance(outer, IP) else "ipv6"
    assert d.stats()[f"decoder.{inner_v}_in_{outer_v}"] == 1
    assert (pkt.sp, pkt.dp, pkt.proto) == (7, 8, 17)
    assert pkt.src_ip in (SRC4, SRC6) and pkt.events is None


def test_ip_in_ipv6_events() -> None:
    assert decode(eth(IPv6(src=SRC6, dst=DST6, nh=4) / (b"\x45" + b"\x00" * 10))).events == \
        ["ipv6.ipv4_in_ipv6_too_small"]
    assert decode(eth(IPv6(src=SRC6, dst=DST6, nh=41) / (b"\x45" + b"\x00" * 50))).events == \
        ["ipv6.ipv6_in_ipv6_wrong_version"]


def test_gre_carrying_ppp_decodes_the_ip_packet_inside() -> None:
    """GRE version 0 with protocol 0x880B (PPP, not PPTP's version 1): the PPP frame's IP
    packet is the packet (Suricata's PPP tunnel); the tunnel tuple says where PPP starts."""
    from scapy.layers.ppp import PPP  # type: ignore[import-untyped]
    d = Decoder()
    inner = IP(src=SRC4, dst=DST4) / UDP(sport=5, dport=6) / b"ppp!"
    frame = eth(IP(src="1.1.1.1", dst="2.2.2.2") / GRE(proto=0x880B) / PPP(proto=0x0021) / inner)
    pkt = d.decode(frame, 1)
    assert (pkt.src_ip, pkt.dst_ip, pkt.proto, pkt.dp, pkt.payload) == (SRC4, DST4, 17, 6, b"ppp!")
    assert pkt.tunnel[2] == 47 and frame[pkt.tunnel[6]:pkt.tunnel[6] + 2] == b"\x00\x21"
