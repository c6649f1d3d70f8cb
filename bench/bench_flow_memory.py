#!/usr/bin/env python3
"""Memory per live flow: the flow table alone (tracemalloc) and the whole sensor (peak RSS).

usage: bench_flow_memory.py [--flows N] [--mode table,stages,replay] [--pcap OUT]
                            [--against OTHER/src] [--by-line] [--rules FILE]

`table`: N flows (one SYN and one data segment each, all within the
timeouts, so all N stay live) go through `FlowTable.update` as real decoder
output; tracemalloc's traced bytes after minus before, divided by N, is the
table's cost per live flow (the Flow record, its keys, the dict slots, the
timer wheel). The decoded packets are dropped as they go, so only what the
table keeps is counted. `--by-line` prints the top allocation sites.

`stages`: the same flows through a whole `Sensor` (stream, app layer,
anomaly and signature engines with ../shared/bench/bench.rules, no output),
tracemalloc per live flow, and each stage's per-flow state measured
separately by clearing it (stream, app, anomaly, detect, eve).

`replay`: writes the capture to `--pcap` (default bench/out/flows-N.pcap) and
runs a whole sensor over it in a child process as `netsentry replay -S
bench.rules --set flow.max-flows=N+1` wires it (outputs on): anonymous RSS with
the N flows live (before the end-of-run flush) minus before the run, over N, is
the whole sensor's bytes per live flow; peak RSS is printed too (it includes the
mmapped capture file).

`--against DIR` runs the same measurement with another tree's `src` first
(e.g. /work/ns-base/src), for a before/after in one sitting.

Every mode prints which path ran (`path:` lines): for each netsentry module
that has a compiled extension built, whether the process imported the
extension or fell back to its .py (stale, `NETSENTRY_PURE=1`, or a stale type
layout: netsentry/_compiled.py), and the rules file with its rule count.
Both matter to the figure: the stream's share depends on the rules (IDS raw
inspection keeps each direction's unacknowledged bytes only for rule groups
that read the stream), and the compiled records are smaller than the pure
ones. The rules file must exist: a run without it measured a sensor with no
rules (bench/README.md, `memc`: the compiled baseline's 990 against 1,237 B).
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
RULES = HERE.parent.parent / "shared" / "bench" / "bench.rules"
T0 = 1_700_000_000.0
RULES_PATH = RULES          # --rules
REQUEST = b"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: bench\r\n\r\n"


def frame(src: int, dst: int, sp: int, dp: int, seq: int, ack: int, flags: int, payload: bytes) -> bytes:
    """Ethernet + IPv4 + TCP, checksums zero (replay runs with -k none)."""
    tcp = struct.pack("!HHIIBBHHH", sp, dp, seq, ack, 5 << 4, flags, 65535, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), 1, 0, 64, 6, 0,
                     src.to_bytes(4, "big"), dst.to_bytes(4, "big"))
    return b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00" + ip + tcp + payload


def flow_frames(n: int):  # type: ignore[no-untyped-def]
    """(ts, frame) for n concurrent TCP flows: a SYN, then a request segment (PSH|ACK).
    Clients 10.0.0.0/8 spread over ports, servers 192.168.0.0/16 on port 80; 10 us
    apart, so 262,144 flows span 5 s of packet time (far inside every timeout)."""
    for i in range(n):
        c = 0x0A000000 + (i >> 4)
        s = 0xC0A80000 + (i & 0xFFFF)
        cp = 1024 + (i * 7919) % 60000
        ts = T0 + i * 1e-5
        yield ts, frame(c, s, cp, 80, 1000, 0, 0x02, b"")
        yield ts + 5e-6, frame(c, s, cp, 80, 1001, 1, 0x18, REQUEST)


def write_pcap(path: Path, n: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for ts, data in flow_frames(n):
            sec = int(ts)
            f.write(struct.pack("<IIII", sec, int(round((ts - sec) * 1e6)), len(data), len(data)))
            f.write(data)


def path_line() -> str:
    """Which path this process ran, module by module: the netsentry modules that have a
    compiled extension built, split into those imported compiled and those imported from
    their .py (and which were not imported at all), plus `_compiled.status()`."""
    from netsentry import _compiled
    built = _compiled.built_modules()
    ran_c: list[str] = []
    ran_py: list[str] = []
    for name in built:
        mod = sys.modules.get(name)
        if mod is None:
            continue
        (ran_py if (getattr(mod, "__file__", "") or "").endswith(".py") else ran_c).append(name)
    line = f"path: {len(ran_c)} modules compiled, {len(ran_py)} from .py (of {len(built)} built)"
    if ran_py and ran_c:
        line += "; from .py: " + ", ".join(ran_py)
    return line + f" [{_compiled.status()}]"


def rules_line(rs) -> str:  # type: ignore[no-untyped-def]
    return f"path: rules {RULES_PATH} ({len(rs.signatures):,} signatures)"


def measure_table(n: int, by_line: bool) -> None:
    from netsentry.config import load_config
    from netsentry.decode import Decoder
    from netsentry.flow import FlowTable
    config = load_config(None, [])
    flow_cfg = dict(config["flow"])
    flow_cfg["max-flows"] = n + 1
    dec = Decoder()
    table = FlowTable(flow_cfg, lambda f: None)
    frames = list(flow_frames(n))
    gc.collect()
    tracemalloc.start(1)
    base = tracemalloc.get_traced_memory()[0]
    snap0 = tracemalloc.take_snapshot() if by_line else None
    update, decode = table.update, dec.decode
    for ts, data in frames:
        pkt = decode(data, 1)
        pkt.ts = ts
        update(pkt)
    pkt = None
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    snap1 = tracemalloc.take_snapshot() if by_line else None
    tracemalloc.stop()
    print(path_line())
    print(f"table: {len(table):,} live flows, {used / len(table):,.0f} B/flow (tracemalloc)")
    if by_line:
        for stat in snap1.compare_to(snap0, "lineno")[:12]:
            print(f"  {stat.size_diff / n:8.1f} B/flow  {stat.count_diff / n:5.2f} blocks/flow  {stat.traceback}")


def measure_stages(n: int, by_line: bool) -> None:
    from netsentry.config import load_config
    from netsentry.sensor import Sensor
    from netsentry.rules import load_rules
    config = load_config(None, [f"flow.max-flows={n + 1}"])
    from netsentry.output import OutputContext, open_outputs
    rs = load_rules([str(RULES_PATH)], config)
    sensor = Sensor(config, [], rs)
    # the bundled outputs (eve.json with its http records), as the replay has them:
    # records wanted make the app layer keep transactions
    out = tempfile.mkdtemp(prefix="flowmem-")
    sensor.attach_outputs(open_outputs(config.get("outputs") or {}, OutputContext(logdir=Path(out))))
    frames = [(ts, data, len(data), 1) for ts, data in flow_frames(n)]
    gc.collect()
    tracemalloc.start(1)
    base = tracemalloc.get_traced_memory()[0]
    snap0 = tracemalloc.take_snapshot() if by_line else None
    sensor.run(frames)
    del frames
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    snap1 = tracemalloc.take_snapshot() if by_line else None
    live = list(sensor.flows.live_flows())
    print(path_line())
    print(rules_line(rs))
    print(f"sensor: {len(live):,} live flows, {used / len(live):,.0f} B/flow (tracemalloc, all stages)")
    if by_line:
        for stat in snap1.compare_to(snap0, "lineno")[:15]:
            print(f"  {stat.size_diff / n:8.1f} B/flow  {stat.count_diff / n:5.2f} blocks/flow  {stat.traceback}")
    for attr in ("stream", "app", "anomaly", "detect", "eve", "flowbits", "flowints", "exception_policy"):
        before = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else None
        if before is None:
            tracemalloc.start(1)
            before = tracemalloc.get_traced_memory()[0]
        for f in live:
            setattr(f, attr, None)
        gc.collect()
        freed = before - tracemalloc.get_traced_memory()[0]
        print(f"  flow.{attr:<16} {freed / len(live):8,.0f} B/flow")
    tracemalloc.stop()
    for o in sensor.outputs:       # not sensor.finish(): the stages' state was cleared above
        o.close()
    shutil.rmtree(out, ignore_errors=True)


CHILD = """
import sys, time
from pathlib import Path
from netsentry.capture import read_captures
from netsentry.config import load_config
from netsentry.output import OutputContext, open_outputs
from netsentry.rules import load_rules
from netsentry.sensor import Sensor

def status():
    d = {}
    for line in open("/proc/self/status"):
        k, _, v = line.partition(":")
        if k in ("VmHWM", "RssAnon"):
            d[k] = int(v.split()[0]) * 1024
    return d

pcap, rules, cap, out, bench = sys.argv[1:6]
sys.path.append(bench)
from bench_flow_memory import path_line
config = load_config(None, [f"flow.max-flows={cap}"])
rs = load_rules([rules], config)
print(f"{path_line()}; {len(rs.signatures):,} signatures")
sensor = Sensor(config, [], rs)
sensor.attach_outputs(open_outputs(config.get("outputs") or {}, OutputContext(logdir=Path(out))))
before = status()
sensor.run(read_captures([pcap]))
after = status()
live = len(sensor.flows)
sensor.finish()
print(before["RssAnon"], after["RssAnon"], live, status()["VmHWM"])
"""


def replay_rss(src: str | None, pcap: Path, n: int) -> tuple[int, int, int, int]:
    """A child process runs the sensor as `replay` wires it (bench.rules, the bundled
    outputs) over pcap: anonymous RSS before the run and with every flow still live
    (before the end-of-run flush), live flows, and peak RSS. Anonymous, because
    the capture file is mmapped and its pages count in RSS too."""
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
    with tempfile.TemporaryDirectory(prefix="flowmem-") as out:
        cmd = [sys.executable, "-c", CHILD, str(pcap), str(RULES_PATH), str(n + 1), out, str(HERE)]
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        lines = res.stdout.strip().splitlines()
        print("\n".join(line for line in lines if line.startswith("path:")))
        before, after, live, peak = map(int, lines[-1].split())
        return before, after, live, peak


def measure_replay(n: int, pcap: Path, src: str | None) -> None:
    if not pcap.exists():
        write_pcap(pcap, n)
    before, after, live, peak = replay_rss(src, pcap, n)
    print(f"sensor ({src or 'this tree'}): {live:,} live flows, anonymous RSS {before / 2**20:,.0f} MB before, "
          f"{after / 2**20:,.0f} MB with them: {(after - before) / live:,.0f} B/live flow; "
          f"peak RSS {peak / 2**20:,.0f} MB (capture mapping included)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--flows", type=int, default=262_144)
    ap.add_argument("--mode", default="table,stages,replay")
    ap.add_argument("--pcap", type=Path)
    ap.add_argument("--against", help="another tree's src directory to measure first (replay mode)")
    ap.add_argument("--by-line", action="store_true")
    ap.add_argument("--rules", type=Path, default=RULES, help=f"rules file (default {RULES})")
    a = ap.parse_args()
    global RULES_PATH
    RULES_PATH = a.rules.resolve()
    if not RULES_PATH.is_file():
        sys.exit(f"bench_flow_memory.py: rules file {RULES_PATH} not found (a sensor without "
                 "rules keeps less stream state: pass --rules ../shared/bench/bench.rules)")
    modes = a.mode.split(",")
    if "table" in modes:
        measure_table(a.flows, a.by_line)
    if "stages" in modes:
        measure_stages(a.flows, a.by_line)
    if "replay" in modes:
        pcap = a.pcap or HERE / "out" / f"flows-{a.flows}.pcap"
        if a.against:
            measure_replay(a.flows, pcap, a.against)
        measure_replay(a.flows, pcap, None)


if __name__ == "__main__":
    main()
