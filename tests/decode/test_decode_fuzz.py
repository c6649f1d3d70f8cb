"""Hostile input: random bytes and mutated valid frames never make the decoder raise, on every link type."""

from __future__ import annotations

from decode_frames import LINKTYPES, sample_frames
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netsentry.decode import Decoder
from netsentry.decode.events import ALL as EVENT_NAMES
from netsentry.decode.packet import MAX_EVENTS

SAMPLES = [(f, lt) for _, f, lt in sample_frames()]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_decoder = Decoder()
_checking = Decoder(checksums=True)


def _check(data: bytes, linktype: int) -> None:
    for d in (_decoder, _checking):
        pkt = d.decode(data, linktype)
        assert len(pkt.events or ()) <= MAX_EVENTS        # Suricata's per-packet cap (issue #14)
        for name in pkt.events or ():
            assert name in EVENT_NAMES, name     # only Suricata's (or our documented) names
        assert pkt.payload_off + pkt.payload_len <= len(data)
        assert pkt.payload_len >= 0


@FUZZ
@given(st.binary(max_size=200), st.sampled_from(LINKTYPES + [1, 1, 1]))
def test_random_bytes(data: bytes, linktype: int) -> None:
    _check(data, linktype)


@FUZZ
@given(st.sampled_from(SAMPLES), st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=6),
       st.integers(0, 400))
def test_mutated_frames(sample: tuple[bytes, int], flips: list[tuple[int, int]], cut: int) -> None:
    frame, linktype = sample
    buf = bytearray(frame)
    for pos, value in flips:
        if buf:
            buf[pos % len(buf)] = value
    mutated = bytes(buf[:max(1, len(buf) - cut % (len(buf) + 1))])
    _check(mutated, linktype)


@FUZZ
@given(st.sampled_from(SAMPLES), st.binary(max_size=40), st.integers(0, 100))
def test_spliced_frames(sample: tuple[bytes, int], junk: bytes, at: int) -> None:
    frame, linktype = sample
    at = at % (len(frame) + 1)
    _check(frame[:at] + junk + frame[at:], linktype)


def test_every_declared_event_name_is_known() -> None:
    """`ALL` is what the fuzz checks above accept: a decoder's names declared after it was
    computed (SCTP, ERSPAN, the UDP tunnels once were) made a valid event look foreign."""
    from netsentry.decode import events

    declared = {v for k, v in vars(events).items() if k.isupper() and isinstance(v, str)}
    assert declared <= EVENT_NAMES
    assert "sctp.pkt_too_small" in EVENT_NAMES
