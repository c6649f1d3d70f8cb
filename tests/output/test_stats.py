"""The stats record: Suricata's counters at Suricata's paths, ours under stats.netsentry."""

from __future__ import annotations

from netsentry.output.stats import is_suricata_counter, stats_event


def test_suricata_counters_stay_and_ours_move_under_netsentry():
    ev = stats_event(1.0, 5, {"decoder.pkts": 9, "decoder.event.ipv4.trunc_pkt": 1, "flow.tcp": 2,
                              "flow.timeout": 3, "detect.alert": 4, "detect.rules_loaded": 7,
                              "anomaly.alerts": 1})
    body = ev.extra["stats"]
    assert body["uptime"] == 5
    assert body["decoder"] == {"pkts": 9, "event": {"ipv4": {"trunc_pkt": 1}}}
    assert body["flow"] == {"tcp": 2} and body["detect"] == {"alert": 4}
    assert body["netsentry"] == {"flow": {"timeout": 3}, "detect": {"rules_loaded": 7},
                                 "anomaly": {"alerts": 1}}


def test_a_counter_already_named_ours_is_not_nested_twice():
    body = stats_event(1.0, 1, {"netsentry.capture.ts_out_of_range": 1, "flow.timeout": 2}).extra["stats"]
    assert body["netsentry"] == {"capture": {"ts_out_of_range": 1}, "flow": {"timeout": 2}}


def test_no_netsentry_object_when_every_counter_is_suricatas():
    assert "netsentry" not in stats_event(1.0, 1, {"decoder.pkts": 1}).extra["stats"]
    assert is_suricata_counter("capture.kernel_packets") and not is_suricata_counter("outputs.syslog.sent")
