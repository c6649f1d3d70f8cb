"""Cost of judging host-keyed state in the parent (hoststate.py), old code against new.

    python bench/bench_hoststate.py CAPTURE [--base-src /work/ns-base/src] [--rounds 3] [--workers 1,2,4]

Runs ``netsentry replay CAPTURE -S ../shared/bench/bench.rules -l TMP -q
--workers N`` for each worker count with this tree's ``src`` and, when
``--base-src`` is given, with that tree's, alternating them within each round
(the machine is shared), and prints the minimum wall and CPU seconds (all the
run's processes, `getrusage(RUSAGE_CHILDREN)`) per (code, workers), the
new/old ratio, and, from the new runs' stats record, what the workers sent
the judge (``stats.netsentry.hoststate``: messages, bytes, rows, seconds of
packet time judged, the parent's judging CPU) per second of packet time.
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


def run_once(src: Path, cap: Path, workers: int) -> tuple[float, float, dict]:
    """(wall s, CPU s of the replay and its workers, stats.netsentry.hoststate or {})."""
    with tempfile.TemporaryDirectory(prefix="hoststate-bench-") as out:
        env = dict(os.environ, PYTHONPATH=str(src))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-m", "netsentry", "replay", str(cap), "-S", str(RULES), "-l", out,
                        "-q", "--workers", str(workers)], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        hs: dict = {}
        with open(Path(out) / "eve.json", "rb") as fh:
            for line in fh:
                if b'"event_type":"stats"' in line:
                    hs = json.loads(line)["stats"].get("netsentry", {}).get("hoststate", {})
        return wall, cpu, hs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("capture", type=Path)
    ap.add_argument("--base-src", type=Path, help="the old tree's src/ (e.g. /work/ns-base/src)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", default="1,2,4")
    args = ap.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    codes = {"new": HERE.parent / "src"}
    if args.base_src:
        codes = {"old": args.base_src, **codes}
    best: dict[tuple[str, int], list[float]] = {}
    ipc: dict[int, dict] = {}
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    for r in range(args.rounds):
        for w in counts:
            for name, src in codes.items():
                wall, cpu, hs = run_once(src, args.capture, w)
                cur = best.setdefault((name, w), [wall, cpu])
                cur[0], cur[1] = min(cur[0], wall), min(cur[1], cpu)
                if name == "new" and hs:
                    ipc[w] = hs
                print(f"round {r + 1} {name} workers={w}: wall {wall:.2f} s, cpu {cpu:.2f} s", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print("| workers | old wall s | new wall s | old CPU s | new CPU s | CPU new/old |")
    print("|---|---|---|---|---|---|")
    for w in counts:
        new = best[("new", w)]
        old = best.get(("old", w), [float("nan")] * 2)
        print(f"| {w} | {old[0]:.2f} | {new[0]:.2f} | {old[1]:.2f} | {new[1]:.2f} | {new[1] / old[1]:.3f} |")
    for w, hs in sorted(ipc.items()):
        secs = max(1, hs.get("seconds", 1))
        print(f"workers={w}: {hs.get('messages', 0)} messages, {hs.get('bytes', 0):,} bytes, "
              f"{hs.get('rows', 0):,} rows over {secs} s of packet time = "
              f"{hs.get('messages', 0) / secs:.1f} messages and {hs.get('bytes', 0) / secs:,.0f} bytes per second; "
              f"judge CPU {hs.get('judge_cpu_ms', 0)} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
