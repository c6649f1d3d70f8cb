"""The collector settings of the capture loop (gcpolicy.py), and that the sensor applies them."""

from __future__ import annotations

import gc

from netsentry import gcpolicy
from netsentry.config import load_config
from netsentry.gcpolicy import capture_gc
from netsentry.sensor import Sensor

FRAME = bytes(14)     # an Ethernet header with ethertype 0: decoded as a non-IP frame


def test_capture_gc_freezes_what_is_alive_and_restores_the_settings():
    before = gc.get_threshold()
    survivor = [object() for _ in range(10)]        # alive when the loop starts
    with capture_gc():
        assert gc.get_threshold() == (gcpolicy.GEN0, gcpolicy.GEN1, gcpolicy.GEN2)
        assert gc.get_freeze_count() >= len(survivor)
        assert gc.isenabled()                         # tuned, never switched off
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_capture_gc_restores_the_settings_when_the_loop_raises():
    before = gc.get_threshold()
    try:
        with capture_gc():
            raise KeyError("boom")
    except KeyError:
        pass
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_capture_gc_still_collects_cycles():
    class Node:
        pass

    with capture_gc():
        a, b = Node(), Node()
        a.other, b.other = b, a
        del a, b
        assert gc.collect() >= 2        # the cycle is found by an explicit or scheduled collection


def test_the_sensor_runs_its_loop_under_the_policy():
    seen = []

    def source():
        seen.append(gc.get_threshold())
        yield 1.0, FRAME, len(FRAME), 1

    before = gc.get_threshold()
    sensor = Sensor(load_config(None, []), [])
    sensor.run(source())
    sensor.finish()
    assert seen == [(gcpolicy.GEN0, gcpolicy.GEN1, gcpolicy.GEN2)]
    assert gc.get_threshold() == before
