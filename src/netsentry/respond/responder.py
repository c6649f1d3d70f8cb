"""Automatic response: puts sources on the block list and acts on their packets.

The sensor calls `on_alert` for every alert (either engine) and, through the
capture loop's ``blocklist`` part, `on_blocked` for every packet whose source
is on the list. What it does with such a packet depends on the mode:

- IPS (``stream.inline``, NFQUEUE): the packet's verdict becomes ``drop``;
- IDS (AF_PACKET, replay): nothing is dropped, the same decision is logged as
  what IPS mode would have done.

Either way an EVE ``drop`` record names the reason under
``netsentry.blocklist`` (``reason``, ``ips``), once per flow direction as
Suricata's drop log does with ``drop.flows: start`` (every packet with
``all``), so a flood from a blocked host does not flood the log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from netsentry.event import Event
from netsentry.respond.blocklist import Blocklist, BlockPolicy

# drop records remembered per flow direction before the memory is reset (bounded)
MAX_LOGGED = 65536


class Responder:
    def __init__(self, sensor: Any, blocklist: Blocklist, policy: BlockPolicy) -> None:
        self.sensor = sensor
        self.blocklist = blocklist
        self.policy = policy
        self._logged: set[tuple[int, bool]] = set()
        self._log_all = sensor._log_all_drops
        policy.for_ruleset(sensor.ruleset)

    # --- the packet path (only for packets from a listed source) --------------------

    def on_blocked(self, pkt: Any, flow: Any) -> None:
        entry = self.blocklist.entries.get(pkt.src)
        if entry is None:
            return
        if entry.expires <= pkt.ts:              # expired since the last tick
            self.blocklist.expire(pkt.ts)
            return
        entry.hits += 1
        self.blocklist.counters["blocklist.dropped"] += 1
        inline = self.sensor.inline
        if inline and pkt.verdict is None:
            pkt.verdict = "drop"
        if flow is not None and not self._log_all:
            key = (flow.flow_id, bool(pkt.to_server))
            if key in self._logged:
                return
            if len(self._logged) >= MAX_LOGGED:
                self._logged.clear()
            self._logged.add(key)
        event = Event("drop", pkt.ts, pkt, flow,
                      extra={"netsentry": {"blocklist": {"reason": entry.reason, "ips": inline}}})
        for emit in self.sensor._emitters["drop"]:
            emit(event)

    # --- what puts a source on the list ------------------------------------------------

    def on_alert(self, event: Event, from_anomaly: bool) -> None:
        alert = event.alert
        if from_anomaly:
            anomaly = self.sensor.anomaly
            if not self.policy.on_anomaly or anomaly is None:
                return
            for src in anomaly.misbehaving_sources(event.ts):
                if src not in self.blocklist.entries:
                    self.blocklist.add(src, f"anomaly: {alert.signature}", now=event.ts)
            return
        reason = self.policy.rule_reason(alert)
        if reason is not None and event.pkt is not None and event.pkt.src not in self.blocklist.entries:
            self.blocklist.add(event.pkt.src, reason, now=event.ts)

    def ruleset_changed(self, ruleset: Any) -> None:
        self.policy.for_ruleset(ruleset)

    def tick(self, now: float) -> None:
        """Live mode's wake-up: entries past their TTL go, even if their source went quiet."""
        if self.blocklist.entries:
            self.blocklist.expire(now)

    def stats(self) -> Mapping[str, int]:
        """Counters for the stats record, under ``stats.netsentry.blocklist``."""
        return {f"netsentry.{k}": v for k, v in self.blocklist.stats().items()}
