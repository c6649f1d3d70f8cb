"""Stream frames (applayer/frames.py, detect/framedetect.py): parsers mark frames in the
stream, a `frame:` rule alerts once per matching frame with the frame object."""

from __future__ import annotations

import base64
import random
import struct
from pathlib import Path

import pytest

from netsentry.applayer import frames as fr
from netsentry.applayer.enip import EnipParser
from netsentry.applayer.frames import Frames
from netsentry.applayer.ldap import LdapParser
from netsentry.applayer.mqtt import MqttParser
from netsentry.applayer.rfb import RfbParser
from netsentry.applayer.smb import SmbParser
from netsentry.applayer.smtp import SmtpParser
from netsentry.applayer.tls import TlsParser

from applayer_helpers import alerts, replay, tcp_session


@pytest.fixture(autouse=True)
def _no_frames_left_enabled():
    """A replay with frame rules leaves their types enabled for the parsers made after it
    (as the engine it built would): the other tests' parsers must not mark frames."""
    yield
    fr.ENABLED.clear()


# --- the container ------------------------------------------------------------------------

def test_frame_takes_the_stream_after_it_and_logs_a_gap_as_suricata():
    f = Frames(frozenset({"pdu", "stream"}))
    f.stream(True, b"ab")
    one = f.add(True, "pdu", 1, b"b", 6)
    f.stream(True, b"cd")
    f.gap(True, 2)
    f.stream(True, b"efgh")
    stream, pdu = f.items[1]
    assert (stream.type, stream.id, stream.length) == ("stream", 1, -1)
    assert pdu is one and pdu.id == 2 and pdu.complete
    # its 6 bytes: "bcd", the gap's 2, then the "e" that completes it
    assert pdu.have == 6 and bytes(pdu.data) == b"bcde" and pdu.logged() == b"bcd[2 bytes missing]e"
    assert stream.logged() == b"abcd[2 bytes missing]efgh"
    ev = pdu.eve(True, True)
    assert ev["stream_offset"] == 1 and ev["length"] == 6 and ev["complete"] is True
    assert base64.b64decode(ev["payload"]) == b"bcd[2 bytes missing]e"
    assert f.add(True, "hdr", 0, b"x", 1) is None            # not a type a rule reads: no id used
    assert f.add(True, "pdu", 9, b"", 0).id == 3


def test_logged_payload_stops_at_suricatas_4095_bytes():
    f = Frames(frozenset({"pdu"}))
    f.stream(False, b"x" * 5000)
    frame = f.add(False, "pdu", 0, b"x" * 5000, 5000)
    ev = frame.eve(False, True)
    assert len(ev["payload_printable"]) == 4095 and ev["length"] == 5000


def test_close_trims_an_open_frame():
    f = Frames(frozenset({"data"}))
    frame = f.add(True, "data", 10, b"", -1)
    f.total[1] = 10
    f.stream(True, b"hello world")
    assert not frame.complete
    frame.close(5)
    assert frame.complete and bytes(frame.data) == b"hello"


# --- per protocol, through a replay ---------------------------------------------------------

def _tls_record(ctype: int, body: bytes) -> bytes:
    return bytes([ctype, 3, 3]) + struct.pack(">H", len(body)) + body


def test_tls_records_alert_once_each_with_their_place_in_the_stream(tmp_path: Path):
    hello = _tls_record(0x16, b"\x01\x00\x00\x04\x03\x03\x00\x00")
    app = [_tls_record(0x17, bytes([i]) * 40) for i in range(3)]
    pcap = tcp_session(tmp_path / "t.pcap", [(True, hello), (False, _tls_record(0x16, b"\x02\x00\x00\x02\x03\x03")),
                                             (True, app[0] + app[1][:20]), (True, app[1][20:] + app[2])],
                       dport=443, segment=30)
    rules = ('alert tls any any -> any any (flow:to_server; frame:tls.pdu; content:"|17 03 03|"; startswith; sid:1;)\n'
             'alert tls any any -> any any (frame:tls.hdr; content:"|17 03 03 00 28|"; bsize:5; sid:2;)\n'
             'alert tls any any -> any any (frame:tls.data; content:"|01 01 01|"; sid:3;)\n')
    recs = replay(tmp_path, pcap, rules)
    pdus = alerts(recs, 1)
    assert [a["frame"]["stream_offset"] for a in pdus] == [len(hello), len(hello) + 45, len(hello) + 90]
    assert all(a["frame"]["type"] == "pdu" and a["frame"]["length"] == 45 and a["frame"]["complete"] for a in pdus)
    assert len(alerts(recs, 2)) == 3
    (data,) = alerts(recs, 3)
    assert base64.b64decode(data["frame"]["payload"]) == b"\x01" * 40 and data["frame"]["direction"] == "toserver"


def test_frame_rules_alert_the_same_after_a_rule_cache_hit(tmp_path: Path):
    """A ruleset from the rule cache is unpickled, not built: the frame types its rules read
    must be switched on again for the parsers (it was every frame alert lost on a hit)."""
    import subprocess
    import sys
    hello = _tls_record(0x16, b"\x01\x00\x00\x04\x03\x03\x00\x00")
    pcap = tcp_session(tmp_path / "t.pcap", [(True, hello), (False, _tls_record(0x16, b"\x02\x00\x00\x02\x03\x03")),
                                             (True, _tls_record(0x17, b"\x01" * 40))], dport=443)
    rules = tmp_path / "f.rules"
    rules.write_text('alert tls any any -> any any (frame:tls.pdu; content:"|17 03 03|"; startswith; sid:1;)\n')
    counts = []
    for run in ("miss", "hit"):
        out = tmp_path / run
        out.mkdir()
        p = subprocess.run([sys.executable, "-m", "netsentry", "replay", str(pcap), "-S", str(rules), "-l", str(out),
                            "-k", "none", "--set", f"detect.rule-cache={tmp_path / 'cache'}"],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr[-2000:]
        assert f"detect.rule_cache: {run}" in p.stderr
        counts.append((out / "eve.json").read_text().count('"event_type":"alert"'))
    assert counts == [1, 1]


def _smb2(cmd: int, body: bytes, response: bool = False) -> bytes:
    hdr = b"\xfeSMB" + struct.pack("<HHIHHIIQIIQ", 64, 0, 0, cmd, 1, 1 if response else 0, 0, 7, 0, 0, 1) + b"\x00" * 16
    msg = hdr + body
    return b"\x00" + len(msg).to_bytes(3, "big") + msg


def test_smb2_frames_name_their_type_with_the_version(tmp_path: Path):
    pcap = tcp_session(tmp_path / "s.pcap", [(True, _smb2(0, b"\x24\x00" + b"Q" * 34)),
                                             (False, _smb2(0, b"\x41\x00" + b"R" * 62, True))], dport=445)
    rules = ('alert smb any any -> any any (flow:to_server; frame:smb2.hdr; content:"|fe|SMB"; startswith; bsize:64; sid:1;)\n'
             'alert smb any any -> any any (frame:smb2.data; content:"RRRR"; sid:2;)\n'
             'alert smb any any -> any any (frame:nbss.pdu; content:"|00 00 00|"; startswith; sid:3;)\n')
    recs = replay(tmp_path, pcap, rules)
    (hdr,) = alerts(recs, 1)
    assert hdr["frame"]["type"] == "smb2.hdr" and hdr["frame"]["stream_offset"] == 4
    (data,) = alerts(recs, 2)
    assert data["frame"]["type"] == "smb2.data" and data["frame"]["length"] == 64
    assert len(alerts(recs, 3)) == 2


def test_mqtt_marks_header_and_data_at_the_parse_calls_start_as_suricata(tmp_path: Path):
    connect = bytes.fromhex("101000044d5154540402003c0004636c6964")
    unsub = [bytes([0xA2, 7]) + struct.pack(">H", n) + b"\x00\x03abc" for n in (2, 3)]
    pcap = tcp_session(tmp_path / "m.pcap", [(True, connect), (False, bytes.fromhex("20020000")),
                                             (True, unsub[0] + unsub[1])], dport=1883)
    rules = ('alert mqtt any any -> any any (frame:mqtt.pdu; content:"|a2 07|"; startswith; sid:1;)\n'
             'alert mqtt any any -> any any (frame:data; content:"|00 02|"; startswith; bsize:7; sid:2;)\n')
    recs = replay(tmp_path, pcap, rules)
    assert len(alerts(recs, 1)) == 2
    # the second UNSUBSCRIBE's data frame holds the first one's bytes (Suricata's slice start)
    assert len(alerts(recs, 2)) == 2
    # ids count the types a rule reads (pdu, data), per direction: CONNECT 1-2, then 3-4, 5-6
    assert [a["frame"]["id"] for a in alerts(recs, 1)] == [3, 5]


def test_smtp_command_line_twice_with_and_without_its_end(tmp_path: Path):
    pcap = tcp_session(tmp_path / "m.pcap", [(False, b"220 mx ESMTP\r\n"), (True, b"EHLO a.example\r\n"),
                                             (False, b"250 mx\r\n")], dport=25)
    rules = 'alert smtp any any -> any any (frame:smtp.command_line; content:"EHLO"; startswith; sid:1;)\n'
    recs = replay(tmp_path, pcap, rules)
    got = sorted(base64.b64decode(a["frame"]["payload"]) for a in alerts(recs, 1))
    assert got == [b"EHLO a.example", b"EHLO a.example\r\n"]


def test_a_ruleset_without_frame_rules_marks_none(tmp_path: Path):
    pcap = tcp_session(tmp_path / "t.pcap", [(True, _tls_record(0x17, b"x" * 8))], dport=443)
    replay(tmp_path, pcap, 'alert tls any any -> any any (frame:tls.pdu; content:"x"; sid:1;)\n')
    assert fr.ENABLED.get("tls")
    replay(tmp_path, pcap, 'alert tls any any -> any any (tls.sni; content:"x"; sid:1;)\n')
    assert not fr.ENABLED
    assert TlsParser().stream_frames is None and SmbParser().stream_frames is None


def test_ldap_messages_are_pdu_frames_with_their_transaction(tmp_path: Path):
    bind = bytes.fromhex("300c020101600702010304008000")
    bind_ok = bytes.fromhex("300c02010161070a010004000400")
    pcap = tcp_session(tmp_path / "l.pcap", [(True, bind + bind.replace(b"\x02\x01\x01", b"\x02\x01\x02", 1)),
                                             (False, bind_ok)], dport=389)
    rules = 'alert ldap any any -> any any (frame:ldap.pdu; content:"|60 07|"; sid:1;)\n'
    recs = replay(tmp_path, pcap, rules)
    got = alerts(recs, 1)
    assert [(a["frame"]["stream_offset"], a["frame"]["length"], a["tx_id"]) for a in got] == [(0, 14, 0), (14, 14, 1)]


@pytest.mark.parametrize("parser", [TlsParser, SmbParser, EnipParser, MqttParser, SmtpParser, RfbParser, LdapParser])
def test_malformed_bytes_with_frames_on_never_crash(parser, monkeypatch):
    proto = {TlsParser: "tls", SmbParser: "smb", EnipParser: "enip", MqttParser: "mqtt",
             SmtpParser: "smtp", RfbParser: "rfb", LdapParser: "ldap"}[parser]
    monkeypatch.setitem(fr.ENABLED, proto, frozenset(fr.STREAM_FRAMES[proto]) | {"stream"})
    rng = random.Random(7)
    seeds = {TlsParser: b"\x16\x03\x03\x00\x10", SmbParser: b"\x00\x00\x00\x50\xfeSMB", EnipParser: b"\x6f\x00\x30\x00",
             MqttParser: b"\x30\x7f", SmtpParser: b"DATA\r\n", RfbParser: b"RFB 003.008\n",
             LdapParser: b"\x30\x0c\x02\x01\x01"}
    for _ in range(60):
        p = parser()
        assert p.stream_frames is not None
        for _ in range(4):
            data = seeds[parser] + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 120)))
            try:
                p.parse(data, rng.random() < 0.5)
            except Exception as exc:        # the parsers' own signals to the app layer only
                assert type(exc).__name__ in ("ParserError", "Encrypted", "ProtocolChange"), exc
            if rng.random() < 0.2 and hasattr(p, "gap"):
                p.gap(True, rng.randrange(1, 50))
        for d in (0, 1):
            for frame in p.stream_frames.items[d]:
                frame.eve(bool(d), True)


def test_http1_request_and_response_frames_are_the_raw_messages(tmp_path: Path):
    req = b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    req2 = b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    pcap = tcp_session(tmp_path / "h.pcap", [(True, req + req2), (False, resp + resp)], segment=20)
    rules = ('alert http any any -> any any (frame:http1.request; content:"3|0d 0a|abc|0d 0a|0"; sid:1;)\n'
             'alert http any any -> any any (frame:http1.request; content:"GET"; startswith; sid:2;)\n'
             'alert http any any -> any any (frame:http1.response; content:"ok"; endswith; sid:3;)\n'
             'alert http any any -> any any (frame:http1.stream; content:"/b"; sid:4;)\n')
    recs = replay(tmp_path, pcap, rules)
    (chunked,) = alerts(recs, 1)
    assert base64.b64decode(chunked["frame"]["payload"]) == req and chunked["tx_id"] == 0
    (second,) = alerts(recs, 2)
    assert second["frame"]["stream_offset"] == len(req) and second["frame"]["length"] == len(req2)
    assert second["tx_id"] == 1 and second["http"]["url"] == "/b"
    assert [a["tx_id"] for a in alerts(recs, 3)] == [0, 1]
    (stream,) = alerts(recs, 4)
    assert stream["frame"]["type"] == "stream" and stream["frame"]["id"] == 1


def test_ips_inspects_an_open_frame_as_its_bytes_come(tmp_path: Path):
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n" + b"A" * 300
    pcap = tcp_session(tmp_path / "h.pcap", [(True, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), (False, resp)], segment=60)
    rules = ('alert http any any -> any any (frame:http1.response; content:"|0d 0a|AAA"; sid:1;)\n'
             'alert http any any -> any any (frame:http1.response; content:"AAA"; endswith; sid:2;)\n')
    ips = alerts(replay(tmp_path, pcap, rules, "stream.inline=true"))
    first = {a["alert"]["signature_id"]: a["pcap_cnt"] for a in ips}
    # the early one on the segment that brought "\r\nAAA", the end-anchored one at the end
    assert first[1] < first[2]
    assert len([a for a in ips if a["alert"]["signature_id"] == 1]) == 1


def test_suricatas_frame_logging_numbers_every_type(tmp_path: Path):
    from netsentry.config import get, load_config
    yaml_file = tmp_path / "suricata.yaml"
    yaml_file.write_text("%YAML 1.1\n---\noutputs:\n  - eve-log:\n      types:\n        - alert\n"
                         "        - frame:\n            enabled: yes\n")
    assert get(load_config(None, [], suricata=yaml_file), "outputs.eve-log.frame-logging") is True
    assert not get(load_config(None, []), "outputs.eve-log.frame-logging")
    connect = bytes.fromhex("101000044d5154540402003c0004636c6964")
    pcap = tcp_session(tmp_path / "m.pcap", [(True, connect)], dport=1883)
    rules = 'alert mqtt any any -> any any (frame:mqtt.data; content:"MQTT"; sid:1;)\n'
    # only `data` marked: it is frame 1; with frame logging the stream, pdu and header come first
    assert [a["frame"]["id"] for a in alerts(replay(tmp_path, pcap, rules), 1)] == [1]
    assert [a["frame"]["id"] for a in alerts(replay(tmp_path, pcap, rules, suricata=yaml_file), 1)] == [4]


def test_frames_waiting_for_inspection_are_bounded():
    f = Frames(frozenset({"pdu"}))
    for i in range(fr.MAX_FRAMES + 10):
        f.add(True, "pdu", i, b"x", 1)
    assert len(f.items[1]) == fr.MAX_FRAMES and f.items[1][-1].id == fr.MAX_FRAMES + 10
