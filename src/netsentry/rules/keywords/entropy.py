"""`entropy` (Suricata 8, detect-entropy.c / rust/src/detect/entropy.rs): the Shannon
entropy of the buffer, in bits per byte (0..8), compared with a value.

``entropy:[bytes <n>,][offset <n>,]value <op><x>`` on the current buffer (the packet
payload when no sticky buffer was named): ``offset`` skips bytes from the start,
``bytes`` takes that many (a buffer too short for either does not match); ``value``
is Suricata's float comparison: ``x`` or ``=x``, ``!=x``, ``<x``, ``<=x``, ``>x``,
``>=x``, ``a-b`` (strictly between) and ``!a-b`` (outside, bounds included).

The computed value is kept on the flow as a float flowvar named after the buffer
(``file_data``, ``http_uri``...; ``content`` for the payload), so EVE lists it under
``metadata.entropy.<name>``. Suricata keeps it whenever the keyword was evaluated;
here it is kept when the rule matched (the post-match step that stores pcre
captures), so a rule that failed further on leaves no value.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from netsentry.rules.errors import RuleError
from netsentry.rules.inspect import Det, Item
from netsentry.rules.registry import RuleBuilder, keyword

_NUM = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_RANGE = re.compile(rf"\s*(!?)\s*({_NUM})\s*(?:-|<>)\s*({_NUM})\s*$")
_SYMBOL = re.compile(rf"\s*(>=|<=|>|<|!=|=)?\s*({_NUM})\s*$")


def parse_float(text: str, what: str) -> Callable[[float], bool]:
    """Suricata's DetectFloatData parse (rust/src/detect/float.rs) -> a predicate."""
    m = _RANGE.match(text)
    if m:
        lo, hi = float(m.group(2)), float(m.group(3))
        if not hi > lo:
            raise RuleError(f"{what}: invalid range '{text}' (the second bound must be larger)")
        if m.group(1):
            return lambda v: v <= lo or v >= hi
        return lambda v: lo < v < hi
    m = _SYMBOL.match(text)
    if not m:
        raise RuleError(f"{what}: invalid value '{text}'")
    op, x = m.group(1) or "=", float(m.group(2))
    return {
        "=": lambda v: v == x, "!=": lambda v: v != x, "<": lambda v: v < x,
        "<=": lambda v: v <= x, ">": lambda v: v > x, ">=": lambda v: v >= x,
    }[op]


def entropy(data: bytes) -> float:
    """Shannon entropy of `data` in bits per byte (0.0 for no data), summed in byte-value
    order as Suricata's calculate_entropy does, so the float is the same to the last bit."""
    n = len(data)
    if not n:
        return 0.0
    counts = Counter(data)
    e = 0.0
    for byte in sorted(counts):
        p = counts[byte] / n
        e -= p * math.log2(p)
    return e


class Entropy(Item):
    def __init__(self, offset: int, nbytes: int, pred: Callable[[float], bool]) -> None:
        self.offset, self.nbytes, self.pred = offset, nbytes, pred
        self.captured: float | None = None

    def inspect(self, buf: bytes, blen: int, det: Det) -> bool:
        start, count = 0, blen
        if self.offset > 0:
            if self.offset > count:
                return False
            start, count = self.offset, count - self.offset
        if self.nbytes > 0:
            if self.nbytes > count:
                return False
            count = self.nbytes
        value = entropy(bytes(buf[start:start + count]))
        if not self.pred(value):
            return False
        self.captured = value
        nxt = self.next
        return True if nxt is None else nxt(buf, blen, det)


def _store(item: Entropy, name: str) -> Callable[[Any, Any], None]:
    def store(pkt: Any, flow: Any) -> None:
        value = item.captured
        if value is None:
            return
        item.captured = None
        if flow is None:
            return
        bits = flow.flowbits
        if bits is None:
            bits = flow.flowbits = {}
        bits[("entropy", name)] = value
    return store


def _var_name(buffer: str) -> str:
    """The flowvar's name: Suricata's name of the buffer (file.data -> file_data)."""
    if buffer == "pkt_data":
        return "content"
    return buffer.replace(".", "_")


@keyword("entropy", help="entropy:[bytes N,][offset N,]value OPX; the buffer's Shannon entropy")
def entropy_keyword(b: RuleBuilder, arg: str | None) -> None:
    b.require_packet_buffer("entropy")
    parts = [p.strip() for p in (arg or "").split(",")]
    if not 1 <= len(parts) <= 4 or not all(parts):
        raise RuleError(f"entropy: expected '[bytes N,][offset N,]value X', got '{arg}'")
    offset = nbytes = 0
    pred = None
    seen: set[str] = set()
    for part in parts:
        name, _, val = part.partition(" ")
        val = val.strip()
        if name in seen:
            raise RuleError(f"entropy: {name} already set")
        seen.add(name)
        if name in ("bytes", "offset"):
            try:
                n = int(val)
            except ValueError:
                raise RuleError(f"entropy: invalid {name} value: {val}") from None
            if name == "offset":
                if not -65535 <= n <= 65535:
                    raise RuleError(f"entropy: invalid offset value: must be between -65535 and 65535: {val}")
                offset = n
            else:
                nbytes = n
        elif name == "value":
            pred = parse_float(val, "entropy")
        else:
            raise RuleError(f"entropy: unknown entropy option: {name}")
    if pred is None:
        raise RuleError(f"entropy: required entropy parameter missing: value ('{arg}')")
    item = Entropy(offset, nbytes, pred)
    b.add_item(item)
    b.post_actions.append(_store(item, _var_name(b.buffer)))
