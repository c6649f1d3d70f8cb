"""The prefilter's two Hyperscan bindings give the same candidates in the same order.

`detect/hsdirect.py` (compiled, libhs from libhyperscan-dev, C match callback) and
`prefilter.HyperscanPrefilter` over the `hyperscan` package (the pure path, and any
machine without libhs) must be interchangeable: the engine's candidate lists, and so
its alerts, may not depend on which one a process runs. Here both are built from the
same patterns in one process and every scan is compared, list for list.
"""

from __future__ import annotations

import pickle
import random

import pytest

from netsentry import _compiled
from netsentry.detect import prefilter

try:
    from netsentry.detect import hsdirect
except ImportError:
    hsdirect = None

try:
    import hyperscan
except ImportError:
    hyperscan = None

pytestmark = [
    pytest.mark.skipif(hsdirect is None, reason="detect/hsdirect.py is not built here (no libhs headers, "
                                                "no compiler, or NETSENTRY_PURE=1): only one binding to test"),
    pytest.mark.skipif(hyperscan is None, reason="the hyperscan package is not installed"),
]


def both(patterns: list[tuple[bytes, bool]]):
    return hsdirect.HyperscanPrefilter(patterns), prefilter.HyperscanPrefilter(patterns)


def brute(patterns: list[tuple[bytes, bool]], buf: bytes) -> list[int]:
    low = buf.lower()
    return [i for i, (p, nc) in enumerate(patterns) if (p.lower() in low if nc else p in buf)]


def same(direct, package, buf: bytes) -> list[int]:
    got = direct.scan(buf)
    assert got == package.scan(buf), buf
    return got


def test_the_compiled_path_uses_the_direct_binding() -> None:
    assert prefilter.build_prefilter([(b"x", False)], "hyperscan").__class__ is hsdirect.HyperscanPrefilter
    assert prefilter.library().startswith("libhs ")
    assert not _compiled.PURE


def test_nocase_and_exact_case_of_the_same_bytes() -> None:
    pats = [(b"Admin", True), (b"Admin", False), (b"ADMIN", False), (b"\xc9t\xe9", True)]
    d, p = both(pats)
    assert same(d, p, b"xxADMINxx") == [0, 2]
    assert same(d, p, b"xxAdminxx") == [0, 1]
    assert same(d, p, b"xxaDMINxx") == [0]
    assert same(d, p, b"\xe9T\xe9") == []           # 0xC9/0xE9 are not ASCII letters
    assert same(d, p, b"\xc9T\xe9") == [3]


def test_offsets_start_end_and_nul_bytes() -> None:
    # a NUL in a group: the package compiles \xHH regexes, libhs direct the literal bytes
    pats = [(b"\x00\x01", False), (b"GET ", False), (b"\r\n\r\n", False), (b"\xff", False)]
    d, p = both(pats)
    assert same(d, p, b"GET /") == [1]                 # at offset 0
    assert same(d, p, b"x\r\n\r\n") == [2]             # ending at the last byte
    assert same(d, p, b"\x00\x01GET \xff") == [0, 1, 3]
    assert same(d, p, b"\x00") == []                   # a prefix of a pattern, cut by the end
    assert same(d, p, b"") == []


def test_overlapping_patterns_each_reported_once_ascending() -> None:
    pats = [(b"abcd", False), (b"bc", False), (b"ABCD", True), (b"cdx", False), (b"b", False), (b"abcdabcd", False)]
    d, p = both(pats)
    # the short ones end first and repeat: still once each, in id order
    assert same(d, p, b"zabcdabcdxz") == [0, 1, 2, 3, 4, 5]
    assert same(d, p, b"bbbbbb") == [4]
    assert same(d, p, b"ABCDX") == [2]


def test_many_patterns_random_payloads_against_brute_force() -> None:
    rng = random.Random(12)
    alphabet = b"abcAB\x00\xff\xe9|"
    for _round in range(12):
        patterns = list(dict.fromkeys(
            (bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 7))), rng.random() < 0.4)
            for _ in range(rng.randint(50, 1500))))
        d, p = both(patterns)
        assert d.size == p.size == len(patterns)
        for _ in range(40):
            buf = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 400)))
            assert same(d, p, buf) == brute(patterns, buf)


def test_buffers_other_than_bytes() -> None:
    d, p = both([(b"abc", False), (b"Q", True)])
    for buf in (bytearray(b"xxabcq"), memoryview(b"xxabcq")):
        assert d.scan(buf) == [0, 1] == p.scan(bytes(buf))


def test_pickle_round_trip_keeps_the_database() -> None:
    pats = [(b"one", False), (b"TWO", True), (b"\x00three", False)]
    d = hsdirect.HyperscanPrefilter(pats)
    e = pickle.loads(pickle.dumps(d))
    assert type(e) is hsdirect.HyperscanPrefilter and e.size == 3
    assert e.scan(b"xx one two \x00three") == d.scan(b"xx one two \x00three") == [0, 1, 2]


def test_a_database_serialised_by_the_package_library_is_refused() -> None:
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    db.compile(expressions=[b"abc"], ids=[0], elements=1, flags=[hyperscan.HS_FLAG_SINGLEMATCH], literal=True)
    blob = hyperscan.dumpb(db)
    own = hsdirect.HyperscanPrefilter([(b"abc", False)]).__reduce__()[1][0]
    if hsdirect.library().split()[1] in db.info().decode():
        pytest.skip("the package bundles the same libhs version: its bytes are this library's")
    with pytest.raises(ValueError, match="not loadable here"):
        hsdirect._load(blob, 1)
    # and the other way: the package's library refuses libhs direct's bytes
    with pytest.raises(hyperscan.error):
        hyperscan.loadb(own, hyperscan.HS_MODE_BLOCK)


def test_damaged_serialised_database_is_refused() -> None:
    own = bytearray(hsdirect.HyperscanPrefilter([(b"abc", False), (b"xyz", True)]).__reduce__()[1][0])
    with pytest.raises(ValueError, match="not loadable here"):
        hsdirect._load(bytes(own[: len(own) // 2]), 2)
    own[0] ^= 0xFF                                       # the magic number
    with pytest.raises(ValueError, match="not loadable here"):
        hsdirect._load(bytes(own), 2)


def test_compile_errors_name_the_pattern() -> None:
    # an empty literal: refused before libhs (whose literal compiler crashes on it)
    with pytest.raises(ValueError, match=r"pattern 1 \(b''\)"):
        hsdirect.HyperscanPrefilter([(b"a", False), (b"", False)])
    with pytest.raises(Exception, match="empty"):
        prefilter.HyperscanPrefilter([(b"a", False), (b"", False)])
    # over libhs's literal length limit: its message, the pattern cut short
    with pytest.raises(ValueError, match=r"pattern 0 \(b'aaaa.*'\.\.\.\): Pattern length exceeds limit"):
        hsdirect.HyperscanPrefilter([(b"a" * 20000, False)])
