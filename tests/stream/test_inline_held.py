"""Inline (IPS) mode: data held behind a hole is inspected on its own packet, as Suricata's
inline raw inspection does (an IPS must judge a packet when it arrives), and not again when
the flow ends. IDS mode keeps it for the flow's end (or until the hole is filled)."""

from __future__ import annotations

from typing import Any

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from netsentry.decode import Decoder
from netsentry.flow import FlowTable
from netsentry.stream import StreamEngine, StreamSettings

C, S = "192.0.2.1", "198.51.100.2"
MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}


def frame(seq: int, data: bytes = b"", flags: str = "PA", to_server: bool = True, ack: int = 0) -> bytes:
    src, dst, sp, dp = (C, S, 40000, 80) if to_server else (S, C, 80, 40000)
    return bytes(Ether(**MACS) / IP(src=src, dst=dst) / TCP(sport=sp, dport=dp, flags=flags, seq=seq, ack=ack)
                 / Raw(data))


def run(frames: list[bytes], inline: bool) -> tuple[StreamEngine, list[Any], Any]:
    eng = StreamEngine(StreamSettings.from_config({"stream": {"inline": inline}}))
    dec, flows = Decoder(), FlowTable({}, lambda f: None)
    pkts, flow = [], None
    for n, data in enumerate(frames, 1):
        pkt = dec.decode(data, 1)
        pkt.ts = 1_700_000_000 + n
        flow = flows.update(pkt)
        eng.update(pkt, flow)
        pkts.append(pkt)
    return eng, pkts, flow


# "Let " (101-104) never arrives: "Me " and "In!" wait behind the hole
FRAMES = [frame(100, flags="S"), frame(500, flags="SA", to_server=False, ack=101),
          frame(101 - 7, b"", flags="A", ack=501),
          frame(105, b"Me ", ack=501), frame(108, b"In!", ack=501), frame(200, b"far", ack=501)]


def test_inline_inspects_held_data_on_its_packet_with_the_run_before_it() -> None:
    eng, pkts, flow = run(FRAMES, inline=True)
    assert (pkts[3].stream_data, pkts[3].stream_old) == (b"Me ", 0)
    assert (pkts[4].stream_data, pkts[4].stream_old) == (b"Me In!", 3)    # "Me " seen before
    assert (pkts[5].stream_data, pkts[5].stream_old) == (b"far", 0)       # a run of its own
    assert all(p.stream_added for p in pkts[3:])
    assert eng.flush(flow) == []            # inspected already: nothing left for the flow's end


def test_ids_keeps_held_data_for_the_flows_end() -> None:
    eng, pkts, flow = run(FRAMES, inline=False)
    assert pkts[3].stream_data is None and pkts[4].stream_data is None
    ends = eng.flush(flow)
    assert [(p.stream_data, p.log_gap) for p in ends] == [(b"Me In!", 4), (b"far", 89)]


def test_an_acknowledged_hole_raises_the_gap_event_on_the_ack() -> None:
    frames = [frame(100, flags="S"), frame(500, flags="SA", to_server=False, ack=101),
              frame(101, b"head", ack=501), frame(111, b"after", ack=501),
              frame(501, flags="A", to_server=False, ack=116)]
    eng, pkts, _ = run(frames, inline=False)
    assert pkts[4].events == ["stream.reassembly_seq_gap"]
    assert not any(p.events for p in pkts[:4])
    assert eng.stats()["tcp.reassembly_gap"] == 1
