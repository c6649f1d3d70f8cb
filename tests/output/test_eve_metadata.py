"""EVE `traffic` and `metadata` (Suricata's EveAddMetadata): the flowbits, flowints and
flowvars of a record's flow and the pktvars of its packet, and pcre captures into
flowvars, pktvars and alert.context. Whole sensor runs over a crafted HTTP session,
through the file writer (compiled line path and dict path alike) and `render`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP

from netsentry.config import ConfigError, load_config
from netsentry.output.eve import EveLog, render
from netsentry.output import OutputContext
from netsentry.output.memory import MemoryOutput
from netsentry.rules import load_rules
from netsentry.rules.errors import RuleError
from netsentry.rules.keywords.payload import swap_greediness
from netsentry.sensor import Sensor

C, S = "10.0.0.1", "10.0.0.2"
REQ = b"GET /x HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0 (X11; Ubuntu/8.1) Firefox/3.0.13\r\n\r\n"


def frames() -> list[bytes]:
    c = lambda **kw: IP(src=C, dst=S) / TCP(sport=40000, dport=80, **kw)      # noqa: E731
    s = lambda **kw: IP(src=S, dst=C) / TCP(sport=80, dport=40000, **kw)      # noqa: E731
    return [bytes(f) for f in (
        c(flags="S", seq=999), s(flags="SA", seq=4999, ack=1000), c(flags="A", seq=1000, ack=5000),
        c(flags="PA", seq=1000, ack=5000) / REQ, s(flags="A", seq=5000, ack=1000 + len(REQ)),
        c(flags="FA", seq=1000 + len(REQ), ack=5000), s(flags="FA", seq=5000, ack=1001 + len(REQ)),
        c(flags="A", seq=1001 + len(REQ), ack=5001))]


def run(tmp_path: Path, rules: str, *sets: str) -> tuple[list[dict], list[dict]]:
    """(records from `render`, records from the eve.json file writer)."""
    rf = tmp_path / "t.rules"
    rf.write_text(rules)
    cfg = load_config(None, list(sets))
    mem = MemoryOutput()
    eve_cfg = {"filename": "eve.json", "types": ["alert", "flow"]}
    eve_cfg.update((cfg.get("outputs") or {}).get("eve-log") or {})
    eve = EveLog(eve_cfg, OutputContext(logdir=tmp_path))
    sensor = Sensor(cfg, [mem, eve], load_rules([str(rf)], cfg))
    sensor.run([(1_700_000_000.0 + i * 0.01, f, len(f), 101) for i, f in enumerate(frames())])
    sensor.finish()
    lines = [json.loads(x) for x in (tmp_path / "eve.json").read_text().splitlines()]
    return [render(e) for e in mem.events], lines


def by_type(recs: list[dict], t: str) -> list[dict]:
    return [r for r in recs if r["event_type"] == t]


def test_flowbits_in_set_order_and_traffic_tags(tmp_path: Path) -> None:
    rules = ('alert tcp any any -> any any (content:"Mozilla"; flowbits:set,zeta; '
             'flowbits:set,traffic/label/browser; flowbits:set,alpha; flowbits:set,traffic/id/mozilla; '
             'flowint:hits,=,3; sid:1;)\n')
    rendered, written = run(tmp_path, rules)
    for recs in (rendered, written):
        alert = by_type(recs, "alert")[0]
        assert alert["traffic"] == {"id": ["mozilla"], "label": ["browser"]}
        assert alert["metadata"] == {"flowbits": ["zeta", "alpha"], "flowints": {"hits": 3}}
        # after the head, before the alert object (Suricata's EveAddCommonOptions)
        keys = list(alert)
        assert keys.index("pkt_src") < keys.index("traffic") < keys.index("metadata") < keys.index("alert")
        flow = by_type(recs, "flow")[0]
        assert flow["traffic"]["id"] == ["mozilla"]
        assert flow["metadata"]["flowbits"] == ["zeta", "alpha"]
    # the same keys in the same order on both paths (`render` runs after the run: its
    # flow counters are the final ones, so only the keys are compared)
    assert [list(r) for r in rendered if r["event_type"] in ("alert", "flow")] == [list(r) for r in written
                                                                                   if r["event_type"] in ("alert", "flow")]


def test_unset_bits_leave_the_record_and_no_vars_means_no_metadata(tmp_path: Path) -> None:
    rules = ('alert tcp any any -> any any (content:"GET"; flowbits:set,a; flowbits:set,b; sid:1;)\n'
             'alert tcp any any -> any any (content:"Host"; flowbits:unset,a; sid:2;)\n')
    _, written = run(tmp_path, rules)
    assert by_type(written, "flow")[0]["metadata"] == {"flowbits": ["b"]}
    _, plain = run(tmp_path, 'alert tcp any any -> any any (content:"GET"; sid:1;)\n')
    assert all("metadata" not in r and "traffic" not in r for r in plain)


def test_metadata_off(tmp_path: Path) -> None:
    rules = 'alert tcp any any -> any any (content:"GET"; flowbits:set,a; sid:1;)\n'
    rendered, written = run(tmp_path, rules, "outputs.eve-log.metadata=false")
    assert all("metadata" not in r for r in written)


def test_metadata_setting_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="metadata"):
        EveLog({"filename": "eve.json", "types": ["alert"], "metadata": "maybe"}, OutputContext(logdir=tmp_path))


def test_pcre_captures_flow_pkt_and_alert(tmp_path: Path) -> None:
    rules = (r'alert tcp any any -> any any (content:"User-Agent: "; '
             r'pcre:"/User-Agent: ([a-zA-Z]+).*Ubuntu\/(\d+\.\d).*Firefox\/([\d.]+)/,alert:ua, flow:ubuntu, pkt:firefox"; '
             r'sid:2;)' '\n'
             r'alert tcp any any -> any any (pcre:"/Host: (?P<flow_host>[a-z.]+)/"; sid:3;)' '\n')
    rendered, written = run(tmp_path, rules)
    for recs in (rendered, written):
        a2 = next(r for r in by_type(recs, "alert") if r["alert"]["signature_id"] == 2)
        assert a2["alert"]["context"] == {"ua": "Mozilla"}
        assert a2["metadata"]["flowvars"] == [{"ubuntu": "8.1"}, {"host": "example.com"}]
        assert a2["metadata"]["pktvars"] == [{"firefox": "3.0.13"}]
        a3 = next(r for r in by_type(recs, "alert") if r["alert"]["signature_id"] == 3)
        assert "context" not in a3["alert"]          # the context is sid 2's only
        flow = by_type(recs, "flow")[0]
        assert flow["metadata"] == {"flowvars": [{"ubuntu": "8.1"}, {"host": "example.com"}]}


def test_pcre_capture_only_on_a_whole_match(tmp_path: Path) -> None:
    """A pcre that captured but whose rule then failed stores nothing (Suricata applies
    captures after the whole rule matched)."""
    rules = (r'alert tcp any any -> any any (pcre:"/Host: (?P<flow_host>[a-z.]+)/"; '
             r'content:"not-there"; sid:1;)' '\n')
    rendered, _ = run(tmp_path, rules)
    assert all("metadata" not in r for r in rendered)


def test_ungreedy_flag(tmp_path: Path) -> None:
    assert swap_greediness(r"^(.*)\/(\d+\.\d+)") == r"^(.*?)\/(\d+?\.\d+?)"
    assert swap_greediness(r"a*?b{2,3}[x*]\*(?:c)?") == r"a*b{2,3}?[x*]\*(?:c)??"
    rules = r'alert tcp any any -> any any (pcre:"/Agent: (.*)\/(\d+\.\d+)/G, flow:key, flow:value"; sid:1;)' '\n'
    rendered, _ = run(tmp_path, rules)
    alert = by_type(rendered, "alert")[0]
    assert alert["metadata"]["flowvars"] == [{"key": "Mozilla"}, {"value": "5.0"}]


@pytest.mark.parametrize("rule,msg", [
    ('alert tcp any any -> any any (pcre:"/(a)/, host:x"; sid:1;)', "capture"),
    ('alert tcp any any -> any any (pcre:"/(a)/, flow:x, flow:y"; sid:1;)', "capture groups"),
    ('alert tcp any any -> any any (pcre:!"/(a)/, flow:x"; sid:1;)', "negated"),
])
def test_bad_captures_are_rule_errors(tmp_path: Path, rule: str, msg: str) -> None:
    rf = tmp_path / "bad.rules"
    rf.write_text(rule + "\n")
    rs = load_rules([str(rf)], load_config(None, []))
    assert not rs.signatures
    assert any(msg in str(e) for e in rs.errors)
