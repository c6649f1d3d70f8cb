"""Live IDS end to end: `netsentry run -i` on one end of a veth pair, traffic from the other end.

Two namespaces joined by a veth pair (10.202.0.1 <-> 10.202.0.2, and
fd00:202::1 <-> fd00:202::2); the sensor captures in the second. Checks: alerts
and flow records for real traffic, a flow timed out on a quiet link (no packet
brings the time: the once-a-second tick does), periodic stats records with the
kernel's capture counters, the BPF filter (-F) keeping traffic out in the
kernel, promiscuous mode, and a clean stop on SIGINT with exit 0 and a final
stats record.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from netns_lab import PEER, Daemon, Lab, read_jsonl, unavailable_reason, wait_for

pytestmark = pytest.mark.netns

_REASON = unavailable_reason()
if _REASON:
    pytest.skip(_REASON, allow_module_level=True)

A4, B4 = "10.202.0.1", "10.202.0.2"

RULES = """\
alert udp any any -> any 7001 (msg:"udp marker"; content:"marker"; sid:2000001; rev:1;)
alert tcp any any -> any 7002 (msg:"tcp marker"; content:"marker"; sid:2000002; rev:1;)
"""


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory):
    lab = Lab()
    tmp = tmp_path_factory.mktemp("ids")
    try:
        a = lab.ns("a")
        b = lab.ns("b")
        lab.veth(a, "va", b, "vb")
        lab.addr(a, "va", f"{A4}/24")
        lab.addr(b, "vb", f"{B4}/24")
        lab.addr(a, "va", "fd00:202::1/64")
        lab.addr(b, "vb", "fd00:202::2/64")
        server_log = tmp / "server.jsonl"
        lab.spawn(b, sys.executable, PEER, "tcp-server", "7002", str(server_log))
        wait_for(lambda: read_jsonl(server_log), 10, "the TCP server")
        rules = tmp / "ids.rules"
        rules.write_text(RULES)
        yield lab, a, b, tmp, rules
    finally:
        lab.close()


def _send_udp(lab: Lab, ns: str, dst: str, port: int, payload: str, count: int = 1) -> None:
    lab.run(ns, sys.executable, "-c",
            "import socket,sys\n"
            f"s=socket.socket(socket.AF_INET6 if ':' in {dst!r} else socket.AF_INET, socket.SOCK_DGRAM)\n"
            f"[s.sendto({payload!r}.encode(), ({dst!r}, {port})) for _ in range({count})]\n")


@pytest.mark.parametrize("ring", ["tpacket-v3", "socket"])
def test_live_ids_alerts_flows_stats_and_clean_stop(pair, ring: str) -> None:
    lab, a, b, tmp, rules = pair
    d = Daemon(lab, b, tmp / f"run1-{ring}", "-i", "vb", "-S", str(rules), "--set", "stats.interval=1",
               "--set", f"af-packet.ring={ring}",
               "--set", "flow.timeouts.udp.new=1", "--set", "flow.timeouts.udp.established=1")
    d.wait_ready()
    try:
        _send_udp(lab, a, B4, 7001, "a marker here", 3)
        out = lab.peer(a, "tcp-client", B4, "7002", "tcp marker text")
        assert out["result"] == "ok"
        alerts = wait_for(lambda: d.events("alert"), 10, "alerts")
        sids = {e["alert"]["signature_id"] for e in wait_for(
            lambda: len({e["alert"]["signature_id"] for e in d.events("alert")}) == 2 and d.events("alert"),
            10, "both alerts")}
        assert sids == {2000001, 2000002}
        udp = [e for e in alerts if e["alert"]["signature_id"] == 2000001][0]
        assert (udp["src_ip"], udp["dest_ip"], udp["dest_port"]) == (A4, B4, 7001)
        assert udp["in_iface"] == "vb"          # the capture interface, as Suricata's in_iface
        # wall-clock timestamps
        assert abs(time.time() - _epoch(udp["timestamp"])) < 30
        # the UDP flow times out on a quiet link: no packet comes to move time on
        flows = wait_for(lambda: [f for f in d.events("flow") if f.get("dest_port") == 7001], 10,
                         "the UDP flow record after its timeout")
        assert flows[0]["flow"]["pkts_toserver"] == 3
        assert flows[0]["flow"]["reason"] == "timeout"
        stats = wait_for(lambda: [s for s in d.events("stats") if s["stats"]["decoder"]["pkts"] > 0], 10,
                         "a periodic stats record")
        assert "kernel_packets" in stats[-1]["stats"]["capture"]
        assert stats[-1]["stats"]["capture"]["kernel_drops"] == 0
    finally:
        rc = d.stop(signal.SIGINT)
    assert rc == 0, d.stderr()
    final = d.events("stats")[-1]["stats"]
    assert final["capture"]["kernel_packets"] >= final["decoder"]["pkts"] >= 8
    # the TCP flow was still open: ended by the shutdown, and written
    assert [f for f in d.events("flow") if f.get("dest_port") == 7002]
    assert "Traceback" not in d.stderr()


def test_bpf_filter_file_and_append(pair) -> None:
    lab, a, b, tmp, rules = pair
    bpf = tmp / "only7001.bpf"
    bpf.write_text("# only the UDP marker port\nudp and\n  dst port 7001\n")
    logdir = tmp / "run2"
    logdir.mkdir()
    (logdir / "eve.json").write_text('{"event_type":"earlier"}\n')
    d = Daemon(lab, b, logdir, "-i", "vb", "-S", str(rules), "-F", str(bpf))
    d.wait_ready()
    try:
        lab.peer(a, "tcp-client", B4, "7002", "tcp marker text")
        _send_udp(lab, a, B4, 7001, "a marker here")
        wait_for(lambda: d.events("alert"), 10, "the UDP alert")
        time.sleep(1.5)
    finally:
        assert d.stop() == 0, d.stderr()
    assert {e["alert"]["signature_id"] for e in d.events("alert")} == {2000001}
    assert d.events("stats")[-1]["stats"]["decoder"]["pkts"] == 1      # the kernel filtered the rest
    assert read_jsonl(logdir / "eve.json")[0] == {"event_type": "earlier"}   # run appends


def test_promiscuous_capture_sees_traffic_for_other_hosts(pair) -> None:
    lab, a, b, tmp, rules = pair
    d = Daemon(lab, b, tmp / "run3", "-i", "vb", "-S", str(rules))
    d.wait_ready()
    try:
        # to a MAC that is not vb's: only a promiscuous socket gets it
        lab.run(a, "ip", "neigh", "replace", "10.202.0.99", "lladdr", "02:00:00:00:00:99", "dev", "va")
        _send_udp(lab, a, "10.202.0.99", 7001, "marker for someone else")
        wait_for(lambda: d.events("alert"), 10, "the alert for another host's packet")
    finally:
        assert d.stop() == 0, d.stderr()
    assert d.events("alert")[0]["dest_ip"] == "10.202.0.99"


def test_two_interfaces(pair, tmp_path: Path) -> None:
    lab, a, b, tmp, rules = pair
    d = Daemon(lab, b, tmp / "run4", "-i", "vb", "-i", "lo", "-S", str(rules))
    d.wait_ready()
    try:
        _send_udp(lab, a, B4, 7001, "marker over veth")
        _send_udp(lab, b, "127.0.0.1", 7001, "marker over lo")
        wait_for(lambda: len(d.events("alert")) >= 2, 10, "alerts from both interfaces")
    finally:
        assert d.stop() == 0, d.stderr()
    assert {e["src_ip"] for e in d.events("alert")} == {A4, "127.0.0.1"}
    # each alert names the interface its packet came in on
    assert {(e["src_ip"], e["in_iface"]) for e in d.events("alert")} == {(A4, "vb"), ("127.0.0.1", "lo")}


def _epoch(ts: str) -> float:
    from datetime import datetime
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
