"""IPv6 (RFC 8200): fixed header and the extension header chain.

Walks hop-by-hop, routing, fragment, destination options, AH and ESP headers,
recording their types in ``pkt.ip6_exthdrs`` and raising Suricata's
``ipv6.*`` events for truncation, duplicates and suspicious option padding.
"""

from __future__ import annotations

import struct

from netsentry.decode import events as ev
from netsentry.decode.context import IPV6_EXTHDR_LIMIT, DecodeContext
from netsentry.decode.packet import Packet

HDR_LEN = 40
_HDR = struct.Struct("!IHBB16s16s").unpack_from
_FRAG = struct.Struct("!BBHI").unpack_from

HOPOPTS = 0
ROUTING = 43
FRAGMENT = 44
ESP = 50
AH = 51
NONE = 59
DSTOPTS = 60

_DUPLICATE_EVENT = {
    HOPOPTS: ev.IPV6_EXTHDR_DUPL_HH,
    ROUTING: ev.IPV6_EXTHDR_DUPL_RH,
    FRAGMENT: ev.IPV6_EXTHDR_DUPL_FH,
    AH: ev.IPV6_EXTHDR_DUPL_AH,
    ESP: ev.IPV6_EXTHDR_DUPL_EH,
}

# option types Suricata recognises in hop-by-hop / destination options
_PAD1 = 0
_PADN = 1
_KNOWN_OPTS = frozenset({0xC2, 0x05, 0xC9, 0x04})   # jumbo, router alert, home address, tunnel limit


# Bounds on the extension-header walk: a 64 KB packet holds 8,000 empty
# headers or 65,000 Pad1 bytes, each a Python loop turn. Legitimate packets
# carry a handful. Past a bound the walk stops (the upper layer is not
# decoded) and IPV6_EXTHDR_LIMIT counts the packet; docs/limits.md.
MAX_EXTHDRS = 16            # extension headers walked per packet
MAX_OPTIONS = 32            # options (other than Pad1 runs) read per options header


def _decode_options(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int, hop: bool) -> bool:
    """Check one hop-by-hop/destination options area; False when it held too many options."""
    only_padding = True
    options = 0
    while off < end:
        otype = data[off]
        if otype == _PAD1:      # a run of Pad1 bytes skipped in one step (C speed, not a turn each)
            off = end - len(data[off:end].lstrip(b"\x00"))
            continue
        options += 1
        if options > MAX_OPTIONS:
            ctx.counts[IPV6_EXTHDR_LIMIT] += 1
            return False
        if off + 1 >= end:
            ctx.event(pkt, ev.IPV6_EXTHDR_INVALID_OPTLEN)
            return
        olen = data[off + 1]
        if off + 2 + olen > end:
            ctx.event(pkt, ev.IPV6_EXTHDR_INVALID_OPTLEN)
            return
        if otype == _PADN:
            if olen == 0:
                ctx.event(pkt, ev.IPV6_ZERO_LEN_PADN)
        else:
            only_padding = False
            if otype not in _KNOWN_OPTS:
                ctx.event(pkt, ev.IPV6_HOPOPTS_UNKNOWN_OPT if hop else ev.IPV6_DSTOPTS_UNKNOWN_OPT)
        off += 2 + olen
    if only_padding:
        ctx.event(pkt, ev.IPV6_HOPOPTS_ONLY_PADDING if hop else ev.IPV6_DSTOPTS_ONLY_PADDING)
    return True


def decode(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    counts = ctx.counts
    counts["ipv6"] += 1
    avail = end - off
    if avail < HDR_LEN:
        ctx.invalid(pkt, ev.IPV6_PKT_TOO_SMALL)
        return
    vtcfl, plen, nh, hlim, src, dst = _HDR(data, off)
    if vtcfl >> 28 != 6:
        ctx.invalid(pkt, ev.IPV6_WRONG_IP_VER)
        return
    if avail < HDR_LEN + plen:
        ctx.invalid(pkt, ev.IPV6_TRUNC_PKT)
        return
    end = off + HDR_LEN + plen
    pkt.ip_version = 6
    pkt.ip_off = off
    pkt.src = src
    pkt.dst = dst
    pkt.ttl = hlim
    pkt.tos = (vtcfl >> 20) & 0xFF
    pkt.ip_len = HDR_LEN + plen
    if pkt.ip_opts:
        pkt.ip_opts = ()   # left over from an outer IPv4 header (tunnel)
    cur = off + HDR_LEN
    if nh in _EXTHDRS:
        cur, nh, fragment = _walk_exthdrs(ctx, pkt, data, cur, end, nh)
        if cur < 0:
            return
    else:
        fragment = False
        if pkt.ip6_exthdrs:
            pkt.ip6_exthdrs = ()
    pkt.proto = nh
    pkt.ip_hlen = cur - off
    if fragment:
        counts["ipv6_frag"] += 1
        pkt.frag = True
        return
    if nh == 1:
        ctx.event(pkt, ev.IPV6_WITH_ICMPV4)
    if nh == NONE:
        if cur < end:
            ctx.event(pkt, ev.IPV6_DATA_AFTER_NONE_HEADER)
        return
    if cur - off > HDR_LEN and end - cur < 2:
        # after extension headers (an atomic fragment's, say) fewer than the two bytes
        # any next header needs: Suricata's extension-header walk calls that truncated
        # before it hands the rest to the upper layer
        ctx.invalid(pkt, ev.IPV6_TRUNC_EXTHDR)
        return
    ctx.ip_proto(pkt, data, cur, end, nh)


_EXTHDRS = frozenset({HOPOPTS, ROUTING, FRAGMENT, DSTOPTS, AH, ESP})


def _walk_exthdrs(ctx: DecodeContext, pkt: Packet, data: bytes, cur: int, end: int,
                  nh: int) -> tuple[int, int, bool]:
    """Returns (offset of the upper-layer header or -1 if truncated, its protocol, is-fragment)."""
    seen: list[int] = []
    fragment = False
    dst_count = 0
    while nh in _EXTHDRS:
        if nh == ESP:   # encrypted from here on: nothing more to decode
            seen.append(nh)
            break
        if len(seen) >= MAX_EXTHDRS:
            ctx.counts[IPV6_EXTHDR_LIMIT] += 1
            pkt.ip6_exthdrs = tuple(seen)
            return -1, nh, False
        if end - cur < 2:
            ctx.invalid(pkt, ev.IPV6_TRUNC_EXTHDR)
            pkt.ip6_exthdrs = tuple(seen)
            return -1, nh, False
        if nh == FRAGMENT:
            hlen = 8
        elif nh == AH:
            hlen = (data[cur + 1] + 2) << 2
        else:
            hlen = (data[cur + 1] + 1) << 3
        if cur + hlen > end:
            ctx.invalid(pkt, ev.IPV6_TRUNC_EXTHDR)
            pkt.ip6_exthdrs = tuple(seen)
            return -1, nh, False
        if nh == DSTOPTS:
            dst_count += 1
            if dst_count > 2:   # one before the routing header and one after are legal
                ctx.event(pkt, ev.IPV6_EXTHDR_DUPL_DH)
        elif nh in seen:
            ctx.event(pkt, _DUPLICATE_EVENT[nh])
        seen.append(nh)
        if nh == HOPOPTS or nh == DSTOPTS:
            if not _decode_options(ctx, pkt, data, cur + 2, cur + hlen, nh == HOPOPTS):
                pkt.ip6_exthdrs = tuple(seen)
                return -1, nh, False
        elif nh == ROUTING:
            if data[cur + 2] == 0:
                ctx.event(pkt, ev.IPV6_RH_TYPE_0)
        elif nh == FRAGMENT:
            _, reserved, offm, ident = _FRAG(data, cur)
            if reserved or offm & 0x6:
                ctx.event(pkt, ev.IPV6_FH_NON_ZERO_RES_FIELD)
            frag_offset = offm >> 3
            more = offm & 1
            pkt.ip_id = ident
            pkt.frag_offset = frag_offset
            pkt.ip_flags = more
            if frag_offset == 0 and not more:
                ctx.event(pkt, ev.IPV6_EXTHDR_USELESS_FH)   # atomic fragment: decode on
            else:
                fragment = True
        nh = data[cur]
        cur += hlen
    pkt.ip6_exthdrs = tuple(seen)
    return cur, nh, fragment
