"""TCP session state per flow, in Suricata's state names.

One state per session, as Suricata's ``TcpSession.state``: a transition
table keyed by (state, segment kind, direction) replaces the if-chain, so a
missing or extra transition is one line. Also keeps the sequence bookkeeping
the ``stream_size`` keyword needs (ISN and next expected sequence number per
side, modulo 2**32).
"""

from __future__ import annotations

try:
    import cython
except ImportError:          # pure install without Cython: the annotations are no-ops
    from netsentry import _cython_shim as cython  # type: ignore[no-redef]

from netsentry.decode.packet import Packet
from netsentry.flow.flow import FLOW_STATE_CODES, TCP_STATE_CODES, TCP_STATE_NAMES
from netsentry.flow.flow import Flow   # compiled: the typed record (tcp_state.pxd cimports flow.pxd)

FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
SEQ_MASK = 0xFFFFFFFF
HALF = 0x80000000

NONE = "none"
SYN_SENT = "syn_sent"
SYN_RECV = "syn_recv"
ESTABLISHED = "established"
FIN_WAIT1 = "fin_wait1"
FIN_WAIT2 = "fin_wait2"
TIME_WAIT = "time_wait"
LAST_ACK = "last_ack"
CLOSE_WAIT = "close_wait"
CLOSING = "closing"
CLOSED = "closed"

# EVE flow.state for each TCP state (Suricata's StreamTcpPacketSetState)
FLOW_STATE = {
    NONE: "new", SYN_SENT: "new", SYN_RECV: "new",
    ESTABLISHED: "established", FIN_WAIT1: "established", FIN_WAIT2: "established",
    CLOSING: "established", CLOSE_WAIT: "established",
    LAST_ACK: "closed", TIME_WAIT: "closed", CLOSED: "closed",
}

# (state, segment kind, from client) -> new state. Kinds: syn synack fin finack ack.
# RST closes any session (handled before the table).
TRANSITIONS: dict[tuple[str, str, bool], str] = {
    (NONE, "syn", True): SYN_SENT,
    (NONE, "synack", False): SYN_RECV,          # SYN-ACK seen first: its receiver is the client
    (SYN_SENT, "synack", False): SYN_RECV,
    (SYN_RECV, "ack", True): ESTABLISHED,
    (SYN_RECV, "fin", True): FIN_WAIT1,
    (SYN_RECV, "finack", True): FIN_WAIT1,
    (ESTABLISHED, "fin", True): FIN_WAIT1,
    (ESTABLISHED, "finack", True): FIN_WAIT1,
    (ESTABLISHED, "fin", False): CLOSE_WAIT,
    (ESTABLISHED, "finack", False): CLOSE_WAIT,
    (FIN_WAIT1, "ack", False): FIN_WAIT2,
    (FIN_WAIT1, "finack", False): TIME_WAIT,     # FIN that also acks ours
    (FIN_WAIT1, "fin", False): CLOSING,          # simultaneous close
    (FIN_WAIT2, "fin", False): TIME_WAIT,
    (FIN_WAIT2, "finack", False): TIME_WAIT,
    (CLOSING, "ack", False): TIME_WAIT,
    (CLOSING, "ack", True): TIME_WAIT,
    (TIME_WAIT, "ack", True): CLOSED,
    (CLOSE_WAIT, "fin", True): LAST_ACK,
    (CLOSE_WAIT, "finack", True): LAST_ACK,
    (LAST_ACK, "ack", False): CLOSED,
}


def segment_kind(flags: int) -> str:
    if flags & SYN:
        return "synack" if flags & ACK else "syn"
    if flags & FIN:
        return "finack" if flags & ACK else "fin"
    return "ack"


def set_state(flow: Flow, state: str) -> None:
    """Move the session to ``state``. ``flow.established`` is not touched: it is the
    per-packet flag, set from the state *before* a segment (see `update`)."""
    code = TCP_STATE_CODES[state]
    flow._tcp_st = code
    flow._st = FLOW_STATE_OF[code]


def resume(flow: Flow, state: str, flags: int, to_server: bool, midstream: bool) -> None:
    """A session closed by a RST whose sender goes on talking (a suspected injected RST,
    stream/tcp.py `_rst_watch`) goes on from `state`, the state before the RST, with this
    packet's step applied to it (Suricata dispatches such a packet on its pstate)."""
    set_state(flow, state)
    new = STEP_TABLE[step_index(midstream, flow._tcp_st, flags, to_server)]
    if new != NO_CHANGE:
        flow._tcp_st = new
        flow._st = FLOW_STATE_OF[new]


def _next_state(state: str, flags: int, from_client: bool, midstream: bool) -> str | None:
    if flags & RST:
        # a RST with no session (Suricata's StreamTcpPacketStateNone: rst_but_no_session)
        # starts none: the flow stays without a session, so never established
        return CLOSED if state not in (CLOSED, NONE) else None
    kind = segment_kind(flags)
    if state == NONE and midstream and kind in ("ack", "fin", "finack"):
        # stream.midstream: pick the session up as established, as Suricata does
        return TRANSITIONS.get((ESTABLISHED, kind, from_client), ESTABLISHED)
    return TRANSITIONS.get((state, kind, from_client))


# (state, flags & (FIN|SYN|RST|ACK), from client) -> next state, for both midstream settings,
# flattened from TRANSITIONS once so a segment costs one dict lookup (bench: the
# four-call version cost ~1 us per state-changing segment on the bench box).
_FLAG_BITS = FIN | SYN | RST | ACK
_STEP = {
    midstream: {
        (state, flags, from_client): nxt
        for state in FLOW_STATE
        for flags in range(_FLAG_BITS + 1) if flags & ~_FLAG_BITS == 0
        for from_client in (True, False)
        if (nxt := _next_state(state, flags, from_client, midstream)) is not None
    }
    for midstream in (False, True)
}


# The same, as one flat table of state codes (flow.py TCP_STATE_NAMES), which the flow
# table indexes per segment (an index and a load; the dict probe with a tuple key and
# the closure call it replaces were the TCP step's cost): entry
# ``step_index(midstream, state, flags, from_client)`` is the next state's code, or
# NO_CHANGE. FLOW_STATE_OF[code] is the EVE flow.state code of a TCP state.
NO_CHANGE = 127         # (below 128: a C char either signedness)
N_STATES = len(TCP_STATE_NAMES)
ESTABLISHED_CODE = TCP_STATE_CODES[ESTABLISHED]
CLOSED_FLOW_STATE = FLOW_STATE_CODES["closed"]
ESTABLISHED_FLOW_STATE = FLOW_STATE_CODES["established"]
FLOW_STATE_OF = bytes(FLOW_STATE_CODES[FLOW_STATE[name]] for name in TCP_STATE_NAMES)


def step_index(midstream: bool, state: int, flags: int, from_client: bool) -> int:
    """Where STEP_TABLE keeps the transition of `state` (a code) on a segment with
    `flags` (only FIN, SYN, RST and ACK count) from the client or the server."""
    return ((midstream * N_STATES + state) * 32 + (flags & _FLAG_BITS)) * 2 + from_client


def _step_table() -> bytes:
    table = bytearray([NO_CHANGE]) * (2 * N_STATES * 32 * 2)
    for midstream, steps in _STEP.items():
        for (state, flags, from_client), nxt in steps.items():
            table[step_index(midstream, TCP_STATE_CODES[state], flags, from_client)] = TCP_STATE_CODES[nxt]
    return bytes(table)


STEP_TABLE = _step_table()


def update(flow: Flow, pkt: Packet, to_server: bool, flags: int, midstream: bool) -> None:
    """Advance the session state and sequence bookkeeping for one segment.

    ``flow.established`` (what ``flow:established`` tests) is the flow state as it
    stood *before* this segment, as in Suricata, where FlowHandlePacketUpdate flags
    the packet FLOW_PKT_ESTABLISHED from the flow state before the stream engine
    moves the session: the ACK that completes the handshake (or the first segment
    of a midstream pickup) is not yet established, and a segment that closes an
    established session still is (suricata-verify like-ip-only-01), and so is every
    later one: Suricata also flags a packet established when the session's TCP state
    is ESTABLISHED or any state after it in its enum (closing, time-wait, closed), so
    `flow:established` data acknowledged after the client's FIN still matches. The flow
    table does the same inline (table.py `update`)."""
    flow.established = (flow._st == ESTABLISHED_FLOW_STATE
                        or ESTABLISHED_CODE <= flow._tcp_st < N_STATES)
    new = STEP_TABLE[step_index(midstream, flow._tcp_st, flags, to_server)]
    if new != NO_CHANGE:
        flow._tcp_st = new
        flow._st = FLOW_STATE_OF[new]
    track_seq(flow, pkt, to_server, flags)


def track_seq(flow: Flow, pkt: Packet, to_server: bool, flags: int) -> None:
    """ISN and highest next-sequence per side; SYN and FIN each consume one number.
    The fields are -1 while unknown (`Flow.client_isn` and the others give None)."""
    seq = pkt.seq
    end = (seq + pkt.payload_len + (1 if flags & (SYN | FIN) else 0)) & SEQ_MASK
    if to_server:
        if flow._client_isn < 0:
            # the SYN's seq is the ISN; picked up midstream, the byte before the first one seen
            flow._client_isn = seq if flags & SYN else (seq - 1) & SEQ_MASK
        nxt = flow._client_next_seq
        if nxt < 0 or (end - nxt) & SEQ_MASK < HALF:
            flow._client_next_seq = end
    else:
        if flow._server_isn < 0:
            flow._server_isn = seq if flags & SYN else (seq - 1) & SEQ_MASK
        nxt = flow._server_next_seq
        if nxt < 0 or (end - nxt) & SEQ_MASK < HALF:
            flow._server_next_seq = end


def stream_size(flow: Flow) -> tuple[int, int]:
    """(client, server) stream size as Suricata's ``stream_size`` sees it: next_seq - isn."""
    c = s = 0
    if flow.client_isn is not None and flow.client_next_seq is not None:
        c = (flow.client_next_seq - flow.client_isn) & SEQ_MASK
    if flow.server_isn is not None and flow.server_next_seq is not None:
        s = (flow.server_next_seq - flow.server_isn) & SEQ_MASK
    return c, s
