"""Field formatting shared by the outputs, in Suricata's exact text forms.

EVE consumers (SIEM parsers, dashboards, suricata-verify style checks) match
on these strings, so they follow what Suricata prints, not what Python
prints by default:

- timestamps: ``2017-04-07T22:24:37.251547+0000`` (UTC, microseconds,
  ``+0000`` offset without a colon);
- IPv6 addresses: fully expanded, ``fe80:0000:0000:0000:020c:29ff:fef3:cf38``
  (Suricata's PrintInet zero-pads every group), or with
  ``outputs.eve-log.ipv6-compress: yes`` RFC 5952's ``fe80::20c:29ff:fef3:cf38``;
- ``proto``: the IANA keyword Suricata's table uses (``TCP``, ``IPv6-ICMP``)
  or the number as text.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import orjson

try:
    import cython
except ImportError:          # pure install without Cython: the annotations are no-ops
    from netsentry import _cython_shim as cython  # type: ignore[no-redef]

# compiled: typed records (fields.pxd cimports their .pxd), fields read in C
from netsentry.decode.packet import Packet  # noqa: F401
from netsentry.event import Event  # noqa: F401
from netsentry.flow.flow import Flow  # noqa: F401

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

# True when this module runs compiled: its formatters are then cheap enough (C, no
# cache) that callers need not keep their text (output/eve.py's flow texts).
COMPILED: bool = cython.compiled

# Protocols whose records carry src_port/dest_port (Suricata: TCP, UDP, SCTP).
PORT_PROTOS = frozenset((6, 17, 132))
ICMP_PROTOS = frozenset((1, 58))

# --- EVE metadata: the flow's and packet's variables (Suricata's EveAddMetadata) ----------
# Flowbits named traffic/id/NAME and traffic/label/NAME are the traffic tagging Suricata
# shows as a top-level `traffic: {id: [...], label: [...]}` instead of as flowbits.
TRAFFIC_ID = "traffic/id/"
TRAFFIC_LABEL = "traffic/label/"


def _text(value: Any) -> str:
    """A captured value as Suricata prints it (PrintStringsToBuffer-like: bytes outside
    printable ASCII become '.')."""
    if isinstance(value, str):
        return value
    return "".join(chr(c) if 32 <= c < 127 else "." for c in bytes(value))


def eve_vars(pkt: Any, flow: Any) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(`traffic`, `metadata`) of an EVE record about `pkt` / `flow`, or None for each
    that would be empty. Why: Suricata writes the flow's flowbits, flowints and
    flowvars and the packet's pktvars into every record (eve-log `metadata: yes`, the
    default), so a SIEM sees what the rules marked the flow with.

    `flow.flowbits` is an insertion-ordered dict: a bit is a str key (value None), a
    flowvar a (``"var"``, name) key with its captured value; `flow.flowints` name ->
    int; `pkt.pktvars` a list of (owner, name, value) (owner None: a pktvar; else an
    alert's context, `alert_context`) or None."""
    traffic: dict[str, Any] | None = None
    meta: dict[str, Any] = {}
    entropy: dict[str, Any] | None = None
    if flow is not None:
        bits = flow.flowbits
        if bits:
            names: list[str] = []
            flowvars: list[dict[str, str]] = []
            for key, value in bits.items():
                if key.__class__ is tuple:
                    if key[0] == "entropy":     # the `entropy` keyword's float flowvars
                        if entropy is None:
                            entropy = {}
                        entropy[key[1]] = value
                        continue
                    flowvars.append({_text(key[1]): _text(value)})
                elif key.startswith(TRAFFIC_ID):
                    if traffic is None:
                        traffic = {}
                    traffic.setdefault("id", []).append(key[len(TRAFFIC_ID):])
                elif key.startswith(TRAFFIC_LABEL):
                    if traffic is None:
                        traffic = {}
                    traffic.setdefault("label", []).append(key[len(TRAFFIC_LABEL):])
                else:
                    names.append(key)
            if names:
                meta["flowbits"] = names
        else:
            flowvars = []
        ints = flow.flowints
        if ints:
            meta["flowints"] = dict(ints)
        if flowvars:
            meta["flowvars"] = flowvars
        if entropy is not None:
            meta["entropy"] = entropy
    if pkt is not None:
        pktvars = getattr(pkt, "pktvars", None)
        if pktvars:
            listed = [{_text(k): _text(v)} for owner, k, v in pktvars if owner is None]
            if listed:
                meta["pktvars"] = listed
    return traffic, (meta or None)


def alert_context(pkt: Any, gid: int, sid: int) -> dict[str, str] | None:
    """`alert.context` of rule gid:sid's alert on `pkt`: what its pcre captured as
    alert:NAME (Suricata 8), or None."""
    pktvars = getattr(pkt, "pktvars", None)
    if not pktvars:
        return None
    # a pcre capture is text; a datajson match (rules/keywords/datasets.py) an object
    ctx = {_text(k): v if v.__class__ is dict else _text(v)
           for owner, k, v in pktvars if owner is not None and owner == (gid, sid)}
    return ctx or None


_ADDR_CACHE: dict[bytes, str] = {}
_ADDR_CACHE_MAX = 1 << 16
# `outputs.eve-log.ipv6-compress` (Suricata 8): IPv6 addresses in RFC 5952's short
# form instead of the fully expanded default. One switch for the process: the
# address texts are cached here and shared by every record (set_ipv6_compress).
_IPV6_COMPRESS = [False]


def set_ipv6_compress(on: bool) -> None:
    """Write IPv6 addresses compressed (RFC 5952) or fully expanded (Suricata's
    default) from now on. The cache holds texts of the old form, so it is emptied."""
    if bool(on) != _IPV6_COMPRESS[0]:
        _IPV6_COMPRESS[0] = bool(on)
        _ADDR_CACHE.clear()


def ipv6_compressed(packed: bytes) -> str:
    """RFC 5952 text of a 16-byte address, as Suricata's `ipv6-compress` writes it
    (Rust's Ipv6Addr display): lowercase groups without leading zeros, the longest
    run of two or more zero groups (the first of equal runs) as ``::``, and an
    IPv4-mapped address (``::ffff:a.b.c.d``) with its IPv4 part dotted."""
    if packed[:12] == b"\0" * 10 + b"\xff\xff":
        return "::ffff:" + socket.inet_ntoa(packed[12:])
    groups = [(packed[i] << 8) | packed[i + 1] for i in range(0, 16, 2)]
    best_at, best_len, at, run = -1, 0, -1, 0
    for i, g in enumerate(groups):
        if g == 0:
            if run == 0:
                at = i
            run += 1
            if run > best_len:
                best_at, best_len = at, run
        else:
            run = 0
    texts = ["%x" % g for g in groups]
    if best_len < 2:
        return ":".join(texts)
    return ":".join(texts[:best_at]) + "::" + ":".join(texts[best_at + best_len:])


def _format_ip_cached(packed: bytes) -> str:
    """Suricata's text for a packed address; cached since a flow's addresses repeat.
    (`format_ip` is this function on the pure path; compiled, IPv4 is written in C.)"""
    text = _ADDR_CACHE.get(packed)
    if text is not None:
        return text
    if len(packed) == 4:
        text = socket.inet_ntoa(packed)
    elif len(packed) == 16:
        if _IPV6_COMPRESS[0]:
            text = ipv6_compressed(packed)
        else:
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


if cython.compiled:
    # The compiled path (setup.py COMPILED_MODULES) formats in C, without caches: the
    # date from the day number by integer arithmetic (the proleptic Gregorian
    # calendar, as gmtime), every digit written into one buffer. The pure path's
    # closure above stays the reference; tests/output/test_eve.py compares the two
    # forms over edge cases and tests/test_compiled.py the whole eve.json.
    # bench/bench_eve.py: 0.04 us a timestamp against 0.4 us, 0.05 us an IPv4 address
    # against 0.07 us (cache hit) or 0.4 us (miss).

    @cython.cfunc
    @cython.inline
    @cython.cdivision(True)
    def _put_digits(buf: cython.p_char, at: cython.int, value: cython.longlong, width: cython.int) -> cython.int:
        """Write `value` (>= 0) as `width` digits at `buf[at]`; returns the next position."""
        i: cython.int
        for i in range(width - 1, -1, -1):
            buf[at + i] = 48 + value % 10
            value = value // 10
        return at + width

    @cython.cfunc
    @cython.cdivision(True)
    def _put_timestamp(p: cython.p_char, at: cython.int, ts: cython.double) -> cython.int:
        """Write `format_timestamp(ts)` at `p[at]` (31 bytes); returns the next position, or
        -1 (nothing written) for a time the C form does not cover (NaN, beyond the
        4-digit years): the caller then takes the pure closure's text."""
        x: cython.double = ts * 1000000.0
        if not (-9.0e17 < x < 9.0e17):          # NaN, or far beyond the 4-digit years
            return -1
        # Python's round(): to the nearest integer, halves to even
        t: cython.longlong = cython.cast(cython.longlong, x)     # toward zero
        if x < t:
            t -= 1                                               # floor
        diff: cython.double = x - t
        if diff > 0.5 or (diff == 0.5 and t & 1):
            t += 1
        sec: cython.longlong = t / 1000000
        usec: cython.longlong = t - sec * 1000000
        if usec < 0:
            usec += 1000000
            sec -= 1
        # _LAST_SECOND and _FIRST_SECOND in C arithmetic: against the module's Python ints
        # (and Cython keeps a literal above 2**31 one too) the compare made an int object
        # per timestamp (py-spy: a third of this function)
        million: cython.longlong = 1000000
        if sec > 253402 * million + 300799 or sec < -30610 * million - 224000:
            return -1
        days: cython.longlong = sec / 86400
        rem: cython.longlong = sec - days * 86400
        if rem < 0:
            rem += 86400
            days -= 1
        # civil date from days since 1970-01-01 (H. Hinnant's days-to-civil, C division)
        z: cython.longlong = days + 719468
        era: cython.longlong = (z if z >= 0 else z - 146096) / 146097
        doe: cython.longlong = z - era * 146097
        yoe: cython.longlong = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        doy: cython.longlong = doe - (365 * yoe + yoe / 4 - yoe / 100)
        mp: cython.longlong = (5 * doy + 2) / 153
        day: cython.longlong = doy - (153 * mp + 2) / 5 + 1
        month: cython.longlong = mp + 3 if mp < 10 else mp - 9
        year: cython.longlong = yoe + era * 400 + (1 if month <= 2 else 0)
        at = _put_digits(p, at, year, 4)
        p[at] = 45                  # -
        at = _put_digits(p, at + 1, month, 2)
        p[at] = 45
        at = _put_digits(p, at + 1, day, 2)
        p[at] = 84                  # T
        at = _put_digits(p, at + 1, rem / 3600, 2)
        p[at] = 58                  # :
        at = _put_digits(p, at + 1, (rem / 60) % 60, 2)
        p[at] = 58
        at = _put_digits(p, at + 1, rem % 60, 2)
        p[at] = 46                  # .
        at = _put_digits(p, at + 1, usec, 6)
        p[at] = 43                  # +0000
        p[at + 1] = 48
        p[at + 2] = 48
        p[at + 3] = 48
        p[at + 4] = 48
        return at + 5

    def _format_timestamp_c(ts: cython.double) -> str:
        """`format_timestamp` in C: same text as the pure closure for every time."""
        buf: cython.char[32]
        p: cython.p_char = buf
        at: cython.int = _put_timestamp(p, 0, ts)
        if at < 0:
            return _pure_format_timestamp(ts)  # the reference clamps (or raises, for NaN)
        return p[:at].decode("ascii")

    @cython.cfunc
    @cython.cdivision(True)
    def _put_ipv4(p: cython.p_char, at: cython.int, src: cython.p_char) -> cython.int:
        """Write the dotted quad of the 4 bytes at `src` at `p[at]`; returns the next position."""
        i: cython.int
        v: cython.int
        for i in range(4):
            if i:
                p[at] = 46
                at += 1
            v = cython.cast(cython.uchar, src[i])
            if v >= 100:
                p[at] = 48 + v / 100
                at += 1
            if v >= 10:
                p[at] = 48 + (v / 10) % 10
                at += 1
            p[at] = 48 + v % 10
            at += 1
        return at

    def _format_ip_c(packed: object) -> str:
        """`format_ip` with IPv4 written in C (no cache to miss); IPv6 as the pure path."""
        if type(packed) is not bytes or len(packed) != 4:
            return _format_ip_cached(packed)
        buf: cython.char[16]
        p: cython.p_char = buf
        at: cython.int = _put_ipv4(p, 0, packed)
        return p[:at].decode("ascii")

    # --- whole lines of the two commonest records ------------------------------------
    # The alert about an IP packet of a flow (not tunnelled, no VLAN) and the flow record
    # (no VLAN, action or exception policy) are 99.9% of bench-1m's 461k records. Compiled, they are
    # written as one line of JSON straight into a C buffer: the same bytes as
    # output/eve.py's dicts through orjson (tests/output/test_eve_lines.py compares
    # them over edge cases, tests/test_compiled.py whole files), without the two or
    # three dicts, their ~25 items and the serialiser's walk over them. Every text
    # value is one netsentry formats itself (times, addresses: ASCII, nothing to
    # escape) or a string serialised once by orjson itself and kept (`_json_text`).
    # Anything else (a huge integer, a time beyond the 4-digit years, a long rule
    # text) returns None and the caller takes the dict path.

    @cython.cfunc
    @cython.inline
    def _put_bytes(p: cython.p_char, at: cython.int, b: bytes) -> cython.int:
        """Copy `b` to `p[at]`; returns the next position. (memcpy: the byte loop it
        replaced was 25% of a flow record's time at the end of a replay, py-spy.)"""
        n: cython.Py_ssize_t = len(b)
        memcpy(p + at, cython.cast(cython.p_char, b), n)
        return at + cython.cast(cython.int, n)

    @cython.cfunc
    @cython.cdivision(True)
    def _put_int(p: cython.p_char, at: cython.int, value: cython.longlong) -> cython.int:
        """Write `value` in decimal (as orjson writes an int) at `p[at]`; returns the next position."""
        tmp: cython.char[24]
        n: cython.int = 0
        u: cython.ulonglong
        if value < 0:
            p[at] = 45
            at += 1
            u = cython.cast(cython.ulonglong, -(value + 1)) + 1
        else:
            u = cython.cast(cython.ulonglong, value)
        while True:
            tmp[n] = 48 + cython.cast(cython.int, u % 10)
            n += 1
            u = u / 10
            if u == 0:
                break
        while n > 0:
            n -= 1
            p[at] = tmp[n]
            at += 1
        return at

    @cython.cfunc
    def _put_addr(p: cython.p_char, at: cython.int, packed: object) -> cython.int:
        """Write `format_ip(packed)` between double quotes at `p[at]` (at most 41 bytes)."""
        p[at] = 34
        at += 1
        if type(packed) is bytes and len(packed) == 4:
            at = _put_ipv4(p, at, packed)
        else:
            text: bytes = _format_ip_cached(packed).encode("ascii")     # IPv6: 39 bytes at most
            if len(text) > 39:
                return -1
            at = _put_bytes(p, at, text)
        p[at] = 34
        return at + 1

    @cython.cfunc
    def _put_endpoints(p: cython.p_char, at: cython.int, src: object, sp: cython.int,
                       dst: object, dp: cython.int, ports: cython.bint) -> cython.int:
        """Write `"src_ip":..,"src_port":..,"dest_ip":..,"dest_port":..` (the ports only when
        the protocol has them), the order Suricata's header writes; -1 when an address does
        not fit. The caller has written the comma and the key before `src_ip`'s value."""
        at = _put_addr(p, at, src)
        if at < 0:
            return -1
        if ports:
            at = _put_bytes(p, at, b',"src_port":')
            at = _put_int(p, at, sp)
        at = _put_bytes(p, at, b',"dest_ip":')
        at = _put_addr(p, at, dst)
        if at < 0:
            return -1
        if ports:
            at = _put_bytes(p, at, b',"dest_port":')
            at = _put_int(p, at, dp)
        return at

    @cython.cfunc
    def _put_time(p: cython.p_char, at: cython.int, ts: cython.double) -> cython.int:
        """Write `format_timestamp(ts)` between double quotes; -1 when the C form does not cover it."""
        p[at] = 34
        at = _put_timestamp(p, at + 1, ts)
        if at < 0:
            return -1
        p[at] = 34
        return at + 1

    _JSON_TEXT: dict = {}

    def _json_text(text: str) -> bytes:
        """`text` as orjson serialises it (quotes, escapes), made once per distinct string."""
        known: dict = _JSON_TEXT            # typed: a C dict lookup, not a `.get` call
        b = known.get(text)
        if b is None:
            if len(known) >= 4096:
                known.clear()
            b = known[text] = orjson.dumps(text)
        return b

    _LINE_MAX = 8192            # the C buffer; a line that may not fit takes the dict path
    _PIECE_MAX = 256            # a text value spliced in (app_proto, state, reason)
    # `"proto":` values, serialised once per protocol number
    _PROTO_JSON: tuple = tuple(orjson.dumps(t) for t in PROTO_TEXT)

    # The writers below read `Event`, `Packet` and `Flow` as typed records (fields.pxd
    # cimports event.pxd, decode/packet.pxd, flow/flow.pxd): every field is a struct
    # member read, where the untyped version paid an attribute lookup for each of the
    # ~25 fields (py-spy, bench-300k: half of `alert_line`'s time). Objects of other
    # classes (a test's stand-in) are not the usual shape: the dicts write them.

    @cython.cfunc
    def _put_alert(p: cython.p_char, ev: Event, alert_json: bytes, host_packet: object) -> cython.int:
        """Write the eve.json line (newline included) of an alert about an IP packet of a
        flow (not tunnelled, no VLAN) at `p`; returns its length, or -1 for any other
        shape (output/eve.py `_alert` is the reference: same bytes). TCP/UDP/SCTP carry
        ports, ICMP its type and code. `p` has room for `_LINE_MAX` bytes."""
        pobj = ev.pkt
        fobj = ev.flow
        # exact types (a pointer compare each): a subclass (HostPacket, the stream stage's
        # flow-end pseudo packet) is never the usual shape
        if type(pobj) is not Packet or type(fobj) is not Flow or type(pobj) is host_packet:
            return -1
        pkt: Packet = pobj
        flow: Flow = fobj
        if pkt.tunnel is not None or pkt.vlan or not pkt.pcap_cnt or not pkt.ip_version:
            return -1
        if len(alert_json) > 7168:          # _LINE_MAX - 1024 (a literal: a C compare)
            return -1
        proto: cython.int
        icmp_type: cython.int = -1
        app_json: bytes = None
        at: cython.int
        try:
            proto = pkt.proto
            if proto < 0 or proto > 255 or proto == 132 or proto == 2:
                # SCTP, IGMP: the header's sctp{} / igmp{} object is output/eve.py's
                return -1
            ports: cython.bint = proto == 6 or proto == 17
            if proto == 1 or proto == 58:
                icmp_type = pkt.icmp_type
            app_proto = flow.app_proto
            if app_proto:
                app_json = _json_text(app_proto)
                if len(app_json) > _PIECE_MAX:
                    return -1
            at = _put_bytes(p, 0, b'{"timestamp":')
            at = _put_time(p, at, ev.ts)
            if at < 0:
                return -1
            at = _put_bytes(p, at, b',"flow_id":')
            fid: cython.longlong = flow._flow_id        # made on first use (Flow.flow_id)
            at = _put_int(p, at, fid if fid else flow.flow_id)
            at = _put_bytes(p, at, b',"pcap_cnt":')
            at = _put_int(p, at, pkt.pcap_cnt)
            at = _put_bytes(p, at, b',"event_type":"alert","src_ip":')
            at = _put_endpoints(p, at, pkt.src, pkt.sp, pkt.dst, pkt.dp, ports)
            if at < 0:
                return -1
            at = _put_bytes(p, at, b',"proto":')
            at = _put_bytes(p, at, _PROTO_JSON[proto])
            at = _put_bytes(p, at, b',"ip_v":')
            at = _put_int(p, at, pkt.ip_version)
            if icmp_type >= 0:
                at = _put_bytes(p, at, b',"icmp_type":')
                at = _put_int(p, at, icmp_type)
                at = _put_bytes(p, at, b',"icmp_code":')
                at = _put_int(p, at, pkt.icmp_code)
            at = _put_bytes(p, at, b',"pkt_src":"wire/pcap","alert":')
            at = _put_bytes(p, at, alert_json)
            if app_json is not None:
                at = _put_bytes(p, at, b',"app_proto":')
                at = _put_bytes(p, at, app_json)
            if pkt.to_server:
                at = _put_bytes(p, at, b',"direction":"to_server","flow":{"pkts_toserver":')
            else:
                at = _put_bytes(p, at, b',"direction":"to_client","flow":{"pkts_toserver":')
            at = _put_int(p, at, flow.pkts_toserver)
            at = _put_bytes(p, at, b',"pkts_toclient":')
            at = _put_int(p, at, flow.pkts_toclient)
            at = _put_bytes(p, at, b',"bytes_toserver":')
            at = _put_int(p, at, flow.bytes_toserver)
            at = _put_bytes(p, at, b',"bytes_toclient":')
            at = _put_int(p, at, flow.bytes_toclient)
            at = _put_bytes(p, at, b',"start":')
            at = _put_time(p, at, flow.start)
            if at < 0:
                return -1
            at = _put_bytes(p, at, b',"src_ip":')
            at = _put_addr(p, at, flow.client)
            if at < 0:
                return -1
            at = _put_bytes(p, at, b',"dest_ip":')
            at = _put_addr(p, at, flow.server)
            if at < 0:
                return -1
            fproto: cython.int = flow.proto
            if fproto == 6 or fproto == 17 or fproto == 132:
                at = _put_bytes(p, at, b',"src_port":')
                at = _put_int(p, at, flow.client_port)
                at = _put_bytes(p, at, b',"dest_port":')
                at = _put_int(p, at, flow.server_port)
            at = _put_bytes(p, at, b'}}\n')
        except (OverflowError, TypeError, ValueError):
            return -1               # not the usual values: the dict path writes (or rejects) them
        return at

    def alert_line(event: object, alert_json: bytes, host_packet: type) -> object:
        """The eve.json line (newline included) of an alert about an IP packet of a flow
        (not tunnelled, no VLAN), or None for any other (`_put_alert`, as bytes)."""
        if not isinstance(event, Event):
            return None
        buf: cython.char[8192]
        p: cython.p_char = buf
        n: cython.int = _put_alert(p, event, alert_json, host_packet)
        if n < 0:
            return None
        return p[:n]

    # What `record_line` needs from output/eve.py (set once by `set_line_hooks`, since
    # eve.py imports this module): the HostPacket class, and the makers of an alert's
    # serialised object, of a flow's state and of a TCP flow's tcp{}.
    _HOST_PACKET: object = None
    _ALERT_JSON: object = None
    _STATE_OF: object = None
    _TCP_JSON: object = None

    def set_line_hooks(host_packet: object, alert_json: object, state_of: object, tcp_json: object) -> None:
        """Give `record_line` output/eve.py's pieces (see `alert_line` and `flow_line`)."""
        global _HOST_PACKET, _ALERT_JSON, _STATE_OF, _TCP_JSON
        _HOST_PACKET, _ALERT_JSON, _STATE_OF, _TCP_JSON = host_packet, alert_json, state_of, tcp_json

    @cython.cfunc
    def _put_record(p: cython.p_char, ev: Event) -> cython.int:
        """Write the line of an alert or flow record of the usual shapes at `p` (room for
        `_LINE_MAX` bytes); its length, or -1: one C routine per record shape."""
        etype = ev.event_type
        if etype == "alert":
            alert = ev.alert
            if alert is None:
                return -1
            data = alert.eve_json
            if data is None:
                data = _ALERT_JSON(alert)
            if type(data) is not bytes:
                return -1
            return _put_alert(p, ev, data, _HOST_PACKET)
        if etype == "flow":
            return _put_flow(p, ev, _STATE_OF, _TCP_JSON)
        return -1

    def record_line(event: object) -> object:
        """The eve.json line of an alert or flow record of the usual shapes (`alert_line`,
        `flow_line`), or None: the writer's one call per record, dispatching in C."""
        if not isinstance(event, Event):
            return None
        buf: cython.char[8192]
        p: cython.p_char = buf
        n: cython.int = _put_record(p, event)
        if n < 0:
            return None
        return p[:n]

    @cython.cfunc
    def _put_flow(p: cython.p_char, ev: Event, state_of: object, tcp_json: object) -> cython.int:
        """Write the eve.json line (newline included) of a flow record without VLAN, action
        or exception policy at `p`; its length, or -1 for any other (output/eve.py `_flow`
        is the reference: same bytes). `state_of(flow)` is the flow-level state when the
        flow keeps none; `tcp_json(flags, state)` the serialised ``tcp{}`` of a TCP flow.
        TCP/UDP/SCTP carry ports, the others (ICMP) the first request's and reply's type
        and code. `p` has room for `_LINE_MAX` bytes."""
        fobj = ev.flow
        if type(fobj) is not Flow:
            return -1
        flow: Flow = fobj
        proto: cython.int = flow.proto
        if proto < 0 or proto > 255:
            return -1
        ports: cython.bint = proto == 6 or proto == 17 or proto == 132
        icmp = None
        ip_v: cython.longlong = flow.ip_version
        if not ports:
            icmp = flow.icmp
            if icmp is not None and len(icmp) != 2 and len(icmp) != 4:
                return -1
        if flow.vlan or flow.action is not None or flow.exception_policy is not None:
            return -1
        app_proto = flow.app_proto
        app_json: bytes = None
        if app_proto:
            app_json = _json_text(app_proto)
            if len(app_json) > _PIECE_MAX:
                return -1
        state_json: bytes = _json_text(flow.state or state_of(flow))
        reason_json: bytes = _json_text(flow.end_reason or "unknown")
        if len(state_json) > _PIECE_MAX or len(reason_json) > _PIECE_MAX:
            return -1
        tcp: bytes = None
        if proto == 6:
            # tcp{} by (state, flags), kept here: a C dict probe instead of a Python call
            # into output/eve.py per TCP flow record (~60 combinations on bench-1m)
            flags: cython.int = (flow.tcp_flags_ts & 0xFF) | (flow.tcp_flags_tc & 0xFF) << 8
            tcp_state = flow.tcp_state
            known: dict = _TCP_CACHE
            try:
                tkey = (tcp_state, flags)
                tcp = known.get(tkey)
                if tcp is None:
                    tcp = tcp_json(flags, tcp_state)
                    if len(known) >= 4096:
                        known.clear()
                    known[tkey] = tcp
            except TypeError:
                return -1
            if len(tcp) > 1024:
                return -1
        at: cython.int
        start: cython.double = flow.start
        last: cython.double = flow.last_seen
        try:
            if not (-9.0e18 < start < 9.0e18 and -9.0e18 < last < 9.0e18):
                return -1
            at = _put_bytes(p, 0, b'{"timestamp":')
            at = _put_time(p, at, ev.ts)
            if at < 0:
                return -1
            at = _put_bytes(p, at, b',"flow_id":')
            fid: cython.longlong = flow._flow_id        # made on first use (Flow.flow_id)
            at = _put_int(p, at, fid if fid else flow.flow_id)
            at = _put_bytes(p, at, b',"event_type":"flow","src_ip":')
            at = _put_endpoints(p, at, flow.client, flow.client_port, flow.server, flow.server_port, ports)
            if at < 0:
                return -1
            if ports or ip_v:               # flow_header: ip_v only when known
                at = _put_bytes(p, at, b',"ip_v":')
                at = _put_int(p, at, ip_v)
            at = _put_bytes(p, at, b',"proto":')
            at = _put_bytes(p, at, _PROTO_JSON[proto])
            if icmp is not None:            # after proto, then the first reply's if any
                at = _put_bytes(p, at, b',"icmp_type":')
                at = _put_int(p, at, icmp[0])
                at = _put_bytes(p, at, b',"icmp_code":')
                at = _put_int(p, at, icmp[1])
                if len(icmp) == 4:
                    at = _put_bytes(p, at, b',"response_icmp_type":')
                    at = _put_int(p, at, icmp[2])
                    at = _put_bytes(p, at, b',"response_icmp_code":')
                    at = _put_int(p, at, icmp[3])
            if app_json is not None:
                at = _put_bytes(p, at, b',"app_proto":')
                at = _put_bytes(p, at, app_json)
            at = _put_bytes(p, at, b',"flow":{"pkts_toserver":')
            at = _put_int(p, at, flow.pkts_toserver)
            at = _put_bytes(p, at, b',"pkts_toclient":')
            at = _put_int(p, at, flow.pkts_toclient)
            at = _put_bytes(p, at, b',"bytes_toserver":')
            at = _put_int(p, at, flow.bytes_toserver)
            at = _put_bytes(p, at, b',"bytes_toclient":')
            at = _put_int(p, at, flow.bytes_toclient)
            at = _put_bytes(p, at, b',"start":')
            at = _put_time(p, at, start)
            if at < 0:
                return -1
            at = _put_bytes(p, at, b',"end":')
            at = _put_time(p, at, last)
            if at < 0:
                return -1
            at = _put_bytes(p, at, b',"age":')
            # int(last) - int(start): both truncate toward zero
            at = _put_int(p, at, cython.cast(cython.longlong, last) - cython.cast(cython.longlong, start))
            at = _put_bytes(p, at, b',"state":')
            at = _put_bytes(p, at, state_json)
            at = _put_bytes(p, at, b',"reason":')
            at = _put_bytes(p, at, reason_json)
            if flow.alerted:
                at = _put_bytes(p, at, b',"alerted":true}')
            else:
                at = _put_bytes(p, at, b',"alerted":false}')
            if tcp is not None:
                at = _put_bytes(p, at, b',"tcp":')
                at = _put_bytes(p, at, tcp)
            at = _put_bytes(p, at, b'}\n')
        except (OverflowError, TypeError, ValueError):
            return -1
        return at

    _TCP_CACHE: dict = {}       # (tcp_state, flags) -> tcp_json(flags, tcp_state), see `_put_flow`

    def flow_line(event: object, state_of: object, tcp_json: object) -> object:
        """The eve.json line (newline included) of a flow record without VLAN, action or
        exception policy, or None for any other (`_put_flow`, as bytes)."""
        if not isinstance(event, Event):
            return None
        buf: cython.char[8192]
        p: cython.p_char = buf
        n: cython.int = _put_flow(p, event, state_of, tcp_json)
        if n < 0:
            return None
        return p[:n]

    _pure_format_timestamp = make_timestamp_formatter()
    format_ip = _format_ip_c
    format_timestamp = _format_timestamp_c
    LINES = True
else:
    format_ip = _format_ip_cached
    format_timestamp = make_timestamp_formatter()
    LINES = False           # the pure path writes every record through output/eve.py's dicts
    alert_line = flow_line = record_line = set_line_hooks = None
format_record_time = make_record_time_formatter(format_timestamp)

_BUF_SIZE = 1 << 20        # LineBuffer: bytes gathered before one write to the file
_BUF_ROOM = 8192           # ... and always free for the next line (the writers' `_LINE_MAX`)


@cython.cclass
class LineBuffer:
    """EVE lines gathered in one block of memory and handed to `sink` (the file's
    write) about 1 MiB at a time.

    Compiled, `add_event` writes the usual alert and flow records (`_put_record`)
    straight into the block: no bytes object per line and no call into the file
    object per line; `add_line` copies any other line (the dict path's) in order.
    `drain` hands over what is gathered: the writer calls it before a flush, a
    reopen and a close, so the file holds every record then, as before.
    `lines` counts the records `add_event` wrote. On the pure path nothing is
    gathered here (the reference: every line goes to `sink` as it comes) and
    `add_event` always says no (the dicts write every record).
    """

    if not cython.compiled:
        __slots__ = ("sink", "lines")

    def __init__(self, sink: Any) -> None:
        self.sink = sink
        self.lines = 0
        if cython.compiled:
            self.used = 0
            self.cap = _BUF_SIZE
            self.buf = cython.cast(cython.p_char, malloc(_BUF_SIZE + _BUF_ROOM))
            if self.buf == cython.NULL:
                raise MemoryError()

    def __dealloc__(self) -> None:
        if cython.compiled:
            free(self.buf)

    def add_event(self, event: object) -> cython.bint:
        """Write `event`'s line if it is an alert or flow record of the usual shape and
        return True; else False (the caller writes it through the dicts)."""
        if cython.compiled:
            if self.buf == cython.NULL or not isinstance(event, Event):
                return False
            if self.used > self.cap:
                self.drain()
            n: cython.int = _put_record(self.buf + self.used, event)
            if n < 0:
                return False
            self.used += n
            self.lines += 1
            return True
        return False

    def add_line(self, line: bytes) -> None:
        """Append one whole line (newline included), after every line before it."""
        if cython.compiled:
            n: cython.Py_ssize_t = len(line)
            if self.buf != cython.NULL and n <= _BUF_ROOM:
                if self.used > self.cap:
                    self.drain()
                memcpy(self.buf + self.used, cython.cast(cython.p_char, line), n)
                self.used += n
                return
            self.drain()
        self.sink(line)

    def drain(self) -> None:
        """Hand every gathered line to `sink` (one write)."""
        if cython.compiled:
            if self.used:
                data: bytes = self.buf[:self.used]
                self.used = 0
                self.sink(data)
