#!/usr/bin/env python3
"""Records/s of netsentry.capture alone: `for ts, data, wirelen, lt in reader: pass`.

usage: bench_capture.py [PCAP] [--repeat N] [--pcapng]

PCAP defaults to /tmp/bench/bench-1m.pcap (make it with
../shared/bench/gen_pcap.py OUT --target 1000000 --seed 777). --pcapng also
times the same packets re-wrapped as a one-interface pcapng (written next to
PCAP as .pcapng on first use). Best of --repeat runs in CPU time, because the
machine is shared. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import struct
import time
from pathlib import Path

from netsentry.capture import open_capture


def to_pcapng(src: Path, dst: Path) -> None:
    """Re-wrap a little-endian microsecond pcap as SHB + IDB + EPBs."""
    buf = src.read_bytes()
    snaplen, linktype = struct.unpack_from("<II", buf, 16)

    def block(btype: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        n = 12 + len(body)
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)

    out = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)),
           block(1, struct.pack("<HHI", linktype, 0, snaplen))]
    off = 24
    while off < len(buf):
        sec, usec, caplen, wirelen = struct.unpack_from("<IIII", buf, off)
        ticks = sec * 1_000_000 + usec
        out.append(block(6, struct.pack("<IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, caplen, wirelen)
                         + buf[off + 16:off + 16 + caplen]))
        off += 16 + caplen
    dst.write_bytes(b"".join(out))


def measure(path: Path, repeat: int) -> tuple[int, float]:
    best = 0.0
    n = 0
    for _ in range(repeat):
        reader = open_capture(path)
        t0 = time.process_time()
        n = 0
        for _ts, _data, _wirelen, _linktype in reader:
            n += 1
        best = max(best, n / (time.process_time() - t0))
    return n, best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pcap", nargs="?", default="/tmp/bench/bench-1m.pcap", type=Path)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--pcapng", action="store_true")
    args = ap.parse_args()
    paths = [args.pcap]
    if args.pcapng:
        ng = args.pcap.with_suffix(".pcapng")
        if not ng.exists():
            to_pcapng(args.pcap, ng)
        paths.append(ng)
    for p in paths:
        n, rate = measure(p, args.repeat)
        print(f"{p.name}: {n} records, best {rate / 1e6:.2f} M records/s")


if __name__ == "__main__":
    main()
