"""Firewall mode (Suricata 8, detect/firewall.py): whole sensor runs in IPS mode over
crafted packets (raw IP, link type 101), checking the verdicts and drop reasons.

- the packet filter's default policy drops what no rule accepted ("firewall default
  packet policy"), and a configured policy replaces it;
- `accept:flow` on `flow_start` lets the whole flow through, `drop:flow` drops the rest of
  it ("firewall flow drop" after the first), and `alert` as a secondary action alerts;
- app-layer hooks: every HTTP state the request reached needs an accept, a missing one is
  the default app policy's drop:flow; `accept:tx` takes the rest of the transaction;
- threat-detection rules run on what the firewall accepted, not on what it dropped;
- the rule syntax: scopes and hooks are checked, a threat-detection `drop:flow` is not a
  firewall rule.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP

from netsentry.config import load_config
from netsentry.output.memory import MemoryOutput
from netsentry.rules import load_rules
from netsentry.rules.errors import RuleError
from netsentry.rules.loader import make_env
from netsentry.rules.parser import parse_rule as _parse_rule
from netsentry.sensor import Sensor

from detect_helpers import drops, inline_run

C, S = "192.168.1.5", "10.0.0.1"


def parse_rule(text: str):
    return _parse_rule(text, make_env({"classification-file": "/nonexistent", "reference-config-file": "/nonexistent"})[0], "t.rules", 1)


run = inline_run



def alerts(recs: list[dict]) -> list[tuple[int, int, str]]:
    return [(r["pcap_cnt"], r["alert"]["signature_id"], r["alert"]["action"])
            for r in recs if r["event_type"] == "alert"]


def session(sport: int, request: bytes, response: bytes, dport: int = 80) -> list[bytes]:
    """Handshake, one request, its ACK, one response, its ACK."""
    c_seq, s_seq = 1000, 5000
    return [
        bytes(IP(src=C, dst=S) / TCP(sport=sport, dport=dport, flags="S", seq=c_seq)),
        bytes(IP(src=S, dst=C) / TCP(sport=dport, dport=sport, flags="SA", seq=s_seq, ack=c_seq + 1)),
        bytes(IP(src=C, dst=S) / TCP(sport=sport, dport=dport, flags="A", seq=c_seq + 1, ack=s_seq + 1)),
        bytes(IP(src=C, dst=S) / TCP(sport=sport, dport=dport, flags="PA", seq=c_seq + 1, ack=s_seq + 1) / request),
        bytes(IP(src=S, dst=C) / TCP(sport=dport, dport=sport, flags="A", seq=s_seq + 1,
                                     ack=c_seq + 1 + len(request))),
        bytes(IP(src=S, dst=C) / TCP(sport=dport, dport=sport, flags="PA", seq=s_seq + 1,
                                     ack=c_seq + 1 + len(request)) / response),
        bytes(IP(src=C, dst=S) / TCP(sport=sport, dport=dport, flags="A", seq=c_seq + 1 + len(request),
                                     ack=s_seq + 1 + len(response))),
    ]


REQ = b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n"
RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
ALL_HTTP_HOOKS = "".join(
    f"accept:hook http1:{h} any any -> any any (sid:{200 + i};)\n"
    for i, h in enumerate(("request_started", "request_line", "request_headers", "request_body",
                           "request_trailer", "request_complete", "response_started", "response_line",
                           "response_headers", "response_body", "response_trailer", "response_complete")))
TCP_ALL = "accept:hook tcp:all any any -> any any (sid:100;)\n"


def test_default_packet_policy_drops_what_no_rule_accepted(tmp_path: Path) -> None:
    frames = [bytes(IP(src=C, dst=S) / UDP(sport=5000 + i, dport=53) / b"x") for i in range(3)]
    recs = run(tmp_path, "accept:packet udp:all any any -> any 54 (sid:1;)\n", frames)
    assert drops(recs) == [(1, "firewall default packet policy"), (2, "firewall default packet policy"),
                           (3, "firewall default packet policy")]
    # a configured packet:filter policy replaces the default drop
    recs = run(tmp_path, "accept:packet udp:all any any -> any 54 (sid:1;)\n", frames,
               'firewall.policies={"packet": {"filter": ["accept:hook"]}}')
    assert drops(recs) == []


def test_flow_start_accept_flow_and_drop_flow(tmp_path: Path) -> None:
    rules = ("accept:flow tcp:flow_start any any -> any 80 (flow:to_server; sid:1;)\n"
             "drop:flow tcp:flow_start any any -> any any (alert; sid:2;)\n")
    frames = session(40000, REQ, RESP) + session(40001, REQ, RESP, dport=8080)
    recs = run(tmp_path, rules, frames)
    # the port 80 flow is accepted whole; the 8080 one is dropped from its SYN on
    assert drops(recs) == [(8, "firewall rules")] + [(n, "firewall flow drop") for n in range(9, 15)]
    assert alerts(recs) == [(8, 2, "blocked")]


def test_app_hooks_need_an_accept_each(tmp_path: Path) -> None:
    # every HTTP state accepted: nothing dropped
    assert drops(run(tmp_path, TCP_ALL + ALL_HTTP_HOOKS, session(40000, REQ, RESP))) == []
    # request_headers has no accept rule: the default app policy drops the flow there
    rules = TCP_ALL + "".join(line for line in ALL_HTTP_HOOKS.splitlines(True) if "request_headers" not in line)
    recs = run(tmp_path, rules, session(40000, REQ, RESP))
    assert drops(recs) == [(4, "firewall default app policy"), (5, "firewall flow drop"),
                           (6, "firewall flow drop"), (7, "firewall flow drop")]


def test_accept_tx_on_the_uri_and_default_app_policy_alert(tmp_path: Path) -> None:
    rules = (TCP_ALL + "accept:hook http1:request_started any any -> any any (sid:101;)\n"
             'accept:tx,alert http1:request_line any any -> any any (http.uri; content:"/index.html"; sid:102;)\n')
    policy = 'firewall.policies={"app": {"http1": {"request-line": ["drop:flow", "alert"]}}}'
    recs = run(tmp_path, rules, session(40000, REQ, RESP), policy)
    # the transaction (request and response) is accepted by sid 102
    assert drops(recs) == []
    assert alerts(recs) == [(4, 102, "allowed")]
    other = REQ.replace(b"/index.html", b"/other.html")
    recs = run(tmp_path, rules, session(40000, other, RESP), policy)
    assert drops(recs)[0] == (4, "firewall default app policy")
    assert alerts(recs) == [(4, 2201001, "blocked")]


def test_threat_detection_sees_only_what_the_firewall_accepted(tmp_path: Path) -> None:
    rules = ("accept:flow tcp:flow_start any any -> any 80 (sid:1;)\n"
             'alert tcp any any -> any any (content:"GET"; sid:10;)\n')
    frames = session(40000, REQ, RESP) + session(40001, REQ, RESP, dport=8080)
    recs = run(tmp_path, rules, frames)
    # the 8080 flow's request (packet 11) was dropped by the default packet policy: no TD alert
    assert [a for a in alerts(recs) if a[1] == 10] == [(4, 10, "allowed")]
    assert (11, "firewall default packet policy") in drops(recs)


def test_rule_syntax(tmp_path: Path) -> None:
    sig = parse_rule("accept:flow,alert tls:<client_hello_done any any -> any any (sid:1;)")
    assert sig.firewall.is_fw and sig.firewall.scope == "flow" and sig.firewall.alerts
    assert sig.firewall.hook.lte and sig.firewall.hook.proto == "tls"
    td = parse_rule('drop:flow tcp-pkt any any -> any any (content:"x"; sid:2;)')
    assert not td.firewall.is_fw and td.action == "drop" and td.firewall.scope == "flow"
    assert parse_rule("alert tcp any any -> any any (sid:3;)").firewall is None
    # a hook on a threat-detection rule: a normal rule with the hook's meaning (rules/hook_rules.py)
    hooked = parse_rule("alert tcp:flow_start any any -> any any (sid:10;)")
    assert not hooked.firewall.is_fw and hooked.firewall.hook.name == "flow_start"
    for bad in ("accept tcp:all any any -> any any (sid:4;)",            # accept without a scope
                "accept:hook tcp any any -> any any (sid:5;)",          # firewall rule without a hook
                "accept:sometimes tcp:all any any -> any any (sid:6;)",  # unknown scope
                "drop:tx tcp:all any any -> any any (sid:7;)",          # drop has no tx scope
                "accept:hook tcp:nowhere any any -> any any (sid:8;)",  # unknown packet hook
                "accept:hook http1:request_nowhere any any -> any any (sid:9;)"):
        with pytest.raises(RuleError):
            parse_rule(bad)



def test_per_flow_state_goes_with_the_flow(tmp_path: Path) -> None:
    """A long-running sensor keeps firewall state for live flows only: a flow's entry goes
    when the flow ends (a timeout here, while the sensor runs on)."""
    rf = tmp_path / "t.rules"
    rf.write_text("accept:flow tcp:flow_start any any -> any any (sid:1;)\n" + TCP_ALL)
    cfg = load_config(None, ["stream.inline=true", "flow.timeouts.tcp.new=5", "flow.timeouts.tcp.established=5",
                             "flow.timeouts.tcp.closed=5"])
    sensor = Sensor(cfg, [MemoryOutput()], load_rules([str(rf)], cfg))
    fw = sensor.signatures.firewall
    first = session(40001, REQ, RESP)
    sensor.run([(1_700_000_000.0 + i * 0.01, f, len(f), 101) for i, f in enumerate(first)])
    assert len(fw._flows) == 1
    # another flow a minute later: the first one timed out on the way
    later = [bytes(IP(src=C, dst=S) / UDP(sport=6000, dport=53) / b"x")]
    sensor.run([(1_700_000_060.0, f, len(f), 101) for f in later])
    assert len(fw._flows) == 1 and sensor.result.flows >= 1
    sensor.finish()
    assert fw._flows == {}
