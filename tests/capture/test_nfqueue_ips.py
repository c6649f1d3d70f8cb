"""Inline IPS end to end: client | router (netsentry run -q, NFQUEUE) | server, in namespaces.

The router forwards between two veth pairs and queues every forwarded packet
(the rules `netsentry ips rules --install` puts in, IPv4 and IPv6). Checks:
a benign exchange completes and is alerted; a drop rule's data never reaches
the server and the flow stays dropped; a reject rule gives the client a RST
(and an ICMP port unreachable for UDP); IPv6 goes through the same way;
EVE holds the alert and drop records; fail-open: SIGKILL mid-transfer and
the transfer completes (--queue-bypass); a queue flood is accepted and
counted, or dropped and counted when failing closed.
"""

from __future__ import annotations

import json
import signal
import socket
import sys
import time
from ipaddress import ip_address
from pathlib import Path

import pytest

from netns_lab import PEER, Daemon, Lab, nfqueue_unavailable_reason, read_jsonl, wait_for

pytestmark = pytest.mark.netns

if _REASON := nfqueue_unavailable_reason():
    pytest.skip(_REASON, allow_module_level=True)

QUEUE = 3
CLIENT4, SERVER4 = "10.201.1.2", "10.201.2.2"
CLIENT6, SERVER6 = "fd00:201:1::2", "fd00:201:2::2"

RULES = """\
alert tcp any any -> any 8080 (msg:"benign hello seen"; content:"hello"; sid:1000001; rev:1;)
drop tcp any any -> any 8081 (msg:"drop evil"; content:"evil"; sid:1000002; rev:1;)
reject tcp any any -> any 8082 (msg:"reject syn 8082"; flags:S; sid:1000003; rev:1;)
reject udp any any -> any 9091 (msg:"reject udp 9091"; sid:1000004; rev:1;)
"""


class Topology:
    def __init__(self, lab: Lab, tmp: Path) -> None:
        self.lab = lab
        self.tmp = tmp
        self.client = lab.ns("c")
        self.router = lab.ns("r")
        self.server = lab.ns("s")
        lab.veth(self.client, "c0", self.router, "r0")
        lab.veth(self.router, "r1", self.server, "s0")
        lab.addr(self.client, "c0", f"{CLIENT4}/24")
        lab.addr(self.client, "c0", f"{CLIENT6}/64")
        lab.addr(self.router, "r0", "10.201.1.1/24")
        lab.addr(self.router, "r0", "fd00:201:1::1/64")
        lab.addr(self.router, "r1", "10.201.2.1/24")
        lab.addr(self.router, "r1", "fd00:201:2::1/64")
        lab.addr(self.server, "s0", f"{SERVER4}/24")
        lab.addr(self.server, "s0", f"{SERVER6}/64")
        lab.route(self.client, "default", "via", "10.201.1.1")
        lab.route(self.client, "default", "via", "fd00:201:1::1")
        lab.route(self.server, "default", "via", "10.201.2.1")
        lab.route(self.server, "default", "via", "fd00:201:2::1")
        lab.run(self.router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        lab.run(self.router, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1")
        # the rules admins get from `netsentry ips rules` (fail-open: --queue-bypass)
        lab.run(self.router, sys.executable, "-m", "netsentry", "ips", "rules", "--queues", str(QUEUE),
                "--install")
        self.server_log = tmp / "server.jsonl"
        self.udp_log = tmp / "udp.jsonl"
        lab.spawn(self.server, sys.executable, PEER, "tcp-server", "8080", str(self.server_log))
        for port in (8081, 8082, 8090):
            lab.spawn(self.server, sys.executable, PEER, "tcp-server", str(port), str(self.server_log))
        lab.spawn(self.server, sys.executable, PEER, "udp-server", "9091", str(self.udp_log))
        lab.spawn(self.server, sys.executable, PEER, "udp-server", "9092", str(self.udp_log))
        wait_for(lambda: sum(1 for r in read_jsonl(self.server_log) if "listening" in r) == 4, 10,
                 "the TCP servers")
        wait_for(lambda: sum(1 for r in read_jsonl(self.udp_log) if "listening" in r) == 2, 10,
                 "the UDP servers")
        self.rules = tmp / "ips.rules"
        self.rules.write_text(RULES)

    def server_saw(self, text: str) -> bool:
        return any(text in r.get("data", "") for r in read_jsonl(self.server_log))

    def daemon(self, name: str, *args: str) -> Daemon:
        d = Daemon(self.lab, self.router, self.tmp / name, "-q", str(QUEUE), "-S", str(self.rules),
                   "--set", "stats.interval=1", *args)
        d.wait_ready()
        return d


@pytest.fixture(scope="module")
def topo(tmp_path_factory: pytest.TempPathFactory):
    lab = Lab()
    try:
        yield Topology(lab, tmp_path_factory.mktemp("ips"))
    finally:
        lab.close()


@pytest.fixture(scope="class")
def ips(topo: Topology):
    """One sensor for the verdict tests (TestVerdicts); stopped, and its exit checked, after them."""
    d = topo.daemon("verdicts")
    try:
        yield d
    finally:
        rc = d.stop()
        assert rc == 0, d.stderr()


def _alerts(d: Daemon, sid: int) -> list[dict]:
    return [e for e in d.events("alert") if e["alert"]["signature_id"] == sid]


class TestVerdicts:
    """One sensor, several exchanges through it (the queue is free again after the class)."""

    def test_benign_exchange_completes_and_is_alerted(self, topo: Topology, ips: Daemon) -> None:
        out = topo.lab.peer(topo.client, "tcp-client", SERVER4, "8080", "hello there")
        assert out == {"result": "ok", "reply": "hello there"}
        alerts = wait_for(lambda: _alerts(ips, 1000001), 10, "the benign alert")
        assert alerts[0]["src_ip"] == CLIENT4 and alerts[0]["dest_ip"] == SERVER4
        assert alerts[0]["alert"]["action"] == "allowed"


    def test_drop_rule_data_never_reaches_server(self, topo: Topology, ips: Daemon) -> None:
        out = topo.lab.peer(topo.client, "tcp-client", SERVER4, "8081", "some evil payload", "3")
        assert out["result"] in ("timeout", "reset"), out
        time.sleep(0.5)
        assert not topo.server_saw("evil"), "a dropped packet reached the server"
        alerts = wait_for(lambda: _alerts(ips, 1000002), 10, "the drop rule's alert")
        assert alerts[0]["alert"]["action"] == "blocked"
        drops = wait_for(lambda: [e for e in ips.events("drop") if e.get("dest_port") == 8081], 10, "a drop record")
        assert drops[0]["proto"] == "TCP"
        # the client retransmitted: later packets of the flow were dropped too, uninspected
        assert not topo.server_saw("evil")


    def test_reject_rule_gives_client_a_reset(self, topo: Topology, ips: Daemon) -> None:
        out = topo.lab.peer(topo.client, "tcp-client", SERVER4, "8082", "never", "5")
        # a RST answering the SYN: without one, connect() times out ("timeout") after its
        # retransmissions. (No wall-clock bound: it timed the interpreter's start-up in the
        # namespace, seconds on a loaded machine, more than the RST.)
        assert out["result"] == "refused", out
        alerts = wait_for(lambda: _alerts(ips, 1000003), 10, "the reject rule's alert")
        assert alerts[0]["alert"]["action"] == "blocked"
        assert not any(r.get("peer", "").endswith(CLIENT4) and r.get("data") == "never"
                       for r in read_jsonl(topo.server_log))


    def test_reject_udp_gives_port_unreachable(self, topo: Topology, ips: Daemon) -> None:
        probe = ("import socket,json\n"
                 "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(3)\n"
                 f"s.connect(('{SERVER4}',9091)); s.send(b'ping')\n"
                 "try:\n s.recv(100); r='reply'\n"
                 "except ConnectionRefusedError: r='refused'\n"
                 "except OSError as e: r=type(e).__name__\n"
                 "print(json.dumps({'result': r}))\n")
        done = topo.lab.run(topo.client, sys.executable, "-c", probe)
        assert json.loads(done.stdout)["result"] == "refused"
        wait_for(lambda: _alerts(ips, 1000004), 10, "the UDP reject alert")


    def test_ipv6_through_the_ips(self, topo: Topology, ips: Daemon) -> None:
        out = topo.lab.peer(topo.client, "tcp-client", SERVER6, "8080", "hello over six")
        assert out == {"result": "ok", "reply": "hello over six"}
        # EVE writes IPv6 addresses in full, as Suricata does
        alerts = wait_for(lambda: [a for a in _alerts(ips, 1000001) if a["ip_v"] == 6], 10, "the IPv6 alert")
        assert ip_address(alerts[0]["src_ip"]) == ip_address(CLIENT6)
        assert ip_address(alerts[0]["dest_ip"]) == ip_address(SERVER6)
        out = topo.lab.peer(topo.client, "tcp-client", SERVER6, "8081", "evil over six", "3")
        assert out["result"] in ("timeout", "reset")
        assert not topo.server_saw("evil over six")
        out = topo.lab.peer(topo.client, "tcp-client", SERVER6, "8082", "x", "5")
        assert out["result"] == "refused"                 # the RST is built for IPv6 too


    def test_stats_record_has_capture_and_verdict_counters(self, topo: Topology, ips: Daemon) -> None:
        topo.lab.peer(topo.client, "tcp-client", SERVER4, "8080", "hello stats")

        def counted() -> dict | None:
            stats = ips.events("stats")
            if stats and stats[-1]["stats"].get("ips", {}).get("accepted", 0) > 0:
                return stats[-1]["stats"]
            return None
        stats = wait_for(counted, 10, "a periodic stats record with verdicts")
        assert stats["capture"]["kernel_packets"] >= stats["netsentry"]["nfq"]["received"] > 0
        assert stats["ips"]["blocked"] >= 1 and stats["ips"]["rejected"] >= 1
        assert stats["ips"]["accepted"] + stats["ips"]["blocked"] == stats["decoder"]["pkts"]
        # nfq.batchcount (default 20): accepted packets went to the kernel in batch verdicts,
        # and every accepted packet was told (the exchanges above completed)
        assert 0 < stats["netsentry"]["nfq"]["verdict_batches"] <= stats["netsentry"]["nfq"]["accepted"]


def test_fail_open_sigkill_mid_transfer_completes(topo: Topology) -> None:
    d = topo.daemon("killed")
    try:
        client = topo.lab.spawn(topo.client, sys.executable, PEER, "tcp-bulk", SERVER4, "8090", "300000", "3",
                                stdout=open(topo.tmp / "bulk.json", "w"))
        wait_for(lambda: any(r.get("total", 0) > 50000 for r in read_jsonl(topo.server_log)), 10,
                 "the transfer to be under way")
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(10)
        client.wait(30)
        out = json.loads((topo.tmp / "bulk.json").read_text().strip())
        assert out["result"] == "ok" and out["sent"] == 300000
        assert out["echoed"] == 300000, out                # both directions kept flowing
    finally:
        if d.proc.poll() is None:
            d.stop(signal.SIGKILL)


def _rule_packets(topo: Topology) -> int:
    """Packets the router's IPv4 NFQUEUE rule has matched (queued or, fail-open, let through)."""
    done = topo.lab.run(topo.router, "iptables", "-w", "-L", "FORWARD", "-v", "-x", "-n")
    return sum(int(line.split()[0]) for line in done.stdout.splitlines() if "NFQUEUE" in line)


def _flood(topo: Topology, name: str, *args: str) -> tuple[dict, int, int, int]:
    """Blast UDP through a sensor with a tiny queue: (final stats, sent, matched by the rule, received)."""
    d = topo.daemon(name, "--set", "nfq.queue-maxlen=8", *args)
    before = max([r.get("received", 0) for r in read_jsonl(topo.udp_log)] or [0])
    matched = _rule_packets(topo)
    try:
        out = topo.lab.peer(topo.client, "udp-blast", SERVER4, "9092", "20000", timeout=60)
        time.sleep(1.0)
        matched = _rule_packets(topo) - matched
    finally:
        assert d.stop() == 0, d.stderr()
    stats = d.events("stats")[-1]["stats"]
    received = max([r.get("received", 0) for r in read_jsonl(topo.udp_log)] or [0])
    return stats, out["sent"], matched, received - before


def test_queue_flood_fail_open_accepts_the_overflow(topo: Topology) -> None:
    stats, sent, matched, received = _flood(topo, "flood-open")
    assert matched >= sent
    inspected = stats["capture"]["kernel_packets"]
    assert 0 < inspected < sent                          # the queue overflowed...
    assert received >= sent * 0.98                       # ...and the kernel let the rest through
    assert stats["capture"]["kernel_drops"] == 0
    assert stats["netsentry"]["nfq"]["received"] == inspected


def test_queue_flood_fail_closed_drops_and_counts(topo: Topology) -> None:
    stats, sent, matched, received = _flood(topo, "flood-closed", "--set", "nfq.fail-open=false")
    drops = stats["capture"]["kernel_drops"]
    assert drops > 0
    assert received < sent
    # every datagram was either inspected (and accepted) or counted as dropped by the kernel
    assert stats["capture"]["kernel_packets"] + drops >= matched - 16
    assert received <= stats["netsentry"]["nfq"]["accepted"]
