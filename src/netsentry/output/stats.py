"""The `stats` record: stage counters nested the way Suricata's EVE stats nests them.

Each stage reports flat counters under Suricata's dotted names
(``decoder.pkts``, ``decoder.event.ipv4.trunc_pkt``, ``flow.tcp``,
``detect.alert``). EVE writes them as nested objects
(``{"decoder": {"pkts": 1, "event": {"ipv4": {"trunc_pkt": 1}}}}``) so that
dashboards built for Suricata's stats find the same paths.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from netsentry.event import Event


def nest_counters(flat: Mapping[str, int | float]) -> dict[str, Any]:
    """``{"a.b": 1, "a.c": 2}`` -> ``{"a": {"b": 1, "c": 2}}``.

    A name that is both a counter and a prefix of others (``x`` and ``x.y``)
    cannot be both a number and an object in JSON; the counter is kept as
    ``x.total`` in that case, so no value is lost.
    """
    root: dict[str, Any] = {}
    for name in flat:
        parts = name.split(".")
        node = root
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {} if child is None else {"total": child}
                node[part] = child
            node = child
        leaf = parts[-1]
        if isinstance(node.get(leaf), dict):
            node[leaf]["total"] = flat[name]
        else:
            node[leaf] = flat[name]
    return root


def merge_counters(sources: Iterable[Mapping[str, int | float]]) -> dict[str, int | float]:
    """Combine several stages' flat counters (a later stage cannot silently reset an earlier one's)."""
    merged: dict[str, int | float] = {}
    for counters in sources:
        for name, value in counters.items():
            merged[name] = merged.get(name, 0) + value
    return merged


def stats_event(ts: float, uptime: float, counters: Mapping[str, int | float]) -> Event:
    """The `stats` event: ``{"stats": {"uptime": N, <nested counters>}}``."""
    body: dict[str, Any] = {"uptime": int(uptime)}
    body.update(nest_counters(counters))
    return Event("stats", ts, extra={"stats": body})
