"""`bypass`: once the rule matched, the flow's later packets are only counted (local bypass)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from rules_helpers import rule
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from netsentry.rules import RuleError

A, B = "10.2.0.1", "10.2.0.2"


def udp_flow(path: Path, payloads: list[bytes], sport: int = 4500, dport: int = 4500) -> Path:
    frames = []
    for i, data in enumerate(payloads):
        src, dst, sp, dp = (A, B, sport, dport) if i % 2 == 0 else (B, A, dport, sport)
        f = Ether() / IP(src=src, dst=dst) / UDP(sport=sp, dport=dp) / Raw(data)
        f.time = 1_700_000_000 + i * 0.01
        frames.append(f)
    wrpcap(str(path), frames)
    return path


def replay(tmp_path: Path, pcap: Path, rules: str) -> list[dict]:
    (tmp_path / "t.rules").write_text(rules)
    out = tmp_path / "out"
    subprocess.run([sys.executable, "-m", "netsentry", "replay", str(pcap), "-S", str(tmp_path / "t.rules"),
                    "-l", str(out), "-k", "none"], check=True, capture_output=True)
    return [json.loads(line) for line in (out / "eve.json").read_text().splitlines()]


def alerts(recs: list[dict], sid: int) -> list[int]:
    return [r["pcap_cnt"] for r in recs if r["event_type"] == "alert" and r["alert"]["signature_id"] == sid]


def flow_record(recs: list[dict]) -> dict:
    (flow,) = [r for r in recs if r["event_type"] == "flow"]
    return flow


def test_later_packets_of_a_bypassed_flow_are_not_inspected(tmp_path: Path) -> None:
    pcap = udp_flow(tmp_path / "u.pcap", [b"hello one", b"BYPASS me", b"hello three", b"hello four"])
    recs = replay(tmp_path, pcap,
                  'alert udp any any -> any any (content:"BYPASS"; bypass; sid:1;)\n'
                  'alert udp any any -> any any (content:"hello"; sid:2;)\n')
    assert alerts(recs, 1) == [2]
    assert alerts(recs, 2) == [1]          # packets 3 and 4 come after the bypass
    flow = flow_record(recs)["flow"]
    assert flow["state"] == "bypassed" and flow["bypass"] == "local"
    assert list(flow).index("bypass") == list(flow).index("state") + 1
    assert flow["pkts_toserver"] + flow["pkts_toclient"] == 4      # still counted
    assert "action" not in flow


def test_the_matching_packet_itself_is_inspected_whole(tmp_path: Path) -> None:
    pcap = udp_flow(tmp_path / "u.pcap", [b"BYPASS and hello", b"hello again"])
    recs = replay(tmp_path, pcap,
                  'alert udp any any -> any any (content:"BYPASS"; bypass; sid:1;)\n'
                  'alert udp any any -> any any (content:"hello"; sid:2;)\n')
    assert alerts(recs, 1) == [1] and alerts(recs, 2) == [1]


def test_a_pass_rule_with_bypass_leaves_the_flow_bypassed(tmp_path: Path) -> None:
    pcap = udp_flow(tmp_path / "u.pcap", [b"\x00\x00\x00\x00 first", b"reply", b"hello"])
    recs = replay(tmp_path, pcap,
                  'pass udp any any -> any any (content:"|00 00 00 00|"; depth:4; bypass; sid:1;)\n'
                  'alert udp any any -> any any (content:"hello"; sid:2;)\n')
    assert alerts(recs, 2) == []
    assert flow_record(recs)["flow"]["state"] == "bypassed"


def test_other_flows_are_untouched(tmp_path: Path) -> None:
    udp_flow(tmp_path / "a.pcap", [b"BYPASS", b"hello"], sport=1111)
    udp_flow(tmp_path / "b.pcap", [b"hello", b"hello"], sport=2222)
    from scapy.utils import rdpcap
    frames = list(rdpcap(str(tmp_path / "a.pcap"))) + list(rdpcap(str(tmp_path / "b.pcap")))
    for i, f in enumerate(frames):
        f.time = 1_700_000_000 + i * 0.01
    wrpcap(str(tmp_path / "ab.pcap"), frames)
    recs = replay(tmp_path, tmp_path / "ab.pcap",
                  'alert udp any any -> any any (content:"BYPASS"; bypass; sid:1;)\n'
                  'alert udp any any -> any any (content:"hello"; sid:2;)\n')
    assert alerts(recs, 2) == [3, 4]
    states = sorted(r["flow"]["state"] for r in recs if r["event_type"] == "flow")
    assert states == ["bypassed", "established"]


def test_bypass_takes_no_value_and_refuses_filestore() -> None:
    with pytest.raises(RuleError, match="takes no value"):
        rule("bypass:1;")
    with pytest.raises(RuleError, match="filestore"):
        rule('content:"a"; filestore; bypass;', "alert http any any -> any any")
    rule('content:"a"; bypass;')
