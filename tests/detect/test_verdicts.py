"""Verdict semantics Suricata's suricata-verify measures: the app_layer rule type
(`alert http any any -> any any (sid:1;)`), rate_filter's new action on such a rule,
packet-alert-max, and the drop reasons of exception policies. Whole sensor runs over
crafted packets (raw IP, link type 101)."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP

from netsentry.config import load_config
from netsentry.detect.alertqueue import DEFAULT_ALERT_MAX, alert_max_setting
from netsentry.detect.ruletype import APP_LAYER, PACKET, STREAM, rule_type
from netsentry.output.eve import render
from netsentry.output.memory import MemoryOutput
from netsentry.rules import load_rules
from netsentry.sensor import Sensor

C, S = "10.0.0.1", "10.0.0.2"
REQ = b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n"
RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def http_flow(dport: int = 80, req: bytes = REQ, resp: bytes = RESP) -> list[bytes]:
    """Handshake, request, ACK, response, ACK, FIN exchange: 10 packets."""
    c = lambda **kw: IP(src=C, dst=S) / TCP(sport=40000, dport=dport, **kw)      # noqa: E731
    s = lambda **kw: IP(src=S, dst=C) / TCP(sport=dport, dport=40000, **kw)      # noqa: E731
    cs, ss = 1000, 5000
    frames = [
        c(flags="S", seq=cs - 1),
        s(flags="SA", seq=ss - 1, ack=cs),
        c(flags="A", seq=cs, ack=ss),
        c(flags="PA", seq=cs, ack=ss) / req,
        s(flags="A", seq=ss, ack=cs + len(req)),
        s(flags="PA", seq=ss, ack=cs + len(req)) / resp,
        c(flags="A", seq=cs + len(req), ack=ss + len(resp)),
        c(flags="FA", seq=cs + len(req), ack=ss + len(resp)),
        s(flags="FA", seq=ss + len(resp), ack=cs + len(req) + 1),
        c(flags="A", seq=cs + len(req) + 1, ack=ss + len(resp) + 1),
    ]
    return [bytes(f) for f in frames]


def run(tmp_path: Path, rules: str, frames: list[bytes], *sets: str,
        threshold: str | None = None) -> tuple[Sensor, list[dict]]:
    rf = tmp_path / "t.rules"
    rf.write_text(rules)
    sets_ = list(sets)
    if threshold is not None:
        tf = tmp_path / "threshold.config"
        tf.write_text(threshold)
        sets_.append(f"threshold-file={tf}")
    cfg = load_config(None, ["stream.reassembly.raw-inspection=arrival", *sets_])
    out = MemoryOutput()
    sensor = Sensor(cfg, [out], load_rules([str(rf)], cfg))
    sensor.run([(1_700_000_000.0 + i * 0.01, f, len(f), 101) for i, f in enumerate(frames)])
    sensor.finish()
    return sensor, [render(e) for e in out.events]


def alerts(records: list[dict]) -> list[dict]:
    return [r for r in records if r["event_type"] == "alert"]


# --- the app_layer rule type ----------------------------------------------------------

def _sig(tmp_path: Path, rule: str):
    rf = tmp_path / "one.rules"
    rf.write_text(rule + "\n")
    return load_rules([str(rf)], load_config(None, [])).signatures[0]


@pytest.mark.parametrize("rule,expected", [
    ('alert http any any -> any any (sid:1;)', APP_LAYER),
    ('alert http any any -> any any (content:"GET"; sid:1;)', STREAM),
    ('alert http any any -> any any (flow:established; sid:1;)', PACKET),
])
def test_rule_types(tmp_path: Path, rule: str, expected: str) -> None:
    sig = _sig(tmp_path, rule)
    assert not sig.tx_rule
    assert rule_type(sig) == expected


def test_app_layer_rule_matches_every_packet_once_the_protocol_is_known(tmp_path: Path) -> None:
    """Suricata inspects it per packet (detect.c checks the rule's alproto against the
    flow's): every packet, both directions, once the app layer knows the protocol; not the
    handshake, and in IDS mode not the request's own packet either: the app layer takes
    the request's bytes (and names the protocol) once the server acknowledged them, packet 5
    (suricata-verify detect-engine-proto). Inline, on the request's arrival."""
    _sensor, recs = run(tmp_path, "alert http any any -> any any (sid:1;)\n", http_flow())
    got = [r["pcap_cnt"] for r in alerts(recs)]
    assert got == list(range(5, 11))
    d = tmp_path / "inline"
    d.mkdir()
    _sensor, recs = run(d, "alert http any any -> any any (sid:1;)\n", http_flow(), "stream.inline=true")
    assert [r["pcap_cnt"] for r in alerts(recs)] == list(range(4, 11))


def test_client_packets_after_the_servers_ack_see_the_protocol(tmp_path: Path) -> None:
    """A request in two segments (a POST's headers, then its body), the server answering
    only after both: the body's packet comes after the server acknowledged the headers,
    so the protocol is known to it (Suricata's app layer took the headers on that ACK;
    suricata-verify lua-transform-09), also when nobody parses HTTP (the replay's
    default outputs, a rule without HTTP buffers: detection only)."""
    import json

    from scapy.all import Ether, wrpcap

    from netsentry.cli import main
    c = lambda **kw: IP(src=C, dst=S) / TCP(sport=40000, dport=80, **kw)      # noqa: E731
    frames = [IP(f) for f in http_flow()]
    frames.insert(5, c(flags="PA", seq=1000 + len(REQ), ack=5000) / b"id=1")  # after the server's ACK (5)
    pkts = [Ether(src="00:11:22:33:44:55", dst="66:77:88:99:aa:bb") / f for f in frames]
    for i, p in enumerate(pkts):
        p.time = 1700000000 + i * 0.01
    wrpcap(str(tmp_path / "post.pcap"), pkts)
    (tmp_path / "t.rules").write_text("alert http any any -> any any (flow:to_server; sid:1;)\n")
    assert main(["replay", str(tmp_path / "post.pcap"), "-S", str(tmp_path / "t.rules"),
                 "-l", str(tmp_path / "out"), "-k", "none"]) == 0
    recs = [json.loads(line) for line in (tmp_path / "out" / "eve.json").read_text().splitlines()]
    assert [r["pcap_cnt"] for r in recs if r["event_type"] == "alert"][:1] == [6]


def test_header_protocol_is_checked_for_content_rules(tmp_path: Path) -> None:
    """`alert http ... content:` needs the flow to be HTTP: the same bytes on a flow
    that is not HTTP do not match (the check used to be lost)."""
    rule = 'alert http any any -> any any (content:"hello"; sid:1;)\n'
    _s, not_http = run(tmp_path, rule, http_flow(dport=9999, req=b"hello there\r\n", resp=b"bye\r\n"))
    assert alerts(not_http) == []
    # (in the response's packet: the request's own packet comes before the app layer
    # knows the protocol, IDS; see the test above)
    _s, http = run(tmp_path, rule, http_flow(resp=b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"))
    assert [r["pcap_cnt"] for r in alerts(http)] == [6]


# --- rate_filter on an app_layer rule ---------------------------------------------------

RATE = "rate_filter gen_id 1, sig_id 1, track {track}, count 1, seconds 60, new_action {action}, timeout 1000\n"


@pytest.mark.parametrize("track,allowed", [("by_src", 2), ("by_dst", 2), ("by_rule", 1), ("by_both", 1)])
def test_rate_filter_drop_blocks_then_drops_the_flow(tmp_path: Path, track: str, allowed: int) -> None:
    """Each tracked key may match once; the next match takes the new action: its alert is
    blocked (drop.reason "threshold detection_filter") and, the rule's scope being the
    flow, every later packet is dropped as "flow drop". by_src/by_dst count each host of
    the pair apart, so both directions get one allowed alert first."""
    sensor, recs = run(tmp_path, "alert http any any -> any any (sid:1;)\n", http_flow(),
                       "stream.inline=true", "outputs.eve-log.drop.flows=all",
                       threshold=RATE.format(track=track, action="drop"))
    got = [(r["pcap_cnt"], r["alert"]["action"]) for r in alerts(recs)]
    first_blocked = 4 + allowed
    assert got == [(n, "allowed") for n in range(4, first_blocked)] + [(first_blocked, "blocked")]
    drops = [(r["pcap_cnt"], r["drop"]["reason"]) for r in recs if r["event_type"] == "drop"]
    assert drops[0] == (first_blocked, "threshold detection_filter")
    assert drops[1:] == [(n, "flow drop") for n in range(first_blocked + 1, 11)]
    assert sensor.result.drops == 11 - first_blocked


def test_rate_filter_pass_stops_alerts(tmp_path: Path) -> None:
    _s, recs = run(tmp_path, "alert http any any -> any any (sid:1;)\n", http_flow(),
                   "stream.inline=true", threshold=RATE.format(track="by_both", action="pass"))
    assert [r["pcap_cnt"] for r in alerts(recs)] == [4]
    assert not [r for r in recs if r["event_type"] == "drop"]


# --- packet-alert-max -------------------------------------------------------------------

FIVE = "".join(f'alert tcp any any -> any any (msg:"r{i}"; content:"index"; sid:{i};)\n' for i in range(1, 6))


def test_alert_max_keeps_the_best_ranked_alerts(tmp_path: Path) -> None:
    sensor, recs = run(tmp_path, FIVE, http_flow(), "detect.packet-alert-max=3")
    assert sorted(r["alert"]["signature_id"] for r in alerts(recs)) == [1, 2, 3]
    assert sensor.counters()["detect.alert_queue_overflow"] == 2
    assert sensor.result.alerts == 3


TX9 = 'alert http any any -> any any (msg:"tx"; http.uri; content:"/index"; priority:1; sid:9;)\n'


def test_alert_max_ranks_transaction_rules_with_packet_rules_in_ips_mode(tmp_path: Path) -> None:
    """IPS: a transaction rule's match on the same packet outranks a later packet rule:
    the cap is applied to both together, by rule order (priority first)."""
    sensor, recs = run(tmp_path, FIVE + TX9, http_flow(), "stream.inline=true", "detect.packet-alert-max=3")
    assert sorted(r["alert"]["signature_id"] for r in alerts(recs)) == [1, 2, 9]
    assert sensor.counters()["detect.alert_queue_overflow"] == 3


def test_alert_max_caps_packet_and_transaction_rules_apart_in_ids_mode(tmp_path: Path) -> None:
    """IDS: Suricata inspects a transaction on the packet that ACKs its data, so the two
    kinds never share a packet's queue there: each is capped on its own."""
    sensor, recs = run(tmp_path, FIVE + TX9, http_flow(), "detect.packet-alert-max=3")
    assert sorted(r["alert"]["signature_id"] for r in alerts(recs)) == [1, 2, 3, 9]
    assert sensor.counters()["detect.alert_queue_overflow"] == 2


def test_a_discarded_drop_alert_still_drops(tmp_path: Path) -> None:
    """action-order alert first: the drop rule ranks last, its alert falls off, its drop holds."""
    rules = FIVE + 'drop tcp any any -> any any (msg:"d"; content:"index"; sid:6;)\n'
    sensor, recs = run(tmp_path, rules, http_flow(), "stream.inline=true", "detect.packet-alert-max=3",
                       "detect.action-order=[alert, drop, pass, reject]")
    assert sorted(r["alert"]["signature_id"] for r in alerts(recs)) == [1, 2, 3]
    drop = [r for r in recs if r["event_type"] == "drop"]
    assert (drop[0]["pcap_cnt"], drop[0]["drop"]["reason"]) == (4, "rules")
    assert drop[0]["alert"]["signature_id"] == 6        # the drop record names the rule
    assert sensor.counters()["detect.alert_queue_overflow"] == 3


@pytest.mark.parametrize("value,expected", [(2, 2), (255, 255), (0, DEFAULT_ALERT_MAX),
                                            (256, DEFAULT_ALERT_MAX), ("x", DEFAULT_ALERT_MAX)])
def test_alert_max_setting_falls_back_as_suricata(value: object, expected: int) -> None:
    assert alert_max_setting({"detect": {"packet-alert-max": value}}) == expected


# --- exception policy drop reasons ----------------------------------------------------------

def test_midstream_drop_reasons(tmp_path: Path) -> None:
    """The packet the policy drops: "stream midstream"; the flow's later packets:
    "exception policy flow drop" (Suricata's PKT_DROP_REASON_EP_FLOW_DROP)."""
    frames = http_flow()[3:]            # no handshake: picked up in the middle
    _s, recs = run(tmp_path, "alert tcp any any -> any any (content:\"zzz\"; sid:1;)\n", frames,
                   "stream.inline=true", "outputs.eve-log.drop.flows=all")
    reasons = [r["drop"]["reason"] for r in recs if r["event_type"] == "drop"]
    assert reasons[0] == "stream midstream"
    assert set(reasons[1:]) == {"exception policy flow drop"} and len(reasons) == len(frames)
