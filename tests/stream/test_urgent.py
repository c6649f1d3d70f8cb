"""TCP urgent data (stream.reassembly.urgent.policy): which bytes of a URG segment the stream
holds. The evasion: "GET /malic" + URG "X" + "ious": a receiver that takes the urgent byte
out of band reads "malicious", one that keeps it reads "malicXious"."""

from __future__ import annotations

from typing import Any

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from stream_helpers import Feed, stream_through

from netsentry.config import ConfigError
from netsentry.stream import StreamEngine, StreamSettings

C, S = "192.0.2.1", "198.51.100.2"
MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}


def frame(seq: int, data: bytes = b"", flags: str = "PA", to_server: bool = True, ack: int = 0,
          urgptr: int = 0) -> bytes:
    src, dst, sp, dp = (C, S, 40000, 80) if to_server else (S, C, 80, 40000)
    return bytes(Ether(**MACS) / IP(src=src, dst=dst)
                 / TCP(sport=sp, dport=dp, flags=flags, seq=seq, ack=ack, urgptr=urgptr) / Raw(data))


def run(frames: list[bytes], policy: str, inline: bool = False, limit: str = "inline"
        ) -> tuple[StreamEngine, Feed, list[Any]]:
    config = {"stream": {"inline": inline,
                         "reassembly": {"urgent": {"policy": policy, "oob-limit-policy": limit}}}}
    return stream_through(frames, config)


def evasion(urgent: bytes = b"X") -> list[bytes]:
    n = len(urgent)
    return [frame(100, flags="S"), frame(500, flags="SA", to_server=False, ack=101),
            frame(101, b"GET /malic", ack=501),
            frame(111, urgent, flags="PAU", ack=501, urgptr=n),
            frame(501, flags="A", to_server=False, ack=111 + n),
            frame(111 + n, b"ious HTTP/1.0\r\n\r\n", ack=501)]


def test_inline_keeps_the_urgent_byte() -> None:
    _, feed, pkts = run(evasion(), "inline")
    assert bytes(feed.data[True]).startswith(b"GET /malicXious")


def test_oob_takes_the_last_urgent_byte_out_and_moves_later_bytes_up() -> None:
    eng, feed, pkts = run(evasion(), "oob")
    assert bytes(feed.data[True]) == b"GET /malicious HTTP/1.0\r\n\r\n"
    assert b"malicious" in pkts[5].stream_data
    assert feed.gaps == [] and eng.stats()["tcp.urgent_oob_data"] == 1
    # a one-byte urgent segment adds nothing, but is stream data (not inspected as a packet)
    assert pkts[3].stream_added and pkts[3].stream_data is None


def test_oob_only_the_last_byte_of_a_longer_urgent_segment() -> None:
    _, feed, _ = run(evasion(b"XY"), "oob")
    assert bytes(feed.data[True]).startswith(b"GET /malicXious")


def test_gap_leaves_a_one_byte_hole() -> None:
    _, feed, pkts = run(evasion(), "gap")
    assert bytes(feed.data[True]) == b"GET /malicious HTTP/1.0\r\n\r\n"
    assert feed.gaps == [1]
    assert b"malicious" not in (pkts[5].stream_data or b"")      # nothing matches across the hole
    assert "stream.reassembly_seq_gap" in pkts[3].events           # stream-event rules see the gap


def test_drop_drops_the_urgent_packet_in_ips_mode_only() -> None:
    _, feed, pkts = run(evasion(), "drop", inline=True)
    assert pkts[3].verdict == "drop" and pkts[3].drop_reason == "stream urgent"
    assert feed.gaps == [1] and b"X" not in bytes(feed.data[True])
    _, feed, pkts = run(evasion(), "drop")
    assert pkts[3].verdict != "drop" and bytes(feed.data[True]).startswith(b"GET /malicXious")


def test_urgent_pointer_beyond_the_segment_keeps_it_whole() -> None:
    frames = evasion()
    frames[3] = frame(111, b"X", flags="PAU", ack=501, urgptr=5)
    _, feed, _ = run(frames, "oob")
    assert bytes(feed.data[True]).startswith(b"GET /malicXious")


def test_bad_policy_names_the_key() -> None:
    with pytest.raises(ConfigError, match="stream.reassembly.urgent.policy"):
        StreamSettings.from_config({"stream": {"reassembly": {"urgent": {"policy": "maybe"}}}})
    with pytest.raises(ConfigError, match="oob-limit-policy"):
        StreamSettings.from_config({"stream": {"reassembly": {"urgent": {"oob-limit-policy": "oob"}}}})
