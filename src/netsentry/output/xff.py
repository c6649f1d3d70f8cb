"""X-Forwarded-For in alert records (Suricata's eve-log alert `xff` option).

Behind a reverse proxy every HTTP request reaches the sensor from the proxy's
address; the client's is in the request's X-Forwarded-For header. For an
alert on an HTTP flow, Suricata (output-json-alert.c with app-layer-htp-xff.c)
takes the address from the alert's transaction, or from the flow's first
transaction that has one when the alert is not about a transaction, and
either adds it as `alert.xff` (`mode: extra-data`) or writes it over the
record's client-side address (`mode: overwrite`: `src_ip` of a packet to the
server, `dest_ip` of one to the client). `deployment: reverse` reads the
chain's last entry, `forward` its first; `header` names the header.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from netsentry.applayer.http import xff_address
from netsentry.config import ConfigError
from netsentry.event import Event

_MODES = ("extra-data", "overwrite")
_DEPLOYMENTS = ("reverse", "forward")


class Xff:
    """The configured XFF handling of one eve-log."""

    __slots__ = ("overwrite", "reverse", "header")

    def __init__(self, overwrite: bool, reverse: bool, header: bytes) -> None:
        self.overwrite = overwrite
        self.reverse = reverse
        self.header = header

    @classmethod
    def from_config(cls, cfg: Any, where: str) -> Xff | None:
        """None when `cfg` (outputs.eve-log.alert.xff) is absent or not enabled."""
        if cfg is None:
            return None
        if not isinstance(cfg, Mapping):
            raise ConfigError(f"expected a mapping, got {cfg!r}", where)
        enabled = cfg.get("enabled", False)
        if not isinstance(enabled, bool):
            raise ConfigError(f"expected true or false, got {enabled!r}", f"{where}.enabled")
        mode = cfg.get("mode", "extra-data")
        if mode not in _MODES:
            raise ConfigError(f"expected one of {', '.join(_MODES)}, got {mode!r}", f"{where}.mode")
        deployment = cfg.get("deployment", "reverse")
        if deployment not in _DEPLOYMENTS:
            raise ConfigError(f"expected one of {', '.join(_DEPLOYMENTS)}, got {deployment!r}",
                              f"{where}.deployment")
        header = cfg.get("header", "X-Forwarded-For")
        if not isinstance(header, str) or not header.strip() or ":" in header:
            raise ConfigError(f"expected a header name, got {header!r}", f"{where}.header")
        if not enabled:
            return None
        return cls(mode == "overwrite", deployment == "reverse", header.strip().encode())

    def address(self, event: Event) -> str | None:
        flow = event.flow
        if flow is None or flow.app_proto != "http" or flow.app is None:
            return None
        txs = flow.app.txs
        tx_id = event.extra.get("tx_id") if event.extra else None
        if tx_id is not None:
            for tx in txs:
                if tx.tx_id == tx_id:
                    return xff_address(tx, self.header, self.reverse)
            return None
        for tx in txs:
            ip = xff_address(tx, self.header, self.reverse)
            if ip is not None:
                return ip
        return None

    def apply(self, rec: dict[str, Any], event: Event, alert_dict: Any) -> dict[str, Any]:
        """`rec` with the address added or written over; `alert_dict(alert)` gives the
        alert object as a dict when `alert.xff` must be added to it."""
        ip = self.address(event)
        if ip is None:
            return rec
        if self.overwrite:
            pkt = event.pkt
            rec["dest_ip" if pkt is not None and not getattr(pkt, "to_server", True) else "src_ip"] = ip
        elif event.alert is not None:
            alert = alert_dict(event.alert)
            alert["xff"] = ip
            rec["alert"] = alert
        return rec
