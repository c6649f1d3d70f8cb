"""An HTTP/1 header block read as libhtp-rs reads it (headers.rs), for the evasions that
depend on its exact rules (suricata-verify http-evader-296..300, 307, 318..347, 410..432):

- a line ends at LF, CRLF; on the response side also at a lone CR or LF CR; the response
  side also takes the deformed ends LF CR CR LF and CR LF CR followed by CR/blanks;
- a line end followed by a space, a tab or a NUL folds the next line into the value, joined
  by that character (on the response side a folded line that reads ``token:`` is a header
  of its own);
- a header name runs up to the first colon, and a line end followed by a space inside it
  folds the name (``Transfer-Encoding\\r\\n :chunked`` is Transfer-Encoding);
- a line without a colon is a header without a name (MISSING_COLON);
- the block ends at an empty line after a header.

`parse_headers` is given the buffered bytes of a header block and says how far it got; it
never needs more than the block and the byte after a line end (folding is decided on it).
"""

from __future__ import annotations

import re

FOLDING = 0x0001
FOLDING_SPECIAL_CASE = 0x0002 | FOLDING
NAME_EMPTY = 0x0004
VALUE_EMPTY = 0x0008
NAME_NON_TOKEN_CHARS = 0x0010
NAME_TRAILING_WHITESPACE = 0x0040
NAME_LEADING_WHITESPACE = 0x0080
NULL_TERMINATED = 0x0100
MISSING_COLON = 0x0200 | NAME_EMPTY
DEFORMED_EOL = 0x0400

MAX_NB_FOLD = 128
_SPACE = b" \t\r\n\x0b\x0c"          # libhtp-rs util::is_space (trimmed)
_SEPARATORS = frozenset(b'()<>@,;:\\"/[]?={} \t')
_TOKEN = frozenset(c for c in range(32, 127) if c not in _SEPARATORS)
_TOKEN_CLASS = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
_TOKEN_RUN = re.compile(rb"[ \t]*[" + _TOKEN_CLASS + rb"]*[ \t]*")
# the usual header line: a token, a colon, a value without CR, its line end; when the byte
# after it cannot fold or deform the line end, the rules below give the same (fast path)
_PLAIN = re.compile(rb"([" + _TOKEN_CLASS + rb"]+):[ \t]*([^\r\n]*)(\r?\n)")
# a whole block of such lines ended by CRLF, then CRLF: nothing in it can fold or deform
_BLOCK = re.compile(rb"(?:[" + _TOKEN_CLASS + rb"]+:[^\r\n]*\r\n)+\r\n")
_LINE = re.compile(rb"([" + _TOKEN_CLASS + rb"]+):[ \t]*([^\r\n]*)\r\n")


class Incomplete(Exception):
    """More bytes are needed to decide."""


class _Error(Exception):
    """The bytes are not what the parser expected."""


def _lws(b: bytes, i: int) -> int:
    """folding_lws (streaming): 1 for a space, tab or NUL at i, -1 for anything else."""
    if i >= len(b):
        raise Incomplete
    return 1 if b[i] in (32, 9, 0) else -1


def _eol_regular(b: bytes, i: int, resp: bool) -> int:
    if b.startswith(b"\r\n", i):
        return 2
    if resp:
        if b.startswith(b"\n\r", i):
            return 2
        if i < len(b) and b[i] in (10, 13):
            return 1
        return -1
    return 1 if b.startswith(b"\n", i) else -1


def _eol_deformed(b: bytes, i: int, resp: bool) -> int:
    if b.startswith(b"\n\r\r\n", i) and (b.startswith(b"\n", i + 4) or b.startswith(b"\r\n", i + 4)):
        return 4
    if resp:
        if not b.startswith(b"\r\n\r", i):
            return -1
        j = i + 3
        n = len(b)
        while j < n and b[j] in (13, 32, 9):
            j += 1
        if j >= n:
            raise Incomplete          # streaming take_while1 ran to the end
        if j == i + 3:
            return -1
        if b[j] == 10:
            j += 1
        if b.startswith(b"\n", j) or b.startswith(b"\r\n", j):
            return -1
        return j - i
    if b.startswith(b"\n\r", i) and b.startswith(b"\r\n", i + 2):
        return 2
    return -1


def _complete_eol(b: bytes, i: int, resp: bool) -> tuple[int, int]:
    n = _eol_deformed(b, i, resp)
    if n > 0:
        return n, DEFORMED_EOL
    return _eol_regular(b, i, resp), 0


def _folding(b: bytes, i: int, resp: bool) -> tuple[int, int]:
    """A line end then a folding character: (length of the line end, flags), or (-1, 0)."""
    if resp:
        e, flags = _eol_regular(b, i, resp), 0
    else:
        e, flags = _complete_eol(b, i, resp)
    if e < 0 or _lws(b, i + e) < 0:
        return -1, 0
    return e, flags | FOLDING


def _folding_or_terminator(b: bytes, i: int, resp: bool, complete: bool) -> tuple[int, int, int]:
    """(length of the line end, flags, folding character or -1)."""
    if complete:
        try:
            e, flags = _folding(b, i, resp)
        except Incomplete:
            e = -1
    else:
        e, flags = _folding(b, i, resp)
    if e >= 0:
        return e, flags, b[i + e]
    if i < len(b) and b[i] == 0:
        return 1, NULL_TERMINATED, -1
    e, flags = _complete_eol(b, i, resp)
    if e < 0:
        raise _Error
    if not complete and _lws(b, i + e) > 0:
        raise _Error
    return e, flags, -1


def _value_bytes(b: bytes, i: int, resp: bool, complete: bool) -> tuple[bytes, int, int, int, int]:
    """(value bytes, line end length, flags, folding character or -1, next position)."""
    j = b.find(b"\n", i)
    if resp:
        k = b.find(b"\r", i, j if j >= 0 else len(b))
        if k >= 0:
            j = k
    if j < 0:
        raise Incomplete
    end = j
    if end > i and b[end - 1] == 13:
        end -= 1
    e, flags, fold = _folding_or_terminator(b, end, resp, complete)
    return b[i:end], e, flags, fold, end + e + (1 if fold >= 0 else 0)


def _token_separator(b: bytes, i: int) -> bool:
    """(token_chars, separator_regular) with a token: the folded line is a new header."""
    n = len(b)
    j = i
    while j < n and b[j] in (32, 9):
        j += 1
    if j >= n:
        raise Incomplete
    k = j
    while k < n and b[k] in _TOKEN:
        k += 1
    if k >= n:
        raise Incomplete
    m = k
    while m < n and b[m] in (32, 9):
        m += 1
    if m >= n:
        raise Incomplete
    if b[m] != 58:
        return False
    m += 1
    while m < n and b[m] in (32, 9):
        m += 1
    if m >= n:
        raise Incomplete
    return k > j


def _value(b: bytes, i: int, resp: bool, complete: bool) -> tuple[int, bytes, int]:
    val, _e, flags, fold, rest = _value_bytes(b, i, resp, complete)
    if fold < 0:
        if not val:
            flags |= VALUE_EMPTY
        return rest, val.strip(_SPACE), flags
    value = bytearray(val)
    i = rest
    nbfold = 0
    while True:
        if resp and _token_separator(b, i):
            flags &= ~FOLDING_SPECIAL_CASE
            if not value:
                flags |= VALUE_EMPTY
            return i, bytes(value).strip(_SPACE), flags
        val, e, other, fold2, rest2 = _value_bytes(b, i, resp, complete)
        i = rest2
        flags |= other
        if value:
            value.append(fold)
        if val or e > 1:
            rest = rest2
            value += val
        elif e == 1 and rest2 < len(b) and b[rest2] == 10:
            rest = rest2
        nbfold += 1
        if nbfold >= MAX_NB_FOLD or fold2 < 0:
            return rest, bytes(value).strip(_SPACE), flags
        fold = fold2


def _name(b: bytes, i: int, resp: bool) -> tuple[int, bytes, int]:
    """The name up to the first colon, folded over line ends followed by a space."""
    n = len(b)
    colon = b.find(b":", i)
    lf = b.find(b"\n", i, colon if colon >= 0 else n)
    cr = b.find(b"\r", i, colon if colon >= 0 else n) if resp else -1
    if colon >= 0 and lf < 0 and cr < 0:
        offset = colon               # the usual case: no line end before the colon
    else:
        offset = i
        terminated = 0
        for p in range(i, n):
            c = b[p]
            if terminated == 0:
                if c == 58:
                    offset = p
                    break
                if c == 10 or (resp and c == 13):
                    terminated = c
            elif c == 32:
                terminated = 0
            elif c == 10 and terminated == 13:
                terminated = c
            else:
                offset = p - 1
                break
    name = b[i:offset]
    flags = 0
    if name:
        if name[0] in _SPACE:
            flags |= NAME_LEADING_WHITESPACE
        if name[-1] in _SPACE:
            flags |= NAME_TRAILING_WHITESPACE
        if _TOKEN_RUN.match(name).end() < len(name):       # type: ignore[union-attr]
            flags |= NAME_NON_TOKEN_CHARS
    else:
        flags |= NAME_EMPTY
    return offset, name.strip(_SPACE), flags


def _header(b: bytes, i: int, resp: bool, complete: bool) -> tuple[int, bytes, bytes, int]:
    """(next position, name, value, flags); a header without colon has the name None."""
    try:
        p, name, nflags = _name(b, i, resp)
        if p >= len(b) or b[p] != 58:
            raise _Error
        p += 1
        while p < len(b) and b[p] in (32, 9):
            p += 1
        if p >= len(b):
            raise _Error              # complete(): an unfinished header is no header yet
        rest, value, vflags = _value(b, p, resp, complete)
        return rest, name, value, nflags | vflags
    except (Incomplete, _Error):
        pass
    if b.startswith(b"\r\n", i):
        raise _Error
    rest, value, vflags = _value(b, i, resp, complete)
    return rest, b"", value, vflags | MISSING_COLON


def parse_headers(b: bytes, resp: bool, complete: bool = False) -> tuple[int, list[tuple[bytes, bytes, int]], bool]:
    """Headers at the start of `b`: (bytes used, [(name, value, flags)], end of block seen).
    Raises Incomplete when not even one header can be read yet."""
    blk = _BLOCK.match(b)
    if blk is not None:
        return blk.end(), [(k, v.strip(_SPACE), 0 if v else VALUE_EMPTY)
                           for k, v in _LINE.findall(b, 0, blk.end())], True
    out: list[tuple[bytes, bytes, int]] = []
    i = 0
    n = len(b)
    plain = _PLAIN.match
    while True:
        m = plain(b, i)
        if m is not None:
            e = m.end()
            if e < n and (b[e] not in (32, 9, 0, 13) or (m.group(3) == b"\r\n" and b.startswith(b"\r\n", e))):
                value = m.group(2)
                out.append((m.group(1), value.strip(_SPACE), 0 if value else VALUE_EMPTY))
                i = e
                if b[i] in (10, 13):
                    e = _eol_regular(b, i, resp)
                    if e > 0:
                        return i + e, out, True
                continue
        try:
            i2, name, value, flags = _header(b, i, resp, complete)
        except Incomplete:
            if not out:
                raise
            return i, out, False
        except _Error:
            if not out:
                e, _ = _complete_eol(b, i, resp)
                if e > 0:
                    return i + e, out, True
            return i, out, False
        i = i2
        out.append((name, value, flags))
        if flags & NULL_TERMINATED:
            return i, out, True
        e = _eol_regular(b, i, resp)
        if e > 0:
            return i + e, out, True
