"""Host and IP-pair bits (Suricata's host-bit.c / ippair-bit.c): named bits with an expiry.

`hostbits` and `xbits ... track ip_src|ip_dst` share one table of bits per
host address (Suricata stores both as host bits of the same name);
`xbits ... track ip_pair` keeps bits per unordered address pair (Suricata's
IPPairCompare matches a pair both ways). Times are packet times.

Semantics copied from Suricata: `set` adds the bit with expiry now + expire
but leaves an existing bit (and its expiry) alone; `toggle` removes a bit
that is there (expired or not) and otherwise adds it; `isset` is true for a
bit not yet expired (an expired one is removed when looked at);
`isnotset` is its negation.

Memory: every `PRUNE_EVERY` writes, entries whose bits have all expired are
dropped, and a table over `max_keys` entries drops its oldest keys first, so
hostile traffic cannot grow it without bound.
"""

from __future__ import annotations

from typing import Any

PRUNE_EVERY = 4096
DEFAULT_MAX_KEYS = 262144


class XBitStore:
    """Named bits with expiry times, per key (a packed host address, or a sorted address pair)."""

    __slots__ = ("_bits", "_writes", "max_keys", "evicted")

    def __init__(self, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        self._bits: dict[Any, dict[str, float]] = {}
        self._writes = 0
        self.max_keys = max_keys
        self.evicted = 0

    def isset(self, key: Any, name: str, now: float) -> bool:
        bits = self._bits.get(key)
        if bits is None:
            return False
        expire = bits.get(name)
        if expire is None:
            return False
        if expire < now:
            del bits[name]
            return False
        return True

    def set(self, key: Any, name: str, expire: float) -> None:
        bits = self._bits.get(key)
        if bits is None:
            bits = self._new(key)
        if name not in bits:
            bits[name] = expire

    def unset(self, key: Any, name: str) -> None:
        bits = self._bits.get(key)
        if bits is not None:
            bits.pop(name, None)

    def toggle(self, key: Any, name: str, expire: float) -> None:
        bits = self._bits.get(key)
        if bits is None:
            bits = self._new(key)
        if name in bits:
            del bits[name]
        else:
            bits[name] = expire

    def _new(self, key: Any) -> dict[str, float]:
        self._writes += 1
        if not self._writes % PRUNE_EVERY or len(self._bits) >= self.max_keys:
            self._prune()
        bits: dict[str, float] = {}
        self._bits[key] = bits
        return bits

    def _prune(self) -> None:
        for key in [k for k, v in self._bits.items() if not v]:
            del self._bits[key]
        while len(self._bits) >= self.max_keys:
            del self._bits[next(iter(self._bits))]     # oldest first (dicts keep insertion order)
            self.evicted += 1

    def prune_expired(self, now: float) -> None:
        """Drop expired bits and empty keys (for a periodic sweep)."""
        for key in list(self._bits):
            bits = self._bits[key]
            for name in [n for n, e in bits.items() if e < now]:
                del bits[name]
            if not bits:
                del self._bits[key]

    def __len__(self) -> int:
        return len(self._bits)


def pair_key(a: bytes, b: bytes) -> tuple[bytes, bytes]:
    """One key for both directions between two addresses."""
    return (a, b) if a <= b else (b, a)
