"""MQTT (applayer/mqtt.py): messages split anywhere, CONNECT/CONNACK and PUBLISH/PUBACK
transactions, the mqtt.* keywords per side, v5 properties, events, hostile input, and
detection on port 1883 only."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from applayer_helpers import alerts, replay, tcp_session

from netsentry.applayer import mqtt
from netsentry.applayer.registry import ParserError

TYPES = "outputs.eve-log.types=[alert, flow, mqtt]"


def s(b: bytes) -> bytes:
    return struct.pack(">H", len(b)) + b


def msg(first: int, body: bytes) -> bytes:
    n, out = len(body), bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            break
    return bytes([first]) + bytes(out) + body


CONNECT5 = msg(0x10, s(b"MQTT") + bytes([5, 0xC2]) + b"\x00\x3c" + bytes([3, 33, 0, 20]) + s(b"cid")
               + s(b"user") + s(b"pass"))
CONNACK5 = msg(0x20, bytes([0, 0, 3, 34, 0, 10]))
PUBLISH_Q1 = msg(0x32, s(b"topicX") + b"\x00\x07" + b"\x00" + b"\xff\xd8\xff\xe0payload")
PUBACK = msg(0x40, b"\x00\x07\x10")
DISCONNECT = msg(0xE0, b"")


def test_parser_transactions_properties_and_record():
    p = mqtt.MqttParser()
    stream = CONNECT5 + PUBLISH_Q1 + DISCONNECT
    for i in range(len(stream)):                 # one byte at a time: nothing depends on segments
        p.parse(stream[i:i + 1], True)
    p.parse(CONNACK5 + PUBACK, False)
    connect, publish, disconnect = p.txs
    assert connect.complete() and publish.complete() and disconnect.complete()
    assert connect.events is None               # DISCONNECT came before the CONNACK:
    assert disconnect.events == {"unintroduced_message"}
    rec = connect.eve()
    assert rec["connect"]["properties"] == {"receive_maximum": 20}
    assert rec["connect"]["client_id"] == "cid" and rec["connect"]["password"] == "pass"
    assert rec["connack"]["properties"] == {"topic_alias_maximum": 10}
    assert publish.eve()["puback"] == {"qos": 0, "retain": False, "dup": False, "message_id": 7, "reason_code": 16}
    assert publish.eve()["publish"]["message"] == "\\xff\\xd8\\xff\\xe0payload"


def test_events_and_hostile_input():
    p = mqtt.MqttParser()
    p.parse(CONNACK5, False)                              # no CONNECT
    p.parse(msg(0x36, s(b"t") + b"\x00\x01"), True)       # QoS 3
    p.parse(msg(0x00, b""), True)                         # type 0
    assert [tx.events for tx in p.txs] == [{"missing_connect"}, {"invalid_qos_level", "unintroduced_message"},
                                          {"unassigned_msg_type"}]
    bad = mqtt.MqttParser()
    with pytest.raises(ParserError):                      # a CONNECT whose strings run past it
        bad.parse(msg(0x10, s(b"MQTT") + bytes([4, 0]) + b"\x00\x3c" + b"\x00\x09ab"), True)
    assert bad.txs[-1].events == {"malformed_traffic"}
    bad.parse(CONNECT5, True)                             # the direction stays stopped, no crash
    assert len(bad.txs) == 1
    huge = mqtt.MqttParser({**mqtt.configure({}), "max-msg-length": 10})
    huge.parse(PUBLISH_Q1[:12], True)                     # longer than the limit: skipped unread
    huge.parse(PUBLISH_Q1[12:] + DISCONNECT, True)
    assert list(huge.txs[0].eve()) == ["publish"] and huge.txs[0].eve()["publish"]["truncated"]
    assert "disconnect" in huge.txs[1].eve()
    assert mqtt.probe(b"\x10", True) is None and mqtt.probe(b"\x00\x00", True) is False
    with pytest.raises(mqtt.Malformed):
        mqtt.varint(b"\xff\xff\xff\xff\x01", 0, 5)


RULES = "\n".join((
    'alert mqtt any any -> any any (mqtt.type:CONNACK; sid:1;)',
    'alert mqtt any any -> any any (mqtt.protocol_version:5; mqtt.connect.flags:username,password,clean_session,!will; sid:2;)',
    'alert mqtt any any -> any any (mqtt.publish.topic; content:"topicX"; mqtt.qos:1; sid:3;)',
    'alert mqtt any any -> any any (mqtt.reason_code:16; mqtt.type:PUBLISH,0; sid:4;)',
    'alert mqtt any any -> any any (mqtt.flags:retain; sid:5;)',
    'alert mqtt any any -> any any (mqtt.connack.session_present:true; sid:6;)',
    'alert mqtt any any -> any any (mqtt.connect.username; content:"user"; sid:7;)',
    'alert mqtt any any -> any any (app-layer-event:mqtt.unintroduced_message; sid:8;)',
)) + "\n"


def test_rules_and_records_on_port_1883(tmp_path: Path):
    pcap = tcp_session(tmp_path / "m.pcap", [(True, CONNECT5), (False, CONNACK5), (True, PUBLISH_Q1),
                                             (False, PUBACK), (True, DISCONNECT)], dport=1883, segment=5)
    recs = replay(tmp_path, pcap, RULES, TYPES)
    # each transaction alerts once, on its own side (Suricata's one-direction transactions)
    assert {sid: len(alerts(recs, sid)) for sid in range(1, 9)} == {1: 1, 2: 1, 3: 1, 4: 1, 5: 0, 6: 0, 7: 1, 8: 0}
    assert alerts(recs, 1)[0]["mqtt"]["connack"]["return_code"] == 0
    assert [sorted(r["mqtt"]) for r in recs if r["event_type"] == "mqtt"] == [
        ["connack", "connect"], ["puback", "publish"], ["disconnect"]]
    assert {r["app_proto"] for r in recs if r["event_type"] == "flow"} == {"mqtt"}


def test_not_detected_off_its_port(tmp_path: Path):
    pcap = tcp_session(tmp_path / "m.pcap", [(True, CONNECT5), (False, CONNACK5)], dport=8883)
    recs = replay(tmp_path, pcap, RULES, TYPES)
    assert not alerts(recs) and not [r for r in recs if r["event_type"] == "mqtt"]
    assert [r.get("app_proto") for r in recs if r["event_type"] == "flow"] != ["mqtt"]
