"""Per-packet bounds in the decoder (issue #14): at most 15 decoder events per packet
(Suricata's PACKET_ENGINE_EVENT_MAX), the rest counted; a bounded IPv6 extension-header walk."""

from __future__ import annotations

import struct

from decode_frames import DST6, SRC6

from netsentry.decode import Decoder
from netsentry.decode.ipv6 import MAX_EXTHDRS, MAX_OPTIONS
from netsentry.decode.packet import MAX_EVENTS


def _ipv6(nh: int, payload: bytes) -> bytes:
    import ipaddress
    hdr = struct.pack("!IHBB16s16s", 6 << 28, len(payload), nh, 64,
                      ipaddress.ip_address(SRC6).packed, ipaddress.ip_address(DST6).packed)
    return b"\x02" * 6 + b"\x04" * 6 + b"\x86\xdd" + hdr + payload


def _dstopts_chain(count: int, last_nh: int = 59, option: bytes = b"\x1e\x04\x00\x00\x00\x00") -> bytes:
    """`count` Destination Options headers, each with one unknown option (an event each)."""
    out = b""
    for i in range(count):
        nxt = 60 if i < count - 1 else last_nh
        out += bytes((nxt, 0)) + option        # 8 bytes: next header, length 0, 6 bytes of option
    return out


def test_the_reported_packet_gives_at_most_15_events_and_counts_the_rest():
    """8,000 Destination Options headers in a 64 KB packet made 16,000 EVE records."""
    d = Decoder()
    pkt = d.decode(_ipv6(60, _dstopts_chain(8000)), 1)
    assert len(pkt.events) <= MAX_EVENTS == 15
    s = d.stats()
    assert s["netsentry.decoder.ipv6_exthdr_limit"] == 1
    kept = sum(v for k, v in s.items() if k.startswith("decoder.event."))
    assert kept == len(pkt.events)


def test_events_past_the_cap_are_counted_as_overflow():
    # 15 headers (under the walk bound): one unknown-option event each, plus 2+ duplicate-DH events
    d = Decoder()
    pkt = d.decode(_ipv6(60, _dstopts_chain(MAX_EXTHDRS - 1)), 1)
    s = d.stats()
    assert len(pkt.events) == MAX_EVENTS
    produced = (MAX_EXTHDRS - 1) + (MAX_EXTHDRS - 1 - 2)          # unknown opts + duplicates past two
    assert s["netsentry.decoder.events_overflow"] == produced - MAX_EVENTS
    assert sum(v for k, v in s.items() if k.startswith("decoder.event.")) == MAX_EVENTS
    assert s["netsentry.decoder.ipv6_exthdr_limit"] == 0


def test_walk_bound_leaves_legit_chains_alone():
    d = Decoder()
    udp = struct.pack("!HHHH", 1, 2, 8, 0)
    pkt = d.decode(_ipv6(0, bytes((60, 0)) + b"\x01\x04\x00\x00\x00\x00" + bytes((17, 0)) + b"\x01\x04" + b"\0" * 4
                         + udp), 1)
    assert pkt.proto == 17 and pkt.sp == 1 and pkt.dp == 2
    assert d.stats()["netsentry.decoder.ipv6_exthdr_limit"] == 0


def test_many_options_in_one_header_are_bounded():
    opts = b"\x1e\x00" * (MAX_OPTIONS + 100)          # unknown options of length 0
    opts += b"\x00" * (-(len(opts) + 2) % 8)
    hdr = bytes((59, (len(opts) + 2) // 8 - 1)) + opts
    d = Decoder()
    d.decode(_ipv6(60, hdr), 1)
    assert d.stats()["netsentry.decoder.ipv6_exthdr_limit"] == 1
