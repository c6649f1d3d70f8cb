"""The worker runtime (workers.py): N processes give the records one process gives.

Every run here is a real replay through `netsentry.cli.main` (forked worker
processes, real outputs); captures are made with scapy and kept small so the
whole file runs in a few seconds. Worker-local fields, documented in
docs/workers.md: the stats record's `uptime` (`comparable` also drops the
`pcap_cnt` of anomaly-engine alerts, worker-local before hoststate.py judged
them in the parent; tests/test_hoststate.py checks it is now exact).
"""

from __future__ import annotations

import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.utils import wrpcap

from netsentry.cli import main
from netsentry.config import ConfigError, load_config
from netsentry.lifecycle import EXIT_OK, EXIT_SIGINT, EXIT_SIGTERM, EXIT_WORKER_FAILED
from netsentry.workers import PAIR_KEYS, part_path, resolve_workers, worker_of

T0 = 1_790_000_000.0
REPO = Path(__file__).resolve().parents[1]

RULES = """\
alert tcp any any -> any 80 (msg:"GET seen"; content:"GET /"; sid:1000001; rev:1;)
alert tcp any 80 -> any any (msg:"server said 200"; content:"200 OK"; sid:1000002; rev:1;)
alert udp any any -> any 53 (msg:"DNS to example"; content:"example"; sid:1000003; rev:1;)
alert tcp any any -> any any (msg:"SYN by_src threshold"; flags:S,12; threshold:type threshold, track by_src, count 5, seconds 60; sid:1000004; rev:1;)
alert tcp any any -> any any (msg:"SYN by_dst limit"; flags:S,12; threshold:type limit, track by_dst, count 2, seconds 60; sid:1000005; rev:1;)
"""


# --- captures -------------------------------------------------------------------------


def eth(**fields):
    """Ethernet with both addresses given (scapy would otherwise try to resolve them, slowly)."""
    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", **fields)


def _stamp(frames: list, start: float, step: float) -> list:
    for i, frame in enumerate(frames):
        frame.time = start + i * step
    return frames


def tcp_session(client: str, server: str, sport: int, t: float, ipv6: bool = False, vlan: int = 0) -> list:
    """A whole HTTP-like TCP session (handshake, request, response, FIN both ways)."""
    ip = IPv6 if ipv6 else IP
    head = eth() / Dot1Q(vlan=vlan) if vlan else eth()
    c2s = head / ip(src=client, dst=server)
    s2c = head / ip(src=server, dst=client)
    frames = [
        c2s / TCP(sport=sport, dport=80, flags="S", seq=100),
        s2c / TCP(sport=80, dport=sport, flags="SA", seq=500, ack=101),
        c2s / TCP(sport=sport, dport=80, flags="A", seq=101, ack=501),
        c2s / TCP(sport=sport, dport=80, flags="PA", seq=101, ack=501) / b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        s2c / TCP(sport=80, dport=sport, flags="PA", seq=501, ack=128) / b"HTTP/1.1 200 OK\r\n\r\nhello",
        c2s / TCP(sport=sport, dport=80, flags="FA", seq=128, ack=525),
        s2c / TCP(sport=80, dport=sport, flags="FA", seq=525, ack=129),
        c2s / TCP(sport=sport, dport=80, flags="A", seq=129, ack=526),
    ]
    return _stamp(frames, t, 0.001)


def mixed_capture(path: Path) -> Path:
    """Many host pairs (IPv4, IPv6, VLAN), TCP sessions, DNS, within 3 s: no flow times out."""
    frames: list = []
    t = T0
    for i in range(60):
        client = f"192.168.{i % 7}.{10 + i}"
        server = f"10.0.{i % 5}.{1 + i % 11}"
        frames += tcp_session(client, server, 40000 + i, t, vlan=(100 if i % 9 == 0 else 0))
        t += 0.01
        dns = eth() / IP(src=client, dst="10.0.0.53") / UDP(sport=30000 + i, dport=53) / b"\x12\x34example"
        dns.time = t
        frames.append(dns)
        t += 0.01
    for i in range(12):
        frames += tcp_session(f"2001:db8::{i + 1:x}", f"2001:db8:1::{i % 3 + 1:x}", 50000 + i, t, ipv6=True)
        t += 0.01
    frames.sort(key=lambda f: float(f.time))
    wrpcap(str(path), frames)
    return path


def port_scan(path: Path, ports: int = 200) -> Path:
    """One source, one target, many ports: SYNs answered by RSTs (a vertical scan)."""
    frames = []
    for port in range(1, ports + 1):
        frames.append(eth() / IP(src="203.0.113.7", dst="10.0.0.5") / TCP(sport=55555, dport=port, flags="S"))
        frames.append(eth() / IP(src="10.0.0.5", dst="203.0.113.7") / TCP(sport=port, dport=55555, flags="RA"))
    wrpcap(str(path), _stamp(frames, T0, 0.005))
    return path


def syn_flood(path: Path, sources: int, syns: int = 1200) -> Path:
    """SYNs toward one server port from `sources` addresses, never completed."""
    frames = [eth() / IP(src=f"203.0.{113 + (i % sources) // 250}.{1 + (i % sources) % 250}", dst="10.0.0.10")
              / TCP(sport=1024 + i % 60000, dport=80, flags="S") for i in range(syns)]
    wrpcap(str(path), _stamp(frames, T0, 0.001))
    return path


def threshold_by_src(path: Path, targets: int) -> Path:
    """One source sending SYNs to `targets` hosts (20 SYNs in all)."""
    frames = [eth() / IP(src="198.51.100.9", dst=f"10.0.1.{1 + i % targets}")
              / TCP(sport=2000 + i, dport=22, flags="S") for i in range(20)]
    wrpcap(str(path), _stamp(frames, T0, 0.01))
    return path


# --- running replays ---------------------------------------------------------------------


# Rules without host-tracked state: their alerts depend on one flow only.
FLOW_RULES = "".join(line + "\n" for line in RULES.splitlines() if "track by_" not in line)


def replay(tmp_path: Path, capture: Path, workers: int, *extra: str, name: str = "",
           rules_text: str = RULES) -> list[dict]:
    rules = tmp_path / "test.rules"
    rules.write_text(rules_text)
    logdir = tmp_path / (name or f"w{workers}")
    code = main(["replay", str(capture), "-S", str(rules), "-l", str(logdir), "-q",
                 "--workers", str(workers), *extra])
    assert code == EXIT_OK
    assert sorted(p.name for p in logdir.iterdir()) == ["eve.json"]    # worker files merged away
    text = (logdir / "eve.json").read_bytes()
    assert text.endswith(b"\n")
    return [json.loads(line) for line in text.splitlines()]


def comparable(records: list[dict]) -> Counter[str]:
    """Records as sorted JSON text, without the documented worker-local fields."""
    out: Counter[str] = Counter()
    for rec in records:
        if rec["event_type"] == "stats":
            continue
        if "anomaly" in rec.get("netsentry", {}) or rec.get("anomaly", {}).get("detector"):
            rec.pop("pcap_cnt", None)
        out[json.dumps(rec, sort_keys=True)] += 1
    return out


def alerts(records: list[dict]) -> Counter[str]:
    return Counter(k for k in comparable(records) if '"event_type": "alert"' in k)


def stats_of(records: list[dict]) -> dict:
    stats = [r for r in records if r["event_type"] == "stats"]
    assert len(stats) == 1, "exactly one (merged) stats record"
    return stats[0]["stats"]


# --- the sharding function -----------------------------------------------------------------


def test_both_directions_and_every_flow_of_a_host_pair_meet_in_one_worker():
    for workers in (2, 3, 4):
        seen = set()
        for i in range(200):
            a, b = f"192.168.{i % 250}.{i % 7 + 1}", f"10.{i % 3}.{i % 250}.9"
            fwd = bytes(eth() / IP(src=a, dst=b) / TCP(sport=1000 + i, dport=80))
            rev = bytes(eth() / IP(src=b, dst=a) / TCP(sport=80, dport=1000 + i))
            other = bytes(eth() / Dot1Q(vlan=5) / IP(src=b, dst=a) / UDP(sport=53, dport=7))
            w = worker_of(fwd, 1, workers)
            assert worker_of(rev, 1, workers) == w == worker_of(other, 1, workers)
            seen.add(w)
        assert seen == set(range(workers)), "host pairs spread over every worker"
    v6 = bytes(eth() / IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP())
    v6r = bytes(eth() / IPv6(src="2001:db8::2", dst="2001:db8::1") / TCP())
    assert worker_of(v6, 1, 4) == worker_of(v6r, 1, 4)


def test_frames_without_an_ip_pair_go_to_worker_zero():
    assert worker_of(b"\x00" * 10, 1, 4) == 0              # truncated ethernet
    assert worker_of(bytes(eth(type=0x0806) / (b"\x00" * 28)), 1, 4) == 0     # ARP
    assert worker_of(b"\x45" + b"\x00" * 30, 104, 4) == 0  # a link type without a pair key
    assert 104 not in PAIR_KEYS


def test_worker_count_setting():
    assert resolve_workers(3) == 3
    assert resolve_workers("2") == 2
    assert resolve_workers("auto") >= 1
    for bad in (0, -1, "many", True, 1.5):
        with pytest.raises(ConfigError, match="runtime.workers"):
            resolve_workers(bad)
    assert load_config(None, ["runtime.workers=auto"])["runtime"]["workers"] == "auto"
    assert load_config(None, ["runtime.workers=4"])["runtime"]["workers"] == 4
    with pytest.raises(ConfigError, match="runtime.workers"):
        load_config(None, ["runtime.workers=0"])
    assert part_path("eve.json", 3) == "eve.3.json"


def test_runmode_single_conflicts_with_workers(tmp_path: Path, capsys):
    cap = threshold_by_src(tmp_path / "t.pcap", 1)
    assert main(["replay", str(cap), "-l", str(tmp_path), "-q", "--runmode", "single", "--workers", "2"]) == 2
    assert "--runmode single" in capsys.readouterr().err


# --- N workers write what one writes ---------------------------------------------------------


def test_eve_of_1_2_and_4_workers_is_the_same_set_of_records(tmp_path: Path):
    cap = mixed_capture(tmp_path / "mixed.pcap")
    one = replay(tmp_path, cap, 1, rules_text=FLOW_RULES)
    assert len(alerts(one)) >= 150, "the capture makes alerts of every rule"
    base = comparable(one)
    for workers in (2, 4):
        many = replay(tmp_path, cap, workers, rules_text=FLOW_RULES)
        assert comparable(many) == base, f"{workers} workers"
        s1, sn = stats_of(one), stats_of(many)
        assert sn["decoder"] == s1["decoder"]
        assert sn["flow"]["tcp"] == s1["flow"]["tcp"] and sn["detect"] == s1["detect"]
        assert sn["netsentry"]["capture"] == s1["netsentry"]["capture"], "the capture's counters counted once"
        assert sn["netsentry"]["workers"] == workers


def test_threaded_eve_keeps_one_file_per_worker(tmp_path: Path):
    cap = mixed_capture(tmp_path / "mixed.pcap")
    rules = tmp_path / "r.rules"
    rules.write_text(FLOW_RULES)
    logdir = tmp_path / "threaded"
    assert main(["replay", str(cap), "-S", str(rules), "-l", str(logdir), "-q", "--workers", "2",
                 "--set", "outputs.eve-log.threaded=true"]) == EXIT_OK
    names = sorted(p.name for p in logdir.iterdir())
    assert names == ["eve.0.json", "eve.1.json", "eve.json"]
    per_worker = [json.loads(l) for n in names[:2] for l in (logdir / n).read_text().splitlines()]
    assert per_worker and all(r["event_type"] != "stats" for r in per_worker)
    assert [json.loads(l)["event_type"] for l in (logdir / "eve.json").read_text().splitlines()] == ["stats"]
    single = replay(tmp_path, cap, 1, name="single", rules_text=FLOW_RULES)
    assert comparable(per_worker) == comparable(single)


# --- host-keyed state -------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [2, 4])
def test_port_scan_alerts_as_with_one_worker(tmp_path: Path, workers: int):
    cap = port_scan(tmp_path / "scan.pcap")
    one = alerts(replay(tmp_path, cap, 1))
    assert any("port scan" in k for k in one)
    assert alerts(replay(tmp_path, cap, workers)) == one


@pytest.mark.parametrize("workers", [2, 4])
def test_syn_flood_from_one_source_alerts_as_with_one_worker(tmp_path: Path, workers: int):
    cap = syn_flood(tmp_path / "flood.pcap", sources=1)
    one = alerts(replay(tmp_path, cap, 1))
    assert any("SYN flood" in k for k in one)
    assert alerts(replay(tmp_path, cap, workers)) == one


@pytest.mark.parametrize("workers", [2, 4])
def test_threshold_by_src_toward_one_host_alerts_as_with_one_worker(tmp_path: Path, workers: int):
    cap = threshold_by_src(tmp_path / "thr.pcap", targets=1)
    one = alerts(replay(tmp_path, cap, 1))
    assert sum('"signature_id": 1000004' in k for k in one) == 4      # every 5th of 20 SYNs
    assert alerts(replay(tmp_path, cap, workers)) == one


@pytest.mark.parametrize("workers", [2, 4])
def test_distributed_syn_flood_alerts_as_with_one_worker(tmp_path: Path, workers: int):
    cap = syn_flood(tmp_path / "flood.pcap", sources=600)
    one = alerts(replay(tmp_path, cap, 1))
    assert any("SYN flood" in k for k in one)
    assert alerts(replay(tmp_path, cap, workers)) == one


def test_threshold_by_src_across_many_hosts_alerts_as_with_one_worker(tmp_path: Path):
    cap = threshold_by_src(tmp_path / "thr.pcap", targets=8)
    one = alerts(replay(tmp_path, cap, 1))
    assert alerts(replay(tmp_path, cap, 2)) == one


# --- stopping and dying --------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


@pytest.fixture(scope="module")
def big_capture(tmp_path_factory) -> Path:
    """Enough traffic (192,000 frames) that two workers still run when the stop signal
    comes as soon as both have written their first records (a fixed 0.3 s after they
    started was used before: on an idle 2-core machine 3,000 sessions were done by then,
    an ever larger share as the replay gets faster):
    one scapy-made session, its addresses and ports rewritten per copy (scapy would take
    ~10 s to build 12,000 frames; checksums are not validated by default)."""
    template = [bytes(f) for f in tcp_session("192.168.0.1", "10.0.0.1", 10000, 0.0)]
    path = tmp_path_factory.mktemp("big") / "big.pcap"
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i in range(24000):
        client = bytes((192, 168, i % 200, i % 250 + 1))
        server = bytes((10, 0, i % 13, i % 17 + 1))
        sport = struct.pack("!H", 10000 + i)
        for k, frame in enumerate(template):
            b = bytearray(frame)
            to_server = k in (0, 2, 3, 5, 7)
            b[26:30], b[30:34] = (client, server) if to_server else (server, client)
            if to_server:
                b[34:36] = sport
            else:
                b[36:38] = sport
            ts = T0 + i * 0.0005 + k * 0.00001
            out.append(struct.pack("<IIII", int(ts), int((ts % 1) * 1e6), len(b), len(b)) + bytes(b))
    path.write_bytes(b"".join(out))
    return path


def _start(tmp_path: Path, cap: Path, logdir: Path) -> subprocess.Popen:
    rules = tmp_path / "r.rules"
    rules.write_text(RULES)
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.Popen([sys.executable, "-m", "netsentry", "replay", str(cap), "-S", str(rules),
                             "-l", str(logdir), "-q", "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True)


def _wait_for_workers(proc: subprocess.Popen, logdir: Path, writing: bool = False) -> list[int]:
    """The two workers' pids once both opened their part of eve.json (`writing`: once both
    wrote to it, i.e. are inspecting packets, a few percent into their share)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        kids = _children(proc.pid)
        parts = [logdir / part_path("eve.json", i) for i in range(2)]
        if len(kids) == 2 and all(p.exists() and (not writing or p.stat().st_size > 0) for p in parts):
            return kids
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"workers did not start: {proc.communicate()}")


def _records(logdir: Path) -> list[dict]:
    text = (logdir / "eve.json").read_bytes()
    assert text.endswith(b"\n")
    lines = text.splitlines()
    assert len(lines) == len(set(lines)), "no record written twice"
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize(("signum", "group", "status"), [
    (signal.SIGTERM, False, EXIT_SIGTERM),      # kill PID: the parent forwards it
    (signal.SIGINT, True, EXIT_SIGINT),         # a terminal's Ctrl-C: the whole process group
])
def test_a_stop_signal_drains_every_worker_and_one_stats_record_is_written(
        tmp_path: Path, big_capture: Path, signum: int, group: bool, status: int):
    cap = big_capture
    logdir = tmp_path / "stop"
    proc = _start(tmp_path, cap, logdir)
    try:
        # mid-run for certain: both workers are writing records (a fixed 0.3 s after their start
        # is most of the run once the replay gets faster, and nothing of it under heavy load)
        _wait_for_workers(proc, logdir, writing=True)
        if group:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == status, err
    assert f"interrupted by {signal.Signals(signum).name}".encode() in err
    assert b"before finishing" not in err and b"failed:" not in err, "every worker drained; none died"
    records = _records(logdir)
    stats = stats_of(records)
    flows = [r for r in records if r["event_type"] == "flow"]
    # every flow a worker started was written at its drain (shutdown records included)
    assert stats["flow"]["tcp"] == len(flows) > 0
    assert sorted(p.name for p in logdir.iterdir()) == ["eve.json"]


def test_a_worker_that_dies_leaves_the_others_to_finish(tmp_path: Path, big_capture: Path):
    cap = big_capture
    logdir = tmp_path / "die"
    proc = _start(tmp_path, cap, logdir)
    try:
        kids = _wait_for_workers(proc, logdir)
        os.kill(kids[1], signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == EXIT_WORKER_FAILED, err
    assert b"worker 1 killed by SIGKILL" in err
    records = _records(logdir)
    stats = stats_of(records)
    assert stats["netsentry"]["workers"] == 2
    # worker 0 finished its share: every one of its flows has its flow record
    zero = [r for r in records if r["event_type"] == "flow"]
    assert zero and stats["flow"]["tcp"] == sum(1 for r in zero)


def test_a_damaged_capture_is_reported_once_with_the_records_before_the_damage(tmp_path: Path, capfd):
    cap = mixed_capture(tmp_path / "mixed.pcap")
    data = cap.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) * 2 // 3] + b"\xff" * 7)
    rules = tmp_path / "r.rules"
    rules.write_text(FLOW_RULES)
    results = {}
    for workers in (1, 2):
        logdir = tmp_path / f"cut{workers}"
        # the file ends at the damage, as Suricata's pcap source ends it: exit 0, one error line
        assert main(["replay", str(cut), "-S", str(rules), "-l", str(logdir), "-q",
                     "--workers", str(workers)]) == 0
        err = capfd.readouterr().err
        damage = [json.loads(line) for line in err.splitlines() if "damaged capture file" in line]
        assert len(damage) == 1 and damage[0]["file"] == str(cut), err
        results[workers] = comparable([json.loads(l) for l in (logdir / "eve.json").read_text().splitlines()])
    assert results[2] == results[1] and results[1]


def test_the_shares_of_a_capture_are_disjoint_and_cover_it(tmp_path: Path):
    from netsentry.capture import read_captures
    from netsentry.workers import ShareSource
    cap = mixed_capture(tmp_path / "mixed.pcap")
    records = list(read_captures([str(cap)]))
    for workers in (2, 4):
        numbered: dict[int, int] = {}
        for index in range(workers):
            share = ShareSource(read_captures([str(cap)]), index, workers, lambda: False)
            for record in share:
                assert share.pcap_cnt not in numbered
                numbered[share.pcap_cnt] = index
                assert worker_of(record[1], record[3], workers) == index     # the inline path agrees
            assert share.pcap_cnt == len(records) and share.last_ts == records[-1][0]
        assert sorted(numbered) == list(range(1, len(records) + 1))
        assert len(set(numbered.values())) == workers


def test_a_stop_request_ends_a_share_before_the_next_record(tmp_path: Path):
    from netsentry.capture import read_captures
    from netsentry.workers import ShareSource
    cap = mixed_capture(tmp_path / "mixed.pcap")
    seen = []
    share = ShareSource(read_captures([str(cap)]), 0, 1, lambda: len(seen) >= 10)
    for record in share:
        seen.append(record)
    assert len(seen) == 10 and share.pcap_cnt == 10


def test_an_unusable_log_directory_is_one_line_and_exit_1(tmp_path: Path, capsys):
    cap = threshold_by_src(tmp_path / "t.pcap", 1)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["replay", str(cap), "-l", str(blocker / "logs"), "-q", "--workers", "2"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("netsentry: cannot write to log directory") and "Traceback" not in "".join(err)


def test_console_lines_of_several_workers_never_tear(tmp_path: Path, big_capture: Path):
    rules = tmp_path / "r.rules"
    rules.write_text(FLOW_RULES)
    logdir = tmp_path / "console"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    done = subprocess.run([sys.executable, "-m", "netsentry", "replay", str(big_capture), "-S", str(rules),
                           "-l", str(logdir), "-q", "--workers", "2", "--set", "outputs.console.enabled=true"],
                          capture_output=True, env=env, timeout=300)
    assert done.returncode == EXIT_OK, done.stderr
    lines = done.stdout.decode().splitlines()
    eve_alerts = [json.loads(l) for l in (logdir / "eve.json").read_text().splitlines()]
    eve_alerts = [r for r in eve_alerts if r["event_type"] == "alert"]
    assert len(lines) == len(eve_alerts) > 1000
    # a whole fast.log line each: a torn write would splice two workers' lines
    whole = re.compile(r"^\d\d/\d\d/\d{4}-[\d:.]+  \[\*\*\] \[1:(\d+):1\] [^\[]+ \[\*\*\] "
                       r"(\[Classification: [^\]]*\] )?\[Priority: \d\] \{(TCP|UDP)\} [\d.:a-f]+ -> [\d.:a-f]+$")
    sids: Counter[int] = Counter()
    for line in lines:
        m = whole.match(line)
        assert m, f"torn console line: {line!r}"
        sids[int(m.group(1))] += 1
    assert sids == Counter(r["alert"]["signature_id"] for r in eve_alerts)
