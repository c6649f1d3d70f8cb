"""Byte keywords: byte_test, byte_jump, byte_extract, byte_math and their shared variables."""

import pytest
from rules_helpers import payload_matches, rule

from netsentry.rules import RuleError, UnsupportedError

M = payload_matches


@pytest.mark.parametrize("opts,data,want", [
    ("byte_test:1,=,0x41,0;", b"A", True),
    ("byte_test:2,>,0x0100,0;", b"\x01\x01", True),
    ("byte_test:2,>,0x0100,0,little;", b"\x01\x01", True),
    ("byte_test:2,=,0x0201,0,little;", b"\x01\x02", True),
    ("byte_test:2,=,0x0201,0;", b"\x01\x02", False),
    ("byte_test:1,<,5,1;", b"\xff\x04", True),
    ("byte_test:1,!=,5,0;", b"\x05", False),
    ("byte_test:1,!<,5,0;", b"\x05", True),
    ("byte_test:1,&,0x80,0;", b"\x81", True),
    ("byte_test:1,&,0x80,0;", b"\x01", False),
    ("byte_test:1,^,0x01,0;", b"\x01", False),
    ("byte_test:1,>=,7,0;", b"\x07", True),
    ("byte_test:1,<=,6,0;", b"\x07", False),
    ("byte_test:3,=,123,0,string,dec;", b"123", True),
    ("byte_test:3,=,0x1f,0,string,hex;", b"01f", True),
    ("byte_test:3,=,8,0,string,oct;", b"010", True),
    ("byte_test:3,=,1,0,string,dec;", b"abc", False),          # not a number: no match
    ("byte_test:4,=,1,0;", b"\x00\x00\x01", False),            # past the end
    ("byte_test:1,=,65,214748364;", b"A" * 64, False),        # int32 offset (Suricata): far past the end
    ("byte_test:1,=,9,0,bitmask 0xf8;", b"\x48", True),        # 0x48 & 0xf8 = 0x48, >> 3 = 9
    ("byte_test:1,=,9,0,bitmask f8;", b"\x48", True),          # Suricata reads bitmasks as hex
])
def test_byte_test(opts, data, want):
    assert M(opts, data) is want


def test_byte_test_relative():
    assert M('content:"len="; byte_test:1,=,7,0,relative;', b"len=\x07")
    assert M('content:"len="; byte_test:1,=,7,1,relative;', b"len=x\x07")
    assert not M('content:"len="; byte_test:1,=,7,0,relative;', b"len=\x08 len=")


def test_byte_jump():
    # jump over a 2-byte length-prefixed field, then expect "END" right after it
    opts = 'byte_jump:2,0; content:"END"; within:3;'
    assert M(opts, b"\x00\x03abcEND")
    assert not M(opts, b"\x00\x02abcEND")
    assert M('byte_jump:1,0,multiplier 2; content:"X"; within:1;', b"\x02abcdX")
    assert M('byte_jump:1,0,align; content:"X"; within:1;', b"\x02abcdX")       # value 2 -> aligned to 4
    assert M('byte_jump:1,0,post_offset 1; content:"X"; within:1;', b"\x01abX")
    assert M('byte_jump:1,0,from_beginning; content:"X"; within:1;', b"\x02aX")
    assert M('byte_jump:0,0,from_end,post_offset -1; content:"Z"; within:1;', b"abcZ")
    assert M('byte_jump:2,0,string,dec; content:"X"; within:1;', b"03abcX")
    assert not M('byte_jump:1,0;', b"\x09ab")                                  # past the end
    # negative jumps are clamped to the buffer start (suricata-verify detect-bytejump-05)
    assert M('content:"abc"; byte_jump:0,0,relative,post_offset -10; content:"a"; within:1;', b"abc")


def test_byte_jump_to_the_end_of_the_buffer_matches():
    # Suricata 7.0.3+ (issue 4623): the cursor may land on the end itself, only beyond fails
    assert M('content:"B"; byte_jump:1,0,relative; isdataat:!1,relative;', b"AB\x02XY")
    assert not M('content:"B"; byte_jump:1,0,relative,post_offset 1;', b"AB\x02XY")
    assert not M('content:"B"; byte_jump:1,0,relative; content:"Y"; distance:0;', b"AB\x02XY")


def test_byte_jump_bitmask_shifts_like_suricata():
    # "13" & 0xfe = 12, shifted right by the mask's trailing zero -> 6 (detect-bytejump-06)
    data = b"Question?13When will the pandemic end?"
    opts = ('content:"Question?"; byte_jump:2,0,relative,string,from_end,post_offset -26,bitmask 0xfe; '
            'content:"ll the pandemic end"; distance:0;')
    assert M(opts, data)


def test_byte_extract_feeds_positions():
    # value 2 at byte 0 is the depth of the next content
    assert M('byte_extract:1,0,n; content:"ab"; offset:1; depth:n;', b"\x02ab")
    assert not M('byte_extract:1,0,n; content:"ab"; offset:1; depth:n;', b"\x01ab")
    # distance from a variable (suricata-verify byte-extract-01 test 4 style)
    assert M('byte_extract:1,3,d,string,dec; content:"10"; content:"34"; distance:d;',
             b"xx 210yy34")
    # offset from a variable
    assert M('byte_extract:1,0,o,string,dec; content:"Z"; offset:o; depth:1;', b"3abZ")
    assert not M('byte_extract:1,0,o,string,dec; content:"Z"; offset:o; depth:1;', b"2abZ")
    # within from a variable
    assert M('byte_extract:1,0,w; content:"k"; content:"v"; within:w;', b"\x02kxv")
    assert not M('byte_extract:1,0,w; content:"k"; content:"v"; within:w;', b"\x01kxv")
    # isdataat with a variable
    assert M('byte_extract:1,0,n; isdataat:n;', b"\x02ab") and not M('byte_extract:1,0,n; isdataat:n;', b"\x03ab")


def test_byte_extract_feeds_byte_test_and_moves_the_pointer():
    opts = 'byte_extract:1,0,v; byte_test:1,=,v,0,relative;'
    assert M(opts, b"\x05\x05") and not M(opts, b"\x05\x06")
    assert M('byte_extract:2,0,len,relative; content:"X"; within:1;', b"\x00\x01X")
    assert M('byte_extract:1,0,n,multiplier 3; byte_test:1,=,n,1;', b"\x02\x06")
    assert M('byte_extract:1,0,n,align 4; byte_test:1,=,n,1;', b"\x05\x08")


def test_byte_math():
    opts = 'byte_math:bytes 1,offset 0,oper +,rvalue 2,result r; byte_test:1,=,r,1;'
    assert M(opts, b"\x03\x05") and not M(opts, b"\x03\x06")
    assert M('byte_extract:1,0,x; byte_math:bytes 1,offset 1,oper *,rvalue x,result r; byte_test:1,=,r,2;',
             b"\x03\x04\x0c")
    assert not M('byte_math:bytes 1,offset 0,oper /,rvalue 0,result r;', b"\x03")    # division by zero
    assert M('byte_math:bytes 1,offset 0,oper <<,rvalue 1,result r,endian big; byte_test:1,=,r,1;', b"\x03\x06")


@pytest.mark.parametrize("opts,exc,reason", [
    ("byte_test:1,=,1,0,dce,big;", RuleError, "cannot be combined"),
    ("byte_test:1,~,1,0;", RuleError, "unknown operator"),
    ("byte_test:1,=,1,2147483648;", RuleError, "out of range"),     # beyond int32
    ("byte_test:9,=,1,0;", RuleError, "1..8 bytes"),
    ("byte_test:1,=,1;", RuleError, "at least 4"),
    ("byte_test:2,=,1,0,string,dec,big;", RuleError, "cannot be combined"),
    ("byte_test:1,=,nope,0;", RuleError, "unknown variable 'nope'"),
    ("byte_jump:1,0,from_beginning,from_end;", RuleError, "exclusive"),
    ("byte_extract:1,0,1bad;", RuleError, "invalid variable name"),
    ("byte_extract:1,0,v,align 3;", RuleError, "align must be 2 or 4"),
    ("byte_math:bytes 1,offset 0,oper +,rvalue 1;", RuleError, "missing result"),
    ("byte_math:bytes 1,offset 0,oper %,rvalue 1,result r;", RuleError, "unknown oper"),
])
def test_byte_errors(opts, exc, reason):
    with pytest.raises(exc, match=reason):
        rule(opts)


# --- 64-bit bounds (issue #14: an 8-byte shift count from the packet took 9 GB) -------------

@pytest.mark.parametrize("count,want", [
    (b"\x00\x00\x00\x00\x00\x00\x00\x3f", 1 << 63),                 # the widest defined shift
    (b"\x00\x00\x00\x00\x00\x00\x00\x40", 0),                       # 64: shifted out, Suricata gives 0
    (b"\x00\x00\x00\x01\x00\x00\x00\x00", 0),                       # 2**32: defined, not allocated
    (b"\xff\xff\xff\xff\xff\xff\xff\xff", 0),
])
def test_byte_math_shift_count_from_packet_is_bounded(count, want):
    # r is compared (byte_test) with the 8 bytes after the shifted one
    opts = 'byte_extract:8,0,n; byte_math:bytes 1,offset 8,oper <<,rvalue n,result r; byte_test:8,=,r,0,relative;'
    data = count + b"\x01" + want.to_bytes(8, "big")
    assert M(opts, data)
    assert not M(opts, count + b"\x01" + ((want + 1) & ((1 << 64) - 1)).to_bytes(8, "big"))


def test_byte_math_right_shift_and_wrapping_are_64_bit():
    assert M('byte_extract:8,0,n; byte_math:bytes 1,offset 8,oper >>,rvalue n,result r; '
             'byte_test:1,=,r,0,relative;', b"\x00" * 7 + b"\x50" + b"\xff" + b"\x00")
    # 0xff * 0xffffffff wraps nowhere in 64 bits; + then - stays in range
    assert M('byte_math:bytes 1,offset 0,oper -,rvalue 1,result r; byte_test:8,=,r,0,relative;',
             b"\x00" + b"\xff" * 8)                         # 0 - 1 wraps to 2**64 - 1


def test_byte_math_bitmask_applies_to_the_result():
    # (0x03 + 0x01) & 0x0c = 0x04, >> 2 = 1 (Suricata masks after the operation)
    assert M('byte_math:bytes 1,offset 0,oper +,rvalue 1,result r,bitmask 0x0c; byte_test:1,=,r,0,relative;',
             b"\x03\x01")


def test_byte_math_wide_binary_read_loads_but_never_matches():
    assert not M('byte_math:bytes 8,offset 0,oper +,rvalue 1,result r;', b"\x00" * 8)
    assert M('byte_math:bytes 10,offset 0,oper +,rvalue 1,result r,string dec; byte_test:1,=,2,0,relative;',
             b"0000000001\x02")


@pytest.mark.parametrize("opts,reason", [
    ("byte_math:bytes 11,offset 0,oper +,rvalue 1,result r,string dec;", "out of range"),
    ("byte_math:bytes 5,offset 0,oper <<,rvalue 1,result r;", "1..4"),
    ("byte_math:bytes 1,offset 0,oper +,rvalue 1,result r,bitmask 0x1ffffffff;", "32 bits"),
])
def test_byte_math_suricata_limits(opts, reason):
    with pytest.raises(RuleError, match=reason):
        rule(opts)


def test_string_extraction_past_64_bits_is_no_number():
    assert not M('byte_extract:21,0,n,string,dec; byte_test:1,=,1,0;', b"9" * 21)
    assert not M('byte_test:21,>,0,0,string,dec;', b"9" * 21)
    assert M('byte_test:20,=,18446744073709551615,0,string,dec;', b"18446744073709551615")


# --- nbytes from a variable (Suricata 7+) -------------------------------------------

@pytest.mark.parametrize("opts, data, want", [
    # byte_test reads as many bytes as the variable says (here 2: 0x0102 = 258)
    ("byte_extract:1,0,n; byte_test:n,=,258,1;", b"\x02\x01\x02", True),
    ("byte_extract:1,0,n; byte_test:n,=,1,1;", b"\x01\x01\x02", True),
    ("byte_extract:1,0,n; byte_test:n,=,0,1;", b"\x09" + bytes(12), False),      # 9 binary bytes: refused
    ("byte_extract:1,0,n; byte_test:n,=,123,1,string,dec;", b"\x03123", True),
    # byte_jump: the length byte says how wide the jump field is; 0 reads nothing
    ("byte_extract:1,0,n; byte_jump:n,1; content:\"X\"; within:1;", b"\x01\x02..X", True),
    ("byte_extract:1,0,n; byte_jump:n,1; content:\"X\"; within:1;", b"\x00X", True),
    ("byte_extract:1,0,n; byte_jump:n,1; content:\"X\"; within:1;", b"\x01\x02.X", False),   # past the end
    # byte_math bytes from a variable, 1..4 binary
    ("byte_extract:1,0,n; byte_math:bytes n, offset 1, oper +, rvalue 1, result r; byte_test:1,=,r,3;",
     b"\x02\x00\x05\x06", True),
    ("byte_extract:1,0,n; byte_math:bytes n, offset 1, oper +, rvalue 1, result r; byte_test:1,=,r,0;",
     b"\x05" + bytes(8), False),
])
def test_nbytes_from_a_variable(opts, data, want):
    assert M(opts, data) is want


def test_nbytes_variable_must_be_defined_first():
    with pytest.raises(RuleError, match="unknown variable 'n'"):
        rule("byte_test:n,=,1,0;")


def test_variable_distance_does_not_stretch_the_window():
    """Suricata >= 7.0.11 (suricata-verify bug-7390): a distance read from a variable
    is a plain distance; only offset/depth variables make the depth count from the offset."""
    data = b"Auth: 5f71ycy7uyGeg2KI81DPI4"
    opts = ('content:"5f71ycy"; byte_extract:1,0,n,string,relative; '
            'content:!"|38|"; distance:n; within:1; content:"|37|"; distance:-1; within:1; '
            'content:"|49|"; distance:n; within:1;')
    assert M(opts, data)
    # the same with the scalar the variable holds
    assert M(opts.replace("distance:n", "distance:7"), data)
    # and the negated content still refuses a "8" exactly there
    assert not M(opts, data.replace(b"KI8", b"K8I"))
