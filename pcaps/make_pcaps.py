#!/usr/bin/env python3
"""Build the bundled sample captures from the scenario modules next to this file.

    python pcaps/make_pcaps.py                 # (re)write every capture into pcaps/
    python pcaps/make_pcaps.py --out /tmp/x    # somewhere else
    python pcaps/make_pcaps.py --check         # regenerate in memory, compare with the committed files
    python pcaps/make_pcaps.py benign-web.pcap # only the named captures

Each scenario module (``scenarios_benign``, ``scenarios_signatures``,
``scenarios_anomaly`` -- the last is optional) defines ``SCENARIOS``: a dict
of output file name -> function returning scapy packets with ``.time`` set.
The driver sorts each capture by time (stable) and writes classic pcap,
Ethernet link type, microsecond timestamps, with its own writer rather than
scapy's ``wrpcap`` so the file header does not depend on the scapy version.

Why ``--check``: the captures are committed (a user's demo needs no scapy
run), so a test regenerates them and insists on byte-identical output; any
drift between a scenario and its committed capture fails with the file name.
"""

from __future__ import annotations

import argparse
import importlib
import struct
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Scenario modules, in the order their captures are listed. Optional ones may be absent.
SCENARIO_MODULES: tuple[tuple[str, bool], ...] = (
    ("scenarios_benign", True),
    ("scenarios_signatures", True),
    ("scenarios_anomaly", False),
)

LINKTYPE_ETHERNET = 1
SNAPLEN = 65535
MAX_BYTES = 200 * 1024     # keep the repository light: each sample capture stays under this


def load_scenarios(modules: Iterable[tuple[str, bool]] = SCENARIO_MODULES) -> dict[str, Callable[[], list]]:
    """Collect ``SCENARIOS`` from every module; a file name claimed twice is an error."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    found: dict[str, Callable[[], list]] = {}
    owner: dict[str, str] = {}
    for name, required in modules:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name and not required:
                continue
            raise
        scenarios = getattr(mod, "SCENARIOS", None)
        if not isinstance(scenarios, dict):
            raise SystemExit(f"make_pcaps: {name}.py defines no SCENARIOS dict")
        for fname, fn in scenarios.items():
            if not fname.endswith(".pcap"):
                raise SystemExit(f"make_pcaps: {name}.SCENARIOS[{fname!r}]: file name must end in .pcap")
            if fname in found:
                raise SystemExit(f"make_pcaps: {fname} is produced by both {owner[fname]} and {name}")
            found[fname], owner[fname] = fn, name
    return found


def pcap_bytes(packets: list, name: str = "?") -> bytes:
    """Classic pcap (LE magic a1b2c3d4, v2.4, Ethernet) of the packets, sorted by time."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET)]
    ordered = sorted(enumerate(packets), key=lambda ip: (float(ip[1].time), ip[0]))
    for n, (_i, pkt) in enumerate(ordered, 1):
        data = bytes(pkt)
        usec = round(float(pkt.time) * 1_000_000)
        if usec <= 0:
            raise SystemExit(f"make_pcaps: {name}: packet {n} has no sensible .time ({pkt.time!r})")
        out.append(struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(data), len(data)))
        out.append(data)
    return b"".join(out)


def render(fname: str, scenarios: dict[str, Callable[[], list]]) -> bytes:
    """The pcap bytes of one capture, checked against the size budget."""
    data = pcap_bytes(scenarios[fname](), fname)
    if len(data) > MAX_BYTES:
        raise SystemExit(f"make_pcaps: {fname} is {len(data)} bytes, over the {MAX_BYTES}-byte budget")
    return data


def build(names: Iterable[str], scenarios: dict[str, Callable[[], list]], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fname in names:
        path = out / fname
        path.write_bytes(render(fname, scenarios))
        written.append(path)
    return written


def check(names: list[str], scenarios: dict[str, Callable[[], list]], committed: Path,
          strays: bool = True) -> list[str]:
    """One problem line per capture that differs from its scenario's output, is missing,
    or (with ``strays``) sits in ``committed`` with no scenario producing it.

    Regenerates in memory and builds only captures that exist, so a check
    of a partial directory stays cheap.
    """
    problems = []
    for fname in names:
        ref = committed / fname
        if not ref.exists():
            problems.append(f"{ref}: missing (run make_pcaps.py to create it)")
        elif ref.read_bytes() != render(fname, scenarios):
            problems.append(f"{ref}: differs from what its scenario generates (run make_pcaps.py and commit)")
    if strays:
        problems += [f"{p}: no scenario produces it (stale capture?)"
                     for p in sorted(committed.glob("*.pcap")) if p.name not in scenarios]
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="only these capture file names (default: all)")
    ap.add_argument("--out", type=Path, default=HERE, help="output directory (default: the script's directory)")
    ap.add_argument("--check", action="store_true",
                    help="regenerate in memory and compare with the files in --out; exit 1 on any difference")
    args = ap.parse_args(argv)

    scenarios = load_scenarios()
    names = args.names or list(scenarios)
    unknown = [n for n in names if n not in scenarios]
    if unknown:
        ap.error(f"no scenario produces {', '.join(unknown)} (known: {', '.join(sorted(scenarios))})")

    if args.check:
        problems = check(names, scenarios, args.out, strays=not args.names)
        for line in problems:
            print(f"make_pcaps: {line}", file=sys.stderr)
        if not problems:
            print(f"make_pcaps: {len(names)} captures match their scenarios")
        return 1 if problems else 0

    for path in build(names, scenarios, args.out):
        print(f"{path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
