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
    flow.tcp_state = state
    flow.state = FLOW_STATE[state]


def _next_state(state: str, flags: int, from_client: bool, midstream: bool) -> str | None:
    if flags & RST:
        return CLOSED if state != CLOSED else None
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


def update(flow: Flow, pkt: Packet, to_server: bool, flags: int, midstream: bool) -> None:
    """Advance the session state and sequence bookkeeping for one segment.

    ``flow.established`` (what ``flow:established`` tests) is the flow state as it
    stood *before* this segment, as in Suricata, where FlowHandlePacketUpdate flags
    the packet FLOW_PKT_ESTABLISHED from the flow state before the stream engine
    moves the session: the ACK that completes the handshake (or the first segment
    of a midstream pickup) is not yet established, and a segment that closes an
    established session still is (suricata-verify like-ip-only-01)."""
    flow.established = flow.state == "established"
    new = _STEP[midstream].get((flow.tcp_state, flags & _FLAG_BITS, to_server))
    if new is not None:
        set_state(flow, new)
    track_seq(flow, pkt, to_server, flags)


def stepper(midstream: bool):  # type: ignore[no-untyped-def]
    """The flow table's per-segment call: `update` with the table lookups bound once."""
    step = _STEP[midstream].get
    flow_state = FLOW_STATE

    def tcp_step(flow: Flow, pkt: Packet, to_server: cython.bint, flags: cython.int) -> None:
        # established as of before this segment: see `update`
        flow.established = flow.state == "established"
        new = step((flow.tcp_state, flags & 0x17, to_server))
        if new is not None:
            flow.tcp_state = new
            flow.state = flow_state[new]
        seq: cython.longlong = pkt.seq
        end: cython.longlong = (seq + pkt.payload_len + (1 if flags & 0x03 else 0)) & 0xFFFFFFFF
        nxt: cython.longlong
        # the sequence fields are -1 while unknown (Flow: the properties give None)
        if to_server:
            if flow._client_isn < 0:
                flow._client_isn = seq if flags & SYN else (seq - 1) & 0xFFFFFFFF
            nxt = flow._client_next_seq
            if nxt < 0 or (end - nxt) & 0xFFFFFFFF < 0x80000000:
                flow._client_next_seq = end
        else:
            if flow._server_isn < 0:
                flow._server_isn = seq if flags & SYN else (seq - 1) & 0xFFFFFFFF
            nxt = flow._server_next_seq
            if nxt < 0 or (end - nxt) & 0xFFFFFFFF < 0x80000000:
                flow._server_next_seq = end

    return tcp_step


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
