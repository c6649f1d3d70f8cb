"""Scaling table: 1, 2 and 4 workers, anomaly engine on and off, old code against new,
and where the time goes at each (worker loop, share filter, judge, merge).

    python bench/bench_scaling.py [CAPTURE] [--base-src /tmp/base/src] [--rounds 3]
                                  [--workers 1,2,4] [--anomaly on,off]

Whole sensor: ``netsentry replay CAPTURE -S ../shared/bench/bench.rules -l TMP
-q --workers N --set anomaly.enabled=...`` (EVE on, start-up and rule load
included), each configuration run with this tree's ``src`` and, with
``--base-src``, the old tree's, alternating old and new back to back (the
machine is shared: compare within a pair, not across the table). Prints, per
(anomaly, workers, code), the minimum wall and CPU seconds of all the run's
processes (`getrusage(RUSAGE_CHILDREN)`), and for code that logs it (the
``replay timing`` debug line of workers.replay) the split of the best-CPU
run: the workers' CPU (largest and sum), the parent's CPU while the workers
run (receiving and judging host-keyed state) and the host-state judge's part
of it, the serial tail after the workers end (the judge's last second and
state file, then the EVE merge), wall and CPU.

The share filter's part of a worker is measured apart (``--share``, default
on): one worker's pass over the whole capture with `ShareSource` (read +
filter, no decode) against reading alone, CPU, min of the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RULES = HERE.parent.parent / "shared" / "bench" / "bench.rules"
DEFAULT_CAPTURE = Path("/work/bench-data/bench-1m.pcap")

SHARE_SNIPPET = """
import sys, time
from netsentry.capture import read_captures
try:
    from netsentry.share import ShareSource
except ImportError:
    from netsentry.workers import ShareSource
path, workers = sys.argv[1], int(sys.argv[2])
t = time.process_time()
for _ in read_captures([path]):
    pass
read = time.process_time() - t
t = time.process_time()
for _ in ShareSource(read_captures([path]), 0, workers, lambda: False):
    pass
print(read, time.process_time() - t)
"""


def run_once(src: Path, cap: Path, workers: int, anomaly: bool) -> tuple[float, float, dict | None, int]:
    """(wall s, CPU s of the replay and its workers, the timing log line or None, packets)."""
    with tempfile.TemporaryDirectory(prefix="scaling-bench-") as out:
        env = dict(os.environ, PYTHONPATH=str(src))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "netsentry", "replay", str(cap), "-S", str(RULES), "-l", out,
                               "-q", "--workers", str(workers), "--set", f"anomaly.enabled={str(anomaly).lower()}",
                               "--set", "logging.level=debug", "--set", "logging.format=json"],
                              env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wall = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        timing = None
        for line in proc.stderr.splitlines():
            if b'"replay timing"' in line:
                timing = json.loads(line)
        packets = 0
        with open(Path(out) / "eve.json", "rb") as fh:
            for line in fh:
                if b'"event_type":"stats"' in line:
                    packets = int(json.loads(line)["stats"]["decoder"]["pkts"])
        return wall, cpu, timing, packets


def share_cost(src: Path, cap: Path, workers: int) -> tuple[float, float]:
    """(CPU s reading the capture alone, CPU s of one worker's ShareSource pass over it)."""
    out = subprocess.run([sys.executable, "-c", SHARE_SNIPPET, str(cap), str(workers)], check=True,
                         capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(src)))
    read, share = out.stdout.split()
    return float(read), float(share)


def split(timing: dict | None) -> str:
    if timing is None:
        return "| - | - | - | - | - |"
    w = [x["cpu"] for x in timing["workers"]]
    p = timing["parent"]
    tail_wall = p["judge_close"]["wall"] + p["merge"]["wall"]
    tail_cpu = p["judge_close"]["cpu"] + p["merge"]["cpu"]
    judge = timing.get("judge_cpu")
    return (f"| {max(w):.2f} / {sum(w):.2f} | {p['run']['cpu']:.2f} | {judge if judge is not None else '-'} "
            f"| {p['judge_close']['cpu']:.2f} + {p['merge']['cpu']:.2f} | {tail_wall:.2f} ({tail_cpu:.2f}) |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("capture", type=Path, nargs="?", default=DEFAULT_CAPTURE)
    ap.add_argument("--base-src", type=Path, help="the old tree's src/ (built in place for compiled runs)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--anomaly", default="on,off")
    ap.add_argument("--no-share", action="store_true", help="skip the share-filter measurement")
    args = ap.parse_args()
    if not RULES.exists():
        print(f"{RULES}: not found (the shared bench inputs are needed)", file=sys.stderr)
        return 2
    codes = {"new": HERE.parent / "src"}
    if args.base_src:
        codes = {"old": args.base_src, **codes}
    counts = [int(w) for w in args.workers.split(",")]
    modes = [m == "on" for m in args.anomaly.split(",")]
    best: dict[tuple, tuple[float, float, dict | None]] = {}
    packets = 0
    print(f"capture {args.capture}, load average before: {os.getloadavg()}", flush=True)
    for r in range(args.rounds):
        for anomaly in modes:
            for n in counts:
                for code, src in codes.items():
                    wall, cpu, timing, packets = run_once(src, args.capture, n, anomaly)
                    key = (anomaly, n, code)
                    old = best.get(key)
                    if old is None:
                        best[key] = (wall, cpu, timing)
                    else:
                        best[key] = (min(old[0], wall), min(old[1], cpu), timing if cpu < old[1] else old[2])
                    print(f"round {r + 1} anomaly {'on' if anomaly else 'off'} workers {n} {code}: "
                          f"{wall:.2f} s wall, {cpu:.2f} s CPU, load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"load average after: {os.getloadavg()}")
    print()
    print("| anomaly | workers | code | min wall s | packets/s (wall) | min CPU s | CPU new/old "
          "| worker CPU s max / sum | parent CPU s while workers run | of it judge | tail CPU s: judge close + merge "
          "| tail wall s (CPU) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for anomaly in modes:
        for n in counts:
            for code in codes:
                wall, cpu, timing = best[(anomaly, n, code)]
                ratio = "-"
                if code == "new" and "old" in codes:
                    ratio = f"{cpu / best[(anomaly, n, 'old')][1]:.2f}"
                print(f"| {'on' if anomaly else 'off'} | {n} | {code} | {wall:.2f} | {packets / wall:,.0f} | {cpu:.2f} "
                      f"| {ratio} {split(timing)}")
    if not args.no_share:
        print()
        print("share filter, one worker's pass over the whole capture (CPU s, min of rounds):")
        for n in sorted({c for c in counts if c > 1}):
            for code, src in codes.items():
                runs = [share_cost(src, args.capture, n) for _ in range(args.rounds)]
                read = min(x[0] for x in runs)
                share = min(x[1] for x in runs)
                print(f"  workers {n} {code}: read alone {read:.2f}, read + share filter {share:.2f}, "
                      f"filter {share - read:.2f} ({(share - read) / max(packets, 1) * 1e6:.2f} us/record)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
