"""Whole-pipeline app-layer detection on crafted captures: each rule alerts exactly once,
and the http/dns/tls records carry Suricata's fields (checked against its EVE schema)."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import pytest
from applayer_helpers import SCHEMA, alerts, replay, tcp_session, udp_exchange
from scapy.layers.dns import DNS, DNSQR, DNSRR
from tls_builders import certificate, client_hello, handshake_record, server_hello

REQUEST = (b"GET /download/a%2fb/../eicar.txt?x=1 HTTP/1.1\r\nHost: files.example.com:8100\r\n"
           b"User-Agent: curl/8.0\r\nAccept: */*\r\n\r\n")


def _chunked(body: bytes, size: int) -> bytes:
    out = b""
    for i in range(0, len(body), size):
        part = body[i:i + size]
        out += b"%x\r\n" % len(part) + part + b"\r\n"
    return out + b"0\r\n\r\n"


def test_chunked_gzipped_body_on_a_non_standard_port(tmp_path: Path):
    """The body is gzip, then chunked, over 5-byte TCP segments, on port 8100: file.data sees
    the decoded text; the protocol is found from the bytes, not the port."""
    secret = b"<html>X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!</html>"
    gz = gzip.compress(secret, mtime=0)
    body = _chunked(gz, 7)
    response = (b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/html\r\n"
                b"Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    pcap = tcp_session(tmp_path / "gz.pcap", [(True, REQUEST), (False, response)], dport=8100, segment=5)
    recs = replay(tmp_path, pcap,
                  'alert http any any -> any any (msg:"eicar"; file.data; content:"EICAR-STANDARD"; sid:1;)\n'
                  'alert tcp any any -> any any (msg:"raw gzip has no text"; content:"EICAR-STANDARD"; sid:2;)\n'
                  'alert http any any -> any any (msg:"uri"; http.uri; content:"/download/a/eicar.txt?x=1"; '
                  'bsize:25; http.host; content:"files.example.com"; endswith; sid:3;)\n'
                  'alert tcp any any -> any any (msg:"proto"; app-layer-protocol:http; flow:to_client; '
                  'content:"HTTP/1.1 200"; sid:4;)\n')
    assert len(alerts(recs, 1)) == 1
    assert alerts(recs, 2) == []
    assert len(alerts(recs, 3)) == 1
    assert len(alerts(recs, 4)) == 1
    a = alerts(recs, 1)[0]
    assert a["app_proto"] == "http" and a["tx_id"] == 0
    assert a["http"]["url"] == "/download/a%2fb/../eicar.txt?x=1"
    assert a["http"]["hostname"] == "files.example.com" and a["http"]["http_method"] == "GET"
    http = [r for r in recs if r["event_type"] == "http"]
    assert len(http) == 1
    assert http[0]["http"]["status"] == 200 and http[0]["http"]["length"] == len(gz)   # de-chunked, still gzip
    assert http[0]["http"]["http_content_type"] == "text/html" and http[0]["http"]["http_port"] == 8100
    flow = [r for r in recs if r["event_type"] == "flow"]
    assert flow[0]["app_proto"] == "http"


def test_content_length_body_pipelined_requests_and_flowbits_across_transactions(tmp_path: Path):
    """Two requests in one segment, then two responses: transactions in order, a flowbit set
    by the first request is seen by the response rule, each rule once per transaction."""
    req = (b"POST /login HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\nCookie: s=1\r\n\r\nuser=evil"
           b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
    resp = (b"HTTP/1.1 302 Found\r\nLocation: /home\r\nContent-Length: 0\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    pcap = tcp_session(tmp_path / "cl.pcap", [(True, req), (False, resp)])
    recs = replay(tmp_path, pcap,
                  'alert http any any -> any any (msg:"body"; http.method; content:"POST"; '
                  'http.request_body; content:"user=evil"; flowbits:set,login; flowbits:noalert; sid:1;)\n'
                  'alert http any any -> any any (msg:"answer"; flowbits:isset,login; http.stat_code; '
                  'content:"302"; http.location; content:"/home"; sid:2;)\n'
                  'alert http any any -> any any (msg:"cookie"; content:"s=1"; http_cookie; '
                  'content:!"s=1"; http_header; sid:3;)\n'
                  'alert http any any -> any any (msg:"every response"; flow:to_client; http.stat_code; '
                  'content:"0"; sid:4;)\n'
                  'alert http any any -> any any (msg:"uri pcre"; pcre:"/^\\/next$/U"; urilen:5; sid:5;)\n')
    assert alerts(recs, 1) == []
    assert [a["tx_id"] for a in alerts(recs, 2)] == [0]
    assert [a["tx_id"] for a in alerts(recs, 3)] == [0]
    assert sorted(a["tx_id"] for a in alerts(recs, 4)) == [0, 1]
    assert [a["tx_id"] for a in alerts(recs, 5)] == [1]
    http = [r["http"] for r in recs if r["event_type"] == "http"]
    assert [h["url"] for h in http] == ["/login", "/next"]
    assert [h.get("redirect") for h in http] == ["/home", None]


def _dns_tcp(msg: bytes) -> bytes:
    return struct.pack("!H", len(msg)) + msg


def test_dns_over_tcp_split_across_segments(tmp_path: Path):
    query = bytes(DNS(id=7, rd=1, qd=DNSQR(qname="evil.example.org", qtype="A")))
    answer = bytes(DNS(id=7, qr=1, rd=1, ra=1, qd=DNSQR(qname="evil.example.org"),
                       an=DNSRR(rrname="evil.example.org", type="A", rdata="198.51.100.7", ttl=60)))
    pcap = tcp_session(tmp_path / "dns.pcap", [(True, _dns_tcp(query)), (False, _dns_tcp(answer))],
                       dport=53, segment=9)
    recs = replay(tmp_path, pcap,
                  'alert dns any any -> any any (msg:"q"; dns.query; content:"evil.example"; sid:1;)\n'
                  'alert dns any any -> any any (msg:"a"; dns.answer.name; content:"evil"; sid:2;)\n'
                  'alert dns any any -> any any (msg:"legacy"; dns_query; content:"EVIL"; nocase; '
                  'bsize:16; sid:3;)\n'
                  'alert dns any any -> any any (msg:"opcode"; dns.opcode:0; dns.rrtype:1; sid:4;)\n')
    for sid in (1, 2, 3):
        assert len(alerts(recs, sid)) == 1, sid
    # Suricata 8: the request and the response are transactions of their own, and dns.opcode /
    # dns.rrtype look at each message (the query's type, the answer's type): one alert each
    assert sorted(a["direction"] for a in alerts(recs, 4)) == ["to_client", "to_server"]
    dns = [r["dns"] for r in recs if r["event_type"] == "dns"]
    assert [d["type"] for d in dns] == ["request", "response"]
    assert dns[1]["answers"][0] == {"rrname": "evil.example.org", "rrtype": "A", "ttl": 60,
                                    "rdata": "198.51.100.7"}
    assert alerts(recs, 1)[0]["dns"]["queries"][0]["rrname"] == "evil.example.org"


def test_dns_over_udp(tmp_path: Path):
    query = bytes(DNS(id=9, rd=1, qd=DNSQR(qname="google.com")))
    pcap = udp_exchange(tmp_path / "udp.pcap", [(True, query)])
    recs = replay(tmp_path, pcap, 'alert dns any any -> any any (dns.query; content:"google.com"; bsize:10; sid:1;)\n')
    assert len(alerts(recs, 1)) == 1
    assert alerts(recs, 1)[0]["app_proto"] == "dns"


def test_tls_sni_and_certificate(tmp_path: Path):
    cert = certificate("CN=www.example.net, O=Example", "CN=Example CA", serial=0x0102FE,
                       sans=["www.example.net", "example.net"])
    hello = handshake_record(client_hello("www.example.net", alpns=["h2", "http/1.1"]))
    # the ClientHello split over two TLS records and three TCP segments
    split = handshake_record(client_hello("www.example.net"), split=40)
    server = handshake_record(server_hello() + certificate_message([cert]) + b"\x0e\x00\x00\x00")
    pcap = tcp_session(tmp_path / "tls.pcap", [(True, split), (False, server)], dport=4443, segment=50)
    rules = ('alert tls any any -> any any (msg:"sni"; tls.sni; content:"example.net"; endswith; sid:1;)\n'
             'alert tls any any -> any any (msg:"subject"; tls.cert_subject; content:"CN=www.example.net"; '
             'sid:2;)\n'
             'alert tls any any -> any any (msg:"serial"; tls.cert_serial; content:"01:02:FE"; sid:3;)\n'
             'alert tls any any -> any any (msg:"state"; ssl_state:client_hello; ssl_version:tls1.2; sid:4;)\n'
             'alert tls any any -> any any (msg:"san"; tls.subjectaltname; content:"example.net"; bsize:11; '
             'sid:5;)\n')
    recs = replay(tmp_path, pcap, rules)
    for sid in (1, 2, 3, 5):
        assert len(alerts(recs, sid)) == 1, sid
    # ssl_state / ssl_version are inspected each way (Suricata's tls_generic list, per-direction
    # detect state): the client's TLS 1.2 hello, then the server's
    assert [a["direction"] for a in alerts(recs, 4)] == ["to_server", "to_client"]
    tls = [r["tls"] for r in recs if r["event_type"] == "tls"]
    assert len(tls) == 1
    assert tls[0]["sni"] == "www.example.net" and tls[0]["version"] == "TLS 1.2"
    assert tls[0]["subject"] == "CN=www.example.net, O=Example" and tls[0]["serial"] == "01:02:FE"
    assert tls[0]["subjectaltname"] == ["www.example.net", "example.net"]
    assert hello  # the unsplit record builds too


def test_app_layer_event_on_dns(tmp_path: Path):
    query = bytes(DNS(id=9, z=1, rd=1, qd=DNSQR(qname="google.com")))
    pcap = udp_exchange(tmp_path / "z.pcap", [(True, query)])
    recs = replay(tmp_path, pcap, 'alert dns any any -> any any (app-layer-event:dns.z_flag_set; sid:1;)\n'
                                  'alert dns any any -> any any (app-layer-event:dns.malformed_data; sid:2;)\n')
    assert len(alerts(recs, 1)) == 1 and alerts(recs, 2) == []


def test_tls_random_buffers_per_direction(tmp_path: Path):
    # the builders' ClientHello random is 32 x 0x11, the ServerHello's 32 x 0x22
    server = handshake_record(server_hello() + b"\x0e\x00\x00\x00")
    pcap = tcp_session(tmp_path / "r.pcap", [(True, handshake_record(client_hello("a"))), (False, server)])
    rules = "".join(f"alert tls any any -> any any ({b} sid:{sid};)\n" for sid, b in [
        (1, 'flow:to_server; tls.random; content:"|' + "11 " * 32 + '|"; bsize:32;'),
        (2, 'flow:to_client; tls.random; content:"|' + "22 " * 32 + '|"; bsize:32;'),
        (3, 'flow:to_server; tls.random_time; content:"|11 11 11 11|"; bsize:4;'),
        (4, 'flow:to_client; tls.random_bytes; content:"|22 22|"; bsize:28;'),
        (5, 'flow:to_client; tls.random; content:"|11 11|";'),          # the client's is not the server's
    ])
    recs = replay(tmp_path, pcap, rules)
    assert [len(alerts(recs, sid)) for sid in (1, 2, 3, 4, 5)] == [1, 1, 1, 1, 0]


def certificate_message(certs: list[bytes]) -> bytes:
    from tls_builders import certificate_handshake
    return certificate_handshake(certs)


@pytest.mark.parametrize("types", [["alert", "http"], ["alert"]])
def test_eve_types_switch_app_records(tmp_path: Path, types: list[str]):
    """outputs.eve-log.types decides whether eve.json gets the http records."""
    from netsentry.capture import read_captures
    from netsentry.config import load_config
    from netsentry.output import OutputContext, open_outputs
    from netsentry.rules.loader import load_rules
    from netsentry.sensor import Sensor
    pcap = tcp_session(tmp_path / "s.pcap", [(True, REQUEST), (False, b"HTTP/1.1 204 No Content\r\n\r\n")])
    config = load_config(None, [f"outputs.eve-log.types=[{', '.join(types)}]"])
    (tmp_path / "t.rules").write_text('alert http any any -> any any (http.method; content:"GET"; sid:1;)\n')
    sensor = Sensor(config, open_outputs(config["outputs"], OutputContext(logdir=tmp_path)),
                    load_rules([tmp_path / "t.rules"], config))
    sensor.run(read_captures([str(pcap)]))
    sensor.finish()
    kinds = [json.loads(line)["event_type"] for line in (tmp_path / "eve.json").read_text().splitlines()]
    assert kinds.count("alert") == 1
    assert kinds.count("http") == (1 if "http" in types else 0)


@pytest.mark.skipif(not SCHEMA.exists(), reason=f"Suricata's EVE schema not found at {SCHEMA} (fresh clone)")
def test_app_records_and_alerts_validate_against_suricatas_schema(tmp_path: Path):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    response = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nLocation: /x\r\nContent-Length: 2\r\n\r\nok"
    recs = replay(tmp_path, tcp_session(tmp_path / "h.pcap", [(True, REQUEST), (False, response)]),
                  'alert http any any -> any any (http.method; content:"GET"; sid:1;)\n')
    query = bytes(DNS(id=9, rd=1, qd=DNSQR(qname="google.com")))
    answer = bytes(DNS(id=9, qr=1, qd=DNSQR(qname="google.com"),
                       an=DNSRR(rrname="google.com", type="CNAME", rdata="g.example.")))
    recs += replay(tmp_path, udp_exchange(tmp_path / "d.pcap", [(True, query), (False, answer)]),
                   'alert dns any any -> any any (dns.query; content:"google"; sid:2;)\n')
    cert = certificate("CN=a", "CN=b", serial=5, sans=["a"])
    server = handshake_record(server_hello() + certificate_message([cert]) + b"\x0e\x00\x00\x00")
    recs += replay(tmp_path, tcp_session(tmp_path / "t.pcap", [(True, handshake_record(client_hello("a"))),
                                                               (False, server)], dport=443),
                   'alert tls any any -> any any (tls.sni; content:"a"; sid:3;)\n')
    kinds = {r["event_type"] for r in recs}
    assert {"alert", "http", "dns", "tls", "flow"} <= kinds
    validator = jsonschema.Draft202012Validator(schema)
    for rec in recs:
        errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(rec)]
        assert not errors, (rec["event_type"], errors)


def test_base64_decode_of_a_cookie_and_a_legacy_uri_content(tmp_path: Path):
    """base64_decode in a sticky buffer (and after a content moved by http_uri): the decoded
    bytes are matched, the rule alerts once for its transaction, a wrong value does not."""
    import base64
    req = (b"GET /?arg=" + base64.b64encode(b"thisisatest") + b" HTTP/1.1\r\nHost: a\r\n"
           b"Cookie: foobar=" + base64.b64encode(b"\x9e\x01payload") + b"\r\n\r\n")
    pcap = tcp_session(tmp_path / "b64.pcap", [(True, req), (False, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")])
    recs = replay(tmp_path, pcap,
                  'alert http any any -> any any (http.cookie; content:"foobar="; base64_decode:relative; '
                  'base64_data; content:"|9e|"; startswith; content:"payload"; distance:0; sid:1;)\n'
                  'alert http any any -> any any (content:"arg"; http_uri; base64_decode:bytes 16, offset 1, '
                  'relative; base64_data; content:"thisisatest"; sid:2;)\n'
                  'alert http any any -> any any (http.cookie; content:"foobar="; base64_decode:relative; '
                  'base64_data; content:"payload"; startswith; sid:3;)\n')
    assert [a["tx_id"] for a in alerts(recs, 1)] == [0]
    assert [a["tx_id"] for a in alerts(recs, 2)] == [0]
    assert alerts(recs, 3) == []


def test_event_on_a_released_dns_transaction_is_still_inspected(tmp_path: Path):
    # Transaction detection walks a flow's transactions from its release mark on
    # (AppState.release_done); a DNS message that does not parse raises its event on the
    # newest transaction, which was inspected, logged and released on its own packet.
    # That touch must bring the walk back below the mark, or the event's rule never runs.
    queries = [(True, bytes(DNS(id=i, rd=1, qd=DNSQR(qname=f"q{i}.example.com")))) for i in range(4)]
    answer = (False, bytes(DNS(id=0, qr=1, qd=DNSQR(qname="q0.example.com"),
                               an=DNSRR(rrname="q0.example.com", rdata="192.0.2.1"))))
    # a query whose question is cut inside its type: malformed_data
    cut = (True, struct.pack("!HHHHHH", 77, 0x0100, 1, 0, 0, 0) + b"\x03abc\x00\x00")
    pcap = udp_exchange(tmp_path / "late.pcap", [queries[0], answer, *queries[1:], cut])
    recs = replay(tmp_path, pcap, 'alert dns any any -> any any (app-layer-event:dns.malformed_data; sid:1;)\n'
                                  'alert dns any any -> any any (dns.query; content:"q2."; sid:2;)\n')
    hits = alerts(recs, 1)
    assert len(hits) == 1
    assert hits[0]["pcap_cnt"] == 6 and hits[0]["dns"]["queries"][0]["rrname"] == "q3.example.com"
    assert len(alerts(recs, 2)) == 1
