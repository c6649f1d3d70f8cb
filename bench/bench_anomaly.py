#!/usr/bin/env python3
"""Cost of the anomaly engine on the pipeline: packets/s of read+decode+flow, with and without it.

usage: bench_anomaly.py [PCAP] [--repeat N] [--limit N] [--rules FILE ...] [--engine-only] [--off DET,...]

PCAP defaults to /tmp/bench/bench-1m.pcap, else bench/out/bench-1m.pcap (generated when missing with
../shared/bench/gen_pcap.py OUT --target 1000000 --seed 777). Each run is
the real stages the sensor wires (capture reader, Decoder, FlowTable, then
AnomalyEngine.inspect with the bundled defaults, on_flow_end from the flow
table, close() at the end). Best of --repeat runs in CPU time (the machine is
shared). The budget (issue): the engine may cost at most 25% of throughput,
i.e. with/without >= 0.75. Not part of the test suite.

--rules FILE adds the signature engine with those rules to both runs (the
sensor's order: signatures, then anomaly), e.g. ../shared/bench/bench.rules:
the benchmark of bench_detect.py workload a, i.e. the engine's cost in the
sensor's throughput on that benchmark rather than against read+decode+flow
alone (which has no detection work to compare with).

--engine-only times the engine alone, for A/B comparisons of engine changes on
a shared machine (the difference of two pipeline runs is noisy): packets are
decoded and run through the flow table once, the (packet, flow) pairs and
flow ends kept, then only inspect()/on_flow_end() are timed. Flows carry
their final counters (an approximation: per-second deltas differ), and the
loop itself costs ~0.25 us/pkt, which is printed as the floor. Use --limit
(e.g. 300000) to bound memory. --off disables detectors (e.g. traffic-spike)
to see one detector's share.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import time
from pathlib import Path

from bench_detect import default_pcap   # /tmp/bench or bench/out, generated when missing
from netsentry.anomaly import AnomalyEngine
from netsentry.capture import open_capture
from netsentry.config import load_defaults
from netsentry.decode import Decoder
from netsentry.flow import FlowTable
from netsentry.flow.flow import NEVER_SEEN


def gc_context(mode: str):
    """The collector settings the sensor runs its loop with (``sensor``), or the defaults."""
    if mode == "sensor":
        from netsentry.gcpolicy import capture_gc
        return capture_gc()
    return contextlib.nullcontext()


def run(path: Path, with_engine: bool, limit: int, gc_mode: str = "sensor",
        rules: list[Path] | None = None) -> tuple[int, float, dict[str, int]]:
    with gc_context(gc_mode):
        return _run(path, with_engine, limit, rules)


def signature_engine(config: dict, rules: list[Path] | None):
    """The signature engine over `rules` (None without rules)."""
    if not rules:
        return None
    from netsentry.detect import SignatureEngine
    from netsentry.rules import load_rules
    return SignatureEngine(load_rules([str(p) for p in rules], config), config)


def _run(path: Path, with_engine: bool, limit: int, rules: list[Path] | None = None) -> tuple[int, float, dict[str, int]]:
    config = load_defaults()
    sigs = signature_engine(config, rules)
    sig_inspect = sigs.inspect if sigs is not None else None
    engine = AnomalyEngine(config) if with_engine else None
    on_end = engine.on_flow_end if engine is not None else (lambda flow: None)
    flows = FlowTable(dict(config["flow"]), on_end)
    decode = Decoder().decode
    update = flows.update
    inspect = engine.inspect_due if engine is not None else None
    alerts = 0
    reader = open_capture(path)
    n = 0
    t0 = time.process_time()
    for ts, data, wirelen, linktype in reader:
        n += 1
        pkt = decode(data, linktype)
        pkt.ts = ts
        pkt.pcap_cnt = n
        pkt.wirelen = wirelen
        flow = update(pkt)
        if sig_inspect is not None and not pkt.checksum_bad:
            events = sig_inspect(pkt, flow)
            if events:
                alerts += len(events)
        if inspect is not None and (flow is None or ts >= flow.anomaly_due):   # as the sensor's loop
            events = inspect(pkt, flow)
            if events:
                alerts += len(events)
        if n == limit:
            break
    flows.flush("shutdown")
    if engine is not None:
        alerts += len(engine.close() or ())
    elapsed = time.process_time() - t0
    stats = engine.stats() if engine is not None else {}
    stats["bench.alerts"] = alerts
    return n, n / elapsed, stats


def engine_only(path: Path, limit: int, repeat: int, off: list[str]) -> None:
    config = load_defaults()
    for name in off:
        config["anomaly"][name]["enabled"] = False
    ended: list[tuple[int, object]] = []
    n = 0
    flows = FlowTable(dict(config["flow"]), lambda flow: ended.append((n, flow)))
    decode = Decoder().decode
    pairs = []
    for ts, data, wirelen, linktype in open_capture(path):
        n += 1
        pkt = decode(data, linktype)
        pkt.ts, pkt.pcap_cnt, pkt.wirelen = ts, n, wirelen
        pairs.append((pkt, flows.update(pkt)))
        if n == limit:
            break
    flows.flush("shutdown")
    ends: dict[int, list] = {}
    for i, flow in ended:
        ends.setdefault(i, []).append(flow)
    all_flows = list({id(f): f for _, f in pairs if f is not None}.values())
    gc.collect()
    gc.freeze()         # the recorded packets and flows are not the engine's garbage

    def timed(inspect, on_end) -> float:
        t0 = time.process_time()
        i = 0
        for pkt, flow in pairs:
            i += 1
            inspect(pkt, flow)
            e = ends.get(i)
            if e:
                for f in e:
                    on_end(f)
        return time.process_time() - t0

    best, floor = float("inf"), float("inf")
    stats: dict[str, int] = {}
    for _ in range(repeat):
        floor = min(floor, timed(lambda p, f: None, lambda f: None))
        for f in all_flows:
            f.anomaly = None
            f.anomaly_due = NEVER_SEEN
        engine = AnomalyEngine(config)
        elapsed = timed(engine.inspect, engine.on_flow_end)
        t1 = time.process_time()
        engine.close()
        best = min(best, elapsed + time.process_time() - t1)
        stats = engine.stats()
    per = 1e6 / len(pairs)
    print(f"{path}: {len(pairs)} packets, engine only (off: {','.join(off) or 'none'}), best of {repeat}")
    print(f"  inspect+on_flow_end {best * per:.3f} us/pkt, loop floor {floor * per:.3f} us/pkt,"
          f" engine {(best - floor) * per:.3f} us/pkt; flows={stats['anomaly.flows']}"
          f" baseline_keys={stats['anomaly.baseline_keys']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pcap", nargs="?", default=None, type=Path)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="stop after N packets (0: all)")
    ap.add_argument("--rules", type=Path, action="append", default=None,
                    help="also run the signature engine with this rule file in both runs (may repeat)")
    ap.add_argument("--engine-only", action="store_true", help="time the engine alone (see above)")
    ap.add_argument("--gc", choices=("sensor", "default"), default="sensor",
                    help="collector settings: the sensor's (netsentry.gcpolicy) or Python's defaults")
    ap.add_argument("--off", default="", help="with --engine-only: detectors to disable, comma-separated")
    args = ap.parse_args()
    if args.pcap is None:
        args.pcap = default_pcap()
    if args.engine_only:
        engine_only(args.pcap, args.limit, args.repeat, [d for d in args.off.split(",") if d])
        return
    best = {False: 0.0, True: 0.0}
    stats: dict[str, int] = {}
    n = 0
    for _ in range(args.repeat):
        for with_engine in (False, True):
            n, pps, s = run(args.pcap, with_engine, args.limit, args.gc, args.rules)
            best[with_engine] = max(best[with_engine], pps)
            if with_engine:
                stats = s
    ratio = best[True] / best[False]
    base = "read+decode+flow" + ("+signatures" if args.rules else "")
    print(f"{args.pcap}: {n} packets" + (f", rules {' '.join(p.name for p in args.rules)}" if args.rules else ""))
    print(f"  {base:<34} {best[False]:>10,.0f} pkt/s")
    print(f"  {base + '+anomaly':<34} {best[True]:>10,.0f} pkt/s  ({ratio:.1%} of throughput kept;"
          f" engine cost {1 / best[True] - 1 / best[False]:.2e} s/pkt)")
    keys = ("bench.alerts", "anomaly.flows", "anomaly.tracked_keys", "anomaly.keys_evicted", "anomaly.baseline_keys")
    print("  " + ", ".join(f"{k}={stats.get(k, 0)}" for k in keys))


if __name__ == "__main__":
    main()
