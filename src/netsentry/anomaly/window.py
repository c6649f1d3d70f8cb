"""Bounded key tables and tumbling packet-time windows.

Every per-key structure the detectors keep (per source, per destination, per
host baseline) lives in a `KeyTable`, so one rule bounds the engine's memory:
a table never holds more than ``cap`` keys; inserting into a full table
evicts the keys inserted (or refreshed) longest ago, a sixteenth of the cap
at a time, and counts them.

Why a plain dict and ``next(iter(d))`` rather than ``OrderedDict``: plain
dict reads and writes are what the per-flow path does millions of times, and
they are cheaper than OrderedDict's; eviction happens only when the table is
full (an attack or a cap set too small), and dict insertion order gives the
same oldest-first order with no hash-seed dependence, so replays stay
byte-identical.
"""

from __future__ import annotations

import heapq
from itertools import islice
from collections.abc import Hashable, Iterator, Mapping
from typing import Any


class KeyTable:
    """A dict with a key cap; `evicted` counts keys dropped to stay under it."""

    __slots__ = ("name", "cap", "data", "evicted")

    def __init__(self, name: str, cap: int) -> None:
        if cap < 1:
            raise ValueError(f"{name}: key cap must be >= 1, got {cap}")
        self.name = name
        self.cap = cap
        self.data: dict[Hashable, Any] = {}
        self.evicted = 0

    def insert(self, key: Hashable, value: Any) -> Any:
        """Add a key that is known to be absent, evicting the oldest if full."""
        data = self.data
        if len(data) >= self.cap:
            # Evict the oldest 1/16 at once: one scan from the front of the dict per batch.
            # One key at a time cost ~4 us per insert under a spoofed-source flood (the scan
            # for the first live entry walks the deleted ones; test_engine's million-source test).
            drop = list(islice(data, max(1, self.cap >> 4)))
            for k in drop:
                del data[k]
            self.evicted += len(drop)
        data[key] = value
        return value

    def refresh(self, key: Hashable, value: Any) -> None:
        """Move an existing key to the young end (LRU for long-lived tables such as baselines)."""
        data = self.data
        del data[key]
        data[key] = value

    def clear(self) -> None:
        self.data.clear()

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self.data)


class TumblingWindow:
    """Which fixed window of packet time we are in.

    Windows are aligned to multiples of their length since the epoch, not to
    the first packet, so the same capture always cuts into the same windows
    whatever was replayed before it (and a restarted daemon agrees with
    itself).
    """

    __slots__ = ("length", "index")

    def __init__(self, length: float) -> None:
        self.length = float(length)
        self.index = -1

    def roll(self, ts: float) -> bool:
        """Move to the window holding `ts`; True when that is a new window."""
        idx = int(ts // self.length)
        if idx != self.index:
            self.index = idx
            return True
        return False

    @property
    def start(self) -> float:
        return self.index * self.length


def top_items(counts: Mapping[Any, int], n: int) -> list[tuple[Any, int]]:
    """The n largest (key, count) pairs, ties broken by key so the order is reproducible.
    A heap, not a sort: called per second on maps of up to a thousand sources during a flood."""
    return heapq.nsmallest(n, counts.items(), key=lambda kv: (-kv[1], kv[0]))
