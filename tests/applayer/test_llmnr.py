"""LLMNR (applayer/llmnr.py): DNS's parser on port 5355, the `llmnr.*` buffers, the EVE
`llmnr` record, invalid_opcode on any opcode but 0, an answer opening its own flow."""

from __future__ import annotations

from pathlib import Path

from applayer_helpers import alerts, replay, udp_exchange
from scapy.layers.dns import DNS, DNSQR, DNSRR

TYPES = "outputs.eve-log.types=[alert, flow, dns, llmnr]"

QUERY = bytes(DNS(id=0x1234, qr=0, rd=0, qd=DNSQR(qname="printer", qtype="A")))
ANSWER = bytes(DNS(id=0x1234, qr=1, rd=0, qd=DNSQR(qname="printer", qtype="A"),
                   an=DNSRR(rrname="printer", type="A", rdata="10.0.0.9")))
RULES = ('alert llmnr any any -> any any (llmnr.queries.rrname; content:"printer"; sid:1;)\n'
         'alert llmnr any any -> any any (llmnr.answers.rrname; content:"printer"; sid:2;)\n'
         'alert dns any any -> any any (dns.queries.rrname; content:"printer"; sid:3;)\n'
         'alert llmnr any any -> any any (app-layer-event:llmnr.invalid_opcode; sid:4;)\n')


def test_llmnr_on_5355_with_its_own_record(tmp_path: Path):
    pcap = udp_exchange(tmp_path / "l.pcap", [(True, QUERY), (False, ANSWER)], dport=5355)
    recs = replay(tmp_path, pcap, RULES, TYPES)
    assert len(alerts(recs, 1)) == 2 and len(alerts(recs, 2)) == 1
    assert not alerts(recs, 3), "not DNS"
    assert not alerts(recs, 4)
    logged = [r["llmnr"] for r in recs if r["event_type"] == "llmnr"]
    assert logged == [
        {"type": "request", "id": 0x1234, "opcode": 0, "queries": [{"rrname": "printer", "rrtype": "a"}]},
        {"type": "response", "id": 0x1234, "opcode": 0, "queries": [{"rrname": "printer", "rrtype": "a"}],
         "answers": [{"rrname": "printer", "a": "10.0.0.9"}]}]


def test_an_answer_opening_its_flow_is_the_response_side(tmp_path: Path):
    # multicast query, unicast answer: the answer's flow starts at the responder's port 5355
    pcap = udp_exchange(tmp_path / "l.pcap", [(True, ANSWER)], sport=5355, dport=40000)
    recs = replay(tmp_path, pcap, RULES, TYPES)
    assert len(alerts(recs, 2)) == 1
    assert [r["llmnr"]["type"] for r in recs if r["event_type"] == "llmnr"] == ["response"]


def test_any_opcode_but_zero_is_invalid(tmp_path: Path):
    pcap = udp_exchange(tmp_path / "l.pcap", [(True, bytes(DNS(id=1, opcode=1, qd=DNSQR(qname="x"))))], dport=5355)
    recs = replay(tmp_path, pcap, RULES, TYPES)
    assert len(alerts(recs, 4)) == 1
