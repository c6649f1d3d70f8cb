"""Every capture shipped with the suricata-verify tests in ../shared reads
without error and agrees, record for record, with scapy's reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from netsentry.capture import open_capture

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
SV_TESTS = SHARED / "suricata-verify" / "tests"

pytestmark = pytest.mark.shared


def captures() -> list[Path]:
    if not SV_TESTS.is_dir():
        return []
    return sorted(p for p in SV_TESTS.rglob("*") if p.suffix in (".pcap", ".pcapng") and p.is_file())


@pytest.mark.skipif(not SV_TESTS.is_dir(), reason=f"{SV_TESTS} not present (plain clone without ../shared)")
@pytest.mark.parametrize("path", captures(), ids=lambda p: str(p.relative_to(SV_TESTS)))
def test_suricata_verify_capture_matches_scapy(path):
    from scapy.utils import RawPcapReader

    ours = list(open_capture(path))
    with RawPcapReader(str(path)) as rd:
        theirs = list(rd)
    assert len(ours) == len(theirs) > 0
    for (ts, data, wirelen, _lt), (sdata, meta) in zip(ours, theirs):
        assert data == sdata
        assert wirelen == meta.wirelen
        if hasattr(meta, "usec"):   # classic pcap metadata (sec, usec)
            assert round(ts * 1e6) == meta.sec * 1_000_000 + meta.usec


def test_shared_sweep_found_captures():
    if not SV_TESTS.is_dir():
        pytest.skip(f"{SV_TESTS} not present (plain clone without ../shared)")
    assert len(captures()) >= 40
