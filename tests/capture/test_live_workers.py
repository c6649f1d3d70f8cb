"""`netsentry run` with 2 worker processes, end to end in namespaces (workers_live.py).

IDS: two namespaces joined by a veth pair; `run -i vb --workers 2` captures in
the second; many TCP connections cross it, in both directions (the server
echoes). The kernel's fanout hash is symmetric, so each flow must come out as
one flow record with packets both ways, and each expected alert exactly once.
Also: a worker killed with SIGKILL is restarted and traffic keeps being
inspected; SIGUSR2 with a good and then a bad rule file (every worker takes
the good one; the bad one is reported once and changes nothing); SIGTERM ends
with exit 0 and every record written.

IPS: client | router | server with `--queue-balance 5:6`; `run -q 5:6` runs
one worker per queue. Benign connections complete, a drop rule's data never
reaches the server, both queues get packets, and a `ctl blocklist add` reaches
both workers (every connection of the blocked client is dropped, whichever
queue its flow hashes to) until `blocklist del`.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from netns_lab import (MIN_WAIT, PEER, Daemon, Lab, nfqueue_unavailable_reason, read_jsonl, system_user,
                       unavailable_reason, wait_for)

pytestmark = pytest.mark.netns

_REASON = unavailable_reason()
if _REASON:
    pytest.skip(_REASON, allow_module_level=True)

A4, B4 = "10.204.0.1", "10.204.0.2"
CLIENT4, SERVER4 = "10.204.1.2", "10.204.2.2"
# --queue-balance hashes the address pair only (not the ports): several pairs spread the flows
CLIENTS4 = [f"10.204.1.{i}" for i in range(2, 10)]
SERVERS4 = [f"10.204.2.{i}" for i in range(2, 18)]
QUEUES = "5:6"

IDS_RULES = """\
alert tcp any any -> any 7002 (msg:"tcp marker"; content:"marker"; sid:2100001; rev:1;)
"""
RELOADED_RULES = IDS_RULES + """\
alert tcp any any -> any 7002 (msg:"second marker"; content:"second"; sid:2100002; rev:1;)
"""
BAD_RULES = """\
alert tcp any any -> any 7002 (msg:"broken"; content:"third"; nosuchkeyword; sid:2100003; rev:1;)
"""
IPS_RULES = """\
alert tcp any any -> any 8080 (msg:"benign hello seen"; content:"hello"; sid:2200001; rev:1;)
drop tcp any any -> any 8081 (msg:"drop evil"; content:"evil"; sid:2200002; rev:1;)
alert tcp any any -> any 8080 (msg:"block this source"; content:"blockme"; metadata:block-source yes; sid:2200003; rev:1;)
"""

# N concurrent TCP connections; connection i goes from sources[i % len] to hosts[i % len],
# sends "<message> <i>" and waits for the echo. Prints [{"port": local port, "ok": echoed}, ...]
CLIENTS = """\
import json, socket, sys, threading
hosts, port, n, message, timeout = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
sources = [a for a in sys.argv[6].split(",") if a]
out = [None] * n
def one(i):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    r = {"port": None, "ok": False}
    try:
        if sources:
            s.bind((sources[i % len(sources)], 0))
        s.connect((hosts[i % len(hosts)], port))
        r["port"] = s.getsockname()[1]
        data = f"{message} {i}".encode()
        s.sendall(data)
        got = b""
        while len(got) < len(data):
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        r["ok"] = got == data
    except OSError as exc:
        r["error"] = type(exc).__name__
    finally:
        s.close()
    out[i] = r
threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
[t.start() for t in threads]
[t.join() for t in threads]
print(json.dumps(out))
"""


def connections(lab: Lab, ns: str, host: str | list[str], port: int, n: int, message: str, timeout: float = 3,
                sources: list[str] = ()) -> list[dict]:
    hosts = host if isinstance(host, list) else [host]
    done = lab.run(ns, sys.executable, "-c", CLIENTS, ",".join(hosts), str(port), str(n), message, str(timeout),
                   ",".join(sources), timeout=timeout * 3 + 30)
    return json.loads(done.stdout.strip().splitlines()[-1])


def worker_pids(d: Daemon) -> list[int]:
    path = Path(f"/proc/{d.proc.pid}/task/{d.proc.pid}/children")
    return [int(p) for p in path.read_text().split()]


def log_lines(d: Daemon, event: str) -> list[dict]:
    out = []
    for line in d.stderr().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("event") == event:
            out.append(rec)
    return out


def alerts(d: Daemon, sid: int) -> list[dict]:
    return [e for e in d.events("alert") if e["alert"]["signature_id"] == sid]


def ctl(lab: Lab, ns: str, d: Daemon, *words: str) -> dict:
    """`netsentry ctl` as an admin runs it: {"return": OK/NOK, "message": the answer or the error line}."""
    done = lab.run(ns, sys.executable, "-m", "netsentry", "ctl", "--socket", str(d.socket), *words, check=False)
    if done.returncode == 0:
        return {"return": "OK", "message": json.loads(done.stdout)}
    return {"return": "NOK", "message": done.stderr.strip()}


# --- IDS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory):
    lab = Lab()
    tmp = tmp_path_factory.mktemp("liveworkers")
    try:
        a = lab.ns("a")
        b = lab.ns("b")
        lab.veth(a, "va", b, "vb")
        lab.addr(a, "va", f"{A4}/24")
        lab.addr(b, "vb", f"{B4}/24")
        server_log = tmp / "server.jsonl"
        lab.spawn(b, sys.executable, PEER, "tcp-server", "7002", str(server_log))
        wait_for(lambda: read_jsonl(server_log), 10, "the TCP server")
        yield lab, a, b, tmp
    finally:
        lab.close()


def ids_daemon(pair, name: str, rules: str) -> tuple[Daemon, Path]:
    lab, a, b, tmp = pair
    rules_path = tmp / f"{name}.rules"
    rules_path.write_text(rules)
    d = Daemon(lab, b, tmp / name, "-i", "vb", "--workers", "2", "-S", str(rules_path),
               "--set", "stats.interval=1")
    d.wait_ready()
    wait_for(lambda: len(log_lines(d, "worker started")) == 2, 20, "both workers")
    return d, rules_path


def test_ids_two_workers_alert_once_one_flow_record_per_flow_and_clean_stop(pair) -> None:
    lab, a, b, tmp = pair
    d, _ = ids_daemon(pair, "ids", IDS_RULES)
    try:
        conns = connections(lab, a, B4, 7002, 40, "a marker from")
        assert all(c["ok"] for c in conns), conns
        ports = sorted(c["port"] for c in conns)
        wait_for(lambda: len(alerts(d, 2100001)) >= 40, 15, "40 alerts")
        stats = wait_for(lambda: [s for s in d.events("stats") if s["stats"]["decoder"]["pkts"] > 0], 15,
                         "a periodic stats record with packets")[-1]["stats"]
        assert stats["netsentry"]["workers"] == 2
        spread = stats["netsentry"]["worker"]["pkts"]
        assert set(spread) == {"0", "1"}
    finally:
        rc = d.stop(signal.SIGTERM)
    assert rc == 0, d.stderr()
    # every alert exactly once: one per connection, none twice
    assert sorted(e["src_port"] for e in alerts(d, 2100001)) == ports
    # one flow record per connection, with both directions in it: the fanout hash is symmetric
    flows = [e for e in d.events("flow") if e.get("proto") == "TCP" and e.get("dest_port") == 7002]
    assert sorted(f["src_port"] for f in flows) == ports
    for f in flows:
        assert f["flow"]["pkts_toserver"] >= 3 and f["flow"]["pkts_toclient"] >= 2, f
    final = d.events("stats")[-1]["stats"]
    assert final["netsentry"]["workers"] == 2
    # both workers had a share, and the sum is the whole
    per_worker = final["netsentry"]["worker"]["pkts"]
    assert per_worker["0"] > 0 and per_worker["1"] > 0, per_worker
    assert per_worker["0"] + per_worker["1"] == final["decoder"]["pkts"]
    assert final["capture"]["kernel_drops"] == 0
    assert final["detect"]["alert"] == 40
    assert final["flow"]["tcp"] == 40


def test_ids_killed_worker_is_restarted_and_reload_good_then_bad(pair) -> None:
    lab, a, b, tmp = pair
    d, rules = ids_daemon(pair, "ids-restart", IDS_RULES)
    try:
        # traffic first, and a stats record that counts it: the killed worker's counts must
        # stay in the stats after its restart (up to its last report to the parent)
        conns = connections(lab, a, B4, 7002, 20, "marker before the kill")
        assert all(c["ok"] for c in conns)
        victim = worker_pids(d)[0]
        slot = str(next(r["worker"] for r in log_lines(d, "worker started") if r["pid"] == victim))
        reported = wait_for(lambda: [s["stats"] for s in d.events("stats")
                                     if s["stats"]["netsentry"]["worker"]["pkts"][slot] > 0], 15,
                            "a stats record with the victim's packets")[-1]
        os.kill(victim, signal.SIGKILL)
        died = wait_for(lambda: log_lines(d, "worker died; restarting"), 10, "the death to be logged")
        assert "SIGKILL" in died[0]["how"]
        wait_for(lambda: len(log_lines(d, "worker started")) == 3, 20, "the restarted worker")
        assert victim not in worker_pids(d) and len(worker_pids(d)) == 2
        kept = ctl(lab, b, d, "stats")["message"]
        assert kept[f"netsentry.worker.pkts.{slot}"] >= reported["netsentry"]["worker"]["pkts"][slot]
        assert kept["decoder.pkts"] >= reported["decoder"]["pkts"]
        assert kept["detect.alert"] >= reported["detect"]["alert"] > 0
        conns = connections(lab, a, B4, 7002, 20, "marker after restart")
        assert all(c["ok"] for c in conns)
        wait_for(lambda: len([e for e in alerts(d, 2100001) if e["src_port"] in {c["port"] for c in conns}]) == 20,
                 15, "every flow alerted after the restart")

        # a good rule file: every worker takes it (flows land on both)
        rules.write_text(RELOADED_RULES)
        d.proc.send_signal(signal.SIGUSR2)
        done = wait_for(lambda: log_lines(d, "rules reloaded"), 20, "the reload")
        assert done[0]["workers"] == 2 and done[0]["signatures"] == 2
        conns = connections(lab, a, B4, 7002, 20, "second")
        ports = {c["port"] for c in conns}
        wait_for(lambda: {e["src_port"] for e in alerts(d, 2100002)} >= ports, 15, "the new rule in both workers")

        # a bad one: reported once, nothing changes anywhere
        rules.write_text(BAD_RULES)
        d.proc.send_signal(signal.SIGUSR2)
        failed = wait_for(lambda: log_lines(d, "rule reload failed; the running rules stay"), 20, "the refusal")
        time.sleep(1)
        assert len(log_lines(d, "rule reload failed; the running rules stay")) == 1
        assert "ids-restart.rules:1" in failed[0]["error"]
        answer = ctl(lab, b, d, "reload")
        assert answer["return"] == "NOK" and "running rules stay" in answer["message"]
        conns = connections(lab, a, B4, 7002, 20, "second again")
        ports = {c["port"] for c in conns}
        wait_for(lambda: {e["src_port"] for e in alerts(d, 2100002)} >= ports, 15, "the old set still alerting")

        stats = ctl(lab, b, d, "stats")
        assert stats["return"] == "OK"
        assert stats["message"]["netsentry.workers"] == 2
        assert stats["message"]["netsentry.worker.restarts"] == 1
        assert stats["message"]["netsentry.reload.success"] == 1
        assert stats["message"]["netsentry.reload.failed"] == 2
    finally:
        rc = d.stop(signal.SIGTERM)
    assert rc == 0, d.stderr()


# --- IPS ---------------------------------------------------------------------------------------


class Topology:
    def __init__(self, lab: Lab, tmp: Path) -> None:
        self.lab, self.tmp = lab, tmp
        self.client = lab.ns("c")
        self.router = lab.ns("r")
        self.server = lab.ns("s")
        lab.veth(self.client, "c0", self.router, "r0")
        lab.veth(self.router, "r1", self.server, "s0")
        for addr in CLIENTS4:
            lab.addr(self.client, "c0", f"{addr}/24")
        lab.addr(self.router, "r0", "10.204.1.1/24")
        lab.addr(self.router, "r1", "10.204.2.1/24")
        for addr in SERVERS4:
            lab.addr(self.server, "s0", f"{addr}/24")
        lab.route(self.client, "default", "via", "10.204.1.1")
        lab.route(self.server, "default", "via", "10.204.2.1")
        lab.run(self.router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        lab.run(self.router, sys.executable, "-m", "netsentry", "ips", "rules", "--queues", QUEUES, "--install")
        self.server_log = tmp / "server.jsonl"
        for port in (8080, 8081):
            lab.spawn(self.server, sys.executable, PEER, "tcp-server", str(port), str(self.server_log))
        wait_for(lambda: sum(1 for r in read_jsonl(self.server_log) if "listening" in r) == 2, 10,
                 "the TCP servers")
        self.rules = tmp / "ips.rules"
        self.rules.write_text(IPS_RULES)

    def server_saw(self, text: str) -> bool:
        return any(text in r.get("data", "") for r in read_jsonl(self.server_log))


@pytest.fixture(scope="module")
def topo(tmp_path_factory: pytest.TempPathFactory):
    if reason := nfqueue_unavailable_reason():
        pytest.skip(reason)
    lab = Lab()
    try:
        yield Topology(lab, tmp_path_factory.mktemp("liveworkers-ips"))
    finally:
        lab.close()


def test_ips_one_worker_per_queue_verdicts_and_blocklist_broadcast(topo: Topology) -> None:
    lab = topo.lab
    d = Daemon(lab, topo.router, topo.tmp / "ips", "-q", QUEUES, "-S", str(topo.rules),
               "--set", "stats.interval=1", "--set", "respond.blocklist.allow-own-addresses=false",
               "--set", "respond.blocklist.metadata-keys=[block-source]")
    d.wait_ready()
    try:
        started = wait_for(lambda: len(log_lines(d, "worker started")) == 2 and log_lines(d, "worker started"),
                           20, "one worker per queue")
        assert sorted(tuple(w["queues"]) for w in started) == [(5,), (6,)]

        conns = connections(lab, topo.client, SERVERS4[:5], 8080, 20, "hello", sources=CLIENTS4)
        assert all(c["ok"] for c in conns), conns
        wait_for(lambda: len(alerts(d, 2200001)) >= 20, 15, "the benign alerts")
        evil = connections(lab, topo.client, SERVERS4[:4], 8081, 4, "evil", timeout=2, sources=CLIENTS4[:4])
        assert not any(c["ok"] for c in evil)
        time.sleep(0.5)
        assert not topo.server_saw("evil"), "a dropped packet reached the server"

        stats = ctl(lab, topo.router, d, "stats")["message"]
        assert stats["netsentry.workers"] == 2
        assert stats["netsentry.worker.pkts.0"] > 0 and stats["netsentry.worker.pkts.1"] > 0, stats
        assert stats["ips.blocked"] >= 4

        # the block list: one ctl add reaches both workers
        added = ctl(lab, topo.router, d, "blocklist", "add", CLIENT4, "600")
        assert added["return"] == "OK", added
        before = stats
        # 16 address pairs: the blocked source's flows land on both queues, and both workers drop them
        blocked = connections(lab, topo.client, SERVERS4, 8080, 16, "hello while blocked", timeout=2,
                              sources=[CLIENT4])
        assert not any(c["ok"] for c in blocked), blocked
        after = ctl(lab, topo.router, d, "stats")["message"]
        assert after["netsentry.worker.pkts.0"] > before["netsentry.worker.pkts.0"]
        assert after["netsentry.worker.pkts.1"] > before["netsentry.worker.pkts.1"]
        time.sleep(0.5)
        assert not topo.server_saw("hello while blocked")
        listing = ctl(lab, topo.router, d, "blocklist", "list")["message"]
        assert [e["address"] for e in listing] == [CLIENT4] and listing[0]["hits"] >= 16
        assert after["netsentry.blocklist.dropped"] >= 16
        removed = ctl(lab, topo.router, d, "blocklist", "del", CLIENT4)
        assert removed["return"] == "OK", removed
        again = connections(lab, topo.client, SERVERS4, 8080, 16, "hello again", sources=[CLIENT4])
        assert all(c["ok"] for c in again), again
        assert ctl(lab, topo.router, d, "blocklist", "del", CLIENT4)["return"] == "NOK"

        # a block one worker decides by itself (a rule with the block-source metadata key)
        # reaches the other worker through the parent
        offender = CLIENTS4[5]
        first = connections(lab, topo.client, SERVER4, 8080, 1, "blockme", sources=[offender])
        wait_for(lambda: log_lines(d, "blocklist add from a worker, shared"), 10, "the block to be shared")
        # the parent's bl-add to the other worker is not answered; a call sent after it is answered
        # only once the worker has run every earlier one (one pipe, in order): the block is on in both
        listing = ctl(lab, topo.router, d, "blocklist", "list")["message"]
        assert offender in [e["address"] for e in listing], listing
        later = connections(lab, topo.client, SERVERS4, 8080, 16, "hello from the offender", timeout=2,
                            sources=[offender])
        assert not any(c["ok"] for c in later), later
        assert not topo.server_saw("hello from the offender")
        assert first[0]["port"] is not None

        # a second daemon on the same queues cannot start its workers: one line, exit 1, no retry loop
        d2 = Daemon(lab, topo.router, topo.tmp / "ips-second", "-q", QUEUES, "-S", str(topo.rules))
        assert d2.proc.wait(MIN_WAIT) == 1             # a bound on a hang only: start-up alone takes seconds
        d2._stderr.close()
        assert "could not start" in d2.stderr() and "cannot bind queue" in d2.stderr()
    finally:
        rc = d.stop(signal.SIGTERM)
    assert rc == 0, d.stderr()
    drops = [e for e in d.events("drop") if e.get("netsentry", {}).get("blocklist")]
    assert {e["src_ip"] for e in drops} == {CLIENT4, CLIENTS4[5]}
    final = d.events("stats")[-1]["stats"]
    assert final["netsentry"]["workers"] == 2
    assert final["netsentry"]["worker"]["pkts"]["0"] > 0 and final["netsentry"]["worker"]["pkts"]["1"] > 0


# Linux's SO_TIMESTAMPNS (also the control message's type); Python 3.11's socket module lacks the name
SO_TIMESTAMPNS = 35


class NotifyListener:
    """systemd's side of sd_notify: a datagram socket; every message with the time it was sent.

    The time is the kernel's (SO_TIMESTAMPNS, stamped when the daemon's datagram reached the
    socket), not when this thread got round to reading it: on a loaded machine the thread
    may run late, and a late stamp would move a keep-alive into a window it was not sent in."""

    def __init__(self, path: Path) -> None:
        import socket
        import threading
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import socket
        import struct
        while not self._stop:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(16))
            except OSError:
                continue
            sent = time.time()
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                    sec, nsec = struct.unpack("qq", value[:16])
                    sent = sec + nsec / 1e9
            self.messages.append((sent, data.decode()))

    def since(self, t0: float, field: str) -> list[float]:
        return [t for t, m in list(self.messages) if t >= t0 and field in m.split("\n")]

    def silent_since(self, seconds: float, field: str) -> float | None:
        """The start of a span of `seconds` up to now without `field` (None: there was one)."""
        start = time.time() - seconds
        return None if self.since(start, field) else start

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self.sock.close()


def test_ids_ready_after_all_workers_watchdog_only_while_they_live_and_sighup_reopens(pair, monkeypatch) -> None:
    from datetime import datetime
    lab, a, b, tmp = pair
    listener = NotifyListener(tmp / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp / "notify.sock"))
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")          # keep-alives every 0.5 s
    t0 = time.time()
    d, _ = ids_daemon(pair, "ids-notify", IDS_RULES)
    try:
        ready = wait_for(lambda: listener.since(t0, "READY=1"), 10, "READY=1")
        started = [datetime.fromisoformat(r["timestamp"]).timestamp() for r in log_lines(d, "worker started")]
        assert len(started) == 2 and ready[0] >= max(started) - 0.01     # only once every worker is up
        wait_for(lambda: len(listener.since(ready[0], "WATCHDOG=1")) >= 2, 10, "keep-alives while the workers live")
        assert len(listener.since(t0, "READY=1")) == 1

        # a hung worker (stopped): the parent stops the keep-alives, so systemd would restart the service.
        # When exactly depends on when the parent last heard from it (ALIVE_TIMEOUT, 5 s, after that,
        # later on a loaded machine): wait for a silence of five keep-alive intervals, then check that
        # none comes while the worker stays stopped
        hung = worker_pids(d)[1]
        os.kill(hung, signal.SIGSTOP)
        try:
            quiet = wait_for(lambda: listener.silent_since(2.5, "WATCHDOG=1"), 20, "the keep-alives to stop")
            time.sleep(2)
            assert listener.since(quiet, "WATCHDOG=1") == []
        finally:
            os.kill(hung, signal.SIGCONT)
        t1 = time.time()
        wait_for(lambda: listener.since(t1, "WATCHDOG=1"), 5, "keep-alives again")

        # SIGHUP after a rotation: every worker (and the parent's stats) writes the new file
        rotated = d.eve.with_name("eve.json.1")
        d.eve.rename(rotated)
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: d.eve.exists() and d.events("stats"), 10, "the parent's stats in the new file")
        # the parent asked every worker to reopen without waiting for them; a call it sends after
        # that is answered only once each worker has run the reopen (one pipe, in order)
        assert ctl(lab, b, d, "stats")["return"] == "OK"
        conns = connections(lab, a, B4, 7002, 20, "marker after rotation")
        ports = {c["port"] for c in conns}
        wait_for(lambda: {e["src_port"] for e in alerts(d, 2100001)} >= ports, 15, "alerts in the new file")
        old = [r for r in read_jsonl(rotated) if r.get("event_type") == "alert"]
        assert not {e["src_port"] for e in old} & ports
    finally:
        rc = d.stop(signal.SIGTERM)
        listener.close()
    assert rc == 0, d.stderr()
    assert listener.since(t0, "STOPPING=1")


@pytest.fixture
def test_user():
    import shutil
    if shutil.which("useradd") is None:
        pytest.skip("needs useradd (Debian's passwd package) to create a test user")
    with system_user("nslw") as name:
        yield name


def _uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[2])          # effective
    raise AssertionError(f"no Uid line for {pid}")


def test_ids_workers_as_a_user_and_a_worker_restarted_after_the_drop_still_captures(pair, test_user) -> None:
    import pwd
    import shutil
    import tempfile
    lab, a, b, tmp = pair
    uid = pwd.getpwnam(test_user).pw_uid
    logdir = Path(tempfile.mkdtemp(prefix="liveworkers-user-"))     # outside pytest's 0700 tree
    os.chmod(logdir, 0o755)
    try:
        rules = logdir / "user.rules"
        rules.write_text(IDS_RULES)
        d = Daemon(lab, b, logdir / "run", "-i", "vb", "--workers", "2", "-S", str(rules), "--user", test_user)
        try:
            d.wait_ready()
            wait_for(lambda: len(log_lines(d, "worker started")) == 2, 20, "both workers")
            wait_for(lambda: all(_uid(p) == uid for p in worker_pids(d)), 10, "the workers to drop to the user")
            assert _uid(d.proc.pid) == uid
            os.kill(worker_pids(d)[0], signal.SIGKILL)
            # forked by the parent after its own drop: it opens its fanout socket with the kept CAP_NET_RAW
            wait_for(lambda: len(log_lines(d, "worker started")) == 3, 20, "the restarted worker")
            assert all(_uid(p) == uid for p in worker_pids(d))
            conns = connections(lab, a, B4, 7002, 20, "marker as a user")
            ports = {c["port"] for c in conns}
            wait_for(lambda: {e["src_port"] for e in alerts(d, 2100001)} >= ports, 15, "alerts from both workers")
        finally:
            rc = d.stop(signal.SIGTERM)
        assert rc == 0, d.stderr()
        assert not log_lines(d, "worker died; restarting")[1:], "the restarted worker failed"
    finally:
        shutil.rmtree(logdir, ignore_errors=True)
