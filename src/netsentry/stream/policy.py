"""Target-based overlap policies, as Suricata implements them, by name.

Each table maps a configured policy name to `new_wins(ns, ne, os, oe)`
(overlay.py): the extents of the new and the old piece, true when the new
bytes replace the old ones where they overlap.

IP fragments (Suricata's defrag.c, DefragInsertFrag; the names Snort's
frag3 gave them after Novak's "Target-Based Fragmentation Reassembly"):
- first: the first bytes received are kept; last: the last received win;
- bsd: the new fragment wins only where it starts before the old one;
- bsd-right: the fragment that starts later wins;
- linux: like bsd, and a new fragment at the same offset that reaches at
  least as far replaces the old one;
- windows: the new fragment wins only when it starts before and ends after
  the old one;
- solaris: the new fragment wins when it starts before the old one and
  reaches at least its end.

TCP segments (Suricata's stream-tcp-list.c, DoHandleDataOverlap, host OS
policies; default bsd as Suricata's host-os-policy default):
- first / vista: old data kept; last: new data wins;
- bsd, hpux10, irix, windows, windows2k3, macos: new wins where it starts
  before the old segment;
- linux: that, or same start and reaching beyond the old segment's end;
- old-linux: that, or same start and reaching at least its end;
- solaris, hpux11: new wins when it ends at or beyond the old segment's end
  unless it starts inside it and ends at the same byte.
"""

from __future__ import annotations

from netsentry.stream.overlay import Policy


def _first(ns: int, ne: int, os_: int, oe: int) -> bool:
    return False


def _last(ns: int, ne: int, os_: int, oe: int) -> bool:
    return True


def _starts_before(ns: int, ne: int, os_: int, oe: int) -> bool:
    return ns < os_


def _starts_later(ns: int, ne: int, os_: int, oe: int) -> bool:
    return ns >= os_


def _frag_linux(ns: int, ne: int, os_: int, oe: int) -> bool:
    return ns < os_ or (ns == os_ and ne >= oe)


def _frag_windows(ns: int, ne: int, os_: int, oe: int) -> bool:
    return ns < os_ and ne > oe


def _frag_solaris(ns: int, ne: int, os_: int, oe: int) -> bool:
    return ns < os_ and ne >= oe


def _tcp_linux(ns: int, ne: int, os_: int, oe: int) -> bool:
    return ns < os_ or (ns == os_ and ne > oe)


def _tcp_old_linux(ns: int, ne: int, os_: int, oe: int) -> bool:
    return ns < os_ or (ns == os_ and ne >= oe)


def _tcp_solaris(ns: int, ne: int, os_: int, oe: int) -> bool:
    if ns <= os_:
        return ne >= oe
    return ne > oe


FRAG_POLICIES: dict[str, Policy] = {
    "first": _first,
    "last": _last,
    "bsd": _starts_before,
    "bsd-right": _starts_later,
    "linux": _frag_linux,
    "windows": _frag_windows,
    "solaris": _frag_solaris,
}

TCP_POLICIES: dict[str, Policy] = {
    "first": _first,
    "vista": _first,
    "last": _last,
    "bsd": _starts_before,
    "hpux10": _starts_before,
    "irix": _starts_before,
    "windows": _starts_before,
    "windows2k3": _starts_before,
    "macos": _starts_before,
    "linux": _tcp_linux,
    "old-linux": _tcp_old_linux,
    "solaris": _tcp_solaris,
    "hpux11": _tcp_solaris,
}
