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

    def off_main() -> None:
        result.append(limit.install(0.05))      # a reload building its engine: must not raise
        result.append(limit.search(re.compile(rb"b").search, b"abc", 0) is not None)
        result.append(limit.installed)          # a search off the main thread is unguarded
    worker = threading.Thread(target=off_main)
    worker.start()
    worker.join()
    assert result == [True, True, False] and not limit.installed
    # the main thread applies the request at its next search
    assert limit.search(re.compile(rb"b").search, b"abc", 0) is not None
    assert limit.installed and limit.seconds == 0.05
    assert limit.install(0) is False and not limit.installed
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
    # RE2 runs this pattern in linear time (pcre_re2.py): nothing to cut off
    assert res["stats"]["netsentry"]["detect"]["pcre_timeouts"] == 0


# A back-reference keeps the pattern off RE2: PCRE2 runs it with Suricata's step limits
# (pcre_pcre2.py), or Python's re under the time limit without the binding; either way
# it is budgeted, and given up on a flow that keeps exhausting the budget.
BACKREF_RULES = (
    'alert udp any 53 -> any any (msg:"backref bomb"; content:"|00 00 00 00 00 00|"; offset:6; depth:6; '
    'pcre:"/^(\\w+\\s?)+\\1$/R"; sid:2;)\n'
)


def test_a_flow_that_keeps_hitting_the_budget_stops_running_the_rule(tmp_path: Path) -> None:
    from netsentry.rules.keywords.payload import PCRE_STRIKES
    bomb = DNS_HEADER + b"ab " * 30 + b"#"
    # five bombs on one flow (same ports), then one on a second flow, then a real match there
    res = _replay_flows(tmp_path, BACKREF_RULES,
                        [(33000, bomb)] * 5 + [(33001, bomb), (33002, DNS_HEADER + b"abab")])
    assert res["alerts"] == [2]
    detect = res["stats"]["netsentry"]["detect"]      # netsentry's own counters (not in Suricata's stats)
    assert detect["pcre_timeouts"] == PCRE_STRIKES + 1           # not five: the first flow struck out
    assert detect["pcre_flow_disabled"] == 1


def _replay_flows(tmp_path: Path, rules: str, packets: list[tuple[int, bytes]]) -> dict:
    frames = []
    for i, (dport, payload) in enumerate(packets):
        f = (Ether(src="00:11:22:33:44:55", dst="66:77:88:99:aa:bb")
             / IP(src="198.51.100.53", dst="10.0.0.9") / UDP(sport=53, dport=dport) / payload)
        f.time = 1_700_000_000 + i
        frames.append(f)
    pcap = tmp_path / "flows.pcap"
    wrpcap(str(pcap), frames)
    (tmp_path / "bomb.rules").write_text(rules)
    out = tmp_path / "out"
    proc = subprocess.run([str(BIN), "replay", str(pcap), "-S", str(tmp_path / "bomb.rules"), "-l", str(out),
                           "-q"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    records = [orjson.loads(line) for line in (out / "eve.json").read_bytes().splitlines()]
    return {"alerts": [r["alert"]["signature_id"] for r in records if r["event_type"] == "alert"],
            "stats": next(r for r in records if r["event_type"] == "stats")["stats"]}



def test_engine_choice_and_step_limit() -> None:
    from rules_helpers import rule

    from netsentry.rules.pcre_pcre2 import available as have_pcre2
    linear = rule('pcre:"/^(?:.[a-z0-9-]{2,}){2,}\\x00\\x00(?:\\x01|\\x1c)/i";')
    backref = rule('pcre:"/^(\\w+\\s?)+\\1$/";')
    (a,) = [it for it in linear.payload_chain.items if hasattr(it, "engine")]
    (b,) = [it for it in backref.payload_chain.items if hasattr(it, "engine")]
    assert a.engine == "re2"
    assert b.engine == ("pcre2" if have_pcre2() else "re")
    before = LIMIT.timeouts
    assert backref.payload_chain.run(b"abab") is True
    assert backref.payload_chain.run(b"ab " * 30 + b"#") is False
    assert LIMIT.timeouts == before + (1 if have_pcre2() else 0) or not LIMIT.installed
