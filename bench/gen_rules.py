#!/usr/bin/env python3
"""Generate the large synthetic ruleset for bench_detect.py (workload b).

usage: gen_rules.py OUT.rules [--count 10000] [--seed 1] [--real ../shared/bench/bench.rules]

The set is the real bench rules (so workload b still alerts on the capture)
plus random content rules up to `--count`: 6-14 byte patterns of printable
ASCII, about a third `nocase`, a fifth with a second content, spread over
protocols and ports the way an ET-style ruleset is (mostly `tcp any any`,
some to/from service ports, some udp/icmp), so grouping and the prefilter
are exercised and the random patterns almost never match. Deterministic for
a given seed.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REAL = REPO / ".." / "shared" / "bench" / "bench.rules"
ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-=?&%:"

# (weight, protocol, header ports "sp -> dp")
HEADERS = [
    (50, "tcp", "any any -> any any"),
    (15, "tcp", "any any -> any 80"),
    (8, "tcp", "any 80 -> any any"),
    (5, "tcp", "any any -> any [443,8443]"),
    (4, "tcp", "any any -> any 1024:"),
    (8, "udp", "any any -> any 53"),
    (4, "udp", "any 53 -> any any"),
    (3, "udp", "any any -> any any"),
    (3, "icmp", "any any -> any any"),
]


def content(rng: random.Random) -> str:
    pat = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(6, 14)))
    if rng.random() < 0.15:   # some binary bytes, written as |hex|
        cut = rng.randint(1, len(pat) - 1)
        pat = pat[:cut] + "|%02x %02x|" % (rng.randrange(256), rng.randrange(256)) + pat[cut:]
    opt = f'content:"{pat}";'
    if rng.random() < 0.33:
        opt += " nocase;"
    return opt


def generate(count: int, seed: int, real: Path) -> list[str]:
    rng = random.Random(seed)
    lines = [ln.strip() for ln in real.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    weights = [w for w, _p, _h in HEADERS]
    sid = 3_000_000
    while len(lines) < count:
        _w, proto, hdr = rng.choices(HEADERS, weights)[0]
        opts = content(rng)
        if rng.random() < 0.2:
            opts += " " + content(rng)
        sid += 1
        lines.append(f'alert {proto} {hdr} (msg:"GEN random content {sid}"; {opts} '
                     f"classtype:misc-activity; sid:{sid}; rev:1;)")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--real", type=Path, default=DEFAULT_REAL)
    a = ap.parse_args()
    lines = generate(a.count, a.seed, a.real)
    Path(a.out).write_text("\n".join(lines) + "\n")
    print(f"{a.out}: {len(lines)} rules (seed {a.seed})")


if __name__ == "__main__":
    main()
