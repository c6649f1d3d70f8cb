"""ERSPAN type II (Cisco's encapsulated remote SPAN): mirrored Ethernet frames in GRE.

A switch mirroring a port to a remote sensor wraps each frame in GRE (protocol
0x88BE) behind an 8-byte ERSPAN header: version (1 for type II), the mirrored
frame's VLAN, session id, index. Without this decoder nothing a SPAN-over-GRE
feed carries would be inspected. As Suricata's DecodeERSPAN: only version 1 is
decoded, a non-zero VLAN becomes one of the packet's VLAN layers, then the
Ethernet frame is decoded.
"""

from __future__ import annotations

from netsentry.decode import events as ev
from netsentry.decode.context import DecodeContext
from netsentry.decode.link import VLAN_MAX_LAYERS, decode_ethernet
from netsentry.decode.packet import Packet

ETHERTYPE_ERSPAN = 0x88BE       # the GRE protocol of ERSPAN types I and II
HDR_LEN = 8


def decode(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    ctx.counts["erspan"] += 1
    if end - off < HDR_LEN:
        ctx.event(pkt, ev.ERSPAN_HEADER_TOO_SMALL)
        return
    word = (data[off] << 8) | data[off + 1]
    if word >> 12 != 1:
        ctx.event(pkt, ev.ERSPAN_UNSUPPORTED_VERSION)
        return
    vlan = word & 0x0FFF
    if vlan:
        if len(pkt.vlan) >= VLAN_MAX_LAYERS:
            ctx.event(pkt, ev.ERSPAN_TOO_MANY_VLAN_LAYERS)
            return
        pkt.vlan = pkt.vlan + (vlan,)
    decode_ethernet(ctx, pkt, data, off + HDR_LEN, end)
