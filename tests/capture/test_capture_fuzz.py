"""Property tests: whatever the bytes, the reader yields well-formed records
or raises CaptureError, and it always terminates."""

from __future__ import annotations

import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capture_builders import block, epb, idb, pb, pcap_file, shb, spb
from netsentry.capture import CaptureError, open_capture

pytestmark = pytest.mark.slow

SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

MAGICS = [b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",
          b"\x34\xcd\xb2\xa1", b"\x0a\x0d\x0d\x0a"]

_DIR = tempfile.TemporaryDirectory(prefix="netsentry-capture-fuzz-")


@contextmanager
def time_limit(seconds: int):
    """Turn a hang into a test failure instead of a stuck suite."""
    def fail(signum, frame):
        raise AssertionError(f"reader did not terminate within {seconds}s")
    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def check_file(data: bytes) -> None:
    p = Path(_DIR.name) / "fuzz.cap"
    p.write_bytes(data)
    n = 0
    with time_limit(10):
        try:
            for rec in open_capture(p):
                n += 1
                ts, frame, wirelen, linktype = rec
                assert type(ts) is float and type(frame) is bytes
                assert type(wirelen) is int and type(linktype) is int
                assert len(frame) <= len(data)
                assert n <= len(data) // 12 + 1, "more records than the file can hold"
        except CaptureError as e:
            assert str(p) in str(e)


@SETTINGS
@given(st.binary(max_size=3000))
def test_random_bytes(data):
    check_file(data)


@SETTINGS
@given(st.sampled_from(MAGICS), st.binary(max_size=3000))
def test_random_bytes_behind_a_valid_magic(magic, rest):
    check_file(magic + rest)


frames = st.lists(st.binary(max_size=80), max_size=6)


@st.composite
def valid_pcap(draw):
    recs = [(draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 2**32 - 1)), f) for f in draw(frames)]
    return pcap_file(recs, order=draw(st.sampled_from("<>")), nano=draw(st.booleans()),
                     linktype=draw(st.integers(0, 2**32 - 1)), snaplen=draw(st.integers(0, 2**32 - 1)))


@st.composite
def valid_pcapng(draw):
    out = []
    for _section in range(draw(st.integers(1, 2))):
        order = draw(st.sampled_from("<>"))
        out.append(shb(order))
        n_if = draw(st.integers(0, 3))
        for _ in range(n_if):
            out.append(idb(draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 70000)),
                           tsresol=draw(st.none() | st.integers(0, 255)),
                           tsoffset=draw(st.none() | st.integers(-2**63, 2**63 - 1)), order=order))
        for f in draw(frames):
            kind = draw(st.sampled_from(["epb", "spb", "pb", "other"]))
            ifid = draw(st.integers(0, max(n_if, 1)))
            ticks = draw(st.integers(0, 2**64 - 1))
            if kind == "epb":
                out.append(epb(ifid, ticks, f, order=order))
            elif kind == "spb":
                out.append(spb(f, order=order))
            elif kind == "pb":
                out.append(pb(ifid, ticks, f, order=order))
            else:
                out.append(block(draw(st.sampled_from([4, 5, 0xA, 0xBAD, 0x40000BAD])), f, order=order))
    return b"".join(out)


@st.composite
def mutated(draw, base):
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(0, 8))):
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) if draw(st.booleans()) else bytes(data)


@SETTINGS
@given(mutated(valid_pcap()))
def test_mutated_and_truncated_pcap(data):
    check_file(data)


@SETTINGS
@given(mutated(valid_pcapng()))
def test_mutated_and_truncated_pcapng(data):
    check_file(data)


@SETTINGS
@given(valid_pcapng())
def test_valid_pcapng_reads_or_names_the_bad_interface(data):
    # Generated files may reference interfaces that do not exist (or have none):
    # the only acceptable failure is the unknown-interface error.
    p = Path(_DIR.name) / "valid.pcapng"
    p.write_bytes(data)
    try:
        for _ in open_capture(p):
            pass
    except CaptureError as e:
        assert "unknown interface id" in str(e) or "absurd" in str(e), str(e)
