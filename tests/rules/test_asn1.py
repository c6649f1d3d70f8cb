"""asn1: BER decoding of the payload and its overflow checks."""

from __future__ import annotations

import pytest
from rules_helpers import pkt, rule

from netsentry.rules import RuleError
from netsentry.rules.keywords.asn1 import parse_asn1


def tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + content


PERSON = tlv(0x30, tlv(0x1A, b"Alice") + tlv(0x02, b"\x2a") + tlv(0x30, tlv(0x1A, b"Bob" * 50)))  # 150-byte leaf
BAD_BITS = tlv(0x30, tlv(0x03, b"\x40\xff"))          # 64 unused bits claimed in a 2-byte BIT STRING
GOOD_BITS = tlv(0x30, tlv(0x03, b"\x04\xf0"))
DECIMAL_REAL = tlv(0x09, b"\x03" + b"1" * 300)        # decimal encoding (bits 8-7 zero), 301 bytes
BINARY_REAL = tlv(0x09, b"\x80" + b"\x01" * 300)


def hit(opts: str, payload: bytes) -> bool:
    return bool(rule(opts).match(pkt(payload), None))


@pytest.mark.parametrize("opts, payload, want", [
    ("asn1:oversize_length 149;", PERSON, True),          # the nested 150-byte string
    ("asn1:oversize_length 1000;", PERSON, False),
    ("asn1:bitstring_overflow;", BAD_BITS, True),
    ("asn1:bitstring_overflow;", GOOD_BITS, False),
    ("asn1:bitstring_overflow;", PERSON, False),
    ("asn1:double_overflow;", DECIMAL_REAL, True),
    ("asn1:double_overflow;", BINARY_REAL, False),
    ("asn1:bitstring_overflow, double_overflow;", DECIMAL_REAL, True),
    ("asn1:bitstring_overflow double_overflow;", BAD_BITS, True),      # blanks separate too
    ("asn1:bitstring_overflow, absolute_offset 4;", b"junk" + BAD_BITS, True),
    ("asn1:bitstring_overflow, absolute_offset 0;", b"junk" + BAD_BITS, False),   # 'junk' is no BER
    ("asn1:bitstring_overflow, absolute_offset 400;", BAD_BITS, False),           # past the end
    ('content:"HDR"; asn1:bitstring_overflow, relative_offset 0;', b"xxHDR" + BAD_BITS, True),
    ('content:"HDR"; asn1:bitstring_overflow, relative_offset 1;', b"xxHDR" + BAD_BITS, False),
    ('content:"HDR"; asn1:bitstring_overflow, relative_offset -3;', b"xHDR" + BAD_BITS, False),
])
def test_checks(opts: str, payload: bytes, want: bool) -> None:
    assert hit(opts, payload) is want


def test_second_frame_and_indefinite_length() -> None:
    assert hit("asn1:bitstring_overflow;", GOOD_BITS + BAD_BITS)            # frames follow each other
    indefinite = b"\x30\x80" + tlv(0x03, b"\x40\xff") + b"\x00\x00"
    assert hit("asn1:bitstring_overflow;", indefinite)


def test_too_many_frames_is_no_match() -> None:
    frames = tlv(0x05, b"") * 30 + BAD_BITS                                 # 31 top-level frames
    assert not hit("asn1:bitstring_overflow;", frames)
    assert hit("asn1:bitstring_overflow;", tlv(0x05, b"") * 29 + BAD_BITS)


def test_nesting_past_the_depth_limit_does_not_decode() -> None:
    leaf = tlv(0x03, b"\x40\xff")                      # a bad BIT STRING at the bottom
    deep = leaf
    for _ in range(29):
        deep = tlv(0x30, deep)
    assert hit("asn1:bitstring_overflow;", deep)         # 30 levels: decoded, the leaf is seen
    assert not hit("asn1:bitstring_overflow;", tlv(0x30, deep))     # 31: the frame fails


def test_truncated_object_does_not_decode() -> None:
    assert not hit("asn1:bitstring_overflow;", BAD_BITS[:-1])


def test_a_later_content_still_has_to_match() -> None:
    assert hit('asn1:bitstring_overflow; content:"tail";', BAD_BITS + b"tail")
    assert not hit('asn1:bitstring_overflow; content:"nope";', BAD_BITS + b"tail")


@pytest.mark.parametrize("value, msg", [
    ("", "needs a value"),
    ("oversize_length", "malformed"),
    ("oversize_length -1", "out of range"),
    ("absolute_offset 70000", "out of range"),
    ("relative_offset -70000", "out of range"),
    ("bitstring_overflow, bogus", "malformed"),
])
def test_bad_options(value: str, msg: str) -> None:
    with pytest.raises(RuleError, match=msg):
        rule(f"asn1:{value};" if value else "asn1:;")


def test_parse_sets_every_option() -> None:
    a = parse_asn1("bitstring_overflow,double_overflow, oversize_length 10, relative_offset -2")
    assert (a.bitstring, a.double, a.oversize, a.absolute, a.rel_offset) == (True, True, 10, None, -2)
