"""Transforms, multi-buffers, per-direction state and midstream pickup through the whole pipeline."""

from __future__ import annotations

from pathlib import Path

from applayer_helpers import CLIENT, SERVER, T0, alerts, replay, tcp_session
from netsentry.config import load_config
from netsentry.rules.loader import load_rules
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

REQ = (b"GET /a%20b/./c?q=%41 HTTP/1.1\r\nHost: Www.Example.COM\r\nUser-Agent:  Mozilla  /5.0 \r\n"
       b"X-Data: \x13\x26\x30\r\n\r\n")
RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def _xor(data: bytes, key: bytes) -> bytes:
    return bytes(c ^ key[i % len(key)] for i, c in enumerate(data))


def test_transforms(tmp_path: Path):
    pcap = tcp_session(tmp_path / "t.pcap", [(True, REQ), (False, RESP)])
    rules = "".join(f"alert http any any -> any any ({body} sid:{sid};)\n" for sid, body in [
        (1, 'http.host; to_uppercase; content:"WWW.EXAMPLE.COM"; bsize:15;'),
        (2, 'http.host; dotprefix; content:".example.com"; endswith;'),
        (3, 'http.uri.raw; url_decode; content:"/a b/./c?q=A";'),
        (4, 'http.user_agent; strip_whitespace; content:"Mozilla/5.0"; bsize:11;'),
        (5, 'http.user_agent; compress_whitespace; content:"Mozilla /5.0"; bsize:12;'),
        (6, 'http.host; xor:"7a0d"; content:"|' + " ".join(f"{b:02x}" for b in _xor(b"www.example.com", b"\x7a\x0d"))
         + '|"; bsize:15;'),
        (7, 'http.host; content:"www"; to_lowercase; content:"example"; distance:1;'),
        (8, 'http.host; to_uppercase; content:"www";'),                                    # must not match
        (9, 'http.uri; content:"/a b/c?q=A"; bsize:10;'),
        # as Suricata: a content before the transform inspects the buffer as it was
        (10, 'http.user_agent; content:"Mozilla  /5.0"; strip_whitespace; content:"Mozilla/5.0"; bsize:11;'),
        (11, 'http.user_agent; content:"Mozilla/5.0"; strip_whitespace; content:"Mozilla/5.0";'),  # must not match
    ])
    recs = replay(tmp_path, pcap, rules)
    assert alerts(recs, 11) == []
    for sid in (1, 2, 3, 4, 5, 6, 7, 9, 10):
        assert len(alerts(recs, sid)) == 1, sid
    assert alerts(recs, 8) == []


def test_decoding_transforms(tmp_path: Path):
    import base64
    import gzip
    import zlib
    body = b"\x42" + _xor(b"password=secret", b"\x42")             # a 1-byte key, then the data it encodes
    gz = base64.b64encode(gzip.compress(b"gzipped words")).decode()
    zl = base64.b64encode(zlib.compress(b"deflated words")).decode()
    req = (f"POST /d?t=dGhpc2lzYXRlc3QK&s=Zm%209v%20Ym%20Fy&g={gz}&z={zl} HTTP/1.1\r\nHost: h\r\n"
           f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    pcap = tcp_session(tmp_path / "d.pcap", [(True, req), (False, RESP)])
    rules = "".join(f"alert http any any -> any any ({b} sid:{sid};)\n" for sid, b in [
        (1, 'http.request_body; xor:offset 1,extract 1 0; content:"password=secret"; offset:1;'),
        (2, 'http.request_body; content:"|42|"; xor:offset 1,extract 1 0; content:"|42|password"; startswith;'),
        (3, 'http.request_body; xor:extract 1 0; content:"|00|password";'),      # the key byte is decoded too
        (4, 'http.request_body; xor:extract 1 200; content:"password";'),        # key beyond the buffer: unchanged
        (5, 'http.uri; pcrexform:"t=([^&]+)"; from_base64; content:"thisisatest|0a|"; bsize:12;'),
        (6, 'http.uri; pcrexform:"t=([^&]+)"; from_base64:bytes 6; content:"this"; bsize:4;'),
        (7, 'http.uri; pcrexform:"s=([^&]+)"; from_base64:mode rfc2045; content:"foobar"; bsize:6;'),
        (8, 'http.uri; pcrexform:"s=([^&]+)"; from_base64:mode strict; content:"foobar";'),   # must not match
        (9, 'http.uri; pcrexform:"s=([^&]+)"; from_base64; content:"f"; bsize:1;'),  # rfc4648 stops at the space
        (10, 'http.uri; pcrexform:"g=([^&]+)"; from_base64; gunzip; content:"gzipped words"; bsize:13;'),
        (11, 'http.uri; pcrexform:"g=([^&]+)"; from_base64; gunzip:max-size 7; content:"gzipped"; bsize:7;'),
        (12, 'http.uri; pcrexform:"z=([^&]+)"; from_base64; zlib_deflate; content:"deflated words"; bsize:14;'),
        (13, 'http.uri; pcrexform:"t=([^&]+)"; gunzip; bsize:0;'),               # not gzip: empty buffer
    ])
    recs = replay(tmp_path, pcap, rules)
    for sid in (1, 2, 3, 5, 6, 7, 9, 10, 11, 12, 13):
        assert len(alerts(recs, sid)) == 1, sid
    assert alerts(recs, 4) == [] and alerts(recs, 8) == []


def test_multi_buffer_any_instance_and_per_direction_state(tmp_path: Path):
    pcap = tcp_session(tmp_path / "m.pcap", [(True, REQ), (False, RESP)])
    recs = replay(tmp_path, pcap,
                  'alert http any any -> any any (http.request_header; content:"Host|3a 20|"; startswith; '
                  'content:"COM"; endswith; sid:1;)\n'
                  'alert http any any -> any any (http.protocol; content:"HTTP/1.1"; sid:2;)\n'
                  'alert http any any -> any any (flow:to_client; http.protocol; content:"HTTP/1.1"; sid:3;)\n'
                  'alert http any any -> any any (msg:"every packet once http"; sid:4;)\n')
    assert len(alerts(recs, 1)) == 1
    assert [a["direction"] for a in alerts(recs, 2)] == ["to_server", "to_client"]   # both sides have it
    assert [a["direction"] for a in alerts(recs, 3)] == ["to_client"]
    # no buffer at all: Suricata's app_layer rule type, every packet from the request on
    # (tests/detect/test_verdicts.py), not once per transaction
    # (IDS: the app layer takes the request, and knows the protocol, once the server
    # acknowledged it, packet 5; sid 2 comes on the client's next packet)
    cnts = [a["pcap_cnt"] for a in alerts(recs, 4)]
    first = 5
    assert len(cnts) > 2 and cnts == list(range(first, first + len(cnts)))
    assert alerts(recs, 2)[0]["pcap_cnt"] >= first


def _midstream_response(path: Path) -> Path:
    """Only the server's answer and the client's ACK: no handshake seen."""
    eth = Ether(src="00:11:22:33:44:55", dst="66:77:88:99:aa:bb")
    frames = [eth / IP(src=SERVER, dst=CLIENT) / TCP(sport=80, dport=40001, flags="PA", seq=7, ack=9) / Raw(RESP),
              eth / IP(src=CLIENT, dst=SERVER) / TCP(sport=40001, dport=80, flags="A", seq=9, ack=7 + len(RESP))]
    for i, f in enumerate(frames):
        f.time = T0 + i
    wrpcap(str(path), frames)
    return path


def test_midstream_pickup_reverses_a_servers_answer(tmp_path: Path):
    pcap = _midstream_response(tmp_path / "mid.pcap")
    rule = 'alert http any any -> any any (http.stat_code; content:"200"; sid:1;)\n'
    assert alerts(replay(tmp_path, pcap, rule)) == []                 # no handshake, no midstream: no app layer
    recs = replay(tmp_path, pcap, rule, "stream.midstream=true")
    assert len(alerts(recs, 1)) == 1 and alerts(recs, 1)[0]["app_proto"] == "http"


def test_app_layer_off(tmp_path: Path):
    pcap = tcp_session(tmp_path / "o.pcap", [(True, REQ), (False, RESP)])
    recs = replay(tmp_path, pcap, 'alert http any any -> any any (http.method; content:"GET"; sid:1;)\n'
                  'alert tcp any any -> any any (content:"GET"; sid:2;)\n', "app-layer.enabled=false")
    assert alerts(recs, 1) == [] and len(alerts(recs, 2)) == 1
    assert all("app_proto" not in r for r in recs)


def test_transactional_rule_needs_both_sides(tmp_path: Path):
    """`=>` (Suricata 8): request and response of one transaction; one alert, on the response."""
    pcap = tcp_session(tmp_path / "b.pcap", [(True, REQ), (False, RESP)])
    recs = replay(tmp_path, pcap,
                  f'alert http {CLIENT} any => {SERVER} 80 (http.method; content:"GET"; http.stat_code; '
                  'content:"200"; file.data: to_client; content:"ok"; sid:1;)\n'
                  'alert http any any => any any (http.method; content:"GET"; http.stat_code; content:"404"; '
                  'sid:2;)\n'
                  f'alert http {SERVER} any => any any (http.method; content:"GET"; sid:3;)\n')
    assert [a["direction"] for a in alerts(recs, 1)] == ["to_client"]
    assert alerts(recs, 2) == [] and alerts(recs, 3) == []


PAYLOAD_AND_TX_RULES = (
    # a payload content next to a transaction keyword (ET Open: `content:"/icon.php"; urilen:9;`,
    # the JARM rules' `tls.version` + content): prefiltered on the packet payload
    'alert http any any -> any any (content:"Mozilla"; urilen:>3; sid:1;)\n'
    'alert http any any -> any any (content:"Netscape"; urilen:>3; sid:2;)\n'
    'alert http any any -> any any (content:!"Netscape"; urilen:>3; sid:3;)\n')


def test_transaction_rule_with_a_payload_content_is_prefiltered_on_the_payload(tmp_path: Path):
    """Such a rule is a candidate only when the packet carries its content, and still alerts
    exactly when the content and the transaction checks match; a rule with only a negated
    payload content keeps being a candidate on every update."""
    from netsentry.config import load_config
    from netsentry.detect import SignatureEngine
    from netsentry.rules.loader import load_rules

    config = load_config(None)
    rf = tmp_path / "p.rules"
    rf.write_text(PAYLOAD_AND_TX_RULES)
    tx = SignatureEngine(load_rules([rf], config), config).tx
    db, owners = tx.payload_prefilters[("http", 0)]
    assert sorted(tx.sigs[n].sid for o in owners for n in o) == [1, 2]
    assert [tx.sigs[n].sid for n in tx.always[("http", 0)]] == [3]
    pcap = tcp_session(tmp_path / "m.pcap", [(True, REQ), (False, RESP)])
    recs = replay(tmp_path, pcap, PAYLOAD_AND_TX_RULES)
    assert len(alerts(recs, 1)) == 1 and alerts(recs, 2) == [] and len(alerts(recs, 3)) == 1


def test_flow_of_a_protocol_nobody_reads_stops_costing_after_detection(tmp_path: Path):
    """Without transaction rules or records for HTTP the flow is still named (app_proto in
    its flow record) but later bytes go nowhere: no parser state, no transactions."""
    from netsentry.capture import read_captures
    from netsentry.output.memory import MemoryOutput
    from netsentry.sensor import Sensor

    pcap = tcp_session(tmp_path / "n.pcap", [(True, REQ), (False, RESP), (True, REQ), (False, RESP)])
    config = load_config(None)
    rf = tmp_path / "n.rules"
    rf.write_text('alert tcp any any -> any any (content:"Mozilla"; sid:9;)\n')
    out = MemoryOutput(frozenset({"alert", "flow"}))
    sensor = Sensor(config, [out], load_rules([rf], config))
    seen = []
    real_feed = sensor.applayer.feed

    def feed(flow, to_server, data, pkt=None):
        real_feed(flow, to_server, data, pkt)
        seen.append((flow.app.done, flow.app.txs))
    sensor.stream.attach_applayer(type("A", (), {"feed": staticmethod(feed), "gap": sensor.applayer.gap})())
    sensor.run(read_captures([str(pcap)]))
    sensor.finish()
    # no transactions ever; the flow's own state ends once the second direction's first
    # bytes were probed too (the generic app-layer events), then every later byte goes nowhere
    assert seen and all(txs == [] for done, txs in seen)
    assert [done for done, txs in seen] == [False] + [True] * (len(seen) - 1)
    flows = [e for e in out.events if e.event_type == "flow"]
    assert [f.flow.app_proto for f in flows] == ["http"]
    assert len([e for e in out.events if e.event_type == "alert"]) == 2
