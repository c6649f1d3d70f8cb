"""Suspected RST injection (Suricata's `stream-event:suspected_rst_inject`).

An on-path censor forges a RST in the name of one endpoint to tear a session
down. The sensor cannot tell a forged RST from a real one, but it can see the
claimed sender go on talking afterwards, which a real sender would not. As
Suricata, the RSTs watched are those whose receiver may not take them: the
server's answer to a SYN it never answered otherwise, a client's abort of its
own SYN, and any RST carrying a TCP MD5 signature (RFC 2385) or TCP-AO
(RFC 5925) option, which the receiver checks against a key the sensor does not
have. The next ordinary packet from the RST's sender raises the event; the
session goes on as its endpoints carry on.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.all import IP, TCP, Ether, wrpcap  # type: ignore[import-untyped]

from stream_helpers import alerts_of, replay_events

RULES = (
    'alert tcp any any -> any any (msg:"rst inject"; stream-event:suspected_rst_inject; sid:1;)\n'
    'alert tcp any any -> any any (msg:"request"; flow:established,to_server; content:"GET /secret"; sid:2;)\n'
)
CLI, SRV = "10.0.0.1", "10.0.0.2"
ISN, SISN = 1000, 5000
REQ = b"GET /secret HTTP/1.1\r\nHost: x\r\n\r\n"
MD5 = [(19, b"\x00" * 16)]
AO = [(29, b"\x01\x02" + b"\x00" * 12)]


def c2s(flags: str, seq: int, ack: int = 0, load: bytes = b"", options: list | None = None,
        window: int = 8192) -> Ether:
    return Ether() / IP(src=CLI, dst=SRV) / TCP(sport=40000, dport=80, flags=flags, seq=seq, ack=ack,
                                                window=window, options=options or []) / load


def s2c(flags: str, seq: int, ack: int, load: bytes = b"", options: list | None = None) -> Ether:
    return Ether() / IP(src=SRV, dst=CLI) / TCP(sport=80, dport=40000, flags=flags, seq=seq, ack=ack,
                                                options=options or []) / load


HANDSHAKE = [c2s("S", ISN), s2c("SA", SISN, ISN + 1), c2s("A", ISN + 1, SISN + 1)]


def _run(tmp_path: Path, pkts: list[Ether], overrides: tuple[str, ...] = ()) -> tuple[list[tuple[int, int]], dict]:
    pkts = [p.copy() for p in pkts]
    for i, p in enumerate(pkts):
        p.time = 1_700_000_000 + i * 0.01      # not the frames' build times (HANDSHAKE: import time)
    pcap = tmp_path / "rst.pcap"
    wrpcap(str(pcap), pkts)
    rules = tmp_path / "t.rules"
    rules.write_text(RULES)
    out, sensor = replay_events(pcap, rules, overrides=("stream.reassembly.raw-inspection=arrival", *overrides))
    return alerts_of(out), sensor.stream.stats()


@pytest.mark.parametrize("option", [MD5, AO], ids=["tcp-md5", "tcp-ao"])
def test_signed_rst_then_the_sender_talks_on(tmp_path: Path, option: list) -> None:
    """The client's signed RST, then the same client's request: the request raises the
    event and is still inspected as the session's data."""
    alerts, stats = _run(tmp_path, HANDSHAKE + [
        c2s("RA", ISN + 1, SISN + 1, options=option),
        c2s("PA", ISN + 1, SISN + 1, REQ),
        s2c("A", SISN + 1, ISN + 1 + len(REQ)),
    ])
    assert (5, 1) in alerts and (5, 2) in alerts
    assert [a for a in alerts if a[1] == 1] == [(5, 1)]
    assert stats["stream.suspected_rst_inject"] == 1


def test_signed_rst_then_only_the_receiver_talks(tmp_path: Path) -> None:
    """The receiver of the RST answering (it did not take the RST) is no sign of injection."""
    alerts, stats = _run(tmp_path, HANDSHAKE + [
        c2s("RA", ISN + 1, SISN + 1, options=MD5),
        s2c("PA", SISN + 1, ISN + 1, b"hello"),
    ])
    assert [a for a in alerts if a[1] == 1] == []
    assert stats.get("stream.suspected_rst_inject", 0) == 0


def test_unsigned_rst_on_an_established_session_is_not_watched(tmp_path: Path) -> None:
    alerts, stats = _run(tmp_path, HANDSHAKE + [
        c2s("RA", ISN + 1, SISN + 1),
        c2s("PA", ISN + 1, SISN + 1, REQ),
    ])
    assert [a for a in alerts if a[1] == 1] == []
    assert stats.get("stream.suspected_rst_inject", 0) == 0


def test_signed_rst_out_of_sequence_is_not_taken(tmp_path: Path) -> None:
    """A RST before the sender's next sequence number is not accepted by the receiver
    (Suricata's RST validation), so whatever follows is no sign of anything."""
    alerts, _ = _run(tmp_path, HANDSHAKE + [
        c2s("PA", ISN + 1, SISN + 1, b"abcdef"),
        c2s("RA", ISN + 1, SISN + 1, options=MD5),
        c2s("PA", ISN + 7, SISN + 1, REQ),
    ])
    assert [a for a in alerts if a[1] == 1] == []


def test_server_rst_to_a_syn_then_its_syn_ack(tmp_path: Path) -> None:
    """A censor refuses the connection in the server's name; the real server's SYN/ACK
    follows: the event is on the SYN/ACK and the session is followed from there on."""
    alerts, stats = _run(tmp_path, [
        c2s("S", ISN),
        s2c("RA", 0, ISN + 1),
        s2c("SA", SISN, ISN + 1),
        c2s("A", ISN + 1, SISN + 1),
        c2s("PA", ISN + 1, SISN + 1, REQ),
    ])
    assert (3, 1) in alerts
    assert (5, 2) in alerts
    assert stats["stream.suspected_rst_inject"] == 1


def test_server_rst_with_a_wrong_ack_is_not_watched(tmp_path: Path) -> None:
    alerts, _ = _run(tmp_path, [
        c2s("S", ISN),
        s2c("RA", 0, ISN + 77),
        s2c("SA", SISN, ISN + 1),
    ])
    assert [a for a in alerts if a[1] == 1] == []


def test_client_abort_of_its_syn_then_more_from_the_client(tmp_path: Path) -> None:
    """The RST a client stack sends to abort its own SYN (its ISN, window 0, acknowledging
    ISN+1), followed by more from the client: someone else sent that RST."""
    alerts, _ = _run(tmp_path, [
        c2s("S", ISN),
        c2s("RA", ISN, ISN + 1, window=0),
        c2s("S", ISN),
    ])
    assert [a for a in alerts if a[1] == 1] == [(3, 1)]


def test_session_from_a_syn_ack_needs_midstream(tmp_path: Path) -> None:
    """A session whose first packet is the SYN/ACK (the SYN was not seen) is followed only
    with stream.midstream (or async-oneside), as Suricata's TCP state machine: otherwise
    its bytes reach neither the stream nor the app layer."""
    pkts = [s2c("SA", SISN, ISN + 1), c2s("A", ISN + 1, SISN + 1), c2s("PA", ISN + 1, SISN + 1, REQ),
            s2c("A", SISN + 1, ISN + 1 + len(REQ))]
    _, stats = _run(tmp_path, pkts)
    assert stats.get("tcp.midstream_pickups", 0) == 0
    _, stats = _run(tmp_path, pkts, ("stream.midstream=true",))
    assert stats["tcp.midstream_pickups"] == 1


def test_unsigned_rst_of_a_session_picked_up_midstream_is_not_watched(tmp_path: Path) -> None:
    """A session picked up from the client's data (no SYN seen), the server's first packet a
    plain RST: no SYN was refused, so this is an ordinary RST and what the server sends
    next is no sign of injection."""
    alerts, stats = _run(tmp_path, [
        c2s("PA", ISN + 1, SISN + 1, REQ),
        s2c("RA", SISN + 1, ISN + 1 + len(REQ)),
        s2c("PA", SISN + 1, ISN + 1 + len(REQ), b"hello"),
    ], ("stream.midstream=true",))
    assert stats["tcp.midstream_pickups"] == 1
    assert [a for a in alerts if a[1] == 1] == []
    assert stats.get("stream.suspected_rst_inject", 0) == 0


FLOOD_RULES = (
    'alert tcp any any -> any any (msg:"syn flood"; stream-event:3whs_syn_flood; sid:3;)\n'
    'alert tcp any any -> any any (msg:"request"; flow:established,to_server; content:"GET /secret"; sid:2;)\n'
)


def _flood(tmp_path: Path, n_syns: int, answered: int) -> tuple[list[tuple[int, int]], dict]:
    """`n_syns` SYNs with different ISNs on one 4-tuple, then the server answers SYN
    number `answered` (0-based) and the client sends its request from that ISN."""
    isns = [ISN + i * 100_000 for i in range(n_syns)]
    pkts = [c2s("S", isn) for isn in isns]
    isn = isns[answered]
    pkts += [s2c("SA", SISN, isn + 1), c2s("A", isn + 1, SISN + 1), c2s("PA", isn + 1, SISN + 1, REQ),
             s2c("A", SISN + 1, isn + 1 + len(REQ))]
    for i, p in enumerate(pkts):
        p.time = 1_700_000_000 + i * 0.01          # all within one second
    pcap = tmp_path / "flood.pcap"
    wrpcap(str(pcap), pkts)
    rules = tmp_path / "t.rules"
    rules.write_text(FLOOD_RULES)
    out, sensor = replay_events(pcap, rules, overrides=("stream.reassembly.raw-inspection=arrival",))
    return alerts_of(out), sensor.stream.stats()


def test_many_different_syns_raise_the_syn_flood_event(tmp_path: Path) -> None:
    """Ten earlier SYNs are kept while the client's SYN is unanswered; every different SYN
    after that raises stream.3whs_syn_flood (Suricata's stream.max-syn-queued, 10)."""
    alerts, stats = _flood(tmp_path, 13, 12)
    assert [a for a in alerts if a[1] == 3] == [(12, 3), (13, 3)]
    assert stats["stream.3whs_syn_flood"] == 2
    assert (16, 2) in alerts              # the last SYN is followed: its request is seen


def test_syn_ack_picks_the_earlier_syn_it_answers(tmp_path: Path) -> None:
    """The server accepted the 5th of 8 SYNs: the session follows that one's numbers."""
    alerts, stats = _flood(tmp_path, 8, 4)
    assert [a for a in alerts if a[1] == 3] == []
    assert (11, 2) in alerts
