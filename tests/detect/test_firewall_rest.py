"""Firewall mode, the rest (round 12): SMTP states and `xbits ... track tx`, the
pre_stream table before the stream engine, firewall mode with no rule, HTTP/2 sub-state
hooks, the EVE `alert.engine` / `firewall` fields, and IP reputation (`iprep`, the
reputation store, its configuration keys).

Whole-sensor runs in IPS mode over crafted packets (raw IP, link type 101), as
test_firewall.py.
"""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP

from netsentry.config import ConfigError, load_config
from netsentry.rules import load_rules
from netsentry.rules.errors import RuleError
from netsentry.rules.hooks import parse_hook
from netsentry.rules.keywords.iprep import Reputation, configure
from netsentry.rules.parser import split_rule

from detect_helpers import drops, inline_run

C, S = "192.168.1.5", "10.0.0.1"


run = inline_run



def alerts(recs: list[dict]) -> list[tuple[int, int]]:
    return [(r["pcap_cnt"], r["alert"]["signature_id"]) for r in recs if r["event_type"] == "alert"]


def convo(sport: int, dport: int, turns: list[tuple[bool, bytes]], src: str = C, dst: str = S) -> list[bytes]:
    """Handshake, then each (to_server, data) segment acknowledged by the other side."""
    seq = {True: 1000, False: 5000}
    out = [
        bytes(IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags="S", seq=seq[True])),
        bytes(IP(src=dst, dst=src) / TCP(sport=dport, dport=sport, flags="SA", seq=seq[False], ack=seq[True] + 1)),
        bytes(IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags="A", seq=seq[True] + 1, ack=seq[False] + 1)),
    ]
    seq[True] += 1
    seq[False] += 1
    for to_server, data in turns:
        a, b = (src, dst) if to_server else (dst, src)
        pa, pb = (sport, dport) if to_server else (dport, sport)
        out.append(bytes(IP(src=a, dst=b) / TCP(sport=pa, dport=pb, flags="PA", seq=seq[to_server],
                                                  ack=seq[not to_server]) / data))
        seq[to_server] += len(data)
        out.append(bytes(IP(src=b, dst=a) / TCP(sport=pb, dport=pa, flags="A", seq=seq[not to_server],
                                                  ack=seq[to_server])))
    return out


# --- SMTP states and transaction bits ------------------------------------------------------

SMTP = [
    (False, b"220 mail.example.com ESMTP\r\n"),
    (True, b"EHLO client.example.com\r\n"),
    (False, b"250 mail.example.com\r\n"),
    (True, b"MAIL FROM:<alice@example.com>\r\n"),
    (False, b"250 Ok\r\n"),
    (True, b"RCPT TO:<bob@example.com>\r\n"),
    (False, b"250 Ok\r\n"),
    (True, b"DATA\r\n"),
    (False, b"354 go ahead\r\n"),
    (True, b"Subject: hi\r\n\r\nhello\r\n.\r\n"),
    (False, b"250 queued\r\n"),
    (True, b"QUIT\r\n"),
    (False, b"221 Bye\r\n"),
]


def smtp_rules(rcpt: str) -> str:
    return f"""accept:hook tcp:all any any <> any any (sid:1;)
accept:hook,alert smtp:request_started any any -> any any (smtp.mail_from; content:"alice@example.com>"; \\
    endswith; xbits:set,from_ok,track tx; sid:10;)
accept:hook,alert smtp:request_started any any -> any any (smtp.rcpt_to; content:"{rcpt}"; \\
    xbits:set,rcpt_ok,track tx; sid:11;)
accept:hook smtp:request_started any any -> any any (sid:12;)
accept:hook smtp:request_data any any -> any any (xbits:isset,from_ok,track tx; xbits:isset,rcpt_ok,track tx; sid:13;)
accept:hook smtp:request_complete any any -> any any (sid:14;)
accept:hook smtp:response_started any any -> any any (sid:20;)
accept:hook smtp:response_data any any -> any any (sid:21;)
accept:hook smtp:response_complete any any -> any any (sid:22;)
"""


def test_smtp_states_and_tx_bits_let_an_allowed_mail_through(tmp_path):
    recs = run(tmp_path, smtp_rules("@example.com>"), convo(40000, 25, SMTP))
    assert drops(recs) == []
    # each rule with a transaction condition alerts once for the mail, when it matched
    assert alerts(recs) == [(10, 10), (14, 11)]
    assert [r["smtp"]["rcpt_to"] for r in recs if r["event_type"] == "smtp"] == [["<bob@example.com>"]]


def test_smtp_data_without_the_recipient_bit_is_the_default_app_policy(tmp_path):
    recs = run(tmp_path, smtp_rules("@other.org>"), convo(40001, 25, SMTP))
    assert alerts(recs) == [(10, 10)]
    first = drops(recs)[0]
    assert first == (18, "firewall default app policy")    # the DATA command: request_data
    assert all(reason == "firewall flow drop" for _n, reason in drops(recs)[1:])


def test_smtp_hook_names_come_from_the_parser():
    assert parse_hook("smtp", "request_data").progress == 1
    assert parse_hook("smtp", "response_data").to_server is False
    with pytest.raises(RuleError):
        parse_hook("smtp", "request_body")


def test_xbits_track_tx_is_set_and_isset_only(tmp_path):
    rf = tmp_path / "x.rules"
    rf.write_text("accept:hook http1:request_line any any -> any any (xbits:toggle,a,track tx; sid:1;)\n"
                  "alert http any any -> any any (xbits:isset,a,track tx; sid:2;)\n"
                  "accept:hook http1:request_line any any -> any any (xbits:isset,a,track tx; sid:3;)\n")
    rs = load_rules([str(rf)], load_config(None, []))
    assert [e.sid for e in rs.errors] == [1, 2]
    assert "only set and isset" in str(rs.errors[0]) and "app-layer hook" in str(rs.errors[1])
    assert [s.sid for s in rs.signatures] == [3]


# --- the pre_stream table -------------------------------------------------------------------

def test_pre_stream_drop_keeps_the_syn_from_the_stream_engine(tmp_path):
    rules = ("accept:packet tcp:all any any <> any 443 (sid:1;)\n"
             "drop:packet tcp:pre_stream any any -> any 443 (flow:to_server; tcp.flags:S; alert; sid:2;)\n")
    recs = run(tmp_path, rules, convo(40002, 443, [(True, b"\x16\x03\x01hello")]))
    got = drops(recs)
    assert got[0] == (1, "firewall pre stream hook")
    # the stream engine's first packet is the SYN/ACK: a session picked up midstream, which
    # the IPS midstream policy (drop-flow) drops with the rest of the flow
    assert got[1] == (2, "stream midstream")
    assert len(got) == 5
    fw = [r for r in recs if r["event_type"] == "alert"]
    assert [(r["alert"]["signature_id"], r["alert"]["engine"], r["firewall"]) for r in fw] == [
        (2, "fw", {"hook": "packet:pre_stream", "policy": "drop:packet,alert"})]


# --- firewall mode with no rule -------------------------------------------------------------

def test_firewall_mode_with_no_rule_applies_the_default_policies(tmp_path):
    frames = convo(40003, 80, [(True, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")])
    assert drops(run(tmp_path, "# nothing\n", frames, name="t.rules")) == []
    got = drops(run(tmp_path, "# nothing\n", frames, name="firewall.rules"))
    assert got and all(reason == "firewall default packet policy" for _n, reason in got)
    got = drops(run(tmp_path, "# nothing\n", frames, "firewall.enabled=true",
                    "firewall.policies.packet.filter=[accept:hook]"))
    assert got[0] == (4, "firewall default app policy")


def test_default_app_policy_alert_names_its_hook(tmp_path):
    frames = convo(40004, 80, [(True, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")])
    recs = run(tmp_path, "accept:hook tcp:all any any <> any any (sid:1;)\n", frames,
               "firewall.policies.app.http1.request-started=[accept:hook,alert]", name="firewall.rules")
    policy = [r for r in recs if r["event_type"] == "alert"]
    assert policy[0]["alert"]["signature_id"] == 2201001 and policy[0]["alert"]["engine"] == "fw"
    assert policy[0]["firewall"] == {"hook": "http:request_started", "policy": "accept:hook,alert"}
    assert drops(recs)[0] == (4, "firewall default app policy")     # request_line has none


# --- HTTP/2 sub-states ----------------------------------------------------------------------

def test_http2_hooks_name_their_transaction_type():
    assert parse_hook("http2", "global:request_started").sub == "global"
    h = parse_hook("http2", "stream:<request_closed")
    assert (h.sub, h.lte, h.to_server) == ("stream", True, True)
    assert parse_hook("doh2", "global:response_complete").proto == "http2"
    for bad in ("request_started", "frame:request_started", "global:request_headers"):
        with pytest.raises(RuleError):
            parse_hook("http2", bad)
    with pytest.raises(RuleError, match="only supported"):
        parse_hook("http1", "stream:request_line")


# --- configuration and rule text ------------------------------------------------------------

def test_set_item_of_a_list(tmp_path):
    cfg = load_config(None, ["reputation-files.0=/a", "reputation-files.1=/b", "reputation-files.0=/c"])
    assert cfg["reputation-files"] == ["/c", "/b"]


def test_suricata_config_redefined_key_keeps_the_last(tmp_path):
    f = tmp_path / "suricata.yaml"
    f.write_text("%YAML 1.1\n---\nfirewall:\n  policies:\n    packet:\n      filter: [\"drop:packet\"]\n"
                 "      filter: [\"accept:hook\"]\n")
    cfg = load_config(None, [], suricata=str(f))
    assert cfg["firewall"]["policies"]["packet"]["filter"] == ["accept:hook"]
    own = tmp_path / "own.yaml"
    own.write_text("flow:\n  max-flows: 10\n  max-flows: 20\n")
    with pytest.raises(ConfigError, match="duplicate key"):
        load_config(str(own), [])


def test_rule_options_without_closing_parenthesis_as_suricata():
    assert split_rule('alert ip any any -> any any (sid:1; ') == ("alert ip any any -> any any", "sid:1;")
    assert split_rule('alert ip any any -> any any (msg:"a)"; sid:1;))') == (
        "alert ip any any -> any any", 'msg:"a)"; sid:1;')


# --- IP reputation --------------------------------------------------------------------------

def _rep() -> Reputation:
    rep = Reputation()
    rep.load_categories("# id,name,description\n1,bad,Bad hosts\n2,tor,Tor\n", "cats")
    rep.load_scores("ip,cat,score\n10.1.2.3,1,90\n10.0.0.0/8,1,20\n10.1.0.0/16,1,40\n10.0.0.0/8,1,99\n"
                    "10.9.9.9,2,5\n2001:db8::/32,1,70\r\n# 1.2.3.4,1,1\nbad line\n", "scores")
    return rep


def test_reputation_store_hosts_and_netblocks():
    import ipaddress
    rep = _rep()
    a = lambda s: ipaddress.ip_address(s).packed      # noqa: E731
    assert rep.cats == {"bad": 1, "tor": 2}
    assert rep.score(a("10.1.2.3"), 1) == 90          # the host's own entry
    assert rep.score(a("10.1.7.7"), 1) == 40          # longest prefix
    assert rep.score(a("10.200.0.1"), 1) == 20        # the first line of a netblock stays
    assert rep.score(a("11.0.0.1"), 1) == -1
    assert rep.score(a("10.9.9.9"), 1) == 0           # a host with an entry: its other categories are 0
    assert rep.score(a("2001:db8::1"), 1) == 70
    assert len(rep.errors) == 1 and "bad line" in rep.errors[0]


def test_reputation_configuration(tmp_path):
    assert configure({}) == (None, [])
    (tmp_path / "cats.txt").write_text("1,bad,Bad\n")
    (tmp_path / "rep.list").write_text("10.0.0.1,1,50\n")
    rep, errors = configure({"reputation-categories-file": str(tmp_path / "cats.txt"),
                             "reputation-files": ["rep.list"], "default-reputation-path": str(tmp_path)})
    assert errors == [] and rep.hosts
    rep, errors = configure({"reputation-files": ["rep.list"]})
    assert rep is None and "reputation-categories-file" in errors[0]


@pytest.mark.parametrize("opt,hit", [
    ("iprep:dst,bad,>,10", True), ("iprep:dst,bad,>,50", False), ("iprep:src,bad,isset", False),
    ("iprep:src,bad,isnotset", True), ("iprep:any,bad,=,50", True), ("iprep:both,bad,>,1", False),
    ("iprep:both,bad,isnotset", False), ("iprep:any,bad,isnotset", True),
])
def test_iprep_keyword(tmp_path, opt, hit):
    (tmp_path / "cats.txt").write_text("1,bad,Bad\n")
    (tmp_path / "rep.list").write_text(f"{S},1,50\n")
    frames = [bytes(IP(src=C, dst=S) / TCP(sport=40005, dport=80, flags="S"))]
    recs = run(tmp_path, f"alert tcp any any -> any any ({opt}; sid:7;)\n", frames,
               f"reputation-categories-file={tmp_path / 'cats.txt'}",
               f"reputation-files.0={tmp_path / 'rep.list'}")
    assert (alerts(recs) == [(1, 7)]) is hit


def test_iprep_rule_errors(tmp_path):
    (tmp_path / "cats.txt").write_text("1,bad,Bad\n")
    (tmp_path / "rep.list").write_text("10.0.0.1,1,50\n")
    cfg = load_config(None, [f"reputation-categories-file={tmp_path / 'cats.txt'}",
                             f"reputation-files.0={tmp_path / 'rep.list'}"])
    rf = tmp_path / "r.rules"
    rf.write_text("alert ip any any -> any any (iprep:dst,nosuch,>,1; sid:1;)\n"
                  "alert ip any any -> any any (iprep:up,bad,>,1; sid:2;)\n"
                  "alert ip any any -> any any (iprep:dst,bad,>,256; sid:3;)\n"
                  "alert ip any any -> any any (iprep:dst,bad,maybe; sid:4;)\n"
                  "alert ip any any -> any any (iprep:dst,bad,<,5; sid:5;)\n")
    rs = load_rules([str(rf)], cfg)
    assert [e.sid for e in rs.errors] == [1, 2, 3, 4]
    assert [s.sid for s in rs.signatures] == [5]
    assert rs.no_cache                   # the reputation files are not in the cache key
