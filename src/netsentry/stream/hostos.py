"""`host-os-policy`: which operating system (so which overlap policy) a host has.

Why: overlapping fragments and segments are resolved the way the *receiving*
host resolves them, and hosts differ (Suricata's util-host-os-info.c,
StreamTcpSetOSPolicy, DefragGetOsPolicy). The section maps OS names to
address lists, as Suricata's; the most specific network containing the
destination wins. Suricata's shipped configuration makes every IPv4 host
`windows`; a host in no list gets the stage's default policy
(`stream.reassembly.policy`, `defrag.policy`, both bsd as Suricata's
built-in defaults).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from netsentry.config import ConfigError, get

OS_NAMES = ("bsd", "bsd-right", "old-linux", "linux", "old-solaris", "solaris", "hpux10", "hpux11",
            "irix", "macos", "windows", "vista", "windows2k3")

# the TCP policy of each OS (StreamTcpSetOSPolicy folds two of them)
TCP_OF_OS = {name: name for name in OS_NAMES}
TCP_OF_OS.update({"bsd-right": "bsd", "old-solaris": "solaris"})

# the fragment policy of each OS (DefragGetOsPolicy)
FRAG_OF_OS = {
    "bsd": "bsd", "hpux10": "bsd", "irix": "bsd",
    "bsd-right": "bsd-right",
    "old-linux": "linux", "linux": "linux",
    "old-solaris": "first", "hpux11": "first", "macos": "first",
    "solaris": "solaris",
    "windows": "windows", "vista": "windows", "windows2k3": "windows",
}

_CACHE_MAX = 65536


class HostOS:
    """Destination address (packed) -> OS name or None."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        section = get(config, "host-os-policy", {}) or {}
        if not isinstance(section, Mapping):
            raise ConfigError(f"expected a mapping of OS name to address list, got {section!r}",
                              key="host-os-policy")
        nets: list[tuple[int, int, Any, str]] = []
        for name, addrs in section.items():
            key = f"host-os-policy.{name}"
            if name not in OS_NAMES:
                raise ConfigError(f"unknown OS {name!r} ({', '.join(OS_NAMES)})", key=key)
            if addrs is None:
                continue
            if isinstance(addrs, str):
                addrs = [a.strip() for a in addrs.strip("[]").split(",") if a.strip()]
            if not isinstance(addrs, list):
                raise ConfigError(f"expected a list of addresses, got {addrs!r}", key=key)
            for i, text in enumerate(addrs):
                try:
                    net = ipaddress.ip_network(str(text).strip(), strict=False)
                except ValueError:
                    raise ConfigError(f"item {i + 1}: not an address or network: {text!r}", key=key) from None
                nets.append((net.version, net.prefixlen, net, name))
        # most specific first, as Suricata's radix lookup
        nets.sort(key=lambda t: -t[1])
        self._nets = nets
        self._cache: dict[bytes, str | None] = {}

    def __bool__(self) -> bool:
        return bool(self._nets)

    def lookup(self, addr: bytes) -> str | None:
        cache = self._cache
        if addr in cache:
            return cache[addr]
        version = 4 if len(addr) == 4 else 6
        ip = ipaddress.ip_address(addr)
        found = None
        for v, _plen, net, name in self._nets:
            if v == version and ip in net:
                found = name
                break
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        cache[addr] = found
        return found
