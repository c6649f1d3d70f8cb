"""NSH, the Network Service Header (RFC 8300; ethertype 0x894F): service function chaining.

Service-chaining fabrics put an NSH in front of the packet they steer, so
without it every such frame would be an unknown ethertype, never inspected.
As Suricata's decode-nsh.c: the 8-byte base + service path header, version
0 only; the length field (in 4-byte words) covers the context headers too,
so the inner packet starts `length` bytes in. MD type 1 has a fixed 24-byte
header, MD type 2 a variable one; 0 and 0xF are reserved (event, packet left
alone), other types are unsupported (event). The next protocol picks the inner
decoder: IPv4, IPv6, Ethernet or MPLS; anything else (NSH in NSH included)
is an `nsh.unknown_payload` event. The service path is not part of the flow key.
"""

from __future__ import annotations

from netsentry.decode import events as ev
from netsentry.decode.context import DecodeContext
from netsentry.decode.packet import Packet

ETHERTYPE_NSH = 0x894F
HDR_LEN = 8
MD1_LEN = 24
MD_RESERVED = (0x0, 0xF)
MD_FIXED, MD_VARIABLE = 1, 2

# NSH next protocol -> the ethertype whose decoder takes the inner packet
NEXT_PROTOCOLS = {
    0x1: 0x0800,   # IPv4
    0x2: 0x86DD,   # IPv6
    0x3: 0x6558,   # Ethernet (transparent Ethernet bridging in the ethertype table)
    0x5: 0x8847,   # MPLS
}


def decode(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    ctx.counts["nsh"] += 1
    avail = end - off
    if avail < HDR_LEN:
        ctx.invalid(pkt, ev.NSH_HEADER_TOO_SMALL)
        return
    ver_flags_len = (data[off] << 8) | data[off + 1]
    if ver_flags_len >> 14:
        ctx.event(pkt, ev.NSH_UNSUPPORTED_VERSION)
        return
    length = (ver_flags_len & 0x3F) * 4
    if length >= avail:
        ctx.invalid(pkt, ev.NSH_BAD_HEADER_LENGTH)
        return
    md_type = data[off + 2]
    if md_type in MD_RESERVED:
        ctx.event(pkt, ev.NSH_RESERVED_TYPE)
        return
    if md_type == MD_FIXED:
        if length != MD1_LEN:
            ctx.invalid(pkt, ev.NSH_BAD_HEADER_LENGTH)
            return
    elif md_type != MD_VARIABLE:
        ctx.event(pkt, ev.NSH_UNSUPPORTED_TYPE)
        return
    etype = NEXT_PROTOCOLS.get(data[off + 3])
    if etype is None:
        ctx.event(pkt, ev.NSH_UNKNOWN_PAYLOAD)
        return
    ctx.ethertype(pkt, data, off + length, end, etype)


ETHERTYPES = {ETHERTYPE_NSH: decode}
