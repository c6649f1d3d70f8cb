"""Rules whose payload keywords are only positionless contents are verified by the engine's
own searches (detect/engine.py `_plain_contents`), not by `Signature.match`: same alerts.

Each case carries the same contents twice: sid 1 from any address (the engine's searches),
sid 2 the same with a `flow:` check, which keeps it on `Signature.match`. UDP, so each
datagram is inspected as a packet (no stream window).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP

from netsentry.config import load_config
from netsentry.detect.engine import _plain_contents
from netsentry.output.eve import render
from netsentry.output.memory import MemoryOutput
from netsentry.rules import load_rules
from netsentry.sensor import Sensor

C, S = "192.168.1.5", "192.168.1.1"


def _run(tmp_path: Path, rules: str, payloads: list[bytes]) -> list[tuple[int, int]]:
    rf = tmp_path / "t.rules"
    rf.write_text(rules)
    cfg = load_config(None, ["anomaly.enabled=false"])
    out = MemoryOutput()
    rs = load_rules([str(rf)], cfg)
    assert not rs.errors, rs.errors
    sensor = Sensor(cfg, [out], rs)
    frames = [bytes(IP(src=C, dst=S) / UDP(sport=5000, dport=6000) / p) for p in payloads]
    sensor.run([(1_700_000_000.0 + i * 0.01, f, len(f), 101) for i, f in enumerate(frames)])
    sensor.finish()
    recs = [render(e) for e in out.events]
    return sorted((r["pcap_cnt"], r["alert"]["signature_id"]) for r in recs if r["event_type"] == "alert")


@pytest.mark.parametrize(("options", "payload", "alerts"), [
    ('content:"GET"; content:"/cgi-bin/";', b"GET /cgi-bin/x", True),
    ('content:"GET"; content:"/cgi-bin/";', b"/cgi-bin/ then GET", True),       # any order
    ('content:"GET"; content:"/cgi-bin/";', b"PUT /cgi-bin/x", False),          # one missing
    ('content:"get"; nocase; content:"/CGI-bin/"; nocase;', b"GeT /cGi-BIN/", True),
    ('content:"get"; content:"/cgi-bin/";', b"GET /cgi-bin/", False),           # case matters
    ('content:"AB"; content:"|00 ff|";', b"xxAB\x00\xffyy", True),               # binary bytes
])
def test_plain_contents_alert_as_signature_match_does(tmp_path: Path, options: str, payload: bytes,
                                                       alerts: bool) -> None:
    rules = (f"alert udp any any -> any any (msg:\"plain\"; {options} sid:1;)\n"
             f"alert udp any any -> any any (msg:\"general\"; flow:to_server; {options} sid:2;)\n")
    got = _run(tmp_path, rules, [b"nothing here", payload])
    assert got == ([(2, 1), (2, 2)] if alerts else [])


@pytest.mark.parametrize(("rule", "plain"), [
    ('content:"a"; content:"b";', True),
    ('content:"a"; nocase;', True),
    ('content:"a"; content:"b"; distance:0;', False),      # relative: a chain
    ('content:"a"; depth:4;', False),                      # positioned
    ('content:"a"; content:!"b";', False),                 # negated
    ('content:"a"; dsize:>3;', False),                     # another check
    ('content:"a"; pcre:"/a/";', False),
    ('content:"a"; startswith;', False),
    ('content:"a"; endswith;', False),
    ('http.uri; content:"a";', False),                     # not the packet payload
])
def test_which_rules_take_the_searches(tmp_path: Path, rule: str, plain: bool) -> None:
    rf = tmp_path / "t.rules"
    rf.write_text(f"alert tcp any any -> any any (msg:\"x\"; {rule} sid:9;)\n")
    rs = load_rules([str(rf)], load_config(None, []))
    assert not rs.errors, rs.errors
    (sig,) = rs.signatures
    assert (_plain_contents(sig) is not None) == plain
