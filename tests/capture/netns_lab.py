"""Network namespaces for the live-capture tests: created per test module, always removed.

Every address used lives inside namespaces made here (10.201.0.0/16 and
fd00:201::/32 on veth pairs between them), so no packet of these tests can
leave the machine. Deleting a namespace removes its veth ends, addresses,
routes and iptables rules with it; `Lab.close` also ends every process the
lab started, and runs even when a test fails (the fixtures use try/finally).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PEER = str(HERE / "netns_peer.py")


def unavailable_reason() -> str | None:
    """Why the namespace tests cannot run here (None: they can)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, AF_PACKET, NFQUEUE)"
    for tool in ("ip", "iptables", "ip6tables"):
        if shutil.which(tool) is None:
            return f"needs the {tool} command"
    probe = f"nsprobe{uuid.uuid4().hex[:6]}"
    done = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if done.returncode != 0:
        return f"cannot create a network namespace: {done.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def nfqueue_unavailable_reason() -> str | None:
    """Why the NFQUEUE (IPS) tests cannot run here: the namespace needs, the binding, the
    kernel module (None: they can)."""
    reason = unavailable_reason()
    if reason:
        return reason
    try:
        import netfilterqueue  # noqa: F401
    except ImportError:
        return "needs the netfilterqueue module (pip install '.[ips]')"
    if not os.path.exists("/proc/net/netfilter/nfnetlink_queue"):
        return "needs the nfnetlink_queue kernel module"
    return None



@contextmanager
def system_user(prefix: str) -> Iterator[str]:
    """A system user of the test's own making (no home, no shell), removed afterwards. Named
    by `prefix`, the pid and a random tag: parallel test processes never share one, and a user
    left behind by a run that was killed (userdel never ran) cannot make a later process
    with the same pid fail at useradd ("already exists"). `userdel -f` removes it even while
    a process the test started still runs as it."""
    name = f"{prefix}{os.getpid() % 100000}{uuid.uuid4().hex[:4]}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                   check=True, capture_output=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", "-f", name], capture_output=True)


class Lab:
    """Namespaces, veth pairs and processes of one test module."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:6]
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen] = []

    # --- building ------------------------------------------------------------------
    def ns(self, role: str) -> str:
        name = f"ns{self.tag}{role}"
        self.sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        self.sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def veth(self, ns_a: str, dev_a: str, ns_b: str, dev_b: str) -> None:
        tmp_a, tmp_b = f"v{self.tag}a", f"v{self.tag}b"
        self.sh("ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b)
        self.sh("ip", "link", "set", tmp_a, "netns", ns_a, "name", dev_a)
        self.sh("ip", "link", "set", tmp_b, "netns", ns_b, "name", dev_b)
        for ns, dev in ((ns_a, dev_a), (ns_b, dev_b)):
            self.sh("ip", "-n", ns, "link", "set", dev, "up")
            # IPv6 without duplicate address detection: the address is usable at once
            self.sh("ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"net.ipv6.conf.{dev}.accept_dad=0")

    def addr(self, ns: str, dev: str, cidr: str) -> None:
        extra = ["nodad"] if ":" in cidr else []
        self.sh("ip", "-n", ns, "addr", "add", cidr, "dev", dev, *extra)

    def route(self, ns: str, *args: str) -> None:
        six = ["-6"] if any(":" in a for a in args) else []
        self.sh("ip", *six, "-n", ns, "route", "add", *args)

    # --- running -----------------------------------------------------------------------
    @staticmethod
    def sh(*cmd: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess:
        done = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: exit {done.returncode}: {done.stderr.strip()}")
        return done

    def run(self, ns: str, *cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        return self.sh("ip", "netns", "exec", ns, *cmd, check=check, timeout=timeout)

    def peer(self, ns: str, *args: str, timeout: float = 30) -> dict:
        """Run a netns_peer.py client and return its JSON outcome."""
        done = self.run(ns, sys.executable, PEER, *args, timeout=timeout)
        return json.loads(done.stdout.strip().splitlines()[-1])

    def spawn(self, ns: str, *cmd: str, stdout: Any = subprocess.DEVNULL, stderr: Any = subprocess.DEVNULL,
              env: dict | None = None) -> subprocess.Popen:
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], stdout=stdout, stderr=stderr,
                                env=env, start_new_session=True)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(10)
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.namespaces.clear()


# A condition is waited for, never a fixed time: on this shared machine (load 9 seen) a
# daemon may take many times its usual start-up or drain time, so the bound a test
# names is raised to at least this many seconds. A passing wait returns as soon as
# its condition holds, so the bound costs nothing unless the test is failing anyway.
MIN_WAIT = float(os.environ.get("NETSENTRY_TEST_MIN_WAIT", "60"))


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll `predicate` until it returns something truthy (returned), for at least MIN_WAIT s."""
    bound = max(timeout, MIN_WAIT)
    deadline = time.monotonic() + bound
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {bound:g}s waiting for {what}")
        time.sleep(interval)


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass            # a line being written
    return out


# The start of a client script for `crafted_ips_path` (argv: server, port, source port): the
# handshake with the real server, leaving `ip`, `sport`, `port` and `ack` for the segments
# (the client's next sequence number is 1001). Prints {"result": "no syn-ack"} and exits
# when the server does not answer.
CRAFTED_HANDSHAKE = r"""
import json, sys, time
from scapy.all import IP, TCP, conf, send, sr1
conf.verb = 0
server, port, sport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ip = IP(dst=server)
synack = sr1(ip / TCP(sport=sport, dport=port, flags="S", seq=1000), timeout=10)
if synack is None or not synack.haslayer(TCP):
    print(json.dumps({"result": "no syn-ack"})); sys.exit(0)
ack = synack[TCP].seq + 1
send(ip / TCP(sport=sport, dport=port, flags="A", seq=1001, ack=ack))
"""


def crafted_ips_path(lab: Lab, tmp: Path, queue: int, net: int, client: str, server: str,
                     port: int) -> tuple[str, str, str, Path]:
    """client | router (NFQUEUE `queue`, the rules `netsentry ips rules` installs) | server,
    on 10.201.`net`.0/24 and 10.201.`net`+1.0/24, for a client that crafts its TCP session
    with scapy: its kernel knows nothing of that session, so its resets are kept in. A
    real TCP server listens on `port`. Returns the three namespaces and the server's log."""
    cns, rns, sns = lab.ns("c"), lab.ns("r"), lab.ns("s")
    lab.veth(cns, "c0", rns, "r0")
    lab.veth(rns, "r1", sns, "s0")
    lab.addr(cns, "c0", f"{client}/24")
    lab.addr(rns, "r0", f"10.201.{net}.1/24")
    lab.addr(rns, "r1", f"10.201.{net + 1}.1/24")
    lab.addr(sns, "s0", f"{server}/24")
    lab.route(cns, "default", "via", f"10.201.{net}.1")
    lab.route(sns, "default", "via", f"10.201.{net + 1}.1")
    lab.run(rns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
    lab.run(rns, sys.executable, "-m", "netsentry", "ips", "rules", "--queues", str(queue), "--install")
    lab.run(cns, "iptables", "-w", "-A", "OUTPUT", "-p", "tcp", "--tcp-flags", "RST", "RST", "-j", "DROP")
    log = tmp / "server.jsonl"
    lab.spawn(sns, sys.executable, PEER, "tcp-server", str(port), str(log))
    wait_for(lambda: any("listening" in r for r in read_jsonl(log)), 10, "the TCP server")
    return cns, rns, sns, log


class Daemon:
    """``netsentry run`` inside a namespace, with its log directory and stderr captured."""

    def __init__(self, lab: Lab, ns: str, logdir: Path, *args: str) -> None:
        self.logdir = logdir
        logdir.mkdir(parents=True, exist_ok=True)
        self.stderr_path = logdir / "stderr.log"
        self._stderr = open(self.stderr_path, "w", encoding="utf-8")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        # the control socket in the test's own directory: the default /run/netsentry/ is shared
        # by every daemon on the machine, and a SIGKILLed one (fail-open test) cannot clean it up
        self.socket = logdir / "netsentry.socket"
        self.proc = lab.spawn(ns, sys.executable, "-m", "netsentry", "run", "-l", str(logdir),
                              "--set", f"unix-command.filename={self.socket}", *args,
                              stderr=self._stderr, env=env)
        self.eve = logdir / "eve.json"

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout: float = 30) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"netsentry run exited {self.proc.returncode}: {self.stderr()}")
            return "capture started" in self.stderr()
        wait_for(ready, timeout, "netsentry run to start")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        # the daemon is the child of `ip netns exec` (which execs it): same pid
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(max(timeout, MIN_WAIT))
        finally:
            self._stderr.close()
        return rc

    def events(self, event_type: str | None = None) -> list[dict]:
        recs = read_jsonl(self.eve)
        return [r for r in recs if event_type is None or r.get("event_type") == event_type]
