"""HTTP/2 (applayer/http2.py): prior knowledge and h2c upgrade, frames and HPACK, streams as
transactions, the `http2.*` keywords and the `http.*` buffers on HTTP/2, events, DNS over
HTTP/2, the EVE `http` record with its `http2` object, over crafted sessions (scapy)."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import pytest
from applayer_helpers import SCHEMA, alerts, replay, tcp_session
from hpack import Encoder

from netsentry.applayer import http2

TYPES = "outputs.eve-log.types=[alert, flow, http, dns]"
PREFACE = http2.PREFACE


def frame(ftype: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + sid.to_bytes(4, "big") + payload


def settings(*pairs: tuple[int, int], ack: bool = False) -> bytes:
    return frame(4, 1 if ack else 0, 0, b"".join(i.to_bytes(2, "big") + v.to_bytes(4, "big") for i, v in pairs))


def headers(enc: Encoder, sid: int, hdrs: list[tuple[str, str]], end_stream: bool = False) -> bytes:
    return frame(1, 0x4 | (0x1 if end_stream else 0), sid, enc.encode(hdrs))


def data(sid: int, payload: bytes, end_stream: bool = True) -> bytes:
    return frame(0, 0x1 if end_stream else 0, sid, payload)


def session(requests: list[tuple[list[tuple[str, str]], list[tuple[str, str]], bytes]]) -> list[tuple[bool, bytes]]:
    """A prior-knowledge connection: the preface, both SETTINGS, then per request its HEADERS
    (end of stream) and the response's HEADERS and DATA, then the client's GOAWAY."""
    ce, se = Encoder(), Encoder()
    out = [(True, PREFACE + settings((3, 100), (4, 65535))), (False, settings((3, 128), (1, 8192))),
           (True, settings(ack=True)), (False, settings(ack=True))]
    for i, (req, resp, body) in enumerate(requests):
        sid = 1 + 2 * i
        out.append((True, headers(ce, sid, req, end_stream=True)))
        out.append((False, headers(se, sid, resp) + data(sid, body)))
    out.append((True, frame(7, 0, 0, (0).to_bytes(4, "big") + (2).to_bytes(4, "big"))))   # GOAWAY INTERNAL_ERROR
    return out


GET = [(":method", "GET"), (":scheme", "http"), (":path", "/index.html"), (":authority", "example.org"),
       ("user-agent", "nghttp2/1.0"), ("accept", "*/*")]
OK = [(":status", "200"), ("content-type", "text/html"), ("server", "h2o"), ("content-length", "11")]


def _replay(tmp_path: Path, rules: str, exchanges: list[tuple[bool, bytes]], *overrides: str,
            segment: int = 0) -> list[dict]:
    pcap = tcp_session(tmp_path / "h2.pcap", exchanges, sport=40080, dport=8080, segment=segment)
    return replay(tmp_path, pcap, rules, TYPES, *overrides)


def _http(recs: list[dict]) -> list[dict]:
    return [r["http"] for r in recs if r["event_type"] == "http"]


def _sids(recs: list[dict]) -> dict[int, int]:
    out: dict[int, int] = {}
    for a in alerts(recs):
        out[a["alert"]["signature_id"]] = out.get(a["alert"]["signature_id"], 0) + 1
    return out


RULES = (
    'alert http any any -> any any (http.uri; content:"/index.html"; sid:1;)\n'
    'alert http1 any any -> any any (http.uri; content:"/index.html"; sid:2;)\n'
    'alert http2 any any -> any any (http.stat_code; content:"200"; sid:3;)\n'
    'alert http2 any any -> any any (file.data; content:"hello"; sid:4;)\n'
    'alert http2 any any -> any any (http2.frametype:GOAWAY; sid:5;)\n'
    'alert http2 any any -> any any (http2.settings:SETTINGS_MAX_CONCURRENT_STREAMS>100; sid:6;)\n'
    'alert http2 any any -> any any (http2.settings:SETTINGS_MAX_CONCURRENT_STREAMS>200; sid:7;)\n'
    'alert http2 any any -> any any (http2.header_name; content:"user-agent"; bsize:10; sid:8;)\n'
    'alert http2 any any -> any any (http2.errorcode:INTERNAL_ERROR; sid:9;)\n'
    'alert http any any -> any any (http.host; content:"example.org"; bsize:11; sid:10;)\n'
    'alert http any any -> any any (http.request_line; content:"GET /index.html HTTP/2|0d 0a|"; sid:11;)\n'
    'alert http any any -> any any (http.header_names; strip_pseudo_headers; content:"|0d 0a|user-agent|0d 0a|";'
    ' startswith; sid:12;)\n'
    'alert tcp any any -> any any (http.user_agent; content:"nghttp2"; sid:13;)\n'
    'alert http any any -> any any (urilen:11; sid:14;)\n'
    'alert http any any -> any any (urilen:12; sid:15;)\n'
)


def test_prior_knowledge_stream_alerts_and_record(tmp_path: Path):
    recs = _replay(tmp_path, RULES, session([(GET, OK, b"hello world")]))
    assert _sids(recs) == {1: 1, 3: 1, 4: 1, 5: 1, 6: 1, 8: 1, 9: 1, 10: 1, 11: 1, 12: 1, 13: 1, 14: 1}
    assert [r["app_proto"] for r in recs if r["event_type"] == "flow"] == ["http2"]
    stream = [h for h in _http(recs) if h["http2"]["stream_id"] == 1]
    assert len(stream) == 1
    h = stream[0]
    assert (h["version"], h["http_method"], h["url"], h["status"], h["length"]) == ("2", "GET", "/index.html", 200, 11)
    assert h["request_headers"][0] == {"name": ":method", "value": "GET"}
    assert h["response_headers"][0] == {"name": ":status", "value": "200"}
    conn = [h["http2"] for h in _http(recs) if h["http2"]["stream_id"] == 0]
    assert {"request": {"settings": [{"settings_id": "SETTINGSMAXCONCURRENTSTREAMS", "settings_value": 100},
                                     {"settings_id": "SETTINGSINITIALWINDOWSIZE", "settings_value": 65535}]},
            "stream_id": 0} in conn
    assert {"request": {"error_code": "INTERNALERROR"}, "stream_id": 0} in conn
    # the alert carries the transaction's http object
    a = alerts(recs, 3)[0]
    assert a["http"]["http2"]["stream_id"] == 1 and a["app_proto"] == "http2"


def test_segments_of_five_bytes_give_the_same(tmp_path: Path):
    whole = _replay(tmp_path, RULES, session([(GET, OK, b"hello world")]))
    cut = _replay(tmp_path, RULES, session([(GET, OK, b"hello world")]), segment=5)
    assert _sids(cut) == _sids(whole)
    assert _http(cut) == _http(whole)


def test_streams_are_transactions_and_the_dynamic_table_carries_over(tmp_path: Path):
    """The second request's headers come from the encoder's dynamic table (indexed)."""
    second = [(k, "/two.html" if k == ":path" else v) for k, v in GET]
    recs = _replay(tmp_path, 'alert http2 any any -> any any (http.uri; content:".html"; sid:1;)\n'
                   'alert http2 any any -> any any (http.user_agent; content:"nghttp2/1.0"; sid:2;)\n',
                   session([(GET, OK, b"a"), (second, OK, b"b")]))
    assert _sids(recs) == {1: 2, 2: 2}
    urls = sorted(h["url"] for h in _http(recs) if h["http2"]["stream_id"])
    assert urls == ["/index.html", "/two.html"]


H2C_REQUEST = (b"GET /up HTTP/1.1\r\nHost: example.org\r\nUser-Agent: curl/8\r\nConnection: Upgrade, HTTP2-Settings\r\n"
               b"Upgrade: h2c\r\nHTTP2-Settings: " + base64.urlsafe_b64encode(bytes.fromhex("000300000064")).rstrip(b"=")
               + b"\r\n\r\n")


def test_h2c_upgrade_hands_the_flow_over(tmp_path: Path):
    se = Encoder()
    exchanges = [(True, H2C_REQUEST),
                 # the 101 and the server's first frames in one segment
                 (False, b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
                  + settings((3, 100))),
                 (True, PREFACE + settings()),
                 (False, headers(se, 1, [(":status", "200"), ("server", "nghttpx")]) + data(1, b"body!"))]
    recs = _replay(tmp_path,
                   'alert http1 any any -> any any (http.uri; content:"/up"; sid:1;)\n'
                   'alert http2 any any -> any any (http.uri; content:"/up"; sid:2;)\n'
                   'alert http any any -> any any (http.uri; content:"/up"; sid:3;)\n'
                   'alert http2 any any -> any any (http.server; content:"nghttpx"; sid:4;)\n'
                   'alert http2 any any -> any any (http.host; content:"example.org"; sid:5;)\n'
                   'alert http2 any any -> any any (http2.settings:SETTINGS_MAX_CONCURRENT_STREAMS=100; sid:6;)\n'
                   'alert tcp any any -> any any (app-layer-protocol:http1,original; '
                   'app-layer-protocol:http2,final; sid:7;)\n', exchanges)
    assert _sids(recs) == {1: 1, 2: 1, 3: 2, 4: 1, 5: 1, 6: 2, 7: 1}
    assert [r["app_proto"] for r in recs if r["event_type"] == "flow"] == ["http2"]
    versions = sorted((h.get("version", "1"), h.get("status")) for h in _http(recs) if "http2" not in h
                      or h["http2"]["stream_id"])
    assert versions == [("1", 101), ("2", 200)]


def test_events_authority_mismatch_userinfo_and_bad_hpack(tmp_path: Path):
    ce = Encoder()
    exchanges = [(True, PREFACE + settings()), (False, settings()),
                 (True, headers(ce, 1, [(":method", "GET"), (":path", "/"), (":authority", "user@a.example"),
                                        ("host", "b.example")], end_stream=True)),
                 # an index far past both tables: the block cannot be decoded
                 (True, frame(1, 0x5, 3, b"\xff\xff\x7f")),
                 (True, frame(8, 0, 0, b"\x00\x00"))]           # WINDOW_UPDATE of 2 bytes
    recs = _replay(tmp_path,
                   'alert http2 any any -> any any (flow:to_server; app-layer-event:http2.authority_host_mismatch; sid:1;)\n'
                   'alert http2 any any -> any any (flow:to_server; app-layer-event:http2.userinfo_in_uri; sid:2;)\n'
                   'alert http2 any any -> any any (flow:to_server; app-layer-event:http2.invalid_header; sid:3;)\n'
                   'alert http2 any any -> any any (flow:to_server; app-layer-event:http2.invalid_frame_length; sid:4;)\n'
                   'alert http2 any any -> any any (flow:to_server; app-layer-event:http2.long_frame_data; sid:5;)\n', exchanges)
    assert _sids(recs) == {1: 1, 2: 1, 3: 1, 4: 1}


def test_long_frame_is_read_from_its_start_and_passed_over(tmp_path: Path):
    """A DATA frame of 100 KiB (past the 64 KiB that are buffered) in 1 KiB segments: the
    event, and the next stream still parses."""
    ce, se = Encoder(), Encoder()
    big = frame(0, 0x1, 1, b"x" * 100_000)
    exchanges = [(True, PREFACE + settings()), (False, settings()),
                 (True, headers(ce, 1, GET)), (True, big),
                 (True, headers(ce, 3, [(":method", "GET"), (":path", "/after")], end_stream=True)),
                 (False, headers(se, 3, [(":status", "404")], end_stream=True))]
    recs = _replay(tmp_path,
                   'alert http2 any any -> any any (flow:to_server; app-layer-event:http2.long_frame_data; sid:1;)\n'
                   'alert http any any -> any any (http.uri; content:"/after"; sid:2;)\n'
                   'alert http any any -> any any (http.stat_code; content:"404"; sid:3;)\n', exchanges, segment=1024)
    assert _sids(recs) == {1: 1, 2: 1, 3: 1}


def test_max_streams_closes_the_flows_transactions(tmp_path: Path):
    reqs = [([(":method", "GET"), (":path", f"/{i}")], OK, b"x") for i in range(4)]
    recs = _replay(tmp_path, 'alert http2 any any -> any any (app-layer-event:http2.too_many_streams; sid:1;)\n',
                   session(reqs), "app-layer.protocols.http2.max-streams=5")
    assert alerts(recs, 1)
    recs = _replay(tmp_path, 'alert http2 any any -> any any (app-layer-event:http2.too_many_streams; sid:1;)\n',
                   session(reqs))
    assert not alerts(recs, 1)


def _dns_query(name: bytes) -> bytes:
    q = b"".join(bytes([len(p)]) + p for p in name.split(b".")) + b"\x00"
    return b"\x00\x00\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + q + b"\x00\x01\x00\x01"


def test_dns_over_http2(tmp_path: Path):
    ce, se = Encoder(), Encoder()
    b64 = base64.urlsafe_b64encode(_dns_query(b"www.example.com")).rstrip(b"=").decode()
    answer = (b"\x00\x00\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + _dns_query(b"www.example.com")[12:]
              + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x5d\xb8\xd8\x22")
    exchanges = [(True, PREFACE + settings()), (False, settings()),
                 (True, headers(ce, 1, [(":method", "GET"), (":path", f"/dns-query?dns={b64}"),
                                        (":authority", "dns.example"), ("accept", "application/dns-message")],
                                end_stream=True)),
                 (False, headers(se, 1, [(":status", "200"), ("content-type", "application/dns-message")])
                  + data(1, answer))]
    recs = _replay(tmp_path,
                   'alert dns any any -> any any (dns.query; content:"www.example.com"; sid:1;)\n'
                   'alert doh2 any any -> any any (dns.answers.rrname; content:"www.example.com"; sid:2;)\n'
                   'alert http2 any any -> any any (http.host; content:"dns.example"; sid:3;)\n'
                   'alert tcp any any -> any any (app-layer-protocol:doh2,exact; sid:4;)\n'
                   'alert tcp any any -> any any (app-layer-protocol:dns,exact; sid:5;)\n', exchanges)
    assert _sids(recs) == {1: 1, 2: 1, 3: 1, 4: 1}
    assert [r["app_proto"] for r in recs if r["event_type"] == "flow"] == ["doh2"]
    dns = [r["dns"] for r in recs if r["event_type"] == "dns"]
    assert sorted(d["type"] for d in dns) == ["request", "response"]


def test_random_bytes_never_crash_the_parser():
    rng = random.Random(7)
    for _ in range(300):
        p = http2.Http2Parser()
        for _ in range(6):
            blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80)))
            if rng.random() < 0.5:
                blob = frame(rng.randrange(11), rng.randrange(256), rng.randrange(4), blob)
            try:
                p.parse((PREFACE if not p.preface else b"") + blob, rng.random() < 0.5)
            except http2.ParserError:
                pass
            except http2.ProtocolChange:
                pass
        for tx in p.txs:
            tx.eve()


def test_probe():
    assert http2.probe(PREFACE[:10], True) is None
    assert http2.probe(PREFACE, True) is True
    assert http2.probe(b"GET / HTTP/1.1\r\n", True) is False
    assert http2.probe(settings((3, 100)), False) is True
    assert http2.probe(frame(1, 4, 1, b"\x88"), False) is False
    assert http2.probe(b"\x00\x00", False) is None


@pytest.mark.skipif(not SCHEMA.exists(), reason="../shared/eve-schema is not there")
def test_records_follow_the_eve_schema(tmp_path: Path):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    recs = _replay(tmp_path, RULES, session([(GET, OK, b"hello world")]))
    for r in recs:
        if r["event_type"] in ("http", "alert"):
            jsonschema.validate(r, schema)


def test_a_response_body_is_a_file_for_the_file_keywords(tmp_path: Path):
    """HTTP/2 file tracking (Suricata's): a stream's DATA is a file named by the request's
    :path, so filename/fileext/filesize/filemd5 rules match it once the side is done."""
    import hashlib
    body = b"hello world"
    md5s = tmp_path / "h.md5"
    md5s.write_text(hashlib.md5(body).hexdigest() + "\n")
    rules = (f'alert http2 any any -> any any (flow:to_client; filemd5:{md5s}; sid:1;)\n'
             'alert http2 any any -> any any (filename:"index.html"; fileext:"html"; sid:2;)\n'
             'alert http2 any any -> any any (filesize:11; sid:3;)\n'
             'alert http2 any any -> any any (filesize:>11; sid:4;)\n'
             f'alert http2 any any -> any any (filemd5:!{md5s}; sid:5;)\n')
    recs = _replay(tmp_path, rules, session([(GET, OK, body)]))
    assert _sids(recs) == {1: 1, 2: 1, 3: 1}


def test_an_http_connect_tunnel_is_detected_again(tmp_path: Path):
    """HTTP CONNECT (Suricata's HTPCallbackResponseComplete): a 2xx answer to the flow's
    first transaction, a CONNECT, makes the rest of the flow another protocol, detected
    again from its bytes (here HTTP/2 through the proxy); a refused CONNECT leaves the
    flow HTTP/1."""
    connect = b"CONNECT 127.0.0.1:6233 HTTP/1.1\r\nHost: 127.0.0.1:6233\r\n\r\n"
    rules = ('alert http2 any any -> any any (http2.errorcode:INTERNAL_ERROR; sid:1;)\n'
             'alert http any any -> any any (http.method; content:"CONNECT"; sid:2;)\n')
    inner = session([(GET, OK, b"hello world")])
    tunnel = [(True, connect), (False, b"HTTP/1.1 200 Connection established\r\n\r\n")] + inner
    recs = _replay(tmp_path, rules, tunnel)
    assert _sids(recs) == {1: 1, 2: 1}
    assert [r["app_proto"] for r in recs if r["event_type"] == "flow"] == ["http2"]
    refused = [(True, connect), (False, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"),
               (True, b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"), (False, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")]
    recs = _replay(tmp_path, rules + 'alert http any any -> any any (http.uri; content:"/x"; sid:3;)\n', refused)
    assert _sids(recs) == {2: 1, 3: 1}
    assert [r["app_proto"] for r in recs if r["event_type"] == "flow"] == ["http"]
