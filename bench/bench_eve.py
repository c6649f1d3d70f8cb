#!/usr/bin/env python3
"""EVE JSON writer cost: µs per event for `EveLog.emit`, and the whole replay's CPU time.

usage: bench_eve.py [PCAP] [-S RULES] [--repeat N] [--replay N] [--writer N]
                    [--against SRC] [--inproc SRC] [--profile]

Writer: the capture is replayed once through `netsentry replay` (the CLI's
own path and configuration) with `EveLog.emit` swapped for a recorder, so
the recorded events are exactly the ones the writer gets in a real run
(242k alerts and 219k flow records on the 1M bench capture with
bench.rules). Then a fresh `EveLog` writes all of them to a temporary file,
timed with process CPU time, best of `--repeat` passes, under the
sensor's collector settings (`netsentry.gcpolicy`). Recorded flows are
rendered in their final state, which costs the same as at alert time.

Replay (`--replay N`): `netsentry replay --no-progress -S RULES` in a child
process, N times; the figure is the child's CPU time (user + sys) and
packets per CPU second, best of N. `--writer N` runs the writer
measurement in N fresh child processes instead of in this one.

A/B (`--against SRC`): every measurement alternates between this tree's
`src/` and SRC (another checkout's `src/`, e.g. a `git worktree` of main),
one child process at a time, so both sides see the same machine load;
best of each side. The box is shared (2 cores, other benchmarks running):
CPU time, alternation and best-of are what make the figures comparable.

In-process A/B (`--inproc SRC`): one replay's events, then passes of this
tree's writer and of SRC's `output/eve.py` + `output/fields.py` (loaded from
their .py sources beside this tree's modules, as a tree without them in
COMPILED_MODULES runs them) alternate in one process, `--repeat` rounds, per
event type; best of each, and whether both wrote the same bytes. One replay
instead of one per measurement, and both sides in the same seconds of load.

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
SHARED_BENCH = REPO / ".." / "shared" / "bench"
PCAP_CANDIDATES = [REPO / "bench" / "out" / "bench-1m.pcap", Path("/work/main/bench/out/bench-1m.pcap")]


def default_pcap() -> Path:
    for p in PCAP_CANDIDATES:
        if p.exists():
            return p
    raise SystemExit("no bench capture: generate it with bench/bench_pipeline.py (bench/out/bench-1m.pcap)")


def record_events(pcap: Path, rules: Path) -> list[Any]:
    """Replay `pcap` through the CLI and return the events the EVE writer was given."""
    from netsentry import cli
    from netsentry.output import eve

    events: list[Any] = []
    original = eve.EveLog.emit
    eve.EveLog.emit = lambda self, event: events.append(event)  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory() as logdir, contextlib.redirect_stdout(sys.stderr):
            rc = cli.main(["replay", "-q", "-S", str(rules), "-l", logdir, str(pcap)])
    finally:
        eve.EveLog.emit = original  # type: ignore[method-assign]
    if rc != 0:
        raise SystemExit(f"replay failed with exit code {rc}")
    return events


def forget_cached_text(events: list[Any]) -> None:
    """Drop what the writer keeps on flows and alerts (`Flow.eve`, `Alert.eve`, where the
    tree has them), so every timed pass pays for making it as a real run does once."""
    for ev in events:
        flow, alert = ev.flow, ev.alert
        if flow is not None and hasattr(flow, "eve"):
            flow.eve = None
        if alert is not None and hasattr(alert, "eve"):
            object.__setattr__(alert, "eve", None)


def time_writer(events: list[Any], repeat: int, profile: bool = False) -> dict[str, Any]:
    """Best-of-`repeat` CPU seconds for one EveLog writing every event (to a temporary file)."""
    from netsentry.gcpolicy import capture_gc
    from netsentry.output import OutputContext
    from netsentry.output.eve import EveLog

    cfg = {"types": ["alert", "drop", "anomaly", "flow", "stats"]}
    best = float("inf")
    size = 0
    with tempfile.TemporaryDirectory() as logdir:
        for _ in range(repeat):
            forget_cached_text(events)
            out = EveLog(cfg, OutputContext(logdir=Path(logdir)))
            emit = out.emit
            prof = None
            if profile:
                import cProfile
                prof = cProfile.Profile()
                prof.enable()
            with capture_gc():
                t0 = time.process_time()
                for ev in events:
                    emit(ev)
                out.close()
                dt = time.process_time() - t0
            if prof is not None:
                import pstats
                prof.disable()
                pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(15)
            size = out.path.stat().st_size
            best = min(best, dt)
    return {"events": len(events), "cpu_s": best, "us_per_event": best / len(events) * 1e6,
            "bytes": size, "types": dict(Counter(ev.event_type for ev in events))}


def load_writer(src: Path, tag: str) -> Any:
    """`EveLog` of another tree's output/eve.py and output/fields.py, run from their
    .py sources as fresh modules (this tree's modules stay as they are)."""
    import types
    fields = types.ModuleType(f"netsentry.output.fields_{tag}")
    fields_py = src / "netsentry" / "output" / "fields.py"
    fields.__file__ = str(fields_py)
    sys.modules[fields.__name__] = fields
    exec(compile(fields_py.read_text(), str(fields_py), "exec"), fields.__dict__)
    eve = types.ModuleType(f"netsentry.output.eve_{tag}")
    eve_py = src / "netsentry" / "output" / "eve.py"
    eve.__file__ = str(eve_py)
    text = eve_py.read_text().replace("from netsentry.output.fields import",
                                      f"from netsentry.output.fields_{tag} import")
    text = text.replace('@register("eve-log")', "")       # one registration: this tree's
    exec(compile(text, str(eve_py), "exec"), eve.__dict__)
    return eve.EveLog


def inproc_ab(pcap: Path, rules: Path, other: Path, rounds: int) -> None:
    """Alternate this tree's writer and `other`'s over one replay's events, per type."""
    from netsentry.gcpolicy import capture_gc
    from netsentry.output import OutputContext
    from netsentry.output.eve import EveLog
    events = record_events(pcap, rules)
    sides = {"this": EveLog, "other": load_writer(other, "other")}
    groups = {"alert": [e for e in events if e.event_type == "alert"],
              "flow": [e for e in events if e.event_type == "flow"], "all": events}
    best: dict[tuple[str, str], float] = {}
    lines: dict[tuple[str, str], bytes] = {}
    with tempfile.TemporaryDirectory() as logdir:
        for rnd in range(rounds):
            for group, evs in groups.items():
                for side, cls in sides.items():
                    forget_cached_text(evs)
                    out = cls({"types": ["alert", "drop", "anomaly", "flow", "stats"],
                               "filename": f"{group}-{side}.json"}, OutputContext(logdir=Path(logdir)))
                    emit = out.emit
                    with capture_gc():
                        t0 = time.process_time()
                        for ev in evs:
                            emit(ev)
                        out.close()
                        dt = time.process_time() - t0
                    best[group, side] = min(best.get((group, side), float("inf")), dt / len(evs) * 1e6)
                    if rnd == 0:
                        lines[group, side] = out.path.read_bytes()
    for group, evs in groups.items():
        this, oth = best[group, "this"], best[group, "other"]
        same = "same bytes" if lines[group, "this"] == lines[group, "other"] else "BYTES DIFFER"
        print(f"{group:6s} {len(evs):>9,} events: this {this:.3f} us, other {oth:.3f} us, "
              f"this/other {this / oth:.3f}, {same} (best of {rounds})")
    print("load average: %.1f %.1f %.1f" % os.getloadavg())


def writer_child(src: Path, pcap: Path, rules: Path, repeat: int, only: str | None) -> dict[str, Any]:
    """One writer measurement in a fresh interpreter importing netsentry from `src`."""
    env = dict(os.environ, PYTHONPATH=str(src))
    cmd = [sys.executable, str(Path(__file__).resolve()), str(pcap), "-S", str(rules),
           "--repeat", str(repeat), "--json"] + (["--only", only] if only else [])
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, cwd="/tmp").stdout
    return json.loads(out.strip().splitlines()[-1])


def replay_child(src: Path, pcap: Path, rules: Path) -> dict[str, Any]:
    """One `netsentry replay` in a child process: its CPU time (user + sys) and packet count."""
    env = dict(os.environ, PYTHONPATH=str(src))
    with tempfile.TemporaryDirectory() as logdir:
        cmd = [sys.executable, "-m", "netsentry.cli", "replay", "--no-progress", "-S", str(rules),
               "-l", logdir, str(pcap)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, cwd="/tmp")
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    m = re.search(r"^packets\s+([\d,]+)", proc.stdout, re.M)
    packets = int(m.group(1).replace(",", "")) if m else 0
    return {"cpu_s": cpu, "wall_s": wall, "packets": packets, "pps_cpu": packets / cpu if cpu else 0.0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pcap", nargs="?", type=Path)
    ap.add_argument("-S", dest="rules", type=Path, default=SHARED_BENCH / "bench.rules")
    ap.add_argument("--repeat", type=int, default=3, help="timed writer passes per process (best of)")
    ap.add_argument("--writer", type=int, default=0, help="writer measurements in N child processes")
    ap.add_argument("--replay", type=int, default=0, help="whole replays (child processes), best of N")
    ap.add_argument("--against", type=Path, help="another src/ to alternate with (A/B)")
    ap.add_argument("--inproc", type=Path, help="another src/ whose writer alternates with this one in-process")
    ap.add_argument("--only", help="time only events of these types (comma-separated), e.g. alert")
    ap.add_argument("--profile", action="store_true", help="cProfile one writer pass (stderr)")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    pcap = args.pcap or default_pcap()
    rules = args.rules.resolve()

    if args.inproc:
        inproc_ab(pcap, rules, args.inproc.resolve(), args.repeat)
        return 0
    sides = [("this", SRC)] + ([("against", args.against.resolve())] if args.against else [])
    if not args.writer and not args.replay:
        if args.against:
            args.writer = 3
        else:
            events = record_events(pcap, rules)
            if args.only:
                wanted = set(args.only.split(","))
                events = [ev for ev in events if ev.event_type in wanted]
            res = time_writer(events, args.repeat, args.profile)
            if args.json:
                print(json.dumps(res))
            else:
                print(f"writer: {res['events']:,} events {res['types']}, {res['bytes']:,} bytes")
                print(f"writer: {res['cpu_s']:.3f} s CPU, {res['us_per_event']:.2f} us/event "
                      f"(best of {args.repeat})")
            return 0

    for label, src in sides:
        print(f"{label}: {src}")
    if args.writer:
        best: dict[str, float] = {}
        for i in range(args.writer):
            for label, src in sides:
                res = writer_child(src, pcap, rules, args.repeat, args.only)
                print(f"writer {label:8s} run {i + 1}: {res['us_per_event']:.3f} us/event "
                      f"({res['cpu_s']:.3f} s CPU, {res['events']:,} events)", flush=True)
                best[label] = min(best.get(label, float("inf")), res["us_per_event"])
        for label, value in best.items():
            print(f"writer {label:8s} best: {value:.3f} us/event")
    if args.replay:
        best_r: dict[str, dict[str, Any]] = {}
        for i in range(args.replay):
            for label, src in sides:
                res = replay_child(src, pcap, rules)
                print(f"replay {label:8s} run {i + 1}: {res['cpu_s']:.2f} s CPU, {res['wall_s']:.2f} s wall, "
                      f"{res['pps_cpu']:,.0f} pkts/CPU-s", flush=True)
                if label not in best_r or res["cpu_s"] < best_r[label]["cpu_s"]:
                    best_r[label] = res
        for label, res in best_r.items():
            print(f"replay {label:8s} best: {res['cpu_s']:.2f} s CPU, {res['pps_cpu']:,.0f} pkts/CPU-s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
