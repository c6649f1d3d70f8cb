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
from collections.abc import Callable, Sequence

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


# --- multi-integers (Suricata 8: a value matched against a list, e.g. vlan.id) --------

MultiPredicate = Callable[[Sequence[int]], bool]
_INDEX_WORDS = ("any", "all", "all_or_absent", "or_absent")


def parse_multi_uint(text: str, what: str, bits: int = 32,
                     index_range: tuple[int, int] | None = None) -> MultiPredicate:
    """Suricata's multi-integer syntax: ``VALUE[,INDEX[,START:END]]`` or ``count N``.

    INDEX: ``any`` (default: some element matches), ``all`` (there is an element
    and every one matches), ``all_or_absent``, ``or_absent`` (some matches, or
    the list is empty), an integer position (negative counts from the end;
    ``oob_or N``: also true when there is no element N), ``nb OP N`` (how many
    elements match). ``count OP N`` alone compares the number of elements.
    START:END takes a slice of the list first. The lists here are complete
    (packet data), so Suricata's "end of data" conditions always hold.
    """
    if text is None or not text.strip():
        raise RuleError(f"{what}: missing value")
    parts = [p.strip() for p in text.split(",")]
    if len(parts) > 3:
        raise RuleError(f"{what}: too many comma-separated parts in '{text.strip()}'")
    if len(parts) == 1 and parts[0].startswith("count"):
        count = parse_uint(parts[0][len("count"):], f"{what} count")
        return lambda values: count(len(values))
    value = parse_uint(parts[0], what, bits)
    start = end = 0
    if len(parts) == 3:
        m = re.fullmatch(r"(-?\d+)\s*:\s*(-?\d+)", parts[2])
        if m is None:
            raise RuleError(f"{what}: invalid slice '{parts[2]}' (START:END)")
        start, end = int(m.group(1)), int(m.group(2))
        if (start > 0 and 0 < end <= start) or (start < 0 and end < 0 and end <= start):
            raise RuleError(f"{what}: slice must end after its start: '{parts[2]}'")

    def sub(values: Sequence[int]) -> Sequence[int]:
        if not (start or end):
            return values
        n = len(values)
        s = start if start >= 0 else n + start
        e = end if end > 0 else n + end
        return values[s:e] if 0 <= s < e <= n else ()

    index = parts[1] if len(parts) >= 2 else "any"
    if index == "any":
        return lambda values: any(value(v) for v in sub(values))
    if index == "or_absent":
        return lambda values: (not (vs := sub(values))) or any(value(v) for v in vs)
    if index == "all":
        return lambda values: bool(vs := sub(values)) and all(value(v) for v in vs)
    if index == "all_or_absent":
        return lambda values: all(value(v) for v in sub(values))
    if index.startswith("nb"):
        nb = parse_uint(index[2:], f"{what} nb")
        return lambda values: nb(sum(1 for v in sub(values) if value(v)))
    m = re.fullmatch(r"(oob_or\s*)?(-?\d+)", index)
    if m is None:
        raise RuleError(f"{what}: invalid index '{index}' (a number, {', '.join(_INDEX_WORDS)}, nb N)")
    oob, i = bool(m.group(1)), int(m.group(2))
    if index_range is not None and not index_range[0] <= i <= index_range[1]:
        raise RuleError(f"{what}: index {i} out of range {index_range[0]}..{index_range[1]}")

    def at(values: Sequence[int]) -> bool:
        vs = sub(values)
        j = i if i >= 0 else len(vs) + i
        if not 0 <= j < len(vs):
            return oob
        return value(vs[j])
    return at
