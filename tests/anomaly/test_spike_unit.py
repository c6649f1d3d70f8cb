"""traffic-spike against a learned baseline: warm-up, floor, sensitivity, criticality factor."""

from __future__ import annotations

from anomaly_helpers import FlowDriver, config_with, packet

from netsentry.anomaly import AnomalyEngine

BASE = 1_800_000_000.0          # a multiple of the 10 s bucket


def run(rate_normal: int, rate_spike: int, seconds_before: int, cfg=None, host="192.168.5.5"):
    """`rate_normal` packets/s for `seconds_before` s, then one bucket at `rate_spike`, then quiet traffic."""
    eng = AnomalyEngine(cfg or config_with({"traffic-spike": {"min-bytes-per-second": 1e12}}))
    d = FlowDriver(eng)
    t = BASE
    for s in range(seconds_before):
        for i in range(rate_normal):
            d.send(packet(host, "10.9.9.9", t + s + i / max(rate_normal, 1), proto=17, sp=5000, dp=514))
    t += seconds_before
    for i in range(rate_spike * 10):
        d.send(packet(host, "10.9.9.9", t + i / rate_spike, proto=17, sp=5000, dp=514))
    for s in range(10, 40):
        d.send(packet(host, "10.9.9.9", t + s, proto=17, sp=5000, dp=514))
    return [e for e in d.finish() if e.extra["netsentry"]["anomaly"]["key"] == host]


def test_spike_after_warm_up_fires():
    events = run(2, 300, 700)
    assert len(events) == 1
    a = events[0].extra["netsentry"]["anomaly"]
    assert a["detector"] == "traffic-spike" and a["unit"] == "packets/s"
    assert a["observed"] == 300.0 and a["baseline"]["mean"] < 3


def test_no_alert_during_warm_up():
    assert run(2, 300, 500) == []          # 500 s tracked < 600 s warm-up


def test_floor_keeps_small_spikes_quiet():
    assert run(1, 100, 700) == []          # 100 pkt/s is 100x the mean but below the 150 floor


def test_sensitivity_against_a_noisy_baseline():
    # a host alternating 50 and 250 pkt/s: stddev ~100, so 400 is within mean + 4 sd (150 + 400)
    cfg = config_with({"traffic-spike": {"min-bytes-per-second": 1e12}})
    eng = AnomalyEngine(cfg)
    d = FlowDriver(eng)
    host = "192.168.5.6"
    for b in range(70):
        rate = 50 if b % 2 else 250
        for i in range(rate * 10):
            d.send(packet(host, "10.9.9.9", BASE + b * 10 + i / rate, proto=17, sp=1, dp=2))
    for i in range(4000):
        d.send(packet(host, "10.9.9.9", BASE + 700 + i / 400, proto=17, sp=1, dp=2))
    d.send(packet(host, "10.9.9.9", BASE + 725, proto=17, sp=1, dp=2))
    assert [e for e in d.finish() if e.extra["netsentry"]["anomaly"]["key"] == host] == []


def test_critical_asset_tightens_the_floor():
    cfg = config_with({"traffic-spike": {"min-bytes-per-second": 1e12}},
                      assets=[{"name": "db", "cidr": "192.168.5.0/24", "criticality": "critical"}])
    events = run(1, 100, 700, cfg)          # floor 150 x 0.5 = 75 < 100
    assert len(events) == 1
    assert events[0].extra["netsentry"]["anomaly"]["baseline"]["floor"] == 75.0
