"""Thresholds, detection filters and suppressions, as Suricata's detect-engine-threshold.c.

Inputs: a rule's own `threshold:` / `detection_filter:` options, and the
configuration's `threshold` list (threshold.config lines):

    suppress gen_id G, sig_id S[, track by_src|by_dst|by_either, ip SPEC]
    threshold gen_id G, sig_id S, type limit|threshold|both, track T, count N, seconds M
    event_filter ...   (same fields as threshold)
    rate_filter gen_id G, sig_id S, track T, count N, seconds M, new_action A, timeout K

A config `threshold`/`event_filter` entry for a rule replaces the rule's own
threshold (Suricata: "threshold.config overrides the rule"); sig_id 0 means
every rule of gen_id (gen_id 0: every rule).

`check` returns Suricata's verdict codes: 1 alert, 2 matched but silenced
(the rule's actions, e.g. drop, still apply), 0 no match (nothing applies).

A `rate_filter` never silences anything; it changes what a matching rule
does (`rate_action`): once a rule has matched more than `count` times within
`seconds` for the tracked key, its action becomes `new_action` (alert, drop,
pass, reject) for `timeout` seconds, then the counting starts again
(Suricata's IsThresholdReached). The IPS use: "alert, but drop a source that
keeps at it". Several rate filters may name one rule, as in Suricata.

Windows run on packet time, as Suricata 7 and later compare them: a match
at time t is inside the window that began at t0 when t <= t0 + seconds
(microseconds count; Suricata 6 compared whole-second differences with <).
The rate filter's timeout is compared in whole seconds, as Suricata does.
`track by_both` is the unordered address pair (Suricata puts the lower
address first), `by_flow` the flow; a packet without a flow never matches a
by_flow threshold. `type backoff` (Suricata 8, by_flow only) alerts on the
count-th match of the flow and then every time the count reaches the
previous mark times `multiplier` (count 1, multiplier 10: 1st, 10th,
100th, ...); the other matches are silent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netsentry.config import ConfigError
from netsentry.rules.addresses import AddressMatcher, AddressParser
from netsentry.rules.errors import RuleError
from netsentry.rules.signature import Threshold

if TYPE_CHECKING:  # pragma: no cover
    from netsentry.decode.packet import Packet
    from netsentry.flow.flow import Flow
    from netsentry.rules.signature import Signature

ALERT, NO_MATCH, SILENT = 1, 0, 2

# Suricata 9 gives each detection_filter unique_on entry a 65536-bit port bitmap
# and reports their memory as stats.detect.thresholds.bitmap_memuse; we keep a
# set of the ports seen instead, and report what Suricata would have allocated
# so the counter means the same in both.
BITMAP_BYTES = 65536 // 8

# Closed windows are pruned every 4096 threshold checks: often enough to bound
# memory in a long live run, rare enough to be free per packet.
PRUNE_EVERY_MASK = 4096 - 1

TYPES = ("limit", "threshold", "both")
TRACKS = ("by_src", "by_dst", "by_rule", "by_both", "by_flow")
RATE_TRACKS = ("by_src", "by_dst", "by_rule", "by_both", "by_flow")
U32_MAX = (1 << 32) - 1
# a backoff entry (per flow) not touched for this long belongs to a flow that is gone
BACKOFF_IDLE = 3600
RATE_ACTIONS = ("alert", "drop", "pass", "reject")
SUPPRESS_TRACKS = ("by_src", "by_dst", "by_either")


class ThresholdConfigError(ConfigError):
    """A bad `threshold` list entry: key `threshold[i]`, the reason and the entry
    (a ConfigError, so the CLI prints it as one line like any other config error)."""


@dataclass(slots=True)
class Suppress:
    gid: int
    sid: int
    track: str | None            # None: suppress the rule for everyone
    ips: AddressMatcher | None


@dataclass(slots=True, frozen=True)
class RateFilter:
    track: str
    count: int
    seconds: int
    new_action: str
    timeout: int


@dataclass(slots=True)
class _Entry:
    """Tracking state of one (rule, track key): window start and count (or distinct values)."""

    tv1: float
    count: int
    seen: set[int] | None = None
    seconds: int = 0
    since: int = -1             # rate_filter: second its new action began (-1: not active)
    timeout: int = 0            # rate_filter: how long the new action lasts
    next_value: int = 0         # backoff: the count of the next alert

    def expired(self, now: float) -> bool:
        if self.since >= 0 and int(now) - self.since <= self.timeout:
            return False
        return now > self.tv1 + self.seconds


# --- configuration -------------------------------------------------------------------

def _error(where: tuple[Any, Any], reason: str) -> ThresholdConfigError:
    i, raw = where
    if isinstance(i, str):          # a threshold-file line: "path:line"
        return ThresholdConfigError(f"{reason} in {raw!r}", key="threshold-file", source=i)
    return ThresholdConfigError(f"{reason} in {raw!r}", key=f"threshold[{i}]")


def read_threshold_file(path: str) -> list[tuple[str, str]]:
    """The entries of a threshold.config file as ``("path:line", text)`` pairs.

    Suricata's format: one entry a line, ``#`` starts a comment line, a
    trailing backslash continues the entry on the next line, blank lines are
    skipped. A missing or unreadable file stops start-up (Suricata only warns,
    but a suppression silently not applied is worse than a clear error)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise ThresholdConfigError(f"cannot read {path}: {exc.strerror or exc}", key="threshold-file") from None
    out: list[tuple[str, str]] = []
    pending, start = "", 0
    for n, line in enumerate(lines, 1):
        text = line.strip()
        if not pending and (not text or text.startswith("#")):
            continue
        if not pending:
            start = n
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        out.append((f"{path}:{start}", pending + text))
        pending = ""
    if pending.strip():
        out.append((f"{path}:{start}", pending))
    return out


def _fields(body: str, where: tuple[int, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    # split on commas outside brackets (ip lists may contain commas)
    parts, depth, cur = [], 0, ""
    for ch in body:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    for part in parts:
        kv = part.strip().split(None, 1)
        if len(kv) != 2:
            raise _error(where, f"expected 'key value', got {part.strip()!r}")
        out[kv[0].lower()] = kv[1].strip()
    return out


def _int(fields: dict[str, str], key: str, where: tuple[int, Any]) -> int:
    if key not in fields:
        raise _error(where, f"missing '{key}'")
    try:
        v = int(fields[key])
    except ValueError:
        raise _error(where, f"'{key}' must be a number, got {fields[key]!r}") from None
    if v < 0:
        raise _error(where, f"'{key}' must be >= 0")
    return v


def parse_config(entries: Sequence[Any], address_vars: Mapping[str, str] | None = None
                 ) -> tuple[list[Suppress], dict[tuple[int, int], Threshold],
                            dict[tuple[int, int], list[RateFilter]]]:
    """Parse the config's `threshold` list: suppressions, per-(gid, sid) thresholds and rate filters."""
    suppress: list[Suppress] = []
    thresholds: dict[tuple[int, int], Threshold] = {}
    rates: dict[tuple[int, int], list[RateFilter]] = {}
    addr = AddressParser(dict(address_vars or {}))
    for i, raw in enumerate(entries or ()):
        if isinstance(raw, tuple):      # (file:line, text) from read_threshold_file
            i, raw = raw
        where = (i, raw)
        if not isinstance(raw, str):
            raise _error(where, "must be a string like threshold.config's lines")
        kind, _, body = raw.strip().partition(" ")
        kind = kind.lower()
        f = _fields(body, where)
        gid, sid = _int(f, "gen_id", where), _int(f, "sig_id", where)
        if kind == "suppress":
            track = f.get("track")
            ips = None
            if track is not None:
                if track not in SUPPRESS_TRACKS:
                    raise _error(where, f"track must be one of {', '.join(SUPPRESS_TRACKS)}")
                if "ip" not in f:
                    raise _error(where, "'track' needs 'ip'")
                try:
                    ips = addr.parse(f["ip"])
                except RuleError as e:
                    raise _error(where, f"ip: {e}") from None
            suppress.append(Suppress(gid, sid, track, ips))
        elif kind in ("threshold", "event_filter"):
            ttype = f.get("type")
            if ttype not in TYPES:
                raise _error(where, f"type must be one of {', '.join(TYPES)}")
            track = f.get("track", "by_src")
            if track not in TRACKS:
                raise _error(where, f"track must be one of {', '.join(TRACKS)}")
            thresholds[(gid, sid)] = Threshold(ttype, track, _int(f, "count", where), _int(f, "seconds", where))
        elif kind == "rate_filter":
            track = f.get("track", "by_rule")
            if track not in RATE_TRACKS:
                raise _error(where, f"track must be one of {', '.join(RATE_TRACKS)}")
            action = f.get("new_action")
            if action not in RATE_ACTIONS:
                raise _error(where, f"new_action must be one of {', '.join(RATE_ACTIONS)}")
            rates.setdefault((gid, sid), []).append(RateFilter(
                track, _int(f, "count", where), _int(f, "seconds", where), action, _int(f, "timeout", where)))
        else:
            raise _error(where, f"unknown entry kind {kind!r} (suppress, threshold, event_filter, rate_filter)")
    return suppress, thresholds, rates


# --- state -------------------------------------------------------------------------

_NO_FLOW = object()   # the track key of a by_flow entry for a packet without a flow: never matches


def _track_key(track: str, pkt: Packet, flow: Flow | None) -> Any:
    if track == "by_src":
        return pkt.src
    if track == "by_dst":
        return pkt.dst
    if track == "by_both":
        src, dst = pkt.src, pkt.dst
        return (src, dst) if src <= dst else (dst, src)
    if track == "by_flow":
        return flow.flow_id if flow is not None else _NO_FLOW
    return None  # by_rule


class ThresholdState:
    """Per-rule threshold policy and the tracking tables, keyed by (rule num, track key)."""

    def __init__(self, sigs: Sequence[Signature], config_entries: Sequence[Any] = (),
                 address_vars: Mapping[str, str] | None = None) -> None:
        suppress, cfg_thresholds, cfg_rates = parse_config(config_entries, address_vars)
        self.suppressed = 0
        # num -> list of Suppress / effective threshold / detection_filter
        self._suppress: dict[int, list[Suppress]] = {}
        self._threshold: dict[int, Threshold] = {}
        self._filter: dict[int, Threshold] = {}
        self._rate: dict[int, list[RateFilter]] = {}
        self._state: dict[tuple[int, str, Any], _Entry] = {}
        self._checks = 0
        self.bitmaps = 0            # live detection_filter unique_on entries (Suricata's bitmaps)
        for num, s in enumerate(sigs):
            sup = [e for e in suppress if e.gid in (0, s.gid) and e.sid in (0, s.sid)]
            if sup:
                self._suppress[num] = sup
            thr = (cfg_thresholds.get((s.gid, s.sid)) or cfg_thresholds.get((s.gid, 0))
                   or cfg_thresholds.get((0, 0)) or s.threshold)
            if thr is not None:
                self._threshold[num] = thr
            if s.detection_filter is not None:
                self._filter[num] = s.detection_filter
            rates = cfg_rates.get((s.gid, s.sid), []) + cfg_rates.get((s.gid, 0), []) + cfg_rates.get((0, 0), [])
            if rates:
                self._rate[num] = rates

    def applies(self, num: int) -> bool:
        """True when rule `num` has anything here (the engine skips `check` otherwise)."""
        return num in self._suppress or num in self._threshold or num in self._filter or num in self._rate

    def has_rate_filter(self, num: int) -> bool:
        return num in self._rate

    def tracks(self, num: int) -> frozenset[str]:
        """Every track rule `num`'s threshold, detection_filter and rate filters count by.

        The worker runtime (hoststate.py) asks: a rule counted by host (`by_src`,
        `by_dst`) or across all hosts (`by_rule`) is decided in one process for all
        workers; `by_both` and `by_flow` stay exact in the worker owning the pair."""
        out = {t.track for t in (self._threshold.get(num), self._filter.get(num)) if t is not None}
        out.update(rf.track for rf in self._rate.get(num, ()))
        return frozenset(out)

    def rate_action(self, num: int, pkt: Packet, flow: Flow | None) -> str | None:
        """The action rule `num` takes on this match under its rate filters (None: its own).

        Call once per match that was not NO_MATCH. The last filter whose rate is
        reached decides, as Suricata applies them in turn to the same alert."""
        ts = pkt.ts
        now = int(ts)
        action = None
        for i, rf in enumerate(self._rate.get(num, ())):
            track = _track_key(rf.track, pkt, flow)
            if track is _NO_FLOW:
                continue
            key = (num, i, track)
            e = self._state.get(key)
            if e is None:
                self._state[key] = _Entry(ts, 1, None, rf.seconds, -1, rf.timeout)
                continue
            if e.since >= 0:
                if now - e.since > rf.timeout:
                    e.since = -1            # the new action is over; this match counts nothing
                else:
                    action = rf.new_action
                continue
            if ts <= e.tv1 + rf.seconds:
                e.count += 1
                if e.count > rf.count:
                    e.since = now
                    action = rf.new_action
            else:
                e.tv1 = ts
                e.count = 1
        return action

    def check(self, num: int, pkt: Packet, flow: Flow | None) -> int:
        """ALERT, SILENT (actions apply, no alert) or NO_MATCH for a rule that matched."""
        self._checks += 1
        if not self._checks & PRUNE_EVERY_MASK:
            self.expire(pkt.ts)
        for e in self._suppress.get(num, ()):
            if e.track is None:
                return SILENT
            ips = e.ips
            if ((e.track in ("by_src", "by_either") and ips.contains(pkt.src))
                    or (e.track in ("by_dst", "by_either") and ips.contains(pkt.dst))):
                return SILENT
        res = ALERT
        df = self._filter.get(num)
        if df is not None:
            res = self._detection_filter(num, df, pkt, flow)
            if res != ALERT:
                return res
        thr = self._threshold.get(num)
        if thr is not None:
            res = self._threshold_check(num, thr, pkt, flow)
        return res

    def _detection_filter(self, num: int, td: Threshold, pkt: Packet, flow: Flow | None) -> int:
        """Alert on every match after the first `count` in the window.

        With `unique_on`, `count` counts distinct source/destination ports
        (Suricata 8, ticket 7928): a repeated port neither counts nor alerts.
        """
        ts = pkt.ts
        track = _track_key(td.track, pkt, flow)
        if track is _NO_FLOW:
            return NO_MATCH
        key = (num, "df", track)
        e = self._state.get(key)
        unique = td.unique_on
        port = (pkt.sp if unique == "src_port" else pkt.dp) if unique else 0
        if e is None or ts > e.tv1 + td.seconds:
            if unique and e is None:
                self.bitmaps += 1   # a new window of an existing entry reuses its bitmap, as Suricata
            self._state[key] = _Entry(ts, 1, {port} if unique else None, td.seconds)
            return NO_MATCH
        if unique:
            if port in e.seen:  # type: ignore[operator]
                return NO_MATCH
            e.seen.add(port)  # type: ignore[union-attr]
        e.count += 1
        return ALERT if e.count > td.count else NO_MATCH

    def _threshold_check(self, num: int, td: Threshold, pkt: Packet, flow: Flow | None) -> int:
        ts = pkt.ts
        track = _track_key(td.track, pkt, flow)
        if track is _NO_FLOW:
            return NO_MATCH
        key = (num, "thr", track)
        e = self._state.get(key)
        kind = td.kind
        if kind == "backoff":
            return self._backoff(key, e, td, ts)
        if e is None:
            if kind == "threshold" and td.count == 1:
                return ALERT      # Suricata keeps no entry then: every match alerts
            self._state[key] = _Entry(ts, 1, None, td.seconds)
            if kind == "limit":
                return ALERT
            return ALERT if td.count == 1 else NO_MATCH
        if ts <= e.tv1 + td.seconds:
            e.count += 1
            if kind == "limit":
                return ALERT if e.count <= td.count else SILENT
            if kind == "threshold":
                if e.count >= td.count:
                    e.count = 0
                    return ALERT
                return NO_MATCH
            # both
            if e.count == td.count:
                return ALERT
            return SILENT if e.count > td.count else NO_MATCH
        e.tv1 = ts
        e.count = 1
        if kind == "limit":
            return ALERT
        return ALERT if td.count == 1 and kind == "both" else NO_MATCH

    def _backoff(self, key: tuple, e: _Entry | None, td: Threshold, ts: float) -> int:
        """Suricata 8's TYPE_BACKOFF: alert when the flow's match count reaches the next
        mark, which is then multiplied (capped at 2^32-1); other matches are silent."""
        if e is None:
            e = self._state[key] = _Entry(ts, 1, None, BACKOFF_IDLE, next_value=td.count)
            if td.count == 1:
                e.next_value = min(td.count * td.multiplier, U32_MAX)
                return ALERT
            return SILENT
        e.tv1 = ts                  # only for expiry of entries whose flow is gone
        if e.count >= U32_MAX:
            return SILENT
        e.count += 1
        if e.count == e.next_value:
            e.next_value = min(e.next_value * td.multiplier, U32_MAX)
            return ALERT
        return SILENT

    def expire(self, now: float) -> None:
        """Forget entries whose window has closed: a new match would start afresh anyway,
        so this changes no verdict and keeps memory bounded by the active sources."""
        dead = [k for k, e in self._state.items() if e.expired(now)]
        for k in dead:
            if self._state.pop(k).seen is not None:
                self.bitmaps -= 1

    def stats(self) -> dict[str, int]:
        """Suricata 9's threshold counters (stats.detect.thresholds.*)."""
        return {"detect.thresholds.bitmap_memuse": self.bitmaps * BITMAP_BYTES,
                "detect.thresholds.bitmap_alloc_fail": 0}

    def __len__(self) -> int:
        return len(self._state)
