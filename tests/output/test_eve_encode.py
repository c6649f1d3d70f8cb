"""The EVE writer's fast path writes the same bytes as the plain dict form.

`EveLog` serialises records with the alert object pre-serialised per Alert
(`alert_fragment`), a flow's address/start text kept on the flow
(`flow_texts`) and the record time reused from the previous record
(`format_record_time`). Each test checks a line against `reference()`, an
independent straightforward build of the record as the writer did it before
those shortcuts (field by field, in Suricata's order), dumped by orjson: same
keys, same order, same values, same bytes.
"""

from __future__ import annotations

import dataclasses
import json
import socket
from pathlib import Path
from typing import Any

import orjson
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6, ICMPv6EchoRequest
from scapy.layers.l2 import Dot1Q, Ether

from netsentry.anomaly.alerts import Finding, make_event
from netsentry.assets import AssetMap
from netsentry.decode import Decoder
from netsentry.event import Alert, Event
from netsentry.flow.flow import Flow
from netsentry.output import OutputContext, open_outputs
from netsentry.output import eve
from netsentry.output.eve import alert_fragment, encode, render
from netsentry.output.fields import make_record_time_formatter, make_timestamp_formatter

TS = 1491603877.251547
SIG = Alert(2018358, "ET HUNTING GENERIC SUSPICIOUS POST", rev=10, category="Potentially Bad Traffic",
            severity=2, metadata={"created_at": ["2014_03_27"], "tag": ["a\"b", "ü"]})
PORTS = (6, 17, 132)
NAMES = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "IPv6-ICMP"}


def ip_text(packed: bytes) -> str:
    if len(packed) == 4:
        return socket.inet_ntoa(packed)
    h = packed.hex()
    return ":".join(h[i:i + 4] for i in range(0, 32, 4))


def ts_text(ts: float) -> str:
    sec, usec = divmod(round(ts * 1_000_000), 1_000_000)
    import time
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{usec:06d}+0000"


def reference(ev: Event) -> dict[str, Any]:
    """An alert or drop-less packet record built the slow, obvious way (no caches)."""
    pkt, flow, alert = ev.pkt, ev.flow, ev.alert
    rec: dict[str, Any] = {"timestamp": ts_text(ev.ts)}
    if flow is not None:
        rec["flow_id"] = flow.flow_id
    if pkt.pcap_cnt:
        rec["pcap_cnt"] = pkt.pcap_cnt
    rec["event_type"] = ev.event_type
    if pkt.vlan:
        rec["vlan"] = list(pkt.vlan)
    rec["src_ip"] = ip_text(pkt.src)
    if pkt.proto in PORTS:
        rec["src_port"] = pkt.sp
    rec["dest_ip"] = ip_text(pkt.dst)
    if pkt.proto in PORTS:
        rec["dest_port"] = pkt.dp
    rec["proto"] = NAMES[pkt.proto]
    rec["ip_v"] = pkt.ip_version
    if pkt.proto in (1, 58) and pkt.icmp_type >= 0:
        rec["icmp_type"], rec["icmp_code"] = pkt.icmp_type, pkt.icmp_code
    rec["pkt_src"] = "wire/pcap"
    if alert is not None:
        body = {"action": alert.action, "gid": alert.gid, "signature_id": alert.signature_id,
                "rev": alert.rev, "signature": alert.signature, "category": alert.category,
                "severity": alert.severity}
        if alert.metadata:
            body["metadata"] = alert.metadata
        rec["alert"] = body
    if flow is not None:
        rec["direction"] = "to_server" if pkt.to_server else "to_client"
        sub = {"pkts_toserver": flow.pkts_toserver, "pkts_toclient": flow.pkts_toclient,
               "bytes_toserver": flow.bytes_toserver, "bytes_toclient": flow.bytes_toclient,
               "start": ts_text(flow.start), "src_ip": ip_text(flow.client), "dest_ip": ip_text(flow.server)}
        if flow.proto in PORTS:
            sub["src_port"], sub["dest_port"] = flow.client_port, flow.server_port
        rec["flow"] = sub
    if ev.extra:
        rec.update(ev.extra)
    return rec


def line(rec: dict[str, Any]) -> bytes:
    return orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE)


def decode(frame: Any, n: int = 7, ts: float = TS) -> Any:
    pkt = Decoder().decode(bytes(frame), 1)
    pkt.ts, pkt.pcap_cnt = ts, n
    return pkt


def flow_of(pkt: Any, to_server: bool = True) -> Flow:
    """The flow of `pkt`; `to_server` False: the packet is the server's reply."""
    c, s, cp, sp = (pkt.src, pkt.dst, pkt.sp, pkt.dp) if to_server else (pkt.dst, pkt.src, pkt.dp, pkt.sp)
    flow = Flow(0, (c, s, pkt.proto), pkt.proto, pkt.ip_version, pkt.vlan, c, s, cp, sp, TS - 2.5)
    flow.pkts_toserver, flow.bytes_toserver, flow.pkts_toclient, flow.bytes_toclient = 3, 300, 2, 1200
    pkt.to_server = to_server
    return flow


def check(ev: Event) -> dict[str, Any]:
    """encode(ev) is the reference's bytes, and render(ev) (plain dicts) round-trips to it."""
    want = reference(ev)
    got = encode(ev)
    assert got == line(want)
    assert list(json.loads(got)) == list(want)          # key order
    assert json.loads(got) == orjson.loads(line(render(ev)))
    return want


TCP4 = Ether() / IP(src="192.168.2.14", dst="209.53.113.5") / TCP(sport=50096, dport=80, flags="PA") / b"GET /"
TCP6 = (Ether() / IPv6(src="2001:db8::1", dst="fe80::20c:29ff:fef3:cf38")
        / TCP(sport=40000, dport=443, flags="PA") / b"x")
UDP4 = Ether() / IP(src="10.0.0.9", dst="10.0.0.53") / UDP(sport=5353, dport=53) / b"q"
ICMP4 = Ether() / IP(src="10.0.0.9", dst="10.0.0.1") / ICMP(type=8, code=0, id=3, seq=4)
ICMP6 = Ether() / IPv6(src="2001:db8::1", dst="2001:db8::2") / ICMPv6EchoRequest()
VLAN = Ether() / Dot1Q(vlan=10) / IP(src="10.0.0.9", dst="10.0.0.1") / UDP(sport=1, dport=2)


@pytest.mark.parametrize("frame", [TCP4, TCP6, UDP4, ICMP4, ICMP6, VLAN],
                         ids=["tcp4", "tcp6", "udp4", "icmp4", "icmp6", "vlan"])
@pytest.mark.parametrize("to_server", [True, False], ids=["to_server", "to_client"])
def test_alert_with_flow(frame: Any, to_server: bool) -> None:
    pkt = decode(frame)
    check(Event("alert", pkt.ts, pkt, flow_of(pkt, to_server), SIG))


@pytest.mark.parametrize("frame", [TCP4, TCP6, UDP4, ICMP4, ICMP6, VLAN])
def test_alert_without_flow(frame: Any) -> None:
    pkt = decode(frame)
    check(Event("alert", pkt.ts, pkt, None, SIG))


def test_ipv6_addresses_are_expanded() -> None:
    pkt = decode(TCP6)
    rec = check(Event("alert", pkt.ts, pkt, flow_of(pkt), SIG))
    assert rec["dest_ip"] == "fe80:0000:0000:0000:020c:29ff:fef3:cf38"


def test_packet_not_of_the_flows_addresses_uses_its_own() -> None:
    # e.g. a flow keyed on something else: the packet's addresses are written, never the flow's
    pkt = decode(TCP4)
    other = decode(Ether() / IP(src="10.1.1.1", dst="10.2.2.2") / TCP(sport=50096, dport=80))
    rec = check(Event("alert", pkt.ts, pkt, flow_of(other), SIG))
    assert (rec["src_ip"], rec["flow"]["src_ip"]) == ("192.168.2.14", "10.1.1.1")


def test_blocked_action_and_later_alerts_of_the_same_flow() -> None:
    pkt = decode(TCP4)
    flow = flow_of(pkt)
    blocked = Alert(1, "drop it", action="blocked", severity=1)
    check(Event("alert", pkt.ts, pkt, flow, blocked))
    # the flow's text is kept on it now; counters and the record time still follow the flow
    flow.pkts_toserver, flow.bytes_toserver = 9, 900
    later = decode(TCP4, n=8, ts=TS + 1.000001)
    check(Event("alert", later.ts, later, flow, blocked))
    check(Event("alert", later.ts, later, flow, SIG))      # same time, another rule
    assert (flow.eve is not None) == eve.KEEP_FLOW_TEXT     # the pure path keeps it


def test_drop_record_with_and_without_its_alert(tmp_path: Path) -> None:
    pkt = decode(Ether() / IP(ttl=63, id=77) / TCP(seq=100, ack=5, flags="S", window=512), n=9)
    flow = flow_of(pkt)
    blocked = Alert(1, "drop it", action="blocked")
    for ev in (Event("drop", TS, pkt, flow, blocked), Event("drop", TS, pkt, flow)):
        assert encode(ev) == line(render(ev))
    assert json.loads(encode(Event("drop", TS, pkt, flow, blocked)))["alert"]["action"] == "blocked"
    # outputs.eve-log.drop.alerts: false drops the pre-serialised alert as it did the dict
    cfg = {"eve-log": {"enabled": True, "types": ["drop"], "drop": {"alerts": False}}}
    (out,) = open_outputs(cfg, OutputContext(logdir=tmp_path))
    out.emit(Event("drop", TS, pkt, flow, blocked))
    out.close()
    rec = render(Event("drop", TS, pkt, flow, blocked))
    del rec["alert"]
    assert (tmp_path / "eve.json").read_bytes() == line(rec)


def test_anomaly_alert_with_its_anomaly_object_and_assets() -> None:
    f = Finding("tcp-port-scan", "port-scan", "203.0.113.7", socket.inet_aton("203.0.113.7"),
                socket.inet_aton("10.0.0.5"), 6, {"ports": 120, "window": 60}, sp=0, dp=0)
    ev = make_event(f, TS, 42, 3)
    assets = AssetMap({"assets": [{"name": "payroll-db", "cidr": "10.0.0.5", "criticality": "critical"}]})
    assert assets.enrich(ev)
    rec = render(ev)
    assert encode(ev) == line(rec)
    # a record about two hosts: no flow_id, no ports (a scan is about many), no pkt_src
    assert list(rec) == ["timestamp", "pcap_cnt", "event_type", "src_ip", "dest_ip", "proto", "ip_v",
                         "alert", "netsentry"]
    assert (rec["src_ip"], rec["dest_ip"], rec["proto"], rec["ip_v"]) == ("203.0.113.7", "10.0.0.5", "TCP", 4)
    ours = rec["netsentry"]
    assert ours["anomaly"]["detector"] == "port-scan" and ours["anomaly"]["suppressed"] == 3
    assert ours["assets"][0]["name"] == "payroll-db"
    assert rec["alert"]["severity"] == 1 and ours["severity_raised_from"] == 3


def test_anomaly_alert_about_one_host_names_only_that_host() -> None:
    # a traffic spike: one host, no destination, no protocol, no port
    f = Finding("traffic-spike-packets", "traffic-spike", "10.0.0.9", socket.inet_aton("10.0.0.9"),
                b"", 0, {"observed": 900.0})
    rec = render(make_event(f, TS, 7, 0))
    assert rec["src_ip"] == "10.0.0.9"
    for absent in ("flow_id", "src_port", "dest_ip", "dest_port", "proto", "pkt_src"):
        assert absent not in rec, absent
    # a DNS flood: the resolver and its port, but no source port
    f = Finding("dns-query-flood", "dns-query-flood", "10.0.0.9", socket.inet_aton("10.0.0.9"),
                socket.inet_aton("10.0.0.53"), 17, {"observed": 80.0}, dp=53)
    rec = render(make_event(f, TS, 7, 0))
    assert (rec["dest_ip"], rec["dest_port"], rec["proto"]) == ("10.0.0.53", 53, "UDP")
    assert "src_port" not in rec


def test_a_raised_copy_of_an_alert_gets_its_own_fragment() -> None:
    alert = Alert(5, "x", severity=3)
    before = bytes(orjson.dumps(alert_fragment(alert)))
    raised = dataclasses.replace(alert, severity=1)
    assert raised.eve is None and alert.eve is not None
    assert json.loads(orjson.dumps(alert_fragment(raised)))["severity"] == 1
    assert orjson.dumps(alert_fragment(alert)) == before
    assert raised == dataclasses.replace(alert, severity=1)     # the cache takes no part in ==


def test_flow_record_after_alerts_reuses_the_flows_text() -> None:
    pkt = decode(TCP4)
    flow = flow_of(pkt)
    flow.last_seen = TS + 30
    flow.end_reason = "timeout"
    fresh = render(Event("flow", TS + 300, None, flow))
    check(Event("alert", pkt.ts, pkt, flow, SIG))          # makes flow.eve
    ev = Event("flow", TS + 300, None, flow)
    assert encode(ev) == line(fresh) == line(render(ev))
    assert json.loads(encode(ev))["flow"]["start"] == ts_text(TS - 2.5)


def test_record_time_formatter_reuses_only_an_equal_time() -> None:
    fmt = make_record_time_formatter(make_timestamp_formatter())
    times = [TS, TS, TS + 0.000001, TS, 0.0, -0.0, -0.25, TS + 1]
    assert [fmt(t) for t in times] == [ts_text(t) for t in times]


def test_writer_file_matches_the_dict_form(tmp_path: Path) -> None:
    pkt = decode(TCP4)
    flow = flow_of(pkt)
    events = [Event("alert", pkt.ts, pkt, flow, SIG), Event("alert", pkt.ts, pkt, flow, Alert(2, "y")),
              Event("flow", TS + 60, None, flow),
              Event("anomaly", TS + 61, decode(UDP4), None, extra={"anomaly": {"type": "decode",
                                                                               "event": "decoder.x"}})]
    (out,) = open_outputs({"eve-log": {"enabled": True}}, OutputContext(logdir=tmp_path))
    for ev in events:
        out.emit(ev)
    out.close()
    assert (tmp_path / "eve.json").read_bytes() == b"".join(line(render(ev)) for ev in events)
