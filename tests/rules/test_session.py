"""tcp.session: the phase of a TCP session (setup, established, closing) over a whole replay."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from rules_helpers import rule
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from netsentry.rules import RuleError

C, S = "10.4.0.1", "10.4.0.2"


def session(path: Path) -> Path:
    """1 SYN, 2 SYN/ACK, 3 ACK, 4 data, 5 ACK, 6 FIN (client), 7 ACK, 8 FIN (server), 9 last ACK."""
    cs = Ether() / IP(src=C, dst=S)
    sc = Ether() / IP(src=S, dst=C)
    frames = [
        cs / TCP(sport=40000, dport=80, flags="S", seq=100),
        sc / TCP(sport=80, dport=40000, flags="SA", seq=500, ack=101),
        cs / TCP(sport=40000, dport=80, flags="A", seq=101, ack=501),
        cs / TCP(sport=40000, dport=80, flags="PA", seq=101, ack=501) / Raw(b"hello"),
        sc / TCP(sport=80, dport=40000, flags="A", seq=501, ack=106),
        cs / TCP(sport=40000, dport=80, flags="FA", seq=106, ack=501),
        sc / TCP(sport=80, dport=40000, flags="A", seq=501, ack=107),
        sc / TCP(sport=80, dport=40000, flags="FA", seq=501, ack=107),
        cs / TCP(sport=40000, dport=80, flags="A", seq=107, ack=502),
    ]
    for i, f in enumerate(frames):
        f.time = 1_700_000_000 + i * 0.01
    wrpcap(str(path), frames)
    return path


@pytest.fixture(scope="module")
def hits(tmp_path_factory: pytest.TempPathFactory) -> dict[int, list[int]]:
    tmp = tmp_path_factory.mktemp("session")
    rules = tmp / "t.rules"
    rules.write_text(
        "alert tcp any any -> any any (tcp.session:setup; sid:1;)\n"
        "alert tcp any any -> any any (tcp.session:established; sid:2;)\n"
        "alert tcp any any -> any any (tcp.session:closing; sid:3;)\n"
        "alert tcp any any -> any any (tcp.session:setup,closing; sid:4;)\n"
        "alert tcp any any -> any any (flow:not_established; sid:5;)\n"
        "alert tcp any any -> any any (flow:established; sid:6;)\n")
    out = tmp / "out"
    subprocess.run([sys.executable, "-m", "netsentry", "replay", str(session(tmp / "s.pcap")), "-S", str(rules),
                    "-l", str(out), "-k", "none"], check=True, capture_output=True)
    got: dict[int, list[int]] = {}
    for line in (out / "eve.json").read_text().splitlines():
        r = json.loads(line)
        if r["event_type"] == "alert":
            got.setdefault(r["alert"]["signature_id"], []).append(r["pcap_cnt"])
    return got


def test_setup_and_established_are_flow_not_established_and_established(hits: dict[int, list[int]]) -> None:
    assert hits[1] and hits[1] == hits[5]
    assert hits[2] and hits[2] == hits[6]
    assert not set(hits[1]) & set(hits[2])


def test_closing_follows_the_first_fin_and_overlaps_established(hits: dict[int, list[int]]) -> None:
    assert hits[3] and min(hits[3]) >= 6
    assert set(hits[3]) <= set(hits[2])                 # established stays set while closing
    assert sorted(hits[4]) == sorted(set(hits[1]) | set(hits[3]))


@pytest.mark.parametrize("value, msg", [
    ("setup,setup", "duplicate"),
    ("setup,,closing", "empty token"),
    (",setup", "empty token"),
    ("Setup", "unknown token"),
    ("setup,established,closing,setup,x", "too long"),
])
def test_bad_values(value: str, msg: str) -> None:
    with pytest.raises(RuleError, match=msg):
        rule(f"tcp.session:{value};")


def test_needs_a_tcp_rule() -> None:
    with pytest.raises(RuleError, match="requires a TCP rule"):
        rule("tcp.session:setup;", "alert udp any any -> any any")
    rule("tcp.session:setup;", "alert ip any any -> any any")
