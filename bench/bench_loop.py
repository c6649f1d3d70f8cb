#!/usr/bin/env python3
"""The capture loop's own cost (src/netsentry/capture_loop.py), its forms side by side.

usage: bench_loop.py [PCAP] [--packets N] [--repeat N] [--parts a,b,...] [--real]

The loop runs over N records read into memory first. By default every stage
is a C builtin that does (nearly) nothing: `decode` is a dict lookup of the
packet decoded beforehand, `flow_update` a dict lookup of its flow (the real
flow table ran once beforehand), the other stages `operator.is_` (False: no
events). What is timed is then the loop's own work: its bytecode or C, the
attribute stores and reads it does on packets and flows. ``--real`` runs the
real decoder and flow table instead (fresh per run), with the same
do-nothing stages: the loop among the stages it always calls.
The variants differ only in the loop itself:

* ``compiled``: `capture_loop` as the extension runs it (its parts as C flags);
  absent when the module is not built;
* ``pure-specialised``: the pure-Python loop `loop_for` gives (the same source
  with the flag tests of the parts taken out, the parts that are off removed);
* ``pure-flags``: the source run as pure Python as it stands, flags tested per
  packet (what the pure path would cost without `specialise`);
* each of them again without the app layer's packet gate (``-nogate``): every
  packet gets the `app_packet` call.

Runs alternate (every variant once, then again), best of --repeat, CPU time
(process_time), µs per packet. The default parts are the bench replay's
(``replay -S bench.rules`` with the bundled configuration). Not part of the tests.
"""

from __future__ import annotations

import argparse
import gc
import operator
import os
import sys
import time
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

from netsentry import capture_loop as cl  # noqa: E402
from netsentry.capture import open_capture  # noqa: E402
from netsentry.config import load_config  # noqa: E402
from netsentry.decode import Decoder  # noqa: E402
from netsentry.flow import FlowTable  # noqa: E402
from netsentry.gcpolicy import capture_gc  # noqa: E402

BENCH_PARTS = "anomaly,applayer,decoder-anomalies,defrag,flow-records,signatures,stream"


class FakeSensor:
    _clock = [0.0]        # the loop stores packet time here (Sensor._now)
    _carry = None


def pure_flags() -> Callable[..., None]:
    """The loop source compiled as it stands (flags tested per packet), as pure Python."""
    namespace = dict(vars(cl))
    exec(compile("\n".join(cl.loop_source()), "<capture loop, flags>", "exec"), namespace)  # noqa: S102
    return namespace["capture_loop"]


def new_flow_table() -> FlowTable:
    config = load_config(None, [])
    flow_cfg = dict(config.get("flow") or {})
    flow_cfg["midstream"] = False
    return FlowTable(flow_cfg, lambda f: None)


def run_once(loop: Callable[..., None], records: list, parts: frozenset[str], gate: Any,
             stubs: tuple[Callable[..., Any], Callable[..., Any]] | None) -> float:
    flows = None
    if stubs is None:
        flows = new_flow_table()
        decode, flow_update = Decoder().decode, flows.update
    else:
        decode, flow_update = stubs
    nop = operator.is_            # two arguments, returns False: "no events"
    state = [0, 0.0]
    with capture_gc():
        t = time.process_time()
        loop(records, state, FakeSensor(), decode, flow_update, nop, nop, None, None,
             nop, None, None, nop, nop, nop, None, None, [], gate, parts=parts)
        spent = time.process_time() - t
    assert state[0] == len(records)
    if flows is not None:
        flows.flush("shutdown")
    return spent


def stub_stages(records: list) -> tuple[list, tuple[Callable[..., Any], Callable[..., Any]]]:
    """Records whose `data` is an index, `decode` and `flow_update` as dict lookups of the
    packets and flows the real decoder and flow table made for them beforehand."""
    decode = Decoder().decode
    flows = new_flow_table()
    packets: dict[int, Any] = {}
    flow_of: dict[Any, Any] = {}
    out = []
    for i, (ts, data, wirelen, linktype) in enumerate(records):
        pkt = decode(data, linktype)
        pkt.ts = ts
        packets[i] = pkt
        flow_of[pkt] = flows.update(pkt)
        out.append((ts, i, wirelen, linktype))
    return out, (packets.get, flow_of.get)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pcap", nargs="?", default="/work/bench-data/bench-1m.pcap")
    ap.add_argument("--packets", type=int, default=300_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--parts", default=BENCH_PARTS)
    ap.add_argument("--real", action="store_true", help="the real decoder and flow table")
    args = ap.parse_args()
    parts = frozenset(p for p in args.parts.split(",") if p)
    records = []
    for rec in open_capture(args.pcap):
        records.append(rec)
        if len(records) >= args.packets:
            break
    stubs = None
    if not args.real:
        records, stubs = stub_stages(records)
    gate = ((1 << 6) | (1 << 17), 0x03)          # AppLayer.packet_gate with the stream stage
    specialised = cl.specialise(parts)
    variants: dict[str, tuple[Callable[..., None], Any]] = {}
    if cl.COMPILED:
        variants["compiled"] = (cl.capture_loop, gate)
        variants["compiled-nogate"] = (cl.capture_loop, None)
    variants["pure-specialised"] = (specialised, gate)
    variants["pure-specialised-nogate"] = (specialised, None)
    variants["pure-flags"] = (pure_flags(), gate)
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        for name, (loop, g) in variants.items():
            spent = run_once(loop, records, parts, g, stubs) / len(records) * 1e6
            best[name] = min(best.get(name, spent), spent)
            gc.collect()
    print(f"{len(records)} packets, {'real decode+flow' if args.real else 'stub stages'}, parts {sorted(parts)}, best of {args.repeat}, load {os.getloadavg()[0]:.1f}")
    for name, us in best.items():
        print(f"  {name:26s} {us:6.3f} us/packet")
    return 0


if __name__ == "__main__":
    sys.exit(main())
