"""A plain-content rule on the reassembled stream takes the engine's one-search shortcut
(detect/engine.py `_stream_needle`): it must alert exactly where the general way
(header test, StreamRule SUFFIX window, `Signature.match`) does.

Each capture carries a rule of each kind with the same content: sid 1 is "confirmed
by the prefilter" (one plain content, any address), sid 2 the same content from a
source network, which takes the general path. Their alerts must sit on the same
packets, and be the ones Suricata's raw stream inspection gives: once per occurrence
that needs new bytes, also across segment boundaries and with `nocase`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.all import IP, TCP, Ether  # type: ignore[import-untyped]

from stream_helpers import replay_eve

CLI, SRV = "10.2.0.1", "10.2.0.2"


def c2s(flags: str, seq: int, ack: int = 0, load: bytes = b"") -> Ether:
    return Ether() / IP(src=CLI, dst=SRV) / TCP(sport=33000, dport=9000, flags=flags, seq=seq, ack=ack) / load


def s2c(flags: str, seq: int, ack: int = 0) -> Ether:
    return Ether() / IP(src=SRV, dst=CLI) / TCP(sport=9000, dport=33000, flags=flags, seq=seq, ack=ack)


HANDSHAKE = [c2s("S", 1), s2c("SA", 1000, 2), c2s("A", 2, 1001)]


def _conversation(segments: list[bytes]) -> list[Ether]:
    """The client sends each segment, the server acknowledges it, the client's next
    packet (a bare ACK) is where IDS raw inspection looks at the acknowledged bytes."""
    pkts = list(HANDSHAKE)
    seq = 2
    for data in segments:
        pkts.append(c2s("PA", seq, 1001, data))
        seq += len(data)
        pkts.append(s2c("A", 1001, seq))
        pkts.append(c2s("A", seq, 1001))
    return pkts


def _rules(content: str, nocase: bool) -> str:
    mod = " nocase;" if nocase else ""
    return (f'alert tcp any any -> any any (content:"{content}";{mod} sid:1;)\n'
            f'alert tcp 10.2.0.0/16 any -> any any (content:"{content}";{mod} sid:2;)\n'
            # a rule that may look any distance back, with a long fast pattern: the stream
            # stage keeps whole windows of old bytes (detect/stream.py window_lookback) and
            # the prefilter scans 23 of them again, so an old GOOD is a candidate on the
            # next segment and only the rule's own window cut keeps it from alerting again
            'alert tcp any any -> any any (content:"never-present-in-this-cap"; pcre:"/N.{0,40}V/"; sid:3;)\n')


def _where(recs: list[dict], sid: int) -> list[object]:
    return [r.get("pcap_cnt", "end") for r in recs
            if r["event_type"] == "alert" and r["alert"]["signature_id"] == sid]


@pytest.mark.parametrize(("segments", "content", "nocase", "count"), [
    ([b"xxGOODxx"], "GOOD", False, 1),                       # within one segment
    ([b"xxGO", b"ODxx"], "GOOD", False, 1),                  # across a segment boundary
    ([b"xxGOODxx", b"yyyyyyyy"], "GOOD", False, 1),          # old bytes do not alert again
    ([b"xxGOODxx", b"yyGOODyy"], "GOOD", False, 2),          # a new occurrence does
    ([b"xxgO", b"oDxx", b"zz"], "GoOd", True, 1),            # nocase, ASCII folding, split
    ([b"xxgood"], "GOOD", False, 0),                          # case matters without nocase
    ([b"G", b"O", b"O", b"D"], "GOOD", False, 1),            # one byte per segment
])
def test_plain_content_stream_rule_alerts_where_the_general_path_does(
        tmp_path: Path, segments: list[bytes], content: str, nocase: bool, count: int) -> None:
    recs = replay_eve(tmp_path, _conversation(segments), _rules(content, nocase))
    shortcut, general = _where(recs, 1), _where(recs, 2)
    assert shortcut == general
    assert len(shortcut) == count
