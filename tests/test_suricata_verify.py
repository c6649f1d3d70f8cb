"""Fidelity: the suricata-verify reference lists through `netsentry replay`.

Runs ../shared/suricata-verify/sv_harness.py over each list and asserts a
pass-count floor, so a regression in the engine (or any stage before it)
that breaks Suricata-compatible results fails the suite. Skips, saying why,
in a fresh clone without ../shared or when the `netsentry` entry point is
not installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / ".." / "shared"
SV = SHARED / "suricata-verify"
HARNESS = SV / "sv_harness.py"

def _netsentry() -> str | None:
    exe = Path(sys.executable).parent / "netsentry"
    return str(exe) if exe.exists() else shutil.which("netsentry")


# The reference lists, each test run with its own suricata.yaml ({config}) and
# Suricata's options ({args}: threshold-file, --runmode, ...).
# core.txt (46 packet/stream tests): all pass.
# stretch.txt (HTTP/DNS/TLS, issue #11): all 67 pass (app-layer-protocol-exact and
# detect-app-layer-protocol-04 since HTTP/2 and DNS over HTTP/2, round 11).
# applayer.txt (the older app-layer subset): all 29 pass (http2-long-frame and
# app-layer-protocol-exact since HTTP/2, round 11).
# packet.txt (the older packet-level subset): all pass (bug-4663 needs its own
# `drop: flows: all`, hence {config}).
LIST_FLOORS = {"packet.txt": 25, "core.txt": 46, "stretch.txt": 67, "applayer.txt": 29}


@pytest.mark.shared
@pytest.mark.slow
@pytest.mark.skipif(not HARNESS.exists(), reason=f"suricata-verify subset not found at {SV} (fresh clone)")
@pytest.mark.parametrize("subset", sorted(LIST_FLOORS))
def test_reference_list_pass_floor(tmp_path: Path, subset: str) -> None:
    exe = _netsentry()
    if exe is None:
        pytest.skip("the netsentry entry point is not installed (pip install -e .)")
    report = tmp_path / "sv.json"
    proc = subprocess.run(
        [sys.executable, str(HARNESS), "--sv-dir", str(SV), "--list", str(SV / subset), "--jobs", "2",
         "--cmd", f"{exe} replay {{pcap}} -S {{rules}} -l {{outdir}} --suricata-config {{config}} {{args}}",
         "--json-report", str(report)],
        cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(report.read_text())
    failed = {name: r["why"] for name, r in results.items() if r["status"] != "pass"}
    passed = len(results) - len(failed)
    assert passed >= LIST_FLOORS[subset], f"{subset}: {passed}/{len(results)} passed; failures: {failed}"
