"""`netsentry` end to end, as a user runs it: a subprocess on small captures crafted here.

Bad input must give one clear line on stderr (no traceback) and the right
exit status: 1 for runtime/input errors, 2 for usage/configuration errors.
A damaged capture still gets everything before the damage written.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from netsentry import __version__

BIN = Path(sys.executable).with_name("netsentry")
T0 = 1_700_000_000.0


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "netsentry.cli"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, cwd=cwd, timeout=120)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The error of a failed run: exactly one line, no traceback. Other stderr lines
    may only be the daemon's own log lines (JSON objects, since stderr is a pipe here)."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    for line in lines:
        if line.startswith("{"):
            orjson.loads(line)
    errors = [line for line in lines if not line.startswith("{")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def eve(logdir: Path) -> list[dict]:
    return [orjson.loads(line) for line in (logdir / "eve.json").read_bytes().splitlines()]


def stats_of(records: list[dict]) -> dict:
    (stats,) = [r["stats"] for r in records if r["event_type"] == "stats"]
    return stats


def conversation(t: float = T0, client: str = "10.0.0.1", server: str = "10.0.0.2", sport: int = 40000):
    """A small TCP exchange, a DNS-ish UDP pair and a ping: 9 packets, 3 flows."""
    pkts = [
        Ether() / IP(src=client, dst=server) / TCP(sport=sport, dport=80, flags="S", seq=100),
        Ether() / IP(src=server, dst=client) / TCP(sport=80, dport=sport, flags="SA", seq=500, ack=101),
        Ether() / IP(src=client, dst=server) / TCP(sport=sport, dport=80, flags="A", seq=101, ack=501),
        Ether() / IP(src=client, dst=server) / TCP(sport=sport, dport=80, flags="PA", seq=101, ack=501)
        / b"GET /netsentry-test HTTP/1.1\r\nHost: x\r\n\r\n",
        Ether() / IP(src=server, dst=client) / TCP(sport=80, dport=sport, flags="A", seq=501, ack=143),
        Ether() / IP(src=client, dst="10.0.0.53") / UDP(sport=5353, dport=53) / b"\x00\x01query",
        Ether() / IP(src="10.0.0.53", dst=client) / UDP(sport=53, dport=5353) / b"\x00\x01answer",
        Ether() / IP(src=client, dst=server) / ICMP(type=8, id=1, seq=1),
        Ether() / IP(src=server, dst=client) / ICMP(type=0, id=1, seq=1),
    ]
    for i, p in enumerate(pkts):
        p.time = t + i * 0.01
    return pkts


@pytest.fixture()
def good_pcap(tmp_path: Path) -> Path:
    path = tmp_path / "good.pcap"
    wrpcap(str(path), conversation())
    return path


# --- happy paths ---------------------------------------------------------------------

def test_version():
    proc = run("version")
    assert proc.returncode == 0
    first, path = proc.stdout.splitlines()
    assert first == f"netsentry {__version__}"
    assert path.startswith(("fast path: compiled", "fast path: pure Python"))   # tests/test_compiled.py


def test_python_dash_m_runs_the_same_command_line():
    proc = subprocess.run([sys.executable, "-m", "netsentry", "version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stdout.splitlines()[0] == f"netsentry {__version__}"
    bad = subprocess.run([sys.executable, "-m", "netsentry", "replay"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert "give at least one PCAP" in bad.stderr


def test_replay_writes_eve_and_summary(tmp_path: Path, good_pcap: Path):
    out = tmp_path / "logs"
    proc = run("replay", str(good_pcap), "-l", str(out))
    assert proc.returncode == 0, proc.stderr
    records = eve(out)
    stats = stats_of(records)
    assert stats["decoder"]["pkts"] == 9
    flows = [r for r in records if r["event_type"] == "flow"]
    assert sorted(f["proto"] for f in flows) == ["ICMP", "TCP", "UDP"]
    tcp = next(f for f in flows if f["proto"] == "TCP")
    assert (tcp["src_ip"], tcp["src_port"], tcp["dest_ip"], tcp["dest_port"]) == ("10.0.0.1", 40000, "10.0.0.2", 80)
    assert tcp["flow"]["pkts_toserver"] == 3 and tcp["flow"]["pkts_toclient"] == 2
    assert tcp["flow"]["reason"] == "shutdown"
    # the stats record is last, stamped with the wall clock as Suricata's (tests/output/test_stats.py)
    assert records[-1]["event_type"] == "stats"
    assert not records[-1]["timestamp"].startswith("2023-")
    # summary on stdout, nothing on stderr but log lines
    assert "packets        9" in proc.stdout
    assert "flows          3" in proc.stdout
    assert f"eve.json       {out / 'eve.json'}" in proc.stdout


def test_replay_ends_without_tear_down_yet_every_output_is_whole(tmp_path: Path, good_pcap: Path):
    """The entry point ends replay with os._exit (no interpreter tear-down: a warm ET Open
    start spent tenths of a second freeing the ruleset); outputs were closed before, and
    stdout/stderr are flushed even when they are files (block-buffered), so what a user
    redirects is whole. Called in-process, main() returns instead (the tear-down skip
    belongs to the process entry only)."""
    from netsentry.cli import main
    out, inproc = tmp_path / "logs", tmp_path / "inproc"
    with open(tmp_path / "stdout", "w") as so, open(tmp_path / "stderr", "w") as se:
        proc = subprocess.run([sys.executable, "-m", "netsentry", "replay", str(good_pcap), "-l", str(out)],
                              stdout=so, stderr=se, timeout=120, env={**os.environ, "PYTHONUNBUFFERED": ""})
    assert proc.returncode == 0, (tmp_path / "stderr").read_text()
    assert "packets        9" in (tmp_path / "stdout").read_text()
    assert "replay started" in (tmp_path / "stderr").read_text()
    assert main(["replay", str(good_pcap), "-l", str(inproc), "-q"]) == 0
    whole, reference = eve(out), eve(inproc)
    assert whole[-1]["event_type"] == "stats"
    assert [r["event_type"] for r in whole] == [r["event_type"] for r in reference]


def test_quiet_prints_nothing(tmp_path: Path, good_pcap: Path):
    proc = run("replay", str(good_pcap), "-l", str(tmp_path), "-q")
    assert proc.returncode == 0
    assert proc.stdout == ""
    assert stats_of(eve(tmp_path))["decoder"]["pkts"] == 9


def test_directory_replays_sorted_captures_as_one_stream(tmp_path: Path):
    d = tmp_path / "caps"
    d.mkdir()
    wrpcap(str(d / "b.pcap"), conversation(T0 + 10, sport=40002))
    wrpcap(str(d / "a.pcap"), conversation(T0, sport=40001))
    (d / "notes.txt").write_text("not a capture")
    out = tmp_path / "out"
    proc = run("replay", str(d), "-l", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    records = eve(out)
    assert stats_of(records)["decoder"]["pkts"] == 18
    tcp_flows = sorted((r["src_port"], r["flow"]["start"]) for r in records
                       if r["event_type"] == "flow" and r["proto"] == "TCP")
    assert [port for port, _ in tcp_flows] == [40001, 40002]


def test_directory_captures_replay_in_time_order_not_name_order(tmp_path: Path):
    """Rotated pieces (`x.pcap9` sorts after `x.pcap10` by name) replay oldest first."""
    d = tmp_path / "caps"
    d.mkdir()
    wrpcap(str(d / "a-later.pcap"), conversation(T0 + 100, sport=40002))
    wrpcap(str(d / "b-earlier.pcap"), conversation(T0, sport=40001))
    rules = tmp_path / "all.rules"
    rules.write_text('alert tcp any any -> any any (msg:"every tcp packet"; sid:1;)\n')
    out = tmp_path / "out"
    proc = run("replay", str(d), "-S", str(rules), "-l", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    alerts = [r for r in eve(out) if r["event_type"] == "alert"]
    by_count = [r["timestamp"] for r in sorted(alerts, key=lambda r: r["pcap_cnt"])]
    assert alerts and by_count == sorted(by_count)
    assert alerts[0]["src_port"] == 40001 or alerts[0]["dest_port"] == 40001


def test_r_flag_and_positional_combine(tmp_path: Path, good_pcap: Path):
    second = tmp_path / "second.pcap"
    wrpcap(str(second), conversation(T0 + 100, sport=41000))
    proc = run("replay", str(good_pcap), "-r", str(second), "-l", str(tmp_path), "-q")
    assert proc.returncode == 0, proc.stderr
    assert stats_of(eve(tmp_path))["decoder"]["pkts"] == 18


def test_set_and_config_file_reach_the_outputs(tmp_path: Path, good_pcap: Path):
    cfg = tmp_path / "ns.yaml"
    cfg.write_text("outputs:\n  eve-log:\n    filename: events.json\n")
    proc = run("replay", str(good_pcap), "-c", str(cfg), "--set", "outputs.eve-log.types=[stats]",
               "-l", str(tmp_path), "-q")
    assert proc.returncode == 0, proc.stderr
    lines = (tmp_path / "events.json").read_bytes().splitlines()
    assert [orjson.loads(line)["event_type"] for line in lines] == ["stats"]


def test_checksum_validation_flag(tmp_path: Path):
    bad = Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=2, chksum=0x1234)
    bad.time = T0
    path = tmp_path / "csum.pcap"
    wrpcap(str(path), [bad])
    for flag, expect in (("all", 1), ("none", 0)):
        out = tmp_path / flag
        proc = run("replay", str(path), "-k", flag, "-l", str(out), "-q")
        assert proc.returncode == 0, proc.stderr
        events = stats_of(eve(out))["decoder"].get("event", {})
        assert events.get("tcp", {}).get("csum_invalid", 0) == expect


# --- bad captures: one line, everything before the damage written --------------
# A file that is no capture: exit 1. Damage partway through a file ends that file
# there (logged with file, packet number and byte), the next file is read, exit 0:
# Suricata's pcap file source does the same (PcapFileDispatch).

def damage_lines(proc: subprocess.CompletedProcess[str]) -> list[dict]:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert all(line.startswith("{") for line in lines), proc.stderr       # no plain error line
    return [r for r in map(orjson.loads, lines) if r["level"] == "error"]


@pytest.mark.parametrize("damage", ["cut", "absurd"])
def test_damaged_capture_ends_there_and_the_next_file_is_read(tmp_path: Path, good_pcap: Path, damage: str):
    data = good_pcap.read_bytes()
    bad = tmp_path / "bad.pcap"
    if damage == "cut":
        bad.write_bytes(data[:-20])       # the last record loses its tail
        packet = 9
    else:                                 # the third record's header claims 300000 bytes
        off = 24
        for _ in range(2):
            off += 16 + struct.unpack_from("<I", data, off + 8)[0]
        bad.write_bytes(data[:off + 8] + struct.pack("<I", 300000) + data[off + 12:])
        packet = 3
    later = tmp_path / "later.pcap"
    wrpcap(str(later), conversation(T0 + 100, sport=41000))
    out = tmp_path / "out"
    proc = run("replay", str(bad), str(later), "-l", str(out))
    assert proc.returncode == 0, proc.stderr
    (line,) = damage_lines(proc)
    assert (line["file"], line["packet"]) == (str(bad), packet)
    assert line["error"].startswith(f"{bad}: ") and f"(packet {packet})" in line["error"]
    records = eve(out)
    total = packet - 1 + 9
    assert stats_of(records)["decoder"]["pkts"] == total   # every good record before the damage, then the next file
    assert {r["src_port"] for r in records if r["event_type"] == "flow" and r["proto"] == "TCP"} >= {41000}
    assert f"packets        {total}" in proc.stdout        # the summary is printed


def test_garbage_file(tmp_path: Path):
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"this is not a capture file at all" * 10)
    proc = run("replay", str(junk), "-l", str(tmp_path / "out"))
    assert proc.returncode == 1
    line = one_line_error(proc)
    assert str(junk) in line and "not a pcap or pcapng file" in line


def test_empty_file(tmp_path: Path):
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    proc = run("replay", str(empty), "-l", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert one_line_error(proc) == f"netsentry: {empty}: empty file"


def test_missing_file(tmp_path: Path):
    missing = tmp_path / "missing.pcap"
    proc = run("replay", str(missing), "-l", str(tmp_path / "out"))
    assert proc.returncode == 1
    line = one_line_error(proc)
    assert str(missing) in line and "No such file or directory" in line


def test_unknown_link_type(tmp_path: Path):
    path = tmp_path / "odd.pcap"
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 147)   # LINKTYPE_USER0
    record = struct.pack("<IIII", int(T0), 0, 4, 4) + b"abcd"
    path.write_bytes(header + record)
    proc = run("replay", str(path), "-l", str(tmp_path / "out"))
    assert proc.returncode == 1
    line = one_line_error(proc)
    assert str(path) in line and "unsupported link type 147" in line


def test_empty_directory(tmp_path: Path):
    d = tmp_path / "nothing"
    d.mkdir()
    proc = run("replay", str(d))
    assert proc.returncode == 1
    assert one_line_error(proc) == f"netsentry: {d}: no *.pcap, *.pcapng or *.cap files in this directory"


def test_unwritable_logdir(tmp_path: Path, good_pcap: Path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    proc = run("replay", str(good_pcap), "-l", str(blocker / "sub"))
    assert proc.returncode == 1
    assert str(blocker) in one_line_error(proc)


def test_missing_rule_file(tmp_path: Path, good_pcap: Path):
    proc = run("replay", str(good_pcap), "-S", str(tmp_path / "nope.rules"), "-l", str(tmp_path))
    assert proc.returncode == 1
    assert one_line_error(proc) == (
        f"netsentry: {tmp_path / 'nope.rules'}: cannot read rule file: No such file or directory")


# --- usage and configuration errors: exit 2 ------------------------------------------------

def test_invalid_yaml_config(tmp_path: Path, good_pcap: Path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("flow:\n  max-flows: [1, 2\n")
    proc = run("replay", str(good_pcap), "-c", str(cfg), "-l", str(tmp_path))
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert line.startswith(f"config error: {cfg}:3:1: invalid YAML: ")


def test_unknown_config_key(tmp_path: Path, good_pcap: Path):
    cfg = tmp_path / "ns.yaml"
    cfg.write_text("flow:\n  max_flows: 10\n")
    proc = run("replay", str(good_pcap), "-c", str(cfg), "-l", str(tmp_path))
    assert proc.returncode == 2
    assert one_line_error(proc) == (
        f"config error: flow.max_flows: unknown key (did you mean 'max-flows'?) (from {cfg})")
    assert not (tmp_path / "eve.json").exists()


def test_wrong_type_from_set(tmp_path: Path, good_pcap: Path):
    proc = run("replay", str(good_pcap), "--set", "flow.max-flows=lots", "-l", str(tmp_path))
    assert proc.returncode == 2
    assert one_line_error(proc) == (
        "config error: flow.max-flows: expected an integer, got 'lots' (from --set flow.max-flows=lots)")


def test_bad_logging_level(tmp_path: Path, good_pcap: Path):
    proc = run("replay", str(good_pcap), "--set", "logging.level=loud", "-l", str(tmp_path))
    assert proc.returncode == 2
    assert one_line_error(proc).startswith("config error: logging.level: expected one of debug, info")


def test_no_pcap_is_a_usage_error():
    proc = run("replay")
    assert proc.returncode == 2
    assert "give at least one PCAP" in one_line_error(proc)


def test_unknown_flag_is_a_usage_error(good_pcap: Path):
    proc = run("replay", str(good_pcap), "--frobnicate")
    assert proc.returncode == 2
    assert "unrecognized arguments: --frobnicate" in one_line_error(proc)


def test_bad_k_value(good_pcap: Path):
    proc = run("replay", str(good_pcap), "-k", "some")
    assert proc.returncode == 2
    assert "invalid choice: 'some'" in one_line_error(proc)


def test_no_command_prints_help_and_exits_2():
    proc = run()
    assert proc.returncode == 2
    assert "usage: netsentry" in proc.stderr


def test_daemon_log_lines_are_json_when_not_a_terminal(tmp_path: Path, good_pcap: Path):
    rules = tmp_path / "r.rules"
    rules.write_text('alert tcp any any -> any any (msg:"x"; sid:1;)\n')
    import netsentry.detect
    import netsentry.rules
    if not (hasattr(netsentry.rules, "load_rules") and hasattr(netsentry.detect, "SignatureEngine")):
        pytest.skip("rules/detect stages not landed yet")
    proc = run("replay", str(good_pcap), "-S", str(rules), "-l", str(tmp_path), "-q")
    assert proc.returncode == 0, proc.stderr
    lines = [orjson.loads(line) for line in proc.stderr.splitlines()]
    assert any(rec["event"] == "rules loaded" and rec["level"] == "info" for rec in lines)


def test_env_has_no_effect_on_determinism(tmp_path: Path, good_pcap: Path):
    """Two replays of the same capture give byte-identical eve.json apart from stats uptime."""
    outs = []
    for name in ("one", "two"):
        out = tmp_path / name
        assert run("replay", str(good_pcap), "-l", str(out), "-q").returncode == 0
        outs.append([r for r in eve(out) if r["event_type"] != "stats"])
    assert outs[0] == outs[1]
    assert os.path.getsize(tmp_path / "one" / "eve.json") > 0


# --- with rules: alerts, and drops in simulated IPS mode -------------------------------------

RULE = ('{action} tcp any any -> any 80 (msg:"netsentry test GET"; flow:to_server; '
        'content:"GET /netsentry-test"; classtype:web-application-attack; sid:1000001; rev:2;)\n')


def _needs_detect():
    import netsentry.detect
    import netsentry.rules
    if not (hasattr(netsentry.rules, "load_rules") and hasattr(netsentry.detect, "SignatureEngine")):
        pytest.skip("rules/detect stages not landed yet")


def test_alert_record_and_summary(tmp_path: Path, good_pcap: Path):
    _needs_detect()
    rules = tmp_path / "t.rules"
    rules.write_text(RULE.format(action="alert"))
    out = tmp_path / "out"
    proc = run("replay", str(good_pcap), "-S", str(rules), "-l", str(out))
    assert proc.returncode == 0, proc.stderr
    records = eve(out)
    (alert,) = [r for r in records if r["event_type"] == "alert"]
    # the GET is acknowledged by the last TCP packet, the server's: inspected on the flow-end
    # pseudo packet (Suricata's IDS raw reassembly), which has no packet number
    assert "pcap_cnt" not in alert and alert["pkt_src"] == "stream (flow timeout)"
    assert alert["alert"]["signature_id"] == 1000001 and alert["alert"]["rev"] == 2
    assert alert["alert"]["signature"] == "netsentry test GET"
    assert alert["alert"]["action"] == "allowed"
    assert alert["direction"] == "to_server"
    assert (alert["src_ip"], alert["dest_port"]) == ("10.0.0.1", 80)
    assert alert["flow"]["src_ip"] == "10.0.0.1" and alert["flow"]["pkts_toserver"] == 3
    tcp_flow = next(r for r in records if r["event_type"] == "flow" and r["proto"] == "TCP")
    assert tcp_flow["flow"]["alerted"] is True and tcp_flow["flow_id"] == alert["flow_id"]
    assert stats_of(records)["detect"]["alert"] == 1
    assert "alerts         1  (1 signatures)" in proc.stdout
    assert "[1:1000001] netsentry test GET" in proc.stdout
    assert not [r for r in records if r["event_type"] == "drop"]


def test_drop_rule_without_ips_only_alerts(tmp_path: Path, good_pcap: Path):
    _needs_detect()
    rules = tmp_path / "t.rules"
    rules.write_text(RULE.format(action="drop"))
    proc = run("replay", str(good_pcap), "-S", str(rules), "-l", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    records = eve(tmp_path)
    assert [r["alert"]["action"] for r in records if r["event_type"] == "alert"] == ["allowed"]
    assert not [r for r in records if r["event_type"] == "drop"]
    assert "drops" not in proc.stdout


def test_simulate_ips_drops_and_logs_like_suricata(tmp_path: Path, good_pcap: Path):
    _needs_detect()
    rules = tmp_path / "t.rules"
    rules.write_text(RULE.format(action="drop"))
    proc = run("replay", str(good_pcap), "-S", str(rules), "--simulate-ips", "-l", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    records = eve(tmp_path)
    (alert,) = [r for r in records if r["event_type"] == "alert"]
    assert alert["alert"]["action"] == "blocked"
    drops = [r for r in records if r["event_type"] == "drop"]
    # flows: start -- the packet the rule dropped, then the first dropped packet the other way
    assert [(d["pcap_cnt"], d["direction"]) for d in drops] == [(4, "to_server"), (5, "to_client")]
    assert drops[0]["alert"]["signature_id"] == 1000001 and drops[0]["drop"]["reason"] == "rules"
    assert "alert" not in drops[1] and drops[1]["drop"]["reason"] == "flow drop"
    tcp_flow = next(r for r in records if r["event_type"] == "flow" and r["proto"] == "TCP")
    assert tcp_flow["flow"]["action"] == "drop"
    stats = stats_of(records)
    assert stats["ips"] == {"accepted": 7, "blocked": 2}
    assert "drops          2" in proc.stdout


def test_simulate_ips_drop_flows_all(tmp_path: Path, good_pcap: Path):
    _needs_detect()
    rules = tmp_path / "t.rules"
    rules.write_text(RULE.format(action="drop"))
    proc = run("replay", str(good_pcap), "-S", str(rules), "--simulate-ips", "-q",
               "--set", "outputs.eve-log.drop.flows=all", "-l", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert [d["pcap_cnt"] for d in eve(tmp_path) if d["event_type"] == "drop"] == [4, 5]


def test_rules_from_config_plus_s(tmp_path: Path, good_pcap: Path):
    _needs_detect()
    (tmp_path / "base.rules").write_text(RULE.format(action="alert"))
    (tmp_path / "more.rules").write_text(
        'alert udp any any -> any 53 (msg:"netsentry test udp"; content:"query"; sid:1000002;)\n')
    cfg = tmp_path / "ns.yaml"
    cfg.write_text(f"default-rule-path: {tmp_path}\nrule-files: [base.rules]\n")
    out = tmp_path / "out"
    proc = run("replay", str(good_pcap), "-c", str(cfg), "-s", str(tmp_path / "more.rules"), "-l", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    sids = sorted(r["alert"]["signature_id"] for r in eve(out) if r["event_type"] == "alert")
    assert sids == [1000001, 1000002]
    # -S replaces the configured files
    out2 = tmp_path / "out2"
    proc = run("replay", str(good_pcap), "-c", str(cfg), "-S", str(tmp_path / "more.rules"), "-l", str(out2), "-q")
    assert proc.returncode == 0, proc.stderr
    assert [r["alert"]["signature_id"] for r in eve(out2) if r["event_type"] == "alert"] == [1000002]


def test_rules_check_exit_status(tmp_path: Path):
    _needs_detect()
    good = tmp_path / "good.rules"
    good.write_text(RULE.format(action="alert"))
    bad = tmp_path / "bad.rules"
    bad.write_text('alert tcp any any -> any any (msg:"x"; frobnicate:1; sid:9;)\n')
    ok = run("rules", "check", str(good))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    failed = run("rules", "check", str(bad))
    assert failed.returncode == 1
    assert f"{bad}:1" in failed.stdout + failed.stderr
    assert run("rules").returncode == 2


@pytest.mark.slow
def test_sigterm_finishes_cleanly(tmp_path: Path):
    frame = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / (b"x" * 60))
    record = struct.pack("<IIII", int(T0), 0, len(frame), len(frame)) + frame
    big = tmp_path / "big.pcap"
    big.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + record * 1_500_000)
    cmd = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "netsentry.cli"]
    rules = tmp_path / "every.rules"            # every packet alerts: eve.json grows once the loop runs
    rules.write_text('alert udp any any -> any any (msg:"x"; content:"xxxx"; sid:1;)\n')
    proc = subprocess.Popen(cmd + ["replay", str(big), "-S", str(rules), "-l", str(tmp_path), "-q"],
                            stderr=subprocess.PIPE, text=True)
    lines = []                                     # rule load and cache lines, then "replay started"
    while not lines or ("replay started" not in lines[-1] and lines[-1]):
        lines.append(proc.stderr.readline())
    assert "replay started" in lines[-1], lines
    # a mid-run stop: wait until alerts reach the file (a fixed sleep stopped a loaded CI box
    # before the first packet); 1.5M alerting packets take many seconds more
    deadline = time.monotonic() + 120
    out = tmp_path / "eve.json"
    while (not out.exists() or out.stat().st_size == 0) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.terminate()
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == 143, rest
    assert "Traceback" not in rest
    assert "interrupted by SIGTERM after" in rest
    records = eve(tmp_path)
    assert records[-1]["event_type"] == "stats"      # flushed and closed, not cut off
    assert 0 < records[-1]["stats"]["decoder"]["pkts"] < 1_500_000


def test_config_error_in_a_stage_leaves_the_previous_eve_json_alone(tmp_path: Path, good_pcap: Path):
    (tmp_path / "eve.json").write_text('{"previous": "run"}\n')
    proc = run("replay", str(good_pcap), "-l", str(tmp_path),
               "--set", "assets=[{name: a, cidr: 10.0.0.300, criticality: high}]")
    assert proc.returncode == 2
    assert one_line_error(proc) == "config error: assets[0].cidr: invalid network '10.0.0.300'"
    assert (tmp_path / "eve.json").read_text() == '{"previous": "run"}\n'


def test_detect_settings_are_checked_even_without_rules(tmp_path: Path, good_pcap: Path):
    proc = run("replay", str(good_pcap), "-l", str(tmp_path), "--set", "detect.prefilter=fast")
    assert proc.returncode == 2
    assert one_line_error(proc) == (
        "config error: detect.prefilter: unknown prefilter 'fast' (auto, hyperscan, ahocorasick)")


def test_replay_logs_wrong_rules_one_by_one_and_unsupported_ones_by_reason(tmp_path: Path, good_pcap: Path):
    rules = tmp_path / "mixed.rules"
    rules.write_text(
        'alert tcp any any -> any any (msg:"a"; pop3.command; content:"x"; sid:1;)\n'
        'alert tcp any any -> any any (msg:"b"; pop3.command; content:"y"; sid:2;)\n'
        'alert tcp any any -> any any (msg:"c"; depth:x; content:"y"; sid:3;)\n'
        'alert tcp any any -> any any (msg:"d"; content:"GET"; sid:4;)\n')
    proc = run("replay", str(good_pcap), "-S", str(rules), "-l", str(tmp_path / "out"), "-q")
    assert proc.returncode == 0, proc.stderr
    logs = [orjson.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    wrong = [r for r in logs if r["event"] == "rule skipped"]
    assert [r["error"] for r in wrong] == [f"{rules}:3 sid 3: 'depth' needs a preceding content"]
    (summary,) = [r for r in logs if r["event"] == "rules skipped: unsupported"]
    assert summary["rules"] == 2 and summary["example"].startswith(f"{rules}:1 sid 1:")
