"""PPPoE (RFC 2516): discovery (ethertype 0x8863) and session (0x8864) frames.

DSL and some fibre access links carry every packet of a subscriber in a PPPoE
session; a capture taken there is all 0x8864 frames, so without this decoder
nothing in it would be inspected. A session frame is a 6-byte PPPoE header
(version/type 0x11, code 0, session id, payload length) and a PPP protocol
field, 2 bytes, or 1 when its first octet has the low bit set (RFC 1661
protocol-field compression). IPv4 (0x0021) and IPv6 (0x0057) go on to the IP
decoders; known PPP control and compressed protocols raise ppp.unsup_proto,
anything else ppp.wrong_type, as Suricata's decode-pppoe.c does. Discovery
frames carry no IP: their code and tags are checked and counted.
"""

from __future__ import annotations

from netsentry.decode import events as ev
from netsentry.decode.context import DecodeContext
from netsentry.decode.packet import Packet

ETHERTYPE_PPPOE_DISCOVERY = 0x8863
ETHERTYPE_PPPOE_SESSION = 0x8864

HEADER_LEN = 6
TAG_HEADER_LEN = 4
PPP_IPV4 = 0x0021
PPP_IPV6 = 0x0057
DISCOVERY_CODES = frozenset((0x09, 0x07, 0x19, 0x65, 0xA7))     # PADI PADO PADR PADS PADT

# As Suricata's DecodePPPOESession: the link and network control protocols a PPP
# session carries all the time (LCP, IPCP, IPV6CP, PAP, CHAP, CCP, LQM, CBCP,
# compressed datagram, CDPCP) are valid and raise nothing; other network
# protocols (IPX, AppleTalk, VJ-compressed TCP/IP, MPLS, their control
# protocols, ...) raise ppp.unsup_proto; anything else is ppp.wrong_type.
# (ppp.unsup_proto used to be raised for the control protocols too: found by
# suricata-verify's pppoe test once decode-event rules could see it.)
PPP_CONTROL = frozenset((0x8021, 0x8057, 0xC021, 0xC023, 0xC223, 0x80FD, 0xC025, 0xC029, 0x00FD, 0x8207))
UNSUPPORTED_PPP = frozenset((
    0x002D, 0x002B, 0x0023, 0x0025, 0x0027, 0x0029, 0x0031, 0x0033, 0x0035, 0x0201, 0x0231, 0x0233,
    0x0281, 0x0283, 0x8023, 0x8025, 0x8027, 0x8029, 0x802B, 0x8033, 0x8035, 0x8281,
    0x002F,   # VJ uncompressed TCP/IP: Suricata decodes it; netsentry does not yet
))

_ETHERTYPE = {PPP_IPV4: (0x0800, 20, ev.PPP_IPV4_PKT_TOO_SMALL), PPP_IPV6: (0x86DD, 40, ev.PPP_IPV6_PKT_TOO_SMALL)}


def decode_session(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    ctx.counts["pppoe"] += 1
    if end - off < HEADER_LEN + 1:
        ctx.invalid(pkt, ev.PPPOE_PKT_TOO_SMALL)
        return
    if data[off + 1] != 0:
        ctx.invalid(pkt, ev.PPPOE_WRONG_CODE)
        return
    length = (data[off + 4] << 8) | data[off + 5]
    end = min(end, off + HEADER_LEN + length)       # Ethernet padding is not payload
    decode_ppp_protocol(ctx, pkt, data, off + HEADER_LEN, end)


def decode_ppp_protocol(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    """A PPP frame from its protocol field on (RFC 1661): the IP it carries goes on to the
    IP decoders. Shared by PPPoE sessions and the PPP link type (decode/link.py)."""
    if off >= end:
        ctx.invalid(pkt, ev.PPP_PKT_TOO_SMALL)
        return
    if data[off] & 0x01:                             # compressed 1-byte protocol field
        proto, off = data[off], off + 1
    else:
        if end - off < 2:
            ctx.invalid(pkt, ev.PPP_PKT_TOO_SMALL)
            return
        proto, off = (data[off] << 8) | data[off + 1], off + 2
    ctx.counts["ppp"] += 1
    inner = _ETHERTYPE.get(proto)
    if inner is None:
        if proto in PPP_CONTROL:
            return
        if proto in UNSUPPORTED_PPP:
            ctx.event(pkt, ev.PPP_UNSUP_PROTO)
        else:
            ctx.invalid(pkt, ev.PPP_WRONG_TYPE)     # Suricata: ENGINE_SET_INVALID_EVENT
        return
    ethertype, min_len, too_small = inner
    if end - off < min_len:
        ctx.invalid(pkt, too_small)
        return
    ctx.ethertype(pkt, data, off, end, ethertype)


def decode_discovery(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    ctx.counts["pppoe"] += 1
    if end - off < HEADER_LEN:
        ctx.invalid(pkt, ev.PPPOE_PKT_TOO_SMALL)
        return
    if data[off + 1] not in DISCOVERY_CODES:
        ctx.event(pkt, ev.PPPOE_WRONG_CODE)
        return
    length = (data[off + 4] << 8) | data[off + 5]
    pos, stop = off + HEADER_LEN, off + HEADER_LEN + length
    if stop > end:
        ctx.event(pkt, ev.PPPOE_MALFORMED_TAGS)
        return
    while pos < stop:                                # each tag: type, length, value
        if stop - pos < TAG_HEADER_LEN:
            ctx.event(pkt, ev.PPPOE_MALFORMED_TAGS)
            return
        pos += TAG_HEADER_LEN + ((data[pos + 2] << 8) | data[pos + 3])
    if pos > stop:
        ctx.event(pkt, ev.PPPOE_MALFORMED_TAGS)


ETHERTYPES = {ETHERTYPE_PPPOE_DISCOVERY: decode_discovery, ETHERTYPE_PPPOE_SESSION: decode_session}
