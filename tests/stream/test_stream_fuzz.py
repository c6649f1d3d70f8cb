"""Hostile input: mutated fragments and segments never crash the stream stage.

A malformed packet is a decoder event, never a traceback (DESIGN.md). Seeded,
bounded (a few thousand frames, well under a second or two), so CI stays fast.
"""

from __future__ import annotations

import random

from netsentry.decode import Decoder
from netsentry.flow import FlowTable
from netsentry.stream import Defragmenter, DefragSettings, StreamEngine, StreamSettings

import evasion_captures as ev


def seeds() -> list[bytes]:
    frames: list[bytes] = []
    for make in ev.SCENARIOS.values():
        pkts, _ = make()
        frames.extend(bytes(p) for p in pkts)
    return frames


def mutate(rng: random.Random, frame: bytes) -> bytes:
    b = bytearray(frame)
    for _ in range(rng.randint(1, 4)):
        kind = rng.random()
        if kind < 0.6 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif kind < 0.8:
            del b[rng.randrange(len(b) + 1):]
        else:
            b += bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    return bytes(b)


def test_mutated_frames_never_raise() -> None:
    rng = random.Random(11)
    base = seeds()
    dec = Decoder()
    defrag = Defragmenter(DefragSettings.from_config({"defrag": {"timeout": 5}}), dec.decode)
    flows = FlowTable({}, lambda f: None)
    stream = StreamEngine(StreamSettings.from_config({"stream": {"midstream": True}}))
    ts = 1_700_000_000.0
    for n in range(4000):
        frame = mutate(rng, rng.choice(base)) if n % 4 else rng.choice(base)
        ts += 0.01
        pkt = dec.decode(frame, 1)
        pkt.ts = ts
        pkt.pcap_cnt = n + 1
        while pkt is not None:
            if pkt.frag:
                pkt.reassembled = defrag.add(pkt)
            flow = flows.update(pkt)
            if flow is not None and pkt.proto == 6:
                stream.update(pkt, flow)
            pkt = pkt.reassembled
    defrag.flush()
    assert defrag.memuse == 0
    assert stream.memuse >= 0
