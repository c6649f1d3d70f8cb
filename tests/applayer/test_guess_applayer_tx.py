"""The transaction a packet or stream rule's alert names (detect/txdetect.py TxGuess):
over UDP for rules naming an app-layer protocol, and with `detect.guess-applayer-tx`
for any flow whose transaction is the only live one of the packet's direction
(Suricata 8's DetectRulePacketAppendAlert, `tx_guessed: true` in EVE)."""

from __future__ import annotations

from pathlib import Path

import pytest
from applayer_helpers import alerts, replay, tcp_session, udp_exchange
from scapy.layers.dns import DNS, DNSQR, DNSRR

from netsentry.config import ConfigError, load_config

REQ = b"GET /blah/ HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Wget/1.11.4\r\n\r\n"
REQ2 = b"GET /other/ HTTP/1.1\r\nHost: www.example.com\r\n\r\n"
RESP = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nnope!"
RESP2 = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
GET_RULE = 'alert tcp any any -> any any (msg:"get"; content:"GET /"; sid:1;)\n'
GUESS = "detect.guess-applayer-tx=true"


def test_off_by_default_a_tcp_packet_rule_names_no_transaction(tmp_path: Path):
    pcap = tcp_session(tmp_path / "a.pcap", [(True, REQ), (False, RESP)])
    [a] = alerts(replay(tmp_path, pcap, GET_RULE), 1)
    assert "tx_id" not in a and "http" not in a and "tx_guessed" not in a
    assert a["app_proto"] == "http"


@pytest.mark.parametrize("inline", [False, True])
def test_guessed_when_the_transaction_is_the_only_live_one(tmp_path: Path, inline: bool):
    pcap = tcp_session(tmp_path / "g.pcap", [(True, REQ), (False, RESP)])
    recs = replay(tmp_path, pcap, GET_RULE, GUESS, f"stream.inline={str(inline).lower()}")
    [a] = alerts(recs, 1)
    assert a["tx_id"] == 0 and a["tx_guessed"] is True
    assert a["http"]["url"] == "/blah/" and a["http"]["hostname"] == "www.example.com"


def test_two_live_transactions_are_not_guessed(tmp_path: Path):
    """Two pipelined requests in one segment: the alert could be about either, so it names
    none (Suricata's documented warning)."""
    pcap = tcp_session(tmp_path / "p.pcap", [(True, REQ + REQ2), (False, RESP + RESP2)])
    [a] = alerts(replay(tmp_path, pcap, GET_RULE, GUESS), 1)
    assert "tx_id" not in a and "tx_guessed" not in a


def test_a_transaction_is_named_at_most_stream_tx_log_limit_times(tmp_path: Path):
    pcap = tcp_session(tmp_path / "l.pcap", [(True, REQ), (False, RESP)])
    rules = GET_RULE + 'alert tcp any any -> any any (msg:"host"; content:"Host|3a| "; sid:2;)\n'
    recs = replay(tmp_path, pcap, rules, GUESS, "detect.stream-tx-log-limit=1")
    named = [a for a in alerts(recs) if "tx_id" in a]
    assert len(alerts(recs)) == 2 and len(named) == 1
    recs = replay(tmp_path, pcap, rules, GUESS)
    assert all(a["tx_id"] == 0 and a["tx_guessed"] for a in alerts(recs))


def _dns(query: bool) -> bytes:
    if query:
        return bytes(DNS(id=7, rd=1, qd=DNSQR(qname="www.example.com")))
    return bytes(DNS(id=7, qr=1, rd=1, ra=1, qd=DNSQR(qname="www.example.com"),
                     an=DNSRR(rrname="www.example.com", rdata="192.0.2.1")))


def test_udp_app_layer_rule_names_the_datagrams_transaction(tmp_path: Path):
    """Without the option: a UDP datagram is one message, so a rule naming the protocol
    names its transaction (not guessed); a plain `udp` rule names none."""
    pcap = udp_exchange(tmp_path / "d.pcap", [(True, _dns(True)), (False, _dns(False))])
    rules = ('alert dns any any -> any any (msg:"dns"; content:"example"; sid:1;)\n'
             'alert udp any any -> any any (msg:"udp"; content:"example"; sid:2;)\n')
    recs = replay(tmp_path, pcap, rules)
    req, resp = alerts(recs, 1)
    assert (req["tx_id"], req["dns"]["type"]) == (0, "request")
    assert (resp["tx_id"], resp["dns"]["type"]) == (1, "response")
    assert resp["dns"]["answers"][0]["rdata"] == "192.0.2.1"
    assert "tx_guessed" not in req and "tx_guessed" not in resp
    assert all("tx_id" not in a and "dns" not in a for a in alerts(recs, 2))


def test_stream_tx_log_limit_is_range_checked():
    with pytest.raises(ConfigError, match="stream-tx-log-limit"):
        load_config(None, ["detect.stream-tx-log-limit=300"])
