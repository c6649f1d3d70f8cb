"""`app-layer.protocols.NAME.enabled` as Suricata reads it for the parsers of this round
(MQTT, NTP, TFTP, SNMP, krb5...): yes (the default), no (neither detected nor parsed: the
AppLayer leaves out a protocol whose settings say ``enabled: False``), or ``detection-only``
(the flow gets its app_proto, the parser reads nothing)."""

from __future__ import annotations

from typing import Any

from netsentry.config import get


def settings(config: Any, name: str, **more: Any) -> dict[str, Any]:
    """The settings dict of protocol `name`: ``enabled`` and ``parse``, plus `more`."""
    v = get(config, f"app-layer.protocols.{name}.enabled", True)
    text = str(v).strip().lower()
    enabled = not (v is False or text in ("no", "false", "off", "0"))
    parse = enabled and text != "detection-only"
    return {"enabled": enabled, "parse": parse, **more}
