#!/usr/bin/env python3
"""Throughput of the hot path: read, read+decode, read+decode+flow (packets/s).

usage: bench_pipeline.py [PCAP] [--reader auto|capture|inline] [--repeat N] [--profile STAGE]

Without PCAP it uses bench/out/bench-1m.pcap, generating it first with
../shared/bench/gen_pcap.py --target 1000000 --seed 777 when missing. Each
stage runs ``--repeat`` times and the best run is reported (the machine is
shared; the best run is the least disturbed one). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import struct
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_GEN = REPO / ".." / "shared" / "bench" / "gen_pcap.py"
DEFAULT_PCAP = REPO / "bench" / "out" / "bench-1m.pcap"


def inline_reader(path: str):
    """Minimal classic-pcap reader (microsecond, either byte order), used when
    netsentry.capture is unavailable or to separate reader cost from ours."""
    with open(path, "rb") as f:
        buf = f.read()
    magic = struct.unpack_from("<I", buf, 0)[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    scale = 1e-9 if magic in (0xA1B23C4D, 0x4D3CB2A1) else 1e-6
    linktype = struct.unpack_from(endian + "I", buf, 20)[0] & 0x0FFFFFFF
    rec = struct.Struct(endian + "IIII").unpack_from
    off, n = 24, len(buf)
    while off + 16 <= n:
        sec, frac, incl, orig = rec(buf, off)
        off += 16
        yield sec + frac * scale, buf[off:off + incl], orig, linktype
        off += incl


def make_source(path: str, reader: str):
    if reader in ("auto", "capture"):
        try:
            from netsentry.capture import open_capture
        except ImportError:
            if reader == "capture":
                raise
        else:
            return lambda: open_capture(path), "netsentry.capture.open_capture"
    return lambda: inline_reader(path), "inline reader"


def stage_read(source) -> int:
    n = 0
    for _ts, _data, _wirelen, _lt in source():
        n += 1
    return n


def stage_decode(source) -> int:
    from netsentry.decode import Decoder
    decode = Decoder().decode
    n = 0
    for ts, data, wirelen, lt in source():
        n += 1
        pkt = decode(data, lt)
        pkt.ts = ts
        pkt.pcap_cnt = n
        pkt.wirelen = wirelen
    return n


def flow_config() -> dict:
    """The flow section of the bundled configuration, as the sensor passes it."""
    try:
        from netsentry.config import get, load_defaults
    except ImportError:
        return {}
    cfg = load_defaults()
    flow_cfg = dict(get(cfg, "flow", {}))
    flow_cfg["midstream"] = bool(get(cfg, "stream.midstream", False))
    return flow_cfg


def stage_flow(source, stats_out: dict | None = None) -> int:
    from netsentry.decode import Decoder
    from netsentry.flow import FlowTable
    decoder = Decoder()
    decode = decoder.decode
    ended = [0]

    def on_end(flow) -> None:   # the sensor turns it into a flow event and lets it go
        ended[0] += 1

    table = FlowTable(flow_config(), on_end)
    update = table.update
    n = 0
    for ts, data, wirelen, lt in source():
        n += 1
        pkt = decode(data, lt)
        pkt.ts = ts
        pkt.pcap_cnt = n
        pkt.wirelen = wirelen
        update(pkt)
    table.flush("shutdown")
    if stats_out is not None:
        stats_out.update(decoder.stats())
        stats_out.update(table.stats())
        stats_out["ended"] = ended[0]
    return n


def gc_context(mode: str):
    """The collector settings the sensor runs its loop with (``sensor``), or the defaults."""
    if mode == "sensor":
        from netsentry.gcpolicy import capture_gc
        return capture_gc()
    return contextlib.nullcontext()


STAGES = {"read": stage_read, "read+decode": stage_decode, "read+decode+flow": stage_flow}


def ensure_pcap(path: Path) -> None:
    if path.exists():
        return
    if not SHARED_GEN.exists():
        sys.exit(f"{path} is missing and the generator {SHARED_GEN} is not available; pass a PCAP path")
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(SHARED_GEN), str(path), "--target", "1000000", "--seed", "777"],
                   check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pcap", nargs="?", default=str(DEFAULT_PCAP))
    ap.add_argument("--reader", choices=("auto", "capture", "inline"), default="auto")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset of " + ", ".join(STAGES))
    ap.add_argument("--gc", choices=("sensor", "default"), default="sensor",
                    help="collector settings: the sensor's (netsentry.gcpolicy) or Python's defaults")
    ap.add_argument("--profile", choices=tuple(STAGES), help="run one stage under cProfile instead")
    a = ap.parse_args()
    if a.pcap == str(DEFAULT_PCAP):
        ensure_pcap(DEFAULT_PCAP)
    source, source_name = make_source(a.pcap, a.reader)
    print(f"capture: {a.pcap}  reader: {source_name}  python {sys.version.split()[0]}"
          f"  flow config: {flow_config()}")
    if a.profile:
        prof = cProfile.Profile()
        prof.runcall(STAGES[a.profile], source)
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)
        return 0
    best_us: dict[str, float] = {}
    for name in a.stages.split(","):
        fn = STAGES[name]
        best = best_cpu = float("inf")
        n = 0
        for _ in range(a.repeat):
            with gc_context(a.gc):
                t0, c0 = time.perf_counter(), time.process_time()
                n = fn(source)
                best = min(best, time.perf_counter() - t0)
                best_cpu = min(best_cpu, time.process_time() - c0)
        best_us[name] = best_cpu / n * 1e6
        # wall time is what a user sees; CPU time is what we control on a shared machine
        print(f"{name:18s} {n:>9d} pkts  wall {best:7.3f} s {n / best:>10,.0f} pkts/s"
              f"  cpu {best_cpu:7.3f} s {n / best_cpu:>10,.0f} pkts/s  {best_us[name]:6.3f} us/pkt")
    stages = list(best_us)
    for prev, cur in zip(stages, stages[1:]):
        print(f"  {cur} - {prev}: {best_us[cur] - best_us[prev]:.3f} us/pkt (cpu)")
    if "read+decode+flow" in best_us:
        stats: dict = {}
        stage_flow(source, stats)
        keys = ("decoder.pkts", "decoder.tcp", "decoder.udp", "decoder.icmpv4", "decoder.invalid",
                "flow.total", "flow.tcp", "flow.udp", "flow.icmpv4", "flow.timeout", "flow.evicted", "ended")
        print("  " + "  ".join(f"{k}={stats.get(k)}" for k in keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
