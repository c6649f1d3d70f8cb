"""Fidelity: the suricata-verify packet-level subset through `netsentry replay`.

Runs ../shared/suricata-verify/sv_harness.py over packet.txt and asserts a
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

# 24 of 25 pass. Open: bug-4663 (its suricata.yaml asks the drop log for
# `flows: all`; the harness passes no config, and netsentry's default, like
# Suricata's, logs a flow's first drop only).
PACKET_FLOOR = 24


def _netsentry() -> str | None:
    exe = Path(sys.executable).parent / "netsentry"
    return str(exe) if exe.exists() else shutil.which("netsentry")


@pytest.mark.shared
@pytest.mark.slow
@pytest.mark.skipif(not HARNESS.exists(), reason=f"suricata-verify subset not found at {SV} (fresh clone)")
def test_packet_subset_pass_floor(tmp_path: Path) -> None:
    exe = _netsentry()
    if exe is None:
        pytest.skip("the netsentry entry point is not installed (pip install -e .)")
    report = tmp_path / "sv.json"
    proc = subprocess.run(
        [sys.executable, str(HARNESS), "--sv-dir", str(SV), "--list", str(SV / "packet.txt"),
         "--cmd", f"{exe} replay {{pcap}} -S {{rules}} -l {{outdir}} {{args}}",
         "--json-report", str(report)],
        cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(report.read_text())
    failed = {name: r["why"] for name, r in results.items() if r["status"] != "pass"}
    passed = len(results) - len(failed)
    assert passed >= PACKET_FLOOR, f"{passed}/{len(results)} passed; failures: {failed}"


# stretch.txt (HTTP/DNS/TLS, issue #11): 62 of 67 pass (92.5%). Open: the three
# threshold-config-rate-filter-pass-* tests need the top-level `threshold-file`
# option (the `core` part of #11); app-layer-protocol-exact and
# detect-app-layer-protocol-04 need HTTP/2 and DNS-over-HTTP/2 detection.
# applayer.txt (the older app-layer subset): 26 of 29. Open: app-layer-protocol-exact
# and http2-long-frame (HTTP/2), tls-alpn-log-detect-02 (Suricata's IDS mode parses
# the ClientHello when the ServerHello acknowledges it, so its alert carries the
# server's ALPN; netsentry parses data as it arrives).
APP_FLOORS = {"stretch.txt": 62, "applayer.txt": 26}


@pytest.mark.shared
@pytest.mark.slow
@pytest.mark.skipif(not HARNESS.exists(), reason=f"suricata-verify subset not found at {SV} (fresh clone)")
@pytest.mark.parametrize("subset", sorted(APP_FLOORS))
def test_app_layer_subset_pass_floor(tmp_path: Path, subset: str) -> None:
    exe = _netsentry()
    if exe is None:
        pytest.skip("the netsentry entry point is not installed (pip install -e .)")
    report = tmp_path / "sv.json"
    proc = subprocess.run(
        [sys.executable, str(HARNESS), "--sv-dir", str(SV), "--list", str(SV / subset), "--jobs", "2",
         "--cmd", f"{exe} replay {{pcap}} -S {{rules}} -l {{outdir}} {{args}}",
         "--json-report", str(report)],
        cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(report.read_text())
    failed = {name: r["why"] for name, r in results.items() if r["status"] != "pass"}
    passed = len(results) - len(failed)
    assert passed >= APP_FLOORS[subset], f"{subset}: {passed}/{len(results)} passed; failures: {failed}"
