"""Suricata's `packet-alert-max`: how many alerts one packet may log.

Suricata queues every match of a packet (packet rules and transaction rules
alike), sorts the queue by the rules' internal order (action-order, flowbits,
flowint, priority: detect/actions.py's `evaluation_order`) and copies the
first `packet-alert-max` of them into the packet's alert list
(detect-engine-alert.c, PacketAlertFinalize). The rest are *discarded*:
counted in `detect.alert_queue_overflow` and never logged, but their actions
still apply, so a drop rule whose alert fell off the end still drops the
packet (suricata-verify alert-max-*). So a higher-priority match found later
(a transaction rule after the packet rules) replaces a lower-priority one
that was queued first.

Here the actions have already been applied by the engines when their events
arrive, so only the logging is cut: `admit` keeps the best-ranked alerts of
one packet. In IPS mode the sensor gives it a packet's packet-rule and
transaction-rule alerts together; in IDS mode apart, as Suricata's IDS mode
inspects transactions on the packet that ACKs their data, not the data packet. Configuration: top-level `packet-alert-max` in a Suricata
config, `detect.packet-alert-max` in netsentry's own (1..255; Suricata falls
back to its default 15 on 0 or anything out of range, with a warning, and so
do we).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from netsentry.config import get
from netsentry.detect.actions import DEFAULT_ACTION_ORDER, evaluation_order
from netsentry.event import Event  # noqa: F401  (compiled: alertqueue.pxd cimports it)

try:
    import cython
except ImportError:      # Cython is a build dependency only (netsentry/_cython_shim.py)
    from netsentry import _cython_shim as cython  # type: ignore[no-redef]

log = structlog.get_logger(__name__)

DEFAULT_ALERT_MAX = 15      # Suricata's PACKET_ALERT_MAX
ALERT_MAX_LIMIT = 255       # Suricata: UINT8_MAX


def alert_max_setting(config: Mapping[str, Any]) -> int:
    """`detect.packet-alert-max`, as Suricata reads `packet-alert-max`: 1..255, else the
    default (15) with a warning (a value outside the range is not an error there)."""
    value = get(config, "detect.packet-alert-max", DEFAULT_ALERT_MAX)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= ALERT_MAX_LIMIT:
        log.warning("detect.packet-alert-max: invalid value, default used",
                    value=value, default=DEFAULT_ALERT_MAX, valid=f"1..{ALERT_MAX_LIMIT}")
        return DEFAULT_ALERT_MAX
    return value


class AlertQueue:
    """The per-packet alert cap, ranked by the rule order of the engine in use.

    `admit` is called once per packet that produced signature alerts (never per
    packet): a packet with at most `limit` alerts costs one length test."""

    def __init__(self, limit: int, action_order: Sequence[str] = DEFAULT_ACTION_ORDER) -> None:
        self.limit = limit
        self.action_order = tuple(action_order)
        self.overflow = 0
        self._engine: Any = None
        self._rank: dict[tuple[int, int], int] = {}

    def _ranks(self, engine: Any) -> dict[tuple[int, int], int]:
        """Rank by (gid, sid) over all of the engine's rules, packet and transaction ones
        together, in Suricata's internal order (built once per engine: reloads swap it)."""
        if engine is not self._engine:
            sigs = list(getattr(engine, "sigs", ()) or ())
            tx = getattr(engine, "tx", None)
            if tx is not None:
                sigs += list(tx.sigs)
            order = evaluation_order(sigs, self.action_order)
            self._rank = {(s.gid, s.sid): i for i, s in reversed(list(enumerate(order)))}
            self._engine = engine
        return self._rank

    def admit(self, events: list[Any], engine: Any) -> list[Any]:
        """`events` of one packet with at most `limit` alerts: the best-ranked ones, in
        the order they came; the others are counted as overflow. Non-alert events stay."""
        if len(events) <= self.limit:
            return events
        alerts = [i for i, e in enumerate(events) if e.event_type == "alert" and e.alert is not None]
        if len(alerts) <= self.limit:
            return events
        rank = self._ranks(engine)
        last = len(rank)
        ranked = sorted(alerts, key=lambda i: (rank.get((events[i].alert.gid, events[i].alert.signature_id), last), i))
        dropped = set(ranked[self.limit:])
        self.overflow += len(dropped)
        return [e for i, e in enumerate(events) if i not in dropped]

    def stats(self) -> dict[str, int]:
        return {"detect.alert_queue_overflow": self.overflow}


@cython.final
@cython.cclass
class AlertSink:
    """The sensor's hand-on of one packet's signature alerts in the common case, in C.

    What `Sensor._on_events` does for a packet's rule alerts when no responder,
    per-source alert rate limit or asset map is configured: cap them
    (`AlertQueue.admit`, only when there are more than `limit`), count them in
    the run result (total and per rule), mark their flows alerted and hand each
    to the alert outputs, in order. `take` returns False, having done nothing,
    when any of that does not hold or an event is not an alert (the sensor's
    general path then does the same work in Python, and is the reference).

    Compiled (setup.py), it reads `Event` as a typed record (alertqueue.pxd) and
    runs without a Python frame per event; bench-1m has 242k alerts.
    """

    if not cython.compiled:
        __slots__ = ("sensor", "queue")

    def __init__(self, sensor: Any, queue: AlertQueue) -> None:
        self.sensor = sensor
        self.queue = queue

    def deliver(self, events: Any, pkt: Any, flow: Any, from_anomaly: cython.bint) -> None:
        """The capture loop's `on_events` (Sensor.run hands it this method): a packet's
        signature alerts in the common case go straight to `_take`, without the
        interpreted frame of `Sensor._on_events`, which does everything else (anomaly
        events, an IPS packet whose alerts wait for its transactions, the general path)
        and stays the reference. bench-1m: ~240k alerting packets."""
        sensor = self.sensor
        if (from_anomaly or pkt is None or type(events) is not list
                or (sensor.inline and sensor._tx_detect is not None)
                or not self._take(events, sensor.signatures)):
            sensor._on_events(events, pkt, flow, from_anomaly)

    def take(self, events: list, engine: Any) -> cython.bint:
        """Hand on `events` (one packet's signature alerts); False when the general path must."""
        return self._take(events, engine) != 0

    def _take(self, events: list, engine: Any) -> cython.int:
        """`take` (a C method when compiled: alertqueue.pxd): 1 when handed on, 0 when not."""
        sensor = self.sensor
        if sensor.responder is not None or sensor.alert_limit is not None or sensor.assets is not None:
            return 0
        ev: Event
        for e in events:
            if not isinstance(e, Event):
                return 0
            ev = e
            if ev.alert is None or ev.event_type != "alert":
                return 0
        res = sensor.result
        counts = res.alerts_by_signature
        if type(counts) is not dict:
            return 0
        by_sig: dict = counts
        if len(events) > self.queue.limit:
            events = self.queue.admit(events, engine)
        res.alerts += len(events)
        emitters = sensor._emitters.get("alert", ())
        for e in events:
            ev = e
            alert = ev.alert
            key = (alert.gid, alert.signature_id)
            entry = by_sig.get(key)
            if entry is None:
                by_sig[key] = [alert.signature, 1]
            else:
                entry[1] += 1
            flow = ev.flow
            if flow is not None:
                flow.alerted = True
            for emit in emitters:
                emit(ev)
        return 1
