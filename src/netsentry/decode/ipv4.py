"""IPv4 (RFC 791): header, options, fragment fields.

Checks follow Suricata's ``DecodeIPV4`` order so the same malformed packet
raises the same event. Fragments (MF set or offset > 0) are not decoded past
the IP header, as in Suricata, where only the reassembled packet reaches the
transport decoders and the flow table.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from netsentry.decode import checksum
from netsentry.decode import events as ev
from netsentry.decode.context import DecodeContext
from netsentry.decode.packet import Packet

HDR_LEN = 20
_HDR = struct.Struct("!BBHHHBBH4s4s").unpack_from

# option types (copied-flag/class/number byte) Suricata knows; anything else is ipv4.opt_invalid
OPT_EOL = 0x00
OPT_NOP = 0x01
OPT_RR, OPT_QS, OPT_TS, OPT_SEC, OPT_LSRR = 0x07, 0x19, 0x44, 0x82, 0x83
OPT_ESEC, OPT_CIPSO, OPT_SID, OPT_SSRR, OPT_RTRALT = 0x85, 0x86, 0x88, 0x89, 0x94
KNOWN_OPTS = frozenset({OPT_RR, OPT_QS, OPT_TS, OPT_SEC, OPT_LSRR, OPT_ESEC, OPT_CIPSO, OPT_SID,
                        OPT_SSRR, OPT_RTRALT})

IP_MF = 0x1
IP_DF = 0x2
IP_RF = 0x4


def _route_ok(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, olen: int) -> bool:
    """Record route, loose and strict source route (RFC 791): a 1-based pointer past
    type, length and itself, in 4-byte steps, within the option."""
    if olen < 3:
        ctx.event(pkt, ev.IPV4_OPT_INVALID_LEN)
        return False
    ptr = data[off + 2]
    if ptr < 4 or ptr % 4 or ptr > olen + 1:
        ctx.event(pkt, ev.IPV4_OPT_MALFORMED)
        return False
    return True


def _timestamp_ok(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, olen: int) -> bool:
    """Timestamp (RFC 791): pointer from 5, in steps of the record size its flag gives."""
    if olen < 5:
        ctx.event(pkt, ev.IPV4_OPT_INVALID_LEN)
        return False
    ptr = data[off + 2]
    if ptr < 5:
        ctx.event(pkt, ev.IPV4_OPT_MALFORMED)
        return False
    flag = data[off + 3] & 0x0F
    rec = 8 if flag == 1 or flag == 3 else 4
    if (ptr - 5) % rec or ptr > olen + 1:
        ctx.event(pkt, ev.IPV4_OPT_MALFORMED)
        return False
    return True


def _cipso_ok(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, olen: int) -> bool:
    """CIPSO: a DOI, then tags of types 1, 2, 5, 6, 7, each at least 4 bytes long."""
    if olen < 10:
        ctx.event(pkt, ev.IPV4_OPT_INVALID_LEN)
        return False
    tag, left = off + 6, olen - 6
    while left:
        if left < 2:
            ctx.event(pkt, ev.IPV4_OPT_MALFORMED)
            return False
        ttype, tlen = data[tag], data[tag + 1]
        if tlen > left or ttype not in (1, 2, 5, 6, 7) or tlen < 4 or (ttype != 7 and data[tag + 2]):
            ctx.event(pkt, ev.IPV4_OPT_MALFORMED)
            return False
        tag += tlen
        left -= tlen
    return True


def _length_ok(minimum: int, exact: bool) -> Callable[[DecodeContext, Packet, bytes, int, int], bool]:
    def check(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, olen: int) -> bool:
        if olen < minimum or (exact and olen != minimum):
            ctx.event(pkt, ev.IPV4_OPT_INVALID_LEN)
            return False
        return True
    return check


# Suricata's per-option validation (decode-ipv4.c): a failure raises its event and marks
# the packet invalid, the option is not recorded, and the walk goes on
OPT_CHECKS: dict[int, Callable[[DecodeContext, Packet, bytes, int, int], bool]] = {
    OPT_RR: _route_ok, OPT_LSRR: _route_ok, OPT_SSRR: _route_ok,
    OPT_TS: _timestamp_ok,
    OPT_CIPSO: _cipso_ok,
    OPT_QS: _length_ok(8, False),
    OPT_SEC: _length_ok(3, False), OPT_ESEC: _length_ok(3, False),
    OPT_SID: _length_ok(4, True), OPT_RTRALT: _length_ok(4, True),
}


def decode_options(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> bool:
    """Walk the option TLVs as Suricata's DecodeIPV4Options; record the valid ones' types (EOL
    and NOP included: `ipopts:eol` / `ipopts:nop` match them) in ``pkt.ip_opts``.

    False when an option's length runs past the options or is below 2: Suricata stops
    decoding that packet there (it is invalid, nothing after the IP header is decoded).
    A packet with any invalid option counts once in decoder.invalid."""
    seen: list[int] = []
    ok = True
    bad = False
    if (end - off) % 8:
        ctx.event(pkt, ev.IPV4_OPT_PAD_REQUIRED)      # Suricata: options padded to 8 bytes
    while off < end:
        otype = data[off]
        if otype == OPT_EOL:
            seen.append(otype)
            break
        if otype == OPT_NOP:
            if otype not in seen:
                seen.append(otype)
            off += 1
            continue
        if off + 1 >= end:
            ctx.event(pkt, ev.IPV4_OPT_EOL_REQUIRED)
            break
        olen = data[off + 1]
        if olen < 2 or off + olen > end:
            ctx.event(pkt, ev.IPV4_OPT_INVALID_LEN)
            bad = True
            ok = False
            break
        check = OPT_CHECKS.get(otype)
        if check is None:
            ctx.event(pkt, ev.IPV4_OPT_INVALID)
        elif otype in seen:
            ctx.event(pkt, ev.IPV4_OPT_DUPLICATE)
        elif check(ctx, pkt, data, off, olen):
            seen.append(otype)
        else:
            bad = True
        off += olen
    if bad:
        ctx.counts["invalid"] += 1
    pkt.ip_opts = tuple(seen)
    return ok


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
        if not decode_options(ctx, pkt, data, off + HDR_LEN, off + hlen):
            return
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
