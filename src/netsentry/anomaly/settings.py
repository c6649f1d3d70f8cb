"""The `anomaly` section: bundled defaults merged with what the caller passed, checked once.

The config loader already enforces key names and value types against the
bundled YAML; this adds the range checks only the engine knows (a window
of 0 seconds, a negative rate) and parses the address lists, with the
dotted key path in every error. Tests and tools may pass a partial
``{"anomaly": {...}}``: missing keys take the bundled defaults.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from netsentry.assets import CRITICALITIES, NetworkMap, parse_network
from netsentry.config import ConfigError, load_defaults

_DEFAULTS: dict[str, Any] | None = None


def _defaults() -> dict[str, Any]:
    global _DEFAULTS
    if _DEFAULTS is None:
        _DEFAULTS = load_defaults()["anomaly"]
    return copy.deepcopy(_DEFAULTS)


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> None:
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = copy.deepcopy(v)


class Section:
    """Read access to one mapping with range checks that name the key."""

    def __init__(self, data: Mapping[str, Any], path: str) -> None:
        self.data = data
        self.path = path

    def sub(self, name: str) -> Section:
        return Section(self.data[name], f"{self.path}.{name}")

    def _num(self, name: str) -> float:
        v = self.data[name]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"expected a number, got {v!r}", f"{self.path}.{name}")
        return v

    def positive(self, name: str) -> float:
        v = self._num(name)
        if v <= 0:
            raise ConfigError(f"must be greater than 0, got {v}", f"{self.path}.{name}")
        return v

    def non_negative(self, name: str) -> float:
        v = self._num(name)
        if v < 0:
            raise ConfigError(f"must not be negative, got {v}", f"{self.path}.{name}")
        return v

    def count(self, name: str) -> int:
        v = self.positive(name)
        if int(v) != v:
            raise ConfigError(f"expected a whole number, got {v}", f"{self.path}.{name}")
        return int(v)

    def flag(self, name: str) -> bool:
        return bool(self.data.get(name, True))

    def text(self, name: str) -> str:
        v = self.data[name]
        return "" if v is None else str(v)

    def networks(self, name: str) -> NetworkMap:
        value = self.data.get(name) or []
        key = f"{self.path}.{name}"
        if not isinstance(value, list):
            raise ConfigError(f"expected a list of addresses or CIDRs, got {value!r}", key)
        return NetworkMap((parse_network(item, f"{key}[{i}]"), True) for i, item in enumerate(value))


def load(config: Mapping[str, Any]) -> Section:
    """The effective anomaly section (defaults + `config["anomaly"]`), with common checks done."""
    merged = _defaults()
    _merge(merged, config.get("anomaly") or {})
    sec = Section(merged, "anomaly")
    factors = sec.sub("criticality-factors")
    for level in CRITICALITIES:
        f = factors.positive(level)
        if f > 1.0:
            raise ConfigError(f"a factor tightens thresholds: expected 0 < factor <= 1, got {f}",
                              f"anomaly.criticality-factors.{level}")
    return sec
