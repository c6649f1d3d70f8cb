"""Which payload a `tcp` content rule reads: the stream, the packet, or the stream then the packet.

Suricata (SigConsolidateTcpBuffer, DetectEngineInspectRulePayloadMatches): a tcp/ip
rule with payload keywords reads the reassembled stream; one that anchors a content
(depth, offset, startswith) or uses stream_size reads the packet too, when the
stream gave no match on that packet. Packet keywords (dsize, tcp-pkt,
flow:no_stream) keep a rule on packets, tcp-stream and flow:only_stream on the
stream. In IDS mode the stream offers a packet's bytes once the receiver
acknowledged them, so such a rule alerts on the packet and again on the stream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scapy.all import IP, TCP, Ether  # type: ignore[import-untyped]

from stream_helpers import replay_eve

from netsentry.detect.stream import packet_too
from netsentry.rules.loader import make_env
from netsentry.rules.parser import parse_rule

CLI, SRV = "10.2.1.1", "10.2.1.2"


def c2s(flags: str, seq: int, ack: int = 0, load: bytes = b"") -> Ether:
    return Ether() / IP(src=CLI, dst=SRV) / TCP(sport=33100, dport=9100, flags=flags, seq=seq, ack=ack) / load


def s2c(flags: str, seq: int, ack: int = 0, load: bytes = b"") -> Ether:
    return Ether() / IP(src=SRV, dst=CLI) / TCP(sport=9100, dport=33100, flags=flags, seq=seq, ack=ack) / load


HANDSHAKE = [c2s("S", 1), s2c("SA", 1000, 2), c2s("A", 2, 1001)]
REQ = b"GET /index.html HTTP/1.0\r\n"


def _where(recs: list[dict], sid: int) -> list[object]:
    return [r.get("pcap_cnt", "end") for r in recs
            if r["event_type"] == "alert" and r["alert"]["signature_id"] == sid]


def _sig(text: str) -> Any:
    env, _, _ = make_env({"classification-file": "/nonexistent", "reference-config-file": "/nonexistent"})
    return parse_rule(text, env, "t.rules", 1)


def test_which_rules_read_the_packet_too() -> None:
    both = ['alert tcp any any -> any any (content:"GET "; depth:4; sid:1;)',
            'alert tcp any any -> any any (content:"GET "; offset:0; sid:2;)',
            'alert tcp any any -> any any (content:"GET "; startswith; sid:3;)',
            'alert ip any any -> any any (content:"x"; content:"GET"; depth:9; sid:4;)',
            'alert tcp any any -> any any (content:"GET"; stream_size:client,>,1; sid:5;)']
    stream_only = ['alert tcp any any -> any any (content:"GET "; sid:11;)',
                   'alert tcp any any -> any any (content:"GET "; content:"x"; distance:0; within:9; sid:12;)',
                   'alert tcp any any -> any any (pcre:"/GET/"; sid:13;)',
                   'alert tcp-stream any any -> any any (content:"GET "; depth:4; sid:14;)',
                   'alert tcp any any -> any any (flow:only_stream; content:"GET "; depth:4; sid:15;)']
    packet_only = ['alert tcp any any -> any any (dsize:>2; content:"GET "; depth:4; sid:21;)',
                   'alert tcp any any -> any any (flow:no_stream; content:"GET "; depth:4; sid:22;)',
                   'alert tcp-pkt any any -> any any (content:"GET "; depth:4; sid:23;)',
                   'alert udp any any -> any any (content:"GET "; depth:4; sid:24;)']
    for text in both:
        s = _sig(text)
        assert s.pkt_too, text
    for text in stream_only + packet_only:
        s = _sig(text)
        assert not s.pkt_too, text
        assert packet_too(s, False) is False


def test_ids_an_anchored_rule_alerts_on_the_packet_and_again_on_the_stream(tmp_path: Path) -> None:
    # one request, never acknowledged: the packet is inspected on arrival, the stream at the end
    pkts = HANDSHAKE + [c2s("PA", 2, 1001, REQ)]
    rules = ('alert tcp any any -> any any (content:"GET "; depth:4; sid:1;)\n'
             'alert tcp any any -> any any (content:"GET "; sid:2;)\n'
             'alert tcp any any -> any any (content:"GET "; depth:4; byte_test:1,=,0x2f,0,relative; sid:3;)\n'
             'alert tcp any any -> any any (flow:only_stream; content:"GET "; depth:4; sid:4;)\n'
             'alert tcp any any -> any any (dsize:>0; content:"GET "; depth:4; sid:5;)\n')
    recs = replay_eve(tmp_path, pkts, rules)
    assert _where(recs, 1) == [4, "end"]
    assert _where(recs, 2) == ["end"]               # stream only: the packet joined the stream
    assert _where(recs, 3) == [4, "end"]            # byte_test relative to the anchored content
    assert _where(recs, 4) == ["end"]
    assert _where(recs, 5) == [4]                   # dsize: packets only


def test_ids_a_stream_match_does_not_stop_the_packet_match_of_a_later_packet(tmp_path: Path) -> None:
    # the first request is acknowledged and inspected on the stream with the second's packet;
    # the second's own payload is not in the stream yet: inspected as a packet on that packet
    second = b"GET /two HTTP/1.0\r\n"
    pkts = HANDSHAKE + [c2s("PA", 2, 1001, REQ), s2c("A", 1001, 2 + len(REQ)),
                        c2s("PA", 2 + len(REQ), 1001, second)]
    # (a chunk size that releases the first request on packet 6)
    recs = replay_eve(tmp_path, pkts, 'alert tcp any any -> any any (content:"GET "; depth:4; sid:1;)\n',
                      "stream.reassembly.toserver-chunk-size=16")
    # packet 4: its packet; packet 6: the stream (first request) matched, so not its packet
    # again; the flow's end: the stream from the second request on
    assert _where(recs, 1) == [4, 6, "end"]
    logged = [(r.get("stream"), r.get("payload_printable")) for r in recs if r["event_type"] == "alert"]
    assert logged[:2] == [(0, REQ.decode()), (1, REQ.decode())]
    assert logged[2][0] == 1 and logged[2][1].endswith(second.decode())      # (with the kept tail)


def test_inline_the_stream_match_on_arrival_is_the_only_one(tmp_path: Path) -> None:
    pkts = HANDSHAKE + [c2s("PA", 2, 1001, REQ), s2c("A", 1001, 2 + len(REQ))]
    recs = replay_eve(tmp_path, pkts, 'alert tcp any any -> any any (content:"GET "; depth:4; sid:1;)\n',
                      "stream.inline=true")
    assert _where(recs, 1) == [4]


def test_the_packet_is_the_fallback_when_the_stream_window_does_not_match(tmp_path: Path) -> None:
    # the stream window on packet 6 is the first (acknowledged) message, "XHLO"; the
    # anchored "QUIT" is only at the start of packet 6's own payload, then of the window
    # the flow's end inspects (Suricata's raw window starts where inspection stopped)
    pkts = HANDSHAKE + [c2s("PA", 2, 1001, b"XHLO x\r\n"), s2c("A", 1001, 10),
                        c2s("PA", 10, 1001, b"QUIT\r\n")]
    rule = 'alert tcp any any -> any any (content:"QUIT"; depth:4; sid:1;)\n'
    recs = replay_eve(tmp_path, pkts, rule, "stream.reassembly.toserver-chunk-size=8")
    assert _where(recs, 1) == [6, "end"]
    (on_packet, on_stream) = [r for r in recs if r["event_type"] == "alert"]
    assert on_packet["stream"] == 0 and on_packet["payload_printable"] == "QUIT\r\n"
    assert on_stream["stream"] == 1 and on_stream["payload_printable"].endswith("QUIT\r\n")


def test_bytes_of_a_flow_without_a_protocol_wait_for_a_chunk_not_each_ack(tmp_path: Path) -> None:
    # protocol detection failed on both sides' first bytes (Suricata: app layer disabled):
    # no parser asks for raw
    # inspection, so acknowledged bytes wait for the chunk size, the close or the flow's end
    msg, reply = b"ZZZZ unknown proto\r\n", b"YYYY unknown reply\r\n"
    end = 1001 + len(reply)
    pkts = HANDSHAKE + [c2s("PA", 2, 1001, msg), s2c("PA", 1001, 2 + len(msg), reply),
                        c2s("PA", 2 + len(msg), end, msg), s2c("A", end, 2 + 2 * len(msg)),
                        c2s("A", 2 + 2 * len(msg), end)]
    rules = 'alert tcp any any -> any any (content:"ZZZZ"; sid:1;)\n'
    assert _where(replay_eve(tmp_path, pkts, rules), 1) == ["end"]
    small = tmp_path / "small"
    small.mkdir()
    assert _where(replay_eve(small, pkts, rules, "stream.reassembly.toserver-chunk-size=16"), 1) == [6, 8]
    # while detection still runs (the server has not answered yet) each ACK releases, as
    # for a parser completing a message per ACK
    early = tmp_path / "early"
    early.mkdir()
    pkts = HANDSHAKE + [c2s("PA", 2, 1001, msg), s2c("A", 1001, 2 + len(msg)), c2s("A", 2 + len(msg), 1001)]
    assert _where(replay_eve(early, pkts, rules), 1) == [6]
