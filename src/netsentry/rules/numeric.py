"""Suricata's integer keyword syntax, compiled to one predicate.

Forms (docs "Integer Keywords"): ``N``, ``=N``, ``!N``, ``!=N``, ``>N``,
``>=N``, ``<N``, ``<=N``, ranges ``A-B`` and ``A<>B`` (exclusive, as Suricata:
``1-4`` matches 2 and 3), negated range ``!A-B``, bitmasks ``&M=V`` and
``&M!=V``; values in decimal or 0x hex with an optional kb/mb/gb suffix.
Used by ttl, tos, id, dsize, bsize, window, seq, ack, itype, icode,
icmp_id, icmp_seq, tcp.mss, fragoffset, ip_proto and stream_size.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from netsentry.rules.errors import RuleError

_UNITS = {"kb": 1024, "kib": 1024, "mb": 1 << 20, "mib": 1 << 20, "gb": 1 << 30, "gib": 1 << 30}
_NUM = r"(?:0[xX][0-9a-fA-F]+|[0-9]+)(?:[kKmMgG][iI]?[bB])?"
_RANGE = re.compile(rf"^\s*(!)?\s*({_NUM})\s*(?:-|<>)\s*({_NUM})\s*$")
_CMP = re.compile(rf"^\s*(!=|<=|>=|=|!|<|>)?\s*({_NUM})\s*$")
_MASK = re.compile(rf"^\s*&\s*({_NUM})\s*(!=|=)\s*({_NUM})\s*$")

_DIGITS = re.compile(r"0x[0-9a-f]+|[0-9]+")

Predicate = Callable[[int], bool]


def number(text: str, what: str = "value") -> int:
    t = text.strip()
    low = t.lower()
    mult = 1
    for unit in sorted(_UNITS, key=len, reverse=True):
        if low.endswith(unit):
            mult, low = _UNITS[unit], low[: -len(unit)]
            break
    if not _DIGITS.fullmatch(low):      # int() would take 1_000, +5 and non-ASCII digits
        raise RuleError(f"{what}: invalid number '{text.strip()}'")
    return (int(low, 16) if low.startswith("0x") else int(low, 10)) * mult


def parse_uint(text: str, what: str, bits: int = 32) -> Predicate:
    """Compile an integer-keyword value into `pred(value) -> bool`; RuleError when malformed."""
    maxv = (1 << bits) - 1

    def num(s: str) -> int:
        v = number(s, what)
        if v > maxv:
            raise RuleError(f"{what}: {v} does not fit in {bits} bits")
        return v

    if text is None or not text.strip():
        raise RuleError(f"{what}: missing value")
    m = _RANGE.match(text)
    if m:
        lo, hi = num(m.group(2)), num(m.group(3))
        if lo >= hi:
            raise RuleError(f"{what}: range '{text.strip()}' must go from low to high")
        if m.group(1):
            return lambda v: v <= lo or v >= hi
        return lambda v: lo < v < hi
    m = _MASK.match(text)
    if m:
        mask, val = num(m.group(1)), num(m.group(3))
        if m.group(2) == "=":
            return lambda v: v & mask == val
        return lambda v: v & mask != val
    m = _CMP.match(text)
    if not m:
        raise RuleError(f"{what}: invalid value '{text.strip()}'")
    op, n = m.group(1) or "=", num(m.group(2))
    return _OPS[op](n)


_OPS: dict[str, Callable[[int], Predicate]] = {
    "=": lambda n: (lambda v: v == n),
    "!": lambda n: (lambda v: v != n),
    "!=": lambda n: (lambda v: v != n),
    "<": lambda n: (lambda v: v < n),
    "<=": lambda n: (lambda v: v <= n),
    ">": lambda n: (lambda v: v > n),
    ">=": lambda n: (lambda v: v >= n),
}
