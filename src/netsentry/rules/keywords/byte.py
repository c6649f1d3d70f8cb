"""Byte keywords: byte_test, byte_jump, byte_extract, byte_math.

They read a number from the buffer (binary big/little endian, or ASCII
`string` in dec/hex/oct), optionally masked (`bitmask`, shifted right by the
mask's trailing zeros as Suricata does), and compare it (byte_test), move the
inspection pointer (byte_jump), or store it in a rule variable for later
keywords (byte_extract, byte_math). `relative` counts from the end of the
previous match. `dce` (with `dcerpc.stub_data`) reads binary numbers in the byte order
of the call's PDUs (applayer/dcerpc.py: the stub buffer says it), big-endian elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable

from netsentry.rules.errors import RuleError, UnsupportedError
from netsentry.rules.inspect import Det, Item, Value
from netsentry.rules.registry import RuleBuilder, keyword, parse_int, unquote

_BASES = {"dec": 10, "hex": 16, "oct": 8}
_DIGITS = {10: set(b"0123456789"), 16: set(b"0123456789abcdefABCDEF"), 8: set(b"01234567")}
U64 = (1 << 64) - 1


class _Reader:
    """How to read the number: nbytes, endianness or string base, bitmask."""

    __slots__ = ("nbytes", "little", "base", "mask", "shift")

    def __init__(self, nbytes: int, little: bool | None, base: int | None, mask: int | None) -> None:
        self.nbytes = nbytes
        self.little = little
        self.base = base
        self.mask = mask
        self.shift = (mask & -mask).bit_length() - 1 if mask else 0

    def read(self, buf: bytes, blen: int, pos: int, nbytes: int | None = None) -> int | None:
        """The number at `pos` (`nbytes` long, default the reader's own), or None when it
        is outside the buffer or not a number (every byte_* keyword fails the match then)."""
        n = self.nbytes if nbytes is None else nbytes
        if pos < 0 or n > blen - pos:
            return None
        # nbytes 0 with `string`: the rest of the buffer (ET Open's
        # `http.content_len; byte_test:0,=,0,0,string,dec;`)
        raw = buf[pos:pos + n] if n or self.base is None else buf[pos:pos + 23]
        if self.base is None:
            little = self.little
            if little is None:          # `dce`: the DCERPC stub buffer's own byte order
                from netsentry.applayer.dcerpc import dce_little
                little = dce_little(buf)
            val = int.from_bytes(raw, "little" if little else "big")
        else:
            digits = _DIGITS[self.base]
            i = 0
            while i < len(raw) and raw[i] in b" \t":
                i += 1
            j = i
            while j < len(raw) and raw[j] in digits:
                j += 1
            if j == i:
                return None
            val = int(raw[i:j], self.base)
            if val > U64:
                return None         # Suricata's string extraction fails past 64 bits
        if self.mask:
            val = (val & self.mask) >> self.shift
        return val


def _common_options(b: RuleBuilder, opts: list[str], what: str, extra: dict[str, Callable[[str], None]],
                    nbytes: int) -> tuple[bool, bool | None, int | None, int | None]:
    """Options shared by byte_*: relative, big/little, string[,base], bitmask, dce."""
    relative = little = False
    endian_set = dce = False
    base: int | None = None
    mask: int | None = None
    i = 0
    while i < len(opts):
        o = opts[i]
        word, _, rest = o.partition(" ")
        if o == "relative":
            relative = True
        elif o in ("big", "little"):
            if endian_set:
                raise RuleError(f"{what}: endianness given twice")
            endian_set, little = True, o == "little"
        elif o == "string":
            base = 10
            if i + 1 < len(opts) and opts[i + 1] in _BASES:
                base = _BASES[opts[i + 1]]
                i += 1
        elif o in _BASES:
            base = _BASES[o]
        elif word == "bitmask":
            mask = _hex(rest, f"{what} bitmask")
        elif o == "dce":
            dce = True
        elif word in extra:
            extra[word](rest.strip())
        elif o in extra:
            extra[o]("")
        else:
            raise RuleError(f"{what}: unknown option '{o}'")
        i += 1
    if base is not None and endian_set:
        raise RuleError(f"{what}: 'string' cannot be combined with big/little")
    if dce:
        if endian_set or base is not None:
            raise RuleError(f"{what}: 'dce' cannot be combined with big/little or string")
        return relative, None, base, mask
    if base is None and not (1 if what != "byte_jump" else 0) <= nbytes <= 8:
        raise RuleError(f"{what}: binary extraction takes 1..8 bytes, got {nbytes}")
    if base is not None and not (0 if what == "byte_test" else 1) <= nbytes <= 23:
        raise RuleError(f"{what}: string extraction takes 1..23 bytes, got {nbytes}")
    return relative, little, base, mask


def _hex(text: str, what: str) -> int:
    """Suricata reads bitmasks in base 16, with or without 0x."""
    t = text.strip().lower()
    try:
        v = int(t[2:] if t.startswith("0x") else t, 16)
    except ValueError:
        raise RuleError(f"{what}: invalid hex number '{text.strip()}'") from None
    if not 0 < v <= U64:
        raise RuleError(f"{what}: {text.strip()} out of range")
    return v


def _split(arg: str | None, what: str, minimum: int) -> list[str]:
    parts = [p.strip() for p in unquote(arg, what).split(",")]
    if len(parts) < minimum or any(not p for p in parts):
        raise RuleError(f"{what}: expected at least {minimum} comma-separated values, got '{arg}'")
    return parts


def _start(det: Det, relative: bool, offset: int) -> int:
    return (det.buffer_offset if relative else 0) + offset


def _nbytes_arg(b: RuleBuilder, text: str, what: str, hi: int) -> tuple[int, Value | None]:
    """nbytes as a number, or (Suricata 7+) the name of a byte_extract/byte_math variable,
    whose value is checked against the same limits on every use (out of range: no match)."""
    t = text.strip()
    if t and (t[0].isalpha() or t[0] == "_"):
        return 1, b.value(t, what)
    # byte_jump reads nothing with 0; byte_test 0 with `string` reads the rest of the buffer
    return parse_int(t, what, 0 if ("jump" in what or "test" in what) else 1, hi), None


def _var_nbytes(nvar: Value, det: Det, string: bool, binary_max: int = 8, string_max: int = 23,
                lo: int = 1) -> int | None:
    """A variable nbytes for this run, None when Suricata's limits refuse it (byte_jump
    accepts 0: it then reads nothing and jumps by post_offset/offset alone)."""
    n = nvar.get(det)
    return n if lo <= n <= (string_max if string else binary_max) else None


# --- byte_test ---------------------------------------------------------------------

_TEST_OPS: dict[str, Callable[[int, int], bool]] = {
    "<": lambda a, b: a < b, ">": lambda a, b: a > b, "=": lambda a, b: a == b,
    "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b,
    "&": lambda a, b: (a & b) != 0, "^": lambda a, b: (a ^ b) != 0,
}


class ByteTest(Item):
    def __init__(self, reader: _Reader, op: Callable[[int, int], bool], negated: bool, value: Value,
                 offset: Value, relative: bool, nvar: Value | None = None) -> None:
        self.reader, self.op, self.negated = reader, op, negated
        self.value, self.offset, self.relative = value, offset, relative
        self.nvar = nvar

    def inspect(self, buf: bytes, blen: int, det: Det) -> bool:
        pos = _start(det, self.relative, self.offset.get(det))
        n = None
        if self.nvar is not None:
            n = _var_nbytes(self.nvar, det, self.reader.base is not None)
            if n is None:
                return False
        val = self.reader.read(buf, blen, pos, n)
        if val is None or self.op(val, self.value.get(det)) == self.negated:
            return False
        nxt = self.next
        return True if nxt is None else nxt(buf, blen, det)


@keyword("byte_test", help="byte_test:nbytes,[!]op,value,offset[,relative][,big|little][,string,dec|hex|oct][,bitmask N]")
def byte_test(b: RuleBuilder, arg: str | None) -> None:
    b.require_packet_buffer("byte_test")
    parts = _split(arg, "byte_test", 4)
    nbytes, nvar = _nbytes_arg(b, parts[0], "byte_test nbytes", 23)
    op = parts[1].replace(" ", "")
    negated = op.startswith("!")
    if negated:
        op = op[1:] or "="
    if op == "!=":
        negated, op = True, "="
    if op not in _TEST_OPS:
        raise RuleError(f"byte_test: unknown operator '{parts[1]}'")
    value = b.value(parts[2], "byte_test value", 0, U64)
    # Suricata parses byte_test's offset as an int32 (detect-bytetest.c StringParseInt32),
    # unlike byte_jump's and byte_math's +-65535: a far offset is a test that never matches
    offset = b.value(parts[3], "byte_test offset", -(1 << 31), (1 << 31) - 1)
    relative, little, base, mask = _common_options(b, parts[4:], "byte_test", {}, nbytes)
    b.add_item(ByteTest(_Reader(nbytes, little, base, mask), _TEST_OPS[op], negated, value, offset, relative,
                        nvar))


# --- byte_jump ----------------------------------------------------------------------

class ByteJump(Item):
    def __init__(self, reader: _Reader, offset: Value, relative: bool, multiplier: int, align: bool,
                 origin: str, post_offset: int, nvar: Value | None = None) -> None:
        self.reader, self.offset, self.relative = reader, offset, relative
        self.multiplier, self.align, self.origin, self.post_offset = multiplier, align, origin, post_offset
        self.nvar = nvar

    def inspect(self, buf: bytes, blen: int, det: Det) -> bool:
        pos = _start(det, self.relative, self.offset.get(det))
        n: int | None = self.reader.nbytes
        if self.nvar is not None:
            n = _var_nbytes(self.nvar, det, self.reader.base is not None, lo=0)
            if n is None:
                return False
        val = self.reader.read(buf, blen, pos, n)
        if val is None:
            return False
        val *= self.multiplier
        if self.align and val % 4:
            val += 4 - val % 4
        if self.origin == "beginning":
            jump = val
        elif self.origin == "end":
            jump = blen + val
        else:
            jump = pos + n + val
        jump += self.post_offset
        # Suricata clamps a jump before the buffer start to the start
        # (suricata-verify detect-bytejump-05) and fails beyond the end; a jump to the
        # end itself is a match, whose relative cursor then sits at the end (Suricata
        # 7.0.3+, issue 4623: `isdataat:!1,relative` after it matches).
        if jump < 0:
            jump = 0
        elif jump > blen:
            return False
        det.buffer_offset = jump
        nxt = self.next
        return True if nxt is None else nxt(buf, blen, det)


@keyword("byte_jump", help="byte_jump:nbytes,offset[,relative][,multiplier N][,big|little][,string,base][,align][,from_beginning|from_end][,post_offset N][,bitmask N]")
def byte_jump(b: RuleBuilder, arg: str | None) -> None:
    b.require_packet_buffer("byte_jump")
    parts = _split(arg, "byte_jump", 2)
    nbytes, nvar = _nbytes_arg(b, parts[0], "byte_jump nbytes", 23)
    offset = b.value(parts[1], "byte_jump offset", -65535, 65535)
    opt = {"multiplier": 1, "align": False, "origin": "", "post_offset": 0}

    def set_origin(o: str) -> Callable[[str], None]:
        def f(_: str) -> None:
            if opt["origin"]:
                raise RuleError("byte_jump: from_beginning and from_end are exclusive")
            opt["origin"] = o
        return f

    extra = {
        "multiplier": lambda v: opt.__setitem__("multiplier", parse_int(v, "byte_jump multiplier", 1, 65535)),
        "align": lambda v: opt.__setitem__("align", True),
        "from_beginning": set_origin("beginning"),
        "from_end": set_origin("end"),
        "post_offset": lambda v: opt.__setitem__("post_offset", parse_int(v, "byte_jump post_offset", -65535, 65535)),
    }
    relative, little, base, mask = _common_options(b, parts[2:], "byte_jump", extra, nbytes)
    b.add_item(ByteJump(_Reader(nbytes, little, base, mask), offset, relative, int(opt["multiplier"]),
                        bool(opt["align"]), str(opt["origin"]), int(opt["post_offset"]), nvar))


# --- byte_extract ---------------------------------------------------------------------

class ByteExtract(Item):
    def __init__(self, reader: _Reader, offset: int, relative: bool, slot: int, multiplier: int,
                 align: int) -> None:
        self.reader, self.offset, self.relative = reader, offset, relative
        self.slot, self.multiplier, self.align = slot, multiplier, align

    def inspect(self, buf: bytes, blen: int, det: Det) -> bool:
        pos = _start(det, self.relative, self.offset)
        val = self.reader.read(buf, blen, pos)
        if val is None:
            return False
        val = (val * self.multiplier) & U64
        if self.align and val % self.align:
            val = (val + self.align - val % self.align) & U64
        det.vars[self.slot] = val        # type: ignore[index]
        det.buffer_offset = pos + self.reader.nbytes
        nxt = self.next
        return True if nxt is None else nxt(buf, blen, det)


@keyword("byte_extract", help="byte_extract:nbytes,offset,name[,relative][,multiplier N][,big|little][,string[,base]][,align 2|4][,bitmask N]")
def byte_extract(b: RuleBuilder, arg: str | None) -> None:
    b.require_packet_buffer("byte_extract")
    parts = _split(arg, "byte_extract", 3)
    nbytes = parse_int(parts[0], "byte_extract nbytes", 1, 23)
    offset = parse_int(parts[1], "byte_extract offset", -65535, 65535)
    opt = {"multiplier": 1, "align": 0}

    def align(v: str) -> None:
        a = parse_int(v, "byte_extract align", 2, 4)
        if a not in (2, 4):
            raise RuleError(f"byte_extract: align must be 2 or 4, got {a}")
        opt["align"] = a

    extra = {
        "multiplier": lambda v: opt.__setitem__("multiplier", parse_int(v, "byte_extract multiplier", 1, 65535)),
        "align": align,
    }
    relative, little, base, mask = _common_options(b, parts[3:], "byte_extract", extra, nbytes)
    slot = b.define_variable(parts[2], "byte_extract")
    b.add_item(ByteExtract(_Reader(nbytes, little, base, mask), offset, relative, slot,
                           opt["multiplier"], opt["align"]))


# --- byte_math ----------------------------------------------------------------------------

def _shl(a: int, b: int) -> int:
    """64-bit left shift; a count of 64 or more gives 0 (Suricata), never a huge int."""
    return (a << b) & U64 if b < 64 else 0


def _shr(a: int, b: int) -> int:
    return a >> b if b < 64 else 0


# Every result is a uint64, as in Suricata's DetectByteMathDoMatch: +, -, * wrap.
_MATH_OPS: dict[str, Callable[[int, int], int | None]] = {
    "+": lambda a, b: (a + b) & U64,
    "-": lambda a, b: (a - b) & U64,
    "*": lambda a, b: (a * b) & U64,
    "/": lambda a, b: a // b if b else None,
    "<<": _shl,
    ">>": _shr,
}
MATH_MAX_STRING_BYTES = 10      # Suricata: byte_math reads at most 10 digits ...
MATH_MAX_BINARY_BYTES = 4       # ... or 4 binary bytes (more loads, but never matches)
MATH_MASK_MAX = (1 << 32) - 1   # its bitmask is a u32


class ByteMath(Item):
    """Read, operate, then mask (Suricata masks the result, not the input)."""

    def __init__(self, reader: _Reader, offset: int, relative: bool, op: Callable[[int, int], int | None],
                 rvalue: Value, slot: int, mask: int | None, nvar: Value | None = None) -> None:
        self.reader, self.offset, self.relative = reader, offset, relative
        self.op, self.rvalue, self.slot = op, rvalue, slot
        self.nvar = nvar
        self.mask = mask
        self.shift = (mask & -mask).bit_length() - 1 if mask else 0
        limit = MATH_MAX_BINARY_BYTES if reader.base is None else MATH_MAX_STRING_BYTES
        self.never = reader.nbytes > limit

    def inspect(self, buf: bytes, blen: int, det: Det) -> bool:
        if self.never:
            return False
        pos = _start(det, self.relative, self.offset)
        n = self.reader.nbytes
        if self.nvar is not None:
            # Suricata passes the variable as a uint8 and checks 1..4 binary / 1..10 string
            n = _var_nbytes(self.nvar, det, self.reader.base is not None,
                            MATH_MAX_BINARY_BYTES, MATH_MAX_STRING_BYTES)
            if n is None:
                return False
        val = self.reader.read(buf, blen, pos, n)
        if val is None:
            return False
        res = self.op(val, self.rvalue.get(det) & U64)
        if res is None:
            return False
        if self.mask:
            res &= self.mask
            if res:
                res >>= self.shift
        det.vars[self.slot] = res        # type: ignore[index]
        det.buffer_offset = pos + n
        nxt = self.next
        return True if nxt is None else nxt(buf, blen, det)


@keyword("byte_math", help="byte_math:bytes N,offset N,oper +|-|*|/|<<|>>,rvalue N|var,result name[,relative][,endian big|little][,string dec|hex|oct][,bitmask N]")
def byte_math(b: RuleBuilder, arg: str | None) -> None:
    b.require_packet_buffer("byte_math")
    fields: dict[str, str] = {}
    flags: list[str] = []
    for part in (p.strip() for p in unquote(arg, "byte_math").split(",")):
        key, _, val = part.partition(" ")
        if key in ("bytes", "offset", "oper", "rvalue", "result"):
            fields[key] = val.strip()
        elif key == "endian":
            flags.append(val.strip())
        elif key == "string":
            flags += ["string", val.strip()] if val.strip() else ["string"]
        elif part:
            flags.append(part)
    missing = [k for k in ("bytes", "offset", "oper", "rvalue", "result") if k not in fields]
    if missing:
        raise RuleError(f"byte_math: missing {', '.join(missing)}")
    nbytes, nvar = _nbytes_arg(b, fields["bytes"], "byte_math bytes", MATH_MAX_STRING_BYTES)
    offset = parse_int(fields["offset"], "byte_math offset", -65535, 65535)
    op = _MATH_OPS.get(fields["oper"])
    if op is None:
        raise RuleError(f"byte_math: unknown oper '{fields['oper']}'")
    rvalue = b.value(fields["rvalue"], "byte_math rvalue", 0, (1 << 32) - 1)
    if fields["oper"] in ("<<", ">>") and nbytes > MATH_MAX_BINARY_BYTES:
        raise RuleError(f"byte_math: bytes must be 1..{MATH_MAX_BINARY_BYTES} with '{fields['oper']}', "
                        f"got {nbytes}")
    relative, little, base, mask = _common_options(b, flags, "byte_math", {}, nbytes)
    if mask is not None and mask > MATH_MASK_MAX:
        raise RuleError(f"byte_math: bitmask {mask:#x} does not fit in 32 bits")
    slot = b.define_variable(fields["result"], "byte_math")
    b.add_item(ByteMath(_Reader(nbytes, little, base, None), offset, relative, op, rvalue, slot, mask, nvar))
