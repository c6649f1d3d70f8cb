"""Rule header port specs: `any`, `80`, `1024:`, `:1023`, `[80,443,8000:8100]`, `!`, `$VARS`.

Evaluated once into merged intervals (like addresses.py). `contains(port)` is
a frozenset lookup for small sets and a bisect for wide ranges; `ranges()`
gives detect/ the intervals for grouping rules by port (None for any).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable

from netsentry.rules.addresses import Intervals, _split_list, _true, merge, subtract
from netsentry.rules.errors import RuleError

PORT_MAX = 65535
_SET_LIMIT = 64   # ports: up to this many as a frozenset (one hash lookup)


class PortMatcher:
    __slots__ = ("text", "intervals", "is_any", "contains", "_starts", "_set")

    def __init__(self, text: str, intervals: Intervals) -> None:
        self.text = text
        self.intervals = intervals
        self.is_any = intervals == [(0, PORT_MAX)]
        self._starts = [lo for lo, _ in intervals]
        size = sum(hi - lo + 1 for lo, hi in intervals)
        self._set: frozenset[int] | None = None
        if self.is_any:
            self.contains: Callable[[int], bool] = _true
        elif size <= _SET_LIMIT:
            self._set = frozenset(p for lo, hi in intervals for p in range(lo, hi + 1))
            self.contains = self._set.__contains__
        else:
            self.contains = self._contains

    def _contains(self, port: int) -> bool:
        i = bisect_right(self._starts, port) - 1
        return i >= 0 and port <= self.intervals[i][1]

    def ranges(self) -> list[tuple[int, int]] | None:
        """Inclusive (lo, hi) intervals, sorted and merged; None when any port matches."""
        return None if self.is_any else list(self.intervals)

    def __repr__(self) -> str:
        return f"<PortMatcher {self.text}>"


class PortParser:
    def __init__(self, variables: dict[str, str]) -> None:
        self.variables = variables
        self._cache: dict[str, PortMatcher] = {}

    def parse(self, spec: str) -> PortMatcher:
        spec = spec.strip()
        m = self._cache.get(spec)
        if m is None:
            iv = self._eval(spec, spec, ())
            if not iv:
                raise RuleError(f"port '{spec}' matches nothing")
            m = self._cache[spec] = PortMatcher(spec, iv)
        return m

    def _eval(self, item: str, spec: str, seen: tuple[str, ...]) -> Intervals:
        item = item.strip()
        if not item:
            raise RuleError(f"empty port in '{spec}'")
        if item.startswith("!"):
            rest = item[1:].strip()
            if rest == "any":
                raise RuleError(f"'!any' in port '{spec}' matches nothing")
            return subtract([(0, PORT_MAX)], self._eval(rest, spec, seen))
        if item.startswith("["):
            if not item.endswith("]"):
                raise RuleError(f"unbalanced '[' in port '{spec}'")
            pos: Intervals = []
            neg: Intervals = []
            any_pos = False
            for sub in _split_list(item[1:-1], spec):
                if sub.startswith("!"):
                    neg += self._eval(sub[1:], spec, seen)
                else:
                    any_pos = True
                    pos += self._eval(sub, spec, seen)
            if not any_pos:
                pos = [(0, PORT_MAX)]
            return subtract(merge(pos), merge(neg))
        if item.startswith("$"):
            name = item[1:]
            if name in seen:
                raise RuleError(f"port variable '${name}' refers to itself")
            value = self.variables.get(name)
            if value is None:
                raise RuleError(f"undefined port variable '${name}'")
            return self._eval(str(value), spec, seen + (name,))
        if item == "any":
            return [(0, PORT_MAX)]
        return [_single(item, spec)]


def _port(text: str, spec: str) -> int:
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 5 or int(text) > PORT_MAX:
        raise RuleError(f"invalid port '{text}' in '{spec}'")
    return int(text)


def _single(item: str, spec: str) -> tuple[int, int]:
    if ":" in item:
        lo_s, hi_s = item.split(":", 1)
        lo = _port(lo_s, spec) if lo_s.strip() else 0
        hi = _port(hi_s, spec) if hi_s.strip() else PORT_MAX
        if lo > hi:
            raise RuleError(f"invalid port range '{item}' in '{spec}'")
        return lo, hi
    p = _port(item, spec)
    return p, p
