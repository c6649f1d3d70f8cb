"""--profile-rules (detect/profile.py): exact per-rule checks and matches on a crafted
capture, and the one slow rule among many at the top of the report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

REPO = Path(__file__).resolve().parents[2]
A, B, R = "10.0.0.1", "10.0.0.2", "10.0.0.3"


def _udp(src: str, dst: str, sport: int, dport: int, payload: bytes, t: float):
    p = Ether() / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / payload
    p.time = t
    return p


def _capture(path: Path) -> Path:
    dns = Ether() / IP(src=A, dst=R) / UDP(sport=5353, dport=53) / DNS(rd=1, qd=DNSQR(qname="example.com"))
    dns.time = 5.0
    wrpcap(str(path), [
        _udp(A, B, 1000, 9999, b"hello world", 1.0),
        _udp(A, B, 1000, 9999, b"hello there", 2.0),
        _udp(A, B, 1000, 9999, b"bye", 3.0),
        _udp(B, A, 9999, 1000, b"hello back", 4.0),
        dns,
    ])
    return path


RULES = """\
alert udp any any -> any any (msg:"hello"; content:"hello"; sid:10; rev:2;)
alert udp any any -> any any (msg:"hello world"; content:"hello"; fast_pattern; content:"world"; distance:0; sid:11; rev:1;)
alert udp any any -> any any (msg:"pcre only"; pcre:"/^bye/"; sid:12; rev:1;)
alert udp any any -> any any (msg:"never a candidate"; content:"nomatch-xyz"; sid:13; rev:1;)
alert dns any any -> any any (msg:"dns query"; dns.query; content:"example"; sid:14; rev:1;)
"""


def _run(tmp_path: Path, capture: Path, rules: str, *extra: str) -> tuple[list[dict], str, list[str]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    rfile = tmp_path / "p.rules"
    rfile.write_text(rules)
    logdir = tmp_path / "out"
    cmd = [sys.executable, "-m", "netsentry", "replay", str(capture), "-S", str(rfile), "-l", str(logdir),
           "-q", "--set", "detect.rule-cache=false", "--set", "anomaly.enabled=false", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    perf = logdir / "rule_perf.log"
    records = [json.loads(line) for line in perf.read_text().splitlines()] if perf.exists() else []
    alerts = sorted(line for line in (logdir / "eve.json").read_text().splitlines()
                    if json.loads(line)["event_type"] == "alert")
    return records, proc.stderr, alerts


def test_checks_and_matches_are_exact(tmp_path: Path) -> None:
    records, err, _ = _run(tmp_path, _capture(tmp_path / "c.pcap"), RULES, "--profile-rules")
    got = {r["signature_id"]: (r["checks"], r["matches"], r["inspection"]) for r in records}
    assert got == {
        10: (3, 3, "packet"),     # prefilter-confirmed: the three packets holding "hello"
        11: (3, 1, "packet"),     # candidate on the same three, matches only "hello world"
        12: (5, 1, "packet"),     # no fast pattern: a candidate on every UDP packet
        14: (1, 1, "tx"),         # one DNS transaction, to-server
    }
    for r in records:
        assert r["gid"] == 1 and r["ticks_unit"] == "ns" and r["sort"] == "ticks"
        assert r["ticks_total"] >= r["ticks_max"] > 0
        assert r["ticks_avg"] == r["ticks_total"] // r["checks"]
    assert {r["signature_id"]: r["rev"] for r in records}[10] == 2
    assert [r["rank"] for r in records] == [1, 2, 3, 4]
    assert sorted(records, key=lambda r: -r["ticks_total"]) == records
    assert "rule profiling: top 4 of 4 rules checked" in err


def test_profiling_changes_no_alert(tmp_path: Path) -> None:
    capture = _capture(tmp_path / "c.pcap")
    _, _, plain = _run(tmp_path / "a", capture, RULES)
    records, _, profiled = _run(tmp_path / "b", capture, RULES, "--profile-rules")
    assert plain == profiled and len(plain) == 6     # sids 10 x3, 11, 12, 14
    assert not (tmp_path / "a" / "out" / "rule_perf.log").exists()


def test_top_n_limits_the_report(tmp_path: Path) -> None:
    records, err, _ = _run(tmp_path, _capture(tmp_path / "c.pcap"), RULES, "--profile-rules",
                           "--profile-rules-top", "2")
    assert [r["rank"] for r in records] == [1, 2]
    assert "top 2 of 4 rules checked" in err


def test_the_slow_rule_is_at_the_top(tmp_path: Path) -> None:
    """One rule that backtracks hard on the crafted payload (a relative pcre retried after
    each of 1,000 'a's: ~20 ms a check, against ~2 us for a cheap one), among 300 cheap rules."""
    rules = "".join(f'alert udp any any -> any any (msg:"cheap {i}"; content:"tok{i:03d}"; sid:{1000 + i};)\n'
                    for i in range(300))
    rules += ('alert udp any any -> any any (msg:"slow"; content:"aaaa"; content:"a"; distance:0; '
              'pcre:"/^a{5}b/R"; sid:999; rev:1;)\n')
    payload = b" ".join(b"tok%03d" % i for i in range(0, 300, 7)) + b" " + b"a" * 1000
    capture = tmp_path / "slow.pcap"
    wrpcap(str(capture), [_udp(A, B, 1000 + i, 9999, payload, 1.0 + i) for i in range(20)])
    records, _, _ = _run(tmp_path, capture, rules, "--profile-rules")
    assert records[0]["signature_id"] == 999
    assert records[0]["checks"] == 20 and records[0]["matches"] == 0
    assert len(records) == 20
    # the 43 cheap rules whose token is in the payload were checked and matched on every packet
    cheap = [r for r in records if r["signature_id"] != 999]
    assert all(r["checks"] == r["matches"] == 20 for r in cheap)


def test_profiling_needs_one_process(tmp_path: Path) -> None:
    rfile = tmp_path / "p.rules"
    rfile.write_text(RULES)
    proc = subprocess.run([sys.executable, "-m", "netsentry", "replay", str(_capture(tmp_path / "c.pcap")),
                           "-S", str(rfile), "-l", str(tmp_path / "o"), "-q", "--profile-rules",
                           "--workers", "2"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode != 0 and "--profile-rules runs in one process" in proc.stderr
