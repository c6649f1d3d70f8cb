"""The block list's cost on the per-packet path (respond/blocklist.py, capture_loop.py part `blocklist`).

Runs the sensor's capture loop (decode + flow + the bundled configuration's
engines off: the loop the check sits in, without detection noise) over the
first N packets of the bench capture in three set-ups, alternating and
rotated, --repeat runs each, CPU time; the median is the figure (on this
shared machine the minimum is one lucky run):

  off     no responder: the loop without the `blocklist` part (as before)
  empty   responder, empty list: one truth test of the dict per packet
  listed  responder, 1000 listed addresses none of the capture's: one dict probe per packet

    .venv/bin/python bench/bench_blocklist.py [PCAP] [--packets N] [--repeat N]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from netsentry.capture import read_captures  # noqa: E402
from netsentry.config import load_config  # noqa: E402
from netsentry.log import setup_logging  # noqa: E402
from netsentry.operations import build_responder  # noqa: E402
from netsentry.sensor import Sensor  # noqa: E402

DEFAULT = os.path.join(os.path.dirname(__file__), "out", "bench-1m.pcap")


def records(path: str, n: int) -> list:
    out = []
    for rec in read_captures([path]):
        out.append(rec)
        if len(out) >= n:
            break
    return out


def run(recs: list, mode: str) -> float:
    cfg = load_config(None, ["anomaly.enabled=false", "respond.blocklist.allow-own-addresses=false"])
    sensor = Sensor(cfg, [])
    if mode != "off":
        responder = build_responder(sensor, cfg)
        if mode == "listed":
            for i in range(1000):
                responder.blocklist.add(bytes([198, 18, i >> 8, i & 255]), "bench", ttl=0)
    t0 = time.process_time()
    sensor.run(iter(recs))
    return time.process_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pcap", nargs="?", default=DEFAULT)
    ap.add_argument("--packets", type=int, default=300_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    setup_logging("warning", "json", io.StringIO())
    recs = records(args.pcap, args.packets)
    times: dict[str, list[float]] = {"off": [], "empty": [], "listed": []}
    modes = list(times)
    for i in range(args.repeat):
        # alternating, and rotated each round: neither the shared machine's drift nor
        # the position in the round favours one set-up
        for mode in modes[i % 3:] + modes[:i % 3]:
            times[mode].append(run(recs, mode))
    n = len(recs)
    base = statistics.median(times["off"])
    for mode, ts in times.items():
        med = statistics.median(ts)
        print(f"{mode:7s} median {med * 1e6 / n:6.3f} us/packet (min {min(ts) * 1e6 / n:6.3f})  "
              f"{n / med:10,.0f} pkts/s  median ratio {med / base:.3f}")


if __name__ == "__main__":
    main()
