"""The sensor's wiring and capture loop, with the real stages and a collecting output."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from netsentry.capture import read_captures
from netsentry.config import ConfigError, load_config
from netsentry.sensor import Sensor, rule_paths
from netsentry.output.memory import MemoryOutput as Collect

T0 = 1_700_000_000.0


def config(*overrides: str) -> dict:
    return load_config(None, list(overrides))


def pcap(tmp_path: Path, frames: list, name: str = "t.pcap") -> Path:
    path = tmp_path / name
    wrpcap(str(path), frames)
    return path


def udp(t: float, sport: int = 1000, payload: bytes = b"hello"):
    p = Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=sport, dport=53) / payload
    p.time = t
    return p


def test_decoder_pkts_equals_packets_and_stats_event_is_written(tmp_path: Path):
    out = Collect()
    sensor = Sensor(config(), [out])
    res = sensor.run(read_captures([pcap(tmp_path, [udp(T0 + i) for i in range(7)])]))
    before = time.time()
    sensor.finish()
    after = time.time()
    assert res.packets == 7
    assert res.counters["decoder.pkts"] == 7
    (stats,) = out.of("stats")
    assert stats.extra["stats"]["decoder"]["pkts"] == 7
    assert stats.extra["stats"]["detect"]["alert"] == 0
    assert before <= stats.ts <= after             # wall clock, as Suricata's stats logger (not packet time)
    assert out.closed


def test_flow_timeout_emits_flow_event_at_packet_time(tmp_path: Path):
    out = Collect(frozenset({"flow"}))
    sensor = Sensor(config("flow.timeouts.udp.new=30", "flow.timeouts.udp.established=30"), [out])
    frames = [udp(T0, sport=1), udp(T0 + 1, sport=2), udp(T0 + 100, sport=3)]
    sensor.run(read_captures([pcap(tmp_path, frames)]))
    timed_out = [e for e in out.of("flow") if e.flow.end_reason == "timeout"]
    assert sorted(e.flow.client_port for e in timed_out) == [1, 2]
    # stamped with the time the sensor noticed, as Suricata's flow log does
    assert all(e.ts == T0 + 100 for e in timed_out)
    sensor.finish()
    shutdown = [e for e in out.of("flow") if e.flow.end_reason == "shutdown"]
    assert [e.flow.client_port for e in shutdown] == [3]
    assert sensor.result.flows == 3


def test_decoder_events_become_anomaly_records(tmp_path: Path):
    good = udp(T0)
    cut = Ether() / IP(src="10.0.0.1", dst="10.0.0.2", len=200) / UDP(sport=1, dport=2) / b"x"
    cut.time = T0 + 1
    out = Collect()
    sensor = Sensor(config(), [out])
    sensor.run(read_captures([pcap(tmp_path, [good, cut])]))
    sensor.finish()
    (anomaly,) = out.of("anomaly")
    assert anomaly.pkt.pcap_cnt == 2
    assert anomaly.extra == {"anomaly": {"type": "decode", "event": "decoder.ipv4.trunc_pkt"}}
    assert sensor.result.counters["decoder.event.ipv4.trunc_pkt"] == 1


def test_no_output_wants_anomalies_so_none_are_built(tmp_path: Path):
    cut = Ether() / IP(src="10.0.0.1", dst="10.0.0.2", len=200) / UDP(sport=1, dport=2) / b"x"
    cut.time = T0
    out = Collect(frozenset({"stats"}))
    sensor = Sensor(config(), [out])
    sensor.run(read_captures([pcap(tmp_path, [cut])]))
    sensor.finish()
    assert [e.event_type for e in out.events] == ["stats"]


def test_progress_is_reported_in_bytes_up_to_the_file_size(tmp_path: Path):
    # 9000 records written directly (scapy's writer would take seconds for this many)
    frame = bytes(udp(T0))
    record = struct.pack("<IIII", int(T0), 0, len(frame), len(frame)) + frame
    path = tmp_path / "many.pcap"
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + record * 9000)
    seen: list[int] = []
    sensor = Sensor(config(), [])
    source = read_captures([path])
    sensor.run(source, seen.append)
    sensor.finish()
    # every 4096 packets, then once at the end
    assert len(seen) == 3
    assert seen == sorted(seen)
    assert seen[-1] == path.stat().st_size


def test_capture_error_ends_the_run_cleanly(tmp_path: Path):
    path = pcap(tmp_path, [udp(T0 + i) for i in range(5)])
    path.write_bytes(path.read_bytes()[:-10])
    out = Collect()
    sensor = Sensor(config(), [out])
    source = read_captures([path])
    res = sensor.run(source)
    sensor.finish()
    # the file ends at the damage, as Suricata's pcap source ends it: no error for the run
    assert res.capture_error is None
    (err,) = source.damaged
    assert str(path) in str(err) and err.packet == 5
    assert res.packets == 4
    assert out.of("stats")[0].extra["stats"]["decoder"]["pkts"] == 4
    assert out.of("flow")                           # flows flushed despite the damage


def test_disabled_stages_are_not_built():
    sensor = Sensor(config("anomaly.enabled=false"), [])
    assert sensor.anomaly is None
    assert sensor.signatures is None                 # no rules given
    assert sensor.assets is None                     # no assets configured


def test_inline_mode_adds_ips_counters(tmp_path: Path):
    sensor = Sensor(config("stream.inline=true"), [])
    sensor.run(read_captures([pcap(tmp_path, [udp(T0)])]))
    res = sensor.finish()
    assert res.counters["ips.accepted"] == 1 and res.counters["ips.blocked"] == 0


def test_flow_config_errors_are_config_errors():
    with pytest.raises(ConfigError) as info:
        Sensor(config("flow.max-flows=0"), [])
    assert "flow.max-flows" in str(info.value)


def test_rule_paths_resolve_against_default_rule_path():
    cfg = config("default-rule-path=/etc/rules", "rule-files=[a.rules, /abs/b.rules]")
    assert rule_paths(cfg) == ["/etc/rules/a.rules", "/abs/b.rules"]


def test_midstream_setting_reaches_the_flow_table(tmp_path: Path):
    frames = [Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=5, dport=80, flags="A")]
    frames[0].time = T0
    for midstream in ("false", "true"):
        sensor = Sensor(config(f"stream.midstream={midstream}"), [])
        assert sensor.flows.midstream is (midstream == "true")
        sensor.run(read_captures([pcap(tmp_path, frames, f"m{midstream}.pcap")]))
        sensor.finish()


REPO = Path(__file__).resolve().parents[1]


def test_anomaly_alerts_are_counted_enriched_and_emitted():
    capture = REPO / "pcaps" / "anomaly-portscan.pcap"
    if not capture.exists():
        pytest.skip("sample captures not generated (pcaps/make_pcaps.py)")
    cfg = load_config(None, ["assets=[{name: web-1, cidr: 10.0.0.10, criticality: critical}]"])
    out = Collect(frozenset({"alert"}))
    sensor = Sensor(cfg, [out])
    sensor.run(read_captures([capture]))
    res = sensor.finish()
    assert res.alerts == 0                          # no rules: no signature alerts
    assert sum(res.anomaly_alerts.values()) == len(out.events) > 0
    scan = [e for e in out.events if e.pkt.dst == bytes([10, 0, 0, 10])]
    assert scan, "the scan of 10.0.0.10 was reported"
    # the sensor ran asset enrichment on it: our own field, severity raised for a critical asset
    (asset,) = scan[0].extra["netsentry"]["assets"]
    assert asset["name"] == "web-1" and asset["criticality"] == "critical"
    others = [e for e in out.events if e.pkt.dst != bytes([10, 0, 0, 10])]
    assert all("assets" not in e.extra["netsentry"] for e in others)


def test_every_part_on_and_off_compiles():
    # each part's lines are removed or kept on their own (capture_loop.specialise), so every
    # part alone and every part missing from the full set covers each line in both states
    # (all 2**14 combinations took a minute of pure-Python compiling)
    from netsentry.sensor import LOOP_PARTS, build_loop
    combos = [frozenset(), LOOP_PARTS]
    combos += [frozenset({p}) for p in LOOP_PARTS] + [LOOP_PARTS - {p} for p in LOOP_PARTS]
    for combo in combos:
        assert callable(build_loop(combo))
    with pytest.raises(ValueError, match="unknown capture loop parts"):
        build_loop(frozenset({"teleport"}))


def test_loop_has_only_the_configured_parts():
    ids = Sensor(config("anomaly.enabled=false"), [])          # no outputs, no engines
    assert ids.loop_parts() == frozenset()
    out = Collect()
    full = Sensor(config("stream.inline=true"), [out])
    # defragmentation feeds every stage that runs; TCP reassembly only detection and the app layer,
    # which runs because the flow records carry app_proto; inline without rules: the loop itself
    # keeps flows an exception policy dropped dropped
    assert full.loop_parts(progress=True) == {"flow-records", "decoder-anomalies", "anomaly", "inline",
                                              "flow-verdicts", "progress", "defrag", "stream", "applayer"}
    no_app = Sensor(config("stream.inline=true", "app-layer.enabled=false"), [out])
    assert no_app.loop_parts() == {"flow-records", "decoder-anomalies", "anomaly", "inline", "flow-verdicts",
                                   "defrag"}


def test_anomaly_alerts_do_not_mark_the_current_packets_flow_alerted():
    """A port-scan alert concerns the scanner, not the flow of the packet that
    closed the detector's window: no flow record may say alerted=true for it."""
    scan = Path(__file__).resolve().parents[1] / "pcaps" / "anomaly-portscan.pcap"
    out = Collect()
    sensor = Sensor(config(), [out])
    sensor.run(read_captures([str(scan)]))
    sensor.finish()
    assert [e for e in out.of("alert") if e.alert.signature_id == 9100001], "the scan must be detected"
    assert not [e.flow for e in out.of("flow") if e.flow.alerted]
