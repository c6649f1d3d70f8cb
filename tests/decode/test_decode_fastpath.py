"""The fused fast path and the layered decoders must produce the same packet, field by field."""

from __future__ import annotations

import random

import pytest
from decode_frames import FIELDS, eth, sample_frames, tcp_syn
from scapy.all import ICMP, IP, TCP, UDP, raw  # type: ignore[import-untyped]

from netsentry.decode import Decoder


def _fields(pkt) -> dict:  # type: ignore[no-untyped-def]
    return {name: getattr(pkt, name) for name in FIELDS}


def _frames() -> list[bytes]:
    frames = [f for _, f, lt in sample_frames() if lt == 1]
    rng = random.Random(5)
    for _ in range(40):
        frames.append(eth(IP(src=f"10.0.0.{rng.randint(1, 254)}", dst="192.168.1.1", ttl=rng.randint(1, 255),
                             tos=rng.randint(0, 255), id=rng.randint(0, 65535), flags=rng.choice(["", "DF"]))
                          / TCP(sport=rng.randint(1, 65535), dport=80, seq=rng.getrandbits(32),
                                ack=rng.getrandbits(32), flags=rng.choice(["S", "SA", "A", "PA", "FA", "R"]),
                                window=rng.randint(0, 65535))
                          / bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 60)))))
    frames.append(eth(IP(src="10.9.8.7", dst="10.7.8.9") / tcp_syn()))
    frames.append(eth(IP(src="10.9.8.7", dst="10.7.8.9") / UDP(sport=53, dport=3333) / b"answer"))
    frames.append(eth(IP(src="10.9.8.7", dst="10.7.8.9") / ICMP(type=8, id=1, seq=2) / (b"p" * 40)))
    frames.append(eth(IP(src="10.9.8.7", dst="10.7.8.9") / ICMP(type=0, id=1, seq=2) / (b"p" * 40)) + b"\x00" * 6)   # Ethernet padding
    frames.append(eth(IP(src="10.9.8.7", dst="10.7.8.9") / UDP(sport=1, dport=2) / (b"z" * 30)))
    return frames


@pytest.mark.parametrize("frame", _frames())
def test_fast_and_layered_agree(frame: bytes) -> None:
    d = Decoder()
    fast = d.decode(frame, 1)
    slow = d.decode_layered(frame, 1)
    assert _fields(fast) == _fields(slow)


def test_fast_path_is_taken_for_common_shapes() -> None:
    # the stats of both paths agree too: decoder.pkts counts each once
    d = Decoder()
    frames = _frames()
    for f in frames:
        d.decode(f, 1)
    ref = Decoder()
    for f in frames:
        ref.decode_layered(f, 1)
    assert d.stats() == ref.stats()


def test_later_stage_can_override_lazy_fields() -> None:
    pkt = Decoder().decode(eth(IP(src="10.9.8.7", dst="10.7.8.9", ttl=9) / TCP() / b"x"), 1)
    assert pkt.ttl == 9
    pkt.ttl = 200
    assert pkt.ttl == 200
    assert raw(IP(ttl=9))[8] == 9


def test_copy_keeps_lazy_header_fields_when_data_is_replaced() -> None:
    import copy
    import pickle
    pkt = Decoder().decode(eth(IP(src="10.9.8.7", dst="10.7.8.9", ttl=9, tos=4, id=777, flags="DF")
                               / TCP(window=4321) / b"x"), 1)
    expected = (9, 4, 777, 2, 4321)
    for dup in (copy.copy(pkt), copy.deepcopy(pkt), pickle.loads(pickle.dumps(pkt))):
        dup.data = b"stream bytes"     # what detect's stream inspection does to its copy
        assert (dup.ttl, dup.tos, dup.ip_id, dup.ip_flags, dup.win) == expected
        assert (dup.sp, dup.dp, dup.proto, dup.ip_off) == (pkt.sp, pkt.dp, 6, 14)
