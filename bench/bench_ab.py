#!/usr/bin/env python3
"""Old code against new code, alternating, on one replay: CPU seconds and the alerts.

usage: bench_ab.py --old SRC --new SRC [--rounds N] [--out DIR] -- REPLAY-ARGS...

e.g. bench_ab.py --old /work/ns-base/src --new src --rounds 3 -- \\
         /work/bench-data/bench-1m.pcap -S ../shared/bench/bench.rules

The machine is shared, so one run of each side alternates with the other (old,
new, old, new, ...) and the minimum over the rounds is the figure. Each run is
`netsentry replay REPLAY-ARGS -l DIR -q` in a child process with PYTHONPATH set to
that side's source tree (the venv is the same), so the two sides differ only in
code. Printed per run: the child's CPU seconds (user+sys, rule loading included),
the packet phase's CPU seconds (`Sensor.run` + `Sensor.finish`, measured inside
the child), peak RSS and the load average; then min per side, the ratio, and
whether the two sides' alerts are the same set (sorted `signature_id pcap_cnt`
lines of eve.json). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# Run in the child: times the packet phase, then the normal CLI.
CHILD = r"""
import resource, sys, time
import netsentry.sensor as S
from netsentry.cli import main
spent = [0.0]
def timed(fn):
    def wrapper(self, *a, **k):
        t = time.process_time()
        try:
            return fn(self, *a, **k)
        finally:
            spent[0] += time.process_time() - t
    return wrapper
S.Sensor.run, S.Sensor.finish = timed(S.Sensor.run), timed(S.Sensor.finish)
rc = main(sys.argv[1:])
ru = resource.getrusage(resource.RUSAGE_SELF)
print(f"AB {ru.ru_utime + ru.ru_stime:.3f} {spent[0]:.3f} {ru.ru_maxrss // 1024}", file=sys.stderr)
sys.exit(rc)
"""


def run_side(src: str, replay_args: list[str], logdir: Path) -> tuple[float, float, int]:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(src))
    proc = subprocess.run([sys.executable, "-c", CHILD, "replay", *replay_args, "-l", str(logdir), "-q"],
                          env=env, capture_output=True, text=True, check=False)
    for line in proc.stderr.splitlines():
        if line.startswith("AB "):
            total, packet, rss = line.split()[1:]
            return float(total), float(packet), int(rss)
    raise SystemExit(f"replay with {src} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")


def alert_digest(eve: Path) -> tuple[int, str]:
    lines = []
    with eve.open() as fh:
        for line in fh:
            rec = json.loads(line)
            if rec.get("event_type") == "alert":
                lines.append(f"{rec['alert']['signature_id']} {rec.get('pcap_cnt')}")
    lines.sort()
    return len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", required=True, help="source tree of the old code (the directory holding netsentry/)")
    ap.add_argument("--new", required=True, help="source tree of the new code")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", help="where the two eve.json go (default: a temporary directory)")
    ap.add_argument("replay", nargs=argparse.REMAINDER, help="-- then the replay arguments")
    args = ap.parse_args()
    replay_args = args.replay[1:] if args.replay[:1] == ["--"] else args.replay
    out = Path(args.out or tempfile.mkdtemp(prefix="bench-ab-"))
    best: dict[str, list[float]] = {"old": [1e9, 1e9], "new": [1e9, 1e9]}
    for rnd in range(args.rounds):
        for side in ("old", "new"):
            logdir = out / side
            logdir.mkdir(parents=True, exist_ok=True)
            total, packet, rss = run_side(getattr(args, side), replay_args, logdir)
            best[side] = [min(best[side][0], total), min(best[side][1], packet)]
            load = os.getloadavg()[0]
            print(f"round {rnd + 1} {side}: cpu {total:.2f} s, packet phase {packet:.2f} s, "
                  f"rss {rss} MiB, load {load:.1f}", flush=True)
    (ot, op), (nt, np_) = best["old"], best["new"]
    print(f"min cpu:          old {ot:.2f} s  new {nt:.2f} s  new/old {nt / ot:.3f}")
    print(f"min packet phase: old {op:.2f} s  new {np_:.2f} s  new/old {np_ / op:.3f}")
    digests = {side: alert_digest(out / side / "eve.json") for side in ("old", "new")}
    same = digests["old"] == digests["new"]
    print(f"alerts: old {digests['old'][0]} ({digests['old'][1]}), new {digests['new'][0]} "
          f"({digests['new'][1]}): {'same set' if same else 'DIFFERENT'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
