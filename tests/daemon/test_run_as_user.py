"""`netsentry run --user` end to end: a user of the test's own making, a live IDS in a namespace.

The interpreter here lives under /root (mode 0700): after the drop the daemon cannot read
one more file of it, so this also proves nothing is imported after the drop (a reload,
a reopen and the final flush run code start-up did not). Checked: the process's uid,
gid and capabilities, alerts from real traffic, log files owned by the user, SIGUSR2
reload and SIGHUP reopen after the drop, and a clean stop.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "capture"))
from netns_lab import Daemon, Lab, read_jsonl, system_user, unavailable_reason, wait_for  # noqa: E402

pytestmark = pytest.mark.netns

_REASON = unavailable_reason() or (None if shutil.which("useradd") else "needs useradd (Debian's passwd package)")
if _REASON:
    pytest.skip(_REASON, allow_module_level=True)

A4, B4 = "10.203.0.1", "10.203.0.2"
CAP_NET_ADMIN, CAP_NET_RAW = 12, 13
RULE_1 = 'alert udp any any -> any 7101 (msg:"first"; content:"marker"; sid:3000001; rev:1;)\n'
RULE_2 = 'alert udp any any -> any 7101 (msg:"second"; content:"marker"; sid:3000002; rev:1;)\n'


@pytest.fixture(scope="module")
def user():
    with system_user("nsrun") as name:
        yield pwd.getpwnam(name)


@pytest.fixture
def setup(user):
    # pytest's tmp_path is under a 0700 directory: the user could not read the rules to reload
    base = Path(tempfile.mkdtemp(prefix="daemon-runas-"))
    base.chmod(0o755)
    logdir = base / "log"
    logdir.mkdir()
    os.chown(logdir, user.pw_uid, user.pw_gid)      # as the packaged tmpfiles snippet makes it
    rules = base / "local.rules"
    rules.write_text(RULE_1)
    rules.chmod(0o644)
    lab = Lab()
    try:
        a, b = lab.ns("a"), lab.ns("b")
        lab.veth(a, "va", b, "vb")
        lab.addr(a, "va", f"{A4}/24")
        lab.addr(b, "vb", f"{B4}/24")
        yield lab, a, b, logdir, rules
    finally:
        lab.close()
        shutil.rmtree(base, ignore_errors=True)


def _send(lab: Lab, ns: str, text: str, count: int = 3) -> None:
    lab.run(ns, sys.executable, "-c",
            "import socket\n"
            "s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            f"[s.sendto({text!r}.encode(), ({B4!r}, 7101)) for _ in range({count})]\n")


def _status(pid: int) -> dict[str, list[str]]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.split()
    return out


def _sids(path: Path) -> list[int]:
    return [r["alert"]["signature_id"] for r in read_jsonl(path) if r.get("event_type") == "alert"]


def test_run_as_user_drops_privileges_and_keeps_working(setup, user) -> None:
    lab, a, b, logdir, rules = setup
    d = Daemon(lab, b, logdir, "-i", "vb", "-S", str(rules), "--user", user.pw_name,
               "--set", "stats.interval=1")
    d.wait_ready()
    try:
        assert "privileges dropped" in d.stderr()
        st = _status(d.proc.pid)
        assert st["Uid"] == [str(user.pw_uid)] * 4
        assert st["Gid"] == [str(user.pw_gid)] * 4
        assert st["Groups"] == [str(user.pw_gid)]
        capeff = int(st["CapEff"][0], 16)
        assert capeff & ~((1 << CAP_NET_ADMIN) | (1 << CAP_NET_RAW)) == 0, hex(capeff)
        assert int(st["CapPrm"][0], 16) == capeff

        # traffic still produces alerts; the log files belong to the user
        _send(lab, a, "a marker")
        wait_for(lambda: _sids(d.eve).count(3000001) == 3, 30, "3 alerts of sid 3000001")
        assert d.eve.stat().st_uid == user.pw_uid
        assert d.socket.stat().st_uid == user.pw_uid

        # SIGUSR2 after the drop: the new rules are read and built as the user
        rules.write_text(RULE_2)
        d.proc.send_signal(signal.SIGUSR2)
        wait_for(lambda: "rules reloaded" in d.stderr() or "reload failed" in d.stderr(), 30, "the reload")
        assert "rules reloaded" in d.stderr(), d.stderr()
        _send(lab, a, "a marker again")
        # the first packet after the reload already meets the new rules
        wait_for(lambda: _sids(d.eve).count(3000002) == 3, 30, "3 alerts of the reloaded sid 3000002")
        assert _sids(d.eve).count(3000001) == 3

        # SIGHUP after the drop: logrotate moved eve.json away; the daemon makes a new one
        rotated = logdir / "eve.json.1"
        d.eve.rename(rotated)
        d.proc.send_signal(signal.SIGHUP)
        # the reopen runs at the next tick (within a second): a new eve.json, made by the user
        wait_for(lambda: d.eve.exists(), 30, "eve.json reopened after SIGHUP")
        _send(lab, a, "a marker after rotation")
        wait_for(lambda: _sids(d.eve).count(3000002) == 3, 30, "the alerts in the new eve.json")
        assert _sids(rotated) == [3000001] * 3 + [3000002] * 3         # nothing lost, nothing twice
        assert d.eve.stat().st_uid == user.pw_uid
    finally:
        rc = d.stop()
    assert rc == 0, d.stderr()
    assert "Traceback" not in d.stderr()
    assert any(r.get("event_type") == "stats" for r in read_jsonl(d.eve))      # the final flush, as the user
