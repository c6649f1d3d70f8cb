"""Transform functions against Suricata's own behaviour (rust/src/detect/transforms)."""

from __future__ import annotations

import pytest

from netsentry.rules.keywords.applayer import TRANSFORMS


def t(name: str, data: bytes, arg: object = None) -> bytes:
    return TRANSFORMS[name](data, arg)


@pytest.mark.parametrize("data, want", [
    (b"a%41b", b"aAb"),
    (b"a+b%2B", b"a b+"),          # a decoded %2B stays '+'
    (b"a%zzb", b"a%zzb"),          # not an escape: written as it came
    (b"a%4zb", b"a%4zb"),
    (b"%%41", b"%%41"),            # the byte that broke an escape starts none
    (b"%+", b"%+"),                # ... and is not turned into a space either
    (b"%41%", b"A%"),
    (b"x%4", b"x%4"),
    (b"", b""),
])
def test_url_decode(data: bytes, want: bytes) -> None:
    assert t("url_decode", data) == want


def test_dotprefix_leaves_an_empty_buffer_empty() -> None:
    assert t("dotprefix", b"example.com") == b".example.com"
    assert t("dotprefix", b"") == b""


@pytest.mark.parametrize("data, want", [
    (b"Header1: Value1\nheader2:Value2\n", b"header1: Value1\nheader2:Value2\n"),   # Suricata's own test
    (b"Host: A\r\nUser-Agent: MiXed\r\n", b"host: A\r\nuser-agent: MiXed\r\n"),
    (b"NOCOLON\nX: Y:Z", b"nocolon\nx: Y:Z"),
])
def test_header_lowercase(data: bytes, want: bytes) -> None:
    assert t("header_lowercase", data) == want


@pytest.mark.parametrize("data, want", [
    (b" a \t b\r\n", b" a b\r"),       # a run keeps its first whitespace byte
    (b"a  b", b"a b"),
])
def test_compress_whitespace(data: bytes, want: bytes) -> None:
    assert t("compress_whitespace", data) == want


def test_strip_whitespace() -> None:
    assert t("strip_whitespace", b" a\tb\nc\x0bd\x0ce\rf ") == b"abcdef"


@pytest.mark.parametrize("text", ["1,0", "0, 0, truncate", "1,2,3", "x", "1,truncate,2"])
def test_subslice_bad_options(text: str) -> None:
    from netsentry.rules.errors import RuleError
    from netsentry.rules.keywords.applayer import _parse_subslice
    with pytest.raises(RuleError, match="subslice"):
        _parse_subslice(text)


@pytest.mark.parametrize("text, data, want", [
    ("2", b"abcdef", b"cdef"), ("-2", b"abcdef", b"ef"), ("1,-2", b"abcdef", b"bcd"),
    ("9,2", b"abcdef", b""), ("9,2,truncate", b"abcdef", b""), ("4,5", b"abcdef", b""),
    ("4,5,truncate", b"abcdef", b"ef"), ("-10,truncate", b"abcdef", b"abcdef"), ("3,-5", b"abcdef", b"bc"),
])
def test_subslice(text: str, data: bytes, want: bytes) -> None:
    from netsentry.rules.keywords.applayer import _parse_subslice
    assert t("subslice", data, _parse_subslice(text)) == want
