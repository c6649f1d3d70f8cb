"""The `stream` and `defrag` configuration sections, checked once at start-up.

Sizes are written as Suricata writes them (`1mb`, `64 KiB`, `32768`); a bad
value stops start-up with its dotted key, never a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from netsentry.config import ConfigError, get
from netsentry.stream.policy import FRAG_POLICIES, TCP_POLICIES

_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}


def parse_size(value: Any, key: str) -> int:
    """`1mb` / `64 KiB` / `32768` (an int or text) -> bytes; ConfigError naming `key` otherwise."""
    if isinstance(value, bool):
        raise ConfigError(f"expected a size such as 1mb, got {value!r}", key=key)
    if isinstance(value, int):
        if value < 0:
            raise ConfigError(f"expected a size such as 1mb, got {value!r}", key=key)
        return value
    m = _SIZE.match(str(value))
    if m is None:
        raise ConfigError(f"expected a size such as 1mb, 64kb or 32768, got {value!r}", key=key)
    unit = (m.group(2) or "").lower()[:1]
    return int(m.group(1)) * _UNITS[unit]


def _policy(config: Mapping[str, Any], key: str, table: Mapping[str, Any], default: str) -> str:
    name = str(get(config, key, default)).lower()
    if name not in table:
        raise ConfigError(f"unknown policy {name!r} ({', '.join(sorted(table))})", key=key)
    return name


def _seconds(config: Mapping[str, Any], key: str, default: int) -> float:
    value = get(config, key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"expected a positive number of seconds, got {value!r}", key=key)
    return float(value)


def _count(config: Mapping[str, Any], key: str, default: int) -> int:
    value = get(config, key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"expected a positive whole number, got {value!r}", key=key)
    return value


def _flag(config: Mapping[str, Any], key: str, default: bool) -> bool:
    value = get(config, key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"expected true or false, got {value!r}", key=key)
    return value


def _choice(config: Mapping[str, Any], key: str, names: tuple[str, ...], default: str) -> str:
    """One of `names` (case as written in Suricata's documentation); ConfigError naming `key`."""
    value = get(config, key, default)
    if value not in names:
        raise ConfigError(f"expected one of {', '.join(names)}, got {value!r}", key=key)
    return str(value)


def _chunk(config: Mapping[str, Any], key: str) -> int:
    """A raw reassembly chunk size: a size string, 1..65535 bytes (Suricata parses it as a u16)."""
    n = parse_size(get(config, key, 2560), key)
    if not 0 < n <= 0xFFFF:
        raise ConfigError(f"expected a size from 1 to 65535 bytes, got {n}", key=key)
    return n


@dataclass(frozen=True)
class StreamSettings:
    """`stream.*`: reassembly depth (0: unlimited), global memcap, overlap policy."""

    enabled: bool
    midstream: bool
    inline: bool
    depth: int
    memcap: int
    policy: str
    # stream.async-oneside: a session whose other direction the sensor never sees (asymmetric
    # routing) is taken as established on the lone side's ACK after its SYN (or SYN/ACK)
    async_oneside: bool = False
    # stream.reassembly.urgent.policy: inline, oob, gap, drop (stream/tcp.py `_urgent`), and
    # what oob does past 65535 out-of-band bytes in a direction (inline, gap, drop)
    urgent_policy: str = "inline"
    urgent_oob_limit_policy: str = "inline"
    # stream.reassembly.toserver-chunk-size / toclient-chunk-size (Suricata's names and default):
    # in IDS mode, how many acknowledged bytes of a direction wait before its raw stream is
    # inspected when nothing else (an app-layer message, the session closing) asks for it
    toserver_chunk_size: int = 2560
    toclient_chunk_size: int = 2560
    # stream.reassembly.raw-inspection: when IDS mode hands a direction's bytes to the stream
    # rules: "acked" (Suricata's raw reassembly: once the receiver acknowledged them; default)
    # or "arrival" (on the packet that brings them, as inline mode always does)
    raw_inspection: str = "acked"
    # stream.drop-invalid (Suricata's default: yes): inline, a packet the TCP state machine
    # refuses (stream/tcp.py `_synrecv_ack`) is dropped, drop reason "stream error"
    drop_invalid: bool = True

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> StreamSettings:
        return cls(
            enabled=_flag(config, "stream.reassembly.enabled", True),
            midstream=bool(get(config, "stream.midstream", False)),
            inline=bool(get(config, "stream.inline", False)),
            depth=parse_size(get(config, "stream.reassembly.depth", "1mb"), "stream.reassembly.depth"),
            memcap=parse_size(get(config, "stream.reassembly.memcap", "256mb"), "stream.reassembly.memcap"),
            policy=_policy(config, "stream.reassembly.policy", TCP_POLICIES, "bsd"),
            async_oneside=_flag(config, "stream.async-oneside", False),
            urgent_policy=_choice(config, "stream.reassembly.urgent.policy",
                                  ("inline", "oob", "gap", "drop"), "inline"),
            urgent_oob_limit_policy=_choice(config, "stream.reassembly.urgent.oob-limit-policy",
                                            ("inline", "gap", "drop"), "inline"),
            toserver_chunk_size=_chunk(config, "stream.reassembly.toserver-chunk-size"),
            toclient_chunk_size=_chunk(config, "stream.reassembly.toclient-chunk-size"),
            raw_inspection=_choice(config, "stream.reassembly.raw-inspection", ("acked", "arrival"), "acked"),
            drop_invalid=_flag(config, "stream.drop-invalid", True),
        )


@dataclass(frozen=True)
class DefragSettings:
    """`defrag.*`: as Suricata's section (memcap, trackers, max-frags, timeout) plus the policy."""

    enabled: bool
    memcap: int
    trackers: int
    max_frags: int
    timeout: float
    policy: str

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DefragSettings:
        return cls(
            enabled=_flag(config, "defrag.enabled", True),
            memcap=parse_size(get(config, "defrag.memcap", "32mb"), "defrag.memcap"),
            trackers=_count(config, "defrag.trackers", 65535),
            max_frags=_count(config, "defrag.max-frags", 65535),
            timeout=_seconds(config, "defrag.timeout", 60),
            policy=_policy(config, "defrag.policy", FRAG_POLICIES, "bsd"),
        )
