"""The Public Suffix List, for the `domain` and `tld` transforms (Suricata's psl crate).

Read once, on the first rule that uses one of them, from the system's copy
(Debian/Ubuntu package ``publicsuffix``). The usual algorithm
(https://publicsuffix.org/list/): the matching rule with the most labels wins,
an exception rule (``!www.ck``) wins over all and stands for its parent, a
wildcard (``*.ck``) matches any one label, and with no match the suffix is the
last label. The registrable domain is the suffix and one label more.
"""

from __future__ import annotations

import os

from netsentry.rules.errors import RuleError

PATHS = ("/usr/share/publicsuffix/public_suffix_list.dat", "/usr/share/publicsuffix/effective_tld_names.dat")

_rules: tuple[frozenset[bytes], frozenset[bytes], frozenset[bytes]] | None = None


def load(what: str) -> None:
    """Read the list (once); a RuleError naming `what` when the system has none."""
    global _rules
    if _rules is not None:
        return
    for path in PATHS:
        if os.path.isfile(path):
            break
    else:
        raise RuleError(f"{what}: no public suffix list (looked for {', '.join(PATHS)}; "
                        "Debian/Ubuntu package 'publicsuffix')")
    normal, wild, exc = set(), set(), set()
    with open(path, "rb") as fh:
        for line in fh:
            rule = line.split(None, 1)[0].lower() if line.strip() else b""
            if not rule or rule.startswith(b"//"):
                continue
            if rule.startswith(b"!"):
                exc.add(rule[1:])
            elif rule.startswith(b"*."):
                wild.add(rule[2:])
            else:
                normal.add(rule)
    _rules = (frozenset(normal), frozenset(wild), frozenset(exc))


def suffix_labels(labels: list[bytes]) -> int:
    """How many trailing labels of `labels` (lowercase) are the public suffix."""
    if _rules is None:
        # a ruleset from the rule cache parsed no `domain`/`tld` rule in this process: the
        # list is read on first use (it was there when the rule was first loaded)
        load("domain")
    assert _rules is not None
    normal, wild, exc = _rules
    best = 1
    n = len(labels)
    for k in range(1, n + 1):
        name = b".".join(labels[n - k:])
        if name in exc:
            return k - 1
        if name in normal:
            best = max(best, k)
        if k < n and name in wild:
            best = max(best, k + 1)
    return best


def _split(name: bytes) -> tuple[list[bytes], int]:
    """`name`'s labels and how many of them are its public suffix; (.., -1) when it has
    no registrable domain (empty, an empty label, or a bare suffix)."""
    labels = name.rstrip(b".").split(b".")
    if not name or any(not label for label in labels):
        return labels, -1
    k = suffix_labels([label.lower() for label in labels])
    return labels, (k if k < len(labels) else -1)


def domain(name: bytes) -> bytes:
    """The registrable domain of `name` (b"" when it has none, e.g. a bare suffix)."""
    labels, k = _split(name)
    return b".".join(labels[len(labels) - k - 1:]) if k >= 0 else b""


def tld(name: bytes) -> bytes:
    """The public suffix of `name`'s registrable domain (b"" when it has none)."""
    labels, k = _split(name)
    return b".".join(labels[len(labels) - k:]) if k >= 0 else b""
