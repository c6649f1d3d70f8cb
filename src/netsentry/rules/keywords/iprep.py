"""IP reputation: the `iprep` keyword and the reputation store it reads (Suricata's
reputation.c, detect-iprep.c; docs "IP Reputation").

Configuration (read once per rule load, `configure`):

- ``reputation-categories-file``: lines ``<id>,<shortname>,<description>``, id 0-59
  (0 is never matched: a rule naming it is refused, as in Suricata);
- ``reputation-files``: a list of files (a relative name is under
  ``default-reputation-path`` when that is set), lines ``<ip>[/<mask>],<category id>,<score>``,
  score 0-127. A line starting with ``#``, a blank or a line end is skipped; a line ``ip,...``
  is a header. A bad line is reported and skipped.
- Neither setting: reputation is off (a rule with `iprep` names an unknown category).
  Files without a categories file, or a categories file without files, are an error.

Addresses without a mask are hosts: every category of a host that has any entry reads
0 when not listed (Suricata keeps one table of 60 scores per host; a later line for
the same host and category replaces the score). Netblocks (``10.0.0.0/8``) are kept per
category, looked up by longest prefix (the first line for a netblock wins), and are
read only when the host has no entry. IPv4 and IPv6 alike.

Rule keyword::

    iprep:<any|src|dst|both>,<category>,<op>,<score>;     op: <, <=, >, >=, =, !=, ...
    iprep:<any|src|dst|both>,<category>,isset|isnotset;

``any``: the source's score matches, or else the destination's; ``both``: the two
match; ``isnotset``: no score (``any``: either side has none; ``both``: neither has one).
The keyword keeps a rule IP-only and works in firewall rules.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from typing import Any

from netsentry.rules.errors import RuleError
from netsentry.rules.numeric import parse_uint
from netsentry.rules.registry import RuleBuilder, keyword, unquote

MAX_CATS = 60           # SREP_MAX_CATS
MAX_SCORE = 127         # SREP_MAX_VAL


class Reputation:
    """The loaded reputation of one rule load: categories, host scores, netblock scores."""

    __slots__ = ("cats", "hosts", "nets", "errors")

    def __init__(self) -> None:
        self.cats: dict[str, int] = {}
        self.hosts: dict[bytes, dict[int, int]] = {}
        # category -> address length (4, 16) -> [(prefix length, {network: score})], longest first
        self.nets: dict[int, dict[int, list[tuple[int, dict[int, int]]]]] = {}
        self.errors: list[str] = []

    # --- loading ---------------------------------------------------------------------------

    def load_categories(self, text: str, where: str) -> None:
        for n, line in enumerate(_lines(text), 1):
            if line is None:
                continue
            parts = line.split(",")
            if len(parts) < 2 or not parts[0].strip().isdigit() or not parts[1]:
                self.errors.append(f"{where}:{n}: bad category line '{line}'")
                continue
            cat = int(parts[0].strip())
            if cat >= MAX_CATS:
                self.errors.append(f"{where}:{n}: category id {cat} out of range (0-{MAX_CATS - 1})")
                continue
            self.cats[parts[1][:31]] = cat

    def load_scores(self, text: str, where: str) -> None:
        for n, line in enumerate(_lines(text), 1):
            if line is None:
                continue
            parts = line.split(",")
            if len(parts) >= 1 and parts[0] == "ip":
                continue                # a header line
            err = self._add(parts)
            if err:
                self.errors.append(f"{where}:{n}: {err} in '{line}'")

    def _add(self, parts: list[str]) -> str | None:
        if len(parts) < 3:
            return "expected <ip>,<category>,<score>"
        addr, cat_s, score_s = parts[0].strip(), parts[1].strip(), parts[2].strip()
        if not cat_s.isdigit() or int(cat_s) >= MAX_CATS:
            return f"bad category '{cat_s}'"
        if not score_s.isdigit() or int(score_s) > MAX_SCORE:
            return f"bad score '{score_s}' (0-{MAX_SCORE})"
        cat, score = int(cat_s), int(score_s)
        if "/" in addr:
            try:
                net = ipaddress.ip_network(addr, strict=False)
            except ValueError:
                return f"bad netblock '{addr}'"
            size = 4 if net.version == 4 else 16
            blocks = self.nets.setdefault(cat, {}).setdefault(size, [])
            for plen, table in blocks:
                if plen == net.prefixlen:
                    table.setdefault(int(net.network_address), score)     # the first one stays
                    break
            else:
                blocks.append((net.prefixlen, {int(net.network_address): score}))
                blocks.sort(key=lambda b: -b[0])
            return None
        try:
            packed = ipaddress.ip_address(addr).packed
        except ValueError:
            return f"bad address '{addr}'"
        self.hosts.setdefault(packed, {})[cat] = score
        return None

    # --- lookups ---------------------------------------------------------------------------

    def score(self, addr: bytes, cat: int) -> int:
        """The score of `addr` in `cat`, -1 when it has none."""
        host = self.hosts.get(addr)
        if host is not None:
            return host.get(cat, 0)
        by_size = self.nets.get(cat)
        if by_size is None or not addr:
            return -1
        blocks = by_size.get(len(addr))
        if not blocks:
            return -1
        bits = len(addr) * 8
        value = int.from_bytes(addr, "big")
        for plen, table in blocks:
            got = table.get(value >> (bits - plen) << (bits - plen) if plen else 0)
            if got is not None:
                return got
        return -1


def _lines(text: str):
    """The lines of a reputation file: None for one to skip (comment, blank, indented)."""
    for raw in text.split("\n"):
        line = raw.rstrip("\r")
        if not line or line[0] in "# \t\r":
            yield None
            continue
        yield line.rstrip("\r\n")


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def configure(config: Mapping[str, Any] | None) -> tuple[Reputation | None, list[str]]:
    """The reputation the configuration names, or None when it names none; with the
    problems found (files not readable, bad lines), each a message to report."""
    from netsentry.config import get
    cfg = config or {}
    cat_file = get(cfg, "reputation-categories-file", None) or None
    files = get(cfg, "reputation-files", None) or None
    if cat_file is None and files is None:
        return None, []
    if isinstance(files, Mapping):      # --set reputation-files.0=...
        files = [files[k] for k in sorted(files, key=lambda k: int(k) if str(k).isdigit() else 0)]
    elif isinstance(files, str):
        files = [files]
    if files is None:
        return None, ["\"reputation-files\" not set (IP reputation needs it with reputation-categories-file)"]
    if cat_file is None:
        return None, ["\"reputation-categories-file\" not set (IP reputation needs it with reputation-files)"]
    rep = Reputation()
    try:
        rep.load_categories(_read(str(cat_file)), str(cat_file))
    except OSError as e:
        return None, [f"reputation categories file {cat_file}: {e.strerror or e}"]
    base = get(cfg, "default-reputation-path", None)
    for name in files or ():
        path = str(name)
        if base and not os.path.isabs(path):
            path = os.path.join(str(base), path)
        try:
            rep.load_scores(_read(path), path)
        except OSError as e:
            rep.errors.append(f"reputation file {path}: {e.strerror or e}")
    return rep, rep.errors


# --- the keyword -----------------------------------------------------------------------------

_SIDES = ("any", "both", "src", "dst")


def _store(b: RuleBuilder) -> Reputation | None:
    env = b.env
    if env is None:
        return None
    return env.state.get("iprep")


@keyword("iprep", help="iprep:<any|src|dst|both>,<category>,<op><score>|isset|isnotset; "
         "the reputation of the packet's addresses (reputation-files)")
def iprep(b: RuleBuilder, arg: str | None) -> None:
    text = unquote(arg, "iprep").strip()
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (3, 4) or not all(parts):
        raise RuleError(f"iprep: expected <any|src|dst|both>,<category>,<op>,<score> or "
                        f"...,<category>,isset|isnotset, got '{text}'")
    side, name = parts[0], parts[1]
    if side not in _SIDES:
        raise RuleError(f"iprep: '{side}' is not one of {', '.join(_SIDES)}")
    rep = _store(b)
    cat = rep.cats.get(name, 0) if rep is not None else 0
    if cat == 0:
        raise RuleError(f"iprep: unknown category '{name}'"
                        + ("" if rep is not None else " (no reputation-categories-file configured)"))
    notset = False
    if len(parts) == 4:
        op = parts[2]
        if op not in ("<", ">", "=", "<=", ">=", "!=", "!"):
            raise RuleError(f"iprep: invalid operator '{op}'")
        pred: Callable[[int], bool] = parse_uint(op + parts[3], "iprep", 8)
    elif parts[2] == "isset":
        pred = lambda v: True                   # noqa: E731
    elif parts[2] == "isnotset":
        notset = True
        pred = lambda v: True                   # noqa: E731
    else:
        raise RuleError(f"iprep: expected isset or isnotset, got '{parts[2]}'")
    score = rep.score
    if side == "src":
        def check(pkt: Any, flow: Any) -> bool:
            v = score(pkt.src, cat)
            return v < 0 if notset else (v >= 0 and pred(v))
    elif side == "dst":
        def check(pkt: Any, flow: Any) -> bool:
            v = score(pkt.dst, cat)
            return v < 0 if notset else (v >= 0 and pred(v))
    elif side == "any":
        def check(pkt: Any, flow: Any) -> bool:
            s, d = score(pkt.src, cat), score(pkt.dst, cat)
            if notset:
                return s < 0 or d < 0
            return (s >= 0 and pred(s)) or (d >= 0 and pred(d))
    else:
        def check(pkt: Any, flow: Any) -> bool:
            s, d = score(pkt.src, cat), score(pkt.dst, cat)
            if notset:
                return s < 0 and d < 0
            return s >= 0 and d >= 0 and pred(s) and pred(d)
    b.packet_checks.append(check)
    b.sig.iponly_checks += 1            # SIGMATCH_IPONLY_COMPAT
    b.env.state["iprep_used"] = True
