"""Floods toward one destination, and bursts of new connections from one source.

- ``syn-flood``: a gauge of half-open TCP connections per destination: +1
  when a flow starts with a bare SYN, -1 when the handshake completes, the
  flow is reset/closed, or the flow ends (timeout or eviction). Unlike a
  SYN *rate*, the gauge ignores busy servers whose clients complete their
  handshakes, and catches a slow flood that keeps a backlog full.
- ``icmp-flood`` / ``udp-flood`` / ``packet-flood`` (any protocol): packets
  received by one address per second over a tumbling window. Counted from
  the per-second flow deltas the engine folds (never per packet); see
  `_FloodKind` for how a window is summed without a counter per address.
- ``new-connections``: flows opened by one source per second over a window
  (counted at each flow's first packet). UDP/53 flows are left to
  ``dns-query-flood``: stub resolvers use a new source port per query.

Top talkers for a flood are the sources that sent the most packets toward
the victim in the second that crossed the threshold.
"""

from __future__ import annotations

from typing import Any

from netsentry.anomaly.alerts import Finding
from netsentry.anomaly.detector import FLAG_HALF_OPEN, FLAG_UNLISTED, Context, Detector, Tick, register
from netsentry.anomaly.flowstate import FlowState
from netsentry.anomaly.settings import Section
from netsentry.anomaly.window import TumblingWindow, top_items
from netsentry.decode.packet import ip_to_str

SYN, ACK = 0x02, 0x10
SOURCES_CAP = 1024         # sources listed per destination: bounds memory under a spoofed flood
HALF_OPEN_STATES = frozenset({"none", "new", "syn_sent", "syn_recv"})
TOP = 5


def _talkers(counts: dict[bytes, int], n: int) -> list[dict[str, Any]]:
    return [{"ip": ip_to_str(a), "packets": c} for a, c in top_items(counts, n)]


@register("syn-flood")
class SynFlood(Detector):
    def __init__(self, ctx: Context, sec: Section) -> None:
        super().__init__(ctx, sec)
        self.half_open = sec.count("half-open")
        self.top = sec.count("top-sources")
        self.min_half_open = max(1, int(self.half_open * ctx.min_factor))
        # dst -> [half-open total, {src: half-open}]: one dict probe per SYN for both; a
        # destination with one half-open connection holds just its source (bytes): nearly
        # every SYN of a busy link is the only one toward its server at that moment, and a
        # list and a dict per SYN were most of this detector's cost (bench_anomaly phases)
        self.gauge = ctx.table("syn-flood")
        self.candidates: dict[bytes, int] = {}

    def on_new_flows(self, flows: list[Any]) -> None:
        st: FlowState
        table = self.gauge
        data = table.data
        cap = table.cap
        candidates = self.candidates
        min_half_open = self.min_half_open
        for flow in flows:
            st = flow.anomaly
            if flow.proto != 6 or st.first & (SYN | ACK) != SYN:     # not a bare SYN
                continue
            dst, src = flow.server, flow.client
            g = data.get(dst)
            if g is None:
                if len(data) < cap:
                    data[dst] = src
                else:
                    table.insert(dst, src)
                st.flags |= FLAG_HALF_OPEN
                if 1 >= min_half_open:
                    candidates[dst] = 1
                continue
            if g.__class__ is bytes:
                g = data[dst] = [1, {g: 1}]
            srcs = g[1]
            n = srcs.get(src)
            if n is not None:
                srcs[src] = n + 1
            elif len(srcs) < SOURCES_CAP:
                srcs[src] = 1
            else:
                st.flags |= FLAG_UNLISTED   # counted in the total only
            total = g[0] = g[0] + 1
            st.flags |= FLAG_HALF_OPEN
            if total >= min_half_open:
                candidates[dst] = total

    def _release(self, flow: Any, st: FlowState) -> None:
        unlisted = st.flags & FLAG_UNLISTED
        st.flags &= ~(FLAG_HALF_OPEN | FLAG_UNLISTED)
        dst = flow.server
        data = self.gauge.data
        g = data.get(dst)
        if g is None:               # evicted from the table meanwhile
            return
        if g.__class__ is bytes:    # one half-open connection: this one (or, if the entry was
            del data[dst]           # evicted and made again, a total of 1 - 1 all the same)
            return
        if not unlisted:
            srcs = g[1]
            src = flow.client
            n = srcs.get(src, 0) - 1
            if n > 0:
                srcs[src] = n
            else:
                srcs.pop(src, None)
        total = g[0] - 1
        if total > 0:
            g[0] = total
        else:
            del data[dst]

    def on_tick(self, tick: Tick) -> None:
        st: FlowState
        release = self._release
        for flow in tick.flagged:
            st = flow.anomaly
            if st.flags & FLAG_HALF_OPEN and flow.tcp_state not in HALF_OPEN_STATES:
                release(flow, st)

    def on_flow_end(self, flow: Any, st: FlowState) -> None:
        if st.flags & FLAG_HALF_OPEN:
            self._release(flow, st)

    def evaluate(self, now: float, out: list[Finding]) -> None:
        if not self.candidates:
            return
        for dst in self.candidates:
            g = self.gauge.data.get(dst)
            if g is None:
                total, srcs = 0, {}
            elif g.__class__ is bytes:
                total, srcs = 1, {g: 1}
            else:
                total, srcs = g[0], g[1]
            threshold = self.half_open * self.ctx.factor(dst)
            if total < threshold:
                continue
            top = _talkers(srcs, self.top)
            src = top_items(srcs, 1)[0][0] if srcs else dst
            out.append(Finding(
                kind="syn-flood", detector=self.name, key=ip_to_str(dst), src=src, dst=dst, proto=6,
                evidence={"observed": total, "unit": "half-open connections", "threshold": threshold,
                          "half_open": total, "distinct_sources": len(srcs),
                          "sources_capped": len(srcs) >= SOURCES_CAP,
                          "top_sources": [{"ip": t["ip"], "half_open": t["packets"]} for t in top]}))
        self.candidates.clear()


class _FloodKind:
    """One packet-flood detector: its protocols, window, threshold and the watch list.

    The window is kept as the per-second maps of its seconds (the engine's
    ``pkts_in`` per protocol), not as a running count per address: per second
    each address costs one comparison. An address whose window total reaches
    ``min_count`` must have received at least min_count / window / P packets in
    one second (P: protocols in that second; the pigeonhole principle), so
    only addresses over that bar are *watched*, and only watched addresses are
    summed over the window: exact, and ~5x cheaper per address than a running
    count per address (bench_anomaly).
    """

    __slots__ = ("kind", "enabled", "window", "rate", "min_count", "protos", "clock", "seconds", "watch")

    def __init__(self, kind: str, sec: Section, min_factor: float, protos: tuple[int, ...] | None) -> None:
        self.kind = kind
        self.enabled = sec.flag("enabled")
        self.window = sec.count("window")
        self.rate = float(sec.positive("rate"))
        self.min_count = max(1, int(self.rate * self.window * min_factor))
        self.protos = protos
        self.clock = TumblingWindow(self.window)
        self.seconds: list[list[dict[bytes, int]]] = []     # per second of this window: its maps
        self.watch: dict[bytes, bool] = {}                   # insertion-ordered: reproducible


@register("icmp-flood", "udp-flood", "packet-flood")
class PacketFloods(Detector):
    """Packets toward a destination: ICMP, UDP and any protocol, from the per-second maps."""

    def __init__(self, ctx: Context, sec: Section) -> None:
        super().__init__(ctx, sec)
        kinds = [_FloodKind("icmp-flood", sec.sub("icmp-flood"), ctx.min_factor, (1, 58)),
                 _FloodKind("udp-flood", sec.sub("udp-flood"), ctx.min_factor, (17,)),
                 _FloodKind("packet-flood", sec.sub("packet-flood"), ctx.min_factor, None)]
        self.kinds = [k for k in kinds if k.enabled]
        self.candidates: dict[tuple[bytes, str], tuple[_FloodKind, int, float]] = {}
        self.touched: list[Any] = []
        self.watched = 0

    def on_tick(self, tick: Tick) -> None:
        pin = tick.pkts_in
        cands = self.candidates
        for kind in self.kinds:
            if kind.protos is None:
                maps = list(pin.values())
            else:
                maps = [pin[p] for p in kind.protos if p in pin]
            kind.seconds.append(maps)
            if not maps:
                continue
            bar = kind.min_count / kind.window / len(maps)
            watch = kind.watch
            for m in maps:
                for addr, n in m.items():
                    if n >= bar:
                        watch[addr] = True
            if len(watch) > self.ctx.cap:                 # bounded like every key table
                for addr in list(watch)[:len(watch) - self.ctx.cap]:
                    del watch[addr]
            for addr in watch:
                total = 0
                for second in kind.seconds:
                    for m in second:
                        total += m.get(addr, 0)
                if total >= kind.min_count:
                    cands[(addr, kind.kind)] = (kind, total, kind.clock.length)
        if cands:
            self.touched = tick.touched

    def evaluate(self, now: float, out: list[Finding]) -> None:
        if not self.candidates:
            return
        victims = {addr for addr, _ in self.candidates}
        talkers: dict[bytes, dict[bytes, int]] = {}
        protos: dict[tuple[bytes, bytes], int] = {}
        for flow in self.touched:
            st = flow.anomaly
            for receiver, sender, n in ((flow.server, flow.client, st.dpts), (flow.client, flow.server, st.dptc)):
                if n and receiver in victims:
                    d = talkers.setdefault(receiver, {})
                    d[sender] = d.get(sender, 0) + n
                    protos[(receiver, sender)] = flow.proto
        for (addr, name), (kind, count, window) in self.candidates.items():
            threshold = kind.rate * self.ctx.factor(addr)
            rate = count / window
            if rate < threshold:
                continue
            srcs = talkers.get(addr, {})
            top = top_items(srcs, TOP)
            src = top[0][0] if top else addr
            proto = {"icmp-flood": 1 if len(addr) == 4 else 58, "udp-flood": 17}.get(name)
            if proto is None:
                proto = protos.get((addr, src), 0)
            out.append(Finding(
                kind=name, detector=kind.kind, key=ip_to_str(addr), src=src, dst=addr, proto=proto,
                evidence={"observed": round(rate, 3), "unit": "packets/s", "threshold": threshold,
                          "window": float(window), "packets": count, "top_sources": _talkers(dict(top), TOP),
                          "distinct_sources_last_second": len(srcs)}))
        self.candidates.clear()
        self.touched = []

    def roll(self, ts: float) -> None:
        for kind in self.kinds:
            if kind.clock.roll(ts):
                kind.seconds.clear()
                kind.watch.clear()

    def stats(self) -> dict[str, int]:
        return {"anomaly.flood.watched": sum(len(k.watch) for k in self.kinds)}


@register("new-connections")
class NewConnections(Detector):
    def __init__(self, ctx: Context, sec: Section) -> None:
        super().__init__(ctx, sec)
        self.window = TumblingWindow(sec.count("window"))
        self.rate = float(sec.positive("rate"))
        self.min_count = max(1, int(self.rate * self.window.length * ctx.min_factor))
        self.detail_from = max(2, self.min_count // 4)
        self.table = ctx.table("new-connections")   # src -> flows, or [flows, destinations, alerted]
        self.candidates: dict[bytes, list] = {}

    def on_new_flows(self, flows: list[Any]) -> None:
        table = self.table
        data = table.data
        cap = table.cap
        ctx = self.ctx
        ignore_any = ctx.ignore_any     # read once, not per new key (Context is a plain object)
        candidates = self.candidates
        detail_from = self.detail_from
        min_count = self.min_count
        for flow in flows:
            if flow.server_port == 53 and flow.proto == 17:
                continue            # a stub resolver opens a flow per query: dns-query-flood's business
            src = flow.client
            v = data.get(src)
            if v is None:
                if ignore_any and ctx.ignored(src):
                    continue
                if len(data) < cap:
                    data[src] = 1
                else:
                    table.insert(src, 1)
                continue
            if v.__class__ is int:
                # A plain count until a source gets busy (no containers for the many quiet ones);
                # destinations are recorded from then on, for the evidence.
                v += 1
                if v < detail_from:
                    data[src] = v
                    continue
                v = data[src] = [v - 1, {}, False]      # [flows, destinations, alerted]
            v[0] += 1
            dsts = v[1]
            if len(dsts) < 64:           # enough for the evidence's top destinations
                k = (flow.server, flow.server_port, flow.proto)
                dsts[k] = dsts.get(k, 0) + 1
            if v[0] >= min_count and not v[2]:
                candidates[src] = v

    def evaluate(self, now: float, out: list[Finding]) -> None:
        if not self.candidates:
            return
        for src, v in self.candidates.items():
            count = v[0]
            threshold = self.rate * self.ctx.factor(src)
            rate = count / self.window.length
            if rate < threshold:
                continue
            v[2] = True
            top = top_items(v[1], TOP)
            (dst, dport, proto), _ = top[0] if top else ((src, 0, 0), 0)
            out.append(Finding(
                kind="new-connections", detector=self.name, key=ip_to_str(src), src=src, dst=dst,
                proto=proto, dp=dport, actor=src,
                evidence={"observed": round(rate, 3), "unit": "new flows/s", "threshold": threshold,
                          "window": self.window.length, "flows": count,
                          "top_destinations": [{"ip": ip_to_str(d), "port": p, "flows": c}
                                               for (d, p, _), c in top]}))
        self.candidates.clear()

    def roll(self, ts: float) -> None:
        if self.window.roll(ts):
            self.table.clear()
            self.candidates.clear()
