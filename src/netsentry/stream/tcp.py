"""TCP stream reassembly: per flow and direction, in sequence order.

Why a stage of its own: a content split over segments, sent out of order or
overlapped with different bytes, must still be seen as the receiving host
sees it (Suricata's stream-tcp-reassemble.c / stream-tcp-list.c). The stage
runs after the flow update and before detection, for TCP packets of a flow:

- sequence tracking starts from each side's SYN (its number is consumed
  before the data, so TCP fast open data is kept); without a handshake a
  session is only picked up when `stream.midstream` is true (as Suricata,
  counted in `tcp.midstream_pickups`), otherwise its packets are inspected
  as packets only;
- in-order data is delivered at once; a segment beyond the next expected
  byte waits in an `Overlay` (overlay.py) until the hole is filled; where
  segments overlap, the target policy (`stream.reassembly.policy`,
  policy.py) decides whose bytes count; data before the delivered edge is a
  retransmission and is never delivered twice (bytes that differ from what
  was delivered raise `stream.reassembly_overlap_different_data`; the
  segment still counts as taken by the stream, as in Suricata, so its bytes
  are not inspected again as a packet by stream-capable rules);
- a hole the receiver acknowledged (or out-of-order data piling up past a
  limit) is a gap: counted (`tcp.reassembly_gap`, event
  `stream.reassembly_seq_gap`), skipped, and the inspection window restarts;
- `stream.reassembly.depth` bounds the bytes reassembled per direction (then
  `tcp.stream_depth_reached`); `stream.reassembly.memcap` bounds the bytes
  held out of order over all flows (then `tcp.segment_memcap_drop`);
- RST segments' data is never added (Suricata inspects it as a packet only).

What it hands on, per packet:
- the app layer gets *new in-order bytes only*, once:
  `applayer.feed(flow, to_server, data, pkt)` (and `applayer.gap(flow,
  to_server, nbytes, pkt)` when it has one);
- detection gets the inspection window on the packet:
  `pkt.stream_data` = up to `OVERLAP` bytes already inspected followed by
  the new bytes, `pkt.stream_old` = how many leading bytes were inspected
  before, and `pkt.stream_added` = this segment's data went into the stream
  (Suricata's PKT_STREAM_ADD: the stream, not the packet payload, is then
  what `tcp` content rules inspect). Each byte is copied into one window and
  scanned as new data once; only the overlap is seen again, so a pattern
  crossing a segment boundary is still found.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

try:
    import cython
except ImportError:          # pure install without Cython: the annotations are no-ops
    from netsentry import _cython_shim as cython  # type: ignore[no-redef]

from netsentry.applayer.registry import NO_RAW_TRIGGER
from netsentry.decode.packet import Packet
from netsentry.flow.tcp_state import (
    CLOSED, CLOSING, ESTABLISHED, FIN_WAIT1, FIN_WAIT2, NONE, SYN_RECV, SYN_SENT, TIME_WAIT, resume, set_state)
from netsentry.stream.hostos import TCP_OF_OS, HostOS
from netsentry.stream.overlay import Overlay
from netsentry.stream.policy import TCP_POLICIES
from netsentry.stream.settings import StreamSettings

# compiled: the typed record (tcp.pxd cimports its .pxd), fields read in C
from netsentry.flow.flow import Flow  # noqa: F401

MASK = 0xFFFFFFFF
HALF = 0x80000000
_FIN, _SYN, _RST, _ACK, _URG = 0x01, 0x02, 0x04, 0x10, 0x20
_SYNACK = _SYN | _ACK
_SYNRSTACK = _SYN | _RST | _ACK
# The same numbers as C globals for the per-packet steps (`_update`, `_deliver`,
# `_raw_release`): compiled, a module-level Python int is a dict lookup and its
# arithmetic boxed Python ints; these keep the flags tests and the sequence arithmetic
# modulo 2**32 in C (bench/README.md, "perfst"). Pure Python: the same ints.
_C_MASK = cython.declare(cython.longlong, 0xFFFFFFFF)
_C_HALF = cython.declare(cython.longlong, 0x80000000)
_C_WRAP = cython.declare(cython.longlong, 0x100000000)
_C_SYN = cython.declare(cython.int, 0x02)
_C_RST = cython.declare(cython.int, 0x04)
_C_ACK = cython.declare(cython.int, 0x10)
_C_URG = cython.declare(cython.int, 0x20)
_C_SYNACK = cython.declare(cython.int, 0x12)
_C_SYNRSTACK = cython.declare(cython.int, 0x16)

# Bytes of already inspected data kept in front of new data in the inspection
# window, so a pattern (or a relative content chain) crossing the boundary of
# two deliveries is still found.
OVERLAP = 2048
# Out-of-order bytes one direction may hold with its hole never acknowledged
# (a one-sided capture) before the hole is declared a gap.
OOO_GAP_LIMIT = 256 * 1024

# stream.reassembly.urgent.policy / .oob-limit-policy (Suricata's names)
URG_INLINE, URG_OOB, URG_GAP, URG_DROP = 0, 1, 2, 3
URGENT_POLICIES = {"inline": URG_INLINE, "oob": URG_OOB, "gap": URG_GAP, "drop": URG_DROP}

# Session states in which IDS raw inspection takes whatever is acknowledged, chunk size or not:
# Suricata's states past TIME_WAIT (its client-FIN-first CLOSE_WAIT and LAST_ACK, CLOSING,
# CLOSED), in this flow table's names (flow/tcp_state.py: the client's FIN is FIN_WAIT1 here)
_RAW_FLUSH = frozenset((FIN_WAIT1, FIN_WAIT2, TIME_WAIT, CLOSING, CLOSED))
_NOT_YET_ESTABLISHED = frozenset((NONE, SYN_SENT, SYN_RECV))

NO_SYN = -2          # Half.syn_ts before this side's SYN (a C integer field when compiled)

UNTRACKED = False    # flow.stream of a session the stage does not follow (no handshake, no midstream)


@cython.no_gc
@cython.cclass
class Half:
    """One direction of a session: the next expected sequence number and what waits.

    A fixed record, since two are made for every TCP session (262,144 live flows:
    half a million of them). Compiled (setup.py `COMPILED_MODULES`), it is the
    typed extension type of tcp.pxd beside this file: the numbers (`next_seq`, `off`,
    `ack`, `syn_ts`, counts) are C integers in the record instead of an int object
    each, and it carries no cycle-collector header (it refers to nothing that refers
    back to it): 112 bytes, the allocator's class below 128 (a field more costs 16 B
    per Half, 32 per flow). Pure Python it is a ``__slots__`` class with the same
    fields. A field added here is added to tcp.pxd too (bench/README.md "Flow
    memory": the per-flow bytes this costs)."""

    __slots__ = ("next_seq", "off", "ooo", "tail", "wins", "depth_hit", "started",
                 "syn_ts", "pending", "runs", "gap_before", "ack", "segs", "txs_seen")

    def __init__(self) -> None:
        self.next_seq = 0          # sequence number of the next in-order byte
        self.off = 0               # stream offset of next_seq (bytes delivered or skipped)
        self.ooo = None            # Overlay | None: out-of-order data by stream offset
        self.tail = b""            # the last bytes given to detection (at most the engine's `overlap`)
        self.wins = None           # the receiver's overlap policy (policy.py), set on the first out-of-order segment
        self.depth_hit = False
        self.started = False
        self.syn_ts = NO_SYN       # the TSval of this side's opening SYN, -1 without the option; NO_SYN: no SYN seen
        # Data delivered on a packet of the other direction (an ACK that declared a gap let held
        # data through): detection inspects a stream on its own direction's packets only, so it
        # waits for this direction's next data or the flow's end (`flush`). `runs`: earlier such
        # data cut off from the rest by a later gap, as (bytes missing before, tail, data).
        self.pending = b""
        self.runs = None           # list[tuple[int, bytes, bytes]] | None
        self.gap_before = 0        # bytes missing just before `tail` (0 once the tail moved past the gap)
        # IDS raw inspection (`StreamEngine._raw_release`): the highest ACK number the receiver
        # sent for this direction (-1: none yet), and the original extents of the pieces whose
        # bytes wait in `pending`, so an overlap with them is still judged by the receiver's
        # policy (they were not inspected yet). The pieces are contiguous (a gap moves waiting
        # bytes to `runs`), so their extents are their starts (`segs`, stream offsets; the
        # last ends at `off`): None while one whole piece waits (most live flows: their one
        # request), which is then the delivered `bytes` object itself, shared with the app
        # layer, not a copy; a second piece makes `pending` a bytearray appended in place (no
        # quadratic copying of a long unacknowledged run).
        self.ack = -1
        self.segs = None           # list[int] | None: where each waiting piece starts; None: one, at off - len(pending)
        self.txs_seen = 0          # app-layer transactions looked at for a raw trigger (`_app_trigger`)


@cython.no_gc
@cython.cclass
class Session(Half):
    """`flow.stream` of a followed session: the client's direction (to server) is this
    record itself, and `server` is the server's direction (to client), so a session is two
    objects instead of three: the (to client, to server) tuple it was cost a 56-byte
    object per flow with its own cycle-collector header (bench/README.md, `memc`). The
    stage reads a direction as ``st if to_server else st.server``; ``st[to_server]`` and
    iteration (to client, then to server) still work as they did on the tuple, for
    readers outside the hot path. No cycle-collector header either: the server's Half
    refers to nothing that refers back."""

    __slots__ = ("server",)

    def __init__(self) -> None:
        Half.__init__(self)
        self.server = Half()

    def __getitem__(self, to_server: Any) -> Half:
        return self if to_server else self.server

    def __len__(self) -> int:
        return 2

    def __iter__(self) -> Any:
        return iter((self.server, self))


# SYNs kept per session while the client's SYN is unanswered (Suricata's stream.max-syn-queued default)
MAX_SYN_QUEUED = 10

# TCP options a receiver checks against a key the sensor does not have
_OPT_MD5, _OPT_AO = 19, 29


def _tcp_options(pkt: Packet) -> list[tuple[int, int, int]]:
    """(kind, offset, length) of each option in `pkt`'s TCP header, up to the end-of-list
    option or the first malformed length. Read from the raw header on the rare packets that
    ask (RSTs, SYNs with data), rather than decoded for every packet."""
    data = pkt.data
    off = pkt.l4_off + 20
    end = pkt.l4_off + pkt.tcp_hlen
    out: list[tuple[int, int, int]] = []
    while off < end:
        kind = data[off]
        if kind == 0:
            break
        if kind == 1:
            off += 1
            continue
        if off + 1 >= end or data[off + 1] < 2:
            break
        olen = data[off + 1]
        out.append((kind, off, olen))
        off += olen
    return out


def _signed_rst(pkt: Packet) -> bool:
    """Whether the RST carries a TCP MD5 signature or TCP-AO option."""
    return any(kind == _OPT_MD5 or kind == _OPT_AO for kind, _off, _len in _tcp_options(pkt))


def rst_suspect(st: Session, pkt: Packet, flow: Flow) -> str | None:
    """The session state before `pkt`'s RST if the RST is one whose sender must stop
    talking but might not (see `StreamEngine._rst_watch`), else None. Runs after the flow
    table closed the session, so the state before is read from the halves: the client
    opened (its SYN seen) and the server never answered is SYN_SENT."""
    client: Half = st
    server: Half = st.server
    seq = pkt.seq
    if client.syn_ts != NO_SYN and not server.started:
        isn_next = client.next_seq                  # the client's ISN + 1 (no data before an answer)
        if not pkt.to_server:
            # the server refuses the SYN: a RST whose ACK (if any) acknowledges the SYN
            if not pkt.tcp_flags & _ACK or pkt.ack == isn_next:
                return SYN_SENT
            return None
        if (seq == (isn_next - 1) & MASK and pkt.win == 0 and pkt.ack == isn_next):
            return SYN_SENT                         # the client's stack aborting its own SYN
        return None
    if not _signed_rst(pkt):
        return None
    sender: Half = st if pkt.to_server else st.server
    if sender.started and (seq - sender.next_seq) & MASK >= HALF:
        return None                                 # before the sender's next byte: not taken
    if flow.established:
        return ESTABLISHED
    return SYN_RECV if server.started else SYN_SENT


@cython.cfunc
def _keep_tail(h: Half, window: bytes, keep: cython.Py_ssize_t) -> cython.void:
    """After `window` went to detection: keep its last `keep` bytes (the engine's
    `overlap`) as the direction's tail, in front of the next new bytes."""
    if len(window) > keep:
        h.tail = window[len(window) - keep:] if keep else b""
        h.gap_before = 0
    else:
        h.tail = window


def new_session() -> Session:
    """`flow.stream` of a followed session: both directions (`Session`)."""
    return Session()


_OPT_TFO = 34     # TCP Fast Open cookie option (RFC 7413)


def _fast_open(pkt: Packet) -> bool:
    """Does this SYN carry the TCP Fast Open option? Only then is its data part of the
    session (Suricata's TCP_HAS_TFO)."""
    data = pkt.data
    for kind, off, olen in _tcp_options(pkt):
        if kind == _OPT_TFO:
            return True
        if (kind == 253 or kind == 254) and olen in (4, 12) and data[off + 2:off + 4] == b"\xf9\x89":
            return True             # the experimental-option form of TFO (magic 0xf989)
    return False


def _ones_sum(b: bytes) -> int:
    """The ones'-complement sum of `b`'s 16-bit words (odd length: zero-padded), 1..0xFFFF."""
    if len(b) & 1:
        b += b"\0"
    v = int.from_bytes(b, "big") % 0xFFFF
    return v if v else (0xFFFF if any(b) else 0)


def _with_payload(pkt: Packet, new: bytes) -> bytes:
    """`pkt.data` with its TCP payload replaced by `new` (same length) and the TCP checksum
    updated incrementally (RFC 1624: the payload starts at an even offset in the segment)."""
    data = pkt.data
    off, plen = pkt.payload_off, pkt.payload_len
    old = data[off:off + plen]
    at = pkt.l4_off + 16
    check = int.from_bytes(data[at:at + 2], "big")
    total = (~check & 0xFFFF) + (0xFFFF - _ones_sum(old)) + _ones_sum(new)
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    check = ~total & 0xFFFF
    return data[:at] + check.to_bytes(2, "big") + data[at + 2:off] + new + data[off + plen:]


class StreamEndPacket(Packet):
    """The pseudo packet that carries a direction's not yet inspected stream data to
    detection when its flow ends (Suricata's flow-timeout pseudo packet): the flow's
    addresses and ports in that direction, no payload of its own (packet-only rules see
    nothing), the data as its stream window, no packet number. EVE writes its
    `pkt_src` and, before its payload, the bytes missing before the window (`log_gap`)."""

    pkt_src = "stream (flow timeout)"
    log_gap = 0
    log_payload = None      # bytes: the payload EVE logs for a stream match on it (`flush`)

    @classmethod
    def make(cls, flow: Flow, to_server: bool, gap: int, tail: bytes, data: bytes) -> StreamEndPacket:
        p = cls()
        if to_server:
            p.src, p.dst, p.sp, p.dp = flow.client, flow.server, flow.client_port, flow.server_port
        else:
            p.src, p.dst, p.sp, p.dp = flow.server, flow.client, flow.server_port, flow.client_port
        p.ip_version = flow.ip_version
        p.proto = 6
        p.vlan = flow.vlan
        p.flow = flow
        p.to_server = to_server
        p.ts = flow.last_seen
        p.tcp_flags = _ACK
        p.stream_data = tail + data
        p.stream_old = len(tail)
        p.stream_added = True
        p.stream_to_server = to_server
        p.log_gap = gap
        return p


@cython.cclass
class StreamEngine:
    """TCP reassembly for the sensor; `update(pkt, flow)` per TCP packet of a flow.

    Compiled, an extension type (tcp.pxd): its per-packet settings and counters are
    struct fields and its per-packet steps C calls; pure Python, a plain class.

    `applayer`: an object with `feed(flow, to_server, data, pkt)` (optional
    `gap(flow, to_server, nbytes, pkt)`), or None. `windows`: set the
    inspection window on packets (true when signatures run)."""

    def __init__(self, settings: StreamSettings, applayer: Any = None, windows: bool = True,
                 hosts: HostOS | None = None) -> None:
        self.settings = settings
        self.hosts = hosts if hosts else None       # host-os-policy; None: one policy for every host
        self.depth = settings.depth
        self.memcap = settings.memcap
        self.midstream = settings.midstream
        self.inline = settings.inline
        self.async_oneside = settings.async_oneside
        # a session picked up from its SYN/ACK (stream.midstream) also goes on with the
        # SYN/ACK sender's ACK in IDS mode (Suricata: "SYN/ACK followed by more TOCLIENT")
        self.synack_pickup = settings.midstream and not settings.inline
        self.one_side = self.async_oneside or self.synack_pickup
        # stream.reassembly.urgent: what the urgent byte of a URG segment is (URGENT_POLICIES)
        self.urgent = URGENT_POLICIES[settings.urgent_policy]
        self.urgent_limit = URGENT_POLICIES[settings.urgent_oob_limit_policy]
        # urgent bytes taken out of band, by direction (`Half`): only directions that had
        # any (rare), so `Half` stays the fixed record; emptied at the flow's end
        self.urg_off: dict[Any, int] = {}
        self.new_wins = TCP_POLICIES[settings.policy]
        self.windows = windows
        # IDS mode: a direction's bytes reach detection as Suricata's raw reassembly hands them
        # over (`_raw_release`), once acknowledged; inline: on arrival. Only with windows.
        self.raw_acked = not settings.inline and settings.raw_inspection == "acked"
        self.raw_ids = windows and self.raw_acked
        # acknowledged bytes that wait before they are inspected on their own, by `to_server`
        self.chunk = (settings.toclient_chunk_size, settings.toserver_chunk_size)
        self.overlap = OVERLAP      # inspected bytes kept in front of new ones (set_detection)
        # the whole OVERLAP kept whatever the rules need: inline mode rewrites re-sent bytes
        # from the tail (`_inline_resend`, `_inline_front`), and an EVE alert logs a stream match's window as
        # its payload (the sensor sets this when an eve-log writes payloads)
        self.full_tail = False
        self.feed = getattr(applayer, "feed", None)
        self.gap_hook = getattr(applayer, "gap", None)
        self.memuse = 0             # out-of-order bytes held over all flows
        self.held = 0               # directions holding out-of-order data (0: no ACK needs a look)
        self.counters: Counter[str] = Counter()
        # RSTs whose sender may go on talking (`_rst_watch`): the sender's Half -> the TCP
        # state before the RST; few at a time, emptied when the sender talks or the flow ends
        self.rst_sent: dict[Any, str] = {}
        # SYN_SENT sessions whose client sent another SYN (`_syn_sent`): the client's Half ->
        # [the SYN the session follows, the earlier ones kept]; emptied by the SYN/ACK
        self.syn_q: dict[Any, list] = {}
        # the memcap's exception policy (exception_policy.py): on_memcap(pkt, flow)
        self.on_memcap: Callable[[Packet, Flow], None] | None = None
        # inline with stream.drop-invalid: a packet the TCP state machine refuses is dropped
        # ("stream error"); the handshake's last ACK is checked against the SYN/ACK
        # (`_synrecv_ack`): SYN_RECV sessions -> the right edge of the client's window the
        # SYN/ACK opened (few at a time: emptied by the ACK or the flow's end)
        self.drop_invalid = bool(settings.inline and settings.drop_invalid)
        self.synrecv: dict[Any, tuple[int, int]] = {}

    def set_detection(self, engine: Any) -> None:
        """The signature engine the windows are for (None: no windows). Each direction
        keeps only as many inspected bytes as its rules can need in front of new data
        (the engine's `stream_lookback`, detect/stream.py `window_lookback`), not
        always `OVERLAP`: on traffic whose rules are all plain contents that is the
        longest content, and the 2 KB tail per direction was most of `flow.stream`."""
        self.windows = engine is not None
        self.raw_ids = self.windows and self.raw_acked
        lookback = getattr(engine, "stream_lookback", None)      # None: any distance back
        if self.inline or self.full_tail:
            lookback = None
        self.overlap = lookback if lookback is not None and 0 <= lookback < OVERLAP else OVERLAP

    def attach_applayer(self, applayer: Any) -> None:
        """Set (or replace) the app layer fed with new in-order bytes."""
        self.feed = getattr(applayer, "feed", None)
        self.gap_hook = getattr(applayer, "gap", None)

    # --- per packet --------------------------------------------------------------

    def update(self, pkt: Packet, flow: Flow) -> None:
        """One TCP packet of `flow`: reassembly (`_update`), then, in IDS mode, the raw
        inspection of its direction's bytes the receiver has acknowledged (`_raw_release`)."""
        self._update(pkt, flow)
        if self.raw_ids:
            st = flow.stream
            if st:
                ss: Session = st
                h: Half = ss if pkt.to_server else ss.server
                if h.pending:
                    self._raw_release(h, pkt, flow)

    def _update(self, pkt: Packet, flow: Flow) -> None:
        st = flow.stream
        if st is None:
            st = self._start(pkt, flow)
        if not st:                      # UNTRACKED
            return
        ss: Session = st
        flags: cython.int = pkt.tcp_flags
        to_server: cython.bint = pkt.to_server
        pseq: cython.longlong = pkt.seq
        plen: cython.longlong
        ack: cython.longlong
        seq: cython.longlong
        oob: cython.longlong
        delta: cython.longlong
        start: cython.longlong
        end: cython.longlong
        depth: cython.longlong
        off: cython.longlong
        skip: cython.longlong
        if not flow.established and flags & _C_SYNRSTACK == _C_ACK:
            syn = self.synrecv
            if syn and ss in syn and self._synrecv_ack(ss, pkt, flow, syn[ss]):
                return                  # refused: not stream data, the session stays in SYN_RECV
        if flags & _C_ACK and self.raw_ids:
            # the receiver's acknowledgement of the other direction: raw inspection's right edge
            rcv: Half = ss.server if to_server else ss
            ack = pkt.ack
            if rcv.ack < 0 or (ack - rcv.ack) & _C_MASK < _C_HALF:
                rcv.ack = ack
        if self.one_side and flags & _C_SYNRSTACK == _C_ACK:
            self._async_ack(ss, pkt, flow)
        if not to_server and pkt.tcp_tsval >= 0 and not ss.server.started and flags & _C_SYNACK != _C_SYNACK:
            # the server has not answered the client's SYN yet (Suricata's SYN_SENT)
            if self._bad_echo(ss, pkt):
                # not taken by the session: undo what the flow's state tracking made of it
                # (a forged RST would close the session the client still opens)
                set_state(flow, SYN_SENT)
                return
        if flags & _C_RST or self.rst_sent:
            self._rst_watch(ss, pkt, flow, flags)     # suspected RST injection (rare: a dict test)
        plen = pkt.payload_len
        if plen and (not _fast_open(pkt) if flags & _C_SYN
                     else flow.tcp_state == SYN_SENT and to_server and ss.server.started
                     and pkt.ack != ss.server.next_seq):
            # not stream data (Suricata's TCP state machine; the packet is still inspected
            # as a packet): data on a SYN or SYN/ACK without the TCP Fast Open option, and
            # client data after a SYN that the server answered with a SYN of its own but
            # that does not acknowledge it (no 4-way handshake: the flow table has no state
            # for one, so the ACK number tells; with async-oneside the session is
            # established by then: _async_ack). A flow whose other side is never seen (its
            # packets tracked as another flow, e.g. on another VLAN) is still followed
            # from its SYN. Only a SYN's number counts.
            plen = 0
        if self.held and flags & _C_ACK:
            # some direction somewhere holds out-of-order data: has its receiver
            # acknowledged bytes before it that we never saw?
            other: Half = ss.server if to_server else ss
            if other.ooo is not None:
                self._acked(other, flow, not to_server, pkt)
        if not plen:
            h: Half = ss if to_server else ss.server
            if h.pending and not flags & (_C_SYN | _C_RST) and not self.raw_ids:
                self._pending_window(h, pkt)     # (pending only exists with windows)
            # most packets (handshake, ACKs, FINs): only a SYN matters, for its number
            if flags & _C_SYN:
                h = ss if to_server else ss.server
                if h.started and not flags & _C_ACK and (pseq + 1) & _C_MASK != h.next_seq and h.off:
                    # a new SYN with another number on a session that carried data: the
                    # ports are reused for a new connection (Suricata: TCP port reuse)
                    self.on_flow_end(flow)
                    ss = flow.stream = new_session()
                    self.counters["tcp.ssn_reused"] += 1
                    h = ss if to_server else ss.server
                elif self.syn_q or (h.started and not h.off and to_server and not flags & _C_ACK
                                    and not ss.server.started):
                    self._syn_sent(ss, pkt, flow, flags)     # resent SYNs (rare: a dict test)
                if not h.started:
                    h.started = True
                    h.next_seq = (pseq + 1) & _C_MASK
                    if not flags & _C_ACK:
                        h.syn_ts = pkt.tcp_tsval
                    elif not pkt.to_server and self.drop_invalid and ss.started and not self.one_side:
                        self.synrecv[ss] = (pkt.ack, (pkt.ack + pkt.win) & MASK)
            return
        if flags & _C_RST:
            return
        h = ss if to_server else ss.server
        if not h.off and to_server and not flow.established and h.syn_ts != NO_SYN and flow.tcp_state == ESTABLISHED:
            # the client's ACK that completes the handshake carries data (its bare ACK was
            # lost or never sent): established already for this packet, as Suricata does
            # (SYN_RECV, "with data we need it to be established now")
            flow.established = True
        if not h.started:
            h.started = True
            h.next_seq = (pseq + 1) & _C_MASK if flags & _C_SYN else pseq
        seq = (pseq + 1) & _C_MASK if flags & _C_SYN else pseq
        oob = 0
        if self.urg_off:
            oob = self.urg_off.get(h, 0)
            seq = (seq - oob) & _C_MASK            # the sender's later bytes move up over the OOB ones
        if flags & _C_URG and self.urgent:
            kept = self._urgent(h, pkt, flow, plen)
            if kept < plen and self.urg_off.get(h, 0) == oob and self._urgent_hole(h, pkt, flow, seq, kept):
                # bytes the policy left out of the stream for good (gap, or a packet dropped
                # in IPS mode): a gap where they were, declared now, not on a later ACK
                self._gap(h, flow, to_server, pkt, h.off + (plen - kept))
                return
            if kept <= 0:
                return
            plen = kept
        delta = (seq - h.next_seq) & _C_MASK
        if delta >= _C_HALF:
            delta -= _C_WRAP
        start = h.off + delta
        end = start + plen
        if end <= h.off:
            # all of it delivered before: a retransmission. Suricata still hands it to
            # reassembly (PKT_STREAM_ADD), which keeps the first copy, so detection
            # does not see the same bytes again as a packet.
            self.counters["stream.pkt_retransmission"] += 1
            self._compare_delivered(h, start, pkt, 0, plen)
            pkt.stream_added = True
            if h.pending and self.raw_ids:
                self._pending_overlap(h, pkt, start, end)
            if self.inline and self.windows:
                self._inline_resend(h, pkt, start, plen)
            return
        if h.depth_hit:
            return
        depth = self.depth
        if depth and end > depth:
            if start >= depth:
                self._depth_reached(h, pkt)
                return
        off = pkt.payload_off
        if start <= h.off and h.ooo is None:
            # the common case: in order (possibly re-sending some delivered bytes first)
            skip = h.off - start
            if skip:
                self._compare_delivered(h, start, pkt, 0, skip)
                if h.pending and self.raw_ids:
                    self._pending_overlap(h, pkt, start, end)
                if self.inline:
                    self._inline_front(h, pkt, start, skip)
            data = pkt.data[off + skip:off + plen]
            if depth and h.off + len(data) > depth:
                data = data[:depth - h.off]
                self._depth_reached(h, pkt)
            pkt.stream_added = True
            self._deliver(h, flow, to_server, pkt, data)
            return
        # out of order, or filling a hole in front of held data
        data = pkt.data[off:off + plen]
        if start < h.off:
            self._compare_delivered(h, start, pkt, 0, h.off - start)
            if h.pending and self.raw_ids:
                self._pending_overlap(h, pkt, start, end)
            data = data[h.off - start:]
            start = h.off
        if depth and start + len(data) > depth:
            data = data[:depth - start]
        if self.memuse + len(data) > self.memcap:
            self.counters["tcp.segment_memcap_drop"] += 1
            self.counters["stream.reassembly_insert_memcap"] += 1
            if self.on_memcap is not None:      # stream.reassembly.memcap-policy
                self.on_memcap(pkt, flow)
            return
        ooo = h.ooo
        if ooo is None:
            ooo = h.ooo = Overlay()
            self.held += 1
        before = ooo.nbytes
        wins = h.wins
        if wins is None:
            # the receiver's policy, looked up the first time it has to judge an overlap
            # (every packet of this direction has that receiver as pkt.dst): on the SYN it
            # was a host-os-policy lookup per session, 27% of the stream stage on bench-1m
            wins = h.wins = self._policy_for(pkt.dst)
        overlapped, different = ooo.insert(start, data, wins)
        if overlapped:
            self.counters["tcp.overlap"] += 1
            if different:
                self.counters["tcp.overlap_diff_data"] += 1
                self.counters["stream.reassembly_overlap_different_data"] += 1
        pkt.stream_added = True
        self.memuse += ooo.nbytes - before
        if start == h.off:
            self._drain(h, flow, to_server, pkt)
        elif ooo.nbytes > OOO_GAP_LIMIT:
            self._gap(h, flow, to_server, pkt, ooo.first_start())      # type: ignore[arg-type]
        elif self.inline and self.windows:
            self._inline_held(h, pkt, start, start + len(data))

    # --- the parts -------------------------------------------------------------

    def _policy_for(self, dst: bytes) -> Any:
        """The overlap policy of the host receiving this direction (StreamTcpSetOSPolicy)."""
        hosts = self.hosts
        if hosts is not None:
            os_name = hosts.lookup(dst)
            if os_name is not None:
                return TCP_POLICIES[TCP_OF_OS[os_name]]
        return self.new_wins

    def _start(self, pkt: Packet, flow: Flow) -> Any:
        """A session's first packet: followed from a SYN, or picked up under stream.midstream.
        A SYN/ACK first is a pickup too (the client's SYN was not seen): as Suricata, only
        with stream.midstream or stream.async-oneside; otherwise the session is not
        followed and its bytes reach neither the app layer nor stream rules."""
        flags = pkt.tcp_flags
        if flags & _SYN and (not flags & _ACK or self.midstream or self.async_oneside):
            if flags & _ACK:
                self.counters["tcp.midstream_pickups"] += 1
            st = flow.stream = new_session()
        elif self.midstream and not flags & _SYN:
            self.counters["tcp.midstream_pickups"] += 1
            st = flow.stream = new_session()
        else:
            st = flow.stream = UNTRACKED
        return st

    def _deliver(self, h: Half, flow: Flow, to_server: bool, pkt: Packet, data: Any) -> None:
        """New in-order bytes: to the app layer once, and into this packet's inspection window."""
        n: cython.Py_ssize_t = len(data)
        if not n:
            return
        h.off += n
        h.next_seq = (h.next_seq + n) & _C_MASK
        if self.feed is not None:
            self.feed(flow, to_server, data, pkt)
        if flow.payload_off == 2:
            return      # an encrypted session (flow.py payload_off): raw inspection keeps nothing
        if self.raw_ids:
            # IDS: inspected once the receiver acknowledges it (`_raw_release`)
            pend = h.pending
            if not pend:
                h.pending = data                    # the one waiting piece: these very bytes
                return
            segs = h.segs
            if segs is None:
                h.segs = [h.off - n - len(pend), h.off - n]
            else:
                segs.append(h.off - n)
            if type(pend) is bytes:
                pend = h.pending = bytearray(pend)  # a second piece: appended in place from now on
            pend += data
            return
        if self.windows:
            if pkt.to_server != to_server:
                # brought in by the other direction's packet: inspected later (see Half.pending)
                h.pending += data
                return
            if h.pending:
                data = h.pending + data
                h.pending = b""
            tail = h.tail
            prev = pkt.stream_data
            if prev is not None and pkt.stream_to_server == to_server:
                # a second delivery on the same packet (held data drained after it)
                window = prev + data
                old = pkt.stream_old
            else:
                window = tail + data if tail else data
                old = len(tail)
            _keep_tail(h, window, self.overlap)
            if self.inline:
                # Suricata's inline raw inspection (StreamReassembleRawInline): the stream
                # around the packet, up to the chunk size ending at its last byte (a large
                # packet: its payload and a third of a chunk), inspected whole: a content
                # still in that chunk matches again on a later packet, as in Suricata's IPS
                chunk = self.chunk[to_server]
                plen = pkt.payload_len
                if plen >= chunk or plen > (chunk // 3) * 2:
                    chunk = plen + chunk // 3
                if len(window) > chunk:
                    window = window[len(window) - chunk:]
                old = 0
            pkt.stream_data = window
            pkt.stream_old = old
            pkt.stream_to_server = to_server

    def _drain(self, h: Half, flow: Flow, to_server: bool, pkt: Packet) -> None:
        ooo = h.ooo
        if ooo is None:
            return
        before = ooo.nbytes
        data = ooo.take_contiguous(h.off)
        self.memuse -= before - ooo.nbytes
        if not ooo.pieces:
            h.ooo = None
            self.held -= 1
        depth = self.depth
        if depth and h.off + len(data) >= depth:
            data = data[:depth - h.off]
            self._depth_reached(h, pkt)
        self._deliver(h, flow, to_server, pkt, data)

    def _acked(self, h: Half, flow: Flow, to_server: bool, pkt: Packet) -> None:
        """The receiver acknowledged bytes of `h` we never saw: a gap up to the held data."""
        delta = (pkt.ack - (self.urg_off.get(h, 0) if self.urg_off else 0) - h.next_seq) & MASK
        if not delta or delta >= HALF:
            return
        first = h.ooo.first_start() if h.ooo is not None else None
        target = h.off + delta
        if first is not None and first < target:
            target = first
        self._gap(h, flow, to_server, pkt, target)

    def _gap(self, h: Half, flow: Flow, to_server: bool, pkt: Packet, target: int) -> None:
        nbytes = target - h.off
        if nbytes <= 0:
            return
        self.counters["tcp.reassembly_gap"] += 1
        self.counters["stream.reassembly_seq_gap"] += 1
        # on the packet that declared it (Suricata: the one whose reassembly sent the gap to
        # the app layer), so `stream-event:reassembly_seq_gap` rules see it
        pkt.add_event("stream.reassembly_seq_gap")
        h.off = target
        h.next_seq = (h.next_seq + nbytes) & MASK
        if h.pending:
            # data not yet inspected before the gap: kept apart, inspected when the flow ends
            if h.runs is None:
                h.runs = []
            h.runs.append((h.gap_before, h.tail, bytes(h.pending)))
            h.pending = b""
            h.segs = None
        h.tail = b""                    # nothing may match across missing bytes
        h.gap_before = nbytes
        if self.gap_hook is not None:
            self.gap_hook(flow, to_server, nbytes, pkt)
        if h.ooo is not None:
            before = h.ooo.nbytes
            h.ooo.drop_before(target)
            self.memuse -= before - h.ooo.nbytes
            self._drain(h, flow, to_server, pkt)

    def _inline_resend(self, h: Half, pkt: Packet, start: int, plen: int) -> None:
        """Inline (IPS) mode, a segment re-sending bytes the stream already holds: as
        Suricata's inline stream handling, the packet carries the stream's bytes (a
        segment that overlaps with different data is rewritten to them, TCP checksum
        updated: packet rules and EVE see what the stream inspected), and the stream
        rules inspect that range again on this packet (Suricata's inline raw inspection
        covers the packet's own range). Only while the bytes are still in the kept tail;
        `pkt.data` is replaced, never written into; the capture loop hands a packet whose
        bytes changed to the inline source, which forwards them (capture/nfqueue.py)."""
        tail = h.tail
        lo = start - (h.off - len(tail))
        if lo < 0:
            return
        known = tail[lo:lo + plen]
        off = pkt.payload_off
        data = pkt.data
        if data[off:off + plen] != known:
            pkt.data = _with_payload(pkt, known)
        pkt.stream_data = known
        pkt.stream_old = 0
        pkt.stream_to_server = pkt.to_server

    def _inline_front(self, h: Half, pkt: Packet, start: int, skip: int) -> None:
        """Inline mode, a segment whose first `skip` bytes the stream already holds: those
        bytes are rewritten to the stream's where they differ (see `_inline_resend`)."""
        tail = h.tail
        lo = start - (h.off - len(tail))
        if lo < 0:
            return
        off = pkt.payload_off
        data = pkt.data
        known = tail[lo:lo + skip]
        if data[off:off + skip] != known:
            pkt.data = _with_payload(pkt, known + data[off + skip:off + pkt.payload_len])

    def _inline_held(self, h: Half, pkt: Packet, start: int, end: int) -> None:
        """Inline (IPS) mode, a segment held behind a hole: as Suricata's inline raw
        inspection, which inspects the data around the packet whether or not all before it
        arrived, the packet's window is the held run it joins, up to its own end; the run's
        bytes before it were inspected on their own packets (`stream_old`). An IPS must
        judge the packet now: it cannot forward it and wait for the flow's end."""
        ooo = h.ooo
        if ooo is None:
            return
        run_start = -1
        parts: list[bytes] = []
        cur = -1
        for ps, pd, _, _ in ooo.pieces:
            if ps != cur:
                if run_start >= 0 and run_start <= start < cur:
                    break
                run_start = ps
                parts = []
            parts.append(pd)
            cur = ps + len(pd)
            if cur >= end and run_start <= start:
                break
        if run_start < 0 or not run_start <= start < cur:
            return
        block = b"".join(parts)
        lo = max(0, start - run_start - self.overlap)
        window = block[lo:end - run_start]
        pkt.stream_data = window
        pkt.stream_old = start - run_start - lo
        pkt.stream_to_server = pkt.to_server

    def _pending_window(self, h: Half, pkt: Packet) -> None:
        """A data-less packet of a direction with data waiting (`Half.pending`): that data is
        this packet's inspection window, as Suricata inspects a stream's new data on the
        next packet of its direction."""
        data = h.pending
        h.pending = b""
        tail = h.tail
        window = tail + data if tail else data
        pkt.stream_data = window
        pkt.stream_old = len(tail)
        pkt.stream_to_server = pkt.to_server
        pkt.stream_added = True
        _keep_tail(h, window, self.overlap)

    def _pending_overlap(self, h: Half, pkt: Packet, start: int, end: int) -> None:
        """IDS mode, a segment re-sending bytes that wait for raw inspection (`pending`): they
        were not inspected yet, so, as in Suricata's stream, the receiver's overlap policy
        decides whose bytes the raw stream holds, piece by piece of those delivered
        (`segs`): where the new segment wins, its bytes replace the waiting ones.
        (The app layer was fed the first bytes already.)"""
        pend = h.pending
        edge = h.off
        base = edge - len(pend)
        lo = start if start > base else base
        hi = end if end < edge else edge
        if lo >= hi:
            return
        wins = h.wins
        if wins is None:
            wins = h.wins = self._policy_for(pkt.dst)
        data = pkt.data
        at = pkt.payload_off - start            # data[at + x]: the segment's byte at stream offset x
        segs = h.segs
        nseg = len(segs) if segs is not None else 0
        os_ = segs[0] if segs is not None else base     # type: ignore[index]
        k = 1
        while True:
            oe = segs[k] if k < nseg else edge          # type: ignore[index]
            a = lo if lo > os_ else os_
            b = hi if hi < oe else oe
            if a < b and wins(start, end, os_, oe):
                if type(pend) is bytes:
                    pend = h.pending = bytearray(pend)  # written into: no longer the delivered object
                pend[a - base:b - base] = data[at + a:at + b]
            if k >= nseg:
                break
            os_ = oe
            k += 1

    def _raw_release(self, h: Half, pkt: Packet, flow: Flow) -> None:
        """IDS mode: inspect this direction's waiting bytes on its packet once Suricata's raw
        reassembly would (StreamReassembleRaw): the bytes the receiver acknowledged (a
        one-sided capture's wait for the flow's end, or 256 KB; a SYN's Fast Open data is
        inspected on the SYN), when there are at least the direction's chunk size of them
        (`stream.reassembly.to{server,client}-chunk-size`), or an app-layer parser reads the
        flow (Suricata's parsers ask for raw inspection as their messages complete, and bapp2's
        app layer parses on the same ACK), or the session closes (the client's FIN, RST: the
        states past TIME_WAIT in Suricata's numbering), or the direction reached its depth.
        Bytes not yet acknowledged keep waiting: for a later packet or the flow's end
        (`flush`, which takes them all). The window is the kept tail (inspected before) and
        the released bytes, as on arrival before; no window is built for a packet that
        releases nothing."""
        n: cython.longlong
        ack: cython.longlong
        edge: cython.longlong
        unacked: cython.longlong
        acked: cython.longlong
        now: cython.bint
        pend = h.pending
        n = len(pend)
        to_server: cython.bint = pkt.to_server
        ack = h.ack
        now = False
        if n > OOO_GAP_LIMIT:
            acked = n                           # never acknowledged at all: do not pile up
            now = True
        elif pkt.tcp_flags & _SYN:
            # TCP Fast Open data on the SYN: inspected on the SYN itself, as Suricata does
            # (suricata-verify tcp-fastopen-07: `flags:S; content` rules match it)
            acked = n
            now = True
        elif ack < 0:
            if not self.async_oneside or (flow.stream.server if to_server else flow.stream).started:
                return              # never acknowledged (a one-sided capture): the flow's end
            # stream.async-oneside: Suricata moves an async session's last_ack with the
            # seen side's own data (stream-tcp.c), so its bytes count as acknowledged
            acked = n
        else:
            edge = h.next_seq
            if self.urg_off:
                edge = (edge + self.urg_off.get(h, 0)) & _C_MASK     # ACKs count the OOB bytes
            unacked = (edge - ack) & _C_MASK
            if unacked >= _C_HALF:
                acked = n
            elif unacked >= n:
                return
            else:
                acked = n - unacked
        if not acked:
            return
        if not now and acked < self.chunk[to_server] and not h.depth_hit and flow.tcp_state not in _RAW_FLUSH:
            if not self._app_trigger(h, flow, to_server):
                return
        if acked < n:
            if type(pend) is bytes:
                data = pend[:acked]
                h.pending = pend[acked:]
            else:
                data = bytes(pend[:acked])
                del pend[:acked]
            # the pieces still (partly) waiting keep their original extents
            segs = h.segs
            if segs is None:
                h.segs = [h.off - n]
            else:
                edge_off = h.off - (n - acked)
                i = 1
                while i < len(segs) and segs[i] <= edge_off:
                    i += 1
                del segs[:i - 1]
        else:
            data = pend if type(pend) is bytes else bytes(pend)
            h.pending = b""
            h.segs = None
        tail = h.tail
        window = tail + data if tail else data
        pkt.stream_data = window
        pkt.stream_old = len(tail)
        pkt.stream_to_server = to_server
        pkt.stream_added = True
        _keep_tail(h, window, self.overlap)

    def _app_trigger(self, h: Half, flow: Flow, to_server: bool) -> bool:
        """Has the app layer asked for raw inspection of this direction? Suricata's parsers
        do (AppLayerParserTriggerRawStreamInspection) when they complete a message of it: a
        request, a response, a DNS message. Here: a transaction whose side of this
        direction completed since the last look (`Half.txs_seen`, an index into the
        parser's transactions). A detected protocol whose transactions nobody reads
        (`_NULL_PARSER`: no transactions kept) asks on every acknowledgement, as a parser
        completing a message per ACK would, and so does a flow whose detection still runs.
        A flow whose detection failed has no parser to ask (Suricata disables its app
        layer, and only parsers ask: SMB's never does, so its bytes wait for the chunk
        size like those of a flow no protocol was found for here)."""
        app = flow.app
        if app is None or app.parser is None:
            if app is not None and app.failed:
                # protocol detection failed (Suricata: app layer disabled): no parser to ask,
                # so only a chunk's worth, the session's close or the flow's end release the
                # bytes (suricata-verify bug-5162: SMB, whose parser never asks either, is
                # one of those here)
                return False
            # detection still running: as a parser completing a message per ACK
            return True
        if app.done:
            # detected, its transactions read by nobody (DONE_NULL): as a parser completing a
            # message per ACK, unless the protocol's parser never asks (SMB: bug-5162)
            return flow.app_proto not in NO_RAW_TRIGGER
        if flow.app_proto in NO_RAW_TRIGGER:
            return False            # a parser that never asks, whatever it parses (SMB)
        parser = app.parser
        txs = parser.txs
        d = 1 if to_server else 0
        i = h.txs_seen
        n = len(txs)
        found = -1
        while i < n:
            if txs[i].done[d]:
                found = i
            i += 1
        if found < 0:
            return False
        h.txs_seen = found + 1
        return True

    def _async_ack(self, st: Session, pkt: Packet, flow: Flow) -> None:
        """stream.async-oneside: the one side the sensor sees goes on with an ACK where the
        other side's answer should have come (Suricata's STREAMTCP_FLAG_ASYNC): after its
        SYN (the SYN/ACK was routed elsewhere), or after its SYN/ACK (the client's ACK was).
        The session is then established, so `flow:established` rules see its data. Only an
        ACK at the side's next sequence number counts, as in Suricata. Without
        async-oneside, a session picked up midstream from its SYN/ACK (IDS mode) goes on
        the same way with the SYN/ACK sender's ACK: the client's ACK was missed."""
        state = flow.tcp_state
        to_server = pkt.to_server
        if to_server:
            if state != SYN_SENT or not self.async_oneside:
                return
        elif state != SYN_RECV or not (self.async_oneside or not st.started):
            return
        h: Half = st if to_server else st.server
        if h.started and not h.off and pkt.seq == h.next_seq:
            set_state(flow, ESTABLISHED)

    def _rst_watch(self, st: Session, pkt: Packet, flow: Flow, flags: int) -> None:
        """Suspected RST injection (Suricata's STREAM_SUSPECTED_RST_INJECT): a RST the
        sensor cannot be sure its receiver took, followed by an ordinary packet from the
        RST's own sender: whoever the RST claimed to come from never stopped talking, so it
        was forged (an on-path censor's RST; the receiver may have ignored it too).

        Which RSTs are kept (`rst_suspect`): on a session whose SYN is not answered yet, the
        server's RST, and a client RST that looks like a stack's abort of its own SYN (its
        ISN, window 0, acknowledging ISN+1); on any session, a RST carrying a TCP MD5
        signature (RFC 2385) or TCP-AO (RFC 5925) option, which the receiver will reject
        unless the key matches and the sensor cannot check. The next non-RST packet from
        the same side raises `stream.suspected_rst_inject` and the session goes on from
        the state it had before the RST (Suricata's pstate), as its endpoints do."""
        sender: Half = st if pkt.to_server else st.server
        if flags & _RST:
            before = rst_suspect(st, pkt, flow)
            if before is not None:
                self.rst_sent[sender] = before
            return
        before = self.rst_sent.pop(sender, None)
        if before is None:
            return
        self.counters["stream.suspected_rst_inject"] += 1
        pkt.add_event("stream.suspected_rst_inject")
        if flow.tcp_state == CLOSED:
            resume(flow, before, flags, pkt.to_server, self.midstream)

    def _syn_sent(self, st: Session, pkt: Packet, flow: Flow, flags: int) -> None:
        """A SYN or SYN/ACK while the client's SYN is unanswered (Suricata's SYN queue).

        A client SYN unlike the one the session follows (another ISN or timestamp, or
        sent in another second: Suricata compares the SYNs' fields and their time in
        seconds) becomes the one followed, as the most likely to be answered; the one
        it replaces is kept, up to `MAX_SYN_QUEUED`. A SYN that finds them all taken
        raises `stream.3whs_syn_flood` (many different SYNs on one 4-tuple: a SYN flood
        or an evasion) and the oldest is forgotten. The SYN/ACK then picks the SYN it
        acknowledges, so the session follows the connection the server accepted."""
        client: Half = st
        if flags & _ACK:
            entry = self.syn_q.pop(client, None)
            if entry is not None and not pkt.to_server and pkt.ack != client.next_seq:
                want = (pkt.ack - 1) & MASK
                for seq, ts, _secs in entry[1]:
                    if seq == want:
                        client.next_seq = pkt.ack
                        client.syn_ts = ts
                        break
            return
        if not pkt.to_server or st.server.started or not client.started or client.off:
            return
        entry = self.syn_q.get(client)
        if entry is None:
            current = ((client.next_seq - 1) & MASK, client.syn_ts, int(flow.start))
            entry = self.syn_q[client] = [current, []]
        current = entry[0]
        new = (pkt.seq, pkt.tcp_tsval, int(pkt.ts))
        if new != current:
            queue = entry[1]
            # kept once: a SYN with a timestamp is known by its ISN and timestamp
            known = current[1] >= 0 and any(
                q[0] == current[0] and q[1] == current[1] for q in queue)
            if not known:
                if len(queue) >= MAX_SYN_QUEUED:
                    self.counters["stream.3whs_syn_flood"] += 1
                    pkt.add_event("stream.3whs_syn_flood")
                    del queue[0]
                queue.append(current)
        entry[0] = new
        client.next_seq = (pkt.seq + 1) & MASK
        client.syn_ts = pkt.tcp_tsval

    def _synrecv_ack(self, ss: Session, pkt: Packet, flow: Flow, synack: tuple[int, int]) -> bool:
        """An ACK while the handshake waits for the client's (Suricata's SYN_RECV state,
        inline only here: `synrecv`, the SYN/ACK's acknowledgement and the right edge of the
        window it opened). The client's: right sequence number and right acknowledgement,
        or a sequence number ahead within the window (packets lost) with the right
        acknowledgement, completes it. Anything else is refused (True) with its event
        (`stream.3whs_right_seq_wrong_ack_evasion`, `stream.3whs_wrong_seq_wrong_ack`;
        from the server, which inline has to wait for the client's ACK,
        `stream.3whs_ack_data_inject` or `stream.3whs_ack_in_wrong_dir`), and with
        stream.drop-invalid dropped (drop reason "stream error")."""
        seq = pkt.seq
        if not pkt.to_server:
            if pkt.payload_len and pkt.ack == synack[0] and seq == ss.server.next_seq:
                event = "stream.3whs_ack_data_inject"
            else:
                event = "stream.3whs_ack_in_wrong_dir"
            return self._refuse(pkt, flow, event)
        c_next = ss.next_seq
        ack_ok = pkt.ack == ss.server.next_seq
        ahead = (seq - c_next) & MASK
        if ack_ok and (ahead == 0 or (ahead < HALF and (synack[1] - seq) & MASK < HALF)):
            del self.synrecv[ss]
            return False
        return self._refuse(pkt, flow, "stream.3whs_right_seq_wrong_ack_evasion" if ahead == 0
                            else "stream.3whs_wrong_seq_wrong_ack")

    def _refuse(self, pkt: Packet, flow: Flow, event: str) -> bool:
        """A packet the TCP state machine refuses in SYN_RECV (Suricata: StreamTcpPacket returns an error)."""
        self.counters[event] += 1
        pkt.add_event(event)
        set_state(flow, SYN_RECV)       # the flow table moved it on: Suricata's session stays
        if self.drop_invalid:
            pkt.verdict = "drop"
            if pkt.drop_reason is None:
                pkt.drop_reason = "stream error"
        return True

    def _bad_echo(self, client: Half, pkt: Packet) -> bool:
        """A reply to a SYN that echoes a timestamp the SYN never sent: an evasion (a
        forged RST or FIN that the client's TCP stack would refuse, bug 3286). As
        Suricata's StateSynSentValidateTimestamp: raises `stream.pkt_invalid_timestamp`
        and the packet is not taken by the session. Only the echo is judged: with a
        timestamp in the SYN, a non-zero echo must be that value; without one, the
        echo must be zero."""
        syn_ts = client.syn_ts
        if syn_ts == NO_SYN:
            return False            # picked up midstream: no SYN to compare with
        echo = pkt.tcp_tsecr
        if syn_ts >= 0:
            bad = syn_ts != 0 and echo != 0 and echo != syn_ts
        else:
            bad = echo != 0
        if bad:
            self.counters["stream.pkt_invalid_timestamp"] += 1
            pkt.add_event("stream.pkt_invalid_timestamp")
        return bad

    def _urgent(self, h: Half, pkt: Packet, flow: Flow, plen: int) -> int:
        """A URG segment under an urgent policy other than inline (Suricata's handling of
        TCP urgent data, stream.reassembly.urgent): how many of its bytes join the stream
        (0: none). Receivers disagree on urgent data, so an attacker hides a byte in the
        urgent pointer that one side keeps and the other does not; the policy says which
        the sensor believes. As Suricata, the segment's last byte is the urgent one:
        - oob: it is out of band: left out, and the sender's later sequence numbers move
          up by one over it (`urg_off`) (at most 65535 such bytes per direction, then
          `stream.reassembly_urgent_oob_limit_reached` and `urgent.oob-limit-policy`);
        - gap: it is left out without moving the numbers: a one-byte hole (a gap);
        - drop: in IPS mode the packet is dropped (drop reason "stream urgent"), so its
          data never joins the stream; in IDS mode it stays inline."""
        pkt.stream_added = True
        ptr = int.from_bytes(pkt.data[pkt.l4_off + 18:pkt.l4_off + 20], "big")
        policy = self.urgent
        if policy == URG_DROP:
            if self.inline:
                self.counters["tcp.urgent_drop"] += 1
                pkt.verdict = "drop"
                if pkt.drop_reason is None:
                    pkt.drop_reason = "stream urgent"
                return 0
            return plen
        if not 0 < ptr <= plen:
            return plen
        if policy == URG_OOB:
            taken = self.urg_off.get(h, 0)
            if taken < 0xFFFF:
                self.urg_off[h] = taken = taken + 1
                self.counters["tcp.urgent_oob_data"] += 1
                if taken == 0xFFFF:
                    pkt.add_event("stream.reassembly_urgent_oob_limit_reached")
            else:
                limit = self.urgent_limit
                if limit == URG_DROP:
                    if self.inline:
                        pkt.verdict = "drop"
                        if pkt.drop_reason is None:
                            pkt.drop_reason = "stream urgent"
                    return 0
                if limit == URG_INLINE:
                    return plen
        # oob or gap: the last byte is not stream data
        if ptr == 1 and plen == 1:
            return 0
        return plen - 1

    def _urgent_hole(self, h: Half, pkt: Packet, flow: Flow, seq: int, kept: int) -> bool:
        """Does the policy's cut of a URG segment leave a hole at the stream's edge? (Only
        a segment in order and with nothing held is judged here; elsewhere the ACK of the
        hole declares it, as for any missing bytes.) The kept bytes are delivered first."""
        if seq != h.next_seq or h.ooo is not None:
            return False
        if kept > 0:
            data = pkt.data[pkt.payload_off:pkt.payload_off + kept]
            depth = self.depth
            if depth and h.off + kept > depth:
                return False
            pkt.stream_added = True
            self._deliver(h, flow, pkt.to_server, pkt, data)
        return True

    def _depth_reached(self, h: Half, pkt: Packet) -> None:
        """`stream.reassembly.depth` reached in this direction: counted, and the packet that
        reached it raises `stream.reassembly_depth_reached` (once per direction: as
        Suricata, after it the direction is no longer reassembled)."""
        if not h.depth_hit:
            h.depth_hit = True
            pkt.add_event("stream.reassembly_depth_reached")
            self.counters["tcp.stream_depth_reached"] += 1
            self.counters["stream.reassembly_depth_reached"] += 1

    def _compare_delivered(self, h: Half, start: int, pkt: Packet, lo: int, hi: int) -> None:
        """Re-sent bytes [start+lo, start+hi) against what was delivered, where still known
        (the kept tail, and in IDS mode the bytes still waiting for raw inspection)."""
        tail = h.tail
        if h.pending:
            tail = tail + h.pending
        tail_start = h.off - len(tail)
        a = max(start + lo, tail_start)
        b = min(start + hi, h.off)
        if a >= b:
            return
        self.counters["tcp.overlap"] += 1           # Suricata counts every overlapping insert
        off = pkt.payload_off + (a - start)
        if pkt.data[off:off + (b - a)] != tail[a - tail_start:b - tail_start]:
            self.counters["stream.reassembly_overlap_different_data"] += 1
            self.counters["tcp.overlap_diff_data"] += 1

    # --- flow end and reporting --------------------------------------------------

    def flush(self, flow: Flow) -> list[StreamEndPacket]:
        """The flow ends: its stream data detection has not seen yet, as pseudo packets
        (Suricata's flow-timeout reassembly, pkt_src "stream (flow timeout)"), client side
        first. That is data an ACK let through on the other direction's packet and never
        followed by its own direction's packet, and data still held out of order behind
        a hole nobody filled (each contiguous piece on its own: nothing matches across
        missing bytes). Not counted as gaps. Call before `on_flow_end`."""
        st = flow.stream
        if not st or not self.windows:
            return []
        ss: Session = st
        c: Half = ss
        s: Half = ss.server
        if not (c.pending or c.runs or c.ooo or s.pending or s.runs or s.ooo):
            return []               # the usual flow: everything was inspected
        out: list[StreamEndPacket] = []
        for to_server in (True, False):
            h: Half = c if to_server else s
            pieces: list[tuple[int, bytes, bytes]] = list(h.runs) if h.runs else []
            if h.pending:
                pieces.append((h.gap_before, h.tail, bytes(h.pending)))
            ooo = h.ooo
            if ooo is not None and not self.inline:      # inline: inspected on arrival (_inline_held)
                end = h.off             # held data never starts here: it would have been delivered
                joined = False
                for start, data, _, _ in ooo.pieces:
                    if joined and start == end:
                        gap, tail, prev = pieces[-1]
                        pieces[-1] = (gap, tail, prev + data)
                    else:
                        pieces.append((start - end, b"", data))
                    joined = True
                    end = start + len(data)
            if not pieces:
                continue
            # what EVE logs for a match on any of them: the direction's stream as Suricata's
            # alert logger reads it, every piece in order with "[N bytes missing]" for each gap
            log = b"".join((b"[%d bytes missing]" % gap if gap else b"") + tail + data
                           for gap, tail, data in pieces)
            for gap, tail, data in pieces:
                p = StreamEndPacket.make(flow, to_server, gap, tail, data)
                p.log_payload = log
                out.append(p)
            h.runs = None
            h.pending = b""
            h.segs = None
        if out and flow.tcp_state not in _NOT_YET_ESTABLISHED:
            # Suricata's flow-timeout pseudo packets of a session that got established are
            # established whatever its last state (flow-timeout.c; a closed session's
            # packets too, ssn->state >= TCP_ESTABLISHED): `flow:established` sees the end
            flow.established = True
        return out

    def on_flow_end(self, flow: Flow) -> None:
        """Release what the flow still holds out of order (the memcap is global)."""
        st = flow.stream
        if st:
            ss: Session = st
            halves = (ss.server, ss)
            if self.urg_off:
                for h in halves:
                    self.urg_off.pop(h, None)
            if self.rst_sent:
                for h in halves:
                    self.rst_sent.pop(h, None)
            if self.syn_q:
                self.syn_q.pop(ss, None)
            if self.synrecv:
                self.synrecv.pop(ss, None)
            for h in halves:
                if h.ooo is not None:
                    self.memuse -= h.ooo.nbytes
                    h.ooo = None
                    self.held -= 1
        flow.stream = None

    def stats(self) -> dict[str, int]:
        out = dict(self.counters)
        out["tcp.reassembly_memuse"] = self.memuse
        return out
