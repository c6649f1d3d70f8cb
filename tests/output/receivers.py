"""Real receivers for the output tests, started on loopback by the tests themselves:
rsyslog (``rsyslogd -n -f CONF -i PIDFILE``) and redis-server, plus test certificates
made with the openssl command line. Every process is stopped (and resumed first,
if a test froze it) when its context ends, even on failure."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

RSYSLOGD = shutil.which("rsyslogd") or ("/usr/sbin/rsyslogd" if os.path.exists("/usr/sbin/rsyslogd") else None)
GTLS = Path("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so")
OPENSSL = shutil.which("openssl")
REDIS = shutil.which("redis-server") or ("/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)

# what rsyslog writes for every message it receives: the header fields we set, then the message
FIELDS = "%syslogfacility%|%syslogseverity%|%hostname%|%app-name%|%procid%|%msgid%|%structured-data%|"
TEMPLATE = f'template(name="fields" type="string" string="{FIELDS}%msg%\\n")'


# Ports free_port() handed out, still bound by this process (see there) until release_ports().
_HELD: list[socket.socket] = []


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port of `kind` (TCP or UDP) for a receiver, or for a test that needs one no one listens on.

    The port stays bound here (SO_REUSEADDR, never listening) until `release_ports()`:
    a port merely found free and closed again could be taken by another process (the
    kernel hands the same range to every bind(0) and outgoing connect on the machine)
    before the receiver binds it, and the test would then talk to a stranger or to no
    one. While held, no one else can bind it, and a connect to it is refused as if
    nothing listened; rsyslogd and redis-server set SO_REUSEADDR themselves and so can
    bind and listen on it. The receivers release once they are up (a UDP input must not
    share its port with this socket when datagrams come); tests/output/conftest.py
    releases whatever is left after each test."""
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
    except OSError:
        s.close()
        raise
    _HELD.append(s)
    return s.getsockname()[1]


def release_ports() -> None:
    """Close every port free_port() holds (a receiver is up on them, or the test is over)."""
    while _HELD:
        _HELD.pop().close()


def wait_tcp(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class Receiver:
    """A receiver process the tests start: frozen (SIGSTOP) and thawed to make the sensor's
    output queue fill and drain; stopped (resumed first) when its context ends."""

    proc: subprocess.Popen

    def freeze(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGCONT)
                self.proc.terminate()
                self.proc.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):  # noqa: ANN204 - the subclass itself
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def thaw_after_the_capture_loop(proc: subprocess.Popen, eve: Path, receiver: Receiver,
                                timeout: float = 120.0) -> str:
    """A replay writing to a frozen `receiver`: wait until its capture loop is done (eve.json
    gets its stats record then), check the replay is still draining its output queue,
    thaw the receiver and return the replay's stderr once it exits."""
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            if eve.exists() and b'"event_type":"stats"' in eve.read_bytes()[-4096:]:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the replay must still be draining to the frozen receiver"
        assert b'"event_type":"stats"' in eve.read_bytes()[-4096:], "the capture loop did not finish"
        receiver.thaw()
        _, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return err


class Rsyslog(Receiver):
    """rsyslogd in the foreground with the given input lines; `received()` reads its file."""

    def __init__(self, workdir: Path, inputs: str, modules: str = "", globals_: str = "") -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.out = self.dir / "received.log"
        self.probe = free_port()            # a plain TCP input, only to know rsyslog is up
        conf = self.dir / "rsyslog.conf"
        conf.write_text(f"""
global(workDirectory="{self.dir}" maxMessageSize="64k" {globals_})
module(load="imtcp" {modules})
{inputs}
input(type="imtcp" port="{self.probe}" address="127.0.0.1" name="probe")
{TEMPLATE}
if $inputname != "probe" then {{
  action(type="omfile" file="{self.out}" template="fields" flushOnTXEnd="on" asyncWriting="off")
}}
""")
        self.proc = subprocess.Popen([RSYSLOGD, "-n", "-f", str(conf), "-i", str(self.dir / "rsyslog.pid")],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            wait_tcp(self.probe)
        except OSError:
            self.stop()
            raise RuntimeError(f"rsyslogd did not start: {self.proc.stdout.read().decode(errors='replace')}")
        release_ports()         # its inputs are bound (rsyslog binds every input before it runs one)

    def lines(self) -> list[str]:
        return self.out.read_text(errors="replace").splitlines() if self.out.exists() else []

    def wait_lines(self, count: int, timeout: float = 30.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            lines = self.lines()
            if len(lines) >= count or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    def stop(self) -> None:
        super().stop()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def make_certs(d: Path, name: str = "localhost") -> dict[str, Path]:
    """A CA, a server certificate for `name` (and 127.0.0.1), a client certificate, all signed by the CA;
    plus a second CA that signed nothing of ours (for the must-not-verify case)."""
    d.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run([OPENSSL, *args], cwd=d, check=True, capture_output=True)

    for ca in ("ca", "other-ca"):
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=netsentry test {ca}",
            "-keyout", f"{ca}-key.pem", "-out", f"{ca}.pem")
    (d / "san.ext").write_text(f"subjectAltName=DNS:{name},IP:127.0.0.1\n")
    for leaf in ("server", "client"):
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name if leaf == 'server' else 'client'}",
            "-keyout", f"{leaf}-key.pem", "-out", f"{leaf}.csr")
        run("x509", "-req", "-in", f"{leaf}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
            "-days", "2", "-extfile", "san.ext", "-out", f"{leaf}.pem")
    return {k: d / f"{k}.pem" for k in ("ca", "other-ca", "server", "server-key", "client", "client-key")}


class RedisServer(Receiver):
    """redis-server on a loopback port, no persistence."""

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc = subprocess.Popen([REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(workdir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_tcp(self.port)
        except OSError:
            self.stop()
            raise
        release_ports()

