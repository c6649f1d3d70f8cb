"""Packets with a bad checksum under checksum validation (suricata-verify detect-chksum-*):
Suricata's stream engine skips such a TCP segment, but detection inspects it as a
packet, so `tcpv4-csum:invalid` (and the other checksum keywords) alert on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP

from netsentry.config import load_config
from netsentry.output.eve import render
from netsentry.output.memory import MemoryOutput
from netsentry.rules import load_rules
from netsentry.sensor import Sensor


def run(tmp_path: Path, rules: str, frames: list[bytes], validate: bool) -> tuple[Sensor, list[dict]]:
    rf = tmp_path / "t.rules"
    rf.write_text(rules)
    cfg = load_config(None, ["stream.reassembly.raw-inspection=arrival", f"decoder.checksum-validation={'true' if validate else 'false'}"])
    out = MemoryOutput()
    sensor = Sensor(cfg, [out], load_rules([str(rf)], cfg))
    sensor.run([(1_700_000_000.0 + i * 0.01, f, len(f), 101) for i, f in enumerate(frames)])
    sensor.finish()
    return sensor, [render(e) for e in out.events]


def alerted(records: list[dict]) -> list[tuple[int, int]]:
    return sorted((r["pcap_cnt"], r["alert"]["signature_id"]) for r in records if r["event_type"] == "alert")


@pytest.mark.parametrize("validate", [True, False])
def test_bad_tcp_checksum_is_inspected(tmp_path: Path, validate: bool) -> None:
    good = bytes(IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1000, dport=80, flags="S"))
    bad = bytes(IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1001, dport=80, flags="S", chksum=0x1234))
    rules = ('alert tcp any any -> any any (tcpv4-csum:invalid; sid:1;)\n'
             'alert tcp any any -> any any (tcpv4-csum:valid; sid:2;)\n')
    _, recs = run(tmp_path, rules, [good, bad], validate)
    assert alerted(recs) == [(1, 2), (2, 1)]


def test_bad_udp_checksum_is_inspected(tmp_path: Path) -> None:
    bad = bytes(IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5000, dport=53, chksum=0x1234) / b"x")
    _, recs = run(tmp_path, 'alert udp any any -> any any (udpv4-csum:invalid; sid:1;)\n', [bad], True)
    assert alerted(recs) == [(1, 1)]


def test_bad_checksum_segment_is_not_stream_data(tmp_path: Path) -> None:
    """A data segment with a bad checksum is not reassembled: a rule over the stream does
    not see its bytes joined with the next segment's."""
    c = lambda **kw: IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1000, dport=80, **kw)   # noqa: E731
    s = lambda **kw: IP(src="10.0.0.2", dst="10.0.0.1") / TCP(sport=80, dport=1000, **kw)   # noqa: E731
    frames = [bytes(f) for f in (
        c(flags="S", seq=99), s(flags="SA", seq=499, ack=100), c(flags="A", seq=100, ack=500),
        c(flags="PA", seq=100, ack=500, chksum=0x1234) / b"EVIL",
        c(flags="PA", seq=104, ack=500) / b"DOER")]
    rules = 'alert tcp any any -> any any (content:"EVILDOER"; sid:1;)\n'
    _, recs = run(tmp_path, rules, frames, True)
    assert alerted(recs) == []
    _, recs = run(tmp_path, rules, frames, False)       # no validation: one stream
    assert alerted(recs) == [(5, 1)]
