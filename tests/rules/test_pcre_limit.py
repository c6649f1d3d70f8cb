"""The CPU-time limit on pcre evaluations (rules/pcre_limit.py): a backtracking bomb in a
packet costs the sensor detect.pcre-time-limit, not minutes, and is counted."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest
from scapy.all import IP, UDP, Ether, wrpcap  # type: ignore[import-untyped]

from netsentry.rules.pcre_limit import LIMIT, MatchTimeLimit, PcreTimeout

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).with_name("netsentry")
# the shape of ET Open sid 2022542 (CVE-2015-7547): exponential on letters without the terminator
BOMB = rb"^(?:.[a-z0-9-]{2,}){2,}\x00\x00(?:\x01|\x1c)"
DNS_HEADER = b"\x12\x34\x83\x80\x00\x01\x00\x00\x00\x00\x00\x00"


def test_a_backtracking_bomb_is_cut_off_within_the_budget() -> None:
    limit = MatchTimeLimit()
    assert limit.install(0.05)
    try:
        rx = re.compile(BOMB, re.S)
        t0 = time.process_time()
        with pytest.raises(PcreTimeout):
            limit.search(rx.search, b"a" * 80, 0)       # minutes without the limit
        assert time.process_time() - t0 < 2.0
        assert limit.timeouts == 1
        # an ordinary search right after is unaffected (the timer was disarmed)
        assert limit.search(rx.search, b".ab.cd\x00\x00\x01", 0) is not None
        time.sleep(0)                                   # no stray signal left to fire
    finally:
        limit.uninstall()


def test_off_the_main_thread_or_at_zero_searches_run_unguarded() -> None:
    limit = MatchTimeLimit()
    result = []
    worker = threading.Thread(target=lambda: result.append(limit.install(0.05)))
    worker.start()
    worker.join()
    assert result == [False] and not limit.installed
    assert limit.install(0) is False
    assert limit.search(re.compile(rb"b").search, b"abc", 0) is not None


def test_uninstall_restores_the_previous_handler() -> None:
    import signal
    before = signal.getsignal(signal.SIGVTALRM)
    limit = MatchTimeLimit()
    limit.install(0.05)
    assert signal.getsignal(signal.SIGVTALRM) != before
    limit.uninstall()
    assert signal.getsignal(signal.SIGVTALRM) == before


def _replay(tmp_path: Path, rules: str, payloads: list[bytes], *extra: str) -> dict:
    frames = []
    for i, payload in enumerate(payloads):
        f = (Ether(src="00:11:22:33:44:55", dst="66:77:88:99:aa:bb")
             / IP(src="198.51.100.53", dst="10.0.0.9") / UDP(sport=53, dport=33000 + i) / payload)
        f.time = 1_700_000_000 + i
        frames.append(f)
    pcap = tmp_path / "dns.pcap"
    wrpcap(str(pcap), frames)
    (tmp_path / "bomb.rules").write_text(rules)
    out = tmp_path / "out"
    proc = subprocess.run([str(BIN), "replay", str(pcap), "-S", str(tmp_path / "bomb.rules"), "-l", str(out),
                           "-q", *extra], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    records = [orjson.loads(line) for line in (out / "eve.json").read_bytes().splitlines()]
    return {"alerts": [r["alert"]["signature_id"] for r in records if r["event_type"] == "alert"],
            "stats": next(r for r in records if r["event_type"] == "stats")["stats"]}


RULES = (
    'alert udp any 53 -> any any (msg:"bomb"; content:"|83 80 00 01 00 00 00 00 00 00|"; offset:2; depth:10; '
    'pcre:"/^(?:.[a-z0-9-]{2,}){2,}\\x00\\x00(?:\\x01|\\x1c)/Ri"; sid:1;)\n'
)


def test_replay_survives_the_bomb_and_still_matches_the_real_thing(tmp_path: Path) -> None:
    bomb = DNS_HEADER + b"a" * 80                      # no terminator: exponential backtracking
    real = DNS_HEADER + b"\x03abc\x03def\x00\x00\x01"  # what the rule is after
    t0 = time.monotonic()
    res = _replay(tmp_path, RULES, [bomb, real])
    assert time.monotonic() - t0 < 60
    assert res["alerts"] == [1]                        # the real one, not the bomb
    assert res["stats"]["netsentry"]["detect"]["pcre_timeouts"] == 1

