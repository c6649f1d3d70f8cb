"""GRE (RFC 2784/2890, and version 1 / PPTP per RFC 2637).

The inner IP packet is what the engines analyse: the outer addresses move to
``pkt.tunnel = (outer src, outer dst, 47, 0, 0, "gre tunnel", inner offset)``
for output (the shape decode/udptunnel.py describes), then the inner packet is
decoded over the same `Packet` fields. A PPP payload (protocol 0x880B) in
version 0 is decoded as PPP (Suricata's DECODE_TUNNEL_PPP); version 1 (PPTP)
carries PPP too, but as Suricata its payload is not decoded. Nesting is bounded by
``MAX_TUNNEL_DEPTH`` so crafted GRE-in-GRE cannot exhaust the stack.
"""

from __future__ import annotations

import struct

from netsentry.decode import events as ev
from netsentry.decode.context import MAX_TUNNEL_DEPTH, DecodeContext
from netsentry.decode.link import decode_ppp
from netsentry.decode.packet import Packet

HDR_LEN = 4
_HDR = struct.Struct("!HH").unpack_from

F_CSUM = 0x8000
F_ROUTE = 0x4000
F_KEY = 0x2000
F_SEQ = 0x1000
F_SSR = 0x0800
F_RECUR = 0x0700
F_ACK = 0x0080            # version 1 only
F_V0_RESERVED = 0x00F8    # must be zero in version 0 (RFC 2784 reserved0 bits 5-12)
F_V1_RESERVED = 0x0078
VERSION_MASK = 0x0007
PPTP_PROTO = 0x880B       # PPP, the only payload version 1 carries
ETHERTYPE_TEB = 0x6558    # transparent Ethernet bridging


def decode(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    ctx.counts["gre"] += 1
    avail = end - off
    if avail < HDR_LEN:
        ctx.invalid(pkt, ev.GRE_PKT_TOO_SMALL)
        return
    flags, proto = _HDR(data, off)
    version = flags & VERSION_MASK
    pkt.l4_off = off
    if version == 0:
        if flags & F_RECUR:
            ctx.invalid(pkt, ev.GRE_VERSION0_RECUR)
            return
        if flags & F_V0_RESERVED:
            ctx.invalid(pkt, ev.GRE_VERSION0_FLAGS)
            return
        hlen = HDR_LEN
        if flags & (F_CSUM | F_ROUTE):
            hlen += 4
        if flags & F_KEY:
            hlen += 4
        if flags & F_SEQ:
            hlen += 4
        if hlen > avail:
            ctx.invalid(pkt, ev.GRE_VERSION0_HDR_TOO_BIG)
            return
        if flags & F_ROUTE:   # source route entries: (af, offset, length) records until length 0
            cur = off + hlen
            while True:
                if cur + 4 > end:
                    ctx.invalid(pkt, ev.GRE_VERSION0_HDR_TOO_BIG)
                    return
                sre_len = data[cur + 3]
                cur += 4 + sre_len
                if sre_len == 0:
                    break
            hlen = cur - off
    elif version == 1:
        for bit, name in _V1_FORBIDDEN:
            if flags & bit:
                ctx.invalid(pkt, name)
                return
        if not flags & F_KEY:
            ctx.invalid(pkt, ev.GRE_VERSION1_NO_KEY)
            return
        if proto != PPTP_PROTO:
            ctx.invalid(pkt, ev.GRE_VERSION1_WRONG_PROTOCOL)
            return
        hlen = HDR_LEN + 4 + (4 if flags & F_SEQ else 0) + (4 if flags & F_ACK else 0)
        if hlen > avail:
            ctx.invalid(pkt, ev.GRE_VERSION1_HDR_TOO_BIG)
            return
        pkt.payload_off = off + hlen
        pkt.payload_len = avail - hlen
        return   # PPP payloads are not decoded
    else:
        ctx.invalid(pkt, ev.GRE_WRONG_VERSION)
        return
    pkt.payload_off = off + hlen
    pkt.payload_len = avail - hlen
    if ctx.depth >= MAX_TUNNEL_DEPTH:
        return
    inner = _GRE_PROTOS.get(proto) or ctx.ethertypes.get(proto)
    if inner is None:
        return
    ctx.depth += 1
    pkt.tunnel = (pkt.src, pkt.dst, 47, 0, 0, "gre tunnel", off + hlen)
    # the inner header decides these again; the outer transport fields must not leak inward
    pkt.l4_off = -1
    pkt.payload_off = 0
    pkt.payload_len = 0
    pkt.ip6_exthdrs = ()
    inner(ctx, pkt, data, off + hlen, end)


# payloads GRE names that an Ethernet frame never carries: decoded only here
_GRE_PROTOS = {PPTP_PROTO: decode_ppp}

_V1_FORBIDDEN = (
    (F_CSUM, ev.GRE_VERSION1_CHKSUM),
    (F_ROUTE, ev.GRE_VERSION1_ROUTE),
    (F_SSR, ev.GRE_VERSION1_SSR),
    (F_RECUR, ev.GRE_VERSION1_RECUR),
    (F_V1_RESERVED, ev.GRE_VERSION1_FLAGS),
)
