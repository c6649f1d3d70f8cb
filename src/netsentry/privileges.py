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

Nothing is imported after the switch. The interpreter and its libraries may
sit where the new user cannot read (a pyenv under /root, mode 0700), and a
daemon should not load code as a different user than it started as anyway.
So `preload` imports, before the drop, every netsentry module and every
module any of them imports, at module level or inside a function (a rule
reload, `ctl`, a reopen run code paths start-up did not); then `drop` puts a
last-resort finder on ``sys.meta_path`` so that an import nothing could
satisfy is an ImportError naming the module and the user, which the daemon
reports as one line instead of a traceback.
"""

from __future__ import annotations

import ast
import ctypes
import grp
import importlib
import importlib.abc
import os
import pkgutil
import pwd
import sys
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


# modules the interpreter loads on demand (codec lookups, getaddrinfo of a unicode name,
# json/orjson fallbacks) rather than through an import statement preload could read
_ON_DEMAND = ("encodings.latin_1", "encodings.ascii", "encodings.utf_8", "encodings.idna",
              "encodings.unicode_escape", "encodings.raw_unicode_escape", "stringprep",
              "unicodedata", "_strptime", "json.decoder", "json.encoder")
_NOT_PRELOADED = ("netsentry.__main__",)       # running it would start a second CLI


def _imported_names(path: str) -> set[str]:
    """Absolute module names an import statement in `path` names (the module and, for
    `from X import Y`, X.Y in case Y is a submodule)."""
    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read(), path)
    except (OSError, SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def preload(package: str = "netsentry") -> int:
    """Import every module of `package` and everything they import, anywhere in their code,
    plus the modules the interpreter loads on demand. Optional dependencies that are not
    installed are skipped (a feature needing one fails at start-up already). Returns how
    many modules are loaded in all."""
    pkg = importlib.import_module(package)
    seen: set[str] = set()
    wanted: list[str] = list(_ON_DEMAND)
    for info in pkgutil.walk_packages(pkg.__path__, package + "."):
        if info.name not in _NOT_PRELOADED:
            wanted.append(info.name)
    while wanted:
        name = wanted.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            module = importlib.import_module(name)
        except Exception:       # noqa: BLE001 - not a module (an attribute), or an optional dependency
            continue
        path = getattr(module, "__file__", None)
        if name.startswith(package) and path and path.endswith(".py"):
            wanted.extend(n for n in _imported_names(path) if n not in seen)
    return len(sys.modules)


class _AfterDrop(importlib.abc.MetaPathFinder):
    """Last on sys.meta_path after the drop: an import no finder could satisfy gets an
    error that says why (the module was not loaded before the drop) instead of a bare
    'No module named'. Optional imports (`try: import x except ImportError`) still work."""

    def __init__(self, user: str) -> None:
        self.user = user

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        raise ModuleNotFoundError(
            f"module {fullname!r} is not available after dropping privileges to user {self.user!r} "
            "(it was not loaded before the drop, and the user cannot read it or it does not exist)",
            name=fullname)


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
    sys.meta_path.append(_AfterDrop(run_as.user))
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
    preload()
    drop(run_as, chown=chown)
    return run_as
