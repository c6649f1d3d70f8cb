"""When an app-layer rule without buffers (`alert http ... (flow:to_server;)`) sees its protocol.

Suricata reads the flow's protocol for a TCP packet once the session is established and
the app layer took the bytes that named it: in IDS mode once their receiver acknowledged
them, inline on arrival. A SYN carrying Fast Open data names nothing, and its SYN/ACK
does not hand the data to the app layer either; UDP knows it on the datagram itself.
Also: without stream.async-oneside a direction whose other side sent nothing yet waits
for the acknowledgement (or the flow's end) like any other.
"""

from __future__ import annotations

from pathlib import Path

from scapy.all import DNS, DNSQR, IP, TCP, UDP, Ether  # type: ignore[import-untyped]

from stream_helpers import replay_eve

CLI, SRV = "10.2.2.1", "10.2.2.2"
REQ = b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n"
RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nmessage"
RULES = ('alert http any any -> any any (flow:to_server; sid:1;)\n'
         'alert http any any -> any any (sid:2;)\n'
         'alert tcp any any -> any any (flow:to_server; sid:3;)\n')


def c2s(flags: str, seq: int, ack: int = 0, load: bytes = b"", options: list | None = None) -> Ether:
    return (Ether() / IP(src=CLI, dst=SRV)
            / TCP(sport=33200, dport=80, flags=flags, seq=seq, ack=ack, options=options or []) / load)


def s2c(flags: str, seq: int, ack: int = 0, load: bytes = b"") -> Ether:
    return Ether() / IP(src=SRV, dst=CLI) / TCP(sport=80, dport=33200, flags=flags, seq=seq, ack=ack) / load


def _where(recs: list[dict], sid: int) -> list[object]:
    return [r.get("pcap_cnt", "end") for r in recs
            if r["event_type"] == "alert" and r["alert"]["signature_id"] == sid]


def _session() -> list[Ether]:
    return [c2s("S", 1), s2c("SA", 1000, 2), c2s("A", 2, 1001),
            c2s("PA", 2, 1001, REQ),                                   # 4: the request
            s2c("A", 1001, 2 + len(REQ)),                              # 5: acknowledged
            s2c("PA", 1001, 2 + len(REQ), RESP),                       # 6
            c2s("A", 2 + len(REQ), 1001 + len(RESP))]                  # 7


def test_ids_the_protocol_is_known_from_the_acknowledgement_of_its_bytes(tmp_path: Path) -> None:
    recs = replay_eve(tmp_path, _session(), RULES)
    assert _where(recs, 1) == [7]               # not the request's own packet 4
    # (nobody parses HTTP here, detection only: the server's first packet after its
    # SYN-ACK, packet 5, acknowledges the request; Suricata knows it from 5 on, as when a
    # parser holds the bytes below)
    assert _where(recs, 2) == [5, 6, 7]
    assert _where(recs, 3) == [1, 3, 4, 7]      # the tcp rule: every client packet


def test_ids_the_same_with_a_parser_that_holds_the_bytes(tmp_path: Path) -> None:
    # an http record wanted: the HTTP parser reads the flow and holds the request for its ACK
    recs = replay_eve(tmp_path, _session(), RULES, "outputs.eve-log.types=[alert,http]")
    assert _where(recs, 1) == [7] and _where(recs, 2) == [5, 6, 7]


def test_inline_the_protocol_is_known_on_the_requests_own_packet(tmp_path: Path) -> None:
    recs = replay_eve(tmp_path, _session(), RULES, "stream.inline=true")
    assert _where(recs, 1) == [4, 7] and _where(recs, 2) == [4, 5, 6, 7]


def test_fast_open_data_on_the_syn_is_named_once_a_data_packet_acknowledges_it(tmp_path: Path) -> None:
    tfo = [("TFO", b"\x01\x02\x03\x04\x05\x06\x07\x08")]
    pkts = [c2s("S", 1, 0, REQ, options=tfo),                          # 1: SYN with the request
            s2c("SA", 1000, 2 + len(REQ)),                             # 2: acknowledges it
            c2s("A", 2 + len(REQ), 1001),                              # 3: still unknown
            s2c("PA", 1001, 2 + len(REQ), RESP),                       # 4: the app layer takes it
            c2s("A", 2 + len(REQ), 1001 + len(RESP)),                  # 5
            c2s("FA", 2 + len(REQ), 1001 + len(RESP))]                 # 6
    recs = replay_eve(tmp_path, pkts, RULES)
    assert _where(recs, 1) == [5, 6]
    assert _where(recs, 3) == [1, 3, 5, 6]


def test_udp_knows_the_protocol_on_the_datagram(tmp_path: Path) -> None:
    q = Ether() / IP(src=CLI, dst=SRV) / UDP(sport=33300, dport=53) / DNS(id=7, rd=1, qd=DNSQR(qname="a.example"))
    recs = replay_eve(tmp_path, [q], 'alert dns any any -> any any (flow:to_server; sid:1;)\n')
    assert _where(recs, 1) == [1]


def test_a_one_sided_request_waits_for_the_flows_end_without_async_oneside(tmp_path: Path) -> None:
    # picked up midstream, the server never seen: Suricata's app layer gets the request only
    # at the flow's end (no ACK), with stream.async-oneside on the request's arrival
    pkts = [c2s("PA", 2, 1001, REQ), c2s("A", 2 + len(REQ), 1001)]
    tx_rule = 'alert http any any -> any any (http.host; content:"example.com"; sid:4;)\n'
    recs = replay_eve(tmp_path, pkts, RULES + tx_rule, "stream.midstream=true")
    assert _where(recs, 1) == [] and _where(recs, 4) == ["end"]
    d = tmp_path / "async"
    d.mkdir()
    recs = replay_eve(d, pkts, RULES + tx_rule, "stream.midstream=true", "stream.async-oneside=true")
    assert _where(recs, 4) == [1] and _where(recs, 1) == [1, 2]


def test_bypass_from_a_packet_keeps_the_later_matches_of_the_flow_end_pseudo_packets(tmp_path: Path) -> None:
    # suricata-verify detect-bypass: the request's host and raw content match only once the
    # request is parsed/inspected: on the flow-end pseudo packets, which never bypass, so the
    # response body rule still alerts too
    pkts = [c2s("PA", 2, 1001, b"GET /index.html HTTP/1.0\r\nHost: a message\r\n\r\n"),
            s2c("PA", 1001, 2 + 45, RESP)]
    rules = ('alert tcp any any -> any any (bypass; content:"GET "; sid:1;)\n'
             'alert http any any -> any any (http.response_body; bypass; content:"message"; sid:2;)\n'
             'alert http any any -> any any (http.host; bypass; content:"message"; sid:3;)\n')
    recs = replay_eve(tmp_path, pkts, rules, "stream.midstream=true")
    assert _where(recs, 1) == ["end"] and _where(recs, 2) == ["end"] and _where(recs, 3) == ["end"]
