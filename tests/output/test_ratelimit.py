"""The global alert rate limit: a flood of one alert does not bury the rest, drops are
never hidden, and every alert held back is counted."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import pytest

from netsentry.cli import main
from netsentry.log import setup_logging

FLOOD = 100_000


def frame(src: bytes, sport: int, payload: bytes) -> bytes:
    eth = b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\x08\x00"
    udp = struct.pack("!HHHH", sport, 5353, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, src, bytes([10, 0, 0, 2]))
    total = sum(struct.unpack("!10H", ip))
    total = (total & 0xFFFF) + (total >> 16)
    return eth + ip[:10] + struct.pack("!H", ~total & 0xFFFF) + ip[12:] + udp


def write_pcap(path: Path, frames: list[bytes], per_second: int = 1000) -> None:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i, f in enumerate(frames):
        out.append(struct.pack("<IIII", 1_700_000_000 + i // per_second, (i % per_second) * (1_000_000 // per_second),
                               len(f), len(f)))
        out.append(f)
    path.write_bytes(b"".join(out))


def replay(tmp: Path, capsys: pytest.CaptureFixture[str], *args: str) -> list[dict]:
    try:
        status = main(["replay", *args, "-l", str(tmp / "log"), "-q", "--set", "anomaly.enabled=false",
                       "--set", "alert-rate-limit.enabled=true",
                       "--set", "alert-rate-limit.per-signature={rate: 10.0, burst: 100.0}",
                       "--set", "alert-rate-limit.per-source={rate: 50.0, burst: 500.0}"])
    finally:
        setup_logging(stream=sys.__stderr__)        # main() logged to capsys' stream
    err = capsys.readouterr().err
    assert status == 0, err
    return [json.loads(line) for line in (tmp / "log" / "eve.json").read_bytes().splitlines()]


def test_one_rule_matching_100000_times_does_not_bury_the_other(tmp_path: Path, capsys):
    src = bytes([10, 1, 0, 1])
    frames = [frame(src, 4000, b"flood") for _ in range(FLOOD)]
    frames.insert(FLOOD // 2, frame(src, 4000, b"rare"))          # same source, same flow, mid-flood
    write_pcap(tmp_path / "flood.pcap", frames)
    rules = tmp_path / "r.rules"
    rules.write_text('alert udp any any -> any any (msg:"flood"; content:"flood"; sid:1;)\n'
                     'alert udp any any -> any any (msg:"rare"; content:"rare"; sid:2;)\n')
    records = replay(tmp_path, capsys, str(tmp_path / "flood.pcap"), "-S", str(rules))
    alerts = [r for r in records if r["event_type"] == "alert"]
    by_sid = {sid: [a for a in alerts if a["alert"]["signature_id"] == sid] for sid in (1, 2)}
    assert len(by_sid[2]) == 1                                     # the rare alert got through
    seconds = FLOOD // 1000
    # burst 100 then 10/s over the capture's 100 seconds
    assert 100 + 10 * (seconds - 1) <= len(by_sid[1]) <= 100 + 10 * (seconds + 1)
    (stats,) = [r["stats"] for r in records if r["event_type"] == "stats"]
    limited = stats["netsentry"]["alert_rate_limit"]
    assert limited["by_signature"] == FLOOD - len(by_sid[1]) and limited["by_source"] == 0
    assert stats["detect"]["alert"] == FLOOD + 1                   # every match still counted


def test_per_source_limit_and_drops_never_limited(tmp_path: Path, capsys):
    frames = []
    for i in range(3000):                      # one source, many different signatures
        frames.append(frame(bytes([10, 1, 0, 9]), 5000, b"sig%03d" % (i % 100)))
    for _ in range(2000):                      # an IPS drop rule flooding
        frames.append(frame(bytes([10, 1, 0, 7]), 6000, b"blockme"))
    write_pcap(tmp_path / "mix.pcap", frames, per_second=100_000)
    rules = tmp_path / "r.rules"
    rules.write_text("".join(f'alert udp any any -> any any (msg:"s{n}"; content:"sig{n:03d}"; sid:{100 + n};)\n'
                             for n in range(100))
                     + 'drop udp any any -> any any (msg:"block"; content:"blockme"; sid:9;)\n')
    records = replay(tmp_path, capsys, str(tmp_path / "mix.pcap"), "-S", str(rules), "--simulate-ips")
    alerts = [r for r in records if r["event_type"] == "alert"]
    blocked = [a for a in alerts if a["alert"]["signature_id"] == 9]
    assert len(blocked) == 2000 and all(a["alert"]["action"] == "blocked" for a in blocked)
    others = [a for a in alerts if a["alert"]["signature_id"] != 9]
    # the source's burst of 500, plus 50/s over the 30 ms of packet time
    assert 500 <= len(others) <= 502
    (stats,) = [r["stats"] for r in records if r["event_type"] == "stats"]
    assert stats["ips"]["blocked"] == 2000                         # verdicts untouched
    assert stats["netsentry"]["alert_rate_limit"]["by_source"] == 3000 - len(others)


def test_bad_settings_name_their_key(tmp_path: Path, capsys):
    write_pcap(tmp_path / "one.pcap", [frame(bytes([10, 1, 0, 1]), 1, b"x")])
    status = main(["replay", str(tmp_path / "one.pcap"), "-l", str(tmp_path), "-q",
                   "--set", "alert-rate-limit.enabled=true", "--set", "alert-rate-limit.per-source={rate: 0.0, burst: 5.0}"])
    setup_logging(stream=sys.__stderr__)
    err = capsys.readouterr().err
    assert status == 2
    assert "config error: alert-rate-limit.per-source.rate: expected a number > 0, got 0.0" in err
    assert not (tmp_path / "eve.json").exists()          # checked before any output was opened
