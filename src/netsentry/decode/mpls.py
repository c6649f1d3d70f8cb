"""MPLS (ethertypes 0x8847 unicast, 0x8848 multicast): carrier and provider-edge captures.

A frame carries a stack of 4-byte label entries (label 20 bits, traffic class 3,
bottom-of-stack 1, TTL 8). Without decoding them every packet of such a capture
would be an unknown ethertype, never inspected: a blind spot an analyst would
not see. What follows the bottom entry is not named anywhere, so, as Suricata's
decode-mpls.c does, it is taken from the reserved labels (0 IPv4 explicit null,
2 IPv6 explicit null) or else guessed from the first nibble: 4 IPv4, 6 IPv6,
0 an Ethernet pseudowire behind a 4-byte control word. Labels are not part of
the flow key (Suricata ignores them too).
"""

from __future__ import annotations

from netsentry.decode import events as ev
from netsentry.decode.context import DecodeContext
from netsentry.decode.link import ip_by_version
from netsentry.decode.packet import Packet

ETHERTYPE_MPLS_UNICAST = 0x8847
ETHERTYPE_MPLS_MULTICAST = 0x8848

LABEL_LEN = 4
PW_CONTROL_WORD_LEN = 4
LABEL_IPV4_NULL = 0
LABEL_ROUTER_ALERT = 1
LABEL_IPV6_NULL = 2
LABEL_IMPLICIT_NULL = 3
MAX_RESERVED_LABEL = 15

_ETHERTYPE_IPV4 = 0x0800
_ETHERTYPE_IPV6 = 0x86DD
# Transparent Ethernet Bridging: the context maps it to the Ethernet decoder (for GRE
# too), so a pseudowire's inner frame goes through the same table as everything else
_ETHERTYPE_TEB = 0x6558

# a reserved label at the bottom of the stack that says nothing about the payload
_BAD_BOTTOM = {LABEL_ROUTER_ALERT: ev.MPLS_BAD_LABEL_ROUTER_ALERT,
               LABEL_IMPLICIT_NULL: ev.MPLS_BAD_LABEL_IMPLICIT_NULL}


def decode(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    ctx.counts["mpls"] += 1
    while True:
        if end - off < LABEL_LEN:
            ctx.invalid(pkt, ev.MPLS_HEADER_TOO_SMALL)
            return
        label = (data[off] << 12) | (data[off + 1] << 4) | (data[off + 2] >> 4)
        bottom = data[off + 2] & 0x01
        off += LABEL_LEN
        if bottom:
            break
    if label == LABEL_IPV4_NULL:
        ctx.ethertype(pkt, data, off, end, _ETHERTYPE_IPV4)
        return
    if label == LABEL_IPV6_NULL:
        ctx.ethertype(pkt, data, off, end, _ETHERTYPE_IPV6)
        return
    if label <= MAX_RESERVED_LABEL:
        ctx.event(pkt, _BAD_BOTTOM.get(label, ev.MPLS_BAD_LABEL_RESERVED))
    if off >= end:
        ctx.invalid(pkt, ev.MPLS_PKT_TOO_SMALL)
        return
    if ip_by_version(ctx, pkt, data, off, end):
        return
    if data[off] >> 4 == 0:
        if end - off < PW_CONTROL_WORD_LEN:
            ctx.invalid(pkt, ev.MPLS_PKT_TOO_SMALL)
            return
        ctx.ethertype(pkt, data, off + PW_CONTROL_WORD_LEN, end, _ETHERTYPE_TEB)
    else:
        ctx.invalid(pkt, ev.MPLS_UNKNOWN_PAYLOAD_TYPE)


ETHERTYPES = {ETHERTYPE_MPLS_UNICAST: decode, ETHERTYPE_MPLS_MULTICAST: decode}
