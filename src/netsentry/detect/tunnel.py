"""The outer packets of a tunnelled frame, inspected before the inner one.

Why: Suricata decodes a tunnel (GRE, ERSPAN, IP-in-IP, IPv6-in-IP, VXLAN,
Geneve, Teredo) into a *tunnel packet* for the inner headers, but the frame's
own packet (the root, and each tunnel layer between it and the innermost one)
still goes through flow handling and detection: ``alert ip any any -> any
any`` alerts on a GRE packet with ``proto: "GRE"``, an IP-in-IP packet with
``proto: "IP-in-IP"`` and ``pkt_src: "wire/pcap"`` (suricata-verify
bug-6402-01, bug-7725-01), and ``ip_proto:47`` can match at all. netsentry's
decoder turns the frame's `Packet` into the innermost one (decode/gre.py,
ipip.py, udptunnel.py), so the layers are decoded again here, each one
stopping after `k` tunnels: the tunnel decoders stop at `MAX_TUNNEL_DEPTH`
and count from the context's `depth`, so starting at ``MAX_TUNNEL_DEPTH -
k`` gives layer `k` with every header field of its own (addresses, TTL,
ports, the payload after its GRE or UDP header) and, from layer 1 on, its
enclosing tunnel in ``tunnel`` (EVE's ``tunnel`` object and ``pkt_src``).

Flows as Suricata's decoders set them up: a layer that is UDP (the VXLAN,
Geneve, Teredo carrier) or an IP-in-IP / IPv6-in-IP packet gets a flow of its
own (decode-udp.c, decode-ipv4.c and decode-ipv6.c call FlowSetupPacket on
it); a GRE packet (ERSPAN too) gets none, so its ip-only rules match every
packet. Only tunnelled frames pay: one decode per outer layer.
"""

from __future__ import annotations

from typing import Any

from netsentry.decode import link
from netsentry.decode.context import MAX_TUNNEL_DEPTH
from netsentry.decode.decoder import Decoder, build_context
from netsentry.decode.packet import Packet

GRE = 47
# IP protocols whose layer packet is given no flow (Suricata's DecodeGRE sets up none)
NO_FLOW = frozenset({GRE})


class TunnelLayers:
    """Decodes the outer layers of a tunnelled frame (outermost first) with a context of
    its own, so the decoder's counters count each frame once."""

    def __init__(self, decoder: Decoder) -> None:
        self._ctx = build_context(decoder.checksums)
        self._ctx.udp_tunnels = getattr(decoder._ctx, "udp_tunnels", None)

    def layers(self, pkt: Packet) -> list[Packet]:
        """`pkt`'s outer packets, outermost first; [] when it is no tunnel's inner packet."""
        inner = pkt.tunnel
        if inner is None:
            return []
        fn = link.LINKTYPES.get(pkt.linktype)
        if fn is None:
            return []
        data = pkt.data
        ctx = self._ctx
        out: list[Packet] = []
        for k in range(MAX_TUNNEL_DEPTH):
            layer = Packet()
            layer.data = data
            if pkt.linktype != 1:
                layer.linktype = pkt.linktype
            ctx.depth = MAX_TUNNEL_DEPTH - k
            try:
                fn(ctx, layer, data, 0, len(data))
            except (IndexError, ValueError):     # pragma: no cover - the real decode took it
                break
            if k and layer.tunnel == inner or not layer.ip_version:
                break           # the innermost packet itself: the loop inspects that one
            layer.ts = pkt.ts
            layer.pcap_cnt = pkt.pcap_cnt
            layer.wirelen = pkt.wirelen
            out.append(layer)
        return out

    @staticmethod
    def wants_flow(layer: Packet) -> bool:
        return layer.proto not in NO_FLOW


def inspect_layers(layers: TunnelLayers, pkt: Packet, flow_update: Any, inspect: Any,
                   on_events: Any) -> None:
    """Flow and signature inspection of `pkt`'s outer layers; a layer's drop (IPS) drops
    the frame, as Suricata's tunnel verdict: root and tunnel packets share one."""
    outer = layers.layers(pkt)
    if len(outer) > 1:
        # nested tunnels: EVE's `tunnel` object names the root packet (the outermost
        # layer) and the nesting depth, as Suricata's AlertJsonTunnel (p->root,
        # recursion_level); pkt_src and the inner offset stay the innermost tunnel's
        root, inner = outer[0], pkt.tunnel
        pkt.tunnel = (root.src, root.dst, root.proto, root.sp, root.dp, inner[5], inner[6], len(outer))
    for layer in outer:
        flow = flow_update(layer) if layers.wants_flow(layer) else None
        events = inspect(layer, flow)
        if events:
            on_events(events, layer, flow, False)
        if layer.verdict is not None and pkt.verdict is None:
            # the frame's drop record (logged with its inner packet) names the rule
            pkt.verdict = layer.verdict
            pkt.drop_alert = layer.drop_alert
            pkt.drop_reason = layer.drop_reason
