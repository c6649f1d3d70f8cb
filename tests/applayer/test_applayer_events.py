"""App-layer events as Suricata names them: the HTTP parser's libhtp-rs warnings, the TLS
parser's decoder events, and the generic protocol-detection events on the packet.

Parser-level checks feed crafted bytes; the end-to-end ones replay crafted captures
through the sensor with `app-layer-event` rules."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from applayer_helpers import alerts, replay, tcp_session
from tls_builders import (certificate, certificate_handshake, client_hello, handshake_record,
                          server_hello)

from netsentry.applayer.http import HttpParser
from netsentry.applayer.registry import ParserError
from netsentry.applayer.tls import TlsParser
from netsentry.applayer.x509 import certificate_error
from netsentry.detect.txdetect import get_buffer


def http(*chunks: tuple[bool, bytes]) -> HttpParser:
    p = HttpParser()
    for to_server, data in chunks:
        p.parse(data, to_server)
    return p


def events(tx) -> set[str]:
    return set(tx.events or ())


# --- HTTP ------------------------------------------------------------------------------------

def test_request_line_without_protocol_followed_by_headers_is_missing_protocol():
    """libhtp-rs: more than blanks after a protocol-less request line means headers, not
    HTTP/0.9; the header line without a colon is its own event."""
    p = http((True, b"GET /\nFakeHeader\nHost: localhost\nUser-Agent: myscript\n\n"))
    tx = p.txs[0]
    assert {"request_line_missing_protocol", "request_field_missing_colon"} <= events(tx)
    assert tx.header(b"user-agent") == b"myscript"
    # a real HTTP/0.9 request (nothing follows) raises nothing
    p = http((True, b"GET /index.html\r\n"))
    assert not events(p.txs[0]) and p.txs[0].done[1]


def test_bytes_after_a_bodyless_request_are_its_unexpected_body():
    """A line after a complete request whose first word is no method libhtp knows is that
    request's body (request_body_unexpected), not a new request; a known method starts one."""
    p = http((True, b"POST /a HTTP/1.1\r\nHost: h\r\n\r\nlogin=foo&password=bar\r\nGET /b HTTP/1.1\r\n"
                    b"Host: h\r\n\r\n"))
    assert len(p.txs) == 2
    first, second = p.txs
    assert "request_body_unexpected" in events(first)
    assert get_buffer(first, "http.request_body", (), True) == b"login=foo&password=bar\r\n"
    assert second.method == b"GET" and not events(second)


def test_request_line_shape_and_framing_events():
    p = http((True, b" GET\t/a\x0bb HTTP/1.1\r\nHost: a\r\nX: 1\r\nX: 2\r\nContent-Length: abc\r\n\r\n"))
    ev = events(p.txs[0])
    assert {"request_line_leading_whitespace", "method_delim_non_compliant", "uri_delim_non_compliant",
            "request_header_repetition", "invalid_content_length_field_in_request"} <= ev
    p = http((True, b"GET http://a.example/ HTTP/1.0\r\nHost: b.example\r\nTransfer-Encoding: gzip\r\n\r\n"))
    assert {"host_header_ambiguous", "invalid_transfer_encoding_value_in_request"} <= events(p.txs[0])


def test_response_events():
    p = http((True, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
             (False, b"HTTP/1.0 2x0 OK\r\nTransfer-Encoding: Chunked, x\r\nSet-Cookie: a\r\nSet-Cookie: b\r\n\r\n"
                     b"0\r\n\r\n"),
             (False, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
    ev = events(p.txs[0])
    assert {"response_line_invalid_response_status", "response_abnormal_transfer_encoding",
            "response_chunked_old_proto", "response_header_repetition"} <= ev
    assert "unable_to_match_response_to_request" in events(p.txs[1])        # a response without request


def test_http_events_end_to_end(tmp_path: Path):
    pcap = tcp_session(tmp_path / "h.pcap", [
        (True, b"POST /index.html HTTP/1.1\r\nHost: a\r\n\r\nlogin=foo&password=bar\r\n"),
        (False, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")])
    recs = replay(tmp_path, pcap,
                  'alert http any any -> any any (flow:established,to_server; content:"password=bar"; '
                  'http_client_body; app-layer-event:http.request_body_unexpected; sid:1;)\n'
                  'alert http any any -> any any (app-layer-event:http.request_line_missing_protocol; sid:2;)\n')
    assert len(alerts(recs, 1)) == 1
    assert alerts(recs, 2) == []


# --- TLS -------------------------------------------------------------------------------------

def tls(*chunks: tuple[bool, bytes]) -> TlsParser:
    p = TlsParser()
    for to_server, data in chunks:
        try:
            p.parse(data, to_server)
        except ParserError:
            pass
    return p


def test_certificate_decoding_errors_name_suricatas_events():
    # a header cut short (the length's bytes are missing): the decoder needed more
    assert certificate_error(bytes.fromhex("30053084fffffffa04")) == "certificate_invalid_length"
    # a whole header whose content overruns its container
    assert certificate_error(bytes.fromhex("30063084fffffffa04")) == "invalid_certificate"


@pytest.mark.parametrize("der, event", [(bytes.fromhex("30063084fffffffa04"), "invalid_certificate"),
                                        (bytes.fromhex("30053084fffffffa04"), "certificate_invalid_length")])
def test_a_bad_certificate_fails_the_handshake_message(der: bytes, event: str):
    p = TlsParser()
    p.parse(handshake_record(client_hello("a.example")), True)
    with pytest.raises(ParserError):
        p.parse(handshake_record(server_hello() + certificate_handshake([der])), False)
    assert {event, "invalid_handshake_message"} <= events(p.tx)
    assert p.lost[0] and not p.lost[1]               # only the server's direction stops


def test_unknown_handshake_type_heartbeat_and_record_anomalies():
    hb = struct.pack("!BHH", 24, 0x0303, 3 + 16) + b"\x01\x40\x00" + b"\x00" * 16   # claims 16 KB back
    p = tls((True, handshake_record(client_hello("a.example") + b"\x84\x00\x00\x00") + hb))
    assert {"invalid_handshake_message", "heartbeat_message", "overflow_heartbeat_message"} <= events(p.tx)
    p = tls((True, b"\x19\x03\x03\x00\x01\x00"))              # record type 25
    assert "invalid_record_type" in events(p.tx)
    p = tls((False, b"\x16\x03\x03\x00\x00"))                  # a zero-length record
    assert "invalid_record_length" in events(p.tx)


def test_sni_anomalies():
    ch = bytearray(client_hello("a.example"))
    # the SNI extension's name type (after ext type, ext len, list len) is byte 0 of host_name
    i = ch.find(b"a.example") - 3
    ch[i] = 1
    p = tls((True, handshake_record(bytes(ch))))
    assert "invalid_sni_type" in events(p.tx) and p.tx.sni is None


def test_client_certificate_buffers_and_per_side_ssl_version(tmp_path: Path):
    """A client's certificate (mutual TLS) is inspected on the way to the server;
    ssl_version compares each side's own version."""
    client_cert = certificate("O=ClientCo, CN=client", "O=SampleCA, CN=ca")
    server_cert = certificate("CN=server.example", "O=SampleCA, CN=ca")
    pcap = tcp_session(tmp_path / "t.pcap", [
        (True, handshake_record(client_hello("server.example", version=0x0301), version=0x0301)),
        (False, handshake_record(server_hello(0x0303) + certificate_handshake([server_cert]))),
        (True, handshake_record(certificate_handshake([client_cert]))),
        (False, b"\x14\x03\x03\x00\x01\x01")], dport=443)
    recs = replay(tmp_path, pcap,
                  'alert tls any any -> any any (flow:to_server; tls.cert_subject; content:"O=ClientCo"; '
                  'tls.cert_issuer; content:"O=SampleCA"; sid:1;)\n'
                  'alert tls any any -> any any (flow:to_client; tls.cert_subject; content:"CN=server.example"; sid:2;)\n'
                  'alert tcp any any -> any any (ssl_version:tls1.0; sid:3;)\n'
                  'alert tcp any any -> any any (ssl_version:!tls1.0; sid:4;)\n'
                  'alert tcp any any -> any any (ssl_version:tls1.2,tls1.1; sid:5;)\n')
    assert len(alerts(recs, 1)) == 1 and alerts(recs, 1)[0]["src_port"] != 443
    assert len(alerts(recs, 2)) == 1 and alerts(recs, 2)[0]["src_port"] == 443
    assert [a["src_port"] != 443 for a in alerts(recs, 3)] == [True]      # the client's TLS 1.0
    assert [a["src_port"] == 443 for a in alerts(recs, 4)] == [True]      # the server's TLS 1.2
    assert [a["src_port"] == 443 for a in alerts(recs, 5)] == [True]


def test_tls_fingerprint_is_case_insensitive(tmp_path: Path):
    cert = certificate("CN=x", "CN=ca")
    p = TlsParser()
    p.parse(handshake_record(client_hello("x")), True)
    p.parse(handshake_record(server_hello() + certificate_handshake([cert])), False)
    fp = p.tx.certs[0].fingerprint
    pcap = tcp_session(tmp_path / "f.pcap", [
        (True, handshake_record(client_hello("x"))),
        (False, handshake_record(server_hello() + certificate_handshake([cert])))], dport=443)
    recs = replay(tmp_path, pcap, f'alert tls any any -> any any (tls.fingerprint:"{fp.upper()}"; sid:1;)\n'
                                  f'alert tls any any -> any any (tls.fingerprint:"{fp[:-1]}0"; sid:2;)\n')
    assert len(alerts(recs, 1)) == 1 and (fp.endswith("0") or alerts(recs, 2) == [])


def test_tls_event_rules_end_to_end(tmp_path: Path):
    bad = bytes.fromhex("30053084fffffffa04")
    pcap = tcp_session(tmp_path / "b.pcap", [
        (True, handshake_record(client_hello("a.example"))),
        (False, handshake_record(server_hello() + certificate_handshake([bad])))], dport=10443)
    recs = replay(tmp_path, pcap,
                  'alert tls any any -> any any (flow:established; app-layer-event:tls.invalid_handshake_message; sid:1;)\n'
                  'alert tls any any -> any any (flow:established; app-layer-event:tls.certificate_invalid_length; sid:2;)\n'
                  'alert tls any any -> any any (flow:established; app-layer-event:tls.invalid_certificate; sid:3;)\n')
    # a tx event: once per direction at most (the per-direction detect state)
    assert 1 <= len(alerts(recs, 1)) <= 2 and 1 <= len(alerts(recs, 2)) <= 2 and alerts(recs, 3) == []


# --- generic protocol-detection events -------------------------------------------------------------

GENERIC = ('alert ip any any -> any any (flow:established; '
           'app-layer-event:applayer_mismatch_protocol_both_directions; sid:1;)\n'
           'alert ip any any -> any any (flow:established; '
           'app-layer-event:applayer_detect_protocol_only_one_direction; sid:2;)\n')


def test_http_answered_by_ssh_is_a_protocol_mismatch(tmp_path: Path):
    pcap = tcp_session(tmp_path / "m.pcap", [(True, b"GET / HTTP/1.1\r\nHost: x:22\r\n\r\n"),
                                              (False, b"SSH-2.0-OpenSSH_6.6.1\r\n"),
                                              (False, b"Protocol mismatch.\n")], dport=22)
    recs = replay(tmp_path, pcap, GENERIC)
    hits = alerts(recs, 1)
    assert len(hits) == 1 and hits[0]["src_port"] == 22       # on the server's first packet
    assert alerts(recs, 2) == []
    assert [r["app_proto"] for r in recs if r["event_type"] == "flow"] == ["http"]   # the flow stays http


def test_each_direction_has_its_own_protocol_after_a_mismatch(tmp_path: Path):
    """app-layer-protocol's to_server / to_client modes read that direction's own detected
    protocol (Suricata's alproto_ts / alproto_tc): an HTTP client answered by an SSH server
    is http to the server and ssh to the client, while the flow stays http."""
    pcap = tcp_session(tmp_path / "m.pcap", [(True, b"GET / HTTP/1.1\r\nHost: x:22\r\n\r\n"),
                                              (False, b"SSH-2.0-OpenSSH_6.6.1\r\n"),
                                              (False, b"Protocol mismatch.\n")], dport=22)
    rules = ('alert tcp any any -> any any (flow:to_client; app-layer-protocol:http1,to_server; '
             'app-layer-protocol:ssh,to_client; sid:1;)\n'
             'alert tcp any any -> any any (flow:to_client; app-layer-protocol:ssh,to_server; sid:2;)\n'
             'alert tcp any any -> any any (flow:to_client; app-layer-protocol:http,to_client; sid:3;)\n'
             'alert tcp any any -> any any (flow:to_client; app-layer-protocol:ssh; sid:4;)\n')
    recs = replay(tmp_path, pcap, rules)
    assert len(alerts(recs, 1)) == 1           # protocol detection only: once, on the server's side
    assert alerts(recs, 2) == [] and alerts(recs, 3) == []
    # without a mode: the packet's direction's (Suricata's default `direction` mode)
    assert len(alerts(recs, 4)) == 1
    # without a mismatch both directions are the flow's protocol
    pcap = tcp_session(tmp_path / "s.pcap", [(True, b"SSH-2.0-client\r\n"), (False, b"SSH-2.0-server\r\n")],
                       dport=2222)
    recs = replay(tmp_path, pcap, 'alert tcp any any -> any any (flow:to_client; app-layer-protocol:ssh,to_server; '
                  'app-layer-protocol:ssh,to_client; sid:1;)\n')
    assert len(alerts(recs, 1)) == 1


def test_an_unrecognised_answer_is_detection_in_one_direction_only(tmp_path: Path):
    pcap = tcp_session(tmp_path / "o.pcap", [(True, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
                                              (False, b"\x00\x01\x02 not a protocol\r\n")], dport=8080)
    recs = replay(tmp_path, pcap, GENERIC)
    assert alerts(recs, 1) == [] and len(alerts(recs, 2)) == 1
    # a normal exchange raises neither
    pcap = tcp_session(tmp_path / "n.pcap", [(True, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
                                              (False, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")])
    assert alerts(replay(tmp_path, pcap, GENERIC)) == []


def test_ssh_is_detected_by_its_banner(tmp_path: Path):
    pcap = tcp_session(tmp_path / "s.pcap", [(True, b"SSH-2.0-client\r\n"), (False, b"SSH-2.0-server\r\n")],
                       dport=2222)
    recs = replay(tmp_path, pcap, 'alert tcp any any -> any any (app-layer-protocol:ssh; flow:to_server; sid:1;)\n'
                  'alert tcp any any -> any any (app-layer-protocol:ssh; flow:established,to_server; sid:2;)\n')
    # protocol detection only: the client packet after the ACK of the banner (IDS)
    assert [a["pcap_cnt"] for a in alerts(recs, 1)] == [7]
    # a packet rule: every client packet from the banner on (before it the protocol is unknown)
    assert [a["pcap_cnt"] for a in alerts(recs, 2)][:1] == [4]
    assert [r["app_proto"] for r in recs if r["event_type"] == "flow"] == ["ssh"]
