"""`asn1` (Suricata's detect-asn1.c and rust/src/asn1): decode the buffer as BER and
look for the malformations old ASN.1 exploits used.

Syntax: ``asn1: OPTION[, OPTION]...`` with

- ``bitstring_overflow``: a universal primitive BIT STRING whose unused-bits
  count is larger than its length in bits;
- ``double_overflow``: a universal primitive REAL in binary-less (decimal)
  encoding longer than 256 bytes;
- ``oversize_length N``: an object whose length (or content) is over N;
- ``absolute_offset N``: decode from byte N of the buffer (default 0);
- ``relative_offset N``: decode from N (negative allowed) after where the
  previous content/pcre match ended.

The buffer from that offset is read as a sequence of BER objects (at most 30
top-level frames, 30 levels deep: ``asn1-max-frames``); a frame that does not
decode ends the sequence, and more frames than the maximum is no match. The
keyword matches when a check fires in any object or nested object, or the
nesting reaches the depth limit (as Suricata). An offset at or past the end
of the buffer is no match. Universal constructed objects (SEQUENCE, SET, ...)
are walked into; application and context-specific ones are kept whole, as
der-parser does. It is a payload keyword (Suricata's pmatch list): it sits in
the content chain of the current buffer and makes the rule a packet rule.
"""

from __future__ import annotations

import re

from netsentry.rules.errors import RuleError
from netsentry.rules.inspect import Det, Item
from netsentry.rules.registry import RuleBuilder, keyword, unquote

MAX_FRAMES = 30
_BITSTRING, _REAL = 3, 9


class _BerError(Exception):
    """The bytes do not decode as one BER object (ends the frame sequence)."""


class _Obj:
    __slots__ = ("cls", "constructed", "tag", "length", "content", "children")

    def __init__(self, cls: int, constructed: bool, tag: int, length: int | None, content: bytes,
                 children: list[_Obj]) -> None:
        self.cls = cls                  # 0 universal, 1 application, 2 context, 3 private
        self.constructed = constructed
        self.tag = tag
        self.length = length            # None: indefinite
        self.content = content          # a primitive's content bytes (constructed: b"")
        self.children = children


def _parse(buf: bytes, pos: int, end: int, depth: int) -> tuple[_Obj, int]:
    """One BER object at `pos`: (object, position after it)."""
    if depth <= 0:
        raise _BerError("too deep")
    if end - pos < 2:
        raise _BerError("short header")
    ident = buf[pos]
    pos += 1
    cls, constructed, tag = ident >> 6, bool(ident & 0x20), ident & 0x1F
    if tag == 0x1F:                     # high tag number: base-128, last byte without bit 8
        tag = 0
        for _ in range(5):
            if pos >= end:
                raise _BerError("short tag")
            b = buf[pos]
            pos += 1
            tag = (tag << 7) | (b & 0x7F)
            if not b & 0x80:
                break
        else:
            raise _BerError("tag too long")
    if pos >= end:
        raise _BerError("no length")
    first = buf[pos]
    pos += 1
    length: int | None
    if first < 0x80:
        length = first
    elif first == 0x80:
        length = None
        if not constructed:
            raise _BerError("indefinite primitive")
    else:
        n = first & 0x7F
        if n > 8 or end - pos < n:
            raise _BerError("bad length")
        length = int.from_bytes(buf[pos:pos + n], "big")
        pos += n
    if length is None:
        children = []
        while True:
            if end - pos >= 2 and buf[pos] == 0 and buf[pos + 1] == 0:
                return _Obj(cls, constructed, tag, None, b"", children), pos + 2
            child, pos = _parse(buf, pos, end, depth - 1)
            children.append(child)
    if end - pos < length:
        raise _BerError("content past the end")
    stop = pos + length
    if not constructed:
        return _Obj(cls, False, tag, length, buf[pos:stop], []), stop
    children = []
    if cls == 0:                        # universal constructed: walk into it
        p = pos
        while p < stop:
            child, p = _parse(buf, p, stop, depth - 1)
            children.append(child)
    return _Obj(cls, True, tag, length, b"", children), stop


class Asn1(Item):
    """The asn1 keyword in a content chain."""

    def __init__(self, bitstring: bool, double: bool, oversize: int | None,
                 absolute: int | None, relative: int | None, max_frames: int = MAX_FRAMES) -> None:
        self.bitstring = bitstring
        self.double = double
        self.oversize = oversize
        self.absolute = absolute
        self.rel_offset = relative
        self.max_frames = max_frames

    def inspect(self, buf: bytes, blen: int, det: Det) -> bool:
        if not self.matches(buf, blen, det.buffer_offset):
            return False                # Suricata's no_match: an earlier content may search again
        nxt = self.next
        return True if nxt is None else nxt(buf, blen, det)

    def matches(self, buf: bytes, blen: int, buffer_offset: int) -> bool:
        if self.absolute is not None:
            off = self.absolute
        elif self.rel_offset is not None:
            off = buffer_offset + self.rel_offset
            if not 0 <= off <= 0xFFFF:
                return False
        else:
            off = 0
        if blen == 0 or off >= blen:
            return False
        frames: list[_Obj] = []
        pos = off
        while pos < blen:
            if len(frames) >= self.max_frames:
                return False            # Suricata: MaxFrames, the decode fails
            try:
                obj, pos = _parse(buf, pos, blen, self.max_frames)
            except _BerError:
                break
            frames.append(obj)
        return any(self._check(o, self.max_frames) for o in frames)

    def _check(self, obj: _Obj, depth: int) -> bool:
        if depth == 0:
            return True                 # Suricata's MaxDepth counts as a finding
        length = obj.length
        if length is not None:
            if self.oversize is not None and (length > self.oversize or len(obj.content) > self.oversize):
                return True
            if obj.cls == 0 and not obj.constructed and length > 0:
                data = obj.content
                if self.bitstring and obj.tag == _BITSTRING and data and data[0] > length * 8:
                    return True
                if (self.double and obj.tag == _REAL and data and data[0] & 0xC0 == 0
                        and (length > 256 or len(data) > 256)):
                    return True
        return any(self._check(c, depth - 1) for c in obj.children)


_OPTION = re.compile(r"\s*(bitstring_overflow|double_overflow|"
                     r"(oversize_length|absolute_offset|relative_offset)\s+(-?\d+))\s*(?:,|\s+|$)")


def parse_asn1(text: str) -> Asn1:
    """The keyword's value (Suricata's asn1_parse_rule): options in any order, separated by
    commas or blanks; a RuleError names the part that is wrong."""
    t = text.strip()
    if not t:
        raise RuleError("asn1: missing options")
    bitstring = double = False
    oversize = absolute = relative = None
    pos = 0
    while pos < len(t):
        m = _OPTION.match(t, pos)
        if m is None or m.end() == pos:
            raise RuleError(f"asn1: malformed option at '{t[pos:]}' (bitstring_overflow, double_overflow, "
                            "oversize_length N, absolute_offset N, relative_offset N)")
        pos = m.end()
        name = m.group(2)
        if name is None:
            if m.group(1) == "bitstring_overflow":
                bitstring = True
            else:
                double = True
            continue
        v = int(m.group(3))
        if name == "oversize_length":
            if not 0 <= v <= 0xFFFFFFFF:
                raise RuleError(f"asn1: oversize_length {v} out of range (0..4294967295)")
            oversize = v
        elif name == "absolute_offset":
            if not 0 <= v <= 0xFFFF:
                raise RuleError(f"asn1: absolute_offset {v} out of range (0..65535)")
            absolute = v
        else:
            if not -0xFFFF <= v <= 0xFFFF:
                raise RuleError(f"asn1: relative_offset {v} out of range (-65535..65535)")
            relative = v
    return Asn1(bitstring, double, oversize, absolute, relative)


@keyword("asn1", help="asn1:OPTIONS; BER decode the buffer and check it for overflows "
                      "(bitstring_overflow, double_overflow, oversize_length N, absolute_offset N, relative_offset N)")
def asn1(b: RuleBuilder, arg: str | None) -> None:
    b.require_packet_buffer("asn1")
    b.add_item(parse_asn1(unquote(arg, "asn1")))
    b.sig.pkt_only = True
