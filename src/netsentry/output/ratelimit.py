"""The global alert rate limit (``alert-rate-limit``): token buckets per signature and per source.

Rule-level ``threshold``/``detection_filter`` say how often one rule may
alert; this is the site's last guard on alert volume, applied once in the
sensor before any output, so eve.json, syslog and Redis see the same stream.
A flood of one alert must not bury the rest:

- the signature's bucket (gid, sid) is asked first; an alert it refuses does
  not take a token from its source's bucket, so a source flooding one rule
  keeps its budget for its other alerts;
- the source's bucket (the alert's source address) then limits how many
  different alerts one host may cause;
- alerts of IPS drops (``action: blocked``) and ``drop`` records are never
  limited, and the limit never touches a verdict: it only decides what is
  written.

Buckets refill in event time (packet time in replay, so a replay is
reproducible), ``rate`` tokens per second up to ``burst``. The source table
is bounded (``max-sources``; the oldest entry goes first). Every alert held
back is counted (``alert_rate_limit.by_signature`` / ``.by_source`` in
``stats.netsentry``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from netsentry.config import ConfigError

SECTION = "alert-rate-limit"


class Buckets:
    """Token buckets keyed by anything hashable; at most `limit` keys remembered."""

    __slots__ = ("rate", "burst", "limit", "table")

    def __init__(self, rate: float, burst: float, limit: int) -> None:
        self.rate = rate
        self.burst = burst
        self.limit = limit
        self.table: dict[Any, list[float]] = {}       # key -> [tokens, time of last refill]

    def has_token(self, key: Any, now: float) -> list[float] | None:
        """The bucket of `key` if it holds a token now (not yet taken), else None."""
        entry = self.table.get(key)
        if entry is None:
            if len(self.table) >= self.limit:
                del self.table[next(iter(self.table))]     # the oldest key
            entry = self.table[key] = [self.burst, now]
        elif now > entry[1]:
            entry[0] = min(self.burst, entry[0] + (now - entry[1]) * self.rate)
            entry[1] = now
        return entry if entry[0] >= 1.0 else None


def _positive(cfg: Mapping[str, Any], key: str, path: str) -> float:
    value = cfg.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"expected a number > 0, got {value!r}", f"{path}.{key}")
    return float(value)


class AlertRateLimit:
    def __init__(self, cfg: Mapping[str, Any]) -> None:
        sig = cfg.get("per-signature") or {}
        src = cfg.get("per-source") or {}
        max_sources = cfg.get("max-sources", 65536)
        if isinstance(max_sources, bool) or not isinstance(max_sources, int) or max_sources < 1:
            raise ConfigError(f"expected an integer >= 1, got {max_sources!r}", f"{SECTION}.max-sources")
        self.signatures = Buckets(_positive(sig, "rate", f"{SECTION}.per-signature"),
                                  _positive(sig, "burst", f"{SECTION}.per-signature"), 1 << 20)
        self.sources = Buckets(_positive(src, "rate", f"{SECTION}.per-source"),
                               _positive(src, "burst", f"{SECTION}.per-source"), max_sources)
        self.by_signature = 0
        self.by_source = 0

    def admit(self, event: Any) -> bool:
        """True when the alert `event` may be written (and then takes its tokens)."""
        alert = event.alert
        if alert.action == "blocked":
            return True                         # an IPS drop is always written
        now = event.ts
        sig = self.signatures.has_token((alert.gid, alert.signature_id), now)
        if sig is None:
            self.by_signature += 1
            return False
        pkt = event.pkt
        if pkt is not None and pkt.ip_version:
            source = pkt.src
        elif event.flow is not None:
            source = event.flow.client
        else:
            source = None
        if source is not None:
            src = self.sources.has_token(source, now)
            if src is None:
                self.by_source += 1
                return False
            src[0] -= 1.0
        sig[0] -= 1.0
        return True

    def stats(self) -> dict[str, int]:
        return {"alert_rate_limit.by_signature": self.by_signature,
                "alert_rate_limit.by_source": self.by_source}


def from_config(config: Mapping[str, Any]) -> AlertRateLimit | None:
    section = config.get(SECTION) or {}
    if not section.get("enabled", False):
        return None
    return AlertRateLimit(section)
