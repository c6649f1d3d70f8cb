"""SIGHUP reopens eve.json: the repository's logrotate snippet, run by Debian's
logrotate during a replay, splits the records across two files with none lost
and none written twice; and the reopen itself, unit by unit."""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netsentry.event import Event
from netsentry.output import OutputContext, open_outputs

REPO = Path(__file__).resolve().parents[2]
SNIPPET = REPO / "logrotate" / "netsentry"
LOGROTATE = shutil.which("logrotate") or ("/usr/sbin/logrotate" if os.path.exists("/usr/sbin/logrotate") else None)
PACKETS = 40_000


def udp_pcap(path: Path, count: int) -> None:
    """`count` Ethernet/IPv4/UDP packets, each its own flow (so each alerts), written directly (fast)."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    eth = b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\x08\x00"
    payload = b"rotate-me"
    for i in range(count):
        udp = struct.pack("!HHHH", 1024 + i % 60000, 5353, 8 + len(payload), 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                         bytes([10, 1, i // 60000, 1]), bytes([10, 0, 0, 2]))
        total = sum(struct.unpack("!10H", ip))
        total = (total & 0xFFFF) + (total >> 16)
        ip = ip[:10] + struct.pack("!H", ~total & 0xFFFF) + ip[12:]     # a valid IPv4 header checksum
        frame = eth + ip + udp
        out.append(struct.pack("<IIII", 1_700_000_000 + i // 1000, (i % 1000) * 1000, len(frame), len(frame)))
        out.append(frame)
    path.write_bytes(b"".join(out))


def alert_counts(*files: Path) -> list[int]:
    cnts = []
    for f in files:
        for line in f.read_bytes().splitlines():
            rec = json.loads(line)
            if rec["event_type"] == "alert":
                cnts.append(rec["pcap_cnt"])
    return cnts


@pytest.mark.skipif(LOGROTATE is None, reason="logrotate not installed (setup.sh installs Debian's logrotate)")
def test_logrotate_during_a_replay_loses_and_repeats_nothing(tmp_path: Path):
    capture = tmp_path / "many.pcap"
    udp_pcap(capture, PACKETS)
    rules = tmp_path / "every.rules"
    rules.write_text('alert udp any any -> any any (msg:"every packet"; sid:1;)\n')
    logdir = tmp_path / "log"
    logdir.mkdir()
    eve = logdir / "eve.json"
    pidfile = tmp_path / "netsentry.pid"
    conf = tmp_path / "logrotate.conf"
    conf.write_text(SNIPPET.read_text().replace("/var/log/netsentry/", f"{logdir}/")
                    .replace("/run/netsentry.pid", str(pidfile)))
    proc = subprocess.Popen([sys.executable, "-m", "netsentry", "replay", str(capture), "-S", str(rules),
                             "-l", str(logdir), "-q", "--set", "outputs.eve-log.types=[alert, stats]", "--set", "anomaly.enabled=false"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        pidfile.write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + 60
        while not (eve.exists() and eve.stat().st_size) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        # hold the replay still while logrotate renames and signals, as a busy sensor
        # would be mid-stream: the HUP is then handled before its next packet
        os.kill(proc.pid, signal.SIGSTOP)
        assert proc.poll() is None, "the replay ended before the rotation; make the capture longer"
        rotate = subprocess.run([LOGROTATE, "-f", "-s", str(tmp_path / "state"), str(conf)],
                                capture_output=True, text=True, timeout=30)
        assert rotate.returncode == 0, rotate.stderr
        os.kill(proc.pid, signal.SIGCONT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()
    rotated = logdir / "eve.json.1"
    assert rotated.exists() and eve.exists(), sorted(p.name for p in logdir.iterdir())
    old, new = alert_counts(rotated), alert_counts(eve)
    assert old and new, "both files hold records: the rotation happened mid-replay"
    assert max(old) < min(new)                       # the split is at one packet
    assert sorted(old + new) == list(range(1, PACKETS + 1))   # nothing lost, nothing twice
    assert json.loads(eve.read_bytes().splitlines()[-1])["event_type"] == "stats"


def test_reopen_without_rotation_appends(tmp_path: Path):
    (out,) = open_outputs({"eve-log": {"enabled": True, "types": ["stats"]}}, OutputContext(logdir=tmp_path))
    out.emit(Event("stats", 1.0, extra={"stats": {"uptime": 1}}))
    out.reopen()                 # a SIGHUP with no rotation must not truncate
    out.emit(Event("stats", 2.0, extra={"stats": {"uptime": 2}}))
    out.close()
    lines = (tmp_path / "eve.json").read_bytes().splitlines()
    assert [json.loads(ln)["stats"]["uptime"] for ln in lines] == [1, 2]


def test_reopen_failure_keeps_writing_the_old_file(tmp_path: Path):
    logdir = tmp_path / "log"
    (out,) = open_outputs({"eve-log": {"enabled": True, "types": ["stats"]}}, OutputContext(logdir=logdir))
    out.emit(Event("stats", 1.0, extra={"stats": {"uptime": 1}}))
    os.rename(logdir / "eve.json", tmp_path / "eve.json.1")
    os.rmdir(logdir)             # the new file cannot be created
    out.reopen()
    out.emit(Event("stats", 2.0, extra={"stats": {"uptime": 2}}))
    out.close()
    assert len((tmp_path / "eve.json.1").read_bytes().splitlines()) == 2
