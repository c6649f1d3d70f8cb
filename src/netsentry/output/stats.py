"""The `stats` record: stage counters nested the way Suricata's EVE stats nests them.

Each stage reports flat counters under Suricata's dotted names
(``decoder.pkts``, ``decoder.event.ipv4.trunc_pkt``, ``flow.tcp``,
``detect.alert``). EVE writes them as nested objects
(``{"decoder": {"pkts": 1, "event": {"ipv4": {"trunc_pkt": 1}}}}``) so that
dashboards built for Suricata's stats find the same paths.

Only counters Suricata itself has (`SURICATA_COUNTERS`, and the decoder
events under ``decoder.event.``) sit at their Suricata path; every other
counter (netsentry's own, such as ``anomaly.*``, ``flow.timeout`` or
``detect.rules_loaded``) goes under ``stats.netsentry`` with its name
unchanged below it (``stats.netsentry.anomaly.alerts``), because Suricata's
EVE schema closes every stats object: a dashboard that validates or maps
Suricata's stats must not meet a field it does not know.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from netsentry.event import Event


# Suricata's counter names (its stats.* paths, e.g. in etc/schema.json) that
# netsentry has a counterpart for. Adding a counter that Suricata has: one name here.
SURICATA_COUNTERS = frozenset((
    "capture.kernel_packets", "capture.kernel_drops", "capture.kernel_ifdrops", "capture.errors",
    "decoder.pkts", "decoder.bytes", "decoder.invalid", "decoder.ipv4", "decoder.ipv6",
    "decoder.ethernet", "decoder.arp", "decoder.unknown_ethertype", "decoder.chdlc", "decoder.raw",
    "decoder.null", "decoder.sll", "decoder.sll2", "decoder.tcp", "decoder.udp", "decoder.sctp",
    "decoder.esp", "decoder.icmpv4", "decoder.icmpv6", "decoder.igmp", "decoder.ppp", "decoder.pppoe",
    "decoder.geneve", "decoder.gre", "decoder.vlan", "decoder.vlan_qinq", "decoder.vlan_qinqinq",
    "decoder.vxlan", "decoder.vntag", "decoder.ieee8021ah", "decoder.teredo", "decoder.ipv4_in_ipv4",
    "decoder.ipv4_in_ipv6", "decoder.ipv6_in_ipv4", "decoder.ipv6_in_ipv6", "decoder.mpls",
    "decoder.erspan", "decoder.nsh", "decoder.etag", "decoder.avg_pkt_size", "decoder.max_pkt_size",
    "decoder.too_many_layers",
    "flow.total", "flow.active", "flow.tcp", "flow.udp", "flow.icmpv4", "flow.icmpv6",
    "flow.tcp_reuse", "flow.memcap", "flow.memuse", "flow.spare",
    "flow.emerg_mode_entered", "flow.emerg_mode_over",
    "detect.alert", "detect.alert_queue_overflow", "detect.alerts_suppressed",
    "detect.thresholds.bitmap_alloc_fail", "detect.thresholds.bitmap_memuse",   # Suricata 9: unique_on
    "ips.accepted", "ips.blocked", "ips.rejected", "ips.replaced",
    # the stream stage's TCP counters, under Suricata's stats.tcp names
    "tcp.sessions", "tcp.active_sessions", "tcp.ssn_memcap_drop", "tcp.ssn_from_cache", "tcp.ssn_from_pool",
    "tcp.pseudo", "tcp.invalid_checksum", "tcp.midstream_pickups", "tcp.pkt_on_wrong_thread",
    "tcp.ack_unseen_data", "tcp.segment_memcap_drop", "tcp.segment_from_cache", "tcp.segment_from_pool",
    "tcp.stream_depth_reached", "tcp.reassembly_gap", "tcp.overlap", "tcp.overlap_diff_data",
    "tcp.insert_data_normal_fail", "tcp.insert_data_overlap_fail", "tcp.urgent_oob_data", "tcp.syn",
    "tcp.synack", "tcp.rst", "tcp.urg", "tcp.memuse", "tcp.reassembly_memuse", "tcp.no_flow",
    "defrag.max_frags_reached", "defrag.max_trackers_reached", "defrag.memuse",
    "defrag.tracker_hard_reuse", "defrag.tracker_soft_reuse",
))
# (``tcp.*`` is not a prefix here; the exception policies' counters are Suricata 8's
# exception_policy.<target>.<policy>, exception_policy.py)
SURICATA_PREFIXES = ("decoder.event.", "ips.drop_reason.", "flow.end.", "flow.mgr.", "flow.wrk.", "exception_policy.",
                     "app_layer.", "defrag.ipv4.", "defrag.ipv6.", "defrag.mgr.", "defrag.wrk.", "stream.")
OURS = "netsentry"
_OURS_PREFIX = OURS + "."


def is_suricata_counter(name: str) -> bool:
    """True when Suricata writes a counter of this name (at the same stats path)."""
    return name in SURICATA_COUNTERS or name.startswith(SURICATA_PREFIXES)


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
    """The `stats` event: ``{"stats": {"uptime": N, <Suricata's counters nested>,
    "netsentry": {<our own counters nested>}}}``.

    `ts` is the wall-clock time the record is written, in a replay too (every
    caller passes ``time.time()``): Suricata's EVE stats logger stamps its record
    with gettimeofday (output-json-stats.c, JsonStatsLogger), not packet time,
    as `uptime` is wall-clock time as well. Packet time made a replay's record
    depend on the capture, and on an epoch-stamped capture it fell back to the
    wall clock, so the same field meant two things."""
    theirs: dict[str, int | float] = {}
    ours: dict[str, int | float] = {}
    for name, value in counters.items():
        if name.startswith(_OURS_PREFIX):           # a stage that names its counter ours already
            ours[name[len(_OURS_PREFIX):]] = value
        elif is_suricata_counter(name):
            theirs[name] = value
        else:
            ours[name] = value
    body: dict[str, Any] = {"uptime": int(uptime)}
    body.update(nest_counters(theirs))
    if ours:
        body[OURS] = nest_counters(ours)
    return Event("stats", ts, extra={"stats": body})
