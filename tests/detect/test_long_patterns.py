"""Contents longer than Hyperscan's pattern limit (issue #14): `rules check` said they load,
then replay died with hyperscan.error. They load, are prefiltered on a prefix, and match
exactly as their whole content says, with every backend."""

from __future__ import annotations

import subprocess
import sys

import pytest
from detect_helpers import udp

from netsentry.detect.prefilter import available_backends
from netsentry.rules.inspect import MAX_PREFILTER_PATTERN

BACKENDS = available_backends()


def _hex(data: bytes) -> str:
    return "|" + data.hex(" ") + "|"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("length,nul", [(16_001, False), (16_001, True), (5_000, True), (40_000, False)])
def test_content_past_the_hyperscan_limit_loads_and_matches_exactly(detect, backend, length, nul):
    body = (b"\x00" if nul else b"A") + bytes(65 + i % 26 for i in range(length - 1))
    rules = (f'alert udp any any -> any any (msg:"long"; content:"{_hex(body)}"; sid:1;)\n'
             f'alert udp any any -> any any (msg:"long2"; content:"{_hex(body)}"; '
             f'fast_pattern:only; sid:2;)\n')
    near_miss = body[:-1] + b"!"             # same prefix (what the prefilter sees), other last byte
    run = detect.run(rules, [udp("10.0.0.1", "10.0.0.2", 5, 6, b"x" + body + b"y"),
                             udp("10.0.0.1", "10.0.0.2", 5, 6, b"x" + near_miss + b"y")],
                     config={"detect": {"prefilter": backend}})
    assert sorted(run.sids_at(1)) == [1, 2]
    assert run.sids_at(2) == []


def test_prefilter_patterns_are_capped(detect):
    eng = detect.engine(f'alert udp any any -> any any (content:"{"a" * (MAX_PREFILTER_PATTERN + 500)}"; sid:1;)\n'
                        f'alert udp any any -> any any (content:"{"b" * 5000}"; fast_pattern:10,4000; sid:2;)\n')
    assert [len(s.fast_pattern.fp_bytes) for s in eng.sigs] == [MAX_PREFILTER_PATTERN] * 2


def test_rules_check_and_replay_agree_on_a_100k_content(tmp_path):
    rules = tmp_path / "big.rules"
    rules.write_text(f'alert tcp any any -> any any (msg:"huge"; content:"{"z" * 100_000}"; sid:7;)\n'
                     f'alert tcp any any -> any any (msg:"huge nul"; content:"|00|{"z" * 16_001}"; sid:8;)\n')
    check = subprocess.run([sys.executable, "-m", "netsentry", "rules", "check", str(rules)],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    pcap = tmp_path / "t.pcap"
    from scapy.utils import wrpcap
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    wrpcap(str(pcap), [Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=2) / (b"z" * 1000)])
    proc = subprocess.run([sys.executable, "-m", "netsentry", "replay", str(pcap), "-S", str(rules),
                           "-l", str(tmp_path / "out"), "-q"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
