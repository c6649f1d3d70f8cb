"""Internet checksum (RFC 1071) verification.

The ones'-complement sum of 16-bit words equals the big-endian integer of the
bytes modulo 0xFFFF (2**16 == 1 mod 0xFFFF), so one ``int.from_bytes`` and one
``%`` replace a Python loop over words: a correct checksum makes the sum of
all words (checksum field included) 0xFFFF, i.e. 0 modulo 0xFFFF with at least
one non-zero word. (~1 us for a 1500-byte segment versus ~60 us summing words.)
"""

from __future__ import annotations

import struct

_PSEUDO4 = struct.Struct("!4s4sxBH").pack
_PSEUDO6 = struct.Struct("!16s16sI3xB").pack


def _ok(buf: bytes) -> bool:
    if len(buf) & 1:
        buf += b"\0"
    v = int.from_bytes(buf, "big")
    return v != 0 and v % 0xFFFF == 0


def ipv4_header_ok(data: bytes, off: int, hlen: int) -> bool:
    return _ok(data[off:off + hlen])


def l4_ok(src: bytes, dst: bytes, proto: int, data: bytes, off: int, end: int) -> bool:
    """TCP/UDP/ICMPv6 checksum over the pseudo-header (v4 or v6 by address size) and segment."""
    seg = data[off:end]
    if len(src) == 4:
        pseudo = _PSEUDO4(src, dst, proto, len(seg))
    else:
        pseudo = _PSEUDO6(src, dst, len(seg), proto)
    return _ok(pseudo + seg)


def plain_ok(data: bytes, off: int, end: int) -> bool:
    """ICMPv4: checksum over the message only."""
    return _ok(data[off:end])
