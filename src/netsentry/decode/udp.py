"""UDP (RFC 768), with current Suricata's length checks (``DecodeUDPPacket``)."""

from __future__ import annotations

import struct

from netsentry.decode import checksum
from netsentry.decode import events as ev
from netsentry.decode.context import DecodeContext
from netsentry.decode.packet import Packet

HDR_LEN = 8
_HDR = struct.Struct("!HHHH").unpack_from


def decode(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    ctx.counts["udp"] += 1
    avail = end - off
    if avail < HDR_LEN:
        ctx.invalid(pkt, ev.UDP_HLEN_TOO_SMALL)
        return
    sp, dp, ulen, csum = _HDR(data, off)
    if avail < ulen:
        ctx.invalid(pkt, ev.UDP_PKT_TOO_SMALL)
        return
    if ulen < HDR_LEN:
        ctx.invalid(pkt, ev.UDP_LEN_INVALID)
        return
    # Bytes after the UDP length (padding, trailers) are not payload and not an error:
    # current Suricata decodes such a packet (ticket 5379); it used to raise
    # udp.hlen_invalid and drop the ports, so port rules matched port 0.
    pkt.l4_off = off
    pkt.sp = sp
    pkt.dp = dp
    pkt.payload_off = off + HDR_LEN
    pkt.payload_len = ulen - HDR_LEN
    # a zero checksum means "none" over IPv4 (RFC 768); over IPv6 it is mandatory
    if ctx.checksums and (csum or pkt.ip_version == 6) \
            and not checksum.l4_ok(pkt.src, pkt.dst, 17, data, off, end):
        ctx.event(pkt, ev.UDP_CSUM_INVALID)
        pkt.checksum_bad = True
    tunnels = ctx.udp_tunnels
    if tunnels is not None:
        # VXLAN, Geneve, Teredo by port (udptunnel.py): the packet may become the inner one
        ctx.udp_seen = pkt
        if tunnels.wants(sp, dp):
            tunnels.decode(ctx, pkt, data, off + HDR_LEN, off + ulen)
