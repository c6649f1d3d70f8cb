"""Firewall mode and IPS drops (round 13): stream-error drops of the handshake's ACK,
detection_filter in a firewall rule, per-direction `app-layer-protocol`, explicit hooks
never protocol-detection-only, explicit flow scope of threat-detection rules, firewall
rule files from the configuration, `bypass` refused in a firewall rule, and a TLS record
in several segments being one app-layer update.

Whole-sensor runs in IPS mode over crafted packets (raw IP, link type 101), as
test_firewall.py.
"""

from __future__ import annotations

from pathlib import Path

from scapy.layers.inet import IP, TCP

from netsentry.config import load_config
from netsentry.output.memory import MemoryOutput
from netsentry.rules import load_rules
from netsentry.sensor import Sensor

from detect_helpers import drops, inline_run

C, S = "192.168.1.5", "10.0.0.1"


run = inline_run



def alerts(recs: list[dict]) -> list[tuple[int | None, int]]:
    return [(r.get("pcap_cnt"), r["alert"]["signature_id"]) for r in recs if r["event_type"] == "alert"]


def handshake(sport: int = 40000, dport: int = 80, ack_seq: int = 1001, ack_ack: int = 5001,
              data: bytes = b"") -> list[bytes]:
    pkts = [
        bytes(IP(src=C, dst=S) / TCP(sport=sport, dport=dport, flags="S", seq=1000)),
        bytes(IP(src=S, dst=C) / TCP(sport=dport, dport=sport, flags="SA", seq=5000, ack=1001, window=8192)),
    ]
    third = IP(src=C, dst=S) / TCP(sport=sport, dport=dport, flags="PA" if data else "A", seq=ack_seq, ack=ack_ack)
    pkts.append(bytes(third / data) if data else bytes(third))
    return pkts


FW_ACCEPT_ALL = "accept:flow tcp:all any any -> any any (sid:1;)\n"


# --- stream errors ---------------------------------------------------------------------------

def test_handshake_ack_out_of_window_is_dropped_as_stream_error(tmp_path: Path) -> None:
    recs = run(tmp_path, FW_ACCEPT_ALL, handshake(ack_seq=101001, data=b"GET / HTTP/1.1\r\n\r\n"))
    assert drops(recs) == [(3, "stream error")]


def test_handshake_ack_in_window_completes_the_session(tmp_path: Path) -> None:
    # a sequence number ahead within the SYN/ACK's window: packets lost, not an error
    recs = run(tmp_path, FW_ACCEPT_ALL, handshake(ack_seq=1101, data=b"x"))
    assert drops(recs) == []


def test_drop_invalid_off_keeps_the_packet(tmp_path: Path) -> None:
    recs = run(tmp_path, FW_ACCEPT_ALL, handshake(ack_seq=101001, data=b"x"), "stream.drop-invalid=false")
    assert drops(recs) == []


def test_server_data_before_the_clients_ack_is_refused_inline(tmp_path: Path) -> None:
    pkts = handshake()[:2] + [
        bytes(IP(src=S, dst=C) / TCP(sport=80, dport=40000, flags="PA", seq=5001, ack=1001) / b"220 hi\r\n")]
    recs = run(tmp_path, "pass tcp any any -> any any (sid:9;)\n", pkts)
    assert drops(recs) == [(3, "stream error")]


# --- firewall rules ----------------------------------------------------------------------

def syns(n: int) -> list[bytes]:
    return [bytes(IP(src=C, dst=S) / TCP(sport=41000 + i, dport=443, flags="S", seq=1000)) for i in range(n)]


def test_detection_filter_gates_a_firewall_drop(tmp_path: Path) -> None:
    rules = ("drop:flow tcp:flow_start any any -> any any (flags:S; detection_filter:track by_src, count 3, "
             "seconds 10; alert; sid:2;)\n"
             "accept:hook tcp:flow_start any any -> any any (sid:1;)\n")
    recs = run(tmp_path, rules, syns(5))
    assert drops(recs) == [(4, "firewall rules"), (5, "firewall rules")]
    assert alerts(recs) == [(4, 2), (5, 2)]


def test_explicit_hook_rule_is_not_protocol_detection_only(tmp_path: Path) -> None:
    # app-layer-protocol:unknown on a tcp:all rule matches every packet before detection
    # (SignatureIsPDOnly: an explicit hook is never PD-only), so the handshake is accepted
    rules = "accept:hook tcp:all any any <> any 80 (app-layer-protocol:unknown; sid:1;)\n"
    recs = run(tmp_path, rules, handshake())
    assert drops(recs) == []


def test_app_layer_protocol_is_per_direction(tmp_path: Path) -> None:
    # the server's ACK of the request comes before the server sent a byte: its direction's
    # protocol is still unknown (Suricata's alproto_tc)
    pkts = handshake(data=b"GET / HTTP/1.1\r\nHost: a\r\n\r\n") + [
        bytes(IP(src=S, dst=C) / TCP(sport=80, dport=40000, flags="A", seq=5001, ack=1028))]
    rules = ("alert tcp any 80 -> any any (flow:established; dsize:0; app-layer-protocol:unknown; sid:7;)\n"
             "alert tcp any any -> any 80 (flow:established; app-layer-protocol:http; sid:8;)\n")
    recs = run(tmp_path, rules, pkts, config={"stream": {"inline": True}})
    assert (4, 7) in alerts(recs)
    assert (3, 8) in alerts(recs)


def test_bypass_is_refused_in_a_firewall_rule(tmp_path: Path) -> None:
    rf = tmp_path / "t.rules"
    rf.write_text("accept:flow,alert http1:request_headers any any -> any 80 (http.host; content:\"x\"; "
                  "bypass; sid:5;)\n")
    rs = load_rules([str(rf)], load_config(None, []))
    assert rs.errors and "not allowed in firewall mode" in str(rs.errors[0])


def test_td_pass_flow_takes_the_flow_whatever_its_type(tmp_path: Path) -> None:
    # a packet rule (flags:S) written pass:flow: the flow is passed, so the later stream
    # content rule never alerts
    rules = ("pass:flow tcp any any -> any any (flags:S; sid:1;)\n"
             "alert tcp any any -> any 80 (content:\"evil\"; sid:2;)\n")
    recs = run(tmp_path, rules, handshake(data=b"evil"))
    assert alerts(recs) == []


def test_firewall_rule_files_from_the_configuration(tmp_path: Path) -> None:
    fwdir = tmp_path / "fw"
    fwdir.mkdir()
    (fwdir / "fw.rules").write_text("accept:flow tcp:all any any -> any any (alert; sid:77;)\n")
    from netsentry.sensor import rule_paths
    cfg = load_config(None, ["firewall.enabled=true", f"firewall.rule-path={fwdir}", "firewall.rule-files.0=fw.rules"])
    assert rule_paths(cfg)[0] == str(fwdir / "fw.rules")
    assert rule_paths(load_config(None, [f"firewall.rule-path={fwdir}", "firewall.rule-files.0=fw.rules"])) == []



def test_rejectdst_names_its_target(tmp_path: Path) -> None:
    # the reject's kind decides who gets the reset (respond/verdict.py) and EVE's
    # verdict.reject_target: rejectdst, to the server
    rf = tmp_path / "t.rules"
    rf.write_text("rejectdst tcp any any -> any 80 (sid:2;)\n")
    cfg = load_config(None, ["stream.inline=true"])
    out = MemoryOutput()
    sensor = Sensor(cfg, [out], load_rules([str(rf)], cfg))
    sensor.run([(1_700_000_000.0, f, len(f), 101) for f in handshake()[:1]])
    sensor.finish()
    pkts = [e.pkt for e in out.events if e.event_type == "alert"]
    assert pkts and pkts[0].verdict == "reject" and pkts[0].reject_action == "rejectdst"


def test_a_protocol_detection_only_drop_takes_the_flow(tmp_path: Path) -> None:
    pkts = handshake(data=b"GET / HTTP/1.1\r\nHost: a\r\n\r\n") + [
        bytes(IP(src=S, dst=C) / TCP(sport=80, dport=40000, flags="A", seq=5001, ack=1028)),
        bytes(IP(src=C, dst=S) / TCP(sport=40000, dport=80, flags="PA", seq=1028, ack=5001) / b"more")]
    recs = run(tmp_path, "drop tcp any any -> any 80 (app-layer-protocol:!tls; sid:3;)\n", pkts)
    # dropped on detection (3), and every later packet of the flow with it
    assert [c for c, _r in drops(recs)] == [3, 4, 5]


# --- default app policy accept and the threat-detection rules --------------------------------

GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"


def two_requests() -> list[bytes]:
    return handshake(data=GET) + [
        bytes(IP(src=C, dst=S) / TCP(sport=40000, dport=80, flags="PA", seq=1001 + len(GET), ack=5001) / GET)]


def test_default_app_policy_accept_flow_skips_the_transactions_td_rules(tmp_path: Path) -> None:
    # no firewall rule at the HTTP states: the default policy (accept:flow at request_started)
    # decides the first request's transaction, and its threat-detection rules are skipped on
    # that packet (Suricata's DetectTxFirewallNoRulesApplyPolicies); the flow is accepted, so
    # the next request is inspected as usual
    td = 'alert http any any -> any 80 (flow:to_server,established; http.method; content:"GET"; sid:100;)\n'
    fw = "accept:hook tcp:all any any <> any 80 (sid:1;)\n"
    sets = ("firewall.enabled=true", "firewall.policies.app.http1.request-started=[accept:flow]")
    recs = run(tmp_path, fw + td, two_requests(), *sets)
    assert drops(recs) == []
    assert alerts(recs) == [(4, 100)]
    # a firewall rule at that state: it decides, and the transaction's rules run on the packet
    fw_app = "accept:flow http1:request_started any any -> any 80 (sid:2;)\n"
    recs = run(tmp_path, fw + fw_app + td, two_requests(), *sets)
    assert alerts(recs) == [(3, 100), (4, 100)]


# --- EVE verdict of a reject by engine mode --------------------------------------------------

def test_reject_verdict_is_drop_inline_and_alert_in_ids_mode(tmp_path: Path) -> None:
    import json

    from netsentry.output import OutputContext
    from netsentry.output.eve import EveLog
    rf = tmp_path / "t.rules"
    rf.write_text("reject tcp any any -> any 80 (flags:S; sid:2;)\n")
    got = {}
    for ips in (False, True):
        cfg = load_config(None, [f"stream.inline={'true' if ips else 'false'}"])
        logdir = tmp_path / str(ips)
        logdir.mkdir()
        eve = EveLog({"filename": "eve.json", "types": ["alert"], "alert": {"verdict": True}},
                     OutputContext(logdir=logdir, ips=ips))
        sensor = Sensor(cfg, [eve], load_rules([str(rf)], cfg))
        sensor.run([(1_700_000_000.0, f, len(f), 101) for f in handshake()[:1]])
        sensor.finish()
        recs = [json.loads(line) for line in (logdir / "eve.json").read_text().splitlines()]
        got[ips] = [r["verdict"] for r in recs if r["event_type"] == "alert"]
    assert got[False] == [{"action": "alert", "reject_target": "to_client", "reject": ["tcp-reset"]}]
    assert got[True] == [{"action": "drop", "reject_target": "to_client", "reject": ["tcp-reset"]}]


def test_firewall_accepted_packet_verdict_is_accept(tmp_path: Path) -> None:
    import json

    from netsentry.output import OutputContext
    from netsentry.output.eve import EveLog
    rf = tmp_path / "t.rules"
    rf.write_text("accept:flow,alert tcp:all any any -> any 80 (flags:S; sid:1;)\n"
                  "alert tcp any any -> any 80 (flags:S; sid:2;)\n")
    cfg = load_config(None, ["stream.inline=true", "firewall.enabled=true"])
    eve = EveLog({"filename": "eve.json", "types": ["alert"], "alert": {"verdict": True}},
                 OutputContext(logdir=tmp_path, ips=True))
    sensor = Sensor(cfg, [eve], load_rules([str(rf)], cfg))
    sensor.run([(1_700_000_000.0, f, len(f), 101) for f in handshake()[:1]])
    sensor.finish()
    recs = [json.loads(line) for line in (tmp_path / "eve.json").read_text().splitlines()]
    # the firewall fails closed: a packet it did not drop was accepted (EveAddVerdict)
    assert [(r["alert"]["signature_id"], r["verdict"]["action"]) for r in recs] == [(1, "accept"), (2, "accept")]
