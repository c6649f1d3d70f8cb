"""Dropping root to a user of the test's own making, keeping CAP_NET_ADMIN and CAP_NET_RAW."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from netsentry.privileges import PrivilegeError, apply, from_config

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "capture"))
from netns_lab import system_user  # noqa: E402

needs_root = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("useradd") is None,
                                reason="needs root and useradd (Debian's passwd package) to create a test user")

CHILD = r"""
import json, os, socket, sys
from netsentry import privileges
privileges.apply({"run-as": {"user": sys.argv[1], "group": ""}}, chown=[sys.argv[2]])
raw = True
try:
    socket.socket(socket.AF_PACKET, socket.SOCK_RAW).close()     # needs CAP_NET_RAW
except PermissionError:
    raw = False
try:
    open("/etc/shadow").close()
    shadow = True
except PermissionError:
    shadow = False
print(json.dumps({"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups(),
                  "capeff": privileges.effective_capabilities(), "raw": raw, "shadow": shadow}))
"""


@pytest.fixture
def test_user():
    with system_user("nstest") as name:
        yield name


@needs_root
def test_drop_to_user_keeps_only_net_admin_and_net_raw(test_user, tmp_path):
    import pwd
    pw = pwd.getpwnam(test_user)
    owned = tmp_path / "sock-dir"
    owned.mkdir()
    proc = subprocess.run([sys.executable, "-c", CHILD, test_user, str(owned)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["uid"] == got["euid"] == pw.pw_uid
    assert got["gid"] == pw.pw_gid and got["groups"] == [pw.pw_gid]
    assert got["capeff"] == (1 << 12) | (1 << 13)          # CAP_NET_ADMIN | CAP_NET_RAW, nothing else
    assert got["raw"] is True                               # capture and reject still work
    assert got["shadow"] is False                           # and root's files are out of reach
    st = owned.stat()
    assert (st.st_uid, st.st_gid) == (pw.pw_uid, pw.pw_gid)    # handed over before the switch
    assert "privileges dropped" in proc.stderr + proc.stdout


def test_unknown_user_or_group_is_one_line():
    with pytest.raises(PrivilegeError, match="run-as.user: no such user 'no-such-user-x'"):
        from_config({"run-as": {"user": "no-such-user-x", "group": ""}})
    with pytest.raises(PrivilegeError, match="run-as.group: no such group 'no-such-group-x'"):
        from_config({"run-as": {"user": "root", "group": ""}}, group="no-such-group-x")
    with pytest.raises(PrivilegeError, match="needs run-as.user"):
        from_config({"run-as": {"user": "", "group": "root"}})


def test_flags_override_the_config():
    assert from_config({"run-as": {"user": "nobody-not-used", "group": ""}}, user="root").uid == 0
    assert from_config({"run-as": {"user": "", "group": ""}}) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="the 'stays root' notice is only given to root")
def test_without_a_user_it_stays_root_and_says_so():
    from netsentry.log import setup_logging
    buf = io.StringIO()
    setup_logging("info", "json", buf)
    assert apply({"run-as": {"user": "", "group": ""}}) is None
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["running as root: no --user / run-as.user configured"]
    assert os.geteuid() == 0


AFTER_DROP = r"""
import sys
from netsentry import privileges
privileges.apply({"run-as": {"user": sys.argv[1], "group": ""}})
import netsentry.reload, netsentry.rules.loader          # preloaded: no file is read
try:
    import xml.dom.minidom                               # not netsentry's: not preloaded
except ImportError as exc:
    print("ERROR", exc)
"""


@needs_root
def test_after_the_drop_nothing_is_imported_and_a_miss_is_a_clear_error(test_user):
    """The interpreter lives under /root (0700) here: after the drop the user cannot read it.
    What netsentry needs was loaded before; anything else fails with a message naming why."""
    if os.access(sys.base_prefix, os.R_OK) and not sys.base_prefix.startswith("/root"):
        pytest.skip("the interpreter is readable by every user here: a miss would not show")
    proc = subprocess.run([sys.executable, "-c", AFTER_DROP, test_user], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip().splitlines()[-1]
    assert line.startswith("ERROR module 'xml") and f"after dropping privileges to user {test_user!r}" in line
    assert "Traceback" not in proc.stderr
