"""The `Event` record: what the engines report and the outputs write.

Detection engines build events; outputs (EVE, syslog, console) render them.
Neither side knows the other's classes: an output only ever sees an `Event`,
and an engine never sees an output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netsentry.decode.packet import Packet

try:
    import cython
except ImportError:      # Cython is a build dependency only (netsentry/_cython_shim.py)
    from netsentry import _cython_shim as cython  # type: ignore[no-redef]


class HostPacket(Packet):
    """The stand-in packet of an event about hosts rather than about one packet
    (an anomaly engine alert: a port scan, a flood, a traffic spike).

    It carries only what the finding knows: the source (the actor, or the
    host whose traffic spiked), a destination when there is one
    (``dst == b""`` when there is none), and a protocol and ports only when
    the finding is about one (0 when not). EVE writes only the fields that
    apply, and no ``flow_id``: a SIEM correlates on these fields, so a
    placeholder (``0.0.0.0``, port 0, ``HOPOPT``) would join unrelated records.
    """


MATCH_PACKET, MATCH_STREAM, MATCH_TX = 0, 1, 2      # Alert.match_on


@dataclass(slots=True, frozen=True)
class Alert:
    """The `alert` object of an EVE record, in Suricata's field names.

    Frozen: the signature engine builds one Alert per rule (and action) when it
    is built and every Event of that rule shares it, so a change for one event
    (assets.py raising the severity) makes a copy (`dataclasses.replace`).

    `eve` is the EVE writer's cache of this object serialised (an
    ``orjson.Fragment``), made on the first event written: the alert object is
    the same for every event of a rule and action, so it is serialised once
    instead of once per event (bench/bench_eve.py). `eve_json` is the same
    object as bytes, for the compiled writer of whole lines
    (`output.fields.alert_line`), which splices it between the record's head
    and tail. Neither is an init argument or compared, and a `replace` copy
    starts without them.
    """

    signature_id: int
    signature: str
    gid: int = 1
    rev: int = 0
    category: str = ""
    severity: int = 3
    action: str = "allowed"     # "allowed" or "blocked" (IPS drop/reject), as Suricata writes it
    metadata: dict[str, list[str]] | None = None
    # what the rule's matches inspect (Suricata's PACKET_ALERT_FLAG_STREAM_MATCH / STATE_MATCH):
    # MATCH_PACKET, MATCH_STREAM (a packet's data added to its TCP stream: the stream) or
    # MATCH_TX (an app-layer transaction). EVE's `stream` field and stream payload follow it.
    match_on: int = 0
    # the rule's references as URLs, written with eve-log alert `metadata.rule.reference: yes`
    references: tuple[str, ...] | None = None
    eve: Any = field(default=None, init=False, repr=False, compare=False)
    eve_json: bytes | None = field(default=None, init=False, repr=False, compare=False)


# Event: a typed record (event.pxd) when compiled, a slotted class on the pure path.
# One is built per match, per flow record and per app-layer record, so building it is
# on the hot path: compiled, `Event(...)` is one tp_new from a free list and six
# pointer stores (no dataclass __init__ frame), and the compiled readers
# (output/fields.py's line writers, detect/alertqueue.py's dispatch) read its fields
# as struct members. Same fields, order, defaults, equality and repr on both paths.
# `no_gc`: an event never takes part in a reference cycle (it points at a packet, a
# flow, a shared Alert and a dict of EVE values; nothing points back at an event),
# so the collector need not track it: no tracking on each build and free, and the
# 242k alerts of bench-1m no longer count towards the young generation's collections.
@cython.final
@cython.no_gc
@cython.freelist(256)
@cython.cclass
class Event:
    """One detection or housekeeping event.

    event_type: EVE's `event_type` ("alert", "drop", "flow", "stats", ...).
    ts:         event time (packet time in replay) in epoch seconds.
    pkt/flow:   the packet and flow it concerns, if any. Outputs take
                addresses and ports from the packet (alerts) or the flow's
                client/server (flow records).
    alert:      for alerts: the `alert` object.
    extra:      more top-level EVE fields, merged as-is (``stats``, Suricata's
                decoder ``anomaly`` record). Everything that is netsentry's
                own and not Suricata's goes under one ``netsentry`` object
                (``extra["netsentry"]``: ``anomaly`` evidence, ``assets``,
                ``interrupted``, ...), so the record validates against
                Suricata's EVE schema with that one key excluded.
    """

    if not cython.compiled:
        __slots__ = ("event_type", "ts", "pkt", "flow", "alert", "extra")

    # (parameters typed Any: Cython would check a `Packet | None` annotation, and any
    # object with the fields outputs read may stand in, as in tests)
    def __init__(self, event_type: Any, ts: Any, pkt: Any = None, flow: Any = None,
                 alert: Any = None, extra: Any = None) -> None:
        self.event_type = event_type
        self.ts = ts
        self.pkt = pkt
        self.flow = flow
        self.alert = alert
        self.extra = extra

    def __repr__(self) -> str:
        return (f"Event(event_type={self.event_type!r}, ts={self.ts!r}, pkt={self.pkt!r}, "
                f"flow={self.flow!r}, alert={self.alert!r}, extra={self.extra!r})")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        o: Event = other  # type: ignore[assignment]
        return (self.event_type == o.event_type and self.ts == o.ts and self.pkt == o.pkt
                and self.flow == o.flow and self.alert == o.alert and self.extra == o.extra)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Event, (self.event_type, self.ts, self.pkt, self.flow, self.alert, self.extra))

