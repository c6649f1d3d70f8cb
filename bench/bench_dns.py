#!/usr/bin/env python3
"""DNS wire-format cost: µs per message for `applayer/dns.py`'s probe and parse.

usage: bench_dns.py [PCAP] [--limit N] [--repeat N] [--against SRC]

The UDP port-53 payloads of the capture (bench-300k: ~62k messages, queries
and responses with answers) are collected once; then `_probe_any` (what a new
UDP flow's first datagram costs) and `parse_message` (what every message
costs once DNS transactions are read: tx rules, dns records) are timed over
all of them, process CPU time, best of `--repeat`.

A/B (`--against SRC`): another tree's `applayer/dns.py` is loaded from its
source as a fresh module beside this one and both are timed in alternation in
this process (same seconds of load), and their results compared message by
message (queries, records, events) so a faster parse is also the same parse.
The box is shared: alternation and best-of make the figures comparable.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from netsentry.applayer import dns  # noqa: E402
from netsentry.capture import read_captures  # noqa: E402
from netsentry.decode import Decoder  # noqa: E402

DEFAULT_PCAP = Path("/work/bench-data/bench-300k.pcap")


def dns_payloads(pcap: Path, limit: int) -> list[bytes]:
    """UDP payloads to or from port 53, in capture order."""
    dec = Decoder()
    out: list[bytes] = []
    for rec in read_captures([pcap]):
        _ts, frame, _wirelen, linktype = rec
        pkt = dec.decode(frame, linktype)
        if pkt.proto == 17 and (pkt.sp == 53 or pkt.dp == 53) and pkt.payload_len:
            off = pkt.payload_off
            out.append(bytes(pkt.data[off:off + pkt.payload_len]))
            if len(out) >= limit:
                break
    return out


def load_other(src: Path) -> Any:
    """Another tree's applayer/dns.py as a fresh module (its registrations go to a dummy)."""
    path = src / "netsentry" / "applayer" / "dns.py"
    spec = importlib.util.spec_from_file_location("netsentry.applayer.dns_other", path)
    mod = importlib.util.module_from_spec(spec)          # type: ignore[arg-type]
    from netsentry.applayer import registry
    saved = (registry.register_buffer, registry.register_protocol)
    registry.register_buffer = lambda *a, **k: None      # type: ignore[assignment]
    registry.register_protocol = lambda *a, **k: None    # type: ignore[assignment]
    try:
        spec.loader.exec_module(mod)                     # type: ignore[union-attr]
    finally:
        registry.register_buffer, registry.register_protocol = saved
    return mod


def timed(fn: Any, msgs: list[bytes], *args: Any) -> float:
    t0 = time.process_time()
    for m in msgs:
        fn(m, *args)
    return time.process_time() - t0


def summary(m: Any) -> Any:
    if m is None:
        return None
    return (m.id, m.flags, m.queries, m.answers, m.authorities, m.additionals, sorted(m.events))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pcap", nargs="?", type=Path, default=DEFAULT_PCAP)
    ap.add_argument("--limit", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--against", type=Path, help="another tree's src/ to alternate with")
    args = ap.parse_args()
    msgs = dns_payloads(args.pcap, args.limit)
    responses = sum(1 for m in msgs if len(m) > 2 and m[2] & 0x80)
    print(f"{len(msgs):,} DNS messages ({responses:,} responses), "
          f"{sum(map(len, msgs)) / max(len(msgs), 1):.0f} bytes each on average")
    sides = [("this", dns)]
    if args.against is not None:
        other = load_other(args.against)
        sides.insert(0, ("other", other))
        diff = sum(1 for m in msgs if summary(dns.parse_message(m)) != summary(other.parse_message(m)))
        pdiff = sum(1 for m in msgs if dns._probe_any(m, True) != other._probe_any(m, True))
        print(f"messages parsed differently: {diff}, probed differently: {pdiff}")
    best: dict[tuple[str, str], float] = {}
    for _ in range(args.repeat):
        for name, mod in sides:
            for what, fn, extra in (("parse_message", mod.parse_message, ()), ("_probe_any", mod._probe_any, (True,))):
                dt = timed(fn, msgs, *extra)
                best[(name, what)] = min(best.get((name, what), float("inf")), dt)
    for what in ("parse_message", "_probe_any"):
        figs = {name: best[(name, what)] / len(msgs) * 1e6 for name, _ in sides}
        line = ", ".join(f"{name} {us:.3f} µs/msg" for name, us in figs.items())
        if "other" in figs:
            line += f", ratio {figs['this'] / figs['other']:.3f}"
        print(f"{what}: {line} (best of {args.repeat})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
