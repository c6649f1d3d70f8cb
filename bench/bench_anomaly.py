#!/usr/bin/env python3
"""Cost of the anomaly engine on the pipeline: packets/s of read+decode+flow, with and without it.

usage: bench_anomaly.py [PCAP] [--repeat N] [--limit N]

PCAP defaults to /tmp/bench/bench-1m.pcap (make it with
../shared/bench/gen_pcap.py OUT --target 1000000 --seed 777). Each run is
the real stages the sensor wires (capture reader, Decoder, FlowTable, then
AnomalyEngine.inspect with the bundled defaults, on_flow_end from the flow
table, close() at the end). Best of --repeat runs in CPU time (the machine is
shared). The budget (issue): the engine may cost at most 25% of throughput,
i.e. with/without >= 0.75. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from netsentry.anomaly import AnomalyEngine
from netsentry.capture import open_capture
from netsentry.config import load_defaults
from netsentry.decode import Decoder
from netsentry.flow import FlowTable


def run(path: Path, with_engine: bool, limit: int) -> tuple[int, float, dict[str, int]]:
    config = load_defaults()
    engine = AnomalyEngine(config) if with_engine else None
    on_end = engine.on_flow_end if engine is not None else (lambda flow: None)
    flows = FlowTable(dict(config["flow"]), on_end)
    decode = Decoder().decode
    update = flows.update
    inspect = engine.inspect if engine is not None else None
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
        if inspect is not None:
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pcap", nargs="?", default="/tmp/bench/bench-1m.pcap", type=Path)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="stop after N packets (0: all)")
    args = ap.parse_args()
    best = {False: 0.0, True: 0.0}
    stats: dict[str, int] = {}
    n = 0
    for _ in range(args.repeat):
        for with_engine in (False, True):
            n, pps, s = run(args.pcap, with_engine, args.limit)
            best[with_engine] = max(best[with_engine], pps)
            if with_engine:
                stats = s
    ratio = best[True] / best[False]
    print(f"{args.pcap}: {n} packets")
    print(f"  read+decode+flow          {best[False]:>10,.0f} pkt/s")
    print(f"  read+decode+flow+anomaly  {best[True]:>10,.0f} pkt/s  ({ratio:.1%} of throughput kept;"
          f" engine cost {1 / best[True] - 1 / best[False]:.2e} s/pkt)")
    keys = ("bench.alerts", "anomaly.flows", "anomaly.tracked_keys", "anomaly.keys_evicted", "anomaly.baseline_keys")
    print("  " + ", ".join(f"{k}={stats.get(k, 0)}" for k in keys))


if __name__ == "__main__":
    main()
