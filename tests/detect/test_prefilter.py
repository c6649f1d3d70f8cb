"""Prefilter backends against brute force: every pattern present is reported, nothing else."""

from __future__ import annotations

import random

import pytest

from netsentry.detect.prefilter import available_backends, build_prefilter

BACKENDS = available_backends()


def brute(patterns: list[tuple[bytes, bool]], buf: bytes) -> set[int]:
    low = buf.lower()
    return {i for i, (p, nc) in enumerate(patterns) if (p.lower() in low if nc else p in buf)}


def random_case(rng: random.Random, b: bytes) -> bytes:
    return bytes(c ^ 0x20 if 0x61 <= (c | 0x20) <= 0x7A and rng.random() < 0.5 else c for c in b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_random_payloads_match_brute_force(backend: str) -> None:
    rng = random.Random(7)
    alphabet = b"abcAB\x00\xff\xe9|"        # small alphabet: many overlaps and partial matches
    for _round in range(30):
        patterns = []
        for _ in range(rng.randint(1, 40)):
            p = bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 6)))
            patterns.append((p, rng.random() < 0.4))
        pf = build_prefilter(patterns, backend)
        for _ in range(40):
            buf = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
            if patterns and rng.random() < 0.5:   # plant a pattern, case-flipped when nocase
                p, nc = rng.choice(patterns)
                cut = rng.randint(0, len(buf))
                buf = buf[:cut] + (random_case(rng, p) if nc else p) + buf[cut:]
            found = pf.scan(buf)
            assert len(found) == len(set(found)), "a pattern reported twice"
            assert set(found) == brute(patterns, buf), (patterns, buf)


@pytest.mark.parametrize("backend", BACKENDS)
def test_nocase_folds_ascii_only(backend: str) -> None:
    pats = [(b"Admin", True), (b"Admin", False), (b"\xc9t\xe9", True)]
    pf = build_prefilter(pats, backend)
    assert set(pf.scan(b"xxADMINxx")) == {0}
    assert set(pf.scan(b"xxAdminxx")) == {0, 1}
    # 0xC9/0xE9 are not ASCII letters: nocase must not fold them into each other
    assert set(pf.scan(b"\xe9T\xe9")) == set()
    assert set(pf.scan(b"\xc9T\xe9")) == {2}


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_bytes_different_case_flags_and_overlaps(backend: str) -> None:
    pats = [(b"abcd", False), (b"bc", False), (b"ABCD", True), (b"cdx", False), (b"\x00\x01", False)]
    pf = build_prefilter(pats, backend)
    assert set(pf.scan(b"zabcdxz")) == {0, 1, 2, 3}
    assert set(pf.scan(b"zABCdz\x00\x01")) == {2, 4}
    assert pf.scan(b"") == []


def test_unknown_backend_is_an_error_naming_the_choices() -> None:
    with pytest.raises(ValueError, match="hyperscan, ahocorasick"):
        build_prefilter([(b"x", False)], "nope")
