"""A small BER/DER reader for the ASN.1 protocols (SNMP, Kerberos): one TLV at a time over
a bytes object, no copies until a value is taken. Definite lengths only (what SNMP and
Kerberos send); anything else raises `DerError`, as does a TLV running past its end."""

from __future__ import annotations


class DerError(Exception):
    """The bytes are not the BER the caller expected."""


class Short(DerError):
    """The bytes stop inside a TLV (a datagram or record cut short)."""


def header(data: bytes, off: int, end: int) -> tuple[int, int, int]:
    """(tag, value start, value length) of the TLV at `off`, its value not checked against
    `end` (der-parser's der_read_element_header)."""
    t, s, e = tlv(data, off, end, False)
    return t, s, e - s


def tlv(data: bytes, off: int, end: int, whole: bool = True) -> tuple[int, int, int]:
    """(tag, value start, value end) of the TLV at `off`: the tag byte (class, constructed
    bit, number) of the low form."""
    if off + 2 > end:
        raise Short("TLV header past the end")
    tag = data[off]
    off += 1
    if tag & 0x1F == 0x1F:
        # the high-tag-number form: a number that fits the low form reads as that tag (as
        # der-parser does: `bf 04` is [4] constructed); a larger one can equal no low form
        number = 0
        while True:
            if off >= end:
                raise Short("tag past the end")
            b = data[off]
            off += 1
            number = (number << 7) | (b & 0x7F)
            if not b & 0x80:
                break
        tag = (tag & 0xE0) | number if number < 0x1F else (tag & 0xE0) | 0x1F | (number << 8)
        if off >= end:
            raise Short("length past the end")
    first = data[off]
    off += 1
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise DerError("indefinite length")
    else:
        n = first & 0x7F
        if n > 4:
            raise DerError("length over 4 bytes")
        if off + n > end:
            raise Short("length past the end")
        length = int.from_bytes(data[off:off + n], "big")
        off += n
    if whole and off + length > end:
        raise Short("value past the end")
    return tag, off, off + length


def expect(data: bytes, off: int, end: int, tag: int) -> tuple[int, int]:
    """(value start, value end) of a TLV that must have `tag`."""
    t, s, e = tlv(data, off, end)
    if t != tag:
        raise DerError(f"expected tag 0x{tag:02x}, got 0x{t:02x}")
    return s, e


def integer(data: bytes, s: int, e: int) -> int:
    if s == e:
        raise DerError("empty integer")
    return int.from_bytes(data[s:e], "big", signed=True)


def oid(data: bytes, s: int, e: int) -> str:
    """An OBJECT IDENTIFIER's dotted text."""
    if s == e:
        raise DerError("empty OID")
    arcs: list[int] = []
    v = 0
    for i in range(s, e):
        b = data[i]
        v = (v << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(v)
            v = 0
    if data[e - 1] & 0x80:
        raise DerError("OID ends inside an arc")
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(a) for a in head + arcs[1:])


def children(data: bytes, s: int, e: int) -> list[tuple[int, int, int]]:
    """The TLVs of a constructed value."""
    out = []
    while s < e:
        t = tlv(data, s, e)
        out.append(t)
        s = t[2]
    return out
