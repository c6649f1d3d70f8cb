"""TCP (RFC 9293): header and the options the engines use (MSS, window scale,
SACK-permitted, timestamps), with Suricata's ``tcp.*`` events."""

from __future__ import annotations

import struct

from netsentry.decode import checksum
from netsentry.decode import events as ev
from netsentry.decode.context import DecodeContext
from netsentry.decode.packet import Packet

HDR_LEN = 20
_HDR = struct.Struct("!HHIIBBH").unpack_from
_U16 = struct.Struct("!H").unpack_from
_TS = struct.Struct("!II").unpack_from

OPT_EOL = 0
OPT_NOP = 1
OPT_MSS = 2
OPT_WS = 3
OPT_SACKOK = 4
OPT_SACK = 5
OPT_TS = 8
# options with a fixed length: a different length is tcp.opt_invalid_len (and the option is ignored)
_FIXED_LEN = {OPT_MSS: 4, OPT_WS: 3, OPT_SACKOK: 2, OPT_TS: 10}


def decode_options(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    seen = 0   # bitmask of option kinds < 32 seen, for tcp.opt_duplicate
    while off < end:
        kind = data[off]
        if kind == OPT_EOL:
            break
        if kind == OPT_NOP:
            off += 1
            continue
        if off + 1 >= end:
            ctx.event(pkt, ev.TCP_OPT_INVALID_LEN)
            break
        olen = data[off + 1]
        if olen < 2 or off + olen > end:
            ctx.event(pkt, ev.TCP_OPT_INVALID_LEN)
            break
        if kind < 32:
            bit = 1 << kind
            if seen & bit:
                ctx.event(pkt, ev.TCP_OPT_DUPLICATE)
                off += olen
                continue
            seen |= bit
        want = _FIXED_LEN.get(kind)
        if want is not None:
            if olen != want:
                ctx.event(pkt, ev.TCP_OPT_INVALID_LEN)
            elif kind == OPT_MSS:
                pkt.tcp_mss = _U16(data, off + 2)[0]
            elif kind == OPT_WS:
                pkt.tcp_wscale = data[off + 2]
            elif kind == OPT_SACKOK:
                pkt.tcp_sackok = True
            else:
                pkt.tcp_tsval, pkt.tcp_tsecr = _TS(data, off + 2)
        off += olen


def decode(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    ctx.counts["tcp"] += 1
    avail = end - off
    if avail < HDR_LEN:
        ctx.invalid(pkt, ev.TCP_PKT_TOO_SMALL)
        return
    sp, dp, seq, ack, doff, flags, win = _HDR(data, off)
    hlen = (doff >> 4) << 2
    if hlen < HDR_LEN:
        ctx.invalid(pkt, ev.TCP_HLEN_TOO_SMALL)
        return
    if avail < hlen:
        ctx.invalid(pkt, ev.TCP_PKT_TOO_SMALL)
        return
    pkt.l4_off = off
    pkt.sp = sp
    pkt.dp = dp
    pkt.seq = seq
    pkt.ack = ack
    pkt.tcp_flags = flags
    pkt.win = win
    pkt.tcp_hlen = hlen
    pkt.payload_off = off + hlen
    pkt.payload_len = avail - hlen
    if hlen > HDR_LEN:
        decode_options(ctx, pkt, data, off + HDR_LEN, off + hlen)
    if ctx.checksums and not checksum.l4_ok(pkt.src, pkt.dst, 6, data, off, end):
        ctx.event(pkt, ev.TCP_CSUM_INVALID)
        pkt.checksum_bad = True
