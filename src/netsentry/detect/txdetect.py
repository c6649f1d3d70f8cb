"""Transaction inspection: app-layer rules run on transactions, not packets.

A rule with a sticky buffer (`http.uri`), a legacy modifier (`http_uri`) or a
transaction keyword (`urilen`, `ssl_state`, ...) is inspected when a transaction
of its protocol progresses, in the direction of the packet that moved it
(Suricata's DetectRunTx). Per transaction and direction:

1. candidates: the rules of the flow's protocol without a fast pattern, plus
   those whose fast pattern the buffer's multi-pattern database finds in that
   buffer (one database per buffer and transform set, so the prefilter stays the
   first gate; a buffer not present yet costs nothing);
2. a candidate is verified on the header, its packet checks (`flow`, `flowbits`),
   its transaction checks and every buffer chain (a multi-buffer such as
   `dns.query` matches when any instance does); a buffer that is not there yet
   (the response of a request still in flight) fails the rule for now, and it is
   tried again when the transaction moves on;
3. a match is final for that rule and transaction: one alert per rule and
   transaction, as Suricata's per-transaction detect state.

Buffers are built once per transaction and direction, lazily, by the first
candidate that needs them (`Tx.cache`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from netsentry.applayer.registry import ABSENT, BUFFERS, INSPECTED_AS
from netsentry.applayer.tx import CANDIDATES_TC, CANDIDATES_TS
from netsentry.applayer.frames import ENABLED as FRAMES_ENABLED
from netsentry.applayer.frames import STREAM_FRAME_BUFFERS
from netsentry.config import get
from netsentry.detect.actions import DEFAULT_ACTION_ORDER, REJECT_ACTIONS, alert_action, order_key, verdict_of
from netsentry.detect.framedetect import FrameDetect
from netsentry.detect.homeclass import ALL_CLASSES, NEEDS_HEADER, HomeClasses
from netsentry.detect.prefilter import build_prefilter
from netsentry.detect.threshold import ALERT, NO_MATCH, ThresholdState
from netsentry.event import MATCH_TX, Alert, Event
from netsentry.rules.inspect import Content
from netsentry.rules.keywords.applayer import apply_transforms

if TYPE_CHECKING:  # pragma: no cover
    from netsentry.applayer.tx import Tx
    from netsentry.decode.packet import Packet
    from netsentry.flow.flow import Flow
    from netsentry.rules.signature import Signature


def get_buffer(tx: Tx, name: str, transforms: tuple[Any, ...], to_server: bool) -> Any:
    """The buffer `name` (after `transforms`) of `tx` seen from one direction, built once."""
    key = (name, transforms, to_server)
    cache = tx.cache
    if key in cache:
        return cache[key]
    buf = BUFFERS[name]
    if buf.proto != tx.proto and tx.proto in INSPECTED_AS and buf.proto:
        # an `alert http` rule on an HTTP/2 transaction: the buffer's HTTP/2 variant, if any
        buf = dict.get(BUFFERS, f"{name}@{tx.proto}")
        if buf is None:
            cache[key] = None
            return None
    value = buf.getter(tx, to_server)
    if value is not None and transforms:
        if buf.multi:
            value = [apply_transforms(v, transforms) for v in value]
        else:
            value = apply_transforms(value, transforms)
    if value is not None and not buf.multi and not isinstance(value, bytes):
        value = bytes(value)
    cache[key] = value
    return value


PAYLOAD = "pkt_data"      # the packet payload, in the prefilter grouping key

# what TxDetect._match still tests of a rule's header
HEADER_FULL, HEADER_PORTS, HEADER_NONE = 0, 1, 2


def _payload_fast_pattern(s: Signature) -> Content | None:
    """A content of the rule's packet-payload chain that must occur for the rule to match:
    its marked fast pattern when that is in the chain, else the longest positive content.
    A hit is then necessary, not sufficient (the chain still runs), so prefiltering on it
    never loses a match."""
    chain = s.payload_chain
    if chain is None:
        return None
    best = None
    for item in chain.items:
        if not isinstance(item, Content) or item.negated or not item.fp_bytes:
            continue
        if item.fast_pattern:
            return item
        if best is None or len(item.fp_bytes) > len(best.fp_bytes):
            best = item
    return best


class _BufferPrefilter:
    __slots__ = ("name", "transforms", "multi", "db", "owners", "overlap")

    def __init__(self, name: str, transforms: tuple[Any, ...], db: Any, owners: list[list[int]],
                 longest: int = 0) -> None:
        self.name = name
        self.transforms = transforms
        self.multi = BUFFERS[name].multi
        self.db = db
        self.owners = owners
        # how far back into an already scanned prefix a scan of appended bytes must
        # start so that a pattern crossing the old end is seen (_scan_grown)
        self.overlap = max(longest - 1, 0)


_GROWN = "\x00grown"   # tx.cache key head of _scan_grown's state; no buffer has this name,
                        # so Tx.touch(changed) keeps it while a body grows


def _scan_grown(cache: dict[Any, Any], pf: _BufferPrefilter, to_server: Any, buf: bytes) -> set[int]:
    """Pattern ids of `pf` found in `buf`, scanning only what was appended since the last
    scan of this buffer in this transaction and direction.

    A body (file.data, http.response_body) grows with every segment and its transaction
    is inspected on each: rescanning it whole made the scans quadratic in the body
    (ndpi-mix: 111 MB of file.data scanned for 3.5 MB of bodies). When the new buffer
    starts with the one scanned before, the patterns found there are still there, and any
    other occurrence ends in the new bytes, so it starts at most `overlap` bytes before
    them: the union is exactly what a scan of the whole buffer finds. Anything else (a
    buffer that changed in place, a transform that is not prefix-stable) is scanned whole.
    """
    key = (_GROWN, pf, to_server)
    prev = cache.get(key)
    if prev is not None:
        old, found = prev
        n = len(old)
        if len(buf) >= n and buf.startswith(old):
            if len(buf) > n:
                start = n - pf.overlap if n > pf.overlap else 0
                found = found.union(pf.db.scan(buf[start:]))
            cache[key] = (buf, found)
            return found
    found = set(pf.db.scan(buf))
    cache[key] = (buf, found)
    return found


class Inspected(set):
    """A transaction's finished rules (`num * 2 + direction`), tagged with the rule table
    (`TxDetect.ids`: (gid, sid) by number) those numbers index. A rule reload swaps engines
    while transactions are in flight; the new engine numbers its rules differently, so it
    translates a set made under another table by (gid, sid) on first sight
    (`TxDetect._adopt`): a rule kept across the reload stays finished with the transaction
    (no second alert), a new rule is inspected. (Suricata resets the detect state of a
    flow's transactions when the engine version changes, so kept rules may alert twice
    there.) The tag is the small id tuple, not the engine, so an in-flight transaction
    does not keep the old ruleset alive."""

    __slots__ = ("ids",)


class TxDetect:
    """The transaction rules of one ruleset (evaluation order kept), with their prefilters."""

    def __init__(self, sigs: Sequence[Signature], config: Mapping[str, Any], ips: bool, backend: str,
                 action_order: Sequence[str] = DEFAULT_ACTION_ORDER) -> None:
        self.sigs = list(sigs)
        # each rule's place in the one evaluation order of packet and transaction rules
        # (actions.order_key), and the first pass of the packet being inspected:
        # (packet, key), read by SignatureEngine.settle_pass
        self._keys = [order_key(s, action_order) for s in self.sigs]
        self.passed: tuple[Any, Any] | None = None
        self.ids = tuple((s.gid, s.sid) for s in self.sigs)     # Inspected's tag
        self._num_of = {key: num for num, key in enumerate(self.ids)}
        self.ips = ips
        address_vars = get(config, "vars.address-groups", {}) or {}
        self.thresholds = ThresholdState(self.sigs, get(config, "threshold", []) or [], address_vars)
        self._thr = [self.thresholds.applies(n) for n in range(len(self.sigs))]
        self._alerts = [Alert(s.sid, s.msg, s.gid, s.rev, s.class_description, s.severity, "allowed",
                              s.metadata or None, MATCH_TX, s.reference_urls or None) for s in self.sigs]
        self._blocked: dict[int, Alert] = {}
        # Addresses as a bit test on the packet's home class where the rule allows it, as the
        # packet engine does (homeclass.py); ports are tested apart, since transaction rules
        # are not grouped by port. ndpi-mix, 4.1 set: `header_match` (two address-matcher
        # searches per candidate) was 2% of the packet phase.
        homes = HomeClasses(config)
        self._home_bits = homes.home_bits if homes.contains is not None else None
        self._amask = homes.masks(self.sigs)
        self._ports_any = [s.sp.is_any and s.dp.is_any for s in self.sigs]
        # Candidates by (protocol, direction the rule is inspected in: 0, 1 or None for
        # either): a to-server packet never scans the buffers of rules inspected only
        # to the client (bench_applayer et: 10 buffer scans per transaction update before).
        self.always: dict[tuple[str, int | None], list[int]] = {}
        self.prefilters: dict[tuple[str, int | None], list[_BufferPrefilter]] = {}
        # Rules whose only prefilter content is in the packet payload (a `content` before
        # any sticky buffer, next to a tx keyword: ET Open's JARM rules with `tls.version`,
        # `content; urilen`): the packet payload's own database, so they are candidates only
        # when the packet carries that content, instead of on every transaction update
        # (ndpi-mix, ET Open: 6 JARM rules were verified on each of 6,254 TLS updates).
        self.payload_prefilters: dict[tuple[str, int | None], tuple[Any, list[list[int]]]] = {}
        groups: dict[tuple[Any, ...], list[tuple[bytes, bool, int]]] = {}
        # rules on a stream frame (`frame:tls.pdu`) are inspected per frame by FrameDetect,
        # never as transaction candidates (applayer/frames.py)
        frame_nums: list[int] = []
        for num, s in enumerate(self.sigs):
            if s.tx_chains and s.tx_chains[0][0] in STREAM_FRAME_BUFFERS:
                frame_nums.append(num)
                continue
            proto = (s.app_proto or "", s.tx_direction)
            fp = s.tx_fast_pattern
            chain_of_fp = None
            if fp is not None:
                for name, transforms, chain in s.tx_chains:
                    if any(it is fp for it in chain.items):
                        chain_of_fp = (name, transforms)
            if fp is None or chain_of_fp is None or not fp.fp_bytes:
                pfp = _payload_fast_pattern(s)
                if pfp is None:
                    self.always.setdefault(proto, []).append(num)
                else:
                    groups.setdefault((proto, PAYLOAD, ()), []).append((pfp.fp_bytes, pfp.nocase, num))
                continue
            groups.setdefault((proto, *chain_of_fp), []).append((fp.fp_bytes, fp.nocase, num))
        for (proto, name, transforms), entries in groups.items():
            patterns: dict[tuple[bytes, bool], int] = {}
            owners: list[list[int]] = []
            for pat, nocase, num in entries:
                key = (pat.lower() if nocase else pat, nocase)
                pid = patterns.get(key)
                if pid is None:
                    pid = patterns[key] = len(owners)
                    owners.append([])
                owners[pid].append(num)
            db = build_prefilter([(pat, nocase) for pat, nocase in patterns], backend)
            if name == PAYLOAD:
                self.payload_prefilters[proto] = (db, owners)
            else:
                longest = max(len(pat) for pat, _nocase in patterns)
                self.prefilters.setdefault(proto, []).append(
                    _BufferPrefilter(name, transforms, db, owners, longest))
        self._plans: dict[tuple[str, bool], tuple[tuple[int, ...], tuple[Any, ...], tuple[Any, ...]]] = {}
        # rules on an app-layer frame (`frame:NAME`): their alert describes the frame
        # (applayer/frames.py), by rule number
        self._frame_rules = {num: chain for num, s in enumerate(self.sigs)
                             for chain in s.tx_chains[:1] if chain[0].startswith("frame:")}
        self.frame_detect = FrameDetect(self, frame_nums, config) if frame_nums else None
        if not frame_nums:
            FRAMES_ENABLED.clear()      # parsers made from now on mark no frames
        self.stats_alerts = 0
        self.stats_tx = 0

    # --- per packet, after the app layer parsed it -------------------------------------------
    def inspect(self, pkt: Packet, flow: Flow, fresh_drop: bool = False) -> list[Event] | None:
        """`fresh_drop`: this packet's own packet rules just dropped the flow. Suricata
        applies a flow drop (RuleActionToFlow) after the whole packet was inspected, so its
        transaction rules still run on it; only later packets are not inspected."""
        st = flow.app
        if st is None or st.parser is None or pkt.no_inspect:
            return None
        action = flow.action
        if action == "pass":
            return None
        if action == "drop" and not fresh_drop:
            if self.ips:
                pkt.verdict = "drop"
            return None
        proto = flow.app_proto or ""
        to_server = bool(pkt.to_server) != st.reversed
        bit = 1 if to_server else 2
        events: list[Event] | None = None
        if self.frame_detect is not None:
            events = self.frame_detect.inspect(pkt, flow, st.parser, to_server)
        payload_hits: dict[Any, list[int]] = {}     # per candidate key, this packet's payload scanned once
        txs = st.parser.txs
        # the transactions below the release mark have no update pending unless one was
        # touched after its release (AppState.release_done, `relook`)
        flag = st.relook
        relook = flag is not None and flag[0]
        mark = st.release_from
        ckey = CANDIDATES_TS if to_server else CANDIDATES_TC
        ids = self.ids
        for i in range(0 if relook else mark, len(txs)):
            tx = txs[i]
            if not tx.updated & bit:
                continue
            tx.updated &= ~bit
            self.stats_tx += 1
            # the kept candidates (_candidates) are empty and no payload prefilter adds any:
            # nothing to verify until a buffer changes (ndpi-mix, ET Open: 8,283 of 8,291 TLS
            # updates, every DNS one)
            kept = tx.cache.get(ckey)
            if kept is not None and not kept[1] and not kept[2] and kept[0] is ids:
                continue
            evs = self._inspect_tx(pkt, flow, tx, proto, to_server, payload_hits)
            if evs:
                if events is None:
                    events = evs
                else:
                    events.extend(evs)
        if relook:
            # a released tx's other side may still wait for its own direction's packet
            late = False
            for i in range(mark):
                if txs[i].updated:
                    late = True
                    break
            flag[0] = late
        if events is not None:
            self.stats_alerts += len(events)
        return events

    def _plan(self, proto: str, to_server: bool) -> tuple[tuple[int, ...], tuple[Any, ...], tuple[Any, ...]]:
        """What `_candidates` looks at for one protocol and direction, merged once from the
        four (protocol or any, direction or either) keys: the rules always tried, the buffer
        prefilters with their hit-cache keys, the payload prefilters."""
        direction = 0 if to_server else 1
        keys = ((proto, direction), (proto, None), ("", direction), ("", None))
        for also in INSPECTED_AS.get(proto, ()):
            keys += ((also, direction), (also, None))
        always = tuple(sorted({n for k in keys for n in self.always.get(k, ())}))
        pfs = tuple((pf, (pf.name, pf, to_server)) for k in keys for pf in self.prefilters.get(k, ()))
        payload = tuple((k, self.payload_prefilters[k]) for k in keys if k in self.payload_prefilters)
        plan = self._plans[(proto, to_server)] = (always, pfs, payload)
        return plan

    def _candidates(self, tx: Tx, proto: str, to_server: bool, pkt: Packet,
                    payload_hits: dict[Any, list[int]]) -> list[int]:
        """The rules to verify on `tx` in one direction, in evaluation order.

        Kept in the tx's buffer cache per direction (`CANDIDATES_TS`/`_TC`) with the rule
        table it numbers: until a buffer changes (`Tx.touch` drops the list with it) the
        buffer prefilters' hits are the same, so most updates (TLS records after the
        hellos, an HTTP body's segments to the other side) reuse the list instead of
        merging and sorting it again; `_inspect_tx` also takes out what cannot match before
        a buffer changes. Only the packet payload's own prefilter is per packet."""
        cache = tx.cache
        ckey = CANDIDATES_TS if to_server else CANDIDATES_TC
        kept = cache.get(ckey)
        if kept is None or kept[0] is not self.ids:
            plan = self._plans.get((proto, to_server))
            if plan is None:
                plan = self._plan(proto, to_server)
            always, pfs, payload_pfs = plan
            found: set[int] = set(always)
            for pf, hkey in pfs:
                # hits kept in the tx's buffer cache: a buffer that did not change since
                # the last update (headers while the body grows) is not scanned again
                hits = cache.get(hkey)
                if hits is None:
                    buf = get_buffer(tx, pf.name, pf.transforms, to_server)
                    hits = []
                    if buf is not None:
                        owners = pf.owners
                        if pf.multi:
                            # each instance scanned as it grows (a response's file.data is
                            # one growing body): keyed by its position
                            for i, b in enumerate(buf):
                                for pid in _scan_grown(cache, pf, (to_server, i), b):
                                    hits.extend(owners[pid])
                        else:
                            for pid in _scan_grown(cache, pf, to_server, buf):
                                hits.extend(owners[pid])
                    cache[hkey] = hits
                if hits:
                    found.update(hits)
            kept = cache[ckey] = [self.ids, sorted(found), payload_pfs]
        cands = kept[1]
        extra: list[int] | None = None
        for key, (db, owners) in kept[2]:
            hits = payload_hits.get(key)
            if hits is None:
                hits = payload_hits[key] = []
                if pkt.payload_len:
                    for pid in db.scan(pkt.payload):
                        hits.extend(owners[pid])
            if hits:
                if extra is None:
                    extra = list(hits)
                else:
                    extra.extend(hits)
        if extra is not None:
            return sorted(set(cands).union(extra))
        return cands

    def _inspect_tx(self, pkt: Packet, flow: Flow, tx: Tx, proto: str, to_server: bool,
                    payload_hits: dict[Any, list[int]]) -> list[Event] | None:
        direction = 0 if to_server else 1
        done = tx.inspected
        if done is not None and done.ids is not self.ids:
            done = self._adopt(tx, done)
        events: list[Event] | None = None
        amask, ports_any = self._amask, self._ports_any
        hbit = -1          # 1 << the packet's home class, worked out for the first rule that can use it
        # candidates that cannot match this tx in this direction before one of its buffers
        # changes: finished, or failed on what a later packet of the direction cannot change
        # (protocol, direction, addresses and ports, a buffer's chain; `_match` None)
        drop: list[int] | None = None
        for num in self._candidates(tx, proto, to_server, pkt, payload_hits):
            # finished per rule, transaction and direction: a rule whose buffers exist on
            # both sides (dns.queries.rrname) alerts once each way, as Suricata's
            # per-direction detect state (suricata-verify dns-additionals-rrname)
            key = num * 2 + direction
            if done is not None and key in done:
                if drop is None:
                    drop = [num]
                else:
                    drop.append(num)
                continue
            s = self.sigs[num]
            if ((s.app_proto is not None and s.app_proto != proto
                 and s.app_proto not in INSPECTED_AS.get(proto, ()))
                    or (s.tx_direction is not None and s.tx_direction != direction)):
                if drop is None:
                    drop = [num]
                else:
                    drop.append(num)
                continue
            header = HEADER_FULL
            if not s.tx_both:
                m = amask[num]
                if m != NEEDS_HEADER:
                    if m != ALL_CLASSES:
                        if hbit < 0:
                            home_bits = self._home_bits
                            hbit = home_bits(pkt.src, pkt.dst)[0] if home_bits is not None else 0
                        if hbit and not m & hbit:
                            # the addresses fail: the flow's, in this direction, for good
                            if drop is None:
                                drop = [num]
                            else:
                                drop.append(num)
                            continue
                    if m == ALL_CLASSES or hbit:
                        header = HEADER_NONE if ports_any[num] else HEADER_PORTS
            ok = self._match(s, pkt, flow, tx, to_server, header)
            if not ok:
                if ok is None:
                    if drop is None:
                        drop = [num]
                    else:
                        drop.append(num)
                continue
            at_hook = s.tx_at_hook
            if at_hook is None or not at_hook(tx, to_server):
                if done is None:
                    done = tx.inspected = Inspected()
                    done.ids = self.ids
                done.add(key)
                if drop is None:
                    drop = [num]
                else:
                    drop.append(num)
            # else Suricata's hook rule without an inspection engine of its own (detect.c
            # DetectRunTxInspectRule): a match at exactly the hook's state keeps no state, so
            # it matches again on the tx's next update until the tx moves past the hook
            if s.post_actions:
                s.post_match(pkt, flow)
            ev = self._apply(num, s, pkt, flow, tx)
            if ev is not None:
                if events is None:
                    events = [ev]
                else:
                    events.append(ev)
        if drop is not None:
            kept = tx.cache.get(CANDIDATES_TS if to_server else CANDIDATES_TC)
            if kept is not None and kept[0] is self.ids:
                gone = set(drop)
                kept[1] = [n for n in kept[1] if n not in gone]
        return events

    def _adopt(self, tx: Tx, done: Inspected) -> Inspected:
        """`done` was filled by another engine (before a rule reload): the same rules, by
        (gid, sid), are finished under this engine's numbers."""
        old_ids = done.ids
        num_of = self._num_of
        adopted = Inspected()
        adopted.ids = self.ids
        for key in done:
            num = num_of.get(old_ids[key >> 1])
            if num is not None:
                adopted.add(num * 2 + (key & 1))
        tx.inspected = adopted
        return adopted

    @staticmethod
    def _match(s: Signature, pkt: Packet, flow: Flow, tx: Tx, to_server: bool, header: int = 0) -> bool | None:
        """Verify rule `s` on `tx`. `header`: HEADER_FULL (addresses and ports), HEADER_PORTS
        (the addresses passed on the home class), HEADER_NONE (nothing left to test).

        True: a match. False: no match on this packet. None: no match on any packet of
        this direction until one of the tx's buffers changes: the header (the flow's
        addresses and ports, fixed per direction) or a buffer's chain failed (a chain is a
        function of the buffer's bytes, and a buffer is kept until `Tx.touch` drops it), so
        `_inspect_tx` takes the rule out of the tx's kept candidates."""
        if s.tx_both:
            # `=>`: the header names the request's direction, whatever packet finished the tx
            if not (s.src.contains(flow.client) and s.dst.contains(flow.server)
                    and s.sp.contains(flow.client_port) and s.dp.contains(flow.server_port)):
                return None
        elif header == HEADER_FULL:
            if not s.header_match(pkt, flow):
                return None
        elif header == HEADER_PORTS:
            if not (s.sp.contains(pkt.sp) and s.dp.contains(pkt.dp)):
                return None
        for check in s.packet_checks:
            if not check(pkt, flow):
                return False
        for _proto, _direction, fn in s.tx_checks:
            if not fn(tx, to_server):
                return False
        for name, transforms, chain in s.tx_chains:
            buf = get_buffer(tx, name, transforms, to_server)
            if buf is None:
                return None
            if buf is ABSENT:
                continue            # `absent: or_else` on a buffer that is not there
            if BUFFERS[name].multi:
                for b in buf:
                    if chain.run(b):
                        break
                else:
                    return None
            elif not chain.run(buf):
                return None
        if s.payload_chain is not None:
            if not pkt.payload_len or not s.payload_chain.run(pkt.payload):
                return False
        for check in s.final_checks:
            if not check(pkt, flow):
                return False
        return True

    def _apply(self, num: int, s: Signature, pkt: Packet, flow: Flow, tx: Tx) -> Event | None:
        res = self.thresholds.check(num, pkt, flow) if self._thr[num] else ALERT
        if res == NO_MATCH:
            return None
        action = s.action
        if action == "pass":
            key = self._keys[num]
            got = self.passed
            if got is None or got[0] is not pkt or key < got[1]:
                self.passed = (pkt, key)
            # first of pass/drop to be set wins, and a pass does not undo a drop of this
            # packet by itself: SignatureEngine.settle_pass weighs the two by rule order
            if flow.action is None and pkt.verdict is None:
                flow.action = "pass"
            if s.force_alert and res == ALERT:     # `alert;`: alert, then pass
                return Event("alert", pkt.ts, pkt, flow, self._alerts[num], extra=self._alert_extra(num, pkt, flow, tx))
            return None
        alert = self._alerts[num]
        if action == "drop" or action in REJECT_ACTIONS:
            verdict = verdict_of(action, self.ips)
            if verdict is not None:
                if pkt.verdict is None or verdict == "reject":
                    pkt.verdict = verdict
                if self.ips:
                    alert = self._blocked.get(num) or self._blocked.setdefault(
                        num, Alert(s.sid, s.msg, s.gid, s.rev, s.class_description, s.severity,
                                   alert_action(action, True), s.metadata or None, MATCH_TX,
                                   s.reference_urls or None))
                    if pkt.drop_alert is None:
                        pkt.drop_alert = alert
                    flow.action = "drop"
        if res != ALERT or s.noalert:
            return None
        return Event("alert", pkt.ts, pkt, flow, alert, extra=self._alert_extra(num, pkt, flow, tx))

    def _alert_extra(self, num: int, pkt: Packet, flow: Flow, tx: Tx | None) -> dict[str, Any]:
        if tx is None:
            return {}           # a stream frame outside any transaction (detect/framedetect.py)
        extra = alert_extra(tx)
        if self._frame_rules:
            chain = self._frame_rules.get(num)
            if chain is not None:
                from netsentry.applayer.frames import frame_object, matched_frame
                st = flow.app
                to_server = bool(pkt.to_server) != (st is not None and st.reversed)
                name, transforms, run = chain
                frame = matched_frame(name, transforms, run, tx, to_server, get_buffer)
                if frame is not None:
                    extra["frame"] = frame_object(name, frame, tx, to_server, pkt)
        return extra

    def stats(self) -> dict[str, int]:
        return {"detect.alert_tx": self.stats_alerts}


def alert_extra(tx: Tx) -> dict[str, Any]:
    """What Suricata adds to an alert on a transaction: `tx_id` and the protocol's object."""
    objects = getattr(tx, "alert_objects", None)
    if objects is not None:
        return {"tx_id": tx.tx_id, **objects()}      # smtp + email + files, ftp_data (applayer/smtp.py, ftp.py)
    alert_eve = getattr(tx, "alert_eve", None)
    return {"tx_id": tx.tx_id, tx.proto: alert_eve() if alert_eve is not None else tx.eve()}


class TxGuess:
    """Which transaction a packet or stream rule's alert carries (Suricata's
    DetectRulePacketAppendAlert), or none.

    A rule without app-layer keywords matches a packet, not a transaction, so its
    alert names no transaction, except:

    - over UDP, a rule naming an app-layer protocol (`alert dns ... content`): every
      datagram is one message, so the transaction detection is at in that direction
      is the packet's own;
    - with `detect.guess-applayer-tx` (Suricata 8, default off), any flow whose
      transaction at that point is the only live one of the direction: the one after
      it may exist only when it is a one-way transaction of the other direction (a
      DNS response after the request). Such an alert says `tx_guessed: true`.

    "The transaction detection is at" is Suricata's inspect id per direction: the
    first transaction not yet finished in that direction when detection last ran on
    a packet of that direction (a transaction finished, or one-way the other way,
    is passed at the end of each packet: `advance`). A transaction is attached to at
    most `detect.stream-tx-log-limit` (default 4) alerts this way, so a long stream
    does not log the same transaction over and over.
    State per flow: `AppState.guess` = [inspect id to client, to server, {tx id:
    alerts}, per transaction the directions it was inspected in (bit 1 to client, 2 to
    server), the first transaction not freed], made once there is a transaction."""

    __slots__ = ("guess", "limit", "udp_app", "protos")

    def __init__(self, guess: bool, limit: int, udp_app: frozenset[tuple[int, int]],
                 protos: frozenset[str]) -> None:
        self.guess = guess
        self.limit = limit
        self.udp_app = udp_app      # (gid, sid) of packet rules naming an app-layer protocol
        self.protos = protos        # ... and their protocols (parsed for them: Sensor consumers)

    @classmethod
    def build(cls, sigs: Sequence[Signature], config: Mapping[str, Any]) -> TxGuess | None:
        """The guesser a ruleset needs, or None (nothing to attach: no per-packet cost)."""
        guess = bool(get(config, "detect.guess-applayer-tx", False))
        app = [s for s in sigs if s.app_proto is not None and not s.tx_rule
               and (s.ip_protos is None or 17 in s.ip_protos)]
        if not guess and not app:
            return None
        return cls(guess, int(get(config, "detect.stream-tx-log-limit", 4)),
                   frozenset((s.gid, s.sid) for s in app), frozenset(s.app_proto for s in app))

    def inspector(self, inspect: Any) -> Any:
        """`inspect` (the packet engine's) with this guess applied to its alerts."""
        attach, advance = self.attach, self.advance

        def guessing_inspect(pkt: Packet, flow: Flow | None) -> Any:
            events = inspect(pkt, flow)
            if flow is not None and flow.app is not None and flow.app.parser is not None:
                if events:
                    attach(events, pkt, flow)
                advance(pkt, flow)
            return events

        protos = self.protos

        def udp_inspect(pkt: Packet, flow: Flow | None) -> Any:
            # without guessing only UDP flows of the rules' protocols can name a
            # transaction: every other packet costs one test more than `inspect`
            events = inspect(pkt, flow)
            if pkt.proto == 17 and flow is not None and flow.app_proto in protos and flow.app.parser is not None:
                if events:
                    attach(events, pkt, flow)
                advance(pkt, flow)
            return events
        return guessing_inspect if self.guess else udp_inspect

    def attach(self, events: list[Event], pkt: Packet, flow: Flow) -> None:
        st = flow.app
        txs = st.parser.txs
        if not txs:
            return
        ts = bool(pkt.to_server) != st.reversed
        g = st.guess
        tx_id = g[ts] if g is not None else 0
        if tx_id >= len(txs):
            return
        udp = flow.proto == 17
        only = self.guess and not udp and _only_live(txs, tx_id, ts)
        for ev in events:
            alert = ev.alert
            if ev.event_type != "alert" or alert is None or ev.extra is not None:
                continue
            if not (only or (udp and (alert.gid, alert.signature_id) in self.udp_app)):
                continue
            if g is None:
                g = st.guess = [0, 0, {}, bytearray(), 0]
            counts = g[2]
            n = counts.get(tx_id, 0)
            if n >= self.limit:
                continue
            counts[tx_id] = n + 1
            extra = alert_extra(txs[tx_id])
            if not udp:
                extra["tx_guessed"] = True
            ev.extra = extra

    @staticmethod
    def advance(pkt: Packet, flow: Flow) -> None:
        """After a packet's detection (Suricata's AppLayerParserSetTransactionInspectId and
        the transaction clean-up): the transactions finished in the packet's direction
        are inspected in it (a one-way transaction of the other direction is never
        inspected in this one); a transaction finished and inspected both ways is freed,
        and neither direction's detection is before the first one not freed."""
        st = flow.app
        txs = st.parser.txs
        n = len(txs)
        g = st.guess
        if g is None:
            if not n:
                return
            g = st.guess = [0, 0, {}, bytearray(), 0]
        ts = bool(pkt.to_server) != st.reversed
        bit = 2 if ts else 1
        bits = g[3]
        if len(bits) < n:
            bits.extend(bytes(n - len(bits)))
        i = g[ts]
        while i < n:
            tx = txs[i]
            if not (tx.done[ts] or tx.one_way() == (not ts)):
                break
            bits[i] |= bit
            i += 1
        g[ts] = i
        m = g[4]
        while m < n:
            tx = txs[m]
            ow = tx.one_way()
            seen = bits[m] | (0 if ow is None else 1 if ow else 2)
            if seen != 3 or not tx.complete():
                break
            m += 1
        if m > g[4]:
            g[4] = m
            g[0] = max(g[0], m)
            g[1] = max(g[1], m)


def _only_live(txs: Sequence[Tx], tx_id: int, ts: bool) -> bool:
    """Suricata's IsOnlyTxInDirection: `tx_id` is the newest transaction, or the one after
    it is one-way in the other direction."""
    n = len(txs)
    if n == tx_id + 1:
        return True
    return n == tx_id + 2 and txs[tx_id + 1].one_way() == (not ts)
