"""CEF (ArcSight Common Event Format, read by ArcSight and QRadar): an EVE record as one CEF line.

``CEF:0|netsentry|netsentry|VERSION|SIGNATURE ID|NAME|SEVERITY|EXTENSION``

The mapping (docs/siem.md has the table): the header's signature id is
``gid:sid:rev`` for alerts and drops (the event type otherwise), its name the
signature (or the event type), its severity 0-10 from Suricata's 1-4 scale
(1 -> 10, 2 -> 7, 3 -> 5, 4 -> 3; records that are no alert -> 1). The
extension carries ``rt`` (the event time, ms since the epoch), ``src``,
``spt``, ``dst``, ``dpt``, ``proto``, ``act`` (allowed/blocked), ``cat``
(the classification), ``cn1`` (flow id), ``cs1`` (the event type) and, for
alerts about a critical asset, ``cs2`` (its name and criticality).

Escaping follows the CEF specification: in the header ``\\`` and ``|``; in
extension values ``\\``, ``=`` and line breaks.
"""

from __future__ import annotations

import calendar
import time
from typing import Any

from netsentry import __version__

SEVERITY = {1: 10, 2: 7, 3: 5, 4: 3}


def _header(text: Any) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|")


def _value(text: Any) -> str:
    return (str(text).replace("\\", "\\\\").replace("=", "\\=")
            .replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\r"))


def _epoch_ms(timestamp: str) -> int | None:
    """EVE's ``2024-01-02T03:04:05.123456+0000`` as ms since the epoch."""
    try:
        base, frac = timestamp[:19], timestamp[20:26]
        secs = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
        offset = timestamp[26:]
        if len(offset) == 5 and offset[0] in "+-":
            sign = 1 if offset[0] == "+" else -1
            secs -= sign * (int(offset[1:3]) * 3600 + int(offset[3:5]) * 60)
        return secs * 1000 + int(frac or 0) // 1000
    except (ValueError, IndexError):
        return None


# extension key -> the EVE field it comes from, in the order written
FIELDS = (("src", "src_ip"), ("spt", "src_port"), ("dst", "dest_ip"), ("dpt", "dest_port"),
          ("proto", "proto"))


def cef_line(rec: dict[str, Any]) -> str:
    """The CEF line for EVE record `rec` (as `eve.render` gives it)."""
    etype = rec.get("event_type", "")
    alert = rec.get("alert")
    if alert:
        sig_id = f"{alert.get('gid', 1)}:{alert.get('signature_id', 0)}:{alert.get('rev', 0)}"
        name = alert.get("signature", etype)
        severity = SEVERITY.get(alert.get("severity", 3), 3)
    else:
        sig_id, name, severity = etype, etype, 1
    ext = []
    ms = _epoch_ms(rec.get("timestamp", ""))
    if ms is not None:
        ext.append(f"rt={ms}")
    for key, field in FIELDS:
        if field in rec:
            ext.append(f"{key}={_value(rec[field])}")
    if alert:
        ext.append(f"act={_value(alert.get('action', 'allowed'))}")
        if alert.get("category"):
            ext.append(f"cat={_value(alert['category'])}")
    if "flow_id" in rec:
        ext.append(f"cn1={rec['flow_id']} cn1Label=flowId")
    ext.append(f"cs1={_value(etype)} cs1Label=eventType")
    assets = (rec.get("netsentry") or {}).get("assets")
    if assets:
        text = ",".join(f"{a['name']}({a['criticality']})" for a in assets)
        ext.append(f"cs2={_value(text)} cs2Label=asset")
    return (f"CEF:0|netsentry|netsentry|{_header(__version__)}|{_header(sig_id)}|{_header(name)}|"
            f"{severity}|{' '.join(ext)}")
