"""`app-layer-state` (Suricata 8): a transaction's progress by the protocol's state names,
`<S` / `>S` while a side is before / past S, plain S once it got there. Crafted captures."""

from __future__ import annotations

from pathlib import Path

from applayer_helpers import hits, replay, tcp_session
from tls_builders import certificate, certificate_handshake, client_hello, handshake_record, server_hello

from netsentry.config import load_config
from netsentry.rules.loader import load_rules

REQ = b"GET /x HTTP/1.1\r\nHost: h.example\r\n\r\n"
RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"



def test_tls_states_on_a_hello_in_three_segments(tmp_path: Path):
    hello = handshake_record(client_hello("a.example"))
    cert = certificate("CN=a.example", "CN=ca")
    answer = handshake_record(server_hello() + certificate_handshake([cert]))
    # inline: each segment (frames 4, 6, 8, each ACKed) is parsed as it comes; the hello
    # completes on the third
    # then the server's answer and the client's ChangeCipherSpec
    ccs = b"\x14\x03\x03\x00\x01\x01"
    pcap = tcp_session(tmp_path / "t.pcap", [(True, hello), (False, answer), (True, ccs)], dport=443,
                       segment=(len(hello) + 2) // 3)
    recs = replay(tmp_path, pcap, "\n".join([
        "alert tls any any -> any any (app-layer-state:<client_hello_done; sid:1;)",
        "alert tls any any -> any any (app-layer-state:client_hello_done; sid:2;)",
        "alert tls any any -> any any (app-layer-state:>client_hello_done; sid:3;)",
        "alert tls any any -> any any (app-layer-state:server_cert_done; sid:4;)",
        "alert tls any any -> any any (app-layer-state:>server_cert_done; sid:5;)",
    ]), "stream.inline=true")
    assert hits(recs, 1) == [4]
    # a hook rule: at exactly its state a match keeps no state (Suricata), so it matches
    # again when the client side moves past it (the CCS: client_handshake_done)
    past = hits(recs, 3)
    assert len(past) == 1 and past[0] > 10 and hits(recs, 2) == [8, past[0]]
    assert hits(recs, 5) == []
    assert len(hits(recs, 4)) == 1


def test_hook_with_a_buffer_alerts_once(tmp_path: Path):
    hello = handshake_record(client_hello("a.example"))
    ccs = b"\x14\x03\x03\x00\x01\x01"
    pcap = tcp_session(tmp_path / "t.pcap", [(True, hello), (False, handshake_record(server_hello())),
                                             (True, ccs)], dport=443)
    recs = replay(tmp_path, pcap, "\n".join([
        "alert tls any any -> any any (app-layer-state:client_hello_done; tls.sni; content:\"a.example\"; sid:1;)",
        "alert tls any any -> any any (app-layer-state:client_hello_done; sid:2;)",
    ]), "stream.inline=true")
    assert len(hits(recs, 1)) == 1
    assert len(hits(recs, 2)) == 2


def test_http_states(tmp_path: Path):
    pcap = tcp_session(tmp_path / "h.pcap", [(True, REQ), (False, RESP)])
    recs = replay(tmp_path, pcap, "\n".join([
        "alert http any any -> any any (app-layer-state:request_headers; sid:1;)",
        "alert http any any -> any any (app-layer-state:>request_line; sid:2;)",
        "alert http any any -> any any (app-layer-state:<request_line; sid:3;)",
        "alert http any any -> any any (app-layer-state:response_complete; sid:4;)",
    ]))
    assert len(hits(recs, 1)) == 1 and len(hits(recs, 2)) == 1 and len(hits(recs, 4)) == 1
    assert hits(recs, 3) == []


def test_bad_states_are_rule_errors(tmp_path: Path):
    rf = tmp_path / "r.rules"
    rf.write_text("\n".join([
        "alert tcp any any -> any any (app-layer-state:request_line; sid:1;)",
        "alert tls any any -> any any (app-layer-state:request_line; sid:2;)",
        "alert http any any -> any any (app-layer-state:<; sid:3;)",
        "alert dns any any -> any any (app-layer-state:request_complete; sid:4;)",
    ]) + "\n")
    rs = load_rules([rf], load_config(None, []))
    assert sorted(e.sid for e in rs.errors) == [1, 2, 3]
    assert [s.sid for s in rs.signatures] == [4]
