"""IPv4 and IPv6 headers: fields match scapy's dissection; malformed headers raise Suricata's events."""

from __future__ import annotations

import struct

import pytest
from decode_frames import DST4, DST6, SRC4, SRC6, decode, eth
from scapy.all import (  # type: ignore[import-untyped]
    ICMP, IP, TCP, UDP, Ether, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)


def test_ipv4_fields_match_scapy() -> None:
    frame = eth(IP(src=SRC4, dst=DST4, ttl=17, tos=0x28, id=4242, flags="DF") / UDP(sport=1, dport=2) / b"zz")
    pkt = decode(frame)
    ref = Ether(frame)[IP]
    assert (pkt.ttl, pkt.tos, pkt.ip_id, pkt.ip_len, pkt.ip_hlen) == (ref.ttl, ref.tos, ref.id, ref.len, ref.ihl * 4)
    assert pkt.ip_flags == int(ref.flags) == 0x2
    assert pkt.frag_offset == 0
    assert pkt.proto == 17


def test_ipv4_options_recorded_and_l4_after_them() -> None:
    # router alert + record route (with room for one address)
    opts = b"\x94\x04\x00\x00" + b"\x07\x07\x04" + b"\x00" * 4 + b"\x00" * 5
    pkt = decode(eth(IP(src=SRC4, dst=DST4, options=opts) / TCP(sport=7, dport=8)))
    assert pkt.ip_opts == (0x94, 0x07, 0x00)      # the EOL padding counts (ipopts:eol)
    assert pkt.ip_hlen == 36 and pkt.l4_off == 14 + 36
    assert (pkt.sp, pkt.dp) == (7, 8)
    assert pkt.events is None


def test_ipv4_options_not_a_multiple_of_8_bytes() -> None:
    """Suricata wants the options padded to 8 bytes (ipv4.opt_pad_required), and goes on."""
    pkt = decode(eth(IP(src=SRC4, dst=DST4, options=b"\x94\x04\x00\x00") / TCP(sport=7, dport=8)))
    assert pkt.events == ["ipv4.opt_pad_required"]
    assert pkt.ip_opts == (0x94,) and pkt.sp == 7


PAD = b"\x00" * 4     # options of 8 bytes: no ipv4.opt_pad_required


@pytest.mark.parametrize("opts,event,recorded", [
    (b"\x94\x04\x00\x00\x94\x04\x00\x00", "ipv4.opt_duplicate", (0x94,)),
    (b"\x9e\x04\x00\x00" + PAD, "ipv4.opt_invalid", (0x00,)),           # a type Suricata does not know
    (b"\x07\x02\x00\x00" + PAD, "ipv4.opt_invalid_len", (0x00,)),       # record route below 3 bytes
    (b"\x82\x02" + b"\x00" * 6, "ipv4.opt_invalid_len", (0x00,)),         # security below 3 bytes
    (b"\x94\x03\x00\x00" + PAD, "ipv4.opt_invalid_len", (0x00,)),       # router alert is 4 bytes exactly
    (b"\x07\x07\x05" + b"\x00" * 5, "ipv4.opt_malformed", (0x00,)),      # pointer not on a 4-byte step
    (b"\x44\x08\x04\x00" + PAD, "ipv4.opt_malformed", ()),              # timestamp pointer below 5
    (b"\x86\x0a\x00\x00\x00\x01\x00\x04\x00\x00" + b"\x00" * 6, "ipv4.opt_malformed", (0x00,)),  # CIPSO tag 0
])
def test_ipv4_option_events(opts: bytes, event: str, recorded: tuple[int, ...]) -> None:
    """An option that fails its check raises its event and is not recorded (`ipopts` does
    not see it); decoding goes on."""
    pkt = decode(eth(IP(src=SRC4, dst=DST4, options=opts) / UDP(sport=1, dport=2)))
    assert event in pkt.events
    assert pkt.ip_opts == recorded
    assert pkt.sp == 1


@pytest.mark.parametrize("opts", [b"\x07\x01\x00\x00" + PAD, b"\x82\x02\xf1\x35" + PAD])
def test_an_option_length_past_the_options_stops_decoding(opts: bytes) -> None:
    """Below 2 or beyond the options: Suricata's DecodeIPV4Options fails, the packet is
    invalid and nothing after the IP header is decoded (suricata-verify bug-7414)."""
    pkt = decode(eth(IP(src=SRC4, dst=DST4, options=opts) / UDP(sport=1, dport=2)))
    assert "ipv4.opt_invalid_len" in pkt.events
    assert pkt.l4_off == -1 and pkt.sp == 0


def _mangle(frame: bytes, off: int, value: bytes) -> bytes:
    return frame[:off] + value + frame[off + len(value):]


def test_ipv4_header_events() -> None:
    good = eth(IP(src=SRC4, dst=DST4) / UDP(sport=1, dport=2) / b"payload")
    assert decode(good[:14 + 19]).events == ["ipv4.pkt_too_small"]
    assert decode(_mangle(good, 14, b"\x44")).events == ["ipv4.hlen_too_small"]
    assert decode(_mangle(good, 14, b"\x65")).events == ["ipv4.wrong_ip_version"]
    assert decode(_mangle(good, 16, struct.pack("!H", 12))).events == ["ipv4.iplen_smaller_than_hlen"]
    assert decode(good[:-3]).events == ["ipv4.trunc_pkt"]


def test_ipv4_ethernet_padding_is_not_payload() -> None:
    frame = eth(IP(src=SRC4, dst=DST4) / UDP(sport=1, dport=2) / b"ab") + b"\x00" * 10
    pkt = decode(frame)
    assert pkt.payload == b"ab"
    assert pkt.events is None


def test_ipv4_fragments_stop_at_ip() -> None:
    first = decode(eth(IP(src=SRC4, dst=DST4, flags="MF") / UDP(sport=1, dport=2) / (b"a" * 20)))
    later = decode(eth(IP(src=SRC4, dst=DST4, frag=3, proto=17) / (b"a" * 20)))
    for pkt in (first, later):
        assert pkt.l4_off == -1 and pkt.sp == 0 and pkt.proto == 17
    assert first.ip_flags & 1 and first.frag_offset == 0
    assert later.frag_offset == 3


def test_ipv6_fields_match_scapy() -> None:
    frame = eth(IPv6(src=SRC6, dst=DST6, hlim=3, tc=0x2E) / TCP(sport=5, dport=6, flags="A") / b"data")
    pkt = decode(frame)
    ref = Ether(frame)[IPv6]
    assert (pkt.ttl, pkt.tos, pkt.ip_len) == (ref.hlim, ref.tc, 40 + ref.plen)
    assert (pkt.src_ip, pkt.dst_ip, pkt.proto, pkt.sp, pkt.dp) == (SRC6, DST6, 6, 5, 6)
    assert pkt.payload == b"data"


def test_ipv6_extension_chain() -> None:
    frame = eth(IPv6(src=SRC6, dst=DST6) / IPv6ExtHdrHopByHop(options=[]) / IPv6ExtHdrRouting(type=2, addresses=[])
                / IPv6ExtHdrDestOpt() / UDP(sport=11, dport=12) / b"q")
    pkt = decode(frame)
    assert pkt.ip6_exthdrs == (0, 43, 60)
    assert pkt.proto == 17 and (pkt.sp, pkt.dp) == (11, 12)
    assert pkt.ip_hlen == 40 + 8 + 8 + 8
    assert pkt.payload == b"q"


def test_ipv6_fragment_header() -> None:
    frame = eth(IPv6(src=SRC6, dst=DST6) / IPv6ExtHdrFragment(id=0xABCDEF, m=1, offset=5, nh=17) / (b"x" * 16))
    pkt = decode(frame)
    assert (pkt.ip_id, pkt.frag_offset, pkt.ip_flags) == (0xABCDEF, 5, 1)
    assert pkt.l4_off == -1 and pkt.proto == 17


@pytest.mark.parametrize("build,event", [
    (lambda: IPv6(src=SRC6, dst=DST6) / IPv6ExtHdrFragment(m=0, offset=0) / UDP(), "ipv6.exthdr_useless_fh"),
    (lambda: IPv6(src=SRC6, dst=DST6) / IPv6ExtHdrRouting(type=0) / UDP(), "ipv6.rh_type_0"),
    (lambda: IPv6(src=SRC6, dst=DST6) / IPv6ExtHdrRouting(type=2) / IPv6ExtHdrRouting(type=2) / UDP(),
     "ipv6.exthdr_dupl_rh"),
    (lambda: IPv6(src=SRC6, dst=DST6) / IPv6ExtHdrHopByHop(options=[]) / UDP(), "ipv6.hopopts_only_padding"),
    (lambda: IPv6(src=SRC6, dst=DST6, nh=59) / b"junk", "ipv6.data_after_none_header"),
    (lambda: IPv6(src=SRC6, dst=DST6, nh=1) / ICMP(), "ipv6.icmpv4"),
])
def test_ipv6_events(build, event: str) -> None:  # type: ignore[no-untyped-def]
    assert event in (decode(eth(build())).events or [])


def test_ipv6_truncation_events() -> None:
    good = eth(IPv6(src=SRC6, dst=DST6) / IPv6ExtHdrDestOpt() / UDP(sport=1, dport=2) / b"abcdef")
    assert decode(good[:14 + 39]).events == ["ipv6.pkt_too_small"]
    assert decode(good[:-2]).events == ["ipv6.trunc_pkt"]
    # payload length claims only part of the destination options header
    short = good[:18] + struct.pack("!H", 1) + good[20:14 + 41]
    assert decode(short).events == ["ipv6.trunc_exthdr"]


def test_ipv4_in_frame_with_icmpv6_protocol_event() -> None:
    pkt = decode(eth(IP(src=SRC4, dst=DST4, proto=58) / (b"\x80\x00" + b"\x00" * 10)))
    assert "ipv4.icmpv6" in pkt.events


def test_ports_agree_with_scapy_dissection() -> None:
    frame = eth(IP(src=SRC4, dst=DST4) / UDP(sport=1111, dport=2222))
    ref = Ether(frame)[UDP]
    pkt = decode(frame)
    assert (pkt.sp, pkt.dp) == (ref.sport, ref.dport) == (1111, 2222)


@pytest.mark.parametrize("tail", [b"", b"\x80"])
def test_ipv6_atomic_fragment_without_room_for_next_header_is_truncated(tail: bytes) -> None:
    """An atomic fragment (offset 0, no more fragments) is decoded on, but when fewer than
    two bytes follow its header nothing can be there: ipv6.trunc_exthdr besides the
    useless-fragment event, and the packet is invalid (no upper layer decoded)."""
    for nh in (6, 58):
        pkt = decode(eth(IPv6(src=SRC6, dst=DST6) / IPv6ExtHdrFragment(nh=nh, m=0, offset=0) / tail))
        assert pkt.events == ["ipv6.exthdr_useless_fh", "ipv6.trunc_exthdr"]
        assert pkt.l4_off == -1
    # two bytes are enough to hand the rest on (the upper layer judges them)
    pkt = decode(eth(IPv6(src=SRC6, dst=DST6) / IPv6ExtHdrFragment(nh=17, m=0, offset=0) / b"ab"))
    assert "ipv6.trunc_exthdr" not in pkt.events
    # without extension headers the upper layer itself judges a short packet
    assert "ipv6.trunc_exthdr" not in (decode(eth(IPv6(src=SRC6, dst=DST6, nh=6) / b"a")).events or [])
