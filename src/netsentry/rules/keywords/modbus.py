"""The `modbus:` keyword (applayer/modbus.py), as Suricata's: `function N[, subfunction N]`,
`function [!]assigned|unassigned|public|user|reserved|all`, `access read|write
[discretes|coils|input|holding][, address A[, value V]]`, each optionally after
`unit U,`; numbers as `N`, `<N`, `>N`, `N<>M`. The `modbus.*` app-layer events."""

from __future__ import annotations

import re
from typing import Any

from netsentry.applayer import modbus as mb
from netsentry.applayer.registry import TO_SERVER
from netsentry.rules.errors import RuleError
from netsentry.rules.keywords.applayer import APP_LAYER_EVENTS, tx_check
from netsentry.rules.registry import RuleBuilder, keyword, unquote

APP_LAYER_EVENTS["modbus"] = dict(mb.EVENTS)

_ACCESS = re.compile(r'^\s*"?\s*access\s*(read|write)\s*(discretes|coils|input|holding)?'
                     r'(?:,\s*address\s+([<>]?\d+)(?:<>(\d+))?(?:,\s*value\s+([<>]?\d+)(?:<>(\d+))?)?)?\s*"?\s*$')
_FUNC = re.compile(r'^\s*"?\s*function\s*(!?[A-Za-z0-9]+)(?:,\s*subfunction\s+(\d+))?\s*"?\s*$')
_UNIT = re.compile(r'^\s*"?\s*unit\s+([<>]?\d+)(?:<>(\d+))?(?:,\s*(.*))?\s*"?\s*$')
_CATEGORIES = {"assigned": mb.ASSIGNED, "unassigned": mb.UNASSIGNED, "public": mb.ASSIGNED | mb.UNASSIGNED,
               "user": mb.USER, "reserved": mb.RESERVED,
               "all": mb.ASSIGNED | mb.UNASSIGNED | mb.USER | mb.RESERVED}


def _range(lo: str, hi: str | None) -> tuple[int, int]:
    """Suricata's Range<u16>: N..N exact, <N: 0..N, >N: N..65535, A<>B: A..B (exclusive)."""
    try:
        if hi:
            return int(lo), int(hi)
        if lo[0] == ">":
            return int(lo[1:]), 0xFFFF
        if lo[0] == "<":
            return 0, int(lo[1:])
        return int(lo), int(lo)
    except ValueError:
        raise RuleError(f"modbus: invalid number '{lo}'") from None


def _in(r: tuple[int, int], v: int) -> bool:
    lo, hi = r
    if lo == hi:
        return v == lo
    if lo == 0:
        return v < hi
    if hi == 0xFFFF:
        return v > lo
    return lo < v < hi


def _overlaps(r: tuple[int, int], start: int, end: int) -> bool:
    lo, hi = r
    if lo == hi:
        return start <= lo <= end
    if lo == 0:
        return hi > start
    if hi == 0xFFFF:
        return lo < end
    return lo < end and start < hi


def _parse(text: str, unit: tuple[int, int] | None = None) -> dict[str, Any]:
    m = _UNIT.match(text)
    if m is not None and unit is None:
        u = _range(m.group(1), m.group(2))
        rest = m.group(3)
        if rest is None or not rest.strip():
            return {"unit": u}
        return _parse(rest, u)
    spec: dict[str, Any] = {"unit": unit}
    m = _FUNC.match(text)
    if m is not None:
        word = m.group(1)
        if word.isdigit():
            n = int(word)
            if not 0 < n < 256:
                raise RuleError("modbus: invalid function value")
            spec["function"] = mb.FUNCTIONS.get(n, "Unknown")
            if m.group(2) is not None:
                spec["subfunction"] = int(m.group(2))
            return spec
        neg = word.startswith("!")
        cat = _CATEGORIES.get(word[1:] if neg else word)
        if cat is None or m.group(2) is not None:
            raise RuleError(f"modbus: unknown function keyword '{word}'")
        spec["category"] = (~cat & 0xFF) if neg else cat
        return spec
    m = _ACCESS.match(text)
    if m is not None:
        access = mb.ACCESS_WORDS[m.group(1)]
        kind = m.group(2)
        if kind is not None:
            if access == mb.WRITE and kind in ("discretes", "input"):
                raise RuleError(f"modbus: {kind} access is only read access")
            access |= mb.ACCESS_WORDS[kind]
        spec["access"] = access
        if m.group(3) is not None:
            spec["address"] = _range(m.group(3), m.group(4))
            if m.group(5) is not None:
                spec["value"] = _range(m.group(5), m.group(6))
        return spec
    raise RuleError(f"modbus: expected 'function ...', 'access ...' or 'unit ...', got '{text.strip()}'")


def _inspect(msg: mb.Message, spec: dict[str, Any]) -> bool:
    unit = spec.get("unit")
    if unit is not None and not _in(unit, msg.unit_id):
        return False
    access = spec.get("access")
    if access is not None:
        rw = access & (mb.READ | mb.WRITE)
        func = access & mb.FUNC_MASK
        if not rw or not msg.access & rw or (func and not msg.access & func):
            return False
        address = spec.get("address")
        if address is None:
            return True
        rng = msg.address_range()
        if rng is None or not _overlaps(address, rng[0], rng[1]):
            return False
        value = spec.get("value")
        if value is None:
            return True
        v = msg.write_value_at(address[0])
        return v is not None and _in(value, v)
    category = spec.get("category")
    if category is not None:
        return bool(msg.category & category)
    function = spec.get("function")
    if function is None:
        return True
    if function != msg.code:
        return False
    sub = spec.get("subfunction")
    if sub is None:
        return True
    return msg.kind == "diagnostic" and msg.data["raw"] == sub


@keyword("modbus", help="modbus: function N|CATEGORY | access read|write [TYPE][, address A[, value V]] "
         "| unit U[, ...]; Modbus requests")
def modbus_keyword(b: RuleBuilder, arg: str | None) -> None:
    spec = _parse(unquote(arg, "modbus"))

    def check(tx: Any, ts: bool) -> bool:
        msg = tx.request if tx.request is not None else tx.response
        return msg is not None and _inspect(msg, spec)
    tx_check(b, "modbus", TO_SERVER, check)
