"""Host-keyed state across worker processes: workers observe, one process judges.

With ``--workers N`` each worker is a whole Sensor on the host *pairs* it owns
(workers.py). State keyed by one host across many peers (a sweep, a flood
from spoofed sources, a ``threshold ... track by_src`` over many targets,
``hostbits``) would be split over the workers. No shard key fixes that (the
detectors keyed by source and by destination want opposite keys), so the
decisions that need it move to one place, the parent's `HostJudge`, and the
workers forward what those decisions read:

- **Anomaly engine.** A worker runs `ObservingEngine` (anomaly/observer.py)
  instead of the engine: the same per-packet bookkeeping (a flow is queued
  once per second of packet time, DNS queries are picked out, packets without
  a flow counted per destination) and, at each second's end, the engine's own
  fold of the touched flows, done *per host*: packets received per (protocol,
  address) and traffic-spike's bytes/packets per in-scope host, sums that add
  up across workers. Per flow it sends only what a detector decides per flow:
  new flows (scan, sweep, new-connection and SYN-gauge keys need each flow's
  first packet), and the counters and end of a bare-SYN flow while its
  half-open release or "completed handshake" is pending; the touched flows'
  peers (flood top talkers, spike peers) go as one pickled blob the judge
  opens only in a second in which a flood or a spike fires. The parent runs
  the one real `AnomalyEngine` (`fold_from_workers`), with stand-in flows
  (`ProxyFlow`) for the new and pending ones and the merged sums as the
  second's `Folded` tick, so detectors, alert de-duplication
  (``anomaly.alert-interval``), the baselines and the state file are those of
  one process. Cost: per flow per second in the workers, per host and per
  new flow in the judge, never per packet.
- **Rules decided by host state.** A rule with a threshold, detection_filter
  or rate_filter tracked ``by_src``, ``by_dst`` or ``by_rule``, or with any
  ``hostbits``/``xbits`` operation, is *deferred*: the worker evaluates the
  rest of the rule, records its bit tests (assumed true) and bit operations,
  renders the alert line as its eve-log would write it, and forwards the
  candidate; it writes nothing itself. The parent replays candidates in
  capture order (``pcap_cnt``), tests and sets the bits in one store, counts
  the thresholds in one table, and writes the lines that pass. These rules
  are rare, so the per-match message is cheap.

Ordering. In replay every worker reads every record header (ShareSource), so
all workers cut packet time into the same seconds at the same packet: the
first record whose time reaches the second's end, whoever owns it. A worker
closes its second there and sends one message per second even when it had
no packets in it. The parent handles second k when every worker's message k
is in, merging rows by ``pcap_cnt``; so the engine sees new flows, flow
ends, DNS queries and touched flows in the order one process sees them, and
a candidate of packet 200 is decided after every candidate of packet 199
from any worker. docs/architecture.md ("Host-keyed state") lists what stays
approximate.

Messages (`HostMsg`, pickled tuples on the worker's result pipe, before its
final reply dict)::

    ("tick", worker, seq, closed, next_ts, closer_cnt, batch)
        second `closed` (int(ts // 1); -1 for the first message, which only
        starts the clock) ended at packet time `next_ts`, at the packet numbered
        `closer_cnt` in the whole capture. `seq` counts the worker's messages.
    ("end", worker, batch)
        the worker's input is over (after its shutdown flow flush).

    batch = (new, ends, dns, loose, agg, cands), lists of tuples; each row of
    new/ends/dns starts with ``key = cnt * 4 + ROW_*`` (cnt: the packet's number),
    so the judge merges the workers' rows by one sort on that key:
      new     (key, lid, proto, client, server, client_port, server_port, first)
              a flow's first packet (`first`: its TCP flags, or ICMP type);
              `lid` numbers the worker's flows, unique across workers (worker
              i numbers them i, i + LID_STEP, ...); -1 when no per-flow
              decision is pending for it (the judge keeps no stand-in)
      ends    (key, lid)                    a pending flow ended (at packet cnt)
      dns     (key, src, dst, proto, msg)   a DNS query's message bytes (<= 600)
      loose   (dst, proto, packets)         packets without a flow, per destination
      agg     () or (pin, hosts, flagged, talk): the touched flows folded per host,
              see `ObservingEngine.take` (flat lists, and talk pickled)
      cands   (cnt, seq, num, ts, src, dst, sp, dp, flow_id, tests, ops, line)
              a deferred rule's match: `num` its place in the engine's evaluation
              order, `tests` [(key, name, want)], `ops` [(cmd, key, name,
              expire_at)], `line` the EVE alert line (None for noalert rules)

Entry points for a runtime (replay here, the live runtime in workers_live.py):
`HostJudge.feed(msg)` for each message as it arrives, `HostJudge.tick(now)`
(live: handle seconds some worker has not reported within `LIVE_GRACE`
seconds of wall clock), `HostJudge.worker_gone(i)`, and `HostJudge.close()`;
live also `worker_started(i)` (a restarted worker) and, on a rule reload,
`prepare_rules(config, ruleset)` then `switched(i, seq)` per worker (each
worker's candidates are decided by the set that numbered them). Worker side:
`attach_worker(sensor, config, ruleset, i, source, send_bytes)` after the
Sensor is built (`source.pcap_cnt`, if the source has one, numbers packets
across the capture; a live worker's packets are numbered by that worker
alone, so with ``HostJudge.live`` candidates merge by packet time and the
engine's rows are ordered per second only), then `link.tick(now)` about once
a second (Sensor.tick reaches it through the observer when the anomaly
engine is on) and `link.close()` after `Sensor.finish`; a reloaded engine
gets `defer_engine_rules(sensor, engine, link)` before it is swapped in.
"""

from __future__ import annotations

import gc
import math
import operator
import pickle
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from typing import Any

from netsentry.anomaly.observer import (DNS_FLOW, DNS_MSG_MAX, FLAGGED_WIDTH, LID_STEP, PEND_HALF_OPEN,  # noqa: F401
                                        PEND_SYN_PROBE, ROW_DNS, ROW_END, ROW_NEW, ObservingEngine)
from netsentry.anomaly.flowstate import FlowState
from netsentry.config import get

TICK = 1.0                 # the anomaly engine's second (anomaly/engine.py TICK)
HOST_TRACKS = frozenset(("by_src", "by_dst", "by_rule"))
LIVE_GRACE = 2.0           # live: a second is judged this long after its end even if a worker is silent

HostMsg = tuple


# --- which rules need the judge -----------------------------------------------------------


def engine_order(config: Mapping[str, Any], ruleset: Any) -> list[Any]:
    """The packet rules in the signature engine's evaluation order (its rule numbers)."""
    from netsentry.detect.actions import evaluation_order
    from netsentry.detect.engine import detect_settings
    sigs = getattr(ruleset, "signatures", None) or []
    _, action_order, _ = detect_settings(config)
    return evaluation_order([s for s in sigs if not s.tx_rule], action_order)


def _xbit_ops(sig: Any) -> list[Any]:
    return [fn.xbit for fn in (*sig.packet_checks, *sig.post_actions) if getattr(fn, "xbit", None)]


def deferred_rules(sigs: list[Any], thresholds: Any) -> set[int]:
    """Rule numbers decided by host-keyed state: host-tracked thresholds, or any bits."""
    return {num for num, s in enumerate(sigs) if thresholds.tracks(num) & HOST_TRACKS or _xbit_ops(s)}


def _threshold_state(config: Mapping[str, Any], sigs: list[Any]) -> Any:
    from netsentry.detect.threshold import ThresholdState, read_threshold_file
    entries: list[Any] = list(get(config, "threshold", []) or [])
    threshold_file = get(config, "threshold-file", "") or ""
    if threshold_file:
        entries += read_threshold_file(threshold_file)
    return ThresholdState(sigs, entries, get(config, "vars.address-groups", {}) or {})


def needed(config: Mapping[str, Any], ruleset: Any) -> bool:
    """Does a run of this configuration and ruleset keep host-keyed state (and so need a judge)?"""
    if get(config, "anomaly.enabled", False):
        return True
    sigs = engine_order(config, ruleset)
    return bool(sigs) and bool(deferred_rules(sigs, _threshold_state(config, sigs)))


# --- the worker side ------------------------------------------------------------------------


class WorkerLink:
    """A worker's end of the judge: one batch per second of packet time, sent at its end.

    `advance(ts, cnt)` is called when packet time reaches `tick_end`: by the
    observer for the worker's own packets (after the flow table saw the
    packet, as the engine closes a second), by ShareSource for the others'."""

    def __init__(self, index: int, send_bytes: Callable[[bytes], None], source: Any) -> None:
        self.index = index
        self._send_bytes = send_bytes
        self.source = source
        self.seq = 0
        self.second = -1            # the second in progress (-1: the clock has not started)
        self.tick_end = -math.inf
        self.observer: ObservingEngine | None = None
        self.own_closes = True        # no observer: ShareSource closes seconds at own packets too
        self.cand_seq = 0
        self.new: list[tuple] = []
        self.ends: list[tuple] = []
        self.dns: list[tuple] = []
        self.cands: list[tuple] = []
        self.messages = 0
        self.bytes = 0
        self.rows = 0
        self.cpu = 0.0          # process time building, pickling and sending the batches
        self.closed = False

    def advance(self, ts: float, cnt: int) -> None:
        t0 = time.process_time()
        self._send(("tick", self.index, self.seq, self.second, ts, cnt, self._take()))
        self.cpu += time.process_time() - t0
        self.seq += 1
        self.second = int(ts // TICK)
        self.tick_end = (self.second + 1) * TICK
        if self.observer is not None:
            self.observer.rolled(self.second, self.tick_end)

    def close(self) -> None:
        """The worker's input is over (after its shutdown flush): the last batch, once."""
        if not self.closed:
            self.closed = True
            self._send(("end", self.index, self._take()))

    def tick(self, now: float) -> None:
        """Live: wall clock `now` with no packet ends the second as a packet would
        (the live runtime calls it about once a second, like Sensor.tick)."""
        if now >= self.tick_end and self.second >= 0:
            self.advance(now, getattr(self.source, "pcap_cnt", 0))

    def _take(self) -> tuple:
        obs = self.observer
        loose: list[tuple] = []
        agg: tuple = ()
        if obs is not None:
            loose, agg = obs.take()
        batch = (self.new, self.ends, self.dns, loose, agg, self.cands)
        self.rows += (len(self.new) + len(self.ends) + len(self.dns) + len(loose)
                      + (len(agg[0]) // 4 + len(agg[1]) // 3 + len(agg[2]) // FLAGGED_WIDTH if agg else 0)
                      + len(self.cands))
        self.new, self.ends, self.dns, self.cands = [], [], [], []
        return batch

    def _send(self, msg: HostMsg) -> None:
        data = pickle.dumps(msg, pickle.HIGHEST_PROTOCOL)
        self.messages += 1
        self.bytes += len(data)
        self._send_bytes(data)

    def stats(self) -> dict[str, int]:
        """IPC volume (summed over workers in the merged stats record)."""
        return {"hoststate.messages": self.messages, "hoststate.bytes": self.bytes,
                "hoststate.rows": self.rows, "hoststate.send_cpu_ms": int(self.cpu * 1000)}


def verdict_is_local(thresholds: Any, sig: Any, num: int) -> bool:
    """Does deferred rule `num`'s *action* (drop, reject, pass) come out the same whatever the
    host state across workers, so that a worker can apply it inline, before the judge?

    A match applies its action unless the threshold check says NO_MATCH (detect/engine.py
    `_apply`). `threshold: type limit` and `type backoff` never say NO_MATCH (only ALERT
    or SILENT: the count decides the alert, not the action), nor does a suppression; a
    `detection_filter`, `type threshold`/`both` and a `rate_filter` (which changes the
    action by count) do, and so do hostbits/xbits tests (isset/isnotset: whether the rule
    matches at all). Bit operations alone (set/unset/toggle) do not. Suricata has one
    host table for every thread, so its verdict is always inline; this is the part of
    that a worker can reproduce exactly (docs/architecture.md, "Host-keyed state")."""
    filters = getattr(thresholds, "_filter", {})
    limits = getattr(thresholds, "_threshold", {})
    if num in filters or thresholds.has_rate_filter(num):
        return False
    thr = limits.get(num)
    if thr is not None and thr.kind not in ("limit", "backoff"):
        return False
    return not any(op.cmd in ("isset", "isnotset") for op in _xbit_ops(sig))


class ForwardingThresholds:
    """Worker side of deferred rules: stands in for the engine's ThresholdState.

    Rules not deferred go to the real state unchanged; a deferred rule's
    match becomes a candidate for the judge and NO_MATCH here (the worker
    neither alerts nor applies an action for it) -- except, in IPS mode, a
    rule whose action does not depend on host state (`verdict_is_local`):
    then the worker applies its drop/reject/pass at once (SILENT: the action,
    no alert) and the judge still decides its alert."""

    def __init__(self, inner: Any, sigs: list[Any], deferred: set[int], link: WorkerLink,
                 render: Callable[[Any], bytes | None], ips: bool, engine: Any = None) -> None:
        from netsentry.rules.keywords.xbits import TRACK_KEYS
        self._inner = inner
        self._sigs = sigs
        self._deferred = deferred
        self._link = link
        self._render = render
        self._ips = ips
        self._engine = engine
        self._pending: list[tuple] = []
        # IPS: the deferred rules whose verdict the worker gives inline (see verdict_is_local)
        self._inline = {num for num in deferred if verdict_is_local(inner, sigs[num], num)} if ips else set()
        self.inline_verdicts = 0
        for num in deferred:
            s = sigs[num]
            s.packet_checks = tuple(self._wrap(num, fn, TRACK_KEYS) for fn in s.packet_checks)
            s.post_actions = tuple(self._wrap(num, fn, TRACK_KEYS) for fn in s.post_actions)

    def _wrap(self, num: int, fn: Any, keys: Mapping[str, Callable[[Any], Any]]) -> Any:
        op = getattr(fn, "xbit", None)
        if op is None:
            return fn
        key_of = keys[op.track]
        pending = self._pending
        name, cmd, expire = op.name, op.cmd, op.expire
        if cmd in ("isset", "isnotset"):
            want = cmd == "isset"

            def test(pkt: Any, flow: Any) -> bool:
                pending.append((num, pkt.pcap_cnt, None, key_of(pkt), name, want))
                return True             # the judge decides, in capture order
            return test

        def act(pkt: Any, flow: Any) -> None:
            pending.append((num, pkt.pcap_cnt, cmd, key_of(pkt), name, pkt.ts + expire))
        return act

    def check(self, num: int, pkt: Any, flow: Any) -> int:
        if num not in self._deferred:
            return self._inner.check(num, pkt, flow)
        from netsentry.detect.actions import alert_action
        from netsentry.detect.threshold import NO_MATCH
        from netsentry.event import Alert, Event
        cnt = pkt.pcap_cnt
        tests, ops = [], []
        for e in self._pending:
            if e[0] == num and e[1] == cnt:
                if e[2] is None:
                    tests.append((e[3], e[4], e[5]))
                else:
                    ops.append((e[2], e[3], e[4], e[5]))
        self._pending.clear()
        s = self._sigs[num]
        line = None
        if not s.noalert:
            alert = Alert(s.sid, s.msg, s.gid, s.rev, s.class_description, s.severity,
                          alert_action(s.action, self._ips), s.metadata or None,
                          references=s.reference_urls or None)
            line = self._render(Event("alert", pkt.ts, pkt, flow, alert))
        link = self._link
        link.cand_seq += 1
        link.cands.append((cnt, link.cand_seq, num, pkt.ts, pkt.src, pkt.dst, pkt.sp, pkt.dp,
                           flow.flow_id if flow is not None else None, tests, ops, line))
        if num in self._inline and s.action != "alert":
            from netsentry.detect.threshold import SILENT
            self.inline_verdicts += 1
            if self._engine is not None:
                self._engine.stats_suppressed -= 1     # SILENT counts one; the judge counts the alert's fate
            return SILENT                               # the engine applies the action, writes no alert
        return NO_MATCH

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)       # rate_action, stats, expire, applies, ...


def eve_renderer(outputs: list[Any], assets: Any) -> Callable[[Any], bytes | None]:
    """The alert line the worker's eve-log would write for an event (with its options:
    payload, community id, sensor name, pcap file name), written nowhere.

    The EveLog's write function is swapped for the call (its count put back): eve.py
    has no render-without-write entry, and this keeps it unchanged."""
    eve = next((o for o in outputs if getattr(o, "name", "") == "eve-log" and o.wants("alert")), None)
    if eve is None:
        return lambda event: None

    def render(event: Any) -> bytes | None:
        if assets is not None:
            assets.enrich(event)
        chunks: list[bytes] = []
        write, count = eve._write, eve.count
        eve._write = chunks.append
        try:
            eve.emit(event)
        finally:
            eve._write, eve.count = write, count
        return b"".join(chunks) or None
    return render


def attach_worker(sensor: Any, config: Mapping[str, Any], ruleset: Any, index: int, source: Any,
                  send_bytes: Callable[[bytes], None]) -> WorkerLink:
    """Make `sensor` worker `index`'s observing half: its anomaly stage observes, its
    deferred rules forward. Returns the link (ShareSource calls its `advance`)."""
    link = WorkerLink(index, send_bytes, source)
    if sensor.anomaly is not None:
        sensor.use_anomaly_engine(ObservingEngine(config, link))
    defer_engine_rules(sensor, sensor.signatures, link)
    sensor.counter_sources.append(link.stats)
    return link


def defer_engine_rules(sensor: Any, engine: Any, link: WorkerLink) -> None:
    """Make `engine`'s deferred rules forward their matches over `link`: at start, and
    (live runtime) on a reloaded engine before the sensor swaps it in."""
    if engine is None:
        return
    deferred = deferred_rules(engine.sigs, engine.thresholds)
    if deferred:
        render = eve_renderer(sensor.outputs, sensor.assets)
        engine.defer_rules(deferred, ForwardingThresholds(engine.thresholds, engine.sigs, deferred,
                                                          link, render, engine.ips, engine))


# --- the parent side ---------------------------------------------------------------------------


class ProxyFlow:
    """What the anomaly detectors read of a flow, rebuilt from a worker's rows."""

    __slots__ = ("proto", "client", "server", "client_port", "server_port", "anomaly", "anomaly_due",
                 "pkts_toserver", "pkts_toclient", "bytes_toserver", "bytes_toclient", "established",
                 "tcp_state")

    def __init__(self, proto: int, client: bytes, server: bytes, cport: int, sport: int, st: FlowState) -> None:
        self.proto = proto
        self.client = client
        self.server = server
        self.client_port = cport
        self.server_port = sport
        self.anomaly = st
        self.anomaly_due = 0.0
        self.pkts_toserver = self.pkts_toclient = self.bytes_toserver = self.bytes_toclient = 0
        self.established = False
        self.tcp_state = "none"


class _Talker:
    """What the flood and spike detectors read of a touched flow to name peers."""

    __slots__ = ("client", "server", "proto", "server_port", "anomaly")

    def __init__(self, client: bytes, server: bytes, proto: int, sport: int, dts: int, dtc: int) -> None:
        self.client = client
        self.server = server
        self.proto = proto
        self.server_port = sport
        st = self.anomaly = FlowState(0, 0)     # what they read: the packets in the second
        st.dpts = dts
        st.dptc = dtc


class _Talkers:
    """A second's touched flows as the detectors iterate them (`Tick.touched`), kept as the
    workers' pickled rows until a detector reads them: only in a second in which a flood
    or a traffic spike fires, so the judge pays per flow only then."""

    __slots__ = ("blobs", "live", "_flows")

    def __init__(self, blobs: list[tuple[int, bytes]], live: bool) -> None:
        self.blobs = blobs
        self.live = live
        self._flows: list[_Talker] | None = None

    def __iter__(self) -> Any:
        if self._flows is None:
            rows: list[tuple] = []
            for w, blob in self.blobs:
                flat = pickle.loads(blob)   # noqa: S301 - our own worker's rows
                it = iter(flat)
                rows += zip(it, it, it, it, it, it, it)
            rows.sort(key=_first)
            self._flows = [_Talker(*r[1:]) for r in rows]
        return iter(self._flows)


class _DnsPacket:
    """What the DNS detector reads of a query packet."""

    __slots__ = ("data", "payload_off", "payload_len", "proto", "src", "dst")

    def __init__(self, src: bytes, dst: bytes, proto: int, msg: bytes) -> None:
        self.data = msg
        self.payload_off = 0
        self.payload_len = len(msg)
        self.proto = proto
        self.src = src
        self.dst = dst


class _Match:
    """What thresholds read of a packet and flow, for a candidate."""

    __slots__ = ("ts", "src", "dst", "sp", "dp", "flow_id")

    def __init__(self, ts: float, src: bytes, dst: bytes, sp: int, dp: int, flow_id: Any) -> None:
        self.ts = ts
        self.src = src
        self.dst = dst
        self.sp = sp
        self.dp = dp
        self.flow_id = flow_id


class _Clock:
    __slots__ = ("ts", "pcap_cnt")

    def __init__(self, ts: float, pcap_cnt: int) -> None:
        self.ts = ts
        self.pcap_cnt = pcap_cnt


class RuleJudge:
    """Deferred rules decided for all workers: one bit store, one threshold table."""

    def __init__(self, config: Mapping[str, Any], sigs: list[Any]) -> None:
        from netsentry.detect.xbits import XBitStore
        self.sigs = sigs
        self.thresholds = _threshold_state(config, sigs)
        self.bits = XBitStore()
        self.ips = bool(get(config, "stream.inline", False))
        self.alerts = 0
        self.suppressed = 0
        self.candidates = 0
        self.stale = 0
        self.by_signature: dict[tuple[int, int], list[Any]] = {}

    def decide(self, cand: tuple) -> bytes | None:
        """The alert line to write for one candidate (None: no alert), bits and counts updated."""
        from netsentry.detect.actions import alert_action
        from netsentry.detect.threshold import ALERT, NO_MATCH
        _, _, num, ts, src, dst, sp, dp, flow_id, tests, ops, line = cand
        self.candidates += 1
        if num >= len(self.sigs):
            self.stale += 1         # numbered by a ruleset a reload replaced (live runtime)
            return None
        bits = self.bits
        for key, name, want in tests:
            if bits.isset(key, name, ts) != want:
                return None
        for cmd, key, name, expire_at in ops:
            if cmd == "set":
                bits.set(key, name, expire_at)
            elif cmd == "unset":
                bits.unset(key, name)
            else:
                bits.toggle(key, name, expire_at)
        s = self.sigs[num]
        thr = self.thresholds
        m = _Match(ts, src, dst, sp, dp, flow_id)
        flow = m if flow_id is not None else None
        res = thr.check(num, m, flow) if thr.applies(num) else ALERT
        if res == NO_MATCH:
            return None
        action = s.action
        if thr.has_rate_filter(num):
            new_action = thr.rate_action(num, m, flow)
            if new_action is not None:
                action = new_action
        if action == "pass":
            return None
        if res != ALERT or line is None:
            self.suppressed += 1
            return None
        was, now = alert_action(s.action, self.ips), alert_action(action, self.ips)
        if was != now:      # a rate_filter changed the action: the line says what it became
            line = line.replace(b'"action":"%s"' % was.encode(), b'"action":"%s"' % now.encode(), 1)
        self.alerts += 1
        entry = self.by_signature.get((s.gid, s.sid))
        if entry is None:
            self.by_signature[(s.gid, s.sid)] = [s.msg, 1]
        else:
            entry[1] += 1
        return line


class EventSink:
    """Where the judge's anomaly alerts go: asset enrichment, the alert rate limit, outputs."""

    def __init__(self, config: Mapping[str, Any], outputs: list[Any]) -> None:
        from netsentry.output.ratelimit import from_config
        self.outputs = outputs
        self.assets = None
        if config.get("assets"):
            from netsentry.assets import AssetMap
            self.assets = AssetMap(config)
        self.limit = from_config(config)
        self.anomaly_alerts: Counter[str] = Counter()

    def __call__(self, events: list[Any]) -> None:
        for event in events:
            alert = event.alert
            if event.event_type == "alert" and alert is not None:
                self.anomaly_alerts[alert.signature] += 1
                if self.limit is not None and not self.limit.admit(event):
                    continue
                if self.assets is not None:
                    self.assets.enrich(event)
            for out in self.outputs:
                if out.wants(event.event_type):
                    out.emit(event)


_UNSET = object()           # HostJudge._next: no reload switching
_first = operator.itemgetter(0)
_LIVE_RANK = {8: 0, 5: 1, 2: 2}     # by row length: new flows, then DNS queries, then flow ends


def _live_key(row: tuple) -> tuple:
    return (_LIVE_RANK[len(row)], row[0])


def _replay_order(cand: tuple) -> tuple:
    return (cand[0], cand[1])           # pcap_cnt, then the worker's candidate order


def _live_order(cand: tuple) -> tuple:
    return (cand[3], cand[0], cand[1])  # packet time, then the worker's own order


class HostJudge:
    """The parent's half: merges the workers' seconds in capture order and decides.

    `emit(events)` takes the anomaly engine's alert events; `write_line(bytes)`
    the EVE lines of deferred rules that pass."""

    def __init__(self, config: Mapping[str, Any], ruleset: Any, workers: int,
                 emit: Callable[[list[Any]], None], write_line: Callable[[bytes], None]) -> None:
        self.engine: Any = None
        if get(config, "anomaly.enabled", False):
            from netsentry.anomaly import AnomalyEngine
            self.engine = AnomalyEngine(config)        # loads anomaly.state-file: one file, ours
            self.engine.fold_from_workers()
        sigs = engine_order(config, ruleset)
        self.rules = RuleJudge(config, sigs) if sigs and deferred_rules(
            sigs, _threshold_state(config, sigs)) else None
        self.emit = emit
        self.write_line = write_line
        self.queues: dict[int, deque[HostMsg]] = {i: deque() for i in range(workers)}
        self.gone: set[int] = set()
        self._retired: Counter[str] = Counter()  # counts of rule judges a reload replaced
        self._next: Any = _UNSET                # live reload: the new set's judge until all switched
        self._switch: dict[int, int] = {}       # worker -> its first message under the new set
        self._judged: dict[int, int] = {}       # worker -> the seq of its last judged message
        self._bits: Any = None                  # the bit store while no rule needs one
        self.proxies: dict[int, ProxyFlow] = {}          # flow number -> stand-in (flagged flows)
        self.ticks = 0
        self.messages = 0
        self.cpu = 0.0              # process time spent judging (bench: where the parent's time goes)
        self.closed = False
        # live runtime (workers_live.py): pcap_cnt is each worker's own count, so
        # candidates are merged by packet time, and the engine's rows per second only
        self.live = False

    # --- entry points ------------------------------------------------------------------

    def feed(self, msg: HostMsg) -> None:
        """One message from a worker (in the order that worker sent them)."""
        self.messages += 1
        if msg[0] == "tick" and msg[3] < 0 and self.ticks and not any(msg[6]):
            return      # live: a restarted worker's clock start (empty); the judge's clock runs
        self.queues[msg[1]].append(msg)
        self._drain()

    def worker_gone(self, index: int) -> None:
        """Worker `index` will send nothing more (died, failed): judge without it."""
        self.gone.add(index)
        self._drain()

    def prepare_rules(self, config: Mapping[str, Any], ruleset: Any) -> None:
        """Live reload: `ruleset` (checked, about to be sent to every worker) numbers the
        deferred rules from now on, for each worker from the message `switched` names.

        The bits carry over (host state); the new rules count thresholds from zero,
        as the workers' new engines do. A reload before the last one finished
        switching finishes it first."""
        if self._next is not _UNSET:
            self._promote()
        sigs = engine_order(config, ruleset)
        nxt = RuleJudge(config, sigs) if sigs and deferred_rules(sigs, _threshold_state(config, sigs)) else None
        bits = self.rules.bits if self.rules is not None else self._bits
        if nxt is not None and bits is not None:
            nxt.bits = bits
        self._next = nxt
        self._switch = {}

    def switched(self, index: int, seq: int) -> None:
        """Worker `index` sends candidates of the new rules from its message `seq` on (its
        earlier ones, up to its flush before the swap, are the old rules')."""
        if self._next is not _UNSET:
            self._switch[index] = seq
            self._maybe_promote()

    def worker_started(self, index: int) -> None:
        """Live: worker `index` was restarted; its messages count again (its `seq` and clock
        start over, which merging by second does not mind). It runs the newest rules."""
        self.gone.discard(index)
        if self._next is not _UNSET:
            self._switch[index] = 0

    def _rules_for(self, index: int, seq: float) -> RuleJudge | None:
        if self._next is not _UNSET and seq >= self._switch.get(index, math.inf):
            return self._next
        return self.rules

    def _maybe_promote(self) -> None:
        live = [i for i in self.queues if i not in self.gone]
        if all(i in self._switch and self._judged.get(i, -1) >= self._switch[i] - 1 for i in live):
            self._promote()

    def _promote(self) -> None:
        old = self.rules
        if old is not None:
            self._bits = old.bits
            self._retired.update(alerts=old.alerts, suppressed=old.suppressed, candidates=old.candidates,
                                 stale=old.stale)
        self.rules = self._next
        self._next = _UNSET
        self._switch = {}

    def tick(self, now: float) -> None:
        """Live: judge every second ended `LIVE_GRACE` before `now`, silent workers counted empty."""
        while True:
            heads = [q[0] for q in self.queues.values() if q and q[0][0] == "tick"]
            if not heads:
                return
            oldest = min(m[3] for m in heads)
            if (oldest + 1) * TICK > now - LIVE_GRACE:
                return
            msgs = [q.popleft() for q in self.queues.values() if q and q[0][0] == "tick" and q[0][3] == oldest]
            self._second(msgs)

    def close(self) -> None:
        """Every worker is done: judge what is left, then the engine's last second and state file."""
        if self.closed:
            return
        self.closed = True
        self.gone.update(self.queues)
        self._drain()
        ends = [m for q in self.queues.values() for m in q if m[0] == "end"]
        self._apply([(m[1], m[2], self._rules_for(m[1], math.inf)) for m in ends])
        if self.engine is not None:
            events = self.engine.close()
            if events:
                self.emit(events)

    # --- merging -----------------------------------------------------------------------

    def _drain(self) -> None:
        queues = self.queues
        while True:
            if not all(q or i in self.gone for i, q in queues.items()):
                return
            heads = [q[0][3] for q in queues.values() if q and q[0][0] == "tick"]
            if not heads:
                return          # only ends (or nothing) left: close() finishes
            # replay: every head is the same second; live: a worker may have skipped one
            low = min(heads)
            self._second([q.popleft() for q in queues.values() if q and q[0][0] == "tick" and q[0][3] == low])

    def _second(self, msgs: list[HostMsg]) -> None:
        # The cyclic collector is paused while a second is judged: the rows become tens of
        # thousands of short-lived tuples, proxies and state lists a second, which set off
        # young collections that walk the proxies and the engine's tables again and again
        # (about 40% of the judge's CPU on the bench capture). Nothing here makes a cycle
        # that must be freed at once; the collector runs again when it is switched back on.
        gc_on = gc.isenabled()
        gc.disable()
        try:
            self._judge_second(msgs)
        finally:
            if gc_on:
                gc.enable()

    def _judge_second(self, msgs: list[HostMsg]) -> None:
        t0 = time.process_time()
        self._apply([(m[1], m[6], self._rules_for(m[1], m[2])) for m in msgs])
        judged = self._judged
        for m in msgs:
            judged[m[1]] = m[2]
        if self._next is not _UNSET:
            self._maybe_promote()
        self.ticks += 1
        next_ts, cnt = min((m[4], m[5]) for m in msgs)
        if self.engine is not None:
            events = self.engine._advance(_Clock(next_ts, cnt))
            if events:
                self.emit(events)
        self.cpu += time.process_time() - t0

    def _apply(self, batches: list[tuple[int, tuple, RuleJudge | None]]) -> None:
        """One second's rows of every worker, merged in capture order, into the judges
        (each worker's candidates to the rules it ran: they differ during a live reload)."""
        if any(b[5] for _, b, _ in batches):
            # capture order; live, each worker numbers its own packets: packet time first
            key = _live_order if self.live else _replay_order
            cands = sorted(((c, r) for _, b, r in batches if r is not None for c in b[5]),
                           key=lambda cr: key(cr[0]))
            write = self.write_line
            for c, rules in cands:
                line = rules.decide(c)
                if line is not None:
                    write(line)
        engine = self.engine
        if engine is None:
            return
        proxies = self.proxies
        # new flows, flow ends and DNS queries in capture order: each row's first item is
        # its packet's number * 4 + its kind (ROW_*: at one packet a flow ends, then one
        # starts, then its query is read), so a stable sort on it (a C key; timsort merges
        # the workers' runs) is one process's order with no wrapper per row. Live, each
        # worker numbers its own packets: within the second, flows start, are queried,
        # then end.
        events: list[tuple] = []
        for _, b, _ in batches:
            events += b[0]
            events += b[1]
            events += b[2]
        events.sort(key=_live_key if self.live else _first)
        # The workers' per-host sums and pending flows' rows, regrouped (in C) into rows and
        # merged in the order one process inserts them: replay numbers packets across the
        # whole capture, so a stable sort on the key (a C key; timsort merges the workers'
        # runs) is that order; live, each worker numbers its own packets (approximate).
        prev = engine.folded
        pin_rows: list[tuple] = prev.pin if prev is not None else []
        host_rows: list[tuple] = prev.hosts if prev is not None else []
        rows: list[tuple] = []
        talks: list[tuple[int, bytes]] = prev.touched.blobs if prev is not None else []
        for w, b, _ in batches:
            agg = b[4]
            if not agg:
                continue
            it = iter(agg[0])
            pin_rows += zip(it, it, it, it)
            it = iter(agg[1])
            host_rows += zip(it, it, it)
            it = iter(agg[2])
            rows += zip(*(it,) * FLAGGED_WIDTH)
            talks.append((w, agg[3]))
        pin_rows.sort(key=_first)
        host_rows.sort(key=_first)
        rows.sort(key=_first)
        # a DNS flow's FlowState.queued is the last second it was touched in (engine.py), which
        # on_flow_end compares: those touched in this one (built at the first DNS flow's end)
        dns_now: set[int] | None = None
        ended = []
        tick = engine._tick
        # typed (hoststate.pxd): compiled, a stand-in is a C struct filled field by field
        r: tuple
        proxy: ProxyFlow
        st: FlowState
        for r in events:
            width = len(r)
            if width == 8:                          # a new flow
                st = FlowState(tick, r[7])
                proxy = ProxyFlow.__new__(ProxyFlow)
                proxy.proto = r[2]
                proxy.client = r[3]
                proxy.server = r[4]
                proxy.client_port = r[5]
                proxy.server_port = r[6]
                proxy.anomaly = st
                proxy.anomaly_due = 0.0
                proxy.pkts_toserver = proxy.pkts_toclient = proxy.bytes_toserver = proxy.bytes_toclient = 0
                proxy.established = False
                proxy.tcp_state = "none"
                if r[1] >= 0:
                    proxies[r[1]] = proxy
                engine._new.append(proxy)        # not cached: on_flow_end replaces the list
            elif width == 2:                        # a flow ended (sent only for pending flows)
                lid = r[1]
                proxy = proxies.get(lid)
                if proxy is not None:
                    if proxy.server_port == 53 and engine.dns is not None:
                        if dns_now is None:
                            dns_now = {row[1] for row in rows}
                        if lid in dns_now:
                            proxy.anomaly.queued = tick
                    engine.on_flow_end(proxy)
                    ended.append(lid)
            elif engine.dns is not None:
                engine.dns.on_query(_DnsPacket(r[1], r[2], r[3], r[4]))
        loose = engine._loose
        for _, b, _ in batches:
            for dst, proto, n in b[3]:
                loose[(dst, proto)] = loose.get((dst, proto), 0) + n
        flagged = prev.flagged if prev is not None else []
        get = proxies.get
        for r in rows:
            proxy = get(r[1])
            if proxy is None:
                continue
            proxy.pkts_toserver = r[2]
            proxy.pkts_toclient = r[3]
            proxy.established = r[4]
            proxy.tcp_state = r[5]
            flagged.append(proxy)
        for key in ended:
            del proxies[key]
        from netsentry.anomaly.engine import Folded
        engine.folded = Folded(pin_rows, host_rows, flagged, _Talkers(talks, self.live))

    # --- results -----------------------------------------------------------------------

    def counters(self) -> dict[str, int | float]:
        """The judge's counters: every anomaly.* counter, deferred rules' alerts."""
        out: dict[str, int | float] = {}
        if self.engine is not None:
            out.update(self.engine.stats())
        judges = [r for r in (self.rules, self._next) if r is not None and r is not _UNSET]
        if judges or self._retired:
            now = Counter(self._retired)
            for r in judges:
                now.update(alerts=r.alerts, suppressed=r.suppressed, candidates=r.candidates, stale=r.stale)
            out["detect.alert"] = now["alerts"]
            out["detect.alerts_suppressed"] = now["suppressed"]
            out["hoststate.candidates"] = now["candidates"]
            out["hoststate.stale_candidates"] = now["stale"]
        out["hoststate.seconds"] = self.ticks
        out["hoststate.judge_cpu_ms"] = int(self.cpu * 1000)
        return out

    def misbehaving_sources(self, now: float | None = None) -> set[bytes]:
        """For the IPS block list (live runtime): the engine's, for every worker."""
        return self.engine.misbehaving_sources(now) if self.engine is not None else set()


def merge_alert_counts(res: Any, judge: HostJudge, sink: EventSink | None) -> None:
    """Add the judge's alerts to a RunResult (what the replay summary prints)."""
    if judge.rules is not None:
        res.alerts += judge.rules.alerts
        for key, (msg, n) in judge.rules.by_signature.items():
            entry = res.alerts_by_signature.setdefault(key, [msg, 0])
            entry[1] += n
    if sink is not None:
        res.anomaly_alerts.update(sink.anomaly_alerts)


def raw_lines(path: Any) -> tuple[Callable[[bytes], None], Callable[[], None]]:
    """(write, close) of a file taking whole EVE lines (the judge's deferred-rule alerts)."""
    fh = open(path, "wb", buffering=1 << 16)         # noqa: SIM115 - closed by the returned close
    return fh.write, fh.close

