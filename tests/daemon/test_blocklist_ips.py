"""The block list inline: client | router (netsentry run -q, NFQUEUE) | server, in namespaces.

A source added with `ctl blocklist add` never reaches the server until it is
removed or its TTL passes; a port scanner flagged by the anomaly engine is
blocked by itself and let through again after anomaly.block-ttl. The EVE drop
records name the reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "capture"))
from netns_lab import PEER, Daemon, Lab, nfqueue_unavailable_reason, read_jsonl, wait_for  # noqa: E402

pytestmark = pytest.mark.netns

if _REASON := nfqueue_unavailable_reason():
    pytest.skip(_REASON, allow_module_level=True)

QUEUE = 7
CLIENT, SERVER = "10.201.11.2", "10.201.12.2"
NETSENTRY = str(Path(sys.executable).with_name("netsentry"))

SCAN = """
import socket, sys
for port in range(20000, 20000 + int(sys.argv[2])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect_ex((sys.argv[1], port))
    finally:
        s.close()
"""

# a client that sends when told: one line on stdin, the number of datagrams; answers "sent N"
ARMED = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
print("ready", flush=True)
for line in sys.stdin:
    n = int(line)
    for _ in range(n):
        s.sendto(b"payload", (sys.argv[1], int(sys.argv[2])))
    print(f"sent {n}", flush=True)
"""


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("blocklist-ips")
    lab = Lab()
    try:
        client, router, server = lab.ns("c"), lab.ns("r"), lab.ns("s")
        lab.veth(client, "c0", router, "r0")
        lab.veth(router, "r1", server, "s0")
        lab.addr(client, "c0", f"{CLIENT}/24")
        lab.addr(router, "r0", "10.201.11.1/24")
        lab.addr(router, "r1", "10.201.12.1/24")
        lab.addr(server, "s0", f"{SERVER}/24")
        lab.route(client, "default", "via", "10.201.11.1")
        lab.route(server, "default", "via", "10.201.12.1")
        lab.run(router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        lab.run(router, sys.executable, "-m", "netsentry", "ips", "rules", "--queues", str(QUEUE), "--install")
        udp_log = tmp / "udp.jsonl"
        lab.spawn(server, sys.executable, PEER, "udp-server", "9500", str(udp_log))
        wait_for(lambda: any("listening" in r for r in read_jsonl(udp_log)), 10, "the UDP server")
        rules = tmp / "empty.rules"
        rules.write_text("")
        sock = str(tmp / "run" / "ns.sock")
        daemon = Daemon(lab, router, tmp / "log", "-q", str(QUEUE), "-S", str(rules),
                        "--set", f"unix-command.filename={sock}", "--set", "stats.interval=1",
                        "--set", "respond.blocklist.on-anomaly=true", "--set", "anomaly.block-ttl=12",
                        "--set", "anomaly.port-scan.ports=30")
        daemon.wait_ready()
        sender = subprocess.Popen(["ip", "netns", "exec", client, sys.executable, "-c", ARMED, SERVER, "9500"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
        lab.procs.append(sender)            # ended by lab.close, whatever happens
        assert sender.stdout.readline().strip() == "ready"
        yield {"lab": lab, "client": client, "udp_log": udp_log, "daemon": daemon, "socket": sock,
               "sender": sender}
        assert daemon.stop() == 0, daemon.stderr()
    finally:
        lab.close()


def received(net) -> int:
    counts = [r["received"] for r in read_jsonl(net["udp_log"]) if "received" in r]
    return counts[-1] if counts else 0


def send(net, n: int) -> None:
    net["lab"].run(net["client"], sys.executable, PEER, "udp-blast", SERVER, "9500", str(n), "payload")


def settled(net, timeout: float = 10) -> int:
    """The server's count once it stops changing (its log is written after a 0.2 s lull)."""
    import time
    last, since = received(net), time.monotonic()
    deadline = since + timeout
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = received(net)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > 1.0:
            break
    return last


def fire(net, n: int) -> None:
    """`n` datagrams from the client's sender started with the fixture: sent within milliseconds
    of the call. Used where a block's TTL is running: starting an interpreter in the namespace
    takes seconds on a loaded machine, and a block could expire before the first datagram."""
    sender = net["sender"]
    sender.stdin.write(f"{n}\n")
    sender.stdin.flush()
    assert sender.stdout.readline().strip() == f"sent {n}"


def ctl(net, *words: str) -> subprocess.CompletedProcess:
    return subprocess.run([NETSENTRY, "ctl", "--socket", net["socket"], *words], capture_output=True, text=True,
                          timeout=60)


def drops(net) -> list[dict]:
    return [r for r in read_jsonl(net["daemon"].eve) if r.get("event_type") == "drop"
            and "blocklist" in r.get("netsentry", {})]


def test_manual_block_drops_until_removed(net):
    send(net, 5)
    base = wait_for(lambda: settled(net) == 5 and 5, 15, "5 datagrams through the IPS")
    # a TTL well past the del below: the default (anomaly.block-ttl, 12 s here) could run out
    # while `ctl` starts twice on a loaded machine (seconds each), and the del find nothing
    assert ctl(net, "blocklist", "add", CLIENT, "600").returncode == 0
    send(net, 5)
    assert settled(net) == base                          # none reached the server
    wait_for(lambda: drops(net), 10, "a drop record")
    rec = drops(net)[0]
    assert rec["src_ip"] == CLIENT and rec["netsentry"]["blocklist"] == {"reason": "manual (ctl)", "ips": True}
    assert ctl(net, "blocklist", "del", CLIENT).returncode == 0
    send(net, 5)
    assert wait_for(lambda: settled(net) == base + 5, 15, "traffic again after del")


def test_ttl_expiry_lets_traffic_through_again(net):
    base = settled(net)
    assert ctl(net, "blocklist", "add", CLIENT, "5").returncode == 0
    fire(net, 3)
    assert settled(net) == base
    wait_for(lambda: json.loads(ctl(net, "blocklist", "list").stdout) == [], 15, "the TTL to expire")
    send(net, 3)
    assert wait_for(lambda: settled(net) == base + 3, 15, "traffic after the TTL")


def test_anomaly_flagged_scanner_is_blocked_then_unblocked_after_the_ttl(net):
    base = settled(net)
    net["lab"].run(net["client"], sys.executable, "-c", SCAN, SERVER, "60")
    # the block goes on with the port scan alert: datagrams go the moment it is seen, then the
    # listing (polling `ctl` for it, seconds per call on a loaded machine, used up the TTL)
    wait_for(lambda: [r for r in read_jsonl(net["daemon"].eve) if r.get("event_type") == "alert"
                      and r["alert"]["signature"] == "NETSENTRY ANOMALY TCP port scan"], 15, "the port scan alert")
    fire(net, 3)
    rows = json.loads(ctl(net, "blocklist", "list").stdout)
    assert [r["address"] for r in rows] == [CLIENT]
    assert rows[0]["reason"].startswith("anomaly: NETSENTRY ANOMALY TCP port scan")
    assert settled(net) == base                          # blocked
    wait_for(lambda: json.loads(ctl(net, "blocklist", "list").stdout) == [], 20, "anomaly.block-ttl to pass")
    send(net, 3)
    assert wait_for(lambda: settled(net) == base + 3, 15, "traffic after the block expired")
    stats = json.loads(ctl(net, "stats").stdout)
    assert stats["netsentry.blocklist.added"] >= 3 and stats["netsentry.blocklist.dropped"] > 0
