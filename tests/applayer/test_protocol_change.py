"""Protocol change (applayer/state.py `_change`, registry ProtocolChange): SMTP's accepted
STARTTLS makes the app layer detect the flow's protocol again, as Suricata's
AppLayerRequestProtocolChange; what it finds other than TLS raises the generic events, and
an HTTP upgrade asked for while that change is under way fails (failed_protocol_change)."""

from __future__ import annotations

from pathlib import Path

import pytest
from applayer_helpers import alerts, hits, replay, tcp_session
from tls_builders import client_hello, handshake_record, server_hello

TYPES = "outputs.eve-log.types=[alert, flow, smtp, tls, http]"

GREETING = [
    (False, b"220 mx.example.net ESMTP\r\n"),
    (True, b"EHLO client.example.org\r\n"),
    (False, b"250-mx.example.net\r\n250 STARTTLS\r\n"),
    (True, b"STARTTLS\r\n"),
]
EVENT_RULES = (
    'alert tcp any any -> any any (msg:"unexpected"; app-layer-event:applayer_unexpected_protocol; sid:10;)\n'
    'alert tcp any any -> any any (msg:"no tls"; app-layer-event:applayer_no_tls_after_starttls; sid:11;)\n'
    'alert http any any -> any any (msg:"failed change"; app-layer-event:http.failed_protocol_change; sid:12;)\n')


def _run(tmp_path: Path, session, rules: str, *overrides: str) -> list[dict]:
    pcap = tcp_session(tmp_path / "s.pcap", session, sport=40025, dport=25)
    return replay(tmp_path, pcap, rules + EVENT_RULES, TYPES, *overrides)


@pytest.mark.parametrize("inline", [False, True])
def test_starttls_accepted_then_tls_is_parsed(tmp_path: Path, inline: bool):
    """The TLS handshake after `220 ready` is TLS: tls.sni matches, a tls record is written,
    the flow's app_proto becomes tls, the mail session's record stays; no generic event."""
    session = GREETING + [
        (False, b"220 2.0.0 Ready to start TLS\r\n"),
        (True, handshake_record(client_hello("mail.example.net"))),
        (False, handshake_record(server_hello())),
    ]
    rules = ('alert tls any any -> any any (msg:"sni"; tls.sni; content:"mail.example.net"; sid:1;)\n'
             'alert smtp any any -> any any (msg:"helo"; smtp.helo; content:"client.example.org"; sid:2;)\n')
    recs = _run(tmp_path, session, rules, *(["stream.inline=true"] if inline else []))
    assert len(alerts(recs, 1)) == 1 and alerts(recs, 1)[0]["app_proto"] == "tls"
    assert len(alerts(recs, 2)) == 1
    assert [r["tls"]["sni"] for r in recs if r["event_type"] == "tls"] == ["mail.example.net"]
    assert len([r for r in recs if r["event_type"] == "smtp"]) == 1
    flows = [r for r in recs if r["event_type"] == "flow"]
    assert flows[0]["app_proto"] == "tls"
    for sid in (10, 11, 12):
        assert alerts(recs, sid) == [], sid


def test_starttls_rejected_keeps_smtp(tmp_path: Path):
    """`454 TLS not available`: no change; the next command is still SMTP."""
    session = GREETING + [
        (False, b"454 4.7.0 TLS not available\r\n"),
        (True, b"MAIL FROM:<jane@example.org>\r\n"),
        (False, b"250 OK\r\n"),
    ]
    rules = 'alert smtp any any -> any any (msg:"from"; smtp.mail_from; content:"jane@"; sid:1;)\n'
    recs = _run(tmp_path, session, rules)
    assert len(alerts(recs, 1)) == 1
    assert [r for r in recs if r["event_type"] == "flow"][0]["app_proto"] == "smtp"


def test_starttls_answered_by_http_raises_the_generic_events_and_a_failed_upgrade(tmp_path: Path):
    """What follows the accepted STARTTLS is an HTTP response: the flow becomes HTTP with
    applayer_unexpected_protocol and applayer_no_tls_after_starttls on that packet, and the
    response's h2c upgrade fails (a change is already under way): failed_protocol_change."""
    session = GREETING + [
        (False, b"220 go ahead\r\n"),
        (False, b"HTTP/1.1 101 Switching\r\nUpgrade: h2c\r\n\r\n"),
        (True, b"x"),
    ]
    recs = _run(tmp_path, session, "")
    assert len(alerts(recs, 10)) == 1 and len(alerts(recs, 11)) == 1
    assert hits(recs, 10) == hits(recs, 11)
    assert alerts(recs, 12) and all(a["app_proto"] == "http" for a in alerts(recs, 12))


def test_an_h2c_upgrade_of_a_plain_http_flow_is_no_failed_change(tmp_path: Path):
    session = [(True, b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"),
               (False, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n")]
    pcap = tcp_session(tmp_path / "h.pcap", session, sport=40080, dport=80)
    recs = replay(tmp_path, pcap, EVENT_RULES, TYPES)
    assert [r for r in recs if r["event_type"] == "http"]
    for sid in (10, 11, 12):
        assert alerts(recs, sid) == [], sid
