"""systemd/: the units verify, and sd_notify speaks the protocol systemd reads."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from netsentry import notify

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "systemd"
NETSENTRY = Path(sys.executable).with_name("netsentry")


def render(unit: str, replacements: dict[str, str]) -> str:
    text = (UNITS / unit).read_text()
    for old, new in replacements.items():
        text = text.replace(old, new)
    return text


def unit_lines(text: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(key + "=")]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="needs systemd-analyze (Debian's systemd package, installed by setup.sh)")
@pytest.mark.parametrize("unit", ["netsentry.service", "netsentry-ips.service"])
def test_units_verify(tmp_path, unit):
    assert NETSENTRY.exists()
    # the units name /usr/bin/netsentry; systemd-analyze wants the binary to exist, so point at ours
    (tmp_path / unit).write_text(render(unit, {"/usr/bin/netsentry": str(NETSENTRY)}))
    done = subprocess.run(["systemd-analyze", "verify", str(tmp_path / unit)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    # unknown keys and typos are only warnings; none is allowed
    assert done.stderr.strip() == "" and done.stdout.strip() == "", done.stderr + done.stdout


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_verify_catches_a_broken_unit(tmp_path):
    """The check above can fail: a misspelt hardening key is reported."""
    bad = render("netsentry.service", {"/usr/bin/netsentry": str(NETSENTRY), "ProtectSystem=": "ProtectSystm="})
    (tmp_path / "netsentry.service").write_text(bad)
    done = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "netsentry.service")],
                          capture_output=True, text=True, timeout=60)
    assert "ProtectSystm" in done.stderr


@pytest.mark.parametrize("unit", ["netsentry.service", "netsentry-ips.service"])
def test_units_are_hardened(unit):
    text = (UNITS / unit).read_text()
    keys = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    assert keys["Type"] == "notify" and int(keys["WatchdogSec"].rstrip("s")) > 0
    assert keys["ProtectSystem"] == "strict" and keys["ProtectHome"] == "yes"
    assert keys["NoNewPrivileges"] == "yes" and keys["PrivateTmp"] == "yes"
    assert set(keys["CapabilityBoundingSet"].split()) == {"CAP_NET_ADMIN", "CAP_NET_RAW"}
    assert set(keys["AmbientCapabilities"].split()) == {"CAP_NET_ADMIN", "CAP_NET_RAW"}
    assert keys["Restart"] == "on-failure" and keys["User"] == "netsentry"
    assert keys["ExecReload"] == "/bin/kill -USR2 $MAINPID"
    assert "/var/log/netsentry" in keys["ReadWritePaths"] and "/var/lib/netsentry" in keys["ReadWritePaths"]
    assert re.search(r"--set unix-command\.filename=/run/netsentry/", keys["ExecStart"])


def test_sysusers_and_tmpfiles_name_the_units_user():
    sysusers = (UNITS / "sysusers.d" / "netsentry.conf").read_text()
    assert re.search(r"^u netsentry - ", sysusers, re.M)
    tmpfiles = (UNITS / "tmpfiles.d" / "netsentry.conf").read_text()
    for d in ("/run/netsentry", "/var/lib/netsentry", "/var/log/netsentry"):
        assert re.search(rf"^d {d}\s+0750 netsentry netsentry", tmpfiles, re.M)


# --- sd_notify ------------------------------------------------------------------------------------

@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    try:
        yield sock
    finally:
        sock.close()


def test_notify_sends_one_datagram(notify_socket):
    assert notify.notify("READY=1", "STATUS=running")
    assert notify_socket.recv(4096) == b"READY=1\nSTATUS=running"


def test_notify_abstract_socket(monkeypatch):
    name = f"netsentry-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert notify.notify("WATCHDOG=1")
        assert sock.recv(100) == b"WATCHDOG=1"
    finally:
        sock.close()


def test_without_systemd_notify_is_a_no_op(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify.notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", "/nonexistent/dir/sock")
    assert notify.notify("READY=1") is False          # systemd gone: carry on


def test_watchdog_at_half_the_interval(notify_socket, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "4000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert notify.watchdog_interval() == 2.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert notify.watchdog_interval() is None          # meant for another process
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    dog = notify.Watchdog()
    dog.tick()
    dog.tick()                                         # within the interval: nothing more
    assert notify_socket.recv(100) == b"WATCHDOG=1"
    notify_socket.settimeout(0.2)
    with pytest.raises(TimeoutError):
        notify_socket.recv(100)
    dog._next = 0.0                                    # the interval has passed
    dog.tick()
    assert notify_socket.recv(100) == b"WATCHDOG=1"
    monkeypatch.delenv("WATCHDOG_USEC")
    assert notify.watchdog_interval() is None


def test_watchdog_due_in_bounds_a_loops_wait(notify_socket, monkeypatch):
    """How long a main loop may sleep before the next keep-alive is due (workers_live waits at
    most this long): none without a watchdog, the interval after a keep-alive, 0 once due."""
    import time
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert notify.Watchdog().due_in(time.monotonic()) is None
    monkeypatch.setenv("WATCHDOG_USEC", "4000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    dog = notify.Watchdog()
    assert dog.due_in(time.monotonic()) == 0.0          # never sent: due now
    dog.tick()
    now = time.monotonic()
    assert 0.0 < dog.due_in(now) <= 2.0
    assert dog.due_in(now + 5.0) == 0.0                 # overdue is due now, never negative
