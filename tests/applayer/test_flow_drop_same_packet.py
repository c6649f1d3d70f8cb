"""A flow drop set by a packet's own packet/stream rules applies from the next packet on:
Suricata's RuleActionToFlow runs after the whole packet was inspected, so that packet's
transaction rules still match it (suricata-verify tcp-urgp-01/-03/-04)."""

from __future__ import annotations

from pathlib import Path

from applayer_helpers import hits, replay, tcp_session

REQ = b"GET /malicious HTTP/1.1\r\nHost: h.example\r\n\r\n"
RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
RULES = "\n".join([
    'drop tcp any any -> any any (msg:"raw"; content:"malicious"; sid:1;)',
    'drop tcp any any -> any any (msg:"uri"; http.uri; content:"malicious"; sid:2;)',
    'alert http any any -> any any (msg:"later"; http.stat_code; content:"200"; sid:3;)',
])



def test_the_dropping_packet_still_gets_its_transaction_rules(tmp_path: Path):
    pcap = tcp_session(tmp_path / "h.pcap", [(True, REQ), (False, RESP)])
    recs = replay(tmp_path, pcap, RULES)
    raw, uri = hits(recs, 1), hits(recs, 2)
    assert len(raw) == 1 and uri == raw          # the same packet: the request's ACK (IDS)
    assert hits(recs, 3) == []                  # the flow is dropped: later packets are not inspected
    flows = [r for r in recs if r["event_type"] == "flow"]
    assert flows and flows[0]["flow"]["action"] == "drop"
