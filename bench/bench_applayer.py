#!/usr/bin/env python3
"""App-layer cost: the whole sensor (read, decode, flow, app layer, signatures) with
`app-layer.enabled` true and false, in alternating runs.

usage: bench_applayer.py [--pcap PCAP] [--workload a|et] [--limit N] [--rounds N] [--parse-all]

The machine is shared, so on/off runs alternate (on, off, on, off, ...) and the
script prints every run and the ratio of the medians, wall and CPU. Workload
`a` is ../shared/bench/bench.rules, `et` every ET Open rule that loads (so the
HTTP/DNS/TLS transaction rules too). No outputs: the cost measured is parsing,
protocol detection and transaction inspection; `--parse-all` parses every detected
protocol as if http/dns/tls records were written (without it, protocols no rule
reads are only detected). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "src"))

from bench_detect import default_pcap, rules_for  # noqa: E402

from netsentry.capture import read_captures  # noqa: E402
from netsentry.config import load_config  # noqa: E402
from netsentry.gcpolicy import capture_gc  # noqa: E402
from netsentry.rules.loader import load_rules  # noqa: E402
from netsentry.sensor import Sensor  # noqa: E402


class _Limited:
    def __init__(self, source, limit: int | None) -> None:
        self.source, self.limit = source, limit

    def __iter__(self):
        for n, rec in enumerate(self.source, 1):
            yield rec
            if n == self.limit:
                return


def one_run(pcap: Path, rules, app: bool, limit: int | None, parse_all: bool = False
            ) -> tuple[int, float, float, int]:
    config = load_config(None, [f"app-layer.enabled={'true' if app else 'false'}", "anomaly.enabled=false"])
    sensor = Sensor(config, [], rules)
    if parse_all and sensor.applayer is not None:
        sensor.applayer.set_consumers(None)
    source = _Limited(read_captures([str(pcap)]), limit)
    w0, c0 = time.perf_counter(), time.process_time()
    with capture_gc():
        res = sensor.run(source)
    w, c = time.perf_counter() - w0, time.process_time() - c0
    sensor.finish()
    return res.packets, w, c, res.alerts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pcap", type=Path)
    ap.add_argument("--workload", choices=("a", "et"), default="a")
    ap.add_argument("--limit", type=int, default=300_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--parse-all", action="store_true", help="parse every protocol (as with http/dns/tls records on)")
    args = ap.parse_args()
    pcap = args.pcap or default_pcap()
    t0 = time.perf_counter()
    rules = load_rules(rules_for(args.workload), load_config(None, []))
    print(f"{len(rules.signatures)} rules loaded in {time.perf_counter() - t0:.1f} s "
          f"({sum(1 for s in rules.signatures if s.tx_rule)} transaction rules)")
    runs: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for r in range(args.rounds):
        for app in (True, False):
            n, w, c, alerts = one_run(pcap, rules, app, args.limit, args.parse_all)
            runs[app].append((n / w, n / c))
            print(f"round {r + 1} app-layer {'on ' if app else 'off'}: {n} pkts, {n / w:,.0f} pkts/s wall, "
                  f"{n / c:,.0f} pkts/s cpu, {alerts} alerts")
    for i, what in enumerate(("wall", "cpu")):
        on = statistics.median(x[i] for x in runs[True])
        off = statistics.median(x[i] for x in runs[False])
        print(f"median {what}: on {on:,.0f} pkts/s, off {off:,.0f} pkts/s, on/off {on / off:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
