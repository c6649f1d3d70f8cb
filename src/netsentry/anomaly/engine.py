"""The anomaly engine: cheap bookkeeping per packet, decisions once per second.

Per packet the engine does almost nothing: it checks whether packet time
has crossed into a new second, and whether this flow was already queued for
accounting in this second. Everything else happens

- once per flow (`Detector.on_new_flows`, called once per second with the
  flows that started in it: scan probes, new-connection counts, half-open
  SYNs, the traffic-spike scope); a DNS flow is marked at its first packet
  so its queries reach `dns.py`; and
- once per second of packet time per touched flow (`_account`): the
  difference of the flow table's own packet/byte counters since the last
  second becomes packets toward each address and traffic per host, which
  the detectors fold into their windows and baselines and judge
  (`Detector.on_tick`, `evaluate`).

Seconds, windows and baseline buckets are cut from packet time, so replaying
a capture gives byte-identical alerts whatever the machine's speed.

Findings pass de-duplication (one alert per detector kind and key per
``alert-interval``) and become EVE alert events; see `alerts.py`.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from netsentry.anomaly import dns as _dns  # noqa: F401  (registers detectors)
from netsentry.anomaly import flood as _flood  # noqa: F401
from netsentry.anomaly import scan as _scan  # noqa: F401
from netsentry.anomaly import settings, spike as _spike, state  # noqa: F401
from netsentry.anomaly.alerts import KINDS, Deduplicator, Finding, make_event
from netsentry.anomaly.baseline import BaselineTable
from netsentry.anomaly.detector import DETECTORS, Context, Detector, Tick
from netsentry.anomaly.flowstate import FlowState
from netsentry.anomaly.state import NotAStateFile, StateError
from netsentry.assets import AssetMap
from netsentry.config import ConfigError
from netsentry.decode.packet import Packet, ip_to_str
from netsentry.event import Event
from netsentry.flow.flow import Flow

TICK = 1.0          # seconds of packet time between evaluations
DNS_FLOW = -math.inf   # anomaly_due of a UDP/TCP 53 flow: every packet takes the slow path (its queries are parsed)


class AnomalyEngine:
    """Flow-rate anomaly detection; see docs/anomaly.md for the detectors and their keys."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        sec = settings.load(config)
        self.enabled = bool(sec.data.get("enabled", True))
        self.assets = AssetMap(config)
        crit = self.assets.criticality_of if self.assets else _no_criticality
        ctx = self.ctx = Context(sec, crit)
        base = sec.sub("baseline")
        ctx.baseline = BaselineTable("baseline", cap=ctx.cap, bucket=base.count("bucket"),
                                     half_life=base.positive("half-life"), warm_up=base.non_negative("warm-up"))
        spike_sec = sec.sub("traffic-spike")
        ctx.spike_scope = _spike.scope_of(config, spike_sec) if spike_sec.flag("enabled") else None
        self.dedup = Deduplicator(sec.positive("alert-interval"), ctx.table("alert-dedup"))
        self.block_ttl = float(sec.positive("block-ttl"))
        self.detectors: list[Detector] = []
        self.dns: Any = None
        self.spike_on = False
        for cls in dict.fromkeys(DETECTORS.values()):
            subs = [sec.sub(n) for n in cls.names]
            if not any(s.flag("enabled") for s in subs):
                continue
            det = cls(ctx, subs[0] if len(subs) == 1 else sec)
            self.detectors.append(det)
            if cls.name == "dns-query-flood":
                self.dns = det
            if cls.name == "traffic-spike":
                self.spike_on = True
                self._host_traffic = det.host_traffic()
        # called once per second with the flows that started in it (see _new_flows)
        self._new_flow_hooks = [d.on_new_flows for d in self.detectors if d.on_new_flows is not None]
        self._flow_end_hooks = [d.on_flow_end for d in self.detectors if hasattr(d, "on_flow_end")]
        self._touched: list[Any] = []
        self._new: list[Any] = []           # flows started in the second in progress, not yet hooked
        self._loose: dict[tuple[bytes, int], int] = {}
        # the host judge's second (hoststate.py): per-host sums merged from the workers
        # instead of touched flows; `_account` folds these when set
        self.folded: Folded | None = None
        self._tick = -1
        self._tick_end = -math.inf
        self._pcap_cnt = 0
        self._last_ts = 0.0
        self.alerts = 0
        self.alerts_by_kind: dict[str, int] = {}
        self.flows = 0
        self.misbehaving: dict[bytes, float] = {}
        self.state_file = sec.text("state-file")
        self.save_interval = float(sec.non_negative("state-save-interval"))
        self._next_save = math.inf
        self.state_loaded = 0
        self.state_errors = 0
        if self.state_file and self.enabled:
            self.load_state(self.state_file)

    # --- per packet (hot path) ------------------------------------------------------

    def inspect(self, pkt: Any, flow: Any) -> list[Event] | None:
        """Account one packet; alerts come out only when packet time crosses a second.

        A flow's ``anomaly_due`` is the end of the second in which it was last queued, so a
        packet of a flow already queued in this second is one attribute read and one
        compare (it also covers "has packet time entered a new second"): most packets
        return here. The capture loop makes that compare itself and calls `inspect_due`
        only for the others (a call per packet saved)."""
        if flow is not None and pkt.ts < flow.anomaly_due:
            return None
        return self._inspect(pkt, flow)

    def _inspect(self, pkt: Packet, flow: Flow | None) -> list[Event] | None:
        # typed (engine.pxd): the packet's, the flow's and the flow state's fields are
        # struct members in the compiled build
        st: FlowState
        events = self._advance(pkt) if pkt.ts >= self._tick_end else None
        if flow is None:
            if pkt.ip_version:
                k = (pkt.dst, pkt.proto)
                self._loose[k] = self._loose.get(k, 0) + 1
            return events
        st = flow.anomaly
        if st is None:
            # The first packet (inlined: once per flow, ~220,000 flows in the bench capture).
            # The detectors see new flows once per second, in one call each (_new_flows); what
            # they need of the first packet is its TCP flags or ICMP type (FlowState.first).
            proto = flow.proto
            flow.anomaly = FlowState(self._tick, pkt.tcp_flags if proto == 6 else pkt.icmp_type)
            self._touched.append(flow)
            self._new.append(flow)
            if flow.server_port == 53 and (proto == 17 or proto == 6) and self.dns is not None:
                flow.anomaly_due = DNS_FLOW     # every packet comes here, queries are parsed
                if pkt.to_server:
                    self.dns.on_query(pkt)
            else:
                flow.anomaly_due = self._tick_end
        elif flow.anomaly_due == DNS_FLOW:
            tick = self._tick
            if st.queued != tick:
                st.queued = tick
                self._touched.append(flow)
            if pkt.to_server:
                self.dns.on_query(pkt)
        elif flow.anomaly_due != self._tick_end:
            flow.anomaly_due = self._tick_end
            self._touched.append(flow)
        return events

    def fold_from_workers(self) -> None:
        """This engine is fed per-host sums folded by worker processes (`folded`; the host
        judge, hoststate.py): drop the new-flow hooks that only serve the per-flow
        accounting, which the workers do (traffic-spike's scope of each flow)."""
        self._new_flow_hooks = [d.on_new_flows for d in self.detectors
                                if d.on_new_flows is not None and not d.accounting_hook]

    # The capture loop's entry: called for a packet without a flow, or with
    # ``pkt.ts >= flow.anomaly_due`` (the loop has already made `inspect`'s test).
    inspect_due = _inspect

    def _new_flows(self) -> None:
        """Hand the flows started since the last call to the detectors, in first-packet order.
        Batched per second: one call per detector instead of one per flow and detector
        (2,200 new flows/s on the bench capture)."""
        new = self._new
        self._new = []
        self.flows += len(new)
        for hook in self._new_flow_hooks:
            hook(new)

    def on_flow_end(self, flow: Any) -> None:
        st: FlowState = flow.anomaly
        if st is None:
            return
        if st.queued == self._tick and self._new:
            # may have started in this second and not been hooked yet (evicted, or the end of
            # the input): hook the pending flows first, so it is counted and then released
            self._new_flows()
        if st.flags:
            for hook in self._flow_end_hooks:
                hook(flow, st)

    # --- once per second of packet time -------------------------------------------------

    def _advance(self, pkt: Any) -> list[Event] | None:
        ts = pkt.ts
        events = None
        self._pcap_cnt = pkt.pcap_cnt
        if self._tick >= 0:
            events = self._evaluate(ts, pkt.pcap_cnt)
        self._tick = int(ts // TICK)
        self._tick_end = (self._tick + 1) * TICK
        for det in self.detectors:
            det.roll(ts)
        self._last_ts = ts
        if ts >= self._next_save:
            self._autosave(ts)
        elif self._next_save == math.inf and self.state_file and self.save_interval:
            self._next_save = ts + self.save_interval
        return events

    def _evaluate(self, next_ts: float, pcap_cnt: int) -> list[Event] | None:
        if self._new:
            self._new_flows()
        tick = self._account(next_ts)
        for det in self.detectors:
            det.on_tick(tick)
        findings: list[Finding] = []
        for det in self.detectors:
            det.evaluate(self._tick_end, findings)
        return self._report(findings, self._tick_end, pcap_cnt) if findings else None

    def _account(self, next_ts: float) -> Tick:
        """Fold the counters of the flows touched in the closing second into per-address sums.

        Real flows only (the judge's seconds come `folded`): the flow's and its FlowState's
        fields are struct members in the compiled build (engine.pxd).
        """
        flow: Flow
        st: FlowState
        tick = Tick(start=self._tick * TICK, next_start=next_ts)
        touched = self._touched
        self._touched = []
        pin = tick.pkts_in
        folded = self.folded
        if folded is not None:
            self.folded = None
            self._fold_loose(pin)
            return folded.into(tick, self._host_traffic if self.spike_on else None)
        self._fold_loose(pin)
        flagged = tick.flagged
        last_proto = -1
        m: dict[bytes, int] = {}
        if self.spike_on:
            ht = self._host_traffic
        for flow in touched:
            st = flow.anomaly
            a = flow.pkts_toserver
            b = flow.pkts_toclient
            dts = a - st.pts
            dtc = b - st.ptc
            st.pts = a
            st.ptc = b
            st.dpts = dts
            st.dptc = dtc
            # per-protocol maps keyed by address: no tuple key allocated per flow; the map of
            # the previous flow's protocol is reused (consecutive flows mostly share one)
            proto = flow.proto
            if proto != last_proto:
                last_proto = proto
                m = pin.get(proto)
                if m is None:
                    m = pin[proto] = {}
            if dts:
                h = flow.server
                m[h] = m.get(h, 0) + dts
            if dtc:
                h = flow.client
                m[h] = m.get(h, 0) + dtc
            scope = st.scope                # 0 unless traffic-spike baselines an end
            if scope:
                c = flow.bytes_toserver
                d = flow.bytes_toclient
                db = c - st.bts + d - st.btc
                st.bts = c
                st.btc = d
                v = db << 32 | (dts + dtc)      # bytes and packets in one int: see spike.host_traffic
                if scope & 1:                   # SCOPE_CLIENT
                    h = flow.client
                    ht[h] = ht.get(h, 0) + v
                if scope & 2:                   # SCOPE_SERVER
                    h = flow.server
                    ht[h] = ht.get(h, 0) + v
            if st.flags:
                flagged.append(flow)
        tick.touched = touched
        return tick

    def _fold_loose(self, pin: dict[int, dict[bytes, int]]) -> None:
        """Packets without a flow, per destination: into the second's per-protocol maps first
        (as one process does before the touched flows), and traffic-spike's hosts."""
        if self._loose:
            for (addr, proto), n in self._loose.items():
                m = pin.get(proto)
                if m is None:
                    m = pin[proto] = {}
                m[addr] = m.get(addr, 0) + n
            if self.spike_on:
                ht = self._host_traffic
                in_scope = self.ctx.spike_scope
                for (addr, _), n in self._loose.items():
                    if in_scope is None or in_scope(addr):
                        ht[addr] = ht.get(addr, 0) + n
            self._loose = {}

    def _report(self, findings: list[Finding], ts: float, pcap_cnt: int) -> list[Event] | None:
        events = []
        admit = self.dedup.admit
        for f in findings:
            repeats = admit(f.kind, f.key, ts)
            if f.actor is not None:
                bad = self.misbehaving
                bad.pop(f.actor, None)          # re-insert: oldest first, for the cap below
                if len(bad) >= self.ctx.cap:
                    del bad[next(iter(bad))]
                bad[f.actor] = ts
            if repeats is None:
                continue
            events.append(make_event(f, ts, pcap_cnt, repeats))
            self.alerts += 1
            self.alerts_by_kind[f.kind] = self.alerts_by_kind.get(f.kind, 0) + 1
        return events or None

    def tick(self, now: float) -> list[Event] | None:
        """Live mode: wall-clock `now` with no packet (a quiet link). Closes the second
        in progress when `now` has passed it, as the next packet would have."""
        if self._tick < 0 or now < self._tick_end:
            return None
        return self._advance(_Clock(now, self._pcap_cnt))

    def flush(self, now: float | None = None) -> list[Event] | None:
        """Judge the second in progress (end of a replay, or shutdown): windows and
        floods are evaluated; a baseline bucket closes only if it was complete."""
        if self._tick < 0:
            return None
        return self._evaluate(self._tick_end, self._pcap_cnt)

    def close(self) -> list[Event] | None:
        """End of input: `flush`, then save the baselines if ``anomaly.state-file`` is set."""
        events = self.flush()
        if self.state_file and self.enabled:
            try:
                self.save_state()
            except OSError as exc:
                self.state_errors += 1
                _warn("cannot save anomaly state", path=self.state_file, reason=exc.strerror or str(exc))
            except StateError as exc:       # the path now holds something not ours: left alone
                self.state_errors += 1
                _warn("cannot save anomaly state", path=self.state_file, reason=exc.reason)
        return events

    # --- outputs for other stages ------------------------------------------------------------

    def misbehaving_sources(self, now: float | None = None) -> set[bytes]:
        """Packed source addresses with a scan, sweep, burst or DNS alert in the last ``block-ttl`` s."""
        if now is None:
            now = self._last_ts
        ttl = self.block_ttl
        stale = [a for a, t in self.misbehaving.items() if now - t >= ttl]
        for a in stale:
            del self.misbehaving[a]
        return set(self.misbehaving)

    def stats(self) -> dict[str, int]:
        tables = self.ctx.tables + [self.ctx.baseline.table]
        out = {
            "anomaly.alerts": self.alerts,
            "anomaly.suppressed": self.dedup.suppressed,
            "anomaly.flows": self.flows + len(self._new),
            "anomaly.tracked_keys": sum(len(t) for t in tables),
            "anomaly.keys_evicted": sum(t.evicted for t in tables),
            "anomaly.baseline_keys": len(self.ctx.baseline),
            "anomaly.state_loaded": self.state_loaded,
            "anomaly.state_errors": self.state_errors,
        }
        for kind in KINDS:
            out[f"anomaly.detector.{kind.replace('-', '_')}"] = self.alerts_by_kind.get(kind, 0)
        for det in self.detectors:
            out.update(det.stats())
        return out

    # --- state file -----------------------------------------------------------------------------

    def save_state(self, path: str | Path | None = None) -> None:
        """Write the learned baselines atomically to `path` (default: ``anomaly.state-file``)."""
        path = path or self.state_file
        if not path:
            raise ValueError("save_state: no path given and anomaly.state-file is not set")
        bl = self.ctx.baseline
        rows = [[ip_to_str(k), *e] for k, e in bl.rows()]
        state.save(path, {"saved_at": self._last_ts, "bucket": bl.bucket, "half_life": bl.half_life,
                          "metrics": bl.metrics, "baselines": rows})

    def load_state(self, path: str | Path | None = None, *, strict: bool = False) -> bool:
        """Load baselines saved by `save_state`. True when loaded; False for no file.

        A damaged or incompatible file raises `StateError` when `strict`;
        otherwise it is logged as a warning, moved aside to ``<name>.corrupt``,
        counted in ``anomaly.state_errors``, and the engine starts fresh.
        """
        path = path or self.state_file
        try:
            doc = state.load(path)
            if doc is None:
                return False
            rows = self._check_state(doc, path)
        except NotAStateFile as exc:
            if strict:
                raise
            # never ours to move aside or overwrite: a configuration error (exit 2)
            raise ConfigError(f"{exc.path} {exc.reason}; refusing to use or replace it",
                              key="anomaly.state-file") from None
        except StateError as exc:
            if strict:
                raise
            self.state_errors += 1
            moved = state.set_aside(path)
            _warn("anomaly state file unusable, starting with fresh baselines",
                  path=str(path), reason=exc.reason, moved_to=str(moved) if moved else None)
            return False
        bl = self.ctx.baseline
        bl.table.clear()
        for key, entry in rows:
            bl.table.insert(key, entry)
        self.state_loaded = 1
        return True

    def _check_state(self, doc: dict[str, Any], path: str | Path) -> list[tuple[bytes, tuple]]:
        bl = self.ctx.baseline
        bucket = doc.get("bucket")
        if bucket != bl.bucket:
            shown = f"{bucket:g}" if isinstance(bucket, (int, float)) else repr(bucket)
            raise StateError(path, f"learned with {shown}-second buckets, "
                                   f"anomaly.baseline.bucket is {bl.bucket:g}")
        if doc.get("metrics") != bl.metrics:
            raise StateError(path, f"has {doc.get('metrics')!r} metrics per key, expected {bl.metrics}")
        rows = doc.get("baselines")
        if not isinstance(rows, list):
            raise StateError(path, "no 'baselines' list")
        width = 3 + 2 * bl.metrics
        out = []
        for i, row in enumerate(rows):
            if (not isinstance(row, list) or len(row) != width + 1 or not isinstance(row[0], str)
                    or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
                               for x in row[1:])):
                raise StateError(path, f"baselines[{i}]: expected [address, {width} numbers], got {row!r:.80}")
            try:
                key = ipaddress.ip_address(row[0]).packed
            except ValueError:
                raise StateError(path, f"baselines[{i}]: invalid address {row[0]!r}") from None
            out.append((key, (int(row[1]), int(row[2]), int(row[3]), *row[4:])))
        return out

    def _autosave(self, ts: float) -> None:
        self._next_save = ts + self.save_interval
        try:
            self.save_state()
        except OSError as exc:
            self.state_errors += 1
            _warn("cannot save anomaly state", path=self.state_file, reason=exc.strerror or str(exc))
        except StateError as exc:
            self.state_errors += 1
            _warn("cannot save anomaly state", path=self.state_file, reason=exc.reason)


class Folded:
    """One second's traffic as per-host sums merged from worker processes (the host judge,
    hoststate.py), for `_account` to put into the Tick instead of folding touched flows.

    `pin`: ``(key, proto, address, packets)`` rows and `hosts`: ``(key, address,
    bytes << 32 | packets)`` rows, both in the order one process would first have
    inserted each key; `flagged`: stand-in flows whose per-flow decision is pending
    (the engine keeps those with FlowState.flags set); `touched`: an iterable of the
    second's flows for the detectors that name peers (read only when one fires)."""

    __slots__ = ("pin", "hosts", "flagged", "touched")

    def __init__(self, pin: list[tuple], hosts: list[tuple], flagged: list[Any], touched: Any) -> None:
        self.pin = pin
        self.hosts = hosts
        self.flagged = flagged
        self.touched = touched

    def into(self, tick: Tick, host_traffic: dict[bytes, int] | None) -> Tick:
        pin = tick.pkts_in
        last_proto = -1
        m: dict[bytes, int] = {}
        for _, proto, addr, n in self.pin:
            if proto != last_proto:
                last_proto = proto
                m = pin.get(proto)
                if m is None:
                    m = pin[proto] = {}
            m[addr] = m.get(addr, 0) + n
        if host_traffic is not None:
            ht = host_traffic
            for _, addr, v in self.hosts:
                ht[addr] = ht.get(addr, 0) + v
        tick.flagged = [f for f in self.flagged if f.anomaly.flags]
        tick.touched = self.touched
        return tick


def _no_criticality(addr: bytes) -> None:
    return None


def _warn(msg: str, **kw: Any) -> None:
    from netsentry.log import get_logger
    get_logger().warning(msg, **kw)


class _Clock:
    """What `_advance` reads of a packet, for `tick` (once a second, not per packet)."""

    __slots__ = ("ts", "pcap_cnt")

    def __init__(self, ts: float, pcap_cnt: int) -> None:
        self.ts = ts
        self.pcap_cnt = pcap_cnt
