"""Transaction buffers that grow (bodies): the prefilter scans only the appended bytes.

`_scan_grown` must find exactly what a scan of the whole buffer finds, whatever the
growth steps, including a pattern that crosses the old end of the buffer, and must
fall back to a whole scan when the buffer did not grow by appending.
"""

from __future__ import annotations

import random

import pytest

from netsentry.detect.prefilter import available_backends, build_prefilter
from netsentry.detect.txdetect import _BufferPrefilter, _scan_grown

PATTERNS = [(b"<script", True), (b".length", True), (b"abcabc", False), (b"x", False),
            (b"needle-in-a-haystack", False)]


def prefilter(backend: str) -> _BufferPrefilter:
    db = build_prefilter(PATTERNS, backend)
    return _BufferPrefilter("file.data", (), db, [[i] for i in range(len(PATTERNS))],
                            max(len(p) for p, _ in PATTERNS))


@pytest.mark.parametrize("backend", available_backends())
def test_grown_scan_equals_whole_scan(backend: str) -> None:
    pf = prefilter(backend)
    rng = random.Random(5)
    pieces = [b"<SCRIPT", b".len", b"gth", b"abc", b"abc", b"needle-in-a-", b"haystack", b"zz", b"x"]
    for _ in range(200):
        cache: dict = {}
        buf = b""
        for _step in range(rng.randrange(1, 12)):
            cut = rng.choice(pieces)
            k = rng.randrange(len(cut) + 1)
            for part in (cut[:k], cut[k:]) if rng.random() < 0.5 else (cut,):
                buf += part
                got = _scan_grown(cache, pf, True, buf)
                assert got == set(pf.db.scan(buf)), buf


@pytest.mark.parametrize("backend", available_backends())
def test_a_pattern_across_the_old_end_is_found(backend: str) -> None:
    pf = prefilter(backend)
    cache: dict = {}
    assert _scan_grown(cache, pf, True, b"....needle-in-a-") == set()
    assert _scan_grown(cache, pf, True, b"....needle-in-a-haystack") == {4}
    # the other direction of the same transaction keeps its own state
    assert _scan_grown(cache, pf, False, b"haystack") == set()


@pytest.mark.parametrize("backend", available_backends())
def test_a_buffer_changed_in_place_is_scanned_whole(backend: str) -> None:
    pf = prefilter(backend)
    cache: dict = {}
    assert _scan_grown(cache, pf, True, b"abcabc <script") == {0, 2}
    # not an extension of what was scanned: hits of the old content must not survive
    assert _scan_grown(cache, pf, True, b"zzzzzz zzzzzzz..") == set()
    assert _scan_grown(cache, pf, True, b"zzz") == set()
