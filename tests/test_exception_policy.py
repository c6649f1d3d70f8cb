"""Exception policies (Suricata's): resolution of the master switch and per-condition settings,
and what the midstream policy does to a session picked up in the middle."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP

from netsentry.config import ConfigError, load_config
from netsentry.exception_policy import midstream_policy, packet_policy
from netsentry.output.eve import render
from netsentry.sensor import Sensor
from netsentry.output.memory import MemoryOutput as Collect


@pytest.fixture(autouse=True)
def _log_to_a_buffer():
    """The policy logs once per condition; an earlier CLI test may have left structlog
    writing to a captured (now closed) stderr."""
    import io

    from netsentry.log import setup_logging
    setup_logging("warning", "json", stream=io.StringIO())


def cfg(*sets: str) -> dict:
    return load_config(None, list(sets))


@pytest.mark.parametrize("sets,ips,expected", [
    ((), True, "drop-flow"),                                   # auto in IPS: fail closed
    ((), False, "ignore"),                                     # auto in IDS
    (("stream.midstream=true",), True, "ignore"),              # midstream pickups wanted
    (("exception-policy=pass-flow",), True, "pass-flow"),
    (("exception-policy=drop-flow",), False, "ignore"),        # nothing to drop in IDS mode
    (("exception-policy=ignore",), True, "ignore"),
    (("exception-policy=ignore", "stream.midstream-policy=reject"), True, "reject"),
    (("stream.midstream-policy=auto",), True, "drop-flow"),
    (("stream.midstream=true", "stream.midstream-policy=pass-flow"), True, "pass-flow"),
])
def test_midstream_policy_resolution(sets: tuple[str, ...], ips: bool, expected: str) -> None:
    assert midstream_policy(cfg(*sets), ips) == expected


@pytest.mark.parametrize("sets,ips,message", [
    (("exception-policy=sometimes",), True, "exception-policy: expected one of"),
    (("stream.midstream-policy=drop",), True, "stream.midstream-policy: expected one of"),
    (("stream.midstream=true", "stream.midstream-policy=drop-flow"), True, "not valid while stream.midstream"),
    (("stream.midstream-policy=drop-flow",), False, "not valid in IDS mode"),
    (("stream.midstream-policy=drop-packet",), True, "not valid for midstream sessions"),
    (("exception-policy=pass-packet",), True, "cannot act on a midstream session"),
])
def test_midstream_policy_errors_name_the_key(sets: tuple[str, ...], ips: bool, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        midstream_policy(cfg(*sets), ips)


def test_packet_only_conditions_take_the_packet_form() -> None:
    assert packet_policy(cfg(), "x.memcap-policy", True) == "drop-packet"
    assert packet_policy(cfg("exception-policy=pass-flow"), "x.memcap-policy", True) == "pass-packet"
    assert packet_policy(cfg("exception-policy=bypass"), "x.memcap-policy", True) == "ignore"
    assert packet_policy(cfg(), "x.memcap-policy", False) == "ignore"


def _run(frames: list, *sets: str) -> tuple[Sensor, Collect]:
    out = Collect()
    sensor = Sensor(cfg(*sets), [out])
    t0 = 1_700_000_000.0
    sensor.run([(t0 + i * 0.01, bytes(f), len(bytes(f)), 101) for i, f in enumerate(frames)])
    sensor.finish()
    return sensor, out


def _flow_record(out: Collect) -> dict:
    flows = [e for e in out.events if e.event_type == "flow"]
    assert len(flows) == 1
    return render(flows[0])["flow"]


MID = [IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1234, dport=80, flags="A", seq=100, ack=200),
       IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1234, dport=80, flags="PA", seq=100, ack=200) / b"data"]
HANDSHAKE = [IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1234, dport=80, flags="S", seq=99),
             IP(src="10.0.0.2", dst="10.0.0.1") / TCP(sport=80, dport=1234, flags="SA", seq=199, ack=100)]


def test_ips_drops_a_midstream_session_by_default() -> None:
    sensor, out = _run(MID, "stream.inline=true")
    rec = _flow_record(out)
    assert rec["exception_policy"] == [{"target": "stream_midstream", "policy": "drop_flow"}]
    assert rec["action"] == "drop"
    assert sensor.result.drops >= 1
    assert sensor.counters()["exception_policy.tcp.midstream.drop_flow"] == 1


def test_ips_drop_flow_holds_for_later_packets_without_rules() -> None:
    """No signature stage: the dropped flow's later packets are still dropped."""
    sensor, out = _run(MID + MID, "stream.inline=true")
    assert sensor.result.drops == 4


def test_ips_with_midstream_enabled_records_ignore() -> None:
    """As suricata-verify's exception-policy-midstream-03."""
    sensor, out = _run(MID, "stream.inline=true", "stream.midstream=true")
    rec = _flow_record(out)
    assert rec["exception_policy"] == [{"target": "stream_midstream", "policy": "ignore"}]
    assert "action" not in rec and sensor.result.drops == 0
    assert not any(k.startswith("exception_policy.tcp.midstream") for k in sensor.counters())


def test_ids_records_without_dropping() -> None:
    sensor, out = _run(MID)
    assert _flow_record(out)["exception_policy"] == [{"target": "stream_midstream", "policy": "ignore"}]
    assert sensor.result.drops == 0


def test_pass_flow_stops_inspection_of_the_session(tmp_path: Path) -> None:
    rules = tmp_path / "r.rules"
    rules.write_text('alert tcp any any -> any 80 (msg:"data"; content:"data"; sid:1;)\n')
    from netsentry.rules import load_rules
    c = cfg("stream.inline=true", "stream.midstream-policy=pass-flow")
    out = Collect()
    sensor = Sensor(c, [out], load_rules([str(rules)], c))
    sensor.run([(1.0 + i, bytes(f), len(bytes(f)), 101) for i, f in enumerate(MID)])
    sensor.finish()
    assert not [e for e in out.events if e.event_type == "alert"]
    assert _flow_record(out)["exception_policy"] == [{"target": "stream_midstream", "policy": "pass_flow"}]


def test_a_session_seen_from_its_syn_has_no_exception() -> None:
    sensor, out = _run(HANDSHAKE, "stream.inline=true")
    assert "exception_policy" not in _flow_record(out)
    assert sensor.result.drops == 0


def test_a_policy_that_is_not_ignore_has_its_counter_before_it_applies() -> None:
    """Suricata registers a condition's counter when its policy is not ignore, so a stats
    record shows the policy in force at 0 until it applies (and no counter: ignored)."""
    sensor, _ = _run(HANDSHAKE, "stream.inline=true")
    counters = sensor.counters()
    assert counters["exception_policy.tcp.midstream.drop_flow"] == 0
    assert counters["exception_policy.tcp.reassembly.drop_flow"] == 0
    assert not any(k.startswith("exception_policy.flow.") for k in counters)     # flow reuse: no condition
    sensor, _ = _run(HANDSHAKE)
    assert not any(k.startswith("exception_policy.") for k in sensor.counters())  # IDS: all ignore


def _alerting_run(tmp_path: Path, frames: list, *sets: str) -> tuple[Sensor, list[dict]]:
    rules = tmp_path / "r.rules"
    rules.write_text('alert udp any any -> any any (msg:"any udp"; sid:1;)\n')
    from netsentry.rules import load_rules
    c = cfg(*sets)
    out = Collect()
    sensor = Sensor(c, [out], load_rules([str(rules)], c))
    sensor.run([(1.0 + i, bytes(f), len(bytes(f)), 101) for i, f in enumerate(frames)])
    sensor.finish()
    return sensor, [render(e) for e in out.events if e.event_type == "alert"]


UDP_TWO_FLOWS = [IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1000 + i, dport=53) / b"q" for i in range(2)]


@pytest.mark.parametrize("policy,drops", [("pass-packet", 0), ("drop-packet", 1)])
def test_packet_policies_take_the_packet_out_of_detection(tmp_path: Path, policy: str, drops: int) -> None:
    # the second flow finds the flow table full: the policy acts on its packet alone,
    # and Suricata's no-packet-inspection mark means no rule sees it (no alert)
    sensor, alerts = _alerting_run(tmp_path, UDP_TWO_FLOWS, "stream.inline=true", "flow.max-flows=1",
                                   f"flow.memcap-policy={policy}")
    assert [a["pcap_cnt"] for a in alerts] == [1]
    assert sensor.result.drops == drops


def test_ignore_policy_leaves_the_packet_to_detection(tmp_path: Path) -> None:
    _sensor, alerts = _alerting_run(tmp_path, UDP_TWO_FLOWS, "stream.inline=true", "flow.max-flows=1",
                                    "flow.memcap-policy=ignore")
    assert [a["pcap_cnt"] for a in alerts] == [1, 2]
