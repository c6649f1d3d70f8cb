"""ARP (ethertype 0x0806) over Ethernet, VLAN tags in between or not.

As Suricata's decode-arp.c: every ARP frame counts in ``decoder.arp``; one that
is too short for the fixed 8-byte part, is not Ethernet/IPv4 ARP (hardware
type 1, protocol 0x0800, sizes 6 and 4), is cut short of its 28 bytes, or
carries an opcode other than 1-4 raises its ``arp.*`` decoder event and is
not an ARP packet for detection. A valid one records where its header starts
(``pkt.arp_off``, an attribute only ARP frames carry), which is what the
`arp` rule protocol asks (rules/parser.py); the packet stays non-IP.
"""

from __future__ import annotations

from netsentry.decode import events as ev
from netsentry.decode.context import DecodeContext
from netsentry.decode.packet import Packet

ETHERTYPE_ARP = 0x0806
ARP_HEADER_MIN_LEN = 8
ARP_HEADER_LEN = 28
_HW_ETHERNET = 1
_PROTO_IPV4 = 0x0800


def decode(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    ctx.counts["arp"] += 1
    if end - off < ARP_HEADER_MIN_LEN:
        ctx.invalid(pkt, ev.ARP_PKT_TOO_SMALL)
        return
    if (data[off] << 8) | data[off + 1] != _HW_ETHERNET:
        ctx.invalid(pkt, ev.ARP_UNSUPPORTED_HARDWARE)
    elif (data[off + 2] << 8) | data[off + 3] != _PROTO_IPV4:
        ctx.invalid(pkt, ev.ARP_UNSUPPORTED_PROTOCOL)
    elif end - off < ARP_HEADER_LEN:
        ctx.invalid(pkt, ev.ARP_INVALID_PKT)
    elif data[off + 4] != 6:
        ctx.invalid(pkt, ev.ARP_INVALID_HARDWARE_SIZE)
    elif data[off + 5] != 4:
        ctx.invalid(pkt, ev.ARP_INVALID_PROTOCOL_SIZE)
    elif not 1 <= ((data[off + 6] << 8) | data[off + 7]) <= 4:
        ctx.invalid(pkt, ev.ARP_UNSUPPORTED_OPCODE)
    else:
        pkt.arp_off = off


def is_arp(pkt: Packet) -> bool:
    """The packet is a valid ARP frame (the `arp` rule protocol)."""
    return getattr(pkt, "arp_off", -1) >= 0


ETHERTYPES = {ETHERTYPE_ARP: decode}
