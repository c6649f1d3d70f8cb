"""A transaction's candidate rules are kept per direction between its updates
(detect/txdetect.py `TxDetect._candidates`), and rules that cannot match before a buffer
changes are taken out of them. What must still hold:

- a rule that failed on a buffer is verified again once that buffer changes (a body that
  grows after the headers gave the rule's fast pattern);
- a rule that failed on something a later packet can change (a flowbit) stays a candidate
  when the next update changes no buffer (TLS records after the handshake);
- a rule that matched alerts once per transaction and direction.
"""

from __future__ import annotations

from applayer_helpers import alerts, hits, replay, tcp_session
from tls_builders import certificate, certificate_handshake, client_hello, handshake_record, server_hello

REQUEST = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"


def test_rule_failed_on_a_body_is_verified_again_as_the_body_grows(tmp_path):
    body = b"0123456789" * 4 + b"the secret" + b"." * 20 + b"zzzz-end"
    response = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    pcap = tcp_session(tmp_path / "h.pcap", [(True, REQUEST), (False, response)], segment=16)
    rules = (
        # candidate from the status code on the headers' update, fails on file.data until
        # the segment with "secret" arrives
        'alert http any any -> any any (flow:to_client; http.stat_code; content:"200"; fast_pattern; '
        'file.data; content:"secret"; sid:1;)\n'
        # never: the body has no "absent" (taken out, then back on each body update)
        'alert http any any -> any any (flow:to_client; http.stat_code; content:"200"; fast_pattern; '
        'file.data; content:"absent"; sid:2;)\n'
        # matches on the headers' update already: one alert for the transaction
        'alert http any any -> any any (flow:to_client; http.stat_code; content:"200"; sid:3;)\n'
        # the body's last bytes, two segments after "secret"
        'alert http any any -> any any (flow:to_client; file.data; content:"zzzz-end"; sid:4;)\n'
    )
    recs = replay(tmp_path, pcap, rules)
    assert len(alerts(recs, 1)) == 1
    assert alerts(recs, 2) == []
    assert len(alerts(recs, 3)) == 1
    # on the segment that brought "secret", not only when the body ended
    assert hits(recs, 1)[0] < hits(recs, 4)[0]
    assert hits(recs, 1)[0] > hits(recs, 3)[0]


def _app_data(payload: bytes) -> bytes:
    return b"\x17\x03\x03" + len(payload).to_bytes(2, "big") + payload


def test_rule_failed_on_a_flowbit_is_verified_again_on_an_update_without_new_buffers(tmp_path):
    cert = certificate("CN=kept.example", "CN=issuer", serial=7)
    server = handshake_record(server_hello() + certificate_handshake([cert]) + b"\x0e\x00\x00\x00")
    pcap = tcp_session(tmp_path / "t.pcap", [
        (True, handshake_record(client_hello("kept.example"))),
        (False, server),
        (False, _app_data(b"first answer")),         # an update of the server's side, no buffer moves
        (True, _app_data(b"TRIGGER")),               # sets the flowbit
        (False, _app_data(b"second answer")),        # the same buffers, the flowbit now set
    ], dport=443)
    rules = (
        'alert tcp any any -> any 443 (flow:to_server; content:"TRIGGER"; flowbits:set,go; '
        'flowbits:noalert; sid:1;)\n'
        'alert tls any any -> any any (flow:to_client; flowbits:isset,go; tls.cert_subject; '
        'content:"CN=kept"; sid:2;)\n'
        # fails on a buffer for good: never alerts, whatever the updates
        'alert tls any any -> any any (flow:to_client; tls.cert_subject; content:"CN=kept"; '
        'tls.cert_issuer; content:"CN=other"; sid:3;)\n'
        # matches on the certificate's update: once
        'alert tls any any -> any any (flow:to_client; tls.cert_subject; content:"CN=kept"; sid:4;)\n'
    )
    # the flowbit's content is in an application-data record: inspected only with
    # encryption-handling full (track-only stops payload inspection once the session is
    # encrypted, applayer/registry.py Encrypted)
    recs = replay(tmp_path, pcap, rules, "app-layer.protocols.tls.encryption-handling=full")
    assert len(alerts(recs, 2)) == 1
    assert alerts(recs, 3) == []
    assert len(alerts(recs, 4)) == 1
    assert hits(recs, 2)[0] > hits(recs, 4)[0]
