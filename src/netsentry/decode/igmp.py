"""IGMP (IP protocol 2): versions 1-3 and RGMP (RFC 3488), as Suricata's decode-igmp.c.

Every IGMP packet counts in ``decoder.igmp``. The 8-byte header is the least (else
``igmp.pkt_too_small``); a v3 membership query (a query of 12 bytes or more) and a
v3 report carry their source lists and group records in the header, which must fit
(``igmp.v3_pkt_too_small``, ``igmp.malformed``). The version: 3 for those, 1 or 2
for a short query by its maximum response time, 1 or 2 for the v1/v2 report and
leave types, 255 for any other type. RGMP: an 8-byte message with TTL 1 to
224.0.0.25. What follows the header is the packet's payload (`dsize`, content).
A decoded packet carries ``pkt.igmp = (version, rgmp, header length)``, an
attribute only IGMP packets have (rules/keywords/hdr_buffers.py `igmp.hdr`,
`igmp.type`, output/eve.py's `igmp`/`rgmp` object).
"""

from __future__ import annotations

from netsentry.decode import events as ev
from netsentry.decode.context import DecodeContext
from netsentry.decode.packet import Packet

IPPROTO_IGMP = 2
HDR_LEN = 8
_QUERY, _REPORT_V1, _REPORT_V2, _LEAVE_V2, _REPORT_V3 = 0x11, 0x12, 0x16, 0x17, 0x22
_V3_MAX_SOURCES = (65535 - 24 - 12) // 4
_RGMP_DST = bytes((224, 0, 0, 25))


def decode(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    ctx.counts["igmp"] += 1
    avail = end - off
    if avail < HDR_LEN:
        ctx.invalid(pkt, ev.IGMP_PKT_TOO_SMALL)
        return
    pkt.l4_off = off
    rgmp = avail == HDR_LEN and pkt.ip_version == 4 and pkt.dst == _RGMP_DST and pkt.ttl == 1
    itype = data[off]
    hlen = HDR_LEN
    if itype == _QUERY:
        if avail >= 12:
            n_sources = (data[off + 10] << 8) | data[off + 11]
            if n_sources > _V3_MAX_SOURCES:
                ctx.invalid(pkt, ev.IGMP_MALFORMED)
                return
            hlen = 12 + 4 * n_sources
            if avail < hlen:
                ctx.invalid(pkt, ev.IGMP_V3_PKT_TOO_SMALL)
                return
            version = 3
        else:
            version = 1 if data[off + 1] == 0 else 2
    elif itype == _REPORT_V3:
        n_recs = (data[off + 6] << 8) | data[off + 7]
        for _ in range(n_recs):
            if avail - hlen < 8:
                ctx.invalid(pkt, ev.IGMP_V3_PKT_TOO_SMALL)
                return
            rec = off + hlen
            aux = data[rec + 1] * 4
            sources = ((data[rec + 2] << 8) | data[rec + 3]) * 4
            hlen += 8
            if avail - hlen < aux:
                ctx.invalid(pkt, ev.IGMP_MALFORMED)
                return
            hlen += aux
            if avail - hlen < sources:
                ctx.invalid(pkt, ev.IGMP_MALFORMED)
                return
            hlen += sources
        version = 3
    elif itype == _REPORT_V1:
        version = 1
    elif itype in (_REPORT_V2, _LEAVE_V2):
        version = 2
    else:
        version = 255
    if hlen >= 65535:
        ctx.invalid(pkt, ev.IGMP_MALFORMED)
        return
    pkt.igmp = (version, rgmp, hlen)
    pkt.payload_off = off + hlen
    pkt.payload_len = avail - hlen


def eve(pkt: Packet) -> tuple[str, dict[str, int]] | None:
    """The alert's `igmp` {type, version} or, for RGMP, `rgmp` {type} object."""
    info = getattr(pkt, "igmp", None)
    if info is None or pkt.l4_off < 0:
        return None
    itype = pkt.data[pkt.l4_off]
    if info[1]:
        return "rgmp", {"type": itype}
    return "igmp", {"type": itype, "version": info[0]}
