"""EVE JSON records: Suricata's field names, text forms and JSON types."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import orjson
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether

from netsentry.config import ConfigError, load_defaults
from netsentry.decode import Decoder
from netsentry.event import Alert, Event
from netsentry.flow.flow import Flow
from netsentry.output import OutputContext, open_outputs
from netsentry.output.eve import render
from netsentry.output.fields import format_ip, format_timestamp, make_timestamp_formatter
from netsentry.output.stats import nest_counters, stats_event

TS = 1491603877.251547        # Suricata's documentation example: 2017-04-07T22:24:37.251547
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+0000$")


def decode(frame, n: int = 1, ts: float = TS):
    pkt = Decoder().decode(bytes(frame), 1)
    pkt.ts = ts
    pkt.pcap_cnt = n
    return pkt


def tcp_flow(pkt, flow_id: int = 1234567890123) -> Flow:
    flow = Flow(flow_id, None, pkt.proto, pkt.ip_version, pkt.vlan, pkt.src, pkt.dst, pkt.sp, pkt.dp, TS)
    flow.pkts_toserver, flow.bytes_toserver = 3, 300
    flow.pkts_toclient, flow.bytes_toclient = 2, 1200
    return flow


WEB = Ether() / IP(src="192.168.2.14", dst="209.53.113.5") / TCP(sport=50096, dport=80, flags="PA") / b"GET /"


# --- text forms ------------------------------------------------------------------

def test_timestamp_is_suricatas_format():
    assert format_timestamp(TS) == "2017-04-07T22:24:37.251547+0000"


def test_timestamp_rounds_to_the_microsecond_and_carries():
    fmt = make_timestamp_formatter()
    assert fmt(1.0000004) == "1970-01-01T00:00:01.000000+0000"
    assert fmt(1.9999996) == "1970-01-01T00:00:02.000000+0000"
    assert fmt(0.5) == "1970-01-01T00:00:00.500000+0000"
    assert fmt(-0.25) == "1969-12-31T23:59:59.750000+0000"


def test_timestamp_cache_does_not_leak_between_seconds():
    fmt = make_timestamp_formatter()
    assert fmt(TS) == "2017-04-07T22:24:37.251547+0000"
    assert fmt(TS + 1) == "2017-04-07T22:24:38.251547+0000"
    assert fmt(TS) == "2017-04-07T22:24:37.251547+0000"


def test_timestamp_formatter_in_use_matches_the_reference_closure():
    """Compiled, `format_timestamp` is C (output/fields.py); the pure closure is the
    reference. Rounding halves to even, times before 1970, leap days, the clamped
    ends of the 4-digit years and random doubles all give the same text."""
    import random
    import struct
    reference = make_timestamp_formatter()
    rng = random.Random(12)
    values = [0.0, -0.0, 0.5, -0.25, 1e-7, -1e-7, 5e-7, -5e-7, 1.5e-6, 2.5e-6, 0.0000025, 1.0000005,
              951782400.0, 951868799.999999, 4107542400.0, -2208988800.0, -62135596800.0,
              -30610224000.0, -30610224000.5, -30610224001.0, 253402300799.0, 253402300799.9999996,
              253402300800.0, 1e13, -1e13, 1e300, -1e300, float("inf"), float("-inf"), TS]
    values += [rng.uniform(-3.2e10, 2.6e11) for _ in range(3000)]
    values += [rng.randrange(-30610224000 * 10**6, 253402300800 * 10**6) / 1e6 + rng.choice((0.0, 5e-7, -5e-7))
               for _ in range(3000)]
    values += [struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0] for _ in range(3000)]
    values += [float("nan")]

    def text(fmt, value):
        try:
            return fmt(value)
        except (ValueError, OverflowError) as exc:      # NaN, infinities: the same error
            return type(exc)

    for value in values:
        assert text(format_timestamp, value) == text(reference, value), value


def test_ipv4_text_in_use_matches_inet_ntoa():
    import random
    rng = random.Random(3)
    for packed in [b"\0\0\0\0", b"\xff\xff\xff\xff", b"\n\0\0\x01", b"\x01\x0a\x64\xc8"] + \
            [rng.getrandbits(32).to_bytes(4, "big") for _ in range(5000)]:
        assert format_ip(packed) == socket.inet_ntoa(packed)
    assert format_ip(b"") == "" and format_ip(b"abc") == ""


def test_ipv6_is_written_expanded_like_suricata():
    # as in suricata-verify compress_ipv6-02's expected records
    packed = socket.inet_pton(socket.AF_INET6, "fe80::20c:29ff:fef3:cf38")
    assert format_ip(packed) == "fe80:0000:0000:0000:020c:29ff:fef3:cf38"
    assert format_ip(socket.inet_aton("10.0.0.1")) == "10.0.0.1"


# --- alert ------------------------------------------------------------------------

def test_alert_record_fields_and_types():
    pkt = decode(WEB, n=53381)
    flow = tcp_flow(pkt)
    pkt.to_server = True
    alert = Alert(2018358, "ET HUNTING GENERIC SUSPICIOUS POST", rev=10,
                  category="Potentially Bad Traffic", severity=2, metadata={"created_at": ["2014_03_27"]})
    rec = orjson.loads(orjson.dumps(render(Event("alert", TS, pkt, flow, alert))))
    assert rec["timestamp"] == "2017-04-07T22:24:37.251547+0000"
    assert rec["flow_id"] == 1234567890123
    assert rec["pcap_cnt"] == 53381
    assert rec["event_type"] == "alert"
    assert (rec["src_ip"], rec["src_port"], rec["dest_ip"], rec["dest_port"]) == (
        "192.168.2.14", 50096, "209.53.113.5", 80)
    assert rec["proto"] == "TCP"
    assert rec["alert"] == {"action": "allowed", "gid": 1, "signature_id": 2018358, "rev": 10,
                            "signature": "ET HUNTING GENERIC SUSPICIOUS POST",
                            "category": "Potentially Bad Traffic", "severity": 2,
                            "metadata": {"created_at": ["2014_03_27"]}}
    assert rec["direction"] == "to_server"
    assert rec["flow"] == {"pkts_toserver": 3, "pkts_toclient": 2, "bytes_toserver": 300,
                           "bytes_toclient": 1200, "start": "2017-04-07T22:24:37.251547+0000",
                           "src_ip": "192.168.2.14", "dest_ip": "209.53.113.5",
                           "src_port": 50096, "dest_port": 80}
    # Suricata's header order
    assert list(rec)[:10] == ["timestamp", "flow_id", "pcap_cnt", "event_type", "src_ip", "src_port",
                              "dest_ip", "dest_port", "proto", "ip_v"]


def test_alert_on_reply_packet_keeps_packet_direction_and_flow_client():
    pkt = decode(Ether() / IP(src="209.53.113.5", dst="192.168.2.14") / TCP(sport=80, dport=50096, flags="A"))
    client = socket.inet_aton("192.168.2.14")
    server = socket.inet_aton("209.53.113.5")
    flow = Flow(7, None, 6, 4, (), client, server, 50096, 80, TS)
    pkt.to_server = False
    rec = render(Event("alert", TS, pkt, flow, Alert(1, "reply")))
    assert (rec["src_ip"], rec["src_port"]) == ("209.53.113.5", 80)   # packet direction
    assert rec["direction"] == "to_client"
    assert (rec["flow"]["src_ip"], rec["flow"]["src_port"]) == ("192.168.2.14", 50096)


@pytest.mark.parametrize("frame, proto, has_ports", [
    (Ether() / IP() / UDP(sport=53, dport=5353), "UDP", True),
    (Ether() / IP() / ICMP(type=8), "ICMP", False),
    (Ether() / IPv6() / UDP(), "UDP", True),
    (Ether() / IP(proto=47) / b"\x00\x00\x08\x00", "GRE", False),
    (Ether() / IP(proto=200) / b"xx", "200", False),
])
def test_proto_names_and_ports(frame, proto, has_ports):
    rec = render(Event("alert", TS, decode(frame), None, Alert(1, "x")))
    assert rec["proto"] == proto
    assert ("src_port" in rec) is has_ports and ("dest_port" in rec) is has_ports


def test_icmp_type_and_code():
    rec = render(Event("alert", TS, decode(Ether() / IP() / ICMP(type=3, code=1) / IP() / UDP()), None,
                       Alert(1, "x")))
    assert rec["proto"] == "ICMP"
    assert (rec["icmp_type"], rec["icmp_code"]) == (3, 1)


def test_icmpv6_proto_name():
    from scapy.layers.inet6 import ICMPv6EchoRequest
    rec = render(Event("alert", TS, decode(Ether() / IPv6() / ICMPv6EchoRequest()), None, Alert(1, "x")))
    assert rec["proto"] == "IPv6-ICMP"
    assert rec["icmp_type"] == 128
    assert rec["ip_v"] == 6


def test_vlan_list():
    rec = render(Event("alert", TS, decode(Ether() / Dot1Q(vlan=10) / Dot1Q(vlan=20) / IP() / UDP()), None,
                       Alert(1, "x")))
    assert rec["vlan"] == [10, 20]


def test_tunnelled_alert_has_tunnel_object():
    pkt = decode(Ether() / IP(src="1.1.1.1", dst="2.2.2.2", proto=47) / b"\x00\x00\x08\x00"
                 / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2))
    assert pkt.tunnel is not None, "decoder should record the GRE outer header"
    rec = render(Event("alert", TS, pkt, None, Alert(1, "x")))
    assert rec["src_ip"] == "10.0.0.1"                  # inner packet
    assert rec["pkt_src"] == "gre tunnel"               # Suricata: the decoder that made the packet
    assert rec["tunnel"] == {"src_ip": "1.1.1.1", "src_port": 0, "dest_ip": "2.2.2.2", "dest_port": 0,
                             "proto": "GRE", "depth": 1, "pcap_cnt": 1, "pkt_src": "wire/pcap"}


def test_ip_in_ip_packets_name_their_tunnel_decoder():
    from scapy.layers.inet6 import IPv6
    inner = IP(src="10.0.0.3", dst="10.0.0.4") / UDP(sport=1, dport=2)
    v4 = decode(Ether() / IP(src="1.1.1.1", dst="2.2.2.2") / inner)
    v6 = decode(Ether() / IPv6(src="2001:db8::1", dst="2001:db8::2") / inner)
    assert render(Event("alert", TS, v4, None, Alert(1, "x")))["pkt_src"] == "ipv4 tunnel"
    assert render(Event("alert", TS, v6, None, Alert(1, "x")))["pkt_src"] == "ipv6 tunnel"


# --- flow, drop, anomaly, stats -----------------------------------------------------

def test_flow_record():
    pkt = decode(WEB)
    flow = tcp_flow(pkt)
    flow.last_seen = TS + 65.5
    flow.end_reason = "timeout"
    flow.established = True
    flow.tcp_state = "established"
    flow.state = "established"
    flow.alerted = True
    flow.tcp_flags_ts = 0x02 | 0x10 | 0x08 | 0x01        # SYN, ACK, PSH, FIN from the client
    flow.tcp_flags_tc = 0x12 | 0x04                      # SYN-ACK and a RST from the server
    rec = render(Event("flow", TS + 400, None, flow))
    assert rec["event_type"] == "flow"
    assert rec["timestamp"] == "2017-04-07T22:31:17.251547+0000"
    assert "pcap_cnt" not in rec
    assert (rec["src_ip"], rec["src_port"], rec["dest_ip"], rec["dest_port"], rec["proto"]) == (
        "192.168.2.14", 50096, "209.53.113.5", 80, "TCP")
    assert rec["flow"] == {"pkts_toserver": 3, "pkts_toclient": 2, "bytes_toserver": 300,
                           "bytes_toclient": 1200, "start": "2017-04-07T22:24:37.251547+0000",
                           "end": "2017-04-07T22:25:42.751547+0000", "age": 65, "state": "established",
                           "reason": "timeout", "alerted": True}
    # Suricata's layout: flags of both directions, of each, one boolean per flag seen, state
    assert list(rec["tcp"].items()) == [
        ("tcp_flags", "1f"), ("tcp_flags_ts", "1b"), ("tcp_flags_tc", "16"),
        ("syn", True), ("fin", True), ("rst", True), ("psh", True), ("ack", True),
        ("state", "established")]


def test_flow_record_of_a_tcp_flow_without_handshake_has_flags_and_no_state():
    flow = tcp_flow(decode(WEB))
    flow.tcp_state = "none"
    flow.tcp_flags_ts = 0x29                              # FIN PSH URG: an XMAS probe
    rec = render(Event("flow", TS, None, flow))
    assert rec["tcp"] == {"tcp_flags": "29", "tcp_flags_ts": "29", "tcp_flags_tc": "00",
                          "fin": True, "psh": True, "urg": True}


def _icmp_flow(frames):
    from netsentry.flow import FlowTable
    table = FlowTable({}, lambda f: None)
    flow = None
    for i, frame in enumerate(frames):
        flow = table.update(decode(frame, n=i + 1, ts=TS + i))
    return flow


def test_icmp_flow_record_has_the_types_of_request_and_reply_after_proto():
    echo = Ether() / IP(src="10.0.0.9", dst="10.0.0.1") / ICMP(type=8, code=0, id=7, seq=1)
    reply = Ether() / IP(src="10.0.0.1", dst="10.0.0.9") / ICMP(type=0, code=0, id=7, seq=1)
    rec = render(Event("flow", TS + 60, None, _icmp_flow([echo, reply])))
    keys = list(rec)
    assert keys[keys.index("proto"):keys.index("proto") + 5] == [
        "proto", "icmp_type", "icmp_code", "response_icmp_type", "response_icmp_code"]
    assert (rec["icmp_type"], rec["icmp_code"], rec["response_icmp_type"], rec["response_icmp_code"]) == (8, 0, 0, 0)


def test_icmp_flow_record_without_reply_has_no_response_types():
    # (an error message makes no flow of its own, as in Suricata: flow/table.py quoted_flow)
    ping = Ether() / IP(src="10.0.0.1", dst="10.0.0.9") / ICMP(type=13, code=0)
    rec = render(Event("flow", TS + 60, None, _icmp_flow([ping])))
    assert (rec["icmp_type"], rec["icmp_code"]) == (13, 0)
    assert "response_icmp_type" not in rec


def test_flow_record_of_dropped_flow_has_action():
    flow = tcp_flow(decode(WEB))
    flow.action = "drop"
    flow.tcp_state = "closed"
    flow.state = "closed"
    assert render(Event("flow", TS, None, flow))["flow"]["action"] == "drop"
    assert render(Event("flow", TS, None, flow))["flow"]["state"] == "closed"


def test_drop_record():
    pkt = decode(Ether() / IP(ttl=63, id=77, tos=0) / TCP(seq=100, ack=5, flags="S", window=512), n=9)
    flow = tcp_flow(pkt)
    rec = render(Event("drop", TS, pkt, flow, Alert(1, "drop it", action="blocked")))
    assert rec["event_type"] == "drop" and rec["pcap_cnt"] == 9
    drop = rec["drop"]
    assert (drop["len"], drop["ttl"], drop["ipid"], drop["tcpseq"], drop["tcpack"], drop["tcpwin"]) == (
        40, 63, 77, 100, 5, 512)
    assert drop["syn"] is True and drop["ack"] is False
    assert drop["reason"] == "rules"
    assert rec["alert"]["signature_id"] == 1 and rec["alert"]["action"] == "blocked"
    assert render(Event("drop", TS, pkt, flow))["drop"]["reason"] == "flow drop"


def test_anomaly_record_extra_is_merged():
    pkt = decode(Ether() / IP() / UDP())
    rec = render(Event("anomaly", TS, pkt, None, extra={"anomaly": {"type": "decode",
                                                                      "event": "decoder.ipv4.trunc_pkt"}}))
    assert rec["event_type"] == "anomaly"
    assert rec["anomaly"] == {"type": "decode", "event": "decoder.ipv4.trunc_pkt"}


def test_stats_record_nests_dotted_counters():
    rec = render(stats_event(TS, 12.7, {"decoder.pkts": 5, "decoder.bytes": 500,
                                        "decoder.event.ipv4.trunc_pkt": 1, "flow.tcp": 2, "detect.alert": 3}))
    assert rec == {"timestamp": "2017-04-07T22:24:37.251547+0000", "event_type": "stats",
                   "stats": {"uptime": 12, "decoder": {"pkts": 5, "bytes": 500,
                                                       "event": {"ipv4": {"trunc_pkt": 1}}},
                             "flow": {"tcp": 2}, "detect": {"alert": 3}}}


def test_nesting_keeps_a_counter_that_is_also_a_prefix():
    assert nest_counters({"a": 1, "a.b": 2}) == {"a": {"total": 1, "b": 2}}
    assert nest_counters({"a.b": 2, "a": 1}) == {"a": {"b": 2, "total": 1}}


# --- the writer --------------------------------------------------------------------

def _eve_cfg(**over):
    cfg = load_defaults()["outputs"]
    cfg["eve-log"].update(over)
    return cfg


def test_writer_one_object_per_line_and_types_filter(tmp_path: Path):
    (out,) = open_outputs(_eve_cfg(types=["alert", "stats"]), OutputContext(logdir=tmp_path))
    assert out.wants("alert") and out.wants("stats") and not out.wants("flow")
    pkt = decode(WEB)
    out.emit(Event("alert", TS, pkt, None, Alert(5, "five")))
    out.emit(stats_event(TS, 1, {"decoder.pkts": 1}))
    out.close()
    lines = (tmp_path / "eve.json").read_bytes().splitlines()
    assert [orjson.loads(line)["event_type"] for line in lines] == ["alert", "stats"]


def test_writer_truncates_unless_append(tmp_path: Path):
    for _ in range(2):
        (out,) = open_outputs(_eve_cfg(), OutputContext(logdir=tmp_path))
        out.emit(stats_event(TS, 1, {}))
        out.close()
    assert len((tmp_path / "eve.json").read_bytes().splitlines()) == 1
    (out,) = open_outputs(_eve_cfg(append=True), OutputContext(logdir=tmp_path))
    out.emit(stats_event(TS, 1, {}))
    out.close()
    assert len((tmp_path / "eve.json").read_bytes().splitlines()) == 2


def test_writer_drop_alerts_off(tmp_path: Path):
    (out,) = open_outputs(_eve_cfg(drop={"alerts": False, "flows": "start"}), OutputContext(logdir=tmp_path))
    pkt = decode(WEB)
    out.emit(Event("drop", TS, pkt, None, Alert(1, "x", action="blocked")))
    out.close()
    rec = orjson.loads((tmp_path / "eve.json").read_bytes())
    assert "alert" not in rec and rec["drop"]["reason"] == "rules"


def test_unknown_event_type_in_types_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError) as info:
        open_outputs(_eve_cfg(types=["alert", "alerts"]), OutputContext(logdir=tmp_path))
    assert str(info.value) == ("config error: outputs.eve-log.types: unknown event type 'alerts' "
                               "(known: alert, drop, anomaly, flow, stats, http, dns, tls, smtp, ftp, ftp_data, ssh, "
                               "sip, llmnr, template, dcerpc, smb, pgsql, ldap, enip, modbus, dnp3, ike, mqtt, ntp, tftp, snmp, krb5, dhcp, rfb, websocket, nfs, quic)")


def test_disabled_output_is_not_opened(tmp_path: Path):
    assert open_outputs(_eve_cfg(enabled=False), OutputContext(logdir=tmp_path)) == []
    assert not (tmp_path / "eve.json").exists()


def test_unwritable_logdir_is_an_oserror_naming_the_file(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError) as info:
        open_outputs(_eve_cfg(), OutputContext(logdir=blocker))
    assert str(blocker) in str(info.value)


def test_every_record_timestamp_matches_the_pattern():
    pkt = decode(WEB)
    flow = tcp_flow(pkt)
    for event in (Event("alert", TS, pkt, flow, Alert(1, "x")), Event("flow", TS, None, flow),
                  Event("drop", TS, pkt, flow), stats_event(TS, 0, {})):
        assert TS_RE.match(render(event)["timestamp"])


def test_flow_record_with_vlan_keeps_suricatas_key_order():
    pkt = decode(Ether() / Dot1Q(vlan=7) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5, dport=53))
    flow = Flow(9, None, 17, 4, pkt.vlan, pkt.src, pkt.dst, 5, 53, TS)
    rec = render(Event("flow", TS, None, flow))
    assert list(rec)[:5] == ["timestamp", "flow_id", "event_type", "vlan", "src_ip"]
    assert rec["vlan"] == [7] and rec["proto"] == "UDP" and rec["dest_port"] == 53


def test_icmp_flow_record_has_no_ports():
    pkt = decode(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP())
    flow = Flow(9, None, 1, 4, (), pkt.src, pkt.dst, 0, 0, TS)
    rec = render(Event("flow", TS, None, flow))
    assert rec["proto"] == "ICMP" and "src_port" not in rec and "dest_port" not in rec


def test_drop_flows_setting_is_checked(tmp_path: Path):
    with pytest.raises(ConfigError) as info:
        open_outputs(_eve_cfg(drop={"alerts": True, "flows": "al"}), OutputContext(logdir=tmp_path))
    assert str(info.value) == "config error: outputs.eve-log.drop.flows: expected 'start' or 'all', got 'al'"
