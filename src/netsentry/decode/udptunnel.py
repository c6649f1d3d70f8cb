"""Tunnels carried in UDP: VXLAN (RFC 7348), Geneve (RFC 8926) and Teredo (RFC 4380).

Overlay networks (VXLAN between hypervisors, Geneve in cloud fabrics, Teredo
on hosts without native IPv6) put whole frames or IPv6 packets in UDP
datagrams; a sensor on the underlay sees only UDP to port 4789/6081/3544
unless it looks inside. As Suricata's decode-vxlan.c / decode-geneve.c /
decode-teredo.c, each decoder is tried on a UDP packet whose port is one of
its configured ports (`decoder.<name>.ports`; VXLAN by destination port,
Geneve and Teredo by either port), in Suricata's order (Teredo, Geneve,
VXLAN), and a datagram that does not look like the tunnel stays plain UDP.

As with GRE and IP-in-IP, the inner packet is what the engines analyse: the
outer addresses and ports go to ``pkt.tunnel = (outer src, outer dst, 17,
outer sport, outer dport, pkt_src, inner offset)`` (EVE's ``tunnel`` object,
the ``pkt_src`` Suricata gives the packet the decoder made, and where the
inner packet starts: an alert's ``packet`` is the inner packet, link type
RAW, as Suricata logs a tunnel packet), then the inner frame is decoded over
the same `Packet` fields. A frame whose inner protocol carries no IP (ARP)
is counted and left as the outer UDP packet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from netsentry.config import ConfigError
from netsentry.decode import events as ev
from netsentry.decode.context import MAX_TUNNEL_DEPTH, DecodeContext
from netsentry.decode.packet import Packet

VXLAN_PORT, GENEVE_PORT, TEREDO_PORT = 4789, 6081, 3544
VXLAN_HLEN = 8
GENEVE_HLEN = 8
ETH_HLEN = 14
IPV6_HLEN = 40
TEREDO_ORIGIN_LEN = 8

# inner Ethernet types that carry IP: the packet becomes the inner one
_IP_ETHERTYPES = frozenset({0x0800, 0x86DD, 0x8100, 0x88A8, 0x9100})
_ARP = 0x0806
_TEB = 0x6558             # Geneve's "transparent Ethernet bridging"

# a tunnel decoder: (ctx, pkt, data, payload offset, end) -> True when it took the datagram
TunnelDecoder = Callable[[DecodeContext, Packet, bytes, int, int], bool]


def _enter(ctx: DecodeContext, pkt: Packet, name: str, inner_off: int) -> None:
    """The packet becomes the tunnel's inner packet from `inner_off` on."""
    ctx.depth += 1
    pkt.tunnel = (pkt.src, pkt.dst, 17, pkt.sp, pkt.dp, name, inner_off)
    # the inner headers decide these again; the outer transport fields must not leak inward
    pkt.sp = pkt.dp = 0
    pkt.l4_off = -1
    pkt.payload_off = 0
    pkt.payload_len = 0
    pkt.ip6_exthdrs = ()


def decode_vxlan(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> bool:
    """VXLAN: 8-byte header (I flag set, the rest reserved and zero: Suricata's default
    strict check), then an Ethernet frame."""
    if end - off < VXLAN_HLEN + ETH_HLEN or not data[off] & 0x08:
        return False
    if data[off] & 0xF7 or data[off + 1] or data[off + 2] or data[off + 3] or data[off + 7]:
        return False
    ctx.counts["vxlan"] += 1
    inner = off + VXLAN_HLEN
    etype = (data[inner + 12] << 8) | data[inner + 13]
    if etype == _ARP:
        # Suricata 9 decodes the ARP frame a VXLAN carries as the tunnel's inner packet
        # (the `arp` rule protocol sees it, pkt_src "vxlan encapsulation"): a non-IP packet
        _enter(ctx, pkt, "vxlan encapsulation", inner)
        pkt.ip_version = 0
        pkt.proto = 0
        ctx.ethertypes[_TEB](ctx, pkt, data, inner, end)
        return True
    if etype not in _IP_ETHERTYPES:
        ctx.invalid(pkt, ev.VXLAN_UNKNOWN_PAYLOAD_TYPE)
        return True
    _enter(ctx, pkt, "vxlan encapsulation", inner)
    ctx.ethertypes[_TEB](ctx, pkt, data, inner, end)
    return True


def _geneve_options_ok(data: bytes, off: int, opt_len: int) -> bool:
    """The options fill exactly the length the header declares."""
    cur, stop = off, off + opt_len
    while cur < stop:
        if stop - cur < 4:
            return False
        cur += 4 + ((data[cur + 3] & 0x1F) << 2)
    return cur == stop


def decode_geneve(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> bool:
    """Geneve: 8-byte header (version 0, reserved bits zero), options, then the protocol
    its ethertype field names (Ethernet, IPv4, IPv6)."""
    if end - off < GENEVE_HLEN:
        return False
    opt_len = (data[off] & 0x3F) << 2
    hlen = GENEVE_HLEN + opt_len
    if end - off < hlen or data[off] >> 6 != 0 or data[off + 1] & 0x3F or data[off + 7]:
        return False
    if not _geneve_options_ok(data, off + GENEVE_HLEN, opt_len):
        return False
    ctx.counts["geneve"] += 1
    etype = (data[off + 2] << 8) | data[off + 3]
    inner = off + hlen
    if etype == _ARP:
        return True
    fn = ctx.ethertypes.get(etype) if etype in (0x0800, 0x86DD, _TEB) else None
    if fn is None:
        ctx.invalid(pkt, ev.GENEVE_UNKNOWN_PAYLOAD_TYPE)
        return True
    _enter(ctx, pkt, "geneve encapsulation", inner)
    fn(ctx, pkt, data, inner, end)
    return True


def decode_teredo(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> bool:
    """Teredo: an IPv6 packet, perhaps behind an origin indication; nothing in the
    datagram says "Teredo", so as Suricata only a packet that is exactly one plausible
    IPv6 packet (version 6, hop limit not 0, its length filling the datagram) is taken."""
    start = off
    if end - start < IPV6_HLEN:
        return False
    if data[start] == 0:
        if data[start + 1] != 0 or end - start < TEREDO_ORIGIN_LEN + IPV6_HLEN:
            return False        # authentication (not a tunnelled packet) or nonsense
        start += TEREDO_ORIGIN_LEN
    if data[start] >> 4 != 6 or data[start + 7] == 0:
        return False
    plen = (data[start + 4] << 8) | data[start + 5]
    if data[start + 6] == 0 and plen < 8:
        return False
    if end - start != IPV6_HLEN + plen:
        return False
    ctx.counts["teredo"] += 1
    _enter(ctx, pkt, "teredo tunnel", start)
    ctx.ethertype(pkt, data, start, end, 0x86DD)
    return True


class UdpTunnels:
    """Which tunnel decoders a UDP packet's ports select, in Suricata's order."""

    __slots__ = ("by_dport", "by_sport", "anywhere", "ports")

    def __init__(self) -> None:
        self.by_dport: dict[int, list[TunnelDecoder]] = {}
        self.by_sport: dict[int, list[TunnelDecoder]] = {}
        self.anywhere: list[TunnelDecoder] = []      # ports "any"
        self.ports: frozenset[int] = frozenset()

    def add(self, ports: Iterable[int] | None, fn: TunnelDecoder, either: bool) -> None:
        if ports is None:
            self.anywhere.append(fn)
            return
        for port in ports:
            self.by_dport.setdefault(port, []).append(fn)
            if either:
                self.by_sport.setdefault(port, []).append(fn)
        self.ports = frozenset(self.by_dport)

    def wants(self, sp: int, dp: int) -> bool:
        """Might a UDP packet with these ports be a tunnel? (the cheap test first)"""
        return dp in self.by_dport or sp in self.by_sport or bool(self.anywhere)

    def decode(self, ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> bool:
        """Try the decoders the ports select; True when one took the datagram."""
        if ctx.depth >= MAX_TUNNEL_DEPTH:
            return False
        fns = set(self.by_dport.get(pkt.dp, ()))
        fns.update(self.by_sport.get(pkt.sp, ()))
        fns.update(self.anywhere)
        for fn in sorted(fns, key=_ORDER.__getitem__):
            if fn(ctx, pkt, data, off, end):
                return True
        return False


_ORDER = {decode_teredo: 0, decode_geneve: 1, decode_vxlan: 2}
# (config name, decoder, default ports, matched on either port)
TUNNELS: tuple[tuple[str, TunnelDecoder, str, bool], ...] = (
    ("teredo", decode_teredo, str(TEREDO_PORT), True),
    ("geneve", decode_geneve, str(GENEVE_PORT), True),
    ("vxlan", decode_vxlan, str(VXLAN_PORT), False),
)


def parse_ports(value: Any, key: str) -> list[int] | None:
    """`decoder.<name>.ports`: a port, a list, or Suricata's text ("4789", "[4789, 8472]",
    "any"); None means any port. Raises ConfigError naming the key on anything else."""
    if isinstance(value, bool):
        raise ConfigError(f"expected a port or a list of ports, got {value!r}", key=key)
    if isinstance(value, int):
        items: list[Any] = [value]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, str):
        text = value.strip()
        if text == "any":
            return None
        items = [x.strip() for x in text.strip("[]").split(",") if x.strip()]
    else:
        raise ConfigError(f"expected a port or a list of ports, got {value!r}", key=key)
    out = []
    for item in items:
        try:
            port = int(item)
        except (TypeError, ValueError):
            raise ConfigError(f"{item!r} is not a port number", key=key) from None
        if not 0 <= port <= 65535:
            raise ConfigError(f"{port} is not a port number (0-65535)", key=key)
        out.append(port)
    return out


def build(config: Mapping[str, Any] | None) -> UdpTunnels | None:
    """The UDP tunnel table `decoder.{vxlan,geneve,teredo}.{enabled,ports}` ask for (all
    enabled by default, as Suricata), or None when every one is off."""
    table = UdpTunnels()
    any_on = False
    for name, fn, default_ports, either in TUNNELS:
        sec = (config or {}).get(name) if isinstance(config, Mapping) else None
        sec = sec if isinstance(sec, Mapping) else {}
        enabled = sec.get("enabled", True)
        if enabled is not True and enabled is not False:
            raise ConfigError(f"expected true or false, got {enabled!r}", key=f"decoder.{name}.enabled")
        if not enabled:
            continue
        ports = parse_ports(sec.get("ports", default_ports), f"decoder.{name}.ports")
        table.add(ports, fn, either)         # None ("any"): tried on every UDP packet
        any_on = True
    return table if any_on else None
