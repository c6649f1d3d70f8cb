"""Datasets (`dataset`, `datarep`, datajson), `entropy`, alert references: parsing, and whole
replays of crafted captures through the sensor (rules/keywords/datasets.py, entropy.py)."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "applayer"))

from applayer_helpers import alerts, replay, tcp_session  # noqa: E402

from netsentry.config import load_config  # noqa: E402
from netsentry.rules.errors import RuleError  # noqa: E402
from netsentry.rules.keywords import datasets  # noqa: E402
from netsentry.rules.keywords.entropy import entropy, parse_float  # noqa: E402
from netsentry.rules.loader import load_rules  # noqa: E402


def _b64(s: bytes) -> str:
    return base64.b64encode(s).decode()


def _get(ua: bytes, uri: bytes = b"/") -> bytes:
    return b"GET " + uri + b" HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: " + ua + b"\r\n\r\n"


_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def _session(tmp_path: Path, name: str, requests: list[bytes], **kw) -> Path:
    ex = []
    for r in requests:
        ex += [(True, r), (False, _OK)]
    return tcp_session(tmp_path / name, ex, **kw)


def _run(tmp_path: Path, pcap: Path, rules: str, *overrides: str) -> list[dict]:
    return replay(tmp_path, pcap, rules, f"default-data-dir={tmp_path}", *overrides)


# --- dataset ----------------------------------------------------------------------------

def test_set_matches_once_per_new_value_and_isset_sees_it(tmp_path: Path) -> None:
    pcap = tmp_path / "s.pcap"
    ex = [(True, _get(b"ua1")), (False, _OK), (True, _get(b"ua2")), (False, _OK), (True, _get(b"ua1")), (False, _OK)]
    tcp_session(pcap, ex)
    recs = _run(tmp_path, pcap,
                'alert http any any -> any any (http.user_agent; dataset:set,ua,type string; sid:1;)\n'
                'alert http any any -> any any (http.user_agent; dataset:isset,ua,type string; sid:2;)\n'
                'alert http any any -> any any (http.user_agent; dataset:isnotset,ua,type string; sid:3;)\n')
    # set: new values only (ua1, ua2, not the second ua1); rules run in order, so isset
    # sees each value the set rule added on the same request
    assert len(alerts(recs, 1)) == 2
    assert len(alerts(recs, 2)) == 3
    assert alerts(recs, 3) == []


def test_unset_removes_and_save_writes_base64_lines(tmp_path: Path) -> None:
    pcap = _session(tmp_path, "u.pcap", [_get(b"ua1", b"/add"), _get(b"ua2", b"/add"), _get(b"ua1", b"/del")])
    recs = _run(tmp_path, pcap,
                'alert http any any -> any any (http.uri; content:"/add"; http.user_agent; '
                'dataset:set,ua,type string,save out.lst; sid:1;)\n'
                'alert http any any -> any any (http.uri; content:"/del"; http.user_agent; '
                'dataset:unset,ua,type string,save out.lst; sid:2;)\n')
    assert len(alerts(recs, 1)) == 2 and len(alerts(recs, 2)) == 1
    assert (tmp_path / "out.lst").read_text() == _b64(b"ua2") + "\n"


def test_load_beside_the_rule_file_and_missing_file_is_a_rule_error(tmp_path: Path) -> None:
    (tmp_path / "known.lst").write_text(_b64(b"ua1") + "\n\n")
    pcap = _session(tmp_path, "l.pcap", [_get(b"ua1"), _get(b"ua9")])
    recs = _run(tmp_path, pcap,
                'alert http any any -> any any (http.user_agent; dataset:isset,k,type string,load known.lst; sid:1;)\n')
    assert len(alerts(recs, 1)) == 1
    rf = tmp_path / "bad.rules"
    rf.write_text('alert http any any -> any any (http.user_agent; dataset:isset,m,type string,load nope.lst; sid:5;)\n')
    rs = load_rules([rf], load_config(None, []))
    assert not rs.signatures
    assert "nope.lst" in str(rs.errors[0]) and rs.errors[0].line == 1


@pytest.mark.parametrize("opts,why", [
    ("dataset:isset,x", "not defined"),
    ("dataset:frob,x,type string", "unknown command"),
    ("dataset:isset,x,type blob", "bad type"),
    ("dataset:set,x,type string,save /etc/x", "absolute"),
    ("dataset:set,x,type string,save ../x", "traversal"),
    ("dataset:set,x,type string,state a,save b", "'state' can not be mixed"),
    ("dataset:set,x,type string,format json,value_key k,load f", "not supported for 'set'"),
])
def test_bad_dataset_options_are_rule_errors(tmp_path: Path, opts: str, why: str) -> None:
    rf = tmp_path / "t.rules"
    rf.write_text(f'alert http any any -> any any (http.user_agent; {opts}; sid:1;)\n')
    rs = load_rules([rf], load_config(None, [f"default-data-dir={tmp_path}"]))
    assert not rs.signatures and why in str(rs.errors[0])


def test_a_set_shared_by_two_rules_must_agree_on_type(tmp_path: Path) -> None:
    rf = tmp_path / "t.rules"
    rf.write_text('alert http any any -> any any (http.user_agent; dataset:set,x,type string; sid:1;)\n'
                  'alert http any any -> any any (http.host; dataset:isset,x,type md5; sid:2;)\n'
                  'alert http any any -> any any (http.host; dataset:isset,x; sid:3;)\n')
    rs = load_rules([rf], load_config(None, []))
    assert [s.sid for s in rs.signatures] == [1, 3]
    assert "already exists and is of type string" in str(rs.errors[0])


def test_ip_sets_read_both_spellings_of_an_ipv4_address(tmp_path: Path) -> None:
    (tmp_path / "v4.lst").write_text("192.0.2.80\n")
    (tmp_path / "ip.lst").write_text("::ffff:10.0.0.5\n2001:db8::1\n")
    pcap = _session(tmp_path, "i.pcap", [_get(b"x")])
    recs = _run(tmp_path, pcap,
                'alert http any any -> any any (flow:to_server; http.host; content:"example"; ip.dst; '
                'dataset:isset,v4,type ipv4,load v4.lst; sid:1;)\n'
                'alert http any any -> any any (flow:to_server; http.host; content:"example"; ip.src; '
                'dataset:isset,ips,type ip,load ip.lst; sid:2;)\n'
                'alert http any any -> any any (flow:to_server; http.host; content:"example"; ip.dst; '
                'dataset:isset,ips,type ip; sid:3;)\n')
    assert len(alerts(recs, 1)) == 1 and len(alerts(recs, 2)) == 1 and alerts(recs, 3) == []


def test_state_from_the_config_section_persists_across_runs(tmp_path: Path) -> None:
    pcap = _session(tmp_path, "p.pcap", [_get(b"first")])
    rules = ('alert http any any -> any any (http.user_agent; dataset:isset,seen; sid:1;)\n'
             'alert http any any -> any any (http.user_agent; dataset:set,seen; sid:2;)\n')
    over = ("datasets={seen: {type: string, state: seen.lst}}",)
    first = _run(tmp_path, pcap, rules, *over)
    assert alerts(first, 1) == [] and len(alerts(first, 2)) == 1
    assert (tmp_path / "seen.lst").read_text() == _b64(b"first") + "\n"
    second = _run(tmp_path, pcap, rules, *over)
    assert len(alerts(second, 1)) == 1 and alerts(second, 2) == []


def test_match_subdomain_walks_up_the_name(tmp_path: Path) -> None:
    (tmp_path / "d.lst").write_text(_b64(b".example.com") + "\n")
    pcap = _session(tmp_path, "m.pcap", [_get(b"x")])
    recs = _run(tmp_path, pcap,
                'alert http any any -> any any (http.host; dotprefix; dataset:isset,d,type string,'
                'load d.lst,match subdomain; sid:1;)\n'
                'alert http any any -> any any (http.host; dotprefix; dataset:isset,d2,type string,'
                'load d.lst; sid:2;)\n')
    assert len(alerts(recs, 1)) == 1 and alerts(recs, 2) == []


def test_memcap_bounds_what_set_adds(tmp_path: Path) -> None:
    ds = datasets.Dataset("m", "string", memcap=200)
    assert ds.add(b"a" * 10) and ds.add(b"b" * 10)
    assert not ds.add(b"c" * 100)        # over the cap: not added, `set` does not match
    assert ds.remove(b"a" * 10) and ds.add(b"c" * 10)


# --- datarep -----------------------------------------------------------------------------

def test_datarep_compares_the_reputation(tmp_path: Path) -> None:
    (tmp_path / "r.rep").write_text(f"{_b64(b'ua1')},200\n{_b64(b'ua2')},50\n")
    pcap = _session(tmp_path, "r.pcap", [_get(b"ua1"), _get(b"ua2"), _get(b"ua3")])
    recs = _run(tmp_path, pcap,
                'alert http any any -> any any (http.user_agent; datarep:r, >, 100, load r.rep, type string; sid:1;)\n'
                'alert http any any -> any any (http.user_agent; datarep:r, <, 100; sid:2;)\n'
                'alert http any any -> any any (http.user_agent; datarep:r, ==, 50; sid:3;)\n')
    ua = lambda sid: [r["http"]["http_user_agent"] for r in alerts(recs, sid)]  # noqa: E731
    assert ua(1) == ["ua1"] and ua(2) == ["ua2"] and ua(3) == ["ua2"]


def test_datarep_file_without_reputation_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "r.rep").write_text(f"{_b64(b'ua1')}\n")
    rf = tmp_path / "t.rules"
    rf.write_text('alert http any any -> any any (http.user_agent; datarep:r, >, 1, load r.rep, type string; sid:1;)\n')
    rs = load_rules([rf], load_config(None, []))
    assert not rs.signatures and "reputation missing" in str(rs.errors[0])


# --- datajson ------------------------------------------------------------------------------

def test_datajson_puts_the_object_in_alert_context(tmp_path: Path) -> None:
    (tmp_path / "h.json").write_text(json.dumps({"feed": {"list": [
        {"host": "www.example.com", "year": 2005, "tags": ["a"]}, {"host": "other", "year": 1}]}}))
    (tmp_path / "ip.ndjson").write_text('{"ip": "10.0.0.5", "who": "client"}\n')
    pcap = _session(tmp_path, "j.pcap", [_get(b"x")])
    recs = _run(tmp_path, pcap,
                'alert http any any -> any any (flow:to_server; http.host; dataset:isset,hosts,type string,'
                'load h.json,format json,array_key feed.list,value_key host,context_key bad,remove_key; '
                'ip.src; dataset:isset,ips,type ip,load ip.ndjson,format ndjson,value_key ip; sid:1;)\n'
                'alert http any any -> any any (http.user_agent; content:"x"; sid:2;)\n')
    (a,) = alerts(recs, 1)
    assert a["alert"]["context"] == {"bad": {"year": 2005, "tags": ["a"]},
                                     "ips": {"ip": "10.0.0.5", "who": "client"}}
    # another rule's alert on the same packet has no context
    assert "context" not in alerts(recs, 2)[0]["alert"]


# --- entropy ---------------------------------------------------------------------------------

def test_entropy_value_and_comparisons() -> None:
    assert entropy(b"") == 0.0 and entropy(b"aaaa") == 0.0
    assert entropy(bytes(range(256))) == 8.0
    assert entropy(b"ab") == 1.0
    assert parse_float("> 4", "e")(4.1) and not parse_float(">4", "e")(4.0)
    assert parse_float("4-5", "e")(4.5) and not parse_float("4-5", "e")(4.0)
    assert parse_float("!4-5", "e")(4.0) and not parse_float("!4-5", "e")(4.5)
    assert parse_float("=2", "e")(2.0) and parse_float("2", "e")(2.0) and parse_float("!=2", "e")(2.5)
    with pytest.raises(RuleError):
        parse_float("5-4", "e")


def test_entropy_rule_logs_metadata_entropy(tmp_path: Path) -> None:
    pcap = _session(tmp_path, "e.pcap", [_get(b"abcdefgh")])
    host = entropy(b"example.com")
    recs = _run(tmp_path, pcap,
                'alert http any any -> any any (http.user_agent; entropy:value >= 3; sid:1;)\n'
                'alert http any any -> any any (http.host; entropy:offset 4, value < 3.5; sid:2;)\n'
                'alert http any any -> any any (http.user_agent; entropy:bytes 100, value > 0; sid:3;)\n')
    assert entropy(b"abcdefgh") == 3.0 and host < 3.5
    (a,) = alerts(recs, 1)
    (b,) = alerts(recs, 2)            # "example.com": offset 4 skips "www."
    # a float flowvar per buffer, kept on the flow: both rules' values in both records
    assert a["metadata"]["entropy"] == b["metadata"]["entropy"] == {"http_user_agent": 3.0, "http_host": host}
    assert alerts(recs, 3) == []      # fewer than 100 bytes: no match


@pytest.mark.parametrize("opts", ["entropy:offset 1", "entropy:value >4, value <5", "entropy:foo 1, value 2",
                                  "entropy:value x"])
def test_bad_entropy_options_are_rule_errors(tmp_path: Path, opts: str) -> None:
    rf = tmp_path / "t.rules"
    rf.write_text(f'alert http any any -> any any (file.data; {opts}; sid:1;)\n')
    rs = load_rules([rf], load_config(None, []))
    assert not rs.signatures and rs.errors


# --- references ------------------------------------------------------------------------------

def _eve(tmp_path: Path, pcap: Path, rules: str, *args: str) -> list[dict]:
    from netsentry.cli import main
    rf = tmp_path / "cli.rules"
    rf.write_text(rules)
    out = tmp_path / f"out{len(list(tmp_path.glob('out*')))}"
    out.mkdir()
    # no rule cache: an engine reused in this process keeps its alerts' serialised JSON
    assert main(["replay", str(pcap), "-S", str(rf), "-l", str(out), "-q", "--set", "detect.rule-cache=false",
                 *args]) == 0
    return [json.loads(line) for line in (out / "eve.json").read_text().splitlines()]


def test_alert_references_only_when_asked(tmp_path: Path) -> None:
    pcap = _session(tmp_path, "ref.pcap", [_get(b"x")])
    rules = ('alert http any any -> any any (http.host; content:"example"; reference:url,www.example.com/a; '
             'reference:cve,2014-0160; reference:url,foo://h/x; reference:nosuch,1; sid:1;)\n')
    plain = _eve(tmp_path, pcap, rules)
    assert "references" not in alerts(plain, 1)[0]["alert"]
    suri = tmp_path / "suricata.yaml"
    suri.write_text("%YAML 1.1\n---\noutputs:\n  - eve-log:\n      enabled: yes\n      types:\n"
                    "        - alert:\n            metadata:\n              rule:\n"
                    "                reference: yes\n")
    on = _eve(tmp_path, pcap, rules, "--suricata-config", str(suri))
    assert alerts(on, 1)[0]["alert"]["references"] == [
        "https://www.example.com/a", "https://cve.mitre.org/cgi-bin/cvename.cgi?name=2014-0160",
        "foo://h/x", "undefined1"]


def test_cli_takes_suricatas_options_and_a_filter_expression(tmp_path: Path) -> None:
    pcap = _session(tmp_path, "cli.pcap", [_get(b"x")])
    rules = 'alert http any any -> any any (http.host; content:"example"; sid:1;)\n'
    assert len(alerts(_eve(tmp_path, pcap, rules, "-v", "--no-random", "port", "80"), 1)) == 1
    assert alerts(_eve(tmp_path, pcap, rules, "port", "22"), 1) == []      # the filter drops every packet
    assert alerts(_eve(tmp_path, pcap, rules, "tcp", "and", "not", "port", "22"), 1) != []
    from netsentry.cli import main
    assert main(["replay", str(pcap), "-S", str(tmp_path / "cli.rules"), "-l", str(tmp_path), "-q",
                 "port", "--bogus"]) == 2
    # --data-dir: where `save` writes
    dd = tmp_path / "data"
    dd.mkdir()
    _eve(tmp_path, pcap, 'alert http any any -> any any (http.host; dataset:set,h,type string,save h.lst; sid:1;)\n',
         "--data-dir", str(dd))
    assert (dd / "h.lst").read_text() == _b64(b"www.example.com") + "\n"


def test_rule_sets_with_datasets_are_not_cached(tmp_path: Path) -> None:
    from netsentry.rules.cache import load_ruleset
    rf = tmp_path / "t.rules"
    rf.write_text('alert http any any -> any any (http.user_agent; dataset:set,c,type string; sid:1;)\n')
    config = load_config(None, [f"detect.rule-cache={tmp_path / 'cache'}"])
    rs = load_ruleset([rf], config)
    assert rs.cache.status == "off" and "datasets" in str(rs.cache.reason)
