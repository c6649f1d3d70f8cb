"""Learned per-key baselines: exponentially weighted mean and variance over fixed buckets.

Why EWMA mean/variance (Finch, "Incremental calculation of weighted mean and
variance", 2009): two floats per metric and a handful of arithmetic
operations per key and bucket, no history kept, and old behaviour fades with
a half-life the operator can reason about ("what this host did over the last
few hours"). A median/MAD or histogram estimator resists outliers better but
needs a window of samples per key, which the key cap could not afford at
100,000 hosts.

Buckets are cut from packet time (epoch-aligned, like every window here), so
replaying the same capture learns exactly the same numbers. A key's value
for a bucket is its count divided by the bucket length (a rate per second).
Buckets in which a key was not seen count as zeros; they are folded in
lazily the next time the key shows up, in closed form, so an idle key costs
nothing per bucket. Entries are stored as tuples (see `store`), except a key's
first bucket, which is stored as one int (see `first_row`).

Warm-up: for its first buckets a key's weight is 1/n (a plain running
average), not alpha, so the first busy minute does not dominate the mean
for hours; a key may fire only once it has existed for ``warm-up`` seconds.
"""

from __future__ import annotations

import math
from collections.abc import Hashable

try:
    import cython
except ImportError:          # pure install without Cython: the annotations are no-ops
    from netsentry import _cython_shim as cython  # type: ignore[no-redef]

from netsentry.anomaly.window import KeyTable

# Entry layout (a tuple in the table, a list while being updated):
FIRST, LAST, N = 0, 1, 2        # first bucket seen, last bucket folded in, buckets folded in
MEAN0 = 3                        # then mean, variance for each metric: [3], [4], [5], [6], ...

# A key seen in one bucket only is stored as the int ``traffic << FIRST_SHIFT | bucket``, where
# traffic is the bucket's ``bytes << 32 | packets`` (two metrics); see `first_row`.
FIRST_SHIFT = 40
FIRST_MASK = (1 << FIRST_SHIFT) - 1


class BaselineTable:
    """Per-key EWMA statistics for ``metrics`` rates, bounded by a key cap."""

    def __init__(self, name: str, *, cap: int, bucket: float, half_life: float, warm_up: float,
                 metrics: int = 2) -> None:
        if bucket <= 0 or half_life <= 0 or warm_up < 0:
            raise ValueError(f"{name}: bucket and half-life must be > 0, warm-up >= 0")
        self.name = name
        self.bucket = float(bucket)
        self.half_life = float(half_life)
        self.alpha = 1.0 - 2.0 ** (-self.bucket / self.half_life)
        self.warm_buckets = math.ceil(warm_up / self.bucket)
        self.metrics = metrics
        self.table = KeyTable(name, cap)

    # --- one key --------------------------------------------------------------

    @staticmethod
    def first_row(bucket: int, traffic: int) -> int:
        """The stored form of a key's first bucket: ``traffic << FIRST_SHIFT | bucket``.

        Most hosts of a busy link are seen in one bucket and never again (a client address
        per flow); an int is cheaper to build than the 7-tuple and, unlike a tuple, is never
        tracked by the garbage collector: ~20,000 new rows per bucket on the bench capture
        made most of the young collections the engine triggered. `row` expands it to exactly
        the tuple the first update would have stored (2 metrics, rates = count / bucket)."""
        return traffic << FIRST_SHIFT | bucket

    def row(self, key: Hashable) -> tuple | None:
        """The key's stored entry as a tuple (None if unknown)."""
        row = self.table.data.get(key)
        if row.__class__ is int:
            return self.expand(row)
        return row

    def expand(self, row: int) -> tuple:
        """The tuple for a `first_row` int."""
        bucket = row & FIRST_MASK
        traffic = row >> FIRST_SHIFT
        length = self.bucket
        return (bucket, bucket, 1, (traffic & 0xFFFFFFFF) / length, 0.0, (traffic >> 32) / length, 0.0)

    def rows(self) -> list[tuple[Hashable, tuple]]:
        """Every (key, entry tuple), oldest first (the state file's order)."""
        expand = self.expand
        return [(k, expand(r) if r.__class__ is int else r) for k, r in self.table.data.items()]

    def advance(self, row: tuple | int, bucket: int, x0: float, x1: float) -> tuple:
        """The stored `row` of a two-metric key with the buckets it was not seen in folded in
        as zeros and then (`x0`, `x1`) as `bucket`'s rates: what `entry`, `update` and `store`
        compute, with the same floating-point operations in the same order (so replays stay
        byte-identical), in one call on locals. Used by the bucket close for the hosts that
        cannot spike, about 5,000 per bucket on the bench capture, many coming back after a
        gap of a few buckets (each warm-up zero bucket was one `update` call). The work is
        `advance_row` (on C doubles when compiled; traffic-spike's bucket close calls it
        directly)."""
        return advance_row(row, bucket, x0, x1, self.alpha, self.bucket)

    # An entry is annotated `list`, not list[float]: compiled, Cython reads the items of a
    # list[float] as C doubles, so `update` and `_fold_zeros` stored the bucket count as a
    # float (4.0 where the pure path writes 4) and the state file differed between the paths.
    def entry(self, key: Hashable, bucket: int) -> list:
        """A working copy of the key's entry with every bucket before `bucket` folded in
        (a fresh one if the key is new). Change it with `update`, keep it with `store`."""
        row = self.row(key)
        if row is None:
            return [bucket, bucket - 1, 0] + [0.0] * (2 * self.metrics)
        e = list(row)
        gap = bucket - 1 - e[LAST]
        if gap > 0:
            self._fold_zeros(e, gap)
            e[LAST] = bucket - 1
        return e

    def store(self, key: Hashable, e: list) -> None:
        """Keep `e` as the key's entry (the key becomes the most recently used).

        Entries are stored as tuples of numbers, which the garbage collector stops
        tracking: with 100,000 hosts as lists, every full collection walked them all
        (bench_anomaly on the 1M capture: engine cost 5.0 -> 3.0 us/packet without
        the collector; tuples remove most of that difference)."""
        data = self.table.data
        if data.pop(key, None) is None and len(data) >= self.table.cap:
            self.table.insert(key, tuple(e))
        else:
            data[key] = tuple(e)

    def warmed(self, e: list, bucket: int) -> bool:
        return bucket - e[FIRST] >= self.warm_buckets

    @staticmethod
    def mean_std(e: list, metric: int) -> tuple[float, float]:
        i = MEAN0 + 2 * metric
        var = e[i + 1]
        return e[i], math.sqrt(var) if var > 0.0 else 0.0

    def update(self, e: list, bucket: int, values: tuple[float, ...]) -> None:
        """Fold in the rates observed in `bucket` (call after `entry`, once per bucket)."""
        n = e[N] + 1
        e[N] = n
        a = self.alpha
        if n * a < 1.0:
            a = 1.0 / n          # warm-up: running average until 1/n drops below alpha
        i = MEAN0
        for x in values:
            mean = e[i]
            diff = x - mean
            incr = a * diff
            e[i] = mean + incr
            e[i + 1] = (1.0 - a) * (e[i + 1] + diff * incr)
            i += 2
        e[LAST] = bucket

    def _fold_zeros(self, e: list, gap: int) -> None:
        """Fold `gap` zero-valued buckets in: step by step while the 1/n warm-up weight
        applies, then in closed form (mean_k = m r^k, var_k = r^k (v + m^2 (1 - r^k)))."""
        a = self.alpha
        zeros = (0.0,) * self.metrics
        while gap > 0 and (e[N] + 1) * a < 1.0:
            self.update(e, int(e[LAST]) + 1, zeros)
            gap -= 1
        if gap <= 0:
            return
        rk = (1.0 - a) ** gap
        i = MEAN0
        for _ in range(self.metrics):
            m = e[i]
            e[i] = m * rk
            e[i + 1] = rk * (e[i + 1] + m * m * (1.0 - rk))
            i += 2
        e[N] += gap

    # --- state file ---------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.table)


@cython.ccall
@cython.locals(first=cython.longlong, last=cython.longlong, n=cython.longlong, gap=cython.longlong,
               m0=cython.double, v0=cython.double, m1=cython.double, v1=cython.double,
               a=cython.double, diff=cython.double, incr=cython.double, rk=cython.double, m=cython.double)
def advance_row(row: object, bucket: cython.longlong, x0: cython.double, x1: cython.double,
                alpha: cython.double, length: cython.double) -> tuple:
    """`BaselineTable.advance` for a table of bucket `length` and weight `alpha`.

    Compiled (baseline.pxd), every intermediate is a C double or a 64-bit integer, not a
    boxed float per operation: the operations are IEEE double arithmetic in the same
    order as the Python floats', and ``(1 - alpha) ** gap`` is C ``pow`` as Python's
    float power is, so both paths store the same bits. Bucket indexes and counts fit
    64 bits (buckets since the epoch); the traffic int of a first row may not, so it is
    split as a Python int."""
    if row.__class__ is int:
        first = last = row & FIRST_MASK
        traffic = row >> FIRST_SHIFT
        n = 1
        m0 = (traffic & 0xFFFFFFFF) / length
        v0 = 0.0
        m1 = (traffic >> 32) / length
        v1 = 0.0
    else:
        first, last, n, m0, v0, m1, v1 = row
    gap = bucket - 1 - last
    while gap > 0 and (n + 1) * alpha < 1.0:      # _fold_zeros, step by step in warm-up
        n += 1
        a = alpha
        if n * a < 1.0:
            a = 1.0 / n
        diff = 0.0 - m0
        incr = a * diff
        m0 = m0 + incr
        v0 = (1.0 - a) * (v0 + diff * incr)
        diff = 0.0 - m1
        incr = a * diff
        m1 = m1 + incr
        v1 = (1.0 - a) * (v1 + diff * incr)
        gap -= 1
    if gap > 0:                                     # _fold_zeros, closed form
        rk = (1.0 - alpha) ** gap
        m = m0
        m0 = m * rk
        v0 = rk * (v0 + m * m * (1.0 - rk))
        m = m1
        m1 = m * rk
        v1 = rk * (v1 + m * m * (1.0 - rk))
        n += gap
    n += 1                                          # update
    a = alpha
    if n * a < 1.0:
        a = 1.0 / n
    diff = x0 - m0
    incr = a * diff
    m0 = m0 + incr
    v0 = (1.0 - a) * (v0 + diff * incr)
    diff = x1 - m1
    incr = a * diff
    m1 = m1 + incr
    v1 = (1.0 - a) * (v1 + diff * incr)
    return (first, bucket, n, m0, v0, m1, v1)
