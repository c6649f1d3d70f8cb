"""The stats record: Suricata's counters at Suricata's paths, ours under stats.netsentry."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

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


# --- the record's timestamp in a replay: wall clock, as Suricata's JsonStatsLogger ---------

@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("t0", [1_700_000_000.0, 0.0], ids=["dated", "epoch"])
def test_replay_stats_record_is_stamped_with_the_wall_clock(tmp_path, workers, t0):
    """Every replay path stamps the stats record with the time it is written (Suricata:
    output-json-stats.c uses gettimeofday), whatever the packets' time; flow records
    keep packet time. It used to be the last packet's time, except the wall clock
    when that was 0 (an epoch-stamped capture)."""
    frames = []
    for i in range(4):
        p = Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=3000 + i, dport=53) / b"x"
        p.time = t0 + i
        frames.append(p)
    pcap = tmp_path / "t.pcap"
    wrpcap(str(pcap), frames)
    out = tmp_path / "out"
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    proc = subprocess.run([sys.executable, "-m", "netsentry", "replay", str(pcap), "--workers", workers,
                           "-l", str(out), "-q"], capture_output=True, text=True, timeout=120)
    after = datetime.now(timezone.utc) + timedelta(seconds=1)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in (out / "eve.json").read_text().splitlines()]
    (stats,) = [r for r in records if r["event_type"] == "stats"]
    stamped = datetime.strptime(stats["timestamp"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert before <= stamped <= after, stats["timestamp"]
    flows = [r for r in records if r["event_type"] == "flow"]
    assert len(flows) == 4
    assert {r["timestamp"][:4] for r in flows} == {"2023" if t0 else "1970"}
