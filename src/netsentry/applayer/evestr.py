"""How Suricata's JsonBuilder writes strings of the newer parsers (MQTT, krb5, SNMP, RFB...):
bytes as UTF-8 when they are, else each byte above 127 as ``\\xNN``; with a length limit,
the cut-off text followed by ``[truncated N additional bytes]``."""

from __future__ import annotations


def from_bytes(b: bytes) -> str:
    """JsonBuilder's set_string_from_bytes."""
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(chr(c) if c < 128 else f"\\x{c:02x}" for c in b)


def _more(n: int) -> str:
    return f"[truncated {n} additional byte{'' if n == 1 else 's'}]"


def from_bytes_limited(b: bytes, limit: int) -> str:
    """set_string_from_bytes_limited: cut at `limit` bytes (anywhere, even inside a character)."""
    if len(b) > limit:
        b = b[:limit] + _more(len(b) - limit).encode()
    return from_bytes(b)


def lossy(b: bytes) -> str:
    """Rust's String::from_utf8_lossy (what a parser keeps of a protocol string)."""
    return b.decode("utf-8", "replace")


def limited(s: str, limit: int) -> str:
    """set_string_limited: a text over `limit` UTF-8 bytes cut at a character boundary at or
    before it (at most 4 bytes back)."""
    raw = s.encode("utf-8")
    if len(raw) <= limit:
        return s
    for i in range(min(limit, 4) + 1):
        try:
            head = raw[:limit - i].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return head + _more(len(raw) - limit)
    return s
