"""`AlertSink`: the sensor's hand-on of a packet's rule alerts in the common case (cap,
counts, flow marked alerted, outputs) does what `Sensor._on_events`' general path does,
and declines (having done nothing) whenever that path has more to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from netsentry.config import load_config
from netsentry.detect.alertqueue import AlertQueue, AlertSink
from netsentry.event import Alert, Event
from netsentry.output.eve import render
from netsentry.output.memory import MemoryOutput
from netsentry.rules import load_rules
from netsentry.sensor import Sensor

from test_verdicts import http_flow

RULES = "".join(f'alert tcp any any -> any any (msg:"r{i}"; content:"{c}"; sid:{i}; rev:{i % 3};)\n'
                for i, c in enumerate(["GET", "HTTP", "index", "Host", "ok", "example", "200"], 1))


class GeneralPath:
    """Stands in for the sink and always declines: the sensor's own loop does the work."""

    def take(self, events: list[Any], engine: Any) -> bool:
        return False


def run(tmp_path: Path, *sets: str, general: bool = False) -> tuple[Sensor, list[dict]]:
    rf = tmp_path / "t.rules"
    rf.write_text(RULES)
    cfg = load_config(None, list(sets))
    out = MemoryOutput()
    sensor = Sensor(cfg, [out], load_rules([str(rf)], cfg))
    if general:
        sensor._alert_sink = GeneralPath()       # type: ignore[assignment]
    frames = http_flow() + http_flow(dport=8080)
    sensor.run([(1_700_000_000.0 + i * 0.01, f, len(f), 101) for i, f in enumerate(frames)])
    sensor.finish()
    return sensor, [render(e) for e in out.events if e.event_type != "stats"]


def test_same_records_and_counts_as_the_general_path(tmp_path: Path) -> None:
    for sets in ([], ["detect.packet-alert-max=2"]):
        fast, fast_recs = run(tmp_path, *sets)
        slow, slow_recs = run(tmp_path, *sets, general=True)
        assert fast_recs == slow_recs
        assert fast.result.alerts == slow.result.alerts > 0
        assert fast.result.alerts_by_signature == slow.result.alerts_by_signature
        assert fast.alert_queue.overflow == slow.alert_queue.overflow
        flows = [r for r in fast_recs if r["event_type"] == "flow"]
        assert flows and all(r["flow"]["alerted"] for r in flows)
    assert fast.alert_queue.overflow > 0            # the cap was exercised (max 2)


def _sensor_with_output() -> tuple[Sensor, MemoryOutput]:
    out = MemoryOutput()
    return Sensor(load_config(None, []), [out], None), out


def test_takes_rule_alerts_and_hands_them_on() -> None:
    sensor, out = _sensor_with_output()
    flow = type("F", (), {"alerted": False})()
    alert = Alert(5, "five", gid=1)
    events = [Event("alert", 1.0, object(), flow, alert), Event("alert", 1.0, object(), None, alert)]
    assert AlertSink(sensor, AlertQueue(15)).take(events, None) is True
    assert out.events == events
    assert flow.alerted is True
    assert sensor.result.alerts == 2
    assert sensor.result.alerts_by_signature == {(1, 5): ["five", 2]}


def test_declines_without_side_effects_when_the_general_path_has_more_to_do() -> None:
    alert = Alert(5, "five")
    cases = [
        [Event("alert", 1.0, None, None, alert), Event("anomaly", 1.0, None, None, None)],
        [Event("alert", 1.0, None, None, None)],
        [Event("alert", 1.0, None, None, alert), object()],
    ]
    for events in cases:
        sensor, out = _sensor_with_output()
        assert AlertSink(sensor, AlertQueue(15)).take(events, None) is False
        assert out.events == [] and sensor.result.alerts == 0 and not sensor.result.alerts_by_signature
    sensor, out = _sensor_with_output()
    sensor.responder = object()          # IPS responder, rate limit or asset map: the general path
    assert AlertSink(sensor, AlertQueue(15)).take([Event("alert", 1.0, None, None, alert)], None) is False
    assert out.events == []


def test_deliver_is_the_loops_on_events_and_sends_the_rest_to_the_general_path() -> None:
    """`deliver` (what the capture loop calls) counts rule alerts as signature alerts and
    anomaly-engine alerts as anomaly alerts, as `Sensor._on_events` does for both."""
    sensor, out = _sensor_with_output()
    sink = sensor._alert_sink
    assert sensor._loop_on_events() == sink.deliver
    rule = Event("alert", 1.0, object(), None, Alert(5, "five"))
    sink.deliver([rule], rule.pkt, None, False)
    scan = Event("alert", 2.0, None, None, Alert(9, "port scan"))
    sink.deliver([scan], None, None, True)
    assert out.events == [rule, scan]
    assert sensor.result.alerts == 1 and sensor.result.alerts_by_signature == {(1, 5): ["five", 1]}
    assert sensor.result.anomaly_alerts == {"port scan": 1}
    # a stand-in sink without `deliver`: the loop gets the sensor's own method
    sensor._alert_sink = object()           # type: ignore[assignment]
    assert sensor._loop_on_events() == sensor._on_events
