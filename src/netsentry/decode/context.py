"""State shared by the protocol decoders of one `Decoder`.

The per-protocol modules are plain functions ``decode(ctx, pkt, data, off, end)``
that hand the rest of the frame to the next one through the registration
tables held here (ethertype -> decoder, IP protocol -> decoder), so adding a
protocol touches one module and one table entry, never an if-chain.

``end`` is where the current layer's bytes stop: the capture length at the
link layer, then the IP total length (so Ethernet padding is never taken for
payload).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable

from netsentry.decode.packet import Packet

LayerDecoder = Callable[["DecodeContext", Packet, bytes, int, int], None]

MAX_TUNNEL_DEPTH = 4   # GRE-in-GRE... beyond this the inner bytes are left undecoded
# Our own counters (reported as stats.netsentry.decoder.*, not Suricata's decoder.*)
EVENTS_OVERFLOW = "netsentry.events_overflow"          # decoder events beyond MAX_EVENTS in a packet
IPV6_EXTHDR_LIMIT = "netsentry.ipv6_exthdr_limit"      # packets whose extension-header walk was cut


class DecodeContext:
    def __init__(self, checksums: bool) -> None:
        self.checksums = checksums
        # counter name (without "decoder.") -> count; events are "event.<name>"
        self.counts: defaultdict[str, int] = defaultdict(int)
        self.ethertypes: dict[int, LayerDecoder] = {}
        self.ip_protos: dict[int, LayerDecoder] = {}
        self.depth = 0   # tunnel nesting of the packet being decoded
        # UDP tunnels by port (udptunnel.UdpTunnels), None: none enabled; `udp_seen`: the
        # last packet the layered UDP decoder judged (the fast path's packets never are)
        self.udp_tunnels: object = None
        self.udp_seen: object = None

    def event(self, pkt: Packet, name: str) -> None:
        """A decoder event that leaves the packet usable (e.g. a bad option). Counted
        only when kept (as Suricata counts the packet's stored events); past the
        per-packet cap it counts in EVENTS_OVERFLOW instead."""
        if pkt.add_event(name):
            self.counts["event." + name] += 1
        else:
            self.counts[EVENTS_OVERFLOW] += 1

    def invalid(self, pkt: Packet, name: str) -> None:
        """A decoder event that stops decoding: Suricata counts such packets in decoder.invalid."""
        self.event(pkt, name)
        self.counts["invalid"] += 1

    def ethertype(self, pkt: Packet, data: bytes, off: int, end: int, etype: int) -> None:
        fn = self.ethertypes.get(etype)
        if fn is not None:
            fn(self, pkt, data, off, end)

    def ip_proto(self, pkt: Packet, data: bytes, off: int, end: int, proto: int) -> None:
        fn = self.ip_protos.get(proto)
        if fn is not None:
            fn(self, pkt, data, off, end)
