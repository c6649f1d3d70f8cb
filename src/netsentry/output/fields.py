"""Field formatting shared by the outputs, in Suricata's exact text forms.

EVE consumers (SIEM parsers, dashboards, suricata-verify style checks) match
on these strings, so they follow what Suricata prints, not what Python
prints by default:

- timestamps: ``2017-04-07T22:24:37.251547+0000`` (UTC, microseconds,
  ``+0000`` offset without a colon);
- IPv6 addresses: fully expanded, ``fe80:0000:0000:0000:020c:29ff:fef3:cf38``
  (Suricata's PrintInet zero-pads every group);
- ``proto``: the IANA keyword Suricata's table uses (``TCP``, ``IPv6-ICMP``)
  or the number as text.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

# IANA protocol keywords as Suricata spells them (util-proto-name), for the
# numbers that appear on real networks; any other number is written as text.
PROTO_NAMES: dict[int, str] = {
    0: "HOPOPT", 1: "ICMP", 2: "IGMP", 4: "IP-in-IP", 6: "TCP", 8: "EGP", 9: "IGP",
    17: "UDP", 33: "DCCP", 41: "IPv6", 43: "IPv6-Route", 44: "IPv6-Frag", 46: "RSVP",
    47: "GRE", 50: "ESP", 51: "AH", 58: "IPv6-ICMP", 59: "IPv6-NoNxt", 60: "IPv6-Opts",
    88: "EIGRP", 89: "OSPF", 94: "OS", 97: "ETHERIP", 103: "PIM", 108: "IPComp",
    112: "VRRP", 115: "L2TP", 132: "SCTP", 135: "Mobility", 136: "UDPLite", 137: "MPLS-in-IP",
}
PROTO_TEXT: tuple[str, ...] = tuple(PROTO_NAMES.get(n, str(n)) for n in range(256))

# Protocols whose records carry src_port/dest_port (Suricata: TCP, UDP, SCTP).
PORT_PROTOS = frozenset((6, 17, 132))
ICMP_PROTOS = frozenset((1, 58))

_ADDR_CACHE: dict[bytes, str] = {}
_ADDR_CACHE_MAX = 1 << 16


def format_ip(packed: bytes) -> str:
    """Suricata's text for a packed address; cached since a flow's addresses repeat."""
    text = _ADDR_CACHE.get(packed)
    if text is not None:
        return text
    if len(packed) == 4:
        text = socket.inet_ntoa(packed)
    elif len(packed) == 16:
        h = packed.hex()
        text = ":".join((h[0:4], h[4:8], h[8:12], h[12:16], h[16:20], h[20:24], h[24:28], h[28:32]))
    else:
        return ""
    if len(_ADDR_CACHE) >= _ADDR_CACHE_MAX:
        _ADDR_CACHE.clear()
    _ADDR_CACHE[packed] = text
    return text


TIMESTAMP_CACHE_SECONDS = 8192


def make_timestamp_formatter() -> Callable[[float], str]:
    """A function formatting epoch seconds as EVE timestamps, caching the date part per second.

    A record carries up to three timestamps (event, flow start, flow end) of
    different seconds, so the cache holds recent seconds, not just the last
    one (gmtime+strftime cost about 2.2 us a call). A closure with the cache
    and helpers in default arguments, and one divmod on integer microseconds,
    cost 0.86 us a call against 1.65 us for the method-based first version
    (300k calls, process time).

    The cached per-second prefix ends in ``%06d+0000``, so the microseconds
    are one ``%``: 0.38 us a call against 0.45 us for the f-string with
    ``:06d`` (200k distinct times, best of 5, process time). Tried and not
    kept: 3-digit lookup tables for the microseconds (0.37 us, no better than
    ``%``), and a memo of whole strings per float (alerts of one packet share
    its time): in bench/bench_eve.py it cost flow records +2% for -1% on
    alerts, within the noise.
    """
    cache: dict[int, str] = {}

    def format_timestamp(ts: float, cache: dict[int, str] = cache) -> str:
        # integer microseconds, rounded; divmod floors, so times before 1970 work too
        sec, usec = divmod(round(ts * 1_000_000.0), 1_000_000)
        prefix = cache.get(sec)
        if prefix is None:
            if len(cache) >= TIMESTAMP_CACHE_SECONDS:
                cache.clear()
            prefix = cache[sec] = _second_prefix(sec)
        return prefix % usec

    return format_timestamp


# EVE timestamps have 4-digit years. The capture readers keep packet times in
# this range (see capture/pcapng.py TS_MIN/TS_MAX); a time from elsewhere
# beyond it is written as the nearest end rather than with a 5-digit year or
# an OverflowError that loses the whole run's output.
_FIRST_SECOND = -30610224000         # 1000-01-01T00:00:00
_LAST_SECOND = 253402300799          # 9999-12-31T23:59:59


def _second_prefix(sec: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.%06d+0000`` for one second (cache misses only)."""
    if sec > _LAST_SECOND:
        return "9999-12-31T23:59:59.999999%.0s+0000"       # %.0s: takes the microseconds, prints nothing
    if sec < _FIRST_SECOND:
        return "1000-01-01T00:00:00.000000%.0s+0000"
    t = time.gmtime(sec)
    return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.%06d+0000")


def make_record_time_formatter(fmt: Callable[[float], str]) -> Callable[[float], str]:
    """`fmt` with the last time and its text remembered, for a record's own ``timestamp``.

    Records come in time order and often several at one time: the alerts of
    one packet (39% of the alerts on the 1M bench capture have the previous
    record's timestamp) and the flow records of one eviction or timeout sweep
    (99% of them). One float compare then replaces a format. Only the record
    time goes through it: flow start/end times interleaved with it would
    replace the remembered one every call. (A memo dict over every timestamp
    cost flow records +2% in bench/bench_eve.py.) The pair is one tuple, so a
    reader never sees one time with another's text.
    """
    last: list[tuple[float, str]] = [(float("nan"), "")]

    def format_record_time(ts: float, last: list[tuple[float, str]] = last,
                           fmt: Callable[[float], str] = fmt) -> str:
        prev = last[0]
        if prev[0] == ts:
            return prev[1]
        text = fmt(ts)
        last[0] = (ts, text)
        return text

    return format_record_time


format_timestamp = make_timestamp_formatter()
format_record_time = make_record_time_formatter(format_timestamp)
