"""Critical assets: which hosts matter most, and what that does to an alert.

The `assets` list of the configuration names hosts and networks with a
criticality (low, medium, high, critical). Every alert of either engine that
involves one (as source or destination) is *enriched*: it carries the
asset's name and criticality in our own EVE field ``netsentry.assets``
(Suricata has no such field, so SIEM parsers that know Suricata's schema
are not confused), and for high and critical assets its severity is raised
(Suricata's scale: 1 is the most severe), so the page that matters is the
one that rings.

The anomaly engine also asks `criticality_of` to tighten its thresholds for
such hosts (``anomaly.criticality-factors``).

The list is free-form in the schema (its default is ``[]``), so it is
validated here, with the key path in every error:
``assets[2].cidr: invalid network '10.0.0.300/8'``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from netsentry.config import ConfigError
from netsentry.decode.packet import ip_to_str

CRITICALITIES = ("low", "medium", "high", "critical")

# How many steps an alert's severity is raised (1 = most severe, never below 1).
SEVERITY_RAISE: dict[str, int] = {"low": 0, "medium": 0, "high": 1, "critical": 2}

_RANK = {name: i for i, name in enumerate(CRITICALITIES)}
_ASSET_KEYS = ("name", "cidr", "criticality")
_CACHE_MAX = 65536


@dataclass(frozen=True, slots=True)
class Asset:
    name: str
    criticality: str
    networks: tuple[str, ...]


def parse_network(text: Any, key: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """An address or CIDR (host bits must be zero, as in a route); ConfigError names `key`."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"expected an address or CIDR, got {text!r}", key)
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        reason = "host bits set" if "host bits" in str(exc) else "invalid network"
        raise ConfigError(f"{reason} {text!r}", key) from None


def parse_networks(value: Any, key: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """A list of addresses/CIDRs (or one as a string), each error naming `key[i]`."""
    if isinstance(value, str):
        return [parse_network(value, key)]
    if not isinstance(value, list) or not value:
        raise ConfigError(f"expected an address, a CIDR or a non-empty list of them, got {value!r}", key)
    return [parse_network(item, f"{key}[{i}]") for i, item in enumerate(value)]


class NetworkMap:
    """Longest-prefix match from packed addresses to values.

    One dict probe per distinct prefix length in the map (few in practice),
    plus a bounded cache of answers per address, since the same hosts recur.
    """

    def __init__(self, items: Iterable[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, Any]] = ()) -> None:
        self._by_len: dict[int, dict[tuple[int, int], Any]] = {4: {}, 16: {}}
        self._lens: dict[int, list[int]] = {4: [], 16: []}
        self._cache: dict[bytes, Any] = {}
        self.count = 0
        for net, value in items:
            self.add(net, value)

    def add(self, net: ipaddress.IPv4Network | ipaddress.IPv6Network, value: Any) -> None:
        size = 4 if net.version == 4 else 16
        plen = net.prefixlen
        self._by_len[size].setdefault((plen, int(net.network_address)), value)
        lens = self._lens[size]
        if plen not in lens:
            lens.append(plen)
            lens.sort(reverse=True)
        self._cache.clear()
        self.count += 1

    def __bool__(self) -> bool:
        return self.count > 0

    def get(self, packed: bytes) -> Any:
        """The value of the most specific network holding `packed`, or None."""
        cache = self._cache
        if packed in cache:
            return cache[packed]
        size = len(packed)
        value = None
        lens = self._lens.get(size)
        if lens:
            table = self._by_len[size]
            bits = size * 8
            n = int.from_bytes(packed, "big")
            for plen in lens:
                value = table.get((plen, n >> (bits - plen) << (bits - plen)))
                if value is not None:
                    break
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        cache[packed] = value
        return value

    def __contains__(self, packed: bytes) -> bool:
        return self.get(packed) is not None


def parse_assets(items: Any, key: str = "assets") -> list[Asset]:
    """Validate the `assets` list; ConfigError with the key path of the first problem."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise ConfigError(f"expected a list of assets, got {type(items).__name__}", key)
    assets = []
    for i, item in enumerate(items):
        where = f"{key}[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"expected a mapping with name, cidr and criticality, got {item!r}", where)
        for k in item:
            if k not in _ASSET_KEYS:
                raise ConfigError(f"unknown key (expected one of {', '.join(_ASSET_KEYS)})", f"{where}.{k}")
        for k in _ASSET_KEYS:
            if k not in item:
                raise ConfigError("missing", f"{where}.{k}")
        name = item["name"]
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"expected a non-empty name, got {name!r}", f"{where}.name")
        crit = item["criticality"]
        if crit not in CRITICALITIES:
            raise ConfigError(f"expected one of {', '.join(CRITICALITIES)}, got {crit!r}", f"{where}.criticality")
        nets = parse_networks(item["cidr"], f"{where}.cidr")
        assets.append(Asset(name.strip(), crit, tuple(str(n) for n in nets)))
    return assets


class AssetMap:
    """The configured assets, looked up by packed address; enriches alert events."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.assets = parse_assets(config.get("assets"))
        self._map = NetworkMap()
        for asset in self.assets:
            for text in asset.networks:
                self._map.add(ipaddress.ip_network(text), asset)
        self.enriched = 0

    def __bool__(self) -> bool:
        return bool(self.assets)

    def lookup(self, packed: bytes) -> Asset | None:
        return self._map.get(packed) if packed else None

    def criticality_of(self, packed: bytes) -> str | None:
        asset = self._map.get(packed) if packed else None
        return asset.criticality if asset is not None else None

    def enrich(self, event: Any) -> bool:
        """Add ``netsentry.assets`` and raise the severity of an alert involving an asset.

        Addresses come from the event's packet (alerts), else its flow's
        client/server. Returns True when the event involved an asset.
        """
        pkt, flow = event.pkt, event.flow
        if pkt is not None and pkt.ip_version:
            pairs = (("src", pkt.src), ("dest", pkt.dst))
        elif flow is not None:
            pairs = (("src", flow.client), ("dest", flow.server))
        else:
            return False
        found = []
        worst = -1
        get = self._map.get
        for role, packed in pairs:
            asset = get(packed) if packed else None
            if asset is not None:
                found.append({"role": role, "ip": ip_to_str(packed), "name": asset.name,
                              "criticality": asset.criticality})
                worst = max(worst, _RANK[asset.criticality])
        if not found:
            return False
        extra = event.extra
        if extra is None:
            extra = event.extra = {}
        ours = extra.setdefault("netsentry", {})
        ours["assets"] = found
        alert = event.alert
        if alert is not None:
            steps = SEVERITY_RAISE[CRITICALITIES[worst]]
            if steps:
                raised = max(1, alert.severity - steps)
                if raised != alert.severity:
                    ours["severity_raised_from"] = alert.severity
                    # Alerts are shared by all events of a rule (event.py): copy
                    event.alert = replace(alert, severity=raised)
        self.enriched += 1
        return True

    def stats(self) -> dict[str, int]:
        return {"assets.configured": len(self.assets), "assets.alerts_enriched": self.enriched}
