"""Whole-sensor replay throughput with 1, 2 and 4 worker processes (workers.py).

    python bench/bench_workers.py [--target 200000] [--seed 12345] [--rounds 3] [--workers 1,2,4]

Runs ``netsentry replay CAPTURE -S ../shared/bench/bench.rules -l TMP -q
--workers N`` as a subprocess (EVE on, default config), alternating the worker
counts within each round because the machine is shared, and prints the
minimum wall time per count (start-up and rule load included, as a user sees
it) with packets/s, the minimum CPU time of all the run's processes (what
N workers cost in total: each reads every record), plus the load average before and after. The capture is
made once by ``../shared/bench/gen_pcap.py`` into bench/out/.
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
SHARED = HERE.parent.parent / "shared" / "bench"


def capture(target: int, seed: int) -> Path:
    out = HERE / "out" / f"bench-{target}-{seed}.pcap"
    if not out.exists():
        out.parent.mkdir(exist_ok=True)
        subprocess.run([sys.executable, str(SHARED / "gen_pcap.py"), str(out), "--target", str(target),
                        "--seed", str(seed)], check=True)
    return out


def run_once(cap: Path, workers: int) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of the replay and its workers, packets)."""
    with tempfile.TemporaryDirectory() as logdir:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "netsentry", "replay", str(cap), "-S", str(SHARED / "bench.rules"),
                        "-l", logdir, "-q", "--workers", str(workers)], check=True,
                       stderr=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=str(HERE.parent / "src")))
        elapsed = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        stats = json.loads(Path(logdir, "eve.json").read_bytes().splitlines()[-1])["stats"]
    return elapsed, cpu, int(stats["decoder"]["pkts"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", type=int, default=200000)
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", default="1,2,4")
    args = ap.parse_args()
    if not SHARED.exists():
        sys.exit(f"{SHARED}: not found (the shared bench inputs are needed)")
    cap = capture(args.target, args.seed)
    counts = [int(x) for x in args.workers.split(",")]
    best: dict[int, float] = {}
    best_cpu: dict[int, float] = {}
    packets = 0
    print(f"capture {cap.name}, load average before: {os.getloadavg()}")
    for r in range(args.rounds):
        for n in counts:
            elapsed, cpu, packets = run_once(cap, n)
            best[n] = min(best.get(n, elapsed), elapsed)
            best_cpu[n] = min(best_cpu.get(n, cpu), cpu)
            print(f"round {r + 1} workers {n}: {elapsed:.2f} s wall, {cpu:.2f} s CPU", flush=True)
    print(f"load average after: {os.getloadavg()}")
    base = best[counts[0]]
    print("| workers | min wall s | packets/s (wall) | speed-up | min CPU s (all processes) |")
    print("|---|---|---|---|---|")
    for n in counts:
        print(f"| {n} | {best[n]:.2f} | {packets / best[n]:,.0f} | {base / best[n]:.2f}x | {best_cpu[n]:.2f} |")


if __name__ == "__main__":
    main()
