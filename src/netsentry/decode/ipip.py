"""IP-in-IP tunnels: IPv4 or IPv6 carried directly in IPv4/IPv6 (protocols 4 and 41).

As with GRE, the inner packet is what the engines analyse and the outer
addresses go to ``pkt.tunnel = (outer src, outer dst, 4 or 41, 0, 0, pkt_src,
inner offset)`` (decode/udptunnel.py). Under an
IPv6 outer header Suricata raises ``ipv6.ipv4_in_ipv6_*`` /
``ipv6.ipv6_in_ipv6_*`` events for a too-short or wrong-version inner header;
under IPv4 the inner decoder's own events apply.
"""

from __future__ import annotations

from netsentry.decode import events as ev
from netsentry.decode.context import MAX_TUNNEL_DEPTH, DecodeContext
from netsentry.decode.packet import Packet

IPPROTO_IPIP = 4
IPPROTO_IPV6 = 41
_MIN_LEN = {IPPROTO_IPIP: 20, IPPROTO_IPV6: 40}
_VERSION = {IPPROTO_IPIP: 4, IPPROTO_IPV6: 6}
_ETHERTYPE = {IPPROTO_IPIP: 0x0800, IPPROTO_IPV6: 0x86DD}
# (inner protocol) -> (too small, wrong version) events under an IPv6 outer header
_V6_OUTER_EVENTS = {
    IPPROTO_IPIP: (ev.IPV4_IN_IPV6_PKT_TOO_SMALL, ev.IPV4_IN_IPV6_WRONG_IP_VER),
    IPPROTO_IPV6: (ev.IPV6_IN_IPV6_PKT_TOO_SMALL, ev.IPV6_IN_IPV6_WRONG_IP_VER),
}


def _decode(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int, proto: int) -> None:
    if ctx.depth >= MAX_TUNNEL_DEPTH:
        return
    if pkt.ip_version == 6:
        too_small, wrong_version = _V6_OUTER_EVENTS[proto]
        if end - off < _MIN_LEN[proto]:
            ctx.invalid(pkt, too_small)
            return
        if data[off] >> 4 != _VERSION[proto]:
            ctx.invalid(pkt, wrong_version)
            return
    # Suricata's decoder.ipv4_in_ipv6 / decoder.ipv6_in_ipv6, and the same pattern under IPv4
    inner = "ipv4" if proto == IPPROTO_IPIP else "ipv6"
    ctx.counts[f"{inner}_in_ipv{pkt.ip_version}"] += 1
    ctx.depth += 1
    pkt.tunnel = (pkt.src, pkt.dst, proto, 0, 0, "ipv4 tunnel" if pkt.ip_version == 4 else "ipv6 tunnel", off)
    pkt.ip6_exthdrs = ()
    ctx.ethertype(pkt, data, off, end, _ETHERTYPE[proto])


def decode_ipv4_in_ip(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    _decode(ctx, pkt, data, off, end, IPPROTO_IPIP)


def decode_ipv6_in_ip(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    _decode(ctx, pkt, data, off, end, IPPROTO_IPV6)
