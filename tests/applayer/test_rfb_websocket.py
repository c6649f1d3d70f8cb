"""RFB (applayer/rfb.py): the 3.8 and 3.3 handshakes, the rfb.* keywords, the record, a
handshake cut short. WebSocket (applayer/websocket.py) after an HTTP/1 upgrade: masked
frames, a message fragmented around a ping, a compressed message, the keywords and frames."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from applayer_helpers import alerts, replay, tcp_session

from netsentry.applayer import rfb

SERVER_INIT = struct.pack(">HH", 1024, 768) + bytes([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]) \
    + struct.pack(">I", 15) + b"box.localdomain"
RFB_RULES = "\n".join((
    'alert rfb any any -> any any (rfb.name; pcre:"/\\.localdomain/"; sid:1;)',
    "alert rfb any any -> any any (rfb.sectype:2; sid:2;)",
    "alert rfb any any -> any any (rfb.secresult:ok; sid:3;)",
    "alert rfb any any -> any any (rfb.secresult:!0; sid:4;)",
)) + "\n"


def test_rfb_38_vnc_auth(tmp_path: Path):
    pcap = tcp_session(tmp_path / "r.pcap", [
        (False, b"RFB 003.008\n"), (True, b"RFB 003.008\n"), (False, b"\x02\x02\x10"), (True, b"\x02"),
        (False, b"C" * 16), (True, b"R" * 16), (False, b"\x00\x00\x00\x00"), (True, b"\x01"),
        (False, SERVER_INIT)], dport=5901, segment=7)
    recs = replay(tmp_path, pcap, RFB_RULES, "outputs.eve-log.types=[alert, rfb]")
    assert {sid: len(alerts(recs, sid)) for sid in range(1, 5)} == {1: 1, 2: 1, 3: 1, 4: 0}
    (rec,) = [r["rfb"] for r in recs if r["event_type"] == "rfb"]
    assert rec["authentication"] == {"security_type": 2, "vnc": {"challenge": "43" * 16, "response": "52" * 16},
                                     "security_result": "OK"}
    assert rec["framebuffer"]["name"] == "box.localdomain" and rec["screen_shared"] is True
    assert rec["client_protocol_version"] == {"major": "003", "minor": "008"}


def test_rfb_33_and_broken_handshakes():
    p = rfb.RfbParser()
    p.parse(b"RFB 003.003\n", False)
    p.parse(b"RFB 003.003\n", True)
    p.parse(b"\x00\x00\x00\x01", False)          # 3.3: the server picks "none"
    p.parse(b"\x00", True)
    p.parse(SERVER_INIT, False)
    assert p.txs[0].complete() and p.txs[0].chosen == 1 and p.txs[0].name == b"box.localdomain"
    q = rfb.RfbParser()
    q.parse(b"RFB 003.008\n", False)
    q.parse(b"\x01\x02", False)                  # the server speaks where the client should
    assert q.txs[0].events == {"confused_state"} and q.txs[0].complete()
    q.parse(b"anything", False)                  # stopped: nothing more is read, no crash
    r = rfb.RfbParser()
    r.parse(b"RFB 003.008\n", False)
    r.parse(b"RFB 003.008\n", True)
    r.parse(b"\x01\x07", False)
    r.parse(b"\x07", True)
    assert r.txs[0].events == {"unimplemented_security_type"}
    assert rfb.probe(b"RF", False) is None and rfb.probe(b"SSH-2.0", False) is False


UPGRADE_REQ = (b"GET /chat HTTP/1.1\r\nHost: example.org\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
UPGRADE_RESP = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")


def ws(opcode: int, payload: bytes, *, fin: bool = True, mask: bytes | None = None, rsv1: bool = False) -> bytes:
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    head = bytes([b0, (0x80 if mask else 0) | (n if n < 126 else 126)]) + (struct.pack(">H", n) if n >= 126 else b"")
    if mask:
        payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        head += mask
    return head + payload


def deflate(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return (c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]


WS_RULES = "\n".join((
    'alert websocket any any -> any any (flow:to_server; websocket.payload; content:"hello server"; sid:1;)',
    "alert websocket any any -> any any (websocket.opcode:ping; sid:2;)",
    'alert websocket any any -> any any (websocket.payload; content:"MALWARE_DOWNLOAD cmd.exe"; sid:3;)',
    'alert websocket any any -> any any (websocket.payload; content:"TOGGLE=5659"; sid:4;)',
    "alert websocket any any -> any any (flow:to_server; websocket.mask:>0; websocket.flags:fin; sid:5;)",
    'alert websocket any any -> any any (flow:to_client; frame:websocket.data; content:"reply"; sid:6;)',
    'alert http any any -> any any (http.uri; content:"/chat"; sid:7;)',
)) + "\n"


def test_websocket_after_upgrade(tmp_path: Path):
    key = b"\x12\x34\x56\x78"
    frames = [(True, UPGRADE_REQ), (False, UPGRADE_RESP + ws(1, b"reply")),
              (True, ws(1, b"hello server", mask=key)),
              (True, ws(1, b"MALWARE_DOWN", fin=False, mask=key) + ws(9, b"p", mask=key)
               + ws(0, b"LOAD cmd.exe /c", mask=key)),
              (False, ws(1, deflate(b"state TOGGLE=5659131662f54334"), rsv1=True))]
    pcap = tcp_session(tmp_path / "w.pcap", frames, dport=8080, segment=9)
    recs = replay(tmp_path, pcap, WS_RULES, "outputs.eve-log.types=[alert, flow, http, websocket]")
    assert {sid: len(alerts(recs, sid)) for sid in range(1, 8)} == {1: 1, 2: 1, 3: 1, 4: 1, 5: 3, 6: 1, 7: 1}
    ws_recs = [r["websocket"] for r in recs if r["event_type"] == "websocket"]
    assert [w["opcode"] for w in ws_recs] == ["text", "text", "text", "ping", "continuation", "text"]
    assert ws_recs[1] == {"fin": True, "mask": 0x12345678, "opcode": "text"}
    assert [r["app_proto"] for r in recs if r["event_type"] == "flow"] == ["websocket"]


def test_telnet_frames_one_line_each(tmp_path: Path):
    from netsentry.applayer import telnet
    pcap = tcp_session(tmp_path / "t.pcap", [(False, b"\xff\xfd\x18\xff\xfd\x20login: "), (True, b"\xff\xfb\x18"),
                                             (True, b"us"), (True, b"er\r\n"), (True, b"/sbin/ping example.org\r\n")],
                       dport=23)
    rules = ('alert telnet any any -> any any (flow:to_server; frame:data; content:"ping example"; sid:1;)\n'
             'alert telnet any any -> any any (frame:ctl; content:"|ff fd 18|"; sid:2;)\n'
             'alert telnet any any -> any any (frame:data; content:"user"; sid:3;)\n')
    recs = replay(tmp_path, pcap, rules)
    assert {sid: len(alerts(recs, sid)) for sid in (1, 2, 3)} == {1: 1, 2: 1, 3: 1}
    assert all("telnet" not in a for a in alerts(recs))
    assert telnet.message_end(b"\xff\xfa\x18\x01", 0) == -1 and telnet.message_end(b"\xff\xfb", 0) == -1
