"""The fused fast path and the layered decoders must produce the same packet, field by field."""

from __future__ import annotations

import random

import pytest
from decode_frames import FIELDS, eth, sample_frames, tcp_syn
from scapy.all import ICMP, IP, TCP, UDP  # type: ignore[import-untyped]

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


def _frame_from_fields(et: int, vihl: int, tlen: int, fo: int, proto: int, l4: bytes, body: bytes,
                       extra: int) -> bytes:
    import struct
    ip = struct.pack("!BBHHHBBH4s4s", vihl, 0, tlen, 1, fo, 64, proto, 0, b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02")
    frame = b"\x66\x77\x88\x99\xaa\xbb\x00\x11\x22\x33\x44\x55" + struct.pack("!H", et) + ip + l4 + body
    return frame[:len(frame) - extra] if extra else frame


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@st.composite
def _l4_header(draw, proto: int) -> bytes:  # type: ignore[no-untyped-def]
    """Mostly well-formed transport headers with edge-case lengths, so the fast path is exercised."""
    import struct
    if proto == 6:
        doff = draw(st.sampled_from([0x50, 0x50, 0x50, 0x60, 0x80, 0xF0, 0x40, 0x00]))
        opts = draw(st.sampled_from([b"", b"", b"\x02\x04\x05\xb4", b"\x01\x03\x03\x07\x04\x02\x00\x00",
                                     b"\x08\x0a" + bytes(8) + b"\x01\x01", b"\x05\x0a" + bytes(8)]))
        opts += draw(st.binary(max_size=12))
        return struct.pack("!HHIIBBHHH", draw(st.integers(0, 65535)), 80, draw(st.integers(0, 2**32 - 1)),
                           draw(st.integers(0, 2**32 - 1)), doff, draw(st.integers(0, 255)), 1000, 0, 0) + opts
    if proto == 17:
        return struct.pack("!HHHH", 53, draw(st.integers(0, 65535)), draw(st.integers(0, 80)), 0)
    if proto == 1:
        return struct.pack("!BBHHH", draw(st.sampled_from([0, 8, 3, 11, 99])), draw(st.sampled_from([0, 0, 1])),
                           0, draw(st.integers(0, 65535)), draw(st.integers(0, 65535)))
    return draw(st.binary(max_size=24))


@st.composite
def _eth_ipv4_frames(draw) -> bytes:  # type: ignore[no-untyped-def]
    proto = draw(st.sampled_from([6, 6, 17, 17, 1, 47, 58]))
    l4 = draw(_l4_header(proto))
    body = draw(st.binary(max_size=40))
    if proto == 17 and draw(st.integers(0, 3)):     # a consistent UDP length most of the time
        l4 = l4[:4] + (8 + len(body)).to_bytes(2, "big") + l4[6:]
    if draw(st.integers(0, 9)) < 7:     # mostly a clean outer shape, so the transport varies
        tlen = 20 + len(l4) + len(body)
        return _frame_from_fields(0x0800, 0x45, tlen, draw(st.sampled_from([0, 0x4000])), proto, l4, body, 0)
    tlen = max(0, 20 + len(l4) + len(body) + draw(st.sampled_from([0, -1, -8, 4, -30])))
    return _frame_from_fields(draw(st.sampled_from([0x0800, 0x86DD, 0x8100])),
                              draw(st.sampled_from([0x45, 0x46, 0x44, 0x55])), tlen,
                              draw(st.sampled_from([0, 0x4000, 0x2000, 0x0001, 0x8000])), proto, l4, body,
                              draw(st.sampled_from([0, 1, 6, 20])))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=_eth_ipv4_frames())
def test_fast_and_layered_agree_on_random_headers(frame: bytes) -> None:
    fast_d, slow_d = Decoder(), Decoder()
    fast = fast_d.decode(frame, 1)
    slow = slow_d.decode_layered(frame, 1)
    assert _fields(fast) == _fields(slow)
    assert fast_d.stats() == slow_d.stats()


def test_random_header_generator_reaches_the_fast_path() -> None:
    # guards the test above against silently only exercising the layered path
    from hypothesis import find
    # the fast path counts its packets apart (compiled it returns plain `Packet`s, so
    # the type no longer tells)
    def took_fast_path(frame: bytes) -> bool:
        d = Decoder()
        d.decode(frame, 1)
        return any(d._fast_counts()[:3])

    frame = find(_eth_ipv4_frames(), took_fast_path)
    assert took_fast_path(frame)
