#!/usr/bin/env python3
"""The cost of a match: µs per alert from "rule matched" to "line in eve.json".

usage: bench_alerts.py [PCAP] [-S RULES] [--repeat N] [--against SRC]

The capture is replayed once through a `Sensor` (bench.rules, EVE on) with
the signature engine's `inspect` wrapped by a recorder that keeps, for every
packet that alerted, the packet, its flow and the `Alert` objects matched
(the engine's own shared ones). Then, timed with process CPU time under the
sensor's collector settings (`netsentry.gcpolicy.capture_gc`), each pass
does for every recorded packet exactly what follows a match in a replay:
build one `Event` per alert, hand the list to `Sensor._on_events` (alert
queue, counts, flow marked alerted, outputs), and the eve-log writes the
lines into its file (flushed at the end of the pass). Best of `--repeat`
passes; the figure is CPU µs per alert and per alerting packet.

Flow records at the end of a replay are measured the same way: every flow
of the replay, as the flow table ends it, through `Sensor._flow_ended`'s
record step (one `Event("flow", ...)` per flow and the eve-log's `emit`).

A/B (`--against SRC`): the measurement alternates between this tree's
`src/` and SRC (another checkout's `src/`, compiled in place or not), one
child process at a time, `--rounds` times; best of each side, and their
ratio. The box is shared: CPU time, alternation and best-of make the figures
comparable. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED_BENCH = REPO / ".." / "shared" / "bench"


def measure(pcap: Path, rules: Path, repeat: int) -> dict[str, Any]:
    """One process: record the replay's matches, then time the after-match path."""
    from netsentry.capture import read_captures
    from netsentry.event import Event
    from netsentry.gcpolicy import capture_gc
    from netsentry.output import OutputContext, open_outputs
    from netsentry.rules.loader import load_rules
    from netsentry.sensor import Sensor

    from netsentry.config import load_config
    config = load_config(None, [])     # the CLI's defaults: eve-log on (alert, flow, ...)
    ruleset = load_rules([str(rules)], config)
    work = Path(tempfile.mkdtemp(prefix="alertfast-bench-"))
    flows: list[Any] = []
    ended = Sensor._flow_ended

    def on_end(self: Any, flow: Any) -> None:
        flows.append(flow)
        ended(self, flow)

    Sensor._flow_ended = on_end       # the flow table binds it when the sensor builds it
    try:
        sensor = Sensor(config, [], ruleset)
    finally:
        Sensor._flow_ended = ended
    sensor.attach_outputs(open_outputs(config["outputs"], OutputContext(logdir=work / "rec")))
    recorded: list[tuple[Any, Any, list[Any]]] = []
    inspect = sensor.signatures.inspect

    def recorder(pkt: Any, flow: Any) -> Any:
        events = inspect(pkt, flow)
        if events:
            recorded.append((pkt, flow, [e.alert for e in events]))
        return events

    sensor.signatures.inspect = recorder
    sensor.run(read_captures([pcap]))
    sensor.finish()
    alerts = sum(len(a) for _, _, a in recorded)

    best_alert = best_flow = float("inf")
    for i in range(repeat):
        out = work / f"pass{i}"
        s2 = Sensor(config, [], ruleset)
        s2.attach_outputs(open_outputs(config["outputs"], OutputContext(logdir=out)))
        on_events = s2._on_events
        emitters = s2._emitters["flow"]
        with capture_gc():
            t0 = time.process_time()
            for pkt, flow, matched in recorded:
                on_events([Event("alert", pkt.ts, pkt, flow, a) for a in matched], pkt, flow, False)
            for o in s2.outputs:
                o.flush()
            t1 = time.process_time()
            for flow in flows:
                event = Event("flow", flow.last_seen, None, flow)
                for emit in emitters:
                    emit(event)
            for o in s2.outputs:
                o.flush()
            t2 = time.process_time()
        best_alert = min(best_alert, t1 - t0)
        best_flow = min(best_flow, t2 - t1)
        for o in s2.outputs:
            o.close()
        size = (out / "eve.json").stat().st_size
        assert size > 100 * alerts, f"the eve-log wrote {size} bytes for {alerts} alerts"
    import shutil
    shutil.rmtree(work, ignore_errors=True)
    return {"alerts": alerts, "alerting_packets": len(recorded), "flows": len(flows),
            "alert_s": best_alert, "flow_s": best_flow,
            "us_per_alert": best_alert / max(alerts, 1) * 1e6,
            "us_per_flow_record": best_flow / max(len(flows), 1) * 1e6}


def child(src: Path, args: argparse.Namespace) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(src))
    cmd = [sys.executable, __file__, str(args.pcap), "-S", str(args.rules), "--repeat", str(args.repeat), "--json"]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pcap", nargs="?", type=Path, default=Path("/work/bench-data/bench-300k.pcap"))
    ap.add_argument("-S", dest="rules", type=Path, default=SHARED_BENCH / "bench.rules")
    ap.add_argument("--repeat", type=int, default=3, help="timed passes per process (best of)")
    ap.add_argument("--against", type=Path, help="another src/ to alternate with (A/B)")
    ap.add_argument("--rounds", type=int, default=3, help="A/B: child processes per side")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.json:
        print(json.dumps(measure(args.pcap, args.rules, args.repeat)))
        return 0
    if args.against is None:
        r = measure(args.pcap, args.rules, args.repeat)
        print(f"{r['alerts']:,} alerts on {r['alerting_packets']:,} packets: {r['us_per_alert']:.3f} us/alert; "
              f"{r['flows']:,} flow records: {r['us_per_flow_record']:.3f} us/record")
        return 0
    sides: dict[str, list[dict[str, Any]]] = {"new": [], "old": []}
    for _ in range(args.rounds):
        sides["new"].append(child(REPO / "src", args))
        sides["old"].append(child(args.against, args))
    load = os.getloadavg()[0]
    best = {k: (min(r["us_per_alert"] for r in v), min(r["us_per_flow_record"] for r in v))
            for k, v in sides.items()}
    print(f"load {load:.1f}; {sides['new'][0]['alerts']:,} alerts, {sides['new'][0]['flows']:,} flow records")
    print(f"us/alert        old {best['old'][0]:.3f}  new {best['new'][0]:.3f}  new/old {best['new'][0] / best['old'][0]:.3f}")
    print(f"us/flow record  old {best['old'][1]:.3f}  new {best['new'][1]:.3f}  new/old {best['new'][1] / best['old'][1]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
