"""Packet header sticky buffers: ether.hdr, ipv4.hdr, ipv6.hdr, tcp.hdr, udp.hdr, icmpv4.hdr, icmpv6.hdr.

As Suricata's detect-<proto>hdr.c: each keyword makes the following payload
keywords (content, pcre, byte_*, isdataat, bsize) inspect the raw bytes of
one header of the packet (the innermost, when tunnelled), options included:

- ether.hdr: the 14-byte Ethernet header (of the inner frame when a tunnel
  carries Ethernet, as VXLAN does); its rule also meets non-IP frames, as
  Suricata's DETECT_PROTO_ETHERNET
- ipv4.hdr: the IPv4 header, IHL * 4 bytes
- ipv6.hdr: the IPv6 header and its extension headers
- tcp.hdr: the TCP header, data offset * 4 bytes
- udp.hdr: the 8-byte UDP header
- icmpv4.hdr: the 8-byte ICMP header, plus the timestamps of a (reply to a)
  timestamp request and the address list of a router advertisement
- icmpv6.hdr: the 8-byte ICMPv6 header

A packet without that header, or whose capture ends inside it, has no such
buffer and the rule does not match it. The buffers are packet-only (Suricata
sets SIG_FLAG_REQUIRE_PACKET), and `tcp.hdr`/`udp.hdr`/`icmpv6.hdr` refuse a
rule whose protocol cannot carry them, as Suricata does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from netsentry.rules.buffers import register_buffer
from netsentry.rules.errors import RuleError
from netsentry.rules.registry import RuleBuilder, keyword

if TYPE_CHECKING:  # pragma: no cover
    from netsentry.decode.packet import Packet
    from netsentry.flow.flow import Flow

_ICMP_TIMESTAMP_TYPES = (13, 14)
_ICMP_ROUTER_ADVERT = 9
_ICMP_TIMESTAMP_LEN = 12


_LINKTYPE_ETHERNET = 1
_ETH_HLEN = 14
_ETHERTYPE_ARP = 0x0806


def ether_off(pkt: Packet) -> int:
    """Where the packet's (innermost) Ethernet header starts, -1 when it has none.

    Outside a tunnel, an Ethernet capture's frame starts with it. A tunnel packet's
    inner frame (``pkt.tunnel[6]`` on) is Ethernet when a header stands between
    it and the inner IP header (VXLAN, Geneve or GRE bridging Ethernet), or when
    it is the ARP frame itself."""
    data = pkt.data
    tun = pkt.tunnel
    if tun is None:
        if pkt.linktype != _LINKTYPE_ETHERNET or len(data) < _ETH_HLEN:
            return -1
        return 0
    inner = tun[6]
    if pkt.ip_version and pkt.ip_off - inner >= _ETH_HLEN:
        return inner
    arp_off = getattr(pkt, "arp_off", -1)
    if arp_off - inner >= _ETH_HLEN:
        return inner
    return -1


def _ether_hdr(pkt: Packet, flow: Flow | None) -> bytes | None:
    off = ether_off(pkt)
    return None if off < 0 else pkt.data[off:off + _ETH_HLEN]


def _ipv4_hdr(pkt: Packet, flow: Flow | None) -> bytes | None:
    off = pkt.ip_off
    if pkt.ip_version != 4 or off < 0:
        return None
    end = off + pkt.ip_hlen
    data = pkt.data
    return data[off:end] if end <= len(data) else None


def _ipv6_hdr(pkt: Packet, flow: Flow | None) -> bytes | None:
    off = pkt.ip_off
    if pkt.ip_version != 6 or off < 0:
        return None
    end = off + pkt.ip_hlen
    data = pkt.data
    return data[off:end] if end <= len(data) else None


def _l4(proto: int, length: Callable[[Packet, int], int]) -> Callable[[Packet, Flow | None], bytes | None]:
    def getter(pkt: Packet, flow: Flow | None) -> bytes | None:
        off = pkt.l4_off
        if pkt.proto != proto or off < 0:
            return None
        data = pkt.data
        end = off + length(pkt, off)
        return data[off:end] if end <= len(data) else None
    return getter


def _icmpv4_len(pkt: Packet, off: int) -> int:
    t = pkt.icmp_type
    data = pkt.data
    if t in _ICMP_TIMESTAMP_TYPES and off + 8 + _ICMP_TIMESTAMP_LEN <= len(data):
        return 8 + _ICMP_TIMESTAMP_LEN
    if t == _ICMP_ROUTER_ADVERT and off + 6 <= len(data):
        advert = data[off + 4] * data[off + 5] * 4       # entries x entry size (32-bit words)
        if off + 8 + advert <= len(data):
            return 8 + advert
    return 8


register_buffer("ether.hdr", _ether_hdr)
register_buffer("ipv4.hdr", _ipv4_hdr)
register_buffer("ipv6.hdr", _ipv6_hdr)
register_buffer("tcp.hdr", _l4(6, lambda pkt, off: pkt.tcp_hlen))
register_buffer("udp.hdr", _l4(17, lambda pkt, off: 8))
register_buffer("icmpv4.hdr", _l4(1, _icmpv4_len))
register_buffer("igmp.hdr", _l4(2, lambda pkt, off: pkt.igmp[2] if getattr(pkt, "igmp", None) else 8))
register_buffer("icmpv6.hdr", _l4(58, lambda pkt, off: 8))

# buffer -> IP protocol numbers its rule's protocol must be able to carry (None: any)
_NEEDS_PROTO: dict[str, tuple[int, ...] | None] = {
    "ether.hdr": None, "ipv4.hdr": None, "ipv6.hdr": None, "tcp.hdr": (6,), "udp.hdr": (17,),
    "icmpv4.hdr": (1,), "icmpv6.hdr": (58,), "igmp.hdr": (2,),
}


def _setup(name: str) -> Callable[[RuleBuilder, str | None], None]:
    def setup(b: RuleBuilder, arg: str | None) -> None:
        want = _NEEDS_PROTO[name]
        protos = b.sig.ip_protos
        if want is not None and protos is not None and not set(want) & set(protos):
            raise RuleError(f"{name}: rule protocol '{b.sig.proto}' has no {name.split('.')[0]} header")
        if name in ("ipv4.hdr", "ipv6.hdr") and b.sig.proto in ("ipv4", "ipv6") and b.sig.proto != name[:4]:
            raise RuleError(f"{name}: rule protocol '{b.sig.proto}' has no {name.split('.')[0]} header")
        b.set_buffer(name)
        b.sig.pkt_only = True
    return setup


for _name in _NEEDS_PROTO:
    keyword(_name, value="none", help=f"{_name}; sticky buffer: the packet's raw {_name[:-4]} header")(_setup(_name))

