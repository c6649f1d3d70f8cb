"""IPv4 (RFC 791): header, options, fragment fields.

Checks follow Suricata's ``DecodeIPV4`` order so the same malformed packet
raises the same event. Fragments (MF set or offset > 0) are not decoded past
the IP header, as in Suricata, where only the reassembled packet reaches the
transport decoders and the flow table.
"""

from __future__ import annotations

import struct

from netsentry.decode import checksum
from netsentry.decode import events as ev
from netsentry.decode.context import DecodeContext
from netsentry.decode.packet import Packet

HDR_LEN = 20
_HDR = struct.Struct("!BBHHHBBH4s4s").unpack_from

# option types (copied-flag/class/number byte) Suricata knows; anything else is ipv4.opt_unknown
OPT_EOL = 0x00
OPT_NOP = 0x01
KNOWN_OPTS = frozenset({
    0x07,  # record route
    0x19,  # quick-start
    0x44,  # timestamp
    0x82,  # security
    0x83,  # loose source route
    0x85,  # extended security / CIPSO is 0x86
    0x86,  # CIPSO
    0x88,  # stream id
    0x89,  # strict source route
    0x94,  # router alert
})

IP_MF = 0x1
IP_DF = 0x2
IP_RF = 0x4


def decode_options(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    """Walk the option TLVs; record their types (EOL and NOP included) in ``pkt.ip_opts``."""
    seen: list[int] = []
    while off < end:
        otype = data[off]
        # EOL and NOP are recorded too: `ipopts:eol` / `ipopts:nop` match them (Suricata's opts_set)
        if otype == OPT_EOL:
            seen.append(otype)
            break
        if otype == OPT_NOP:
            if otype not in seen:
                seen.append(otype)
            off += 1
            continue
        if off + 1 >= end:
            ctx.event(pkt, ev.IPV4_OPT_MALFORMED)
            break
        olen = data[off + 1]
        if olen < 2:
            ctx.event(pkt, ev.IPV4_OPT_INVALID_LEN)
            break
        if off + olen > end:
            ctx.event(pkt, ev.IPV4_OPT_MALFORMED)
            break
        if otype in seen:
            ctx.event(pkt, ev.IPV4_OPT_DUPLICATE)
        elif otype not in KNOWN_OPTS:
            ctx.event(pkt, ev.IPV4_OPT_UNKNOWN)
        seen.append(otype)
        off += olen
    pkt.ip_opts = tuple(seen)


# The protocols Suricata's DecodeIPV4 hands to a decoder (IP for PPP VJ, IGMP, TCP, UDP,
# ICMP, GRE, SCTP, ESP, IPv6 and IPIP tunnels); any other raises ipv4.unknown_protocol.
SURICATA_IPV4_PROTOS = frozenset({0, 1, 2, 4, 6, 17, 41, 47, 50, 132})


def decode(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    counts = ctx.counts
    counts["ipv4"] += 1
    avail = end - off
    if avail < HDR_LEN:
        ctx.invalid(pkt, ev.IPV4_PKT_TOO_SMALL)
        return
    vihl, tos, tlen, ip_id, fo, ttl, proto, _csum, src, dst = _HDR(data, off)
    if vihl >> 4 != 4:
        ctx.invalid(pkt, ev.IPV4_WRONG_IP_VER)
        return
    hlen = (vihl & 0x0F) << 2
    if hlen < HDR_LEN:
        ctx.invalid(pkt, ev.IPV4_HLEN_TOO_SMALL)
        return
    if tlen < hlen:
        ctx.invalid(pkt, ev.IPV4_IPLEN_SMALLER_THAN_HLEN)
        return
    if avail < tlen:
        ctx.invalid(pkt, ev.IPV4_TRUNC_PKT)
        return
    pkt.ip_version = 4
    pkt.ip_off = off
    pkt.src = src
    pkt.dst = dst
    pkt.proto = proto
    pkt.ttl = ttl
    pkt.tos = tos
    pkt.ip_id = ip_id
    pkt.ip_flags = fo >> 13
    pkt.frag_offset = fo & 0x1FFF
    pkt.ip_hlen = hlen
    pkt.ip_len = tlen
    if hlen > HDR_LEN:
        decode_options(ctx, pkt, data, off + HDR_LEN, off + hlen)
    elif pkt.ip_opts:
        pkt.ip_opts = ()   # left over from an outer (tunnel) header
    if ctx.checksums and not checksum.ipv4_header_ok(data, off, hlen):
        ctx.event(pkt, ev.IPV4_CSUM_INVALID)
        pkt.checksum_bad = True
    if fo & 0x3FFF:   # MF or a fragment offset: defragmentation's job, not L4's
        counts["ipv4_frag"] += 1
        pkt.frag = True
        return
    if proto == 58:
        ctx.event(pkt, ev.IPV4_WITH_ICMPV6)
    elif proto not in SURICATA_IPV4_PROTOS:
        ctx.event(pkt, ev.IPV4_PROTO_UNKNOWN)
    ctx.ip_proto(pkt, data, off + hlen, off + tlen, proto)
