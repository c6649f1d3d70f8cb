"""State file: atomic round trip, replay resuming from saved baselines, damaged files."""

from __future__ import annotations

import json

import pytest
from anomaly_helpers import PCAPS, config_with, replay

from netsentry.anomaly import AnomalyEngine, StateError

SPIKE = PCAPS / "anomaly-spike.pcap"


def test_round_trip_is_exact(tmp_path):
    _, eng = replay(SPIKE)
    path = tmp_path / "state" / "anomaly.json"
    eng.save_state(path)
    doc = json.loads(path.read_text())
    assert doc["format"] == "netsentry-anomaly-state" and doc["version"] == 1
    fresh = AnomalyEngine(config_with())
    assert fresh.load_state(path, strict=True) is True
    assert fresh.ctx.baseline.rows() == eng.ctx.baseline.rows()
    assert fresh.stats()["anomaly.state_loaded"] == 1
    assert not list(path.parent.glob("*.tmp"))          # the temp file was renamed away


def test_configured_state_file_loads_at_start_and_saves_on_close(tmp_path):
    path = tmp_path / "anomaly.json"
    cfg = config_with({"state-file": str(path)})
    _, eng = replay(SPIKE, cfg)
    eng.close()
    assert path.exists()
    again = AnomalyEngine(cfg)
    assert again.stats()["anomaly.state_loaded"] == 1
    assert len(again.ctx.baseline) == len(eng.ctx.baseline) > 0


def test_replay_resumes_from_a_saved_baseline(tmp_path):
    """Learn the routine from the first part of the capture, restart, and still catch the spike."""
    from netsentry.capture import open_capture
    records = list(open_capture(SPIKE))
    cut = next(i for i, r in enumerate(records) if r[0] >= records[0][0] + 800)
    head, tail = tmp_path / "head.pcap", tmp_path / "tail.pcap"
    for path, part in ((head, records[:cut]), (tail, records[cut:])):
        write_pcap(path, part)
    state = tmp_path / "anomaly.json"
    cfg = config_with({"state-file": str(state)})
    first, eng = replay(head, cfg)
    eng.close()
    assert first == []
    resumed, _ = replay(tail, cfg)
    assert {e.extra["netsentry"]["anomaly"]["key"] for e in resumed} == {"192.168.1.40", "10.0.0.30"}
    blind, _ = replay(tail, config_with())           # no state: still warming up, nothing fires
    assert blind == []


def write_pcap(path, records):
    import struct
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for ts, data, wirelen, _lt in records:
        usec = round(ts * 1_000_000)
        out.append(struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(data), wirelen) + data)
    path.write_bytes(b"".join(out))


@pytest.mark.parametrize("content", [b'{"format": "netsentry-anomaly-state", "version": 99}',
                                     b'{"format": "netsentry-anomaly-state", "version": 1, "bucket": 10,'
                                     b' "metrics": 2, "baselines": [["10.0.0.300", 1, 2, 3, 0, 0, 0, 0]]}'])
def test_damaged_state_file_warns_and_starts_fresh(tmp_path, content):
    path = tmp_path / "anomaly.json"
    path.write_bytes(content)
    eng = AnomalyEngine(config_with({"state-file": str(path)}))
    stats = eng.stats()
    assert stats["anomaly.state_errors"] == 1 and stats["anomaly.state_loaded"] == 0
    assert len(eng.ctx.baseline) == 0
    assert (tmp_path / "anomaly.json.corrupt").read_bytes() == content
    with pytest.raises(StateError) as info:
        eng.load_state(tmp_path / "anomaly.json.corrupt", strict=True)
    assert "anomaly.json.corrupt" in str(info.value)


def test_state_from_other_bucket_length_is_refused(tmp_path):
    _, eng = replay(SPIKE)
    path = tmp_path / "anomaly.json"
    eng.save_state(path)
    other = AnomalyEngine(config_with({"baseline": {"bucket": 60}}))
    with pytest.raises(StateError, match="10-second buckets, anomaly.baseline.bucket is 60"):
        other.load_state(path, strict=True)


def test_missing_state_file_is_a_quiet_first_start(tmp_path):
    eng = AnomalyEngine(config_with({"state-file": str(tmp_path / "none.json")}))
    assert eng.stats()["anomaly.state_errors"] == 0


# --- a path that is not a netsentry state file is never renamed or replaced (issue #14) ---------

NOT_OURS = {
    "not json": b"{not json",
    "other json": b'{"format": "other"}',
    "a list": b"[1, 2]",
    "passwd": b"root:x:0:0:root:/root:/bin/bash\n",
    "empty": b"",
}


@pytest.mark.parametrize("name", sorted(NOT_OURS))
def test_a_file_that_is_not_a_state_file_is_a_config_error_and_untouched(tmp_path, name):
    from netsentry.config import ConfigError
    path = tmp_path / "passwd"
    path.write_bytes(NOT_OURS[name])
    with pytest.raises(ConfigError) as info:
        AnomalyEngine(config_with({"state-file": str(path)}))
    msg = str(info.value)
    assert msg.startswith("config error: anomaly.state-file: ") and str(path) in msg and "\n" not in msg
    assert path.read_bytes() == NOT_OURS[name]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["passwd"]


def test_a_directory_is_a_config_error_and_untouched(tmp_path):
    from netsentry.config import ConfigError
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "hosts").write_text("127.0.0.1 localhost\n")
    with pytest.raises(ConfigError, match="is a directory"):
        AnomalyEngine(config_with({"state-file": str(etc)}))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["etc"]
    assert (etc / "hosts").read_text() == "127.0.0.1 localhost\n"


def test_save_refuses_to_replace_a_file_that_appeared_and_is_not_ours(tmp_path):
    path = tmp_path / "anomaly.json"
    eng = AnomalyEngine(config_with({"state-file": str(path)}))
    path.write_bytes(b"precious")              # created by someone else after start-up
    eng.close()
    assert path.read_bytes() == b"precious"
    assert eng.stats()["anomaly.state_errors"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anomaly.json"]


def test_replay_with_etc_passwd_like_state_file_exits_2_and_renames_nothing(tmp_path):
    import subprocess
    import sys
    victim = tmp_path / "passwd"
    victim.write_bytes(NOT_OURS["passwd"])
    pcap = tmp_path / "a.pcap"
    write_pcap(pcap, [])
    proc = subprocess.run([sys.executable, "-m", "netsentry", "replay", str(pcap), "-l", str(tmp_path / "out"),
                           "-q", "--set", "anomaly.enabled=true", "--set", f"anomaly.state-file={victim}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("config error: anomaly.state-file:"), proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pcap", "passwd"]
    assert victim.read_bytes() == NOT_OURS["passwd"]
