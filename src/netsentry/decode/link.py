"""Link layers: Ethernet, 802.1Q/802.1ad VLAN, Linux cooked v1/v2, BSD NULL/LOOP, raw IP, Cisco HDLC, PPP.

Each link type maps to one function in `LINKTYPES` (pcap LINKTYPE_* numbers),
which strips its header and hands the rest to the ethertype table. Counter
names are Suricata's (``decoder.ethernet``, ``decoder.sll``, ``decoder.null``,
``decoder.raw``, ``decoder.vlan``, ``decoder.vlan_qinq``).
"""

from __future__ import annotations

from netsentry.decode import events as ev
from netsentry.decode.context import DecodeContext
from netsentry.decode.packet import Packet
from netsentry.decode.pppoe import decode_ppp_protocol

ETH_HLEN = 14
SLL_HLEN = 16
SLL2_HLEN = 20
NULL_HLEN = 4
CHDLC_HLEN = 4    # address, control, 16-bit protocol (an ethertype)
VLAN_HLEN = 4
VLAN_MAX_LAYERS = 3   # as Suricata: a fourth tag raises vlan.too_many_layers

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_VLAN = 0x8100     # 802.1Q
ETHERTYPE_QINQ = 0x88A8     # 802.1ad
ETHERTYPE_QINQ_OLD = 0x9100
VLAN_ETHERTYPES = (ETHERTYPE_VLAN, ETHERTYPE_QINQ, ETHERTYPE_QINQ_OLD)

# BSD address families seen in NULL/LOOP headers (INET6 differs per OS)
_AF_INET = 2
_AF_INET6 = (10, 24, 28, 30)


def decode_ethernet(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    ctx.counts["ethernet"] += 1
    if end - off < ETH_HLEN:
        ctx.invalid(pkt, ev.ETHERNET_PKT_TOO_SMALL)
        return
    ctx.ethertype(pkt, data, off + ETH_HLEN, end, (data[off + 12] << 8) | data[off + 13])


def decode_vlan(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    counts = ctx.counts
    counts["vlan"] += 1
    layers = len(pkt.vlan)
    if layers == 1:
        counts["vlan_qinq"] += 1
    elif layers == 2:
        counts["vlan_qinqinq"] += 1
    if end - off < VLAN_HLEN:
        ctx.invalid(pkt, ev.VLAN_HEADER_TOO_SMALL)
        return
    if layers >= VLAN_MAX_LAYERS:
        ctx.invalid(pkt, ev.VLAN_TOO_MANY_LAYERS)
        return
    pkt.vlan = pkt.vlan + (((data[off] << 8) | data[off + 1]) & 0x0FFF,)
    etype = (data[off + 2] << 8) | data[off + 3]
    fn = ctx.ethertypes.get(etype)
    if fn is None:
        ctx.event(pkt, ev.VLAN_UNKNOWN_TYPE)
        return
    fn(ctx, pkt, data, off + VLAN_HLEN, end)


def decode_sll(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    ctx.counts["sll"] += 1
    if end - off < SLL_HLEN:
        ctx.invalid(pkt, ev.SLL_PKT_TOO_SMALL)
        return
    ctx.ethertype(pkt, data, off + SLL_HLEN, end, (data[off + 14] << 8) | data[off + 15])


def decode_sll2(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    # Suricata counts both cooked versions under decoder.sll and raises sll.pkt_too_small
    ctx.counts["sll"] += 1
    if end - off < SLL2_HLEN:
        ctx.invalid(pkt, ev.SLL_PKT_TOO_SMALL)
        return
    ctx.ethertype(pkt, data, off + SLL2_HLEN, end, (data[off] << 8) | data[off + 1])


def _decode_family(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int, family: int) -> None:
    if family == _AF_INET:
        ctx.ethertype(pkt, data, off + NULL_HLEN, end, ETHERTYPE_IPV4)
    elif family in _AF_INET6:
        ctx.ethertype(pkt, data, off + NULL_HLEN, end, ETHERTYPE_IPV6)
    else:
        ctx.invalid(pkt, ev.LTNULL_UNSUPPORTED_TYPE)


def decode_null(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    """LINKTYPE_NULL: the family is in the *capturing* host's byte order, so accept both."""
    ctx.counts["null"] += 1
    if end - off < NULL_HLEN:
        ctx.invalid(pkt, ev.LTNULL_PKT_TOO_SMALL)
        return
    family = int.from_bytes(data[off:off + 4], "little")
    if family > 0xFFFF:
        family = int.from_bytes(data[off:off + 4], "big")
    _decode_family(ctx, pkt, data, off, end, family)


def decode_loop(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    """LINKTYPE_LOOP (OpenBSD): the family is always big-endian."""
    ctx.counts["null"] += 1
    if end - off < NULL_HLEN:
        ctx.invalid(pkt, ev.LTNULL_PKT_TOO_SMALL)
        return
    _decode_family(ctx, pkt, data, off, end, int.from_bytes(data[off:off + 4], "big"))


def ip_by_version(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> bool:
    """Hand `data[off:end]` to IPv4 or IPv6 by its version nibble; False when it is neither
    (or empty). For layers that do not say what they carry (raw IP, MPLS)."""
    if off >= end:
        return False
    version = data[off] >> 4
    if version == 4:
        ctx.ethertype(pkt, data, off, end, ETHERTYPE_IPV4)
    elif version == 6:
        ctx.ethertype(pkt, data, off, end, ETHERTYPE_IPV6)
    else:
        return False
    return True


def decode_raw(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    """Raw IP (LINKTYPE_RAW 101, and the old DLT_RAW values 12/14): version nibble picks v4/v6."""
    ctx.counts["raw"] += 1
    if not ip_by_version(ctx, pkt, data, off, end):
        ctx.invalid(pkt, ev.IPRAW_INVALID_IPV)


def decode_chdlc(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    """LINKTYPE_C_HDLC (Cisco HDLC, serial links and some router captures)."""
    ctx.counts["chdlc"] += 1
    if end - off < CHDLC_HLEN:
        ctx.invalid(pkt, ev.CHDLC_PKT_TOO_SMALL)
        return
    ctx.ethertype(pkt, data, off + CHDLC_HLEN, end, (data[off + 2] << 8) | data[off + 3])


def decode_ppp(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    """LINKTYPE_PPP (9): PPP in HDLC-like framing (RFC 1662), as pppd and BSD serial and
    dial-up captures write it. The address and control bytes (0xff 0x03) are optional
    (address-and-control-field compression); as Suricata's DecodePPP, a first byte of
    0xff means they are there. Then the protocol field, 2 bytes or 1 (compressed):
    0x0021 IPv4, 0x0057 IPv6; control protocols pass, others raise ppp events."""
    if end - off >= 1 and data[off] == 0xFF:
        if end - off < 3:
            ctx.invalid(pkt, ev.PPP_PKT_TOO_SMALL)
            return
        off += 2
    decode_ppp_protocol(ctx, pkt, data, off, end)


def decode_ipv4_link(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    ctx.ethertype(pkt, data, off, end, ETHERTYPE_IPV4)


def decode_ipv6_link(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    ctx.ethertype(pkt, data, off, end, ETHERTYPE_IPV6)


LINKTYPE_ETHERNET = 1
LINKTYPES = {
    0: decode_null,           # LINKTYPE_NULL
    LINKTYPE_ETHERNET: decode_ethernet,
    9: decode_ppp,            # LINKTYPE_PPP
    12: decode_raw,           # DLT_RAW on most BSDs
    14: decode_raw,           # DLT_RAW on OpenBSD
    101: decode_raw,          # LINKTYPE_RAW
    104: decode_chdlc,        # LINKTYPE_C_HDLC
    108: decode_loop,         # LINKTYPE_LOOP
    113: decode_sll,          # LINKTYPE_LINUX_SLL
    228: decode_ipv4_link,    # LINKTYPE_IPV4
    229: decode_ipv6_link,    # LINKTYPE_IPV6
    276: decode_sll2,         # LINKTYPE_LINUX_SLL2
}

ETHERTYPES = {
    ETHERTYPE_VLAN: decode_vlan,
    ETHERTYPE_QINQ: decode_vlan,
    ETHERTYPE_QINQ_OLD: decode_vlan,
}
