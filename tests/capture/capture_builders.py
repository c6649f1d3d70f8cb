"""Craft pcap and pcapng bytes with struct, field by field, so each test
states exactly what is in the file."""

from __future__ import annotations

import struct


def pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


# --- classic pcap --------------------------------------------------------------

def pcap_header(order: str = "<", nano: bool = False, linktype: int = 1, snaplen: int = 65535) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    return struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)


def pcap_record(sec: int, frac: int, data: bytes, order: str = "<", wirelen: int | None = None) -> bytes:
    return struct.pack(order + "IIII", sec, frac, len(data),
                       len(data) if wirelen is None else wirelen) + data


def pcap_file(records, order: str = "<", nano: bool = False, linktype: int = 1, snaplen: int = 65535) -> bytes:
    """records: iterable of (sec, frac, data) or (sec, frac, data, wirelen)."""
    out = [pcap_header(order, nano, linktype, snaplen)]
    for r in records:
        out.append(pcap_record(r[0], r[1], r[2], order, r[3] if len(r) > 3 else None))
    return b"".join(out)


# --- pcapng -------------------------------------------------------------------

def block(btype: int, body: bytes, order: str = "<") -> bytes:
    body = pad4(body)
    n = 12 + len(body)
    return struct.pack(order + "II", btype, n) + body + struct.pack(order + "I", n)


def option(code: int, value: bytes, order: str = "<") -> bytes:
    return struct.pack(order + "HH", code, len(value)) + pad4(value)


def end_of_options(order: str = "<") -> bytes:
    return struct.pack(order + "HH", 0, 0)


def shb(order: str = "<", options: bytes = b"") -> bytes:
    body = struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1)
    if options:
        body += options + end_of_options(order)
    return block(0x0A0D0D0A, body, order)


def idb(linktype: int = 1, snaplen: int = 0, tsresol: int | None = None, tsoffset: int | None = None,
        order: str = "<") -> bytes:
    body = struct.pack(order + "HHI", linktype, 0, snaplen)
    opts = b""
    if tsresol is not None:
        opts += option(9, bytes([tsresol]), order)
    if tsoffset is not None:
        opts += option(14, struct.pack(order + "q", tsoffset), order)
    if opts:
        body += opts + end_of_options(order)
    return block(1, body, order)


def epb(ifid: int, ticks: int, data: bytes, wirelen: int | None = None, order: str = "<",
        options: bytes = b"") -> bytes:
    body = struct.pack(order + "IIIII", ifid, ticks >> 32, ticks & 0xFFFFFFFF, len(data),
                       len(data) if wirelen is None else wirelen) + pad4(data)
    if options:
        body += options + end_of_options(order)
    return block(6, body, order)


def spb(data: bytes, wirelen: int | None = None, order: str = "<") -> bytes:
    return block(3, struct.pack(order + "I", len(data) if wirelen is None else wirelen) + data, order)


def pb(ifid: int, ticks: int, data: bytes, order: str = "<") -> bytes:
    body = struct.pack(order + "HHIIII", ifid, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data))
    return block(2, body + data, order)


def pcap_to_pcapng(pcap: bytes) -> bytes:
    """Re-wrap a little-endian microsecond pcap as one-section pcapng (bench, tests)."""
    _m, _maj, _min, _z, _s, snaplen, linktype = struct.unpack_from("<IHHiIII", pcap)
    out = [shb(), idb(linktype, snaplen)]
    off, end = 24, len(pcap)
    while off < end:
        sec, usec, caplen, wirelen = struct.unpack_from("<IIII", pcap, off)
        out.append(epb(0, sec * 1_000_000 + usec, pcap[off + 16:off + 16 + caplen], wirelen))
        off += 16 + caplen
    return b"".join(out)
