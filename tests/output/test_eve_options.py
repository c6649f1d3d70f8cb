"""EVE options: community-id (the Community ID (v1) of each record's flow) and pcap-file."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.l2 import Ether

from netsentry.config import ConfigError
from netsentry.decode import Decoder
from netsentry.flow import Flow, FlowTable
from netsentry.output.community_id import CommunityId

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).with_name("netsentry")


def v4(text: str) -> bytes:
    return socket.inet_aton(text)


def test_spec_baseline_tcp_vector_in_both_directions():
    # the Community ID specification's TCP example (seed 0)
    cid = CommunityId()
    fwd = Flow(1, b"k", 6, 4, (), v4("128.232.110.120"), v4("66.35.250.204"), 34855, 80, 0.0)
    rev = Flow(2, b"r", 6, 4, (), v4("66.35.250.204"), v4("128.232.110.120"), 80, 34855, 0.0)
    assert cid.of_flow(fwd) == cid.of_flow(rev) == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="


def test_icmp_flow_uses_the_first_packets_type_and_code():
    table = FlowTable({}, lambda f: None)
    decode = Decoder().decode
    flow = None
    for i, frame in enumerate([Ether() / IP(src="192.168.0.89", dst="192.168.0.1") / ICMP(type=8, code=0),
                               Ether() / IP(src="192.168.0.1", dst="192.168.0.89") / ICMP(type=0, code=0)]):
        pkt = decode(bytes(frame), 1)
        pkt.ts = 1.0 + i
        flow = table.update(pkt)
    # the specification's ICMP echo example
    assert CommunityId().of_flow(flow) == "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="


def test_packet_without_flow_and_seed():
    pkt = Decoder().decode(bytes(Ether() / IP(src="128.232.110.120", dst="66.35.250.204")
                                 / TCP(sport=34855, dport=80)), 1)
    assert CommunityId().of_packet(pkt) == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    seeded = CommunityId(1).of_packet(pkt)
    assert seeded.startswith("1:") and seeded != "1:LQU9qZlK+B5F3KDmev6m5PMibrg="


@pytest.mark.parametrize("seed", [-1, 65536, "0", True, 1.5])
def test_bad_seed_names_the_key(seed):
    with pytest.raises(ConfigError) as info:
        CommunityId(seed)
    assert "outputs.eve-log.community-id-seed" in str(info.value)


def _replay(tmp_path: Path, *sets: str) -> list[dict]:
    cmd = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "netsentry"]
    args = ["replay", "-q", str(REPO / "pcaps" / "attacks-web.pcap"), "-l", str(tmp_path),
            "-S", str(REPO / "signatures" / "netsentry.rules")]
    for s in sets:
        args += ["--set", s]
    proc = subprocess.run(cmd + args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [orjson.loads(line) for line in (tmp_path / "eve.json").read_bytes().splitlines()]


def test_replay_records_of_one_flow_share_one_id_before_their_object(tmp_path: Path):
    recs = _replay(tmp_path, "outputs.eve-log.community-id=true")
    with_flow = [r for r in recs if "flow_id" in r]
    alerts = [r for r in with_flow if r["event_type"] == "alert"]
    assert alerts and any(r["event_type"] == "flow" for r in with_flow)
    by_flow: dict[int, set[str]] = {}
    for r in with_flow:
        by_flow.setdefault(r["flow_id"], set()).add(r["community_id"])
        keys = list(r)
        obj = "alert" if r["event_type"] == "alert" else "flow"
        assert keys.index("community_id") == keys.index(obj) - 1 or keys[keys.index("community_id") + 1] == "app_proto"
    assert all(len(ids) == 1 for ids in by_flow.values())
    assert len({next(iter(ids)) for ids in by_flow.values()}) == len(by_flow)     # one id per flow


def test_off_by_default(tmp_path: Path):
    assert not any("community_id" in r or "pcap_filename" in r for r in _replay(tmp_path))


@pytest.mark.parametrize("setting, key", [
    ("outputs.eve-log.community-id=maybe", "outputs.eve-log.community-id"),
    ("outputs.eve-log.pcap-file=maybe", "outputs.eve-log.pcap-file"),
    ("outputs.eve-log.community-id-seed=70000", "outputs.eve-log.community-id-seed"),
])
def test_bad_switch_stops_start_up_with_the_key(tmp_path: Path, setting: str, key: str):
    cmd = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "netsentry"]
    proc = subprocess.run(cmd + ["replay", "-q", str(REPO / "pcaps" / "benign-web.pcap"), "-l", str(tmp_path),
                                 "--set", "outputs.eve-log.community-id=true", "--set", setting],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert key + ":" in proc.stderr
    assert not (tmp_path / "eve.json").exists()         # stopped before the log was opened


def test_pcap_file_names_the_capture_each_record_came_from(tmp_path: Path):
    """outputs.eve-log.pcap-file: alerts name the file of their packet; records written at
    the end of the replay (open flows, stats) name the last file, as Suricata's pcap_filename."""
    web, scan = REPO / "pcaps" / "attacks-web.pcap", REPO / "pcaps" / "attacks-scan.pcap"
    cmd = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "netsentry"]
    proc = subprocess.run(cmd + ["replay", "-q", str(web), str(scan), "-l", str(tmp_path),
                                 "-S", str(REPO / "signatures" / "netsentry.rules"),
                                 "--set", "outputs.eve-log.pcap-file=true"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    recs = [orjson.loads(line) for line in (tmp_path / "eve.json").read_bytes().splitlines()]
    assert all(list(r)[-1] == "pcap_filename" for r in recs)
    sids = {r["alert"]["signature_id"]: r["pcap_filename"] for r in recs if r["event_type"] == "alert"}
    assert sids[9001001] == str(web)                # Log4Shell: in the web capture
    assert sids[9000001] == str(scan)               # NULL scan: in the scan capture
    assert recs[-1]["event_type"] == "stats" and recs[-1]["pcap_filename"] == str(scan)


def test_alert_payload_printable_packet_and_host(tmp_path: Path):
    import base64
    import json

    from netsentry.decode import Decoder
    from netsentry.event import Alert, Event
    from netsentry.output import OutputContext, open_outputs
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    frame = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.0.0.1", dst="10.0.0.2")
                  / TCP(sport=1, dport=80) / b"GET /\r\n\x00\xff")
    pkt = Decoder().decode(frame, 1)
    pkt.pcap_cnt = 1
    cfg = {"eve-log": {"enabled": True, "types": ["alert"], "sensor-name": "gw-1", "ethernet": True,
                       "alert": {"payload": True, "payload-printable": True, "packet": True}}}
    (out,) = open_outputs(cfg, OutputContext(logdir=tmp_path))
    out.emit(Event("alert", 1.0, pkt, None, Alert(1, "x")))
    out.close()
    rec = json.loads((tmp_path / "eve.json").read_text())
    assert base64.b64decode(rec["payload"]) == b"GET /\r\n\x00\xff"
    assert rec["payload_printable"] == "GET /\r\n.."
    assert base64.b64decode(rec["packet"]) == frame
    assert rec["packet_info"] == {"linktype": 1, "linktype_name": "EN10MB"}     # Suricata's util-datalink names
    assert rec["ether"] == {"src_mac": "02:00:00:00:00:01", "dest_mac": "02:00:00:00:00:02"}
    assert rec["host"] == "gw-1"


def test_payload_length_is_the_logged_payloads_length(tmp_path: Path):
    """Suricata's `payload-length: yes`: payload_length, alone or beside the payload options."""
    import json

    from netsentry.event import Alert, Event
    from netsentry.output import OutputContext, open_outputs
    from netsentry.suricata_config import translate
    frame = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=80) / b"GET /x\r\n")
    pkt = Decoder().decode(frame, 1)
    pkt.pcap_cnt = 1
    for options, want in (({"payload-length": True}, {"payload_length"}),
                          ({"payload-length": True, "payload-printable": True}, {"payload_length", "payload_printable"}),
                          ({"payload-printable": True}, {"payload_printable"})):
        (tmp_path / "eve.json").unlink(missing_ok=True)
        cfg = {"eve-log": {"enabled": True, "types": ["alert"], "alert": options}}
        (out,) = open_outputs(cfg, OutputContext(logdir=tmp_path))
        out.emit(Event("alert", 1.0, pkt, None, Alert(1, "x")))
        out.close()
        rec = json.loads((tmp_path / "eve.json").read_text())
        assert want <= set(rec) and not ({"payload_length", "payload_printable"} - want) & set(rec), options
        if "payload_length" in want:
            assert rec["payload_length"] == 8
    doc = {"outputs": [{"eve-log": {"types": [{"alert": {"payload-length": True}}]}}]}
    cfg, ignored = translate(doc, tmp_path / "suricata.yaml", ("alert",))
    assert cfg["outputs"]["eve-log"]["alert"] == {"payload-length": True} and not ignored


def test_suricata_yaml_alert_options_and_ethernet_reach_the_eve_log(tmp_path: Path):
    # a Suricata config's `types: [alert: {packet: yes}]` and `ethernet: yes` (suricata-verify's
    # suricata.yaml files) turn the same options on
    from netsentry.suricata_config import translate
    doc = {"outputs": [{"eve-log": {"enabled": True, "ethernet": True,
                                    "types": [{"alert": {"packet": True, "payload": False, "metadata": True}}]}}]}
    cfg, ignored = translate(doc, tmp_path / "suricata.yaml", ("alert", "drop", "flow"))
    eve = cfg["outputs"]["eve-log"]
    assert eve["ethernet"] is True and eve["alert"] == {"packet": True, "payload": False}
    assert "outputs.eve-log.types.alert.metadata" in ignored


def test_alert_option_must_be_a_boolean(tmp_path: Path):
    from netsentry.config import ConfigError
    from netsentry.output import OutputContext, open_outputs

    with pytest.raises(ConfigError, match="outputs.eve-log.alert.payload: expected true or false"):
        open_outputs({"eve-log": {"enabled": True, "alert": {"payload": "yes"}}}, OutputContext(logdir=tmp_path))


def test_verdict_names_the_packets_final_verdict(tmp_path: Path):
    # Suricata's `verdict: yes`: drop (rejects with target and kind), pass for a passed flow, else alert
    import json
    from types import SimpleNamespace

    from netsentry.event import Alert, Event
    from netsentry.output import OutputContext, open_outputs
    from netsentry.output.eve import _verdict

    pkt = Decoder().decode(bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=80)), 1)
    assert _verdict(Event("alert", 1.0, pkt, SimpleNamespace(action=None)), False) == {"action": "alert"}
    assert _verdict(Event("alert", 1.0, pkt, SimpleNamespace(action="pass")), False) == {"action": "pass"}
    cfg = {"eve-log": {"enabled": True, "types": ["alert", "drop"], "alert": {"verdict": True},
                       "drop": {"verdict": True}}}
    (out,) = open_outputs(cfg, OutputContext(logdir=tmp_path, ips=True))     # inline: drops happen
    out.emit(Event("alert", 1.0, pkt, None, Alert(1, "x")))
    pkt.verdict = "drop"
    out.emit(Event("drop", 1.0, pkt, None, Alert(3, "x")))
    pkt.verdict, pkt.reject_action = "reject", "rejectboth"
    out.emit(Event("alert", 1.0, pkt, None, Alert(4, "x")))
    out.close()
    recs = [json.loads(line) for line in (tmp_path / "eve.json").read_text().splitlines()]
    assert [r["verdict"] for r in recs] == [
        {"action": "alert"}, {"action": "drop"},
        {"action": "drop", "reject_target": "both", "reject": ["tcp-reset"]}]
