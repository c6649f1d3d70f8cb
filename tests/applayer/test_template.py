"""The template protocol (applayer/template.py): LEN:DATA messages on port 7000, the
`template.buffer` keyword per side, the EVE `template` record, detection by port only."""

from __future__ import annotations

from pathlib import Path

from applayer_helpers import alerts, replay, tcp_session

from netsentry.applayer import template

TYPES = "outputs.eve-log.types=[alert, flow, template]"
RULES = ('alert template any any -> any any (flow:to_server; template.buffer; content:"Hello"; sid:1;)\n'
         'alert template any any -> any any (flow:to_client; template.buffer; content:"Bye"; sid:2;)\n'
         'alert template any any -> any any (flow:to_server; template.buffer; content:"Bye"; sid:3;)\n')


def test_messages_split_anywhere_make_transactions_and_records(tmp_path: Path):
    pcap = tcp_session(tmp_path / "t.pcap", [(True, b"12:Hello World!"), (False, b"3:Bye"),
                                              (True, b"2:hi"), (False, b"4:Byeb")],
                       dport=7000, segment=3)
    recs = replay(tmp_path, pcap, RULES, TYPES)
    assert len(alerts(recs, 1)) == 1 and len(alerts(recs, 2)) == 2 and not alerts(recs, 3)
    assert [r["template"] for r in recs if r["event_type"] == "template"] == [
        {"request": "Hello World!", "response": "Bye"}, {"request": "hi", "response": "Byeb"}]


def test_only_its_port_decides(tmp_path: Path):
    pcap = tcp_session(tmp_path / "t.pcap", [(True, b"12:Hello World!"), (False, b"3:Bye")], dport=7001)
    recs = replay(tmp_path, pcap, RULES, TYPES)
    assert not alerts(recs) and not [r for r in recs if r["event_type"] == "template"]
    assert template.probe(b"12:Hello", True) is None
    assert template.probe(b"GET / HTTP/1.1", True) is False
