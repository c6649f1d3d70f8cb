#!/usr/bin/env python3
"""Nightly fuzzing: the CI fuzz properties with many more examples.

usage: fuzz.py [--scale N] [--minutes M] [PYTEST-ARGS...]

Runs the hostile-input properties (tests/fuzz, plus the capture, decoder and
rule fuzz tests) with NETSENTRY_FUZZ_SCALE=N (default 50: tests/fuzz's CI
counts times 50) and random seeds (CI runs tests/fuzz derandomized). Each pass
is one pytest run; passes repeat until --minutes (default 60) are used up. A
failure prints hypothesis' shrunk example and how to reproduce it; exit
status 1 then. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGETS = [
    "tests/fuzz",
    "tests/capture/test_capture_fuzz.py",
    "tests/decode/test_decode_fuzz.py",
    "tests/rules/test_fuzz.py",
    "tests/rules/test_pcre_re2.py",
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=int, default=50)
    ap.add_argument("--minutes", type=float, default=60.0)
    args, rest = ap.parse_known_args()
    env = dict(os.environ, NETSENTRY_FUZZ_SCALE=str(args.scale))
    deadline = time.monotonic() + args.minutes * 60
    passes = 0
    while True:
        passes += 1
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--hypothesis-show-statistics",
               *TARGETS, *rest]
        print(f"pass {passes}: NETSENTRY_FUZZ_SCALE={args.scale}", flush=True)
        proc = subprocess.run(cmd, cwd=REPO, env=env)
        if proc.returncode != 0:
            return 1
        if time.monotonic() >= deadline:
            print(f"{passes} passes, no failure")
            return 0


if __name__ == "__main__":
    sys.exit(main())
