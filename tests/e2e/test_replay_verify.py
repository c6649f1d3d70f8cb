"""Every capture shipped with suricata-verify replays without a crash, and the
stats record's decoder.pkts equals the packet count an independent reader (scapy) finds.

Captures whose link type no decoder handles must be refused up front with
one line and exit status 1 (as Suricata refuses them), not crash.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from scapy.utils import PcapReader

from netsentry.cli import main
from netsentry.decode.link import LINKTYPES

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
VERIFY = SHARED / "suricata-verify" / "tests"
CAPTURES = sorted(p for p in VERIFY.glob("*/*") if p.suffix in (".pcap", ".pcapng")) if VERIFY.is_dir() else []

pytestmark = pytest.mark.shared


def scapy_view(path: Path) -> tuple[int, set[int]]:
    """(packet count, link types) as scapy reads the file."""
    count = 0
    linktypes: set[int] = set()
    with PcapReader(str(path)) as reader:
        for pkt in reader:
            count += 1
    with PcapReader(str(path)) as reader:
        lt = getattr(reader, "linktype", None)
        if lt is not None:
            linktypes.add(lt)
        for iface in getattr(reader, "interfaces", []) or []:
            linktypes.add(iface[0])
    return count, linktypes


@pytest.mark.skipif(not CAPTURES, reason=f"{VERIFY} not present (a plain clone has no ../shared)")
@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_replay_counts_every_packet(capture: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    import logging
    logging.getLogger("scapy").setLevel(logging.ERROR)
    expected, linktypes = scapy_view(capture)
    status = main(["replay", str(capture), "-l", str(tmp_path), "-q"])
    err = capsys.readouterr().err
    if linktypes - set(LINKTYPES):
        assert status == 1
        (line,) = [ln for ln in err.splitlines() if "unsupported link type" in ln]
        assert str(capture) in line
        return
    assert status == 0, err
    records = [orjson.loads(line) for line in (tmp_path / "eve.json").read_bytes().splitlines()]
    (stats,) = [r["stats"] for r in records if r["event_type"] == "stats"]
    assert stats["decoder"]["pkts"] == expected
    assert all(r["timestamp"].endswith("+0000") for r in records)
