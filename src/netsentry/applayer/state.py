"""Per-flow app-layer state and the `AppLayer` stage: protocol detection by content, then parsing.

Protocol detection (Suricata's app-layer-detect-proto.c, simplified): the first
bytes of each direction are offered to every registered protocol's probe for the
flow's IP protocol; the first that says yes names the flow (`flow.app_proto`)
and gets all bytes seen so far, in arrival order. The port is not needed: HTTP
on port 8100 is HTTP. For UDP, a datagram on a protocol's port whose probe
cannot say no is enough (DNS on 53). When every probe said no in both
directions, or in one direction after `PROBE_LIMIT` bytes, detection has failed
and the flow costs nothing more.

TCP bytes come from the stream stage (stream/tcp.py calls `AppLayer.feed` with
new in-order bytes once the sensor attached it); `inorder_packet` is the
fallback when the stream stage is off (`stream.reassembly` disabled): in-order
payloads only, retransmitted bytes trimmed, no out-of-order queue.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from netsentry.applayer.registry import (ALIASES, CHANGERS, EXPECTATIONS, FEEDS, PROTOCOLS, Encrypted, Incomplete, ParserError, Protocol, ProtocolChange,
                                         load_protocols,
                                         take_expectation)
from netsentry.config import ConfigError, get

if TYPE_CHECKING:  # pragma: no cover
    from netsentry.applayer.tx import Tx
    from netsentry.decode.packet import Packet
    from netsentry.flow.flow import Flow

PROBE_LIMIT = 4096
# the generic app-layer events (Suricata's APPLAYER_*), kept in `pkt.events` for
# `app-layer-event:applayer_*` (rules/keywords/applayer.py)
APPLAYER_MISMATCH = "applayer.applayer_mismatch_protocol_both_directions"
APPLAYER_ONE_DIRECTION = "applayer.applayer_detect_protocol_only_one_direction"
APPLAYER_UNEXPECTED = "applayer.applayer_unexpected_protocol"
APPLAYER_NO_TLS = "applayer.applayer_no_tls_after_starttls"
APPLAYER_EVENTS = frozenset({APPLAYER_MISMATCH, APPLAYER_ONE_DIRECTION, APPLAYER_UNEXPECTED, APPLAYER_NO_TLS})
_MASK = 0xFFFFFFFF
_SYN, _RST, _FIN = 0x02, 0x04, 0x01



_DATA, _GAP = 0, 1                   # AppState.held item kinds
_PD_TS, _PD_TC = 1, 2                # pkt.pd_done bits (AppLayer._pd_complete); << 2: waiting for an ACK
_PD_WAIT_SWEEP = 4096                # AppLayer._pd_wait entries before ended flows are swept out
_ACK = 0x10
_PER_TRANSPORT = frozenset({"dns", "dcerpc", "sip", "llmnr", "krb5", "nfs", "enip", "ldap"})   # Suricata counts per transport
_TRANSPORT_SUFFIX = {6: "_tcp", 17: "_udp"}

class AppState:
    """`flow.app`: detection progress, the protocol's parser, and which transactions were logged."""

    __slots__ = ("parser", "pending", "refused", "failed", "seq", "log_from", "dirty", "reversed", "syn",
                 "release_from", "done", "seen", "held", "wake", "released", "relook", "guess", "dir_protos")

    def __init__(self) -> None:
        # One AppState per TCP/UDP flow (bench-1m: 219k), so no list is made up front:
        # `pending` on the first bytes detection has to wait with, `seq` only without the
        # stream stage; `refused` is a bit per direction (1 << to_server).
        self.parser: Any = None
        self.pending: list[tuple[bool, bytes]] | None = None
        self.refused = 0                    # every probe said no: bit 1 << to_server
        self.failed = False
        self.seq: list[int | None] | None = None
        self.log_from = 0
        self.dirty = False                  # a parser saw data since detect/records last looked
        self.reversed = False               # midstream: the flow's first packet came from the server
        self.syn = False                    # a SYN was seen (the flow's direction is certain)
        self.release_from = 0
        # [True]: a transaction below `release_from` was touched after its release (Tx.owner):
        # the next transaction inspection walks every transaction, not only those from the
        # mark; made on the first release (a flow that never releases one has none)
        self.relook: list[bool] | None = None
        # nothing more to do with this flow's bytes: detection failed, or the protocol's
        # parser is nobody's (_NULL_PARSER); `feed` then returns at once
        self.done = False
        # TCP directions whose first bytes protocol detection looked at (bit 1 << to_server):
        # the other side's first bytes are probed once the protocol is known, for the
        # generic app-layer events (mismatch, only one direction)
        self.seen = 0
        # IDS: bytes waiting for their receiver's ACK, by to_server (AppLayer._hold), and the
        # directions whose next packet must run transaction detection (bit 1 << to_server)
        self.held: tuple[list[Any], list[Any]] | None = None
        self.wake = 0
        # the bytes released on the other side's packet, by to_server, for the payload part of
        # transaction rules inspected on the side's next packet (AppLayer.tx_packet)
        self.released: list[bytes] | None = None
        # detect/txdetect.py TxGuess: detection's transaction per direction and the guessed
        # alerts per transaction; only with detect.guess-applayer-tx or UDP app-layer rules
        self.guess: list[Any] | None = None
        # the protocol each direction was detected as, by to_server (Suricata's alproto_ts /
        # alproto_tc), set only when the second direction's first bytes are another
        # protocol's (_other_side); None: both are the flow's app_proto
        self.dir_protos: list[str] | None = None

    @property
    def txs(self) -> list[Tx]:
        return self.parser.txs if self.parser is not None else []

    def release_done(self, records: bool) -> None:
        """Free the bulk (bodies, buffers) of transactions detection and logging are done
        with, so a keep-alive flow holds one transaction's bodies, not all of them.

        A released transaction had no update pending, and only `Tx.touch` gives it one
        again, which then sets `relook[0]` (the tx's `owner`): so transaction detection
        walks the transactions from `release_from` on and finds every updated one
        (ndpi-mix: DNS flows of hundreds of messages walked all of them on each new one,
        3% of the packet phase with ET Open)."""
        txs = self.txs
        i = self.release_from
        flag = self.relook
        while i < len(txs):
            tx = txs[i]
            if not tx.complete() or tx.updated or (records and not tx.logged):
                break
            tx.release()
            if flag is None:
                flag = self.relook = [False]
            tx.owner = flag
            i += 1
        self.release_from = i


class _SharedAppState(AppState):
    """An `AppState` many flows hold at once: its fields never change (a write is ignored).

    Most flows end up in one of a few states that say everything the rest of the
    sensor reads from them: a SYN was seen and no byte yet (`SYN_SEEN`), detection
    failed (`DONE_FAILED`), or the protocol was detected but nobody reads its
    transactions (`DONE_NULL`: bench-1m, every flow with bench.rules). Such a flow
    points at the shared state instead of holding an `AppState` of its own (120 B per
    flow; bench/README.md "Flow memory"). A state that has to change (the first bytes
    after a SYN) is replaced by a flow-own `AppState`, never written in place."""

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        pass            # shared: see the class docstring

    @classmethod
    def make(cls, **fields: Any) -> _SharedAppState:
        st = cls.__new__(cls)
        proto = AppState()
        for name in AppState.__slots__:
            object.__setattr__(st, name, fields.get(name, getattr(proto, name)))
        return st


# a TCP SYN seen, no byte yet (flows that never carry payload stop here)
SYN_SEEN = _SharedAppState.make(syn=True)


class AppLayer:
    """The app-layer stage, built once from the configuration (section `app-layer`)."""

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        config = config or {}
        load_protocols()
        self.settings: dict[str, Any] = {}
        # each protocol's settings from its `configure` (HTTP's: applayer/http.py)
        for p in PROTOCOLS.values():
            if p.configure is not None:
                self.settings[p.name] = p.configure(config)
        self.by_ipproto: dict[int, list[Protocol]] = {}
        # protocols the configuration turns off (`app-layer.protocols.NAME.enabled: no`, as the
        # protocol's settings say): neither detected nor handed a flow by another's parser
        self.disabled = frozenset(name for name, v in self.settings.items()
                                  if isinstance(v, dict) and v.get("enabled") is False)
        for p in PROTOCOLS.values():
            if p.name in self.disabled:
                continue
            for ipp in p.ipprotos:
                self.by_ipproto.setdefault(ipp, []).append(p)
        # (ip protocol, server port) -> probing order with that port's protocols first.
        # A protocol's ports: its registered ones, or Suricata's
        # app-layer.protocols.NAME.{tcp,udp}.detection-ports.dp where the config sets it
        self.ports: dict[tuple[int, str], frozenset[int]] = {}
        for p in PROTOCOLS.values():
            for ipp in p.ipprotos:
                dp = get(config, f"app-layer.protocols.{p.name}.{_TRANSPORT_NAME.get(ipp, '')}.detection-ports.dp", None)
                self.ports[(ipp, p.name)] = _ports(dp, p.ports)
        self.port_order: dict[tuple[int, int], tuple[Protocol, ...]] = {}
        # the probing order of a flow on no protocol's port: without the protocols Suricata
        # detects by port only (Protocol.ports_only)
        self.probe_any: dict[int, list[Protocol]] = {
            ipp: [p for p in protos if not p.ports_only] for ipp, protos in self.by_ipproto.items()}
        for ipp, protos in self.by_ipproto.items():
            for port in {port for p in protos for port in self.ports[(ipp, p.name)]}:
                first = [p for p in protos if port in self.ports[(ipp, p.name)]]
                self.port_order[(ipp, port)] = tuple(first + [p for p in self.probe_any[ipp] if p not in first])
        self.stats_flows: dict[str, int] = {}
        self.stats_errors: dict[str, int] = {}
        self.on_error: Any = None        # app-layer.error-policy (exception_policy.py): on_error(flow, pkt)
        # a session turned encrypted (registry.Encrypted): on_encrypted(flow, pkt) inspects what
        # the raw stream still holds (Sensor wiring)
        self.on_encrypted: Any = None
        # as Suricata's stream engine: without stream.midstream a TCP session whose
        # handshake was not seen is not tracked, so its bytes never reach the app layer
        self.midstream = bool(get(config, "stream.midstream", False))
        self.tcp_from_stream = False     # the stream stage feeds TCP bytes (Sensor.attach_applayer)
        # IDS: a direction whose other side sent nothing yet is parsed at once (`_hold`) only
        # with stream.async-oneside (Suricata moves such a session's ACK with the seen side's
        # data); otherwise its bytes wait for an ACK or the flow's end, as in Suricata
        self.oneside_now = bool(get(config, "stream.async-oneside", False))
        self.inline = bool(get(config, "stream.inline", False))
        # protocols whose transactions someone reads (tx rules, EVE records); None: all.
        # For the others the flow's protocol is still detected (app_proto, app-layer-protocol)
        # but its bytes are not parsed: that work would feed nobody.
        self.consumers: frozenset[str] | None = None
        # protocol-detection-only rules are loaded: mark the packets on which detection of a
        # direction completed (`pkt.pd_done`, _pd_complete); flows waiting to hand the mark
        # to a packet, by flow: bits _PD_READY_* / _PD_ACK_* (few at a time: a mark waits
        # for one or two packets)
        self.pd_marks = False
        self._pd_wait: dict[Any, int] = {}
        self.changing: dict[Any, Any] = {}      # protocol change under way (_change)

    def set_consumers(self, protos: frozenset[str | None] | None) -> None:
        if protos is not None and None in protos:
            protos = None           # a transaction rule of no one protocol (`alert tcp ... file.data`)
        if protos is not None:
            protos = protos.union(*(FEEDS.get(p, ()) for p in protos))
            if protos:
                protos = protos | CHANGERS
        self.consumers = protos

    def encryption_watch(self) -> frozenset[str]:
        """The protocols whose encryption turns payload inspection off (registry.Encrypted):
        while packet rules run they are parsed to know when, read or not (Sensor wiring)."""
        return frozenset(name for name in ("tls", "ssh")
                         if self.settings.get(name, {}).get("encryption-handling", "full") != "full")

    def set_rule_buffers(self, names: frozenset[str]) -> None:
        """The buffers the loaded rules read (Sensor wiring, again on reload): a protocol's
        settings that depend on them are settled here, once, not per packet."""
        for p in PROTOCOLS.values():
            if p.rules_known is not None and p.name in self.settings:
                p.rules_known(self.settings[p.name], names)

    def set_pd_marks(self, on: bool) -> None:
        """Whether protocol-detection-only rules need `pkt.pd_done` (Sensor wiring)."""
        self.pd_marks = on
        if not on:
            self._pd_wait.clear()

    # --- "protocol detection completed on this packet" ---------------------------------------
    # Suricata (app-layer.c FlagPacketFlow, flow.c): when detection of a direction completes
    # (its protocol found, or given up), the packet carrying that direction's data is marked
    # (PKT_PROTO_DETECT_TS_DONE / _TC_DONE) for UDP and inline TCP; in IDS mode a direction's
    # bytes reach detection once the other side acknowledged them, so the flow keeps the
    # mark and hands it to the direction's next packet after that acknowledgement. Any
    # mark for the other direction waits for that direction's next packet.
    def _pd_complete(self, flow: Flow, to_server: bool, pkt: Packet | None) -> None:
        if not self.pd_marks:
            return
        bit = _PD_TS if to_server else _PD_TC
        wait = self._pd_wait
        if len(wait) > _PD_WAIT_SWEEP:
            # marks of flows that ended before their next packet came
            for f in [f for f in wait if f.end_reason]:
                del wait[f]
        if flow.proto == 6 and not self.inline and self.tcp_from_stream:
            self._pd_wait[flow] = self._pd_wait.get(flow, 0) | (bit << 2)      # wait for the ACK
        elif pkt is not None and bool(pkt.to_server) == to_server:
            # the packet and the flow: the flow's mark goes on to the direction's next
            # packet too (FlagPacketFlow sets both; flow.c hands the flow's on)
            pkt.pd_done = getattr(pkt, "pd_done", 0) | bit
            self._pd_wait[flow] = self._pd_wait.get(flow, 0) | bit
        else:
            self._pd_wait[flow] = self._pd_wait.get(flow, 0) | bit

    def _pd_packet(self, pkt: Packet, flow: Flow) -> None:
        """A packet of a flow with a waiting mark: an acknowledgement moves the other side's
        mark on; the direction's own ready mark lands here."""
        wait = self._pd_wait[flow]
        if pkt.to_server:
            own, other = _PD_TS, _PD_TC
        else:
            own, other = _PD_TC, _PD_TS
        if wait & own:
            done = getattr(pkt, "pd_done", 0)
            if not done & own:
                pkt.pd_done = done | own
                wait &= ~own
            # else: the mark of this packet's own detection (inline TCP: the stream stage
            # fed it first), whose flow mark is for the direction's next packet
        if wait & (other << 2):
            wait = (wait & ~(other << 2)) | other
        if wait:
            self._pd_wait[flow] = wait
        else:
            del self._pd_wait[flow]

    @property
    def gated(self) -> bool:
        """IDS with the stream stage feeding TCP: a direction's bytes are parsed once the
        other side acknowledged them (Suricata's IDS reassembly), not on arrival."""
        return self.tcp_from_stream and not self.inline and (self.consumers is None or bool(self.consumers))

    # --- the interface the stream stage calls ---------------------------------------------
    def feed(self, flow: Flow, to_server: bool, data: bytes, pkt: Packet | None = None) -> None:
        """New in-order bytes of one direction (TCP) or one datagram (UDP)."""
        st = flow.app
        if st is None:
            st = flow.app = AppState()
        elif st.done:
            # detection failed or nobody reads the protocol (bench-1m: every flow once
            # detected, since bench.rules has no transaction rules)
            return
        elif st is SYN_SEEN:
            # the first bytes after the handshake: the flow gets a state of its own
            st = flow.app = AppState()
            st.syn = True
        parser = st.parser
        if parser is not None:
            if self.changing and flow in self.changing:
                if self._changed(flow, st, to_server, data, pkt):
                    return
            if st.seen != 3 and data:
                bit = 1 << to_server
                if not st.seen & bit:
                    self._other_side(st, flow, to_server, data, pkt)
                    if parser is _NULL_PARSER and flow.app.dir_protos is None:
                        # detection only: both sides seen, nothing of the flow's state is read again
                        flow.app = DONE_NULL
                        return
                    st.seen |= bit
            if parser is _NULL_PARSER:
                return          # the same side again: still waiting for the other's first bytes
            if self.gated and flow.proto == 6 and self._hold(st, flow, to_server, _DATA, data):
                return
            try:
                parser.parse(data, to_server != st.reversed, pkt)
            except ProtocolChange as change:
                self._change(flow, change, pkt)
            except ParserError:
                self._error(flow, pkt)
            except Encrypted as enc:
                self._encrypted(flow, enc, pkt)
            except Incomplete:
                return          # no app-layer update (registry.Incomplete)
            st.dirty = True
            return
        if not data:
            return
        if st.pending is None:
            st.pending = [(to_server, data)]
        else:
            st.pending.append((to_server, data))
        # a connection another flow's parser announced (FTP data): its protocol without probing
        hit = take_expectation(flow.client, flow.server, flow.server_port) if EXPECTATIONS and flow.proto == 6 else None
        proto = PROTOCOLS[hit[0]] if hit is not None else self._detect(st, flow, to_server, pkt)
        if proto is None:
            return
        parser = st.parser = self._new_parser(proto)
        if hit is not None and parser is not _NULL_PARSER:
            hit[1](parser, hit[2])
        flow.app_proto = proto.name
        if self.changing and flow in self.changing:
            self._detected(flow, parser, pkt)
        if self.pd_marks:
            self._pd_complete(flow, to_server, pkt)
            if flow.proto == 17:
                self._pd_complete(flow, not to_server, pkt)   # UDP: both directions at once
        # Suricata's app_layer.flow counter names: a protocol it parses over both TCP and
        # UDP is counted per transport (dns_tcp, dns_udp); the others by their name
        name = proto.name + _TRANSPORT_SUFFIX.get(flow.proto, "") if proto.name in _PER_TRANSPORT else proto.name
        self.stats_flows[name] = self.stats_flows.get(name, 0) + 1
        pending, st.pending = st.pending, None
        if flow.proto == 6:
            st.seen = 1 << to_server
            other = next((c for ts, c in pending if ts != to_server), None)
            if other is not None:
                st.seen = 3
                self._other_side(st, flow, not to_server, other, pkt)
        else:
            st.seen = 3
        if parser is _NULL_PARSER:
            # detection only: no transactions ever, so nothing for detect/ or the records;
            # until the other side's first bytes were probed (the generic events) the flow
            # points at a shared state that says which side it waits for (no memory of its own)
            # (only with the stream stage: without it `inorder_packet` keeps sequence numbers
            # in the flow's own state, which a shared one cannot hold)
            flow.app = (DONE_NULL if st.seen == 3 or not self.tcp_from_stream
                        else AWAIT_OTHER[(st.seen, st.reversed)])
            return
        if self.gated and flow.proto == 6:
            # IDS: what detection looked at is parsed once the receiver acknowledges it
            for d in (False, True):
                chunk = b"".join(c for ts, c in pending if ts == d)
                if chunk and not self._hold(st, flow, d, _DATA, chunk):
                    self._parse(st, flow, d, chunk, pkt)
            return
        for ts, chunk in pending:
            try:
                parser.parse(chunk, ts != st.reversed, pkt)
            except ProtocolChange as change:
                self._change(flow, change, pkt)
                break
            except ParserError:
                self._error(flow, pkt)
            except Encrypted as enc:
                self._encrypted(flow, enc, pkt)
            except Incomplete:
                pass
        st.dirty = True

    # --- IDS: parse what the receiver acknowledged -------------------------------------------
    # Suricata's IDS mode (stream.inline off) gives the app layer a direction's bytes once the
    # other side acknowledged them: a request is parsed on the server's ACK, a response on
    # the client's, so a request's alert comes on the client's next packet and carries what
    # the response added (suricata-verify bug-78, dns-truncated-rname). Held here, per flow
    # and direction: (end sequence number, kind, data); `packet` releases on ACKs, `flow_end`
    # releases the rest. Inline (IPS) mode parses at once, as Suricata.
    def tx_packet(self, pkt: Packet, flow: Flow) -> Any:
        """The packet transaction detection inspects: `pkt`, or, when bytes of its side were
        parsed on the other side's packet (IDS), a view of it whose payload is those bytes,
        so a rule mixing payload and transaction keywords reads them as Suricata's raw
        stream inspection would."""
        st = flow.app
        released = st.released if st is not None else None
        if released is None:
            return pkt
        d = 1 if pkt.to_server else 0
        data = released[d]
        if not data:
            return pkt
        released[d] = b""
        return _ReleasedView(pkt, data)

    def _hold(self, st: AppState, flow: Flow, to_server: bool, kind: int, data: Any) -> bool:
        """Queue `data` of one direction until its receiver acknowledges it. False (parse
        now): the other side never sent a packet (one-sided or async capture: no ACK to
        wait for), or the stream is not tracked."""
        other_pkts = flow.pkts_toclient if to_server else flow.pkts_toserver
        ss = flow.stream
        if (not other_pkts and self.oneside_now) or not ss or st is DONE_NULL:
            return False
        end = ss[1 if to_server else 0].next_seq
        held = st.held
        if held is None:
            held = st.held = ([], [])
        held[1 if to_server else 0].append((end, kind, data))
        return True

    def _parse(self, st: AppState, flow: Flow, to_server: bool, data: bytes, pkt: Packet | None) -> None:
        try:
            st.parser.parse(data, to_server != st.reversed, pkt)
        except ProtocolChange as change:
            self._change(flow, change, pkt)
        except ParserError:
            self._error(flow, pkt)
        except Encrypted as enc:
            self._encrypted(flow, enc, pkt)
        except Incomplete:
            return
        st.dirty = True

    # --- protocol change (Suricata's AppLayerRequestProtocolChange) ----------------------------
    # flow -> the protocol its parser announced (ProtocolChange), until the next bytes are
    # detected again; then -> the new parser, which reads `changing` (a second change asked
    # for while this one is under way fails: HTTP's failed_protocol_change) up to the flow's
    # next bytes. Entries are few (flows in the middle of a change) and go at the flow's end.
    def _change(self, flow: Flow, change: ProtocolChange, pkt: Packet | None = None) -> None:
        if change.parser is not None:
            # a certain change (HTTP's h2c upgrade): the new parser takes over in place,
            # unless that protocol is turned off (the old parser stays, its flow no longer parsed)
            if change.expect in self.disabled:
                return
            st = flow.app
            if st is not None and st.parser is not None and not st.done:
                if st.parser is not change.parser:
                    self.stats_flows[change.expect] = self.stats_flows.get(change.expect, 0) + 1
                st.parser = change.parser
                flow.app_proto = change.expect
                if self.pd_marks and pkt is not None:
                    # detection-only rules see the new protocol once, on this packet; the
                    # marks the first detection still had waiting are spent with it
                    self._pd_wait.pop(flow, None)
                    pkt.pd_done = getattr(pkt, "pd_done", 0) | (_PD_TS if pkt.to_server else _PD_TC)
            return
        if flow in self.changing:
            return
        self.changing[flow] = change.expect

    def _changed(self, flow: Flow, st: AppState, to_server: bool, data: bytes, pkt: Packet | None) -> bool:
        """New bytes of a flow in `changing` whose state has a parser. Announced change:
        the flow starts over with a fresh state whose protocol is detected from these
        bytes on (True: handled; `_detected` finishes the change). The new parser's first
        bytes were parsed: its change is over (False: parse as usual)."""
        expect = self.changing[flow]
        if not isinstance(expect, str):
            del self.changing[flow]
            expect.changing = False
            return False
        if not data:
            return True
        new = flow.app = AppState()
        new.syn = st.syn
        new.reversed = st.reversed
        self.feed(flow, to_server, data, pkt)
        return True

    def _detected(self, flow: Flow, parser: Any, pkt: Packet | None) -> None:
        """Detection after a protocol change found the flow's protocol: another than the one
        announced raises the generic events on this packet; the new parser is told a change
        is under way until the flow's next bytes (`changing`, HTTP's failed upgrade)."""
        expect = self.changing.pop(flow)
        if not isinstance(expect, str):
            return
        if expect and flow.app_proto != expect and pkt is not None:     # "": no expectation
            pkt.add_event(APPLAYER_UNEXPECTED)
            if expect == "tls":
                pkt.add_event(APPLAYER_NO_TLS)
        if parser is _NULL_PARSER:
            return
        try:
            parser.changing = True
        except AttributeError:
            return                  # a parser that never asks for a change itself
        self.changing[flow] = parser

    def _release(self, st: AppState, flow: Flow, to_server: bool, pkt: Packet | None, ack: int | None) -> None:
        """Parse the held items of one direction up to `ack` (None: all of them)."""
        queue = st.held[1 if to_server else 0]
        n = 0
        for end, kind, data in queue:
            if ack is not None and (ack - end) & _MASK >= 0x80000000:
                break
            n += 1
            parser = st.parser
            if kind == _DATA:
                self._parse(st, flow, to_server, data, pkt)
            else:                       # _GAP: bytes the stream never saw
                gap = getattr(parser, "gap", None)
                if gap is not None:
                    gap(to_server != st.reversed, data)
                    st.dirty = True
        if n:
            released = queue[:n]
            del queue[:n]
            if pkt is None or bool(pkt.to_server) != to_server:
                # inspected on the direction's own next packet (its rules run there), or on
                # a flow-end pseudo packet, where a rule's payload part reads these bytes
                # (Suricata: the raw stream)
                if pkt is not None:
                    st.wake |= 1 << to_server
                # one item (a segment acknowledged by the next packet) is the usual case:
                # its bytes as they are, no generator joined (2.6% of ndpi-mix compiled)
                if n == 1:
                    raw = released[0][2] if released[0][1] == _DATA else b""
                else:
                    raw = b"".join([item[2] for item in released if item[1] == _DATA])
                if raw:
                    if st.released is None:
                        st.released = [b"", b""]
                    keep = st.released[1 if to_server else 0] + raw
                    st.released[1 if to_server else 0] = keep[-RELEASED_KEEP:]

    def _other_side(self, st: AppState, flow: Flow, to_server: bool, data: bytes, pkt: Packet | None) -> None:
        """The first bytes of a TCP flow's second direction, its protocol known from the
        first: Suricata detects each direction on its own and raises generic app-layer
        events on the packet (app-layer-event:applayer_*) when they disagree: another
        protocol recognised (applayer_mismatch_protocol_both_directions), or none at all
        (applayer_detect_protocol_only_one_direction). The flow keeps its protocol."""
        if self.pd_marks:
            self._pd_complete(flow, to_server, pkt)
        if pkt is None:
            return
        own = PROTOCOLS.get(flow.app_proto or "")
        if own is None:
            return
        ts = to_server != st.reversed
        probe = own.tcp_probe or own.probe
        r = probe(data, ts)
        if r:
            return
        undecided = r is None
        for proto in self.probe_any.get(6, ()):
            if proto is own:
                continue
            r = (proto.tcp_probe or proto.probe)(data, ts)
            if r:
                pkt.add_event(APPLAYER_MISMATCH)
                if st.__class__ is _SharedAppState:
                    # a detection-only flow (AWAIT_OTHER): it needs a state of its own to
                    # keep its directions' protocols (rare: a mismatch)
                    own = AppState()
                    for name in AppState.__slots__:
                        setattr(own, name, getattr(st, name))
                    own.seen |= 1 << to_server
                    flow.app = st = own
                dir_protos = [proto.name, proto.name]
                dir_protos[not ts] = flow.app_proto
                st.dir_protos = dir_protos
                return
            undecided = undecided or r is None
        if not undecided:
            pkt.add_event(APPLAYER_ONE_DIRECTION)

    def _encrypted(self, flow: Flow, enc: Encrypted, pkt: Packet | None) -> None:
        """The flow's session is encrypted from here (registry.Encrypted). What the raw
        stream holds is inspected first (`on_encrypted`, Suricata's
        StreamTcpDetectLogFlush); then `bypass` bypasses the flow (flow.action, the capture
        loop's bypass part: nothing but the flow's counters from its next packet) and
        `track-only` turns payload inspection off from its next packet (flow.payload_off,
        read by detection and by the raw stream). A verdict already taken stands."""
        if self.on_encrypted is not None:
            self.on_encrypted(flow, pkt)
        if enc.bypass:
            if flow.action is None:
                flow.action = "bypass"
        elif not flow.payload_off:
            flow.payload_off = 1

    def _error(self, flow: Flow, pkt: Packet | None) -> None:
        proto = flow.app_proto or ""
        if proto in _PER_TRANSPORT:         # named per transport as the flow counters (ldap_tcp)
            proto += _TRANSPORT_SUFFIX.get(flow.proto, "")
        name = f"app_layer.error.{proto}.parser"
        self.stats_errors[name] = self.stats_errors.get(name, 0) + 1
        if self.on_error is not None:
            self.on_error(flow, pkt)

    def gap(self, flow: Flow, to_server: bool, nbytes: int, pkt: Packet | None = None) -> None:
        """The stream stage skipped `nbytes` it never saw: the parser must not read what
        follows as if it were contiguous (a body skips them; elsewhere the direction stops)."""
        st = flow.app
        if st is None:
            return
        if st.parser is None:
            flow.app = DONE_FAILED              # detection on data with a hole would guess
            if self.pd_marks:
                self._pd_complete(flow, True, pkt)
                self._pd_complete(flow, False, pkt)
            return
        if st.held is not None and st.held[1 if to_server else 0]:
            st.held[1 if to_server else 0].append((flow.stream[1 if to_server else 0].next_seq, _GAP, nbytes))
            return
        gap = getattr(st.parser, "gap", None)
        if gap is not None:
            gap(to_server != st.reversed, nbytes)
            st.dirty = True

    def _new_parser(self, proto: Protocol) -> Any:
        if self.consumers is not None and proto.name not in self.consumers:
            return _NULL_PARSER
        settings = self.settings.get(proto.name)
        return proto.parser(settings) if settings is not None else proto.parser()

    def _detect(self, st: AppState, flow: Flow, to_server: bool, pkt: Packet | None = None) -> Protocol | None:
        d = int(to_server)
        pending = st.pending
        if len(pending) == 1:
            data = pending[0][1]       # the usual case: a direction's first segment or datagram
        else:
            data = b"".join(c for ts, c in pending if ts == to_server)
        undecided = False
        port = flow.server_port
        ipproto = flow.proto
        # probing order: the protocols registered on the server port first (Suricata's
        # probing parsers by detection port), then the rest in registration order
        order = self.port_order.get((ipproto, port))
        if order is None:
            # then by the client's port, as Suricata's probing parsers try dp, then sp (an
            # LLMNR answer from 5355 opening its own flow to the asker)
            order = self.port_order.get((ipproto, flow.client_port))
            if order is not None:
                port = flow.client_port
            else:
                order = self.probe_any.get(ipproto, ())
        for proto in order:
            probe = proto.tcp_probe if ipproto == 6 and proto.tcp_probe is not None else proto.probe
            r = probe(data, to_server)
            if r:
                if proto.answer_first is not None and to_server and (ipproto == 17 or not st.syn) \
                        and proto.answer_first(data):
                    # the probe's reversed direction (Suricata's rdir): the flow's first
                    # datagram is an answer, so its sender is the server; over TCP only on
                    # a midstream pickup, as Suricata's TCPProtoDetect (bug-7552: an LDAP
                    # response first)
                    st.reversed = True
                return proto
            if r is False and ipproto == 6 and not st.syn and probe(data, not to_server):
                # Suricata's midstream pickup: what the flow's client sent is a server's
                # answer, so the flow runs the other way round (suricata-verify bug-7552)
                st.reversed = True
                return proto
            if r is None:
                if ipproto in proto.port_decides and port in self.ports[(ipproto, proto.name)]:
                    return proto
                undecided = True
        if not undecided or len(data) >= PROBE_LIMIT:
            st.refused |= 1 << d
            if st.refused & (1 << (1 - d)) or len(data) >= PROBE_LIMIT or ipproto == 17:
                flow.app = DONE_FAILED          # nothing of the flow's own state is read again
                if self.pd_marks:
                    # Suricata's DisableAppLayer: both directions' detection is over
                    self._pd_complete(flow, to_server, pkt)
                    self._pd_complete(flow, not to_server, pkt)
        return None

    def flow_end(self, flow: Flow) -> Iterator[Any]:
        """The flow ended: what is still held is parsed, a body sent up to the close is
        complete. Yields the pseudo packets (Suricata's flow-timeout ones, client side
        first) transaction detection must still run on, IDS only: one for a direction
        whose bytes were still waiting or were parsed after its last packet. Iterate it
        to the end: each direction's held bytes are parsed just before its packet, so
        the client side is inspected before the server's last bytes are parsed, as
        Suricata's pseudo packets come one after the other."""
        if self.changing:
            self.changing.pop(flow, None)
        st = flow.app
        if st is None:
            return
        held = st.held
        if held is not None or getattr(st.parser, "stream_frames", None) is not None:
            make = _end_packet()
            for d in (True, False):
                bit = 1 << d
                moved = False
                if held is not None and held[1 if d else 0]:
                    self._release(st, flow, d, None, None)
                    moved = True
                if moved or st.wake & bit or _frames_left(st.parser, d != st.reversed):
                    st.wake &= ~bit
                    yield self.tx_packet(make(flow, d, 0, b"", b""), flow)
        if st.parser is not None and hasattr(st.parser, "eof"):
            st.parser.eof(False)

    # --- per packet: UDP datagrams, TCP closes ----------------------------------------------
    def packet_gate(self) -> tuple[int, int]:
        """Which packets `packet` acts on, for the capture loop to skip the call for the
        rest (netsentry/capture_loop.py): (bit p set for each IP protocol p it reads,
        TCP flags one of which a TCP packet needs, 0 for every TCP packet). Keep it in
        step with `packet`: with the stream stage feeding TCP bytes, only SYN and FIN
        matter. bench-1m: 0.8 M of 1 M calls skipped."""
        if not self.tcp_from_stream or self.pd_marks:
            return (1 << 6) | (1 << 17), 0          # (pd marks: any packet may take one)
        # IDS with parsers someone reads: every ACK may release held bytes
        return (1 << 6) | (1 << 17), (_SYN | _FIN | _ACK) if self.gated else (_SYN | _FIN)

    def packet(self, pkt: Packet, flow: Flow | None) -> None:
        """The sensor's per-packet call. UDP datagrams are fed here; TCP bytes come from the
        stream stage (`feed`) when it is attached, else from `inorder_packet`; a FIN ends
        the body of a response that runs to the close."""
        if self._pd_wait and flow is not None and flow in self._pd_wait:
            self._pd_packet(pkt, flow)
        proto = pkt.proto
        if proto == 17:
            # a datagram: fed here unless its flow is done (inlined from inorder_packet,
            # which bench-1m's 206k DNS datagrams went through)
            if flow is not None and pkt.payload_len:
                st = flow.app
                if st is None or not st.done:
                    off = pkt.payload_off
                    self.feed(flow, bool(pkt.to_server), pkt.data[off:off + pkt.payload_len], pkt)
            return
        if proto != 6 or flow is None:
            return
        if not self.tcp_from_stream:
            self.inorder_packet(pkt, flow)
            return
        flags = pkt.tcp_flags
        if flags & _SYN:
            st = flow.app
            if st is None:
                flow.app = SYN_SEEN
            else:
                st.syn = True                   # (a no-op on a shared state)
            return
        st = flow.app
        if st is None:
            return
        if st.held is not None:
            to_server = bool(pkt.to_server)
            if st.wake & (1 << to_server):
                st.wake &= ~(1 << to_server)
                st.dirty = True
            if flags & _ACK and st.held[0 if to_server else 1]:
                self._release(st, flow, not to_server, pkt, pkt.ack)
        if flags & _FIN and st.parser is not None and hasattr(st.parser, "eof"):
            to_server = bool(pkt.to_server)
            if st.held is not None and st.held[1 if to_server else 0]:
                # the sender closes: what it sent is parsed now, on its FIN (a FIN's ACK
                # may come after the session left the established state, where the
                # side's rules would no longer run)
                self._release(st, flow, to_server, pkt, None)
            st.parser.eof(to_server != st.reversed)
            st.dirty = True

    # --- without the stream stage: a minimal in-order feed --------------------------------
    def inorder_packet(self, pkt: Packet, flow: Flow | None) -> None:
        """Feed this packet's payload if it is the next in-order data of its direction."""
        if flow is None:
            return
        plen = pkt.payload_len
        proto = pkt.proto
        if proto == 17:
            if plen:
                st = flow.app
                if st is not None and st.done:
                    return
                off = pkt.payload_off
                self.feed(flow, bool(pkt.to_server), pkt.data[off:off + plen], pkt)
            return
        if proto != 6:
            return
        flags = pkt.tcp_flags
        if not plen and not flags & (_SYN | _FIN):
            return
        st = flow.app
        if st is None:
            st = flow.app = AppState()
        elif st.done:
            return
        if flags & _RST:
            return
        d = int(bool(pkt.to_server))
        start = pkt.seq
        if st.seq is None:
            st.seq = [None, None]
        if flags & _SYN:
            start = (start + 1) & _MASK
            st.seq[d] = start
            st.syn = True
        if plen:
            exp = st.seq[d]
            if exp is None and not self.midstream:
                return
            off = pkt.payload_off
            data = pkt.data[off:off + plen]
            if exp is not None:
                delta = (start - exp) & _MASK
                if delta >= 0x80000000:          # starts before what we have: keep only the new tail
                    back = (exp - start) & _MASK
                    if back >= plen:
                        data = b""
                    else:
                        data = data[back:]
                        start = exp
            end = (start + len(data)) & _MASK
            if data:
                st.seq[d] = end
                self.feed(flow, bool(d), data, pkt)
        if flags & _FIN and st.parser is not None and hasattr(st.parser, "eof"):
            st.parser.eof(bool(d) != st.reversed)
            st.dirty = True

    def stats(self) -> dict[str, int]:
        counters = {f"app_layer.flow.{name}": n for name, n in sorted(self.stats_flows.items())}
        counters.update(self.stats_errors)
        return counters


_END_PACKET: list[Any] = []


def _frames_left(parser: Any, to_server: bool) -> bool:
    """Frames of a direction not inspected yet (applayer/frames.py): the flow's end inspects
    them on that direction's pseudo packet, as Suricata's at the stream's end."""
    frames = getattr(parser, "stream_frames", None)
    return frames is not None and bool(frames.items[1 if to_server else 0])


def _end_packet() -> Any:
    """`StreamEndPacket.make` (stream/tcp.py), imported on first use: stream/tcp.py
    imports netsentry.applayer.registry, whose package imports this module, so a
    load-time import would be a cycle. Kept here, not as an import statement in
    `flow_end`, which ran it at every end of a flow with held bytes (ndpi-mix: ~1.7%
    of the packet phase in py-spy's samples)."""
    if not _END_PACKET:
        from netsentry.stream.tcp import StreamEndPacket
        _END_PACKET.append(StreamEndPacket.make)
    return _END_PACKET[0]


RELEASED_KEEP = 65535          # bytes of one side's released data a tx inspection's payload keeps


class _ReleasedView:
    """A packet as transaction detection sees it after an ACK released bytes of its side
    (AppLayer.tx_packet): every field is the packet's, but the payload is those bytes."""

    # The fields detection reads on every rule and that nothing changes once the packet
    # is decoded are kept in the view on their first read: each read of a field the view
    # does not hold costs a failed lookup and a Python-level __getattr__ (ndpi-mix, ET
    # Open: 1.5% of the packet phase). Copying them up front would cost seven reads on
    # every view, and most views (TLS application data) are read once or twice. The
    # fields detection writes (verdict, drop_alert, events) stay the packet's own.
    _KEPT = frozenset(("to_server", "src", "dst", "sp", "dp", "proto", "ts"))
    __slots__ = ("_pkt", "payload", "payload_len", "to_server", "src", "dst", "sp", "dp", "proto", "ts")

    def __init__(self, pkt: Any, data: bytes) -> None:
        object.__setattr__(self, "_pkt", pkt)
        object.__setattr__(self, "payload", data)
        object.__setattr__(self, "payload_len", len(data))

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._pkt, name)
        if name in _ReleasedView._KEPT:
            object.__setattr__(self, name, value)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._pkt, name, value)


class _NullParser:
    """The parser of a protocol nobody reads: detection only."""

    txs: list[Tx] = []

    def parse(self, data: bytes, to_server: bool, pkt: Any = None) -> None:
        pass


_NULL_PARSER = _NullParser()

# detection failed (every probe said no, or a gap before it decided): the flow costs nothing more
DONE_FAILED = _SharedAppState.make(failed=True, done=True)
# detected, but nobody reads the protocol's transactions: the parser is the null one
DONE_NULL = _SharedAppState.make(parser=_NULL_PARSER, done=True)
# the same, before the other side's first bytes came (AppLayer._other_side), by (the side
# seen as a `seen` bit, reversed)
AWAIT_OTHER = {(seen, rev): _SharedAppState.make(parser=_NULL_PARSER, seen=seen, reversed=rev, syn=True)
               for seen in (1, 2) for rev in (False, True)}


def proto_matches(flow_proto: str | None, wanted: str) -> bool:
    """Does a flow of `flow_proto` satisfy a rule naming `wanted` (rule header, app-layer-protocol)?"""
    if flow_proto is None:
        return False
    return ALIASES.get(wanted, wanted) == flow_proto


_TRANSPORT_NAME = {6: "tcp", 17: "udp"}


def _ports(value: Any, default: tuple[int, ...]) -> frozenset[int]:
    """A detection-ports value as Suricata writes it: 53, "53", "53, 1053", "[53, 1053]";
    None keeps the protocol's own ports. A malformed one is a ConfigError naming it."""
    if value is None or value == "":
        return frozenset(default)
    text = str(value).strip().strip("[]")
    ports = set()
    for part in text.replace(",", " ").split():
        if not part.isdigit() or not 0 < int(part) < 65536:
            raise ConfigError(f"expected a port or a list of ports, got '{value}'",
                              "app-layer.protocols.*.detection-ports.dp")
        ports.add(int(part))
    return frozenset(ports)


def _yes(v: Any) -> bool:
    """A Suricata boolean: yes/true/on/1."""
    return v is True or str(v).strip().lower() in ("yes", "true", "on", "1")


def _size(v: Any) -> int:
    """A size as Suricata writes it: 100kb, 1mb, 4096."""
    if isinstance(v, int):
        return v
    s = str(v).strip().lower()
    for suffix, mult in (("kib", 1024), ("kb", 1024), ("mib", 1 << 20), ("mb", 1 << 20), ("gb", 1 << 30)):
        if s.endswith(suffix):
            return int(float(s[:-len(suffix)]) * mult)
    return int(s)
