"""Evasions the stream stage must see through: each alerts exactly once, on the packet Suricata names.

The captures come from evasion_captures.py (scapy, written to a temporary
directory) and run through the whole sensor: decode, defrag, flow, TCP
reassembly, detection.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from netsentry.capture import read_captures
from netsentry.config import load_config
from netsentry.rules import load_rules
from netsentry.sensor import Sensor
from netsentry.stream.hostos import OS_NAMES
from netsentry.output.memory import MemoryOutput as Collect

from stream_helpers import alerts_of, replay_events  # noqa: E402  (tests/stream is on sys.path)
import evasion_captures as ev  # noqa: E402  (tests/stream is on sys.path: rootdir conftest-less import)

RULES = (
    f'alert tcp any any -> any any (msg:"tcp pattern"; content:"{ev.TCP_PATTERN.decode()}"; sid:1;)\n'
    f'alert udp any any -> any any (msg:"udp pattern"; content:"{ev.UDP_PATTERN.decode()}"; sid:2;)\n'
    f'alert tcp-pkt any any -> any any (msg:"packet only"; content:"{ev.TCP_PATTERN.decode()}"; sid:3;)\n'
)


def replay(tmp_path: Path, scenario: str, *overrides: str,
           hosts: dict[str, list[str]] | None = None, rules_text: str = RULES) -> tuple[list[tuple[int, int]], int, Sensor]:
    """Run `scenario` through the sensor; `hosts` replaces host-os-policy (every OS not named: no hosts)."""
    pcap, expected = ev.write(scenario, tmp_path)
    rules = tmp_path / "t.rules"
    rules.write_text(rules_text)
    path = None
    if hosts is not None:
        path = tmp_path / "netsentry.yaml"
        section = {name: hosts.get(name, []) for name in OS_NAMES}
        path.write_text(yaml.safe_dump({"host-os-policy": section}))
    # the scenarios name the segment that completes a pattern: inspected on arrival (the
    # acknowledgement-timed IDS inspection is tests/stream/test_raw_inspection.py's subject)
    out, sensor = replay_events(pcap, rules, path, ("stream.reassembly.raw-inspection=arrival", *overrides))
    return alerts_of(out), expected, sensor


@pytest.mark.parametrize("scenario", ["tcp-split", "tcp-tiny-segments", "tcp-out-of-order", "tcp-retransmission"])
def test_tcp_pattern_alerts_once_on_the_completing_segment(tmp_path: Path, scenario: str) -> None:
    alerts, expected, _ = replay(tmp_path, scenario)
    stream_alerts = [a for a in alerts if a[1] == 1]
    assert stream_alerts == [(expected, 1)]


@pytest.mark.parametrize("scenario", ["tcp-split", "tcp-tiny-segments", "tcp-out-of-order", "tcp-retransmission"])
def test_tcp_pattern_alerts_once_when_inspected_as_suricatas_ids_does(tmp_path: Path, scenario: str) -> None:
    # IDS default: the same single stream alert, once the receiver acknowledged the bytes
    # (or on the flow-end pseudo packet: these captures end with the data), never earlier
    pcap, expected = ev.write(scenario, tmp_path)
    rules = tmp_path / "t.rules"
    rules.write_text(RULES)
    out, _ = replay_events(pcap, rules, None, ())
    stream_alerts = [a for a in alerts_of(out) if a[1] == 1]
    assert len(stream_alerts) == 1 and (stream_alerts[0][0] == 0 or stream_alerts[0][0] > expected)


def test_packet_only_rule_never_sees_a_split_pattern(tmp_path: Path) -> None:
    alerts, _, _ = replay(tmp_path, "tcp-split")
    assert not [a for a in alerts if a[1] == 3]


def test_retransmission_is_counted_and_inspected_as_a_packet(tmp_path: Path) -> None:
    # Suricata inspects a segment the stream did not take (a retransmission) as a
    # packet: a tcp-pkt rule sees both copies, the stream rule the data once
    alerts, _, sensor = replay(tmp_path, "tcp-retransmission")
    assert sorted(alerts) == [(4, 1), (4, 3), (5, 3)]
    assert sensor.result.counters["stream.pkt_retransmission"] == 1


# The server's OS (host-os-policy) decides whose bytes count, as in Suricata.
@pytest.mark.parametrize("os_name,alerts", [
    ("bsd", True), ("linux", True), ("windows", True), ("solaris", True), ("vista", False),
])
def test_overlap_starting_before_follows_the_servers_os(tmp_path: Path, os_name: str, alerts: bool) -> None:
    got, expected, sensor = replay(tmp_path, "tcp-overlap-starts-before", hosts={os_name: [ev.S]})
    assert [a for a in got if a[1] == 1] == ([(expected, 1)] if alerts else [])
    assert sensor.result.counters["tcp.overlap"] == 1
    assert sensor.result.counters["stream.reassembly_overlap_different_data"] == 1


@pytest.mark.parametrize("os_name,alerts", [
    ("bsd", False), ("windows", False), ("vista", False), ("linux", True), ("old-linux", True),
    ("solaris", True), ("hpux11", True),
])
def test_overlap_at_the_same_start_follows_the_servers_os(tmp_path: Path, os_name: str, alerts: bool) -> None:
    got, expected, _ = replay(tmp_path, "tcp-overlap-same-start-longer", hosts={os_name: [ev.S]})
    assert [a for a in got if a[1] == 1] == ([(expected, 1)] if alerts else [])


def test_defrag_events_are_rule_matchable(tmp_path: Path) -> None:
    # the defragmenter's events are decoder events to rules (Suricata: decode-event:ipv4.frag_overlap)
    text = ('alert ip any any -> any any (msg:"overlap"; decode-event:ipv4.frag_overlap; sid:7;)\n'
            'alert ip any any -> any any (msg:"v6 overlap"; decode-event:ipv6.frag_overlap; sid:8;)\n'
            'alert ip any any -> any any (msg:"too large"; decode-event:ipv4.frag_pkt_too_large; sid:9;)\n')
    got, _, _ = replay(tmp_path, "ipv4-overlapping-fragments", rules_text=text)
    assert got == [(2, 7)]     # the fragment that overlaps the one held


@pytest.mark.parametrize("policy,alerts", [("first", False), ("last", True), ("bsd", False), ("linux", True)])
def test_hosts_in_no_list_get_the_default_tcp_policy(tmp_path: Path, policy: str, alerts: bool) -> None:
    got, expected, _ = replay(tmp_path, "tcp-overlap-same-start-longer", f"stream.reassembly.policy={policy}",
                              hosts={"linux": ["192.0.2.0/24"]})       # the client's net, not the server
    assert [a for a in got if a[1] == 1] == ([(expected, 1)] if alerts else [])


def test_suricatas_shipped_host_os_policy_makes_ipv4_hosts_windows(tmp_path: Path) -> None:
    # bundled config: windows for 0.0.0.0/0, so same start + longer keeps the held bytes
    # even with a linux default for unlisted hosts
    got, _, _ = replay(tmp_path, "tcp-overlap-same-start-longer", "stream.reassembly.policy=linux")
    assert [a for a in got if a[1] == 1] == []


@pytest.mark.parametrize("scenario", ["ipv4-tiny-fragments", "ipv4-out-of-order-fragments", "ipv6-fragments"])
def test_fragmented_datagram_alerts_once_on_the_completing_fragment(tmp_path: Path, scenario: str) -> None:
    alerts, expected, sensor = replay(tmp_path, scenario)
    assert alerts == [(expected, 2)]
    fam = "ipv6" if scenario.startswith("ipv6") else "ipv4"
    counters = sensor.result.counters
    assert counters[f"defrag.{fam}.reassembled"] == 1
    # the reassembled datagram is not a captured packet: decoder.pkts counts what was read
    assert counters["decoder.pkts"] == sensor.result.packets


@pytest.mark.parametrize("os_name,alerts", [
    ("bsd", True), ("irix", True), ("linux", True), ("solaris", True), ("macos", False), ("windows", False),
    ("vista", False),
])
def test_overlapping_fragments_follow_the_destinations_os(tmp_path: Path, os_name: str, alerts: bool) -> None:
    got, expected, sensor = replay(tmp_path, "ipv4-overlapping-fragments", hosts={os_name: ["198.51.100.0/24"]})
    assert got == ([(expected, 2)] if alerts else [])
    assert sensor.result.counters["decoder.event.ipv4.frag_overlap"] == 1


def test_defrag_events_are_rule_matchable(tmp_path: Path) -> None:
    # the defragmenter's events are decoder events to rules (Suricata: decode-event:ipv4.frag_overlap)
    text = ('alert ip any any -> any any (msg:"overlap"; decode-event:ipv4.frag_overlap; sid:7;)\n'
            'alert ip any any -> any any (msg:"v6 overlap"; decode-event:ipv6.frag_overlap; sid:8;)\n'
            'alert ip any any -> any any (msg:"too large"; decode-event:ipv4.frag_pkt_too_large; sid:9;)\n')
    got, _, _ = replay(tmp_path, "ipv4-overlapping-fragments", rules_text=text)
    assert got == [(2, 7)]     # the fragment that overlaps the one held


@pytest.mark.parametrize("policy,alerts", [("first", False), ("last", True), ("bsd", True), ("windows", False)])
def test_unlisted_destinations_get_the_default_fragment_policy(tmp_path: Path, policy: str, alerts: bool) -> None:
    got, expected, _ = replay(tmp_path, "ipv4-overlapping-fragments", f"defrag.policy={policy}", hosts={})
    assert got == ([(expected, 2)] if alerts else [])


def test_without_defragmentation_the_fragments_hide_the_pattern(tmp_path: Path) -> None:
    # the control case: the evasion works when the stage is off
    alerts, _, _ = replay(tmp_path, "ipv4-tiny-fragments", "defrag.enabled=false")
    assert alerts == []


def test_without_reassembly_a_split_pattern_is_missed(tmp_path: Path) -> None:
    alerts, _, _ = replay(tmp_path, "tcp-split", "stream.reassembly.enabled=false")
    assert alerts == []


def test_ips_drop_of_a_reassembled_datagram_drops_its_last_fragment(tmp_path: Path) -> None:
    pcap, expected = ev.write("ipv4-out-of-order-fragments", tmp_path)
    rules = tmp_path / "t.rules"
    rules.write_text(f'drop udp any any -> any any (content:"{ev.UDP_PATTERN.decode()}"; sid:5;)\n')
    config = load_config(None, ["anomaly.enabled=false", "stream.inline=true"])
    rs = load_rules([rules], config)
    out = Collect()
    sensor = Sensor(config, [out], rs)
    seen: list[tuple[int, str | None]] = []
    original = sensor._on_verdict

    def spy(pkt, flow):  # type: ignore[no-untyped-def]
        original(pkt, flow)
        if pkt.root is not None:
            seen.append((pkt.root.pcap_cnt, pkt.root.verdict))
    sensor._on_verdict = spy  # type: ignore[method-assign]
    sensor.run(read_captures([str(pcap)]))
    sensor.finish()
    assert seen == [(expected, "drop")]
