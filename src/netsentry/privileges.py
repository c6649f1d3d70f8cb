"""Dropping root: open sockets and queues as root, then run as an unprivileged user.

As Suricata's ``--user``/``--group`` and ``run-as``: after the AF_PACKET
sockets, the NFQUEUE binding and the control socket are open, the daemon
switches to the configured user and group and keeps only the capabilities
it still needs: CAP_NET_RAW (raw sockets: TCP resets and ICMP unreachables of
``reject``) and CAP_NET_ADMIN (NFQUEUE verdicts and queue configuration).

How: ``prctl(PR_SET_KEEPCAPS, 1)`` so the permitted set survives setuid,
then setgroups/setgid/setuid, then ``capset`` to make exactly the kept
capabilities permitted and effective (no library: two syscalls through
ctypes). Without a user the daemon stays root and says so once in its log.
Under systemd the packaged unit does the same from outside (``User=``,
``AmbientCapabilities=``), and no ``--user`` is needed.
"""

from __future__ import annotations

import ctypes
import grp
import os
import pwd
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from netsentry.log import get_logger

PR_SET_KEEPCAPS = 8
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
CAPABILITIES = {"CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13}
DEFAULT_KEEP = ("CAP_NET_ADMIN", "CAP_NET_RAW")


class PrivilegeError(Exception):
    """Why the daemon cannot run as the configured user; one line naming the key or flag."""


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


_libc = ctypes.CDLL(None, use_errno=True)


@dataclass
class RunAs:
    user: str
    group: str
    uid: int
    gid: int


def resolve(user: str, group: str = "") -> RunAs:
    """The user (name or uid) and group (default: the user's primary group). PrivilegeError if unknown."""
    try:
        pw = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except KeyError:
        raise PrivilegeError(f"run-as.user: no such user {user!r}") from None
    gid = pw.pw_gid
    if group:
        try:
            gid = (grp.getgrgid(int(group)) if group.isdigit() else grp.getgrnam(group)).gr_gid
        except KeyError:
            raise PrivilegeError(f"run-as.group: no such group {group!r}") from None
    return RunAs(pw.pw_name, group or grp.getgrgid(gid).gr_name, pw.pw_uid, gid)


def from_config(config: Mapping[str, Any], user: str | None = None, group: str | None = None) -> RunAs | None:
    """--user/--group, else ``run-as.user``/``run-as.group``; None when no user is configured."""
    section = config.get("run-as") or {}
    user = user or str(section.get("user") or "")
    group = group or str(section.get("group") or "")
    if not user:
        if group:
            raise PrivilegeError("run-as.group needs run-as.user (or --user) as well")
        return None
    return resolve(user, group)


def _capset(mask: int) -> None:
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    data[0].effective = data[0].permitted = mask & 0xFFFFFFFF
    data[1].effective = data[1].permitted = mask >> 32
    if _libc.capset(ctypes.byref(header), data) != 0:
        err = ctypes.get_errno()
        raise PrivilegeError(f"capset: {os.strerror(err)}")


def effective_capabilities() -> int:
    """This process's effective capability mask (from /proc, for logs and tests)."""
    with open("/proc/self/status", "rb") as f:        # bytes: no codec import after the switch
        for line in f:
            if line.startswith(b"CapEff:"):
                return int(line.split()[1], 16)
    return 0


def drop(run_as: RunAs, keep: Iterable[str] = DEFAULT_KEEP, chown: Iterable[str] = ()) -> None:
    """Become `run_as`, keeping only the capabilities in `keep`; `chown` paths (the control
    socket, its directory) are handed to the user first so the daemon can still remove them."""
    if os.geteuid() != 0:
        raise PrivilegeError(f"cannot switch to user {run_as.user!r}: not running as root")
    mask = 0
    for name in keep:
        if name not in CAPABILITIES:
            raise PrivilegeError(f"unknown capability {name!r} (known: {', '.join(CAPABILITIES)})")
        mask |= 1 << CAPABILITIES[name]
    for path in chown:
        os.chown(path, run_as.uid, run_as.gid)
    if _libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0:
        raise PrivilegeError(f"prctl(PR_SET_KEEPCAPS): {os.strerror(ctypes.get_errno())}")
    os.setgroups([run_as.gid])
    os.setresgid(run_as.gid, run_as.gid, run_as.gid)
    os.setresuid(run_as.uid, run_as.uid, run_as.uid)
    _capset(mask)
    _libc.prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0)
    get_logger().info("privileges dropped", user=run_as.user, group=run_as.group,
                      capabilities=sorted(keep))


def apply(config: Mapping[str, Any], user: str | None = None, group: str | None = None,
          chown: Iterable[str] = ()) -> RunAs | None:
    """The daemon's step after opening its sockets: drop to the configured user, or say once that
    it stays root."""
    run_as = from_config(config, user, group)
    if run_as is None:
        if os.geteuid() == 0:
            get_logger().warning("running as root: no --user / run-as.user configured")
        return None
    drop(run_as, chown=chown)
    return run_as
