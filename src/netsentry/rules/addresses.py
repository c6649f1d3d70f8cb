"""Rule header address specs: `any`, CIDR (v4/v6), ranges, `$VARS`, `!`, nested lists.

A spec is evaluated once into sorted, merged integer intervals per address
family (Suricata likewise flattens a spec into address groups), so matching a
packet is one `int.from_bytes` and one bisect. Negation is set difference:
``[10.0.0.0/8,!10.1.0.0/16]`` is 10/8 minus 10.1/16; a list of only negated
items, or ``!x``, is "everything" minus them. ``!any`` and specs that match
nothing are errors, as in Suricata.

Matchers are interned by their resolved text, so the 40k ET Open rules that
say ``$HOME_NET`` share one object.
"""

from __future__ import annotations

import ipaddress
from bisect import bisect_right
from collections.abc import Callable, Hashable, Iterable

from netsentry.rules.errors import RuleError

Intervals = list[tuple[int, int]]
V4_MAX = (1 << 32) - 1
V6_MAX = (1 << 128) - 1

_from_bytes = int.from_bytes


def merge(intervals: Intervals) -> Intervals:
    """Sort and coalesce overlapping/adjacent intervals."""
    out: Intervals = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def subtract(a: Intervals, b: Intervals) -> Intervals:
    """Intervals of `a` not in `b` (both merged)."""
    out: Intervals = []
    for lo, hi in a:
        cur = lo
        for blo, bhi in b:
            if bhi < cur or blo > hi:
                continue
            if blo > cur:
                out.append((cur, blo - 1))
            cur = max(cur, bhi + 1)
            if cur > hi:
                break
        if cur <= hi:
            out.append((cur, hi))
    return out


class AddressMatcher:
    """A compiled address spec. `contains(packed)` takes 4- or 16-byte packed addresses."""

    __slots__ = ("text", "v4", "v6", "is_any", "contains", "_v4_starts", "_v6_starts")

    def __init__(self, text: str, v4: Intervals, v6: Intervals) -> None:
        self.text = text
        self.v4 = v4
        self.v6 = v6
        self.is_any = v4 == [(0, V4_MAX)] and v6 == [(0, V6_MAX)]
        self._v4_starts = [lo for lo, _ in v4]
        self._v6_starts = [lo for lo, _ in v6]
        self.contains: Callable[[bytes], bool] = _true if self.is_any else self._contains

    def _contains(self, packed: bytes) -> bool:
        n = len(packed)
        if n == 4:
            iv, starts = self.v4, self._v4_starts
        elif n == 16:
            iv, starts = self.v6, self._v6_starts
        else:
            return False
        a = _from_bytes(packed, "big")
        i = bisect_right(starts, a) - 1
        return i >= 0 and a <= iv[i][1]

    def __repr__(self) -> str:
        return f"<AddressMatcher {self.text}>"


def _true(_: object) -> bool:
    return True


def _split_list(body: str, spec: str) -> list[str]:
    """Split a bracket list body on top-level commas."""
    items, depth, cur = [], 0, []
    for ch in body:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise RuleError(f"unbalanced ']' in address '{spec}'")
        if ch == "," and depth == 0:
            items.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise RuleError(f"unbalanced '[' in address '{spec}'")
    items.append("".join(cur).strip())
    if any(not it for it in items):
        raise RuleError(f"empty item in address list '{spec}'")
    return items


class AddressParser:
    """Evaluates address specs against a variable table (name -> spec text)."""

    def __init__(self, variables: dict[str, str]) -> None:
        self.variables = variables
        self._cache: dict[str, AddressMatcher] = {}

    def parse(self, spec: str) -> AddressMatcher:
        spec = spec.strip()
        m = self._cache.get(spec)
        if m is None:
            v4, v6 = self._eval(spec, spec, ())
            if not v4 and not v6:
                raise RuleError(f"address '{spec}' matches nothing")
            m = self._cache[spec] = AddressMatcher(spec, v4, v6)
        return m

    def _eval(self, item: str, spec: str, seen: tuple[str, ...]) -> tuple[Intervals, Intervals]:
        item = item.strip()
        if not item:
            raise RuleError(f"empty address in '{spec}'")
        if item.startswith("!"):
            rest = item[1:].strip()
            if rest == "any":
                raise RuleError(f"'!any' in address '{spec}' matches nothing")
            v4, v6 = self._eval(rest, spec, seen)
            return subtract([(0, V4_MAX)], v4), subtract([(0, V6_MAX)], v6)
        if item.startswith("["):
            if not item.endswith("]"):
                raise RuleError(f"unbalanced '[' in address '{spec}'")
            pos4: Intervals = []
            pos6: Intervals = []
            neg4: Intervals = []
            neg6: Intervals = []
            any_pos = False
            for sub in _split_list(item[1:-1], spec):
                if sub.startswith("!"):
                    n4, n6 = self._eval(sub[1:], spec, seen)
                    neg4 += n4
                    neg6 += n6
                else:
                    any_pos = True
                    p4, p6 = self._eval(sub, spec, seen)
                    pos4 += p4
                    pos6 += p6
            if not any_pos:
                pos4, pos6 = [(0, V4_MAX)], [(0, V6_MAX)]
            return subtract(merge(pos4), merge(neg4)), subtract(merge(pos6), merge(neg6))
        if item.startswith("$"):
            name = item[1:]
            if name in seen:
                raise RuleError(f"address variable '${name}' refers to itself")
            value = self.variables.get(name)
            if value is None:
                raise RuleError(f"undefined address variable '${name}'")
            return self._eval(str(value), spec, seen + (name,))
        if item == "any":
            return [(0, V4_MAX)], [(0, V6_MAX)]
        return _single(item, spec)


def _single(item: str, spec: str) -> tuple[Intervals, Intervals]:
    """One address, CIDR, netmask or `a-b` range."""
    try:
        if "-" in item and "/" not in item:
            a, b = (ipaddress.ip_address(x.strip()) for x in item.split("-", 1))
            if a.version != b.version or int(a) > int(b):
                raise ValueError("bad range")
            iv = [(int(a), int(b))]
            return (iv, []) if a.version == 4 else ([], iv)
        net = ipaddress.ip_network(item, strict=False)
    except ValueError:
        raise RuleError(f"invalid address '{item}' in '{spec}'") from None
    iv = [(int(net.network_address), int(net.broadcast_address))]
    return (iv, []) if net.version == 4 else ([], iv)


class AddressIndex:
    """Which of many address matchers contain an address: one bisect instead of one test each.

    For detect/: ET Open has ~1200 IP-only rules (IP reputation lists); testing
    each rule's header costs ~1.1 ms per packet/flow, a lookup here a few
    microseconds. The address space is cut at every interval boundary of the
    indexed matchers; each elementary segment keeps the (interned) set of keys
    whose matcher covers it. Index narrow matchers (lists of hosts/networks);
    a broad one (``!$HOME_NET``) is in most segments and belongs in an
    "always check" list instead (see `AddressMatcher` ``v4``/``v6``).
    """

    __slots__ = ("_v4", "_v6")

    def __init__(self, entries: Iterable[tuple[Hashable, AddressMatcher]]) -> None:
        items = list(entries)
        self._v4 = _segments([(key, m.v4) for key, m in items])
        self._v6 = _segments([(key, m.v6) for key, m in items])

    def lookup(self, packed: bytes) -> frozenset:
        """Keys whose matcher contains the 4- or 16-byte packed address."""
        n = len(packed)
        if n == 4:
            starts, sets = self._v4
        elif n == 16:
            starts, sets = self._v6
        else:
            return _EMPTY
        i = bisect_right(starts, _from_bytes(packed, "big")) - 1
        return sets[i] if i >= 0 else _EMPTY


_EMPTY: frozenset = frozenset()


def _segments(entries: list[tuple[Hashable, Intervals]]) -> tuple[list[int], list[frozenset]]:
    """Sweep: (segment starts, key set per segment), identical sets shared."""
    events: dict[int, list[tuple[int, Hashable]]] = {}
    for key, intervals in entries:
        for lo, hi in intervals:
            events.setdefault(lo, []).append((1, key))
            events.setdefault(hi + 1, []).append((-1, key))
    starts: list[int] = []
    sets: list[frozenset] = []
    interned: dict[frozenset, frozenset] = {}
    active: dict[Hashable, int] = {}
    for point in sorted(events):
        for delta, key in events[point]:
            c = active.get(key, 0) + delta
            if c:
                active[key] = c
            else:
                active.pop(key, None)
        fs = frozenset(active)
        fs = interned.setdefault(fs, fs)
        if sets and sets[-1] is fs:
            continue
        starts.append(point)
        sets.append(fs)
    return starts, sets
