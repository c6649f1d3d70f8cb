"""Baseline maths: running average during warm-up, EWMA after, zero buckets folded in closed form."""

from __future__ import annotations

import math
import statistics

import pytest

from netsentry.anomaly.baseline import BaselineTable


def table(**kw) -> BaselineTable:
    args = dict(cap=100, bucket=10, half_life=600, warm_up=60, metrics=1)
    args.update(kw)
    return BaselineTable("t", **args)


def feed(bt: BaselineTable, key: bytes, values, start: int = 0):
    e = None
    for i, x in enumerate(values):
        e = bt.entry(key, start + i)
        bt.update(e, start + i, (x,))
        bt.store(key, e)
    return e


def test_warm_up_is_a_plain_average_with_population_variance():
    bt = table(half_life=10_000)     # alpha tiny: the first buckets use 1/n weights
    xs = [3.0, 5.0, 10.0, 2.0]
    e = feed(bt, b"k", xs)
    mean, std = bt.mean_std(e, 0)
    assert mean == pytest.approx(statistics.fmean(xs))
    assert std == pytest.approx(statistics.pstdev(xs))


def test_ewma_weights_decay_with_the_half_life():
    bt = table(half_life=10.0, bucket=10)      # alpha = 0.5
    assert bt.alpha == pytest.approx(0.5)
    e = feed(bt, b"k", [0.0, 0.0, 0.0, 8.0])   # n*alpha >= 1 from n=2: weights 1, 1/2, 1/2, 1/2
    mean, _ = bt.mean_std(e, 0)
    assert mean == pytest.approx(4.0)


def test_warm_up_counts_buckets_since_first_seen():
    bt = table(warm_up=60, bucket=10)
    e = bt.entry(b"k", 100)
    bt.update(e, 100, (1.0,))
    bt.store(b"k", e)
    assert not bt.warmed(e, 105)
    assert bt.warmed(e, 106)


@pytest.mark.parametrize("gap", [1, 3, 50, 400])
def test_idle_buckets_fold_in_as_zeros(gap):
    lazy, eager = table(), table()
    seq = [5.0, 7.0, 6.0, 9.0]
    feed(lazy, b"k", seq)
    feed(eager, b"k", seq + [0.0] * gap)
    e_lazy = lazy.entry(b"k", len(seq) + gap)     # folds the gap on the next sighting
    e_eager = eager.entry(b"k", len(seq) + gap)
    for i in (3, 4, 2):
        assert e_lazy[i] == pytest.approx(e_eager[i], rel=1e-9, abs=1e-12)


def test_key_cap_evicts_least_recently_seen():
    bt = table(cap=3)
    for i, k in enumerate([b"a", b"b", b"c"]):
        feed(bt, k, [1.0], start=i)
    feed(bt, b"a", [1.0], start=5)        # a is refreshed
    feed(bt, b"d", [1.0], start=6)        # evicts b, the oldest
    assert set(bt.table.data) == {b"a", b"c", b"d"}
    assert bt.table.evicted == 1


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        table(bucket=0)
    assert math.isclose(table(bucket=60, half_life=60).alpha, 0.5)


@pytest.mark.parametrize("half_life", [20.0, 1800.0])
def test_advance_and_first_row_equal_entry_update_store_exactly(half_life):
    """The bucket close's shortcuts (`first_row`, `advance`) must give the very floats the
    general path gives: replays and state files stay byte-identical."""
    import random
    rng = random.Random(7)
    slow = table(cap=1000, bucket=10, half_life=half_life, metrics=2)
    fast = table(cap=1000, bucket=10, half_life=half_life, metrics=2)
    for k in range(200):
        key = b"h%d" % k
        bucket = rng.randrange(5)
        p, b = rng.randrange(1000), rng.randrange(10 ** 6)
        e = slow.entry(key, bucket)
        slow.update(e, bucket, (p / 10.0, b / 10.0))
        slow.store(key, e)
        fast.table.data[key] = fast.first_row(bucket, b << 32 | p)
        assert fast.row(key) == slow.row(key)
        for _ in range(rng.randrange(1, 6)):
            bucket += rng.choice([1, 1, 2, 3, 40, 400])
            x0, x1 = rng.random() * 100, rng.random() * 1e5
            e = slow.entry(key, bucket)
            slow.update(e, bucket, (x0, x1))
            slow.store(key, e)
            fast.table.data[key] = fast.advance(fast.table.data[key], bucket, x0, x1)
            assert fast.row(key) == slow.row(key)
    assert fast.rows() == slow.rows()


def test_entry_counts_stay_ints_on_both_paths():
    """First bucket, last bucket and the bucket count are ints in every stored row, whichever
    path (entry/update/store, advance) made it: the state file writes them as JSON numbers,
    and the compiled path once wrote the count as 4.0 where the pure path wrote 4."""
    fast = table(cap=100, bucket=1, half_life=5, metrics=2)
    slow = table(cap=100, bucket=1, half_life=5, metrics=2)
    fast.table.data[b"k"] = fast.first_row(0, 5 << 32 | 3)
    slow.table.data[b"k"] = slow.first_row(0, 5 << 32 | 3)
    for bucket in (1, 2, 5, 9, 30, 31):
        e = slow.entry(b"k", bucket)
        slow.update(e, bucket, (1.0, 2.0))
        slow.store(b"k", e)
        fast.table.data[b"k"] = fast.advance(fast.table.data[b"k"], bucket, 1.0, 2.0)
        for row in (slow.row(b"k"), fast.row(b"k")):
            assert [type(x) for x in row] == [int, int, int, float, float, float, float]
            assert row[:3] == (0, bucket, bucket + 1)
    assert slow.rows() == fast.rows()
