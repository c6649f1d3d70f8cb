"""The signature engine: per packet, group lookup, prefilter, verification, actions.

`SignatureEngine(ruleset, config, ips=None)`; `inspect(pkt, flow)` returns
the packet's alert events or None. Per packet:

1. flow verdicts first: a dropped flow (IPS) drops the packet uninspected, a
   passed flow is not inspected;
2. the rule group for (protocol, ports) -- cached on the flow per direction
   (grouping.py); ip-only rules only on a direction's first packet (ruletype.py);
3. the group's multi-pattern prefilter over the payload (skipped when the
   payload is empty) names candidate rules; rules without a fast pattern are
   always candidates;
4. candidates are verified in evaluation order (actions.py): header, then
   `Signature.match`, then `post_match` (flowbits) right away, so a setter's
   bit is seen by a later checker on the same packet; a TCP segment that
   follows earlier in-order data is also tried as stream data (stream.py);
5. matches go through thresholds/suppression (threshold.py) and the action
   rules (pass/drop/reject, with Suricata's per-rule-type scope) and become
   `alert` events; in IPS mode a drop sets `pkt.verdict`, `pkt.drop_alert`
   and, for flow-scoped rules, `flow.action`.

Signatures are referred to by their index in evaluation order ("num"), so
candidate lists merge and sort as small ints.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from netsentry.detect.actions import (DEFAULT_ACTION_ORDER, REJECT_ACTIONS, alert_action,
                                      evaluation_order, order_key, register_pass_alerts, verdict_of)
from netsentry.config import ConfigError, get
from netsentry.detect.firewall import split_firewall
from netsentry.detect.grouping import NON_IP, Group, GroupIndex
from netsentry.detect.homeclass import ALL_CLASSES, NEEDS_HEADER, HomeClasses
from netsentry.detect.prefilter import BACKENDS
from netsentry.detect.ruletype import APP_LAYER, IP_ONLY, LIKE_IP_ONLY, STREAM, flow_scoped, rule_type
from netsentry.detect.stream import SUFFIX, StreamRule, StreamView, stream_capable, stream_rule, window_lookback
from netsentry.detect.threshold import ALERT, NO_MATCH, ThresholdState, read_threshold_file
from netsentry.detect.txdetect import TxDetect, TxGuess
from netsentry.rules.inspect import Content
from netsentry.rules.pcre_limit import DEFAULT_SECONDS as DEFAULT_PCRE_SECONDS
from netsentry.rules.pcre_limit import LIMIT as PCRE_LIMIT
from netsentry.event import MATCH_PACKET, MATCH_STREAM, Alert, Event
from netsentry.stream.tcp import StreamEndPacket
# compiled: the typed records (engine.pxd cimports their .pxd), fields read in C
from netsentry.decode.packet import Packet  # noqa: F401
from netsentry.flow.flow import Flow  # noqa: F401

try:
    import cython
except ImportError:      # Cython is a build dependency only (netsentry/_cython_shim.py)
    from netsentry import _cython_shim as cython  # type: ignore[no-redef]

if TYPE_CHECKING:  # pragma: no cover
    from netsentry.rules.signature import Signature


def detect_settings(config: Mapping[str, Any]) -> tuple[str, tuple[str, ...], float]:
    """The `detect` section, checked: (prefilter backend, action order, pcre time limit).

    Separate from the engine so a configuration is checked even when no rules
    load and no engine is built: a typo must not wait for the first rule file."""
    backend = str(get(config, "detect.prefilter", "auto"))
    if backend != "auto" and backend not in BACKENDS:
        raise ConfigError(f"unknown prefilter {backend!r} (auto, {', '.join(BACKENDS)})", key="detect.prefilter")
    pcre_limit = get(config, "detect.pcre-time-limit", DEFAULT_PCRE_SECONDS)
    if isinstance(pcre_limit, bool) or not isinstance(pcre_limit, (int, float)) or not 0 <= pcre_limit <= 60:
        raise ConfigError(f"expected seconds from 0 (no limit) to 60, got {pcre_limit!r}",
                          key="detect.pcre-time-limit")
    action_order = get(config, "detect.action-order", DEFAULT_ACTION_ORDER)
    if not isinstance(action_order, (list, tuple)) or sorted(action_order) != sorted(DEFAULT_ACTION_ORDER):
        raise ConfigError(f"must list each of {', '.join(DEFAULT_ACTION_ORDER)} once, got {action_order!r}",
                          key="detect.action-order")
    return backend, tuple(action_order), float(pcre_limit)


_PASS = object()     # _apply's "a pass rule matched" marker


def _in_stream(pkt: Packet, flow: Flow | None) -> bool:
    """Is this packet's payload part of the reassembled TCP stream?

    The stream stage (stream/tcp.py) says so with `pkt.stream_added`: data
    of a followed session, in or out of order, but not a retransmission nor
    the data of a RST segment, which Suricata inspects as a packet and never
    adds to the stream (suricata-verify bug-6244-tcp-rst-with-data).
    """
    return pkt.stream_added


def _confirmed_by_prefilter(s: Signature) -> bool:
    """True when a prefilter hit of this rule's fast pattern *is* a match.

    So for rules that are one plain content (no position, no negation, no
    chop) on any address, with nothing else to check: the group already
    guarantees protocol and ports, and the prefilter reports exactly where
    the content (caseless as `nocase` says, ASCII folding like Suricata's)
    occurs. Suricata likewise skips re-inspecting such MPM-confirmed patterns.
    """
    fp = s.fast_pattern
    chain = s.payload_chain
    if fp is None or chain is None or tuple(chain.items) != (fp,):
        return False
    if s.packet_checks or s.final_checks or s.post_actions or s.needs_stream:
        return False
    if not (s.src.is_any and s.dst.is_any):
        return False
    return (fp.buffer == "pkt_data" and not fp.negated and fp.is_single and not fp.startswith
            and not fp.endswith and fp.fast_pattern_chop is None and fp.fp_bytes == fp.pattern)


def _plain_contents(s: Signature) -> tuple[tuple[bytes, bool], ...] | None:
    """When all of `s`'s `match` is "each of these contents occurs somewhere in the
    payload": its contents as (needle, nocase) pairs, the needle lowercased for `nocase`
    (the buffer is then searched lowercased: ASCII folding, as `Content` does); else None.

    So for rules whose payload keywords are only positionless, non-negated contents
    (ET Open's commonest shape, bench.rules' two-content rule, 10k.rules' 2,000), with
    no other check or side effect. Such a chain needs no relative state: each content
    is an independent search (rules/inspect.py), so the engine does them as bytes.find
    calls instead of a `Signature.match` frame, a `Det` and one call per item.
    """
    chain = s.payload_chain
    if chain is None or s.packet_checks or s.final_checks or s.post_actions or s.needs_stream:
        return None
    items = tuple(chain.items)
    if not items:
        return None
    pairs = []
    for c in items:
        if (type(c) is not Content or c.buffer != "pkt_data" or not c.pattern or c.negated
                or not c.is_single or c.startswith or c.endswith):
            return None
        pairs.append((c.pattern.lower() if c.nocase else c.pattern, bool(c.nocase)))
    return tuple(pairs)


@cython.final
@cython.cclass
class _Rule:
    """What the candidate loops (`inspect`, `_inspect_stream`) read about rule `num`, in one
    record: one list item per candidate instead of one from each of seven per-num lists
    (and seven attribute lookups on the engine per packet to fetch those lists).
    Compiled (engine.pxd) the flags and the address mask are C fields.

    sig: the Signature; alert: its shared "allowed" Alert; confirmed, stream_only,
    plain, capable, amask: as the engine's lists of those names; pkt_too: a stream rule
    that falls back to the packet's payload (`Signature.pkt_too`); pairs / stream_pairs:
    `_plain_contents` for the packet and the stream window (`_stream_plain`), None when
    the rule takes `Signature.match` / `StreamRule.matches`; nocase: some pair is
    `nocase` (the buffer is then searched lowercased); how: its StreamRule."""

    if not cython.compiled:
        __slots__ = ("sig", "alert", "pairs", "stream_pairs", "how", "amask", "confirmed", "stream_only",
                     "plain", "capable", "nocase", "stream_nocase", "pkt_too")

    def __init__(self, sig: Any, alert: Any, pairs: Any, stream_pairs: Any, how: Any, amask: int,
                 confirmed: bool, stream_only: bool, plain: bool, capable: bool, pkt_too: bool = False) -> None:
        self.sig = sig
        self.alert = alert
        self.pairs = pairs
        self.stream_pairs = stream_pairs
        self.how = how
        self.amask = amask
        self.confirmed = confirmed
        self.stream_only = stream_only
        self.plain = plain
        self.capable = capable
        self.pkt_too = pkt_too
        self.nocase = pairs is not None and any(nc for _p, nc in pairs)
        self.stream_nocase = stream_pairs is not None and any(nc for _p, nc in stream_pairs)

    def __reduce__(self) -> Any:
        # the rule cache pickles the engine (rules/cache.py); the flags follow from these
        return _Rule, (self.sig, self.alert, self.pairs, self.stream_pairs, self.how, self.amask,
                       self.confirmed, self.stream_only, self.plain, self.capable, self.pkt_too)


@cython.cfunc
def _contents_in(pairs: tuple, buf: object, lower: object, start: cython.Py_ssize_t) -> cython.bint:
    """Does every (needle, nocase) of `pairs` (`_plain_contents`) occur in `buf` from
    `start` on, a `nocase` needle in `lower` (`buf` lowercased; None when no pair is
    nocase)? `bytes.find(needle, start) >= 0` for each, in order, stopping at the first
    miss. Compiled, a C call with libc's memmem over the buffers: `inspect` and
    `_inspect_stream` each had this loop inline, and a Python helper (a call per
    candidate) measured slower than the copies."""
    if cython.compiled:
        if type(buf) is bytes and (lower is None or type(lower) is bytes):
            n: cython.Py_ssize_t = len(buf)
            if start >= n:
                return False        # every needle is non-empty (`_plain_contents`)
            i: cython.Py_ssize_t
            hay: bytes
            needle: bytes
            pair: tuple
            h: cython.p_const_char
            nd: cython.p_const_char
            for i in range(len(pairs)):
                pair = pairs[i]
                needle = pair[0]
                hay = lower if pair[1] is True else buf
                h = hay
                nd = needle
                if memmem(h + start, n - start, nd, len(needle)) == cython.NULL:  # noqa: F821 (engine.pxd)
                    return False
            return True
    for needle, nc in pairs:
        if (lower if nc else buf).find(needle, start) < 0:
            return False
    return True


class SignatureEngine:
    """Signature detection over decoded packets.

    ips: inline mode (drop rules drop); default from config `stream.inline`.
    Config (section `detect`, all optional): `prefilter` ("auto", "hyperscan",
    "ahocorasick"), `action-order` (list, default pass, drop, reject, alert).
    The top-level `threshold` list holds suppress/threshold entries.
    """

    cache_stats: dict[str, int] = {}     # set by rules/cache.py's engine_for

    def __init__(self, ruleset: Any, config: Mapping[str, Any] | None = None, ips: bool | None = None) -> None:
        t0 = time.perf_counter()
        config = config or {}
        self.ips = bool(get(config, "stream.inline", False)) if ips is None else bool(ips)
        backend, action_order, pcre_seconds = detect_settings(config)
        # every pcre evaluation within a CPU-time budget (rules/pcre_limit.py)
        self.pcre_limited = PCRE_LIMIT.install(pcre_seconds)
        self._pcre_timeouts_before = PCRE_LIMIT.timeouts
        self._pcre_disabled_before = PCRE_LIMIT.flows_disabled
        sigs = getattr(ruleset, "signatures", ruleset)
        # firewall mode (detect/firewall.py): its rules run first, through `inspect` below
        sigs, self.firewall = split_firewall(sigs, config, self.ips)
        register_pass_alerts(sigs)      # their alerts' EVE verdict is "pass"
        # transaction rules (sticky buffers, tx keywords) are inspected per transaction by
        # txdetect.py when the app layer moves one on; they never enter the packet groups
        tx_sigs = [s for s in sigs if s.tx_rule]
        self.tx = (TxDetect(evaluation_order(tx_sigs, action_order), config, self.ips, backend, action_order)
                   if tx_sigs else None)
        # every rule's place in the one evaluation order of both engines (settle_pass)
        self._order_of = {(s.gid, s.sid): order_key(s, action_order) for s in sigs}
        self._pass_at: tuple[Any, Any] | None = None     # (packet, key) of its first packet-rule pass
        self.sigs: list[Signature] = evaluation_order([s for s in sigs if not s.tx_rule], action_order)
        self.guess = TxGuess.build(self.sigs, config)     # the transaction a packet alert names (txdetect.py)
        address_vars = get(config, "vars.address-groups", {}) or {}
        entries: list[Any] = list(get(config, "threshold", []) or [])
        threshold_file = get(config, "threshold-file", "") or ""
        if threshold_file:
            entries += read_threshold_file(threshold_file)
        self.thresholds = ThresholdState(self.sigs, entries, address_vars)
        self._type = [rule_type(s, address_vars) for s in self.sigs]   # ruletype.py
        # rules written with an explicit flow scope (`pass:flow`, `drop:flow`): their action
        # takes the flow whatever their type (Suricata's ACTION_SCOPE_FLOW; detect/firewall.py)
        self._flow_scoped = frozenset(n for n, s in enumerate(self.sigs) if flow_scoped(s))
        self.index = GroupIndex(self.sigs, backend,
                                once_per_direction={n for n, t in enumerate(self._type) if t == IP_ONLY})
        self.index.warm()
        # Per-num facts the hot path reads from lists instead of attributes of
        # the (slotted, parser-owned) Signature.
        self._thr = [self.thresholds.applies(n) for n in range(len(self.sigs))]
        self._rated = [self.thresholds.has_rate_filter(n) for n in range(len(self.sigs))]
        self._pass_alert: Event | None = None     # _apply's alert of a pass rule with `alert;`
        self._dropped: Any = None       # the packet a drop/reject rule last matched (_block)
        # (one `not` over the whole test: Cython mis-typed the mixed `a == b and not c`
        # chain in this comprehension and stored a C int as an object)
        self._plain = [not (s.action != "alert" or s.noalert or self._thr[n])
                       for n, s in enumerate(self.sigs)]
        self._stream_only = [s.needs_stream for s in self.sigs]
        self._confirmed = [_confirmed_by_prefilter(s) for s in self.sigs]
        self._stream_capable = [stream_capable(s) for s in self.sigs]
        # stream rules that fall back to the packet payload (detect/stream.py `packet_too`)
        self._pkt_too = [s.pkt_too for s in self.sigs]
        self._pkt_alerts: dict[int, Alert] = {}        # _as_packet_match
        self._capable_groups: dict[int, bool] = {}     # _all_stream_capable, by id of an owners table
        self._alone_groups: dict[Any, bool] = {}       # _window_alone
        self._stream_how: list[StreamRule] = [stream_rule(s) for s in self.sigs]
        # Per num: the contents of a rule whose match is only "each occurs in the
        # payload" (`_plain_contents`), else None. `inspect` searches them itself; on
        # the stream window the same search from the rule's SUFFIX cut is what
        # `StreamRule.matches` does (detect/stream.py), so `_inspect_stream` does it too
        # where the rule's stream way is SUFFIX with that cut (`_stream_plain`).
        # py-spy, bench-300k: the header test, StreamView, `Signature.match` and the
        # chain were half of `_inspect_stream`, whose candidates are plain contents.
        self._plain_match = [_plain_contents(s) for s in self.sigs]
        self._stream_plain = [
            pm if (pm is not None and self._stream_capable[n] and self._stream_how[n].mode is SUFFIX
                   and self._stream_how[n].back == max(len(p) for p, _ in pm) - 1) else None
            for n, (s, pm) in enumerate(zip(self.sigs, self._plain_match))]
        # how far back into already inspected stream data the prefilter looks: enough
        # for the longest fast pattern of a stream-capable rule to cross a boundary
        self._pf_overlap = max((len(s.fast_pattern.fp_bytes) - 1 for n, s in enumerate(self.sigs)
                                if self._stream_capable[n] and s.fast_pattern is not None), default=0)
        # ... and how much of it the stream stage keeps per direction (stream/tcp.py set_detection)
        self.stream_lookback = window_lookback(self.sigs)
        # Address checks as a bit test on the flow direction's home class (homeclass.py);
        # the classes are worked out per flow only when some verified rule can use them.
        self._homes = HomeClasses(config)
        self._amask = self._homes.masks(self.sigs)
        self._home_bits = (self._homes.home_bits
                           if any(m not in (ALL_CLASSES, NEEDS_HEADER) and not c
                                  for m, c in zip(self._amask, self._confirmed)) else None)
        # One immutable Alert per rule and EVE action, shared by all its events
        # (event.py): in-loop bench a, 200k packets, best of 3 CPU: see the commit.
        self._alerts = [self._new_alert(s, "allowed") for s in self.sigs]
        self._blocked: list[Alert | None] = [None] * len(self.sigs)     # made on first use (_alert)
        # the per-num facts above in one record per rule, for the candidate loops (`_Rule`)
        self._rules = [_Rule(s, self._alerts[n], self._plain_match[n], self._stream_plain[n], self._stream_how[n],
                             self._amask[n], self._confirmed[n], self._stream_only[n], self._plain[n],
                             self._stream_capable[n], self._pkt_too[n])
                       for n, s in enumerate(self.sigs)]
        # flow.detect's shared states by content (_flow_state): a few per rule group
        self._flow_states: dict[tuple[Any, ...], list[Any]] = {}
        self.stats_alerts = 0
        self.stats_suppressed = 0
        self.stats_dropped = 0
        self.stats_passed = 0
        if self.firewall is not None:
            self.inspect = self.firewall.inspector(self)
        self.build_seconds = time.perf_counter() - t0

    def _flow_state(self, g0: Group, g1: Group, seen0: bool, seen1: bool, hb0: int, hb1: int) -> list[Any]:
        """`flow.detect`: the shared, never changed state list for this content (see
        `inspect`). Every flow with the same rule groups, home classes and inspected
        directions holds the same list, so per flow it costs one pointer, not a
        9-item list (128 B per flow; bench/README.md "Flow memory"). Marking a
        direction inspected moves the flow to the successor list in [9] or [10]."""
        key = (g0, g1, seen0, seen1, hb0, hb1)
        st = self._flow_states.get(key)
        if st is None:
            st = self._flow_states[key] = [g0, g1, None, None, seen0, seen1, self, hb0, hb1, None, None]
            st[9] = st if seen0 else self._flow_state(g0, g1, True, seen1, hb0, hb1)
            st[10] = st if seen1 else self._flow_state(g0, g1, seen0, True, hb0, hb1)
        return st

    # --- the hot path ---------------------------------------------------------------

    def inspect(self, pkt: Packet, flow: Flow | None) -> list[Event] | None:
        # compiled: the group a typed record (grouping.pxd), its facts struct members;
        # rule numbers C integers, so the per-num lists are indexed without an int object
        group: Group
        num: cython.Py_ssize_t
        # flow.detect's shared state list, indexed by the direction as a C integer
        state: list
        ts: cython.Py_ssize_t
        # the direction's home-class bit and a rule's address mask (homeclass.py), C integers
        hbit: cython.long
        m: cython.long
        # payload length and offset as C integers: the slice bounds need no int objects
        plen: cython.Py_ssize_t
        off: cython.Py_ssize_t
        if pkt.no_inspect:
            return None         # an exception policy took it out of detection (exception_policy.py)
        plen = pkt.payload_len
        subj = None     # what the rules read instead of `pkt` (a released stream chunk's view)
        if flow is not None:
            action = flow.action
            if action is not None:
                if action == "drop":
                    if self.ips:
                        pkt.verdict = "drop"
                    return None
                if action == "pass":
                    return None
            if flow.payload_off:
                if flow.payload_off == 2:
                    # an encrypted session (applayer/registry.py Encrypted, track-only): no
                    # packet or stream payload is inspected, as Suricata's
                    # PKT_NOPAYLOAD_INSPECTION; the rules that need none still run
                    plen = 0
                    subj = StreamView(pkt, b"")     # the packet's header over no payload
                else:
                    flow.payload_off = 2    # from the next packet on; this one is inspected whole
            state = flow.detect
            if state is None or state[6] is not self:
                fwd, rev = self.index.flow_groups(pkt.proto, pkt.sp, pkt.dp)
                # flow.detect, indexed by pkt.to_server (0 to client, 1 to server):
                # [0-1] rule group, [2-3] unused (were a stream window; stream/ owns it now), [4-5] direction already
                # inspected (set from the start for a group without ip-only rules:
                # nothing differs on a direction's first packet then), [6] the engine
                # that made it (a rule reload brings a new engine whose groups and
                # rule numbers differ), [7-8] 1 << home class of the direction (0: not
                # worked out, no rule needs it), [9-10] the state with direction 0 / 1
                # marked inspected.
                # One shared list per distinct content (_flow_state), never one per flow.
                home_bits = self._home_bits
                here, back = home_bits(pkt.src, pkt.dst) if home_bits is not None else (0, 0)
                state = flow.detect = (self._flow_state(rev, fwd, not rev.ip_only, not fwd.ip_only, back, here)
                                       if pkt.to_server
                                       else self._flow_state(fwd, rev, not fwd.ip_only, not rev.ip_only, here, back))
            ts = pkt.to_server
            hbit = state[7 + ts]
            group = state[ts]
            if state[4 + ts]:
                always = group.always_later     # ip-only rules: once per flow direction
                if always and group.later_by_flags is not None and pkt.proto == 6 and pkt.tcp_flags < 256:
                    always = group.later_by_flags[pkt.tcp_flags]
            else:
                flow.detect = state[9 + ts]
                always = group.first_candidates(pkt.src, pkt.dst)
            if not plen:
                if pkt.stream_added and group.has_stream and subj is None:
                    # no payload of its own but stream data to inspect (stream/tcp.py: data
                    # an ACK let through, or the flow-end pseudo packet)
                    window = pkt.stream_data
                    if window is None or pkt.stream_old or not (
                            group.stream_alone if group.stream_alone >= 0 else self._window_alone(group)):
                        return self._inspect_stream(pkt, flow, group, always, b"")
                    # a released chunk with nothing inspected in front of it, in a group whose
                    # every rule reads the stream (IDS raw inspection on the ACK: most of
                    # bench's stream data): the chunk is inspected as a data packet's own
                    # payload is, on the common path below, through a view of the packet
                    payload = window
                    subj = StreamView(pkt, window)
                    pf = group.prefilter
                else:
                    if pkt.__class__ is StreamEndPacket:
                        return None     # a flow-end pseudo packet: stream rules only, and none here
                    # no payload (half the bench capture: handshakes, ACKs, FINs): only
                    # the rules without a fast pattern can match
                    if not always:
                        return None
                    cands: Sequence[int] = always
                    pf = None
            else:
                off = pkt.payload_off
                payload = pkt.data[off:off + plen]
                if pkt.stream_added and group.has_stream:
                    window = pkt.stream_data
                    # a window that is exactly this packet's payload (a session's first
                    # data, nothing before it, no other segment's bytes over it): stream and
                    # packet inspection agree, so the common path below does it
                    if window is None or pkt.stream_old or window != payload:
                        return self._inspect_stream(pkt, flow, group, always, payload)
                pf = group.prefilter
        else:
            group = self.index.lookup(pkt.proto if pkt.ip_version else NON_IP, pkt.sp, pkt.dp)
            always = group.first_candidates(pkt.src, pkt.dst)
            hbit = 0
            pf = group.prefilter if plen else None
            if pf is not None:
                off = pkt.payload_off
                payload = pkt.data[off:off + plen]

        if pf is not None:
            found = pf.scan(payload)
            if found:
                owners = group.owners
                keep = group.keep
                if len(found) == 1 and not always and keep is None:
                    cands = owners[found[0]]
                elif group.single is not None and not always:
                    # one rule per pattern and pattern ids in evaluation order: sorted
                    # hits are the candidates, no set (an HTTP payload of bench a hits
                    # 2-3 patterns)
                    found.sort()
                    single = group.single
                    cands = [single[pid] for pid in found]
                else:
                    merged = set(always)
                    for pid in found:
                        merged.update(owners[pid])
                    if keep is not None:
                        merged &= keep
                    cands = sorted(merged)
            else:
                cands = always
        else:
            cands = always
        if not cands:
            return None

        rules: list = self._rules
        r: _Rule
        events: list[Event] | None = None
        passed = False
        lower: bytes | None = None      # the payload lowercased, made for the first nocase content
        for num in cands:
            r = rules[num]
            s = r.sig
            if not r.confirmed:
                if r.stream_only and not _in_stream(pkt, flow):
                    continue
                # addresses: settled by the home class where the rule allows (homeclass.py)
                m = r.amask
                if not (m == ALL_CLASSES or m & hbit):
                    if hbit and m != NEEDS_HEADER:
                        continue
                    if not s.header_match(pkt, flow):
                        continue
                pairs = r.pairs
                if pairs is not None and pf is not None:
                    # only positionless contents (`_plain_contents`): each one searched
                    # here, with the payload the prefilter scanned; no Signature.match frame
                    if r.nocase and lower is None:
                        lower = payload.lower()
                    if not _contents_in(pairs, payload, lower, 0):
                        continue
                elif not s.match(pkt if subj is None else subj, flow):
                    continue
                if s.post_actions:
                    s.post_match(pkt, flow)
            # else: the prefilter hit is the match (see _confirmed_by_prefilter);
            # bench a, detect-only over 100k packets: 2.2-2.9 vs 2.7-3.5 cpu-us/pkt.
            if passed:
                continue      # after a pass: later rules still run (flowbits), but never alert
            if r.plain:
                # Matches are handled inline, in evaluation order, instead of being
                # collected for a second loop: one list and one call less per alerting packet.
                ev = Event("alert", pkt.ts, pkt, flow, r.alert)
                if events is None:
                    events = [ev]
                else:
                    events.append(ev)
                continue
            ev = self._apply(num, s, pkt, flow)
            if ev is _PASS:
                passed = True
                ev, self._pass_alert = self._pass_alert, None    # a pass rule with `alert;`
            if ev is not None:
                if events is None:
                    events = [ev]
                else:
                    events.append(ev)
        if events is not None:
            self.stats_alerts += len(events)
        return events

    def _inspect_stream(self, pkt: Packet, flow: Flow, group: Group, always: tuple[int, ...],
                        payload: bytes) -> list[Event] | None:
        """`inspect` for a TCP segment the stream stage added to its session.

        As Suricata (PKT_STREAM_ADD): stream-capable rules inspect the
        reassembled stream, not this packet's payload; the others (tcp-pkt,
        no_stream, dsize, ...) the payload. The stream is seen through the
        inspection window `pkt.stream_data` (stream/tcp.py): bytes already
        inspected, then the new ones. The prefilter scans the new bytes and
        only as much of the old as the longest fast pattern needs to cross
        the boundary, so each byte is scanned once plus that overlap; a rule
        matches only where its match needs new bytes (stream.py's StreamRule),
        so nothing alerts twice on the same data.
        """
        # compiled: pattern ids as C integers index the owners tuple directly
        pid: cython.Py_ssize_t
        num: cython.Py_ssize_t
        owners: tuple
        window = pkt.stream_data
        old = pkt.stream_old
        pf = group.prefilter
        owners = group.owners
        nums = set(always)
        if pf is not None:
            if window is not None:
                region = window[old - self._pf_overlap:] if old > self._pf_overlap else window
                for pid in pf.scan(region):
                    nums.update(owners[pid])
            if payload and not (group.stream_capable if group.stream_capable >= 0
                                else self._all_stream_capable(group)):
                # the packet's own payload, for the rules that read it (tcp-pkt, dsize, ...):
                # IDS windows hold earlier, now acknowledged bytes (stream/tcp.py
                # `_raw_release`), and a segment that only joins the stream has no window.
                # Where every prefiltered rule of the group is stream-capable, no candidate
                # of this scan could match (they read the window only): not scanned.
                for pid in pf.scan(payload):
                    nums.update(owners[pid])
        if group.keep is not None:
            nums &= group.keep
        if not nums:
            return None
        rules: list = self._rules
        r: _Rule
        by_packet = False       # the current rule matched on the packet's payload, not the stream
        # the flow-end pseudo packet: stream rules only (Suricata skips packet rules on it)
        packet_rules = pkt.__class__ is not StreamEndPacket
        events: list[Event] | None = None
        passed = False
        lower: bytes | None = None      # the window lowercased, made for the first nocase content
        for num in sorted(nums):
            r = rules[num]
            s = r.sig
            # a prefilter-confirmed rule's header is settled by its group, as in `inspect`
            if not r.confirmed and not s.header_match(pkt, flow):
                continue
            pairs = r.stream_pairs
            by_packet = False
            if pairs is not None:
                # StreamRule SUFFIX for plain contents: each occurs in the new bytes
                # plus the longest content's length - 1 old ones
                if window is None:
                    continue
                start = old - r.how.back
                if start < 0:
                    start = 0
                if r.stream_nocase and lower is None:
                    lower = window.lower()
                ok = _contents_in(pairs, window, lower, start)
            elif r.capable:
                # window None: data held (out of order, or in IDS not yet acknowledged)
                ok = window is not None and r.how.matches(s, pkt, flow, window, old)
                if not ok and r.pkt_too and payload and packet_rules:
                    # no stream match: the packet's own payload (stream.py `packet_too`)
                    ok = by_packet = s.match(pkt, flow)
            else:
                ok = packet_rules and not r.stream_only and s.match(pkt, flow)
            if not ok:
                continue
            if s.post_actions:
                s.post_match(pkt, flow)
            if passed:
                continue
            if r.plain:
                ev = Event("alert", pkt.ts, pkt, flow, r.alert)
            else:
                ev = self._apply(num, s, pkt, flow)
                if ev is _PASS:
                    passed = True
                    ev, self._pass_alert = self._pass_alert, None    # a pass rule with `alert;`
                if ev is None:
                    continue
            if by_packet:
                ev = self._as_packet_match(ev)
            if events is None:
                events = [ev]
            else:
                events.append(ev)
        if events is not None:
            self.stats_alerts += len(events)
        return events

    def _as_packet_match(self, ev: Event) -> Event:
        """A stream rule's alert made on its packet's own payload (`packet_too`) is a packet
        match: EVE `stream` 0 and the packet's payload, as Suricata logs a match without
        PACKET_ALERT_FLAG_STREAM_MATCH. The rule's Alert with `match_on` packet, made once
        per shared Alert (keyed by identity: the engine's Alerts live as long as it)."""
        alert = ev.alert
        got = self._pkt_alerts.get(id(alert))
        if got is None:
            got = self._pkt_alerts[id(alert)] = dataclasses.replace(alert, match_on=MATCH_PACKET)
        return Event(ev.event_type, ev.ts, ev.pkt, ev.flow, got, ev.extra)

    # --- after a match ----------------------------------------------------------------

    def _apply(self, num: int, s: Signature, pkt: Packet, flow: Flow | None) -> Any:
        """Threshold/suppress and the action of a matching rule that is not a plain alert.

        Returns the alert event, None (no alert), or `_PASS` (Suricata's
        PacketAlertFinalize: a pass match and every later match of the packet
        are dropped from its alerts; the flow is passed unless the rule is
        packet-only).
        """
        res = self.thresholds.check(num, pkt, flow) if self._thr[num] else ALERT
        if res == NO_MATCH:
            return None
        action = s.action
        rated = False
        if self._rated[num]:
            new_action = self.thresholds.rate_action(num, pkt, flow)
            if new_action is not None:
                action, rated = new_action, True
        if action == "pass":
            self.stats_passed += 1
            if self.tx is not None:
                got = self._pass_at
                key = self._order_of.get((s.gid, s.sid))
                if got is None or got[0] is not pkt or key < got[1]:
                    self._pass_at = (pkt, key)
            # a pass after a drop of the same packet (action-order puts drop first) still
            # ends the packet's alerts, but its action is not applied: the flow is not
            # passed (Suricata's PacketAlertFinalize, skip_action_set)
            if (pkt.verdict is None and self._dropped is not pkt and flow is not None
                    and flow.action is None and self._flow_scope(num, pkt, flow)):
                flow.action = "pass"      # first of pass/drop/bypass to be set wins (RuleActionToFlow; detect/bypass.py)
            if s.force_alert and res == ALERT:
                self._pass_alert = Event("alert", pkt.ts, pkt, flow, self._alert(num, "allowed"))
            return _PASS
        if action == "drop" or action in REJECT_ACTIONS:
            self._block(num, s, pkt, flow, action)
            if rated and self.ips and pkt.drop_reason is None:
                # Suricata: PKT_DROP_REASON_RULES_THRESHOLD for a drop a rate_filter made
                pkt.drop_reason = "threshold detection_filter"
        if res == ALERT and not s.noalert:
            return Event("alert", pkt.ts, pkt, flow, self._alert(num, alert_action(action, self.ips)))
        self.stats_suppressed += 1
        return None

    def _window_alone(self, group: Any) -> bool:
        """Can a stream window with nothing inspected in front of it, on a packet without
        payload, be inspected on the common path (`inspect`) as if it were the packet's
        payload? Only if every rule of `group` reads the stream (stream-capable): each then
        inspects exactly those bytes, as `_inspect_stream` would, and no packet rule could see
        the packet's empty payload instead. (Remembered per group, in its C field
        `stream_alone`, which the caller reads first: no dict probe per stream packet.)"""
        got = self._alone_groups.get(group)
        if got is None:
            capable = self._stream_capable
            got = self._alone_groups[group] = all(capable[n] for n in group.members)
        group.stream_alone = 1 if got else 0
        return got

    def _all_stream_capable(self, group: Any) -> bool:
        """Are all of `group`'s prefiltered rules stream-capable, and none of them a rule
        that falls back to the packet (`packet_too`)? Then the payload needs no scan.

        Remembered per owners table, not per group: the port groups over a bucket's
        shared database (grouping.py) all have its owners, and each new one used to
        walk all of them again (py-spy, 10k rules: 1% of the replay). The table is
        kept alive by its groups, so its id stays its own while the engine lives."""
        owners = group.owners
        key = id(owners)
        got = self._capable_groups.get(key)
        if got is None:
            capable, pkt_too = self._stream_capable, self._pkt_too
            got = self._capable_groups[key] = all(capable[n] and not pkt_too[n] for own in owners for n in own)
        group.stream_capable = 1 if got else 0     # the caller reads it first (`_window_alone`)
        return got

    def settle_pass(self, pkt: Packet, flow: Flow | None, events: list[Event] | None,
                    tx_pkt: Any = None) -> list[Event] | None:
        """One alert queue for a packet's packet and transaction rule matches (`events`,
        both engines'), as Suricata's PacketAlertFinalize walks it in rule order: the
        first pass ends it. Its alerts of rules after the pass are dropped; a drop by a
        rule after the pass is undone (the packet goes through) and the flow is passed;
        a drop by a rule before it stands, and the pass's action is not applied.
        Called after the transaction rules of `pkt` (sensor.py `_on_app`), which saw it
        as `tx_pkt` (a view of it after an ACK released bytes: AppLayer.tx_packet)."""
        key = None
        got = self._pass_at
        if got is not None and got[0] is pkt:
            key = got[1]
        tx = self.tx
        if tx is not None:
            got = tx.passed
            if (got is not None and (got[0] is pkt or got[0] is tx_pkt)
                    and (key is None or got[1] < key)):
                key = got[1]
            tx.passed = None
        self._pass_at = None
        if key is None:
            return events
        order = self._order_of
        drop = pkt.drop_alert
        if pkt.verdict is not None and drop is not None:
            dkey = order.get((drop.gid, drop.signature_id))
            if dkey is not None and dkey > key:
                # the drop's rule comes after the pass: it never acted
                pkt.verdict = None
                pkt.drop_alert = None
                if self._dropped is pkt:
                    self._dropped = None
                    self.stats_dropped -= 1
                if flow is not None and flow.action in (None, "drop"):
                    flow.action = "pass"
        if events:
            kept = [ev for ev in events
                    if ev.alert is None or order.get((ev.alert.gid, ev.alert.signature_id), key) <= key]
            events = kept or None
        return events

    def dropped_by_rules(self, pkt: Packet) -> bool:
        """Did a drop/reject rule match `pkt` itself (so a flow drop it set is new)?"""
        return self._dropped is pkt

    def _flow_scope(self, num: int, pkt: Packet, flow: Flow | None) -> bool:
        """Does rule `num`'s pass/drop apply to the whole flow (ruletype.py's action scope)?"""
        if flow is None:
            return False
        t = self._type[num]
        return (t == IP_ONLY or t == LIKE_IP_ONLY or t == APP_LAYER or (t == STREAM and _in_stream(pkt, flow))
                or num in self._flow_scoped)

    def _block(self, num: int, s: Signature, pkt: Packet, flow: Flow | None, action: str) -> None:
        self._dropped = pkt             # a later pass of this packet is not applied (_apply)
        # A flow-scoped drop/reject marks the flow in both modes, as Suricata's
        # RuleActionToFlow does (the first of pass/drop set wins): its later packets are
        # not inspected, and its flow record says action "drop". IDS mode drops nothing.
        if flow is not None and flow.action is None and self._flow_scope(num, pkt, flow):
            flow.action = "drop"
        verdict = verdict_of(action, self.ips)
        if verdict is None:
            return
        if pkt.verdict is None or verdict == "reject":
            pkt.verdict = verdict
        if verdict == "reject" and pkt.reject_action is None:
            # who gets the reset / unreachable (respond/verdict.py) and EVE's verdict
            # reject_target: the first reject rule's own kind (rejectdst: to the server)
            pkt.reject_action = action
        if self.ips:
            self.stats_dropped += 1
            # The drop record of this packet names the rule that dropped it, even a
            # `noalert` one (Suricata keeps it apart from the alerts: p->alerts.drop).
            if pkt.drop_alert is None:
                pkt.drop_alert = self._alert(num, "blocked")

    def _alert(self, num: int, action: str) -> Alert:
        """Rule `num`'s shared Alert for EVE action "allowed" or "blocked"."""
        alert = self._blocked[num] if action == "blocked" else self._alerts[num]
        if alert is None:
            alert = self._blocked[num] = self._new_alert(self.sigs[num], action)
        return alert

    @staticmethod
    def _new_alert(s: Signature, action: str) -> Alert:
        return Alert(s.sid, s.msg, s.gid, s.rev, s.class_description, s.severity, action,
                     s.metadata or None, MATCH_STREAM if stream_capable(s) else MATCH_PACKET,
                     s.reference_urls or None)

    def defer_rules(self, nums: Iterable[int], decide: Any) -> None:
        """Worker i of N (hoststate.py): rules `nums` are decided elsewhere.

        Their matches go to `decide.check` (which then stands in for `self.thresholds`
        for every rule and forwards these), so a rule whose verdict needs one host's
        state across workers (host-tracked thresholds, hostbits, xbits) is counted in
        one place. One assignment per rule at start-up: the single-process engine is
        untouched."""
        self.thresholds = decide
        for num in nums:
            self._thr[num] = True
            self._plain[num] = False
            self._rules[num].plain = False

    # --- reporting -------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Counters under Suricata's dotted names where one exists."""
        from netsentry.rules.keywords.lua import stats as lua_stats
        return {
            "detect.alert": self.stats_alerts + (self.tx.stats_alerts if self.tx is not None else 0),
            "detect.alerts_suppressed": self.stats_suppressed,
            "detect.rules_loaded": len(self.sigs) + (len(self.tx.sigs) if self.tx is not None else 0),
            "detect.rule_groups": len(self.index.groups()),
            "detect.drops": self.stats_dropped,
            "detect.passes": self.stats_passed,
            # ours: pcre evaluations cut off by detect.pcre-time-limit (no Suricata name)
            "detect.pcre_timeouts": PCRE_LIMIT.timeouts - self._pcre_timeouts_before,
            # ours: (rule, flow) pairs no longer evaluated after repeated timeouts
            "detect.pcre_flow_disabled": PCRE_LIMIT.flows_disabled - self._pcre_disabled_before,
            **self.thresholds.stats(),
            **self.cache_stats,       # detect.rule_cache.hit/miss/rebuilt (rules/cache.py)
            **lua_stats(),            # detect.lua.* once a Lua rule ran (rules/keywords/lua.py)
        }

    def load_report(self) -> dict[str, Any]:
        """Rule counts per protocol bucket and group, prefilter backend, build time."""
        rep = self.index.report()
        backends = {type(g.prefilter).__name__ for g in self.index.groups() if g.prefilter is not None}
        rep.update(rules=len(self.sigs), build_seconds=round(self.build_seconds, 4),
                   prefilter=sorted(backends), ips=self.ips)
        return rep
