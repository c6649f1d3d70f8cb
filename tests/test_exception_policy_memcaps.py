"""The memory-cap and error exception policies, each condition hit for real: a capture
replayed through `netsentry replay` with a small cap in the configuration.

Per condition: the flow record names it (`flow.exception_policy`), the stats record
counts it under Suricata's counter name, the daemon's log says so once, and in IPS
mode (`--simulate-ips`) the policy decides the verdicts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP, fragment
from scapy.utils import wrpcap

from netsentry.config import ConfigError, load_config
from netsentry.exception_policy import CONDITIONS, ExceptionPolicies, condition_policy

C, S = "10.0.0.1", "10.0.0.2"


def replay(tmp_path: Path, packets: list, *args: str) -> tuple[list[dict], str]:
    pcap = tmp_path / "in.pcap"
    t0 = 1_700_000_000.0
    for i, p in enumerate(packets):
        p.time = t0 + i * 0.01
    wrpcap(str(pcap), packets)
    logdir = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "netsentry", "replay", str(pcap), "-l", str(logdir), "-q",
                           "--set", "logging.format=json", *args],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in (logdir / "eve.json").read_text().splitlines()]
    return records, done.stderr


def of(records: list[dict], etype: str) -> list[dict]:
    return [r for r in records if r["event_type"] == etype]


def counters(records: list[dict]) -> dict:
    return of(records, "stats")[-1]["stats"]


def policy_log_lines(stderr: str, target: str) -> list[str]:
    return [line for line in stderr.splitlines() if "exception policy applied" in line and target in line]


def session(sport: int, *segments: tuple[int, bytes], dport: int = 80) -> list:
    """Handshake, then client segments at (sequence offset from the ISN+1, payload)."""
    c = IP(src=C, dst=S)
    s = IP(src=S, dst=C)
    pkts = [c / TCP(sport=sport, dport=dport, flags="S", seq=1000),
            s / TCP(sport=dport, dport=sport, flags="SA", seq=5000, ack=1001),
            c / TCP(sport=sport, dport=dport, flags="A", seq=1001, ack=5001)]
    for off, data in segments:
        pkts.append(c / TCP(sport=sport, dport=dport, flags="PA", seq=1001 + off, ack=5001) / data)
    return pkts


# --- stream.reassembly.memcap-policy -------------------------------------------------------

def ooo_session() -> list:
    """A hole at the start, then 2 KB out of order: over a 1 KB reassembly memcap, then more
    segments of the same flow after it."""
    return session(40000, (100, b"x" * 2000), (0, b"y" * 100), (2100, b"z" * 50))


def test_reassembly_memcap_drop_flow_drops_the_flow_in_ips(tmp_path):
    records, stderr = replay(tmp_path, ooo_session(), "--simulate-ips", "--set", "stream.reassembly.memcap=1kb",
                             "--set", "stream.reassembly.memcap-policy=drop-flow")
    flow = of(records, "flow")[0]["flow"]
    assert flow["exception_policy"] == [{"target": "stream_reassembly_memcap", "policy": "drop_flow"}]
    assert flow["action"] == "drop"
    stats = counters(records)
    assert stats["exception_policy"]["tcp"]["reassembly"]["drop_flow"] == 1
    assert stats["tcp"]["segment_memcap_drop"] == 1
    # the segment that hit the cap and the two after it: dropped
    assert stats["ips"]["blocked"] == 3
    assert len(policy_log_lines(stderr, "stream_reassembly_memcap")) == 1


def test_reassembly_memcap_in_ids_is_recorded_not_dropped(tmp_path):
    records, stderr = replay(tmp_path, ooo_session(), "--set", "stream.reassembly.memcap=1kb")
    flow = of(records, "flow")[0]["flow"]
    assert flow["exception_policy"] == [{"target": "stream_reassembly_memcap", "policy": "ignore"}]
    assert "action" not in flow
    assert not of(records, "drop")
    assert policy_log_lines(stderr, "stream_reassembly_memcap") == []      # ignore: not logged


def test_reassembly_memcap_pass_flow_stops_inspection(tmp_path):
    rules = tmp_path / "r.rules"
    rules.write_text('alert tcp any any -> any 80 (msg:"z"; content:"zzzz"; sid:1;)\n')
    records, _ = replay(tmp_path, ooo_session(), "--simulate-ips", "-S", str(rules),
                        "--set", "stream.reassembly.memcap=1kb", "--set", "stream.reassembly.memcap-policy=pass-flow")
    assert of(records, "flow")[0]["flow"]["exception_policy"][0]["policy"] == "pass_flow"
    assert not of(records, "alert")         # the "zzzz" segment came after the pass


# --- defrag.memcap-policy -----------------------------------------------------------------

def fragments(ident: int, sport: int) -> list:
    return fragment(IP(src=C, dst=S, id=ident) / UDP(sport=sport, dport=53) / (b"f" * 600), fragsize=200)


def test_defrag_memcap_drops_the_fragments_over_the_cap_in_ips(tmp_path):
    # max-frags 3: a datagram of 4 fragments finds the cap reached at its last one
    frags = fragments(1, 1000)
    assert len(frags) == 4
    records, stderr = replay(tmp_path, frags, "--simulate-ips",
                             "--set", "defrag.max-frags=3", "--set", "defrag.memcap-policy=drop-packet")
    stats = counters(records)
    assert stats["exception_policy"]["defrag"]["memcap"]["drop_packet"] == 1
    assert stats["defrag"]["max_frags_reached"] == 1
    assert stats["ips"]["blocked"] == 1
    drops = of(records, "drop")
    assert len(drops) == 1 and drops[0]["src_ip"] == C
    assert len(policy_log_lines(stderr, "defrag_memcap")) == 1


def test_defrag_memcap_by_default_in_ips_is_drop_packet(tmp_path):
    first, second = fragments(1, 1000), fragments(2, 1001)
    # one tracker: the second datagram arrives while the first is still being reassembled
    records, _ = replay(tmp_path, first[:2] + second + first[2:], "--simulate-ips", "--set", "defrag.trackers=1")
    stats = counters(records)
    assert stats["defrag"]["max_trackers_reached"] == 4
    assert stats["exception_policy"]["defrag"]["memcap"]["drop_packet"] == 4


# --- flow.memcap-policy -------------------------------------------------------------------

def udp_flows(n: int) -> list:
    return [IP(src=C, dst=S) / UDP(sport=2000 + i, dport=53) / b"q" for i in range(n)]


def test_flow_memcap_without_a_policy_reuses_flows(tmp_path):
    records, _ = replay(tmp_path, udp_flows(5), "--simulate-ips", "--set", "flow.max-flows=2")
    stats = counters(records)
    assert stats["netsentry"]["flow"]["evicted"] >= 3
    assert "flow" not in stats.get("exception_policy", {})
    assert stats["ips"]["blocked"] == 0


def test_flow_memcap_policy_refuses_new_flows_at_the_cap(tmp_path):
    records, stderr = replay(tmp_path, udp_flows(5), "--simulate-ips", "--set", "flow.max-flows=2",
                             "--set", "flow.memcap-policy=drop-flow")
    stats = counters(records)
    assert stats["flow"]["memcap"] == 3
    # a packet condition: drop-flow acts on the packet (no flow to act on)
    assert stats["exception_policy"]["flow"]["memcap"]["drop_packet"] == 3
    assert stats["ips"]["blocked"] == 3
    assert sorted(f["src_port"] for f in of(records, "flow")) == [2000, 2001]   # no eviction
    assert len(policy_log_lines(stderr, "flow_memcap")) == 1


# --- app-layer.error-policy -----------------------------------------------------------------

def tls_then_garbage() -> list:
    """A TLS record, then bytes that are no TLS record, then one more segment."""
    hello = bytes.fromhex("16030100") + bytes([4]) + bytes.fromhex("01000000")     # a (tiny) client hello
    return session(40443, (0, hello), (9, b"GET / HTTP/1.1\r\n\r\n"), (9 + 18, b"more"), dport=443)


def test_app_layer_error_drop_flow(tmp_path):
    # a TLS rule, so the flow's bytes are parsed (a protocol nobody reads is only detected)
    rules = tmp_path / "r.rules"
    rules.write_text('alert tls any any -> any any (msg:"sni"; tls.sni; content:"nowhere"; sid:9;)\n')
    records, stderr = replay(tmp_path, tls_then_garbage(), "--simulate-ips", "-S", str(rules),
                             "--set", "app-layer.error-policy=drop-flow")
    flow = of(records, "flow")[0]
    assert flow["app_proto"] == "tls"
    assert flow["flow"]["exception_policy"] == [{"target": "app_layer_error", "policy": "drop_flow"}]
    assert flow["flow"]["action"] == "drop"
    stats = counters(records)
    assert stats["exception_policy"]["app_layer"]["error"]["drop_flow"] == 1
    assert stats["app_layer"]["error"]["tls"]["parser"] == 1
    assert stats["ips"]["blocked"] == 2         # the garbage segment and the one after it
    assert len(policy_log_lines(stderr, "app_layer_error")) == 1


# --- resolution ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(CONDITIONS))
def test_each_condition_follows_the_master_switch(name):
    c = CONDITIONS[name]
    ips_auto = "drop-flow" if c.flow_scope else "drop-packet"
    assert condition_policy(load_config(None, []), c.key, True, c.flow_scope) == ips_auto
    assert condition_policy(load_config(None, []), c.key, False, c.flow_scope) == "ignore"
    assert condition_policy(load_config(None, ["exception-policy=pass-flow"]), c.key, True, c.flow_scope) == \
        ("pass-flow" if c.flow_scope else "pass-packet")
    assert condition_policy(load_config(None, [f"{c.key}=ignore", "exception-policy=drop-flow"]),
                            c.key, True, c.flow_scope) == "ignore"


def test_bad_policy_values_name_their_key():
    with pytest.raises(ConfigError, match="defrag.memcap-policy: expected one of"):
        ExceptionPolicies(load_config(None, ["defrag.memcap-policy=sometimes"]), True)
    with pytest.raises(ConfigError, match="stream.reassembly.memcap-policy: drop-flow is not valid in IDS"):
        ExceptionPolicies(load_config(None, ["stream.reassembly.memcap-policy=drop-flow"]), False)
