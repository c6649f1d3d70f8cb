"""IGMP (decode/igmp.py): versions and RGMP as Suricata's decode-igmp.c tells them, the
`igmp` rule protocol, `igmp.type`, `igmp.hdr`, `igmp-csum`, the decoder events, and the
alert's `igmp`/`rgmp` object."""

from __future__ import annotations

import struct

from detect_helpers import Detect
from scapy.layers.inet import IP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from netsentry.decode.decoder import Decoder
from netsentry.decode.igmp import eve


def _csum(msg: bytes) -> bytes:
    s = sum(struct.unpack(f"!{len(msg) // 2}H", msg))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    c = ~s & 0xFFFF
    return msg[:2] + c.to_bytes(2, "big") + msg[4:]


def igmp(msg: bytes, dst: str = "224.0.0.1", ttl: int = 1, fix: bool = True) -> bytes:
    return bytes(Ether() / IP(src="10.0.0.1", dst=dst, proto=2, ttl=ttl) / Raw(_csum(msg) if fix else msg))


V2_REPORT = igmp(bytes([0x16, 0, 0, 0, 239, 1, 2, 3]))
V1_QUERY = igmp(bytes([0x11, 0, 0, 0, 0, 0, 0, 0]))
V3_QUERY = igmp(bytes([0x11, 100, 0, 0, 0, 0, 0, 0, 2, 125, 0, 1, 10, 0, 0, 9]))
RGMP_HELLO = igmp(bytes([0xFF, 0, 0, 0, 0, 0, 0, 0]), dst="224.0.0.25")
V3_QUERY_SHORT = igmp(bytes([0x11, 100, 0, 0, 0, 0, 0, 0, 2, 125, 0, 2, 10, 0, 0, 9]))


def test_versions_rgmp_and_events():
    dec = Decoder()
    assert dec.decode(V2_REPORT, 1).igmp == (2, False, 8)
    assert dec.decode(V1_QUERY, 1).igmp == (1, False, 8)
    p = dec.decode(V3_QUERY, 1)
    assert p.igmp == (3, False, 16) and p.payload_len == 0
    assert eve(dec.decode(RGMP_HELLO, 1)) == ("rgmp", {"type": 255})
    assert eve(p) == ("igmp", {"type": 0x11, "version": 3})
    bad = dec.decode(V3_QUERY_SHORT, 1)
    assert "igmp.v3_pkt_too_small" in bad.events and getattr(bad, "igmp", None) is None
    assert "igmp.pkt_too_small" in dec.decode(igmp(b"\x16\x00\x00", fix=False), 1).events
    assert dec.stats()["decoder.igmp"] == 6


def test_igmp_rules(detect: Detect) -> None:
    rules = ('alert igmp any any -> 224.0.0.25 any (igmp.type:0xff; ttl:1; sid:1;)\n'
             'alert igmp any any -> any any (igmp.hdr; content:"|16|"; startswith; bsize:8; sid:2;)\n'
             'alert igmp any any -> any any (igmp-csum:valid; sid:3;)\n'
             'alert igmp any any -> any any (igmp-csum:invalid; sid:4;)\n'
             'alert igmp any any -> any any (dsize:>0; sid:5;)\n'
             'alert udp any any -> any any (sid:6;)\n')
    broken = igmp(bytes([0x16, 0, 0, 0, 239, 1, 2, 3]), fix=False)
    run = detect.run(rules, [V2_REPORT, RGMP_HELLO, broken, V3_QUERY])
    assert sorted(run.sids_at(1)) == [2, 3]
    assert sorted(run.sids_at(2)) == [1, 3]
    assert sorted(run.sids_at(3)) == [2, 4]
    assert sorted(run.sids_at(4)) == [3], "the v3 query's source list is header, not payload"
