"""The dynamic block list: source addresses whose packets are dropped for a time-to-live.

Sources get here three ways: the anomaly engine flags them
(``misbehaving_sources()``), they hit a rule carrying a configured metadata
key or classtype, or an admin adds them (``netsentry ctl blocklist add``).
The list is bounded (``respond.blocklist.max-entries``; when full, the entry
closest to expiry makes room), every entry expires after its TTL
(``anomaly.block-ttl`` by default), and an address in the allow list
(``anomaly.ignore-sources``, plus the host's own addresses unless
``respond.blocklist.allow-own-addresses`` is false) is never blocked: one
allow list and one TTL for the anomaly engine and the responder.

Hot path: the capture loop probes ``entries`` (a dict keyed by the packed
source address, the same bytes as ``Packet.src``) only when it is not
empty, so an empty list costs one truth test per packet.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from netsentry.assets import NetworkMap, parse_network
from netsentry.config import ConfigError, get


@dataclass
class Entry:
    expires: float          # wall-clock seconds (time.time()); inf: until removed
    reason: str             # "anomaly: port-scan", "rule 1:2019401", "manual", ...
    added: float
    hits: int = 0           # packets dropped (or, in IDS mode, that would have been)


def parse_address(text: str) -> bytes:
    """An IPv4/IPv6 address as packed bytes (the form of ``Packet.src``). ValueError with the reason."""
    try:
        return ipaddress.ip_address(text.strip()).packed
    except ValueError:
        raise ValueError(f"not an IP address: {text!r}") from None


def address_text(packed: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(packed) == 4 else socket.AF_INET6, packed)


def own_addresses() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """This host's addresses (in its current network namespace), as /32 and /128 networks.

    Read from the kernel's own tables rather than a library: /proc/net/fib_trie
    lists IPv4 addresses as "/32 host LOCAL" leaves, /proc/net/if_inet6 the IPv6 ones."""
    found: set[ipaddress.IPv4Network | ipaddress.IPv6Network] = set()
    try:
        with open("/proc/net/fib_trie", encoding="ascii") as f:
            last = ""
            for line in f:
                text = line.strip()
                if text.startswith("|--"):
                    last = text[3:].strip()
                elif text.startswith("/32 host LOCAL") and last:
                    found.add(ipaddress.ip_network(last + "/32"))
    except (OSError, ValueError):
        pass
    try:
        with open("/proc/net/if_inet6", encoding="ascii") as f:
            for line in f:
                hexaddr = line.split()[0]
                found.add(ipaddress.ip_network(str(ipaddress.IPv6Address(bytes.fromhex(hexaddr))) + "/128"))
    except (OSError, ValueError, IndexError):
        pass
    return sorted(found, key=lambda n: (n.version, int(n.network_address)))


class Blocklist:
    """Blocked sources with their reason and expiry; never an allow-listed one."""

    def __init__(self, allow: NetworkMap, ttl: float, max_entries: int) -> None:
        self.allow = allow
        self.ttl = ttl
        self.max_entries = max_entries
        self.entries: dict[bytes, Entry] = {}
        self.counters = {"blocklist.added": 0, "blocklist.expired": 0, "blocklist.removed": 0,
                         "blocklist.refused_allowed": 0, "blocklist.evicted": 0, "blocklist.dropped": 0}

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, packed: bytes) -> bool:
        return packed in self.entries

    def add(self, packed: bytes, reason: str, ttl: float | None = None, now: float | None = None) -> bool:
        """Block `packed` for `ttl` seconds (default: the configured TTL; 0: until removed).

        False (and nothing changes) for an allow-listed address. Re-adding an
        entry extends it and keeps its first reason."""
        if packed in self.allow:
            self.counters["blocklist.refused_allowed"] += 1
            return False
        now = time.time() if now is None else now
        ttl = self.ttl if ttl is None else ttl
        expires = now + ttl if ttl > 0 else float("inf")
        entry = self.entries.get(packed)
        if entry is not None:
            entry.expires = max(entry.expires, expires)
            return True
        if len(self.entries) >= self.max_entries:
            victim = min(self.entries, key=lambda a: self.entries[a].expires)
            del self.entries[victim]
            self.counters["blocklist.evicted"] += 1
        self.entries[packed] = Entry(expires, reason, now)
        self.counters["blocklist.added"] += 1
        return True

    def remove(self, packed: bytes) -> bool:
        if self.entries.pop(packed, None) is None:
            return False
        self.counters["blocklist.removed"] += 1
        return True

    def expire(self, now: float | None = None) -> list[bytes]:
        """Drop the entries whose TTL has passed; returns their addresses."""
        now = time.time() if now is None else now
        gone = [a for a, e in self.entries.items() if e.expires <= now]
        for a in gone:
            del self.entries[a]
        self.counters["blocklist.expired"] += len(gone)
        return gone

    def hit(self, packed: bytes) -> Entry | None:
        """A packet from `packed` arrived: count it against its entry (None if not blocked)."""
        entry = self.entries.get(packed)
        if entry is not None:
            entry.hits += 1
            self.counters["blocklist.dropped"] += 1
        return entry

    def listing(self, now: float | None = None) -> list[dict[str, Any]]:
        """The entries as JSON-ready dicts (ctl blocklist list), soonest expiry first."""
        now = time.time() if now is None else now
        rows = []
        for packed, e in sorted(self.entries.items(), key=lambda kv: kv[1].expires):
            rows.append({"address": address_text(packed), "reason": e.reason, "hits": e.hits,
                         "added": round(e.added, 3),
                         "expires_in": None if e.expires == float("inf") else round(max(e.expires - now, 0.0), 3)})
        return rows

    def stats(self) -> dict[str, int]:
        return {**self.counters, "blocklist.active": len(self.entries)}


@dataclass
class BlockPolicy:
    """Which events put their source on the list (``respond.blocklist`` in the config).

    The rules that block are found once per ruleset (`for_ruleset`, at load
    and on every reload), so an alert costs one dict probe, not a metadata scan."""

    on_anomaly: bool
    metadata_keys: frozenset[str]
    classtypes: frozenset[str]
    blocking_rules: dict[tuple[int, int], str]

    def for_ruleset(self, ruleset: Any) -> None:
        rules: dict[tuple[int, int], str] = {}
        if self.metadata_keys or self.classtypes:
            for sig in getattr(ruleset, "signatures", None) or []:
                if sig.classtype is not None and sig.classtype in self.classtypes:
                    rules[(sig.gid, sig.sid)] = f"rule {sig.gid}:{sig.sid} classtype {sig.classtype}"
                    continue
                for key in self.metadata_keys:
                    if key in (sig.metadata or {}):
                        rules[(sig.gid, sig.sid)] = f"rule {sig.gid}:{sig.sid} metadata {key}"
                        break
        self.blocking_rules = rules

    def rule_reason(self, alert: Any) -> str | None:
        """Why an alert's rule blocks its source (None: it does not)."""
        return self.blocking_rules.get((alert.gid, alert.signature_id))


def build_blocklist(config: Mapping[str, Any], extra_allow: Iterable[str] = ()) -> tuple[Blocklist, BlockPolicy]:
    """The block list and its policy from `config`. ConfigError names the key."""
    section = get(config, "respond.blocklist", {}) or {}
    allow = NetworkMap()
    for i, item in enumerate(get(config, "anomaly.ignore-sources", []) or []):
        allow.add(parse_network(item, f"anomaly.ignore-sources[{i}]"), True)
    for item in extra_allow:
        allow.add(ipaddress.ip_network(item), True)
    if section.get("allow-own-addresses", True):
        for net in own_addresses():
            allow.add(net, True)
    ttl = float(get(config, "anomaly.block-ttl", 300))
    if ttl <= 0:
        raise ConfigError(f"expected a positive number of seconds, got {ttl!r}", "anomaly.block-ttl")
    max_entries = int(section.get("max-entries", 10000))
    if max_entries < 1:
        raise ConfigError(f"expected at least 1, got {max_entries}", "respond.blocklist.max-entries")
    policy = BlockPolicy(bool(section.get("on-anomaly", False)), _names(section, "metadata-keys"),
                         _names(section, "classtypes"), {})
    return Blocklist(allow, ttl, max_entries), policy


def _names(section: Mapping[str, Any], key: str) -> frozenset[str]:
    value = section.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"expected a list of names, got {value!r}", f"respond.blocklist.{key}")
    return frozenset(value)
