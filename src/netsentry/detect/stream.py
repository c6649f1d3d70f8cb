"""A small in-order stream window per TCP flow direction, for stream-capable rules.

Why: Suricata inspects `tcp` (and `ip`) rules with payload keywords against
the reassembled stream first and the packet payload second
(detect.c, SIG_FLAG_REQUIRE_STREAM), so a content split over two segments
still alerts (suricata-verify bug-6244's "Please Let Me In!" over four
segments). There is no full reassembly stage yet; this keeps, per direction,
the last `TAIL` bytes of in-order data so a rule can be tried on
"previous data + this segment".

Rules of the approximation:
- only in-order segments extend the window (seq == expected next seq);
  a retransmission (old data) contributes nothing, a gap restarts the window;
- a SYN's sequence number is consumed before its data (TCP fast open);
- RST segments are never added: their data is inspected as a packet only,
  as Suricata's stream engine does;
- a window match counts only if the old part alone does not match, so a
  content already seen in earlier data does not alert again on every
  following segment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from netsentry.decode.packet import Packet
    from netsentry.rules.signature import Signature

TAIL = 2048          # bytes of earlier in-order data kept per direction
_SEQ_MASK = 0xFFFFFFFF
_SYN, _RST = 0x02, 0x04


def stream_capable(sig: Signature) -> bool:
    """Rules Suricata would inspect against the stream: tcp/ip with payload
    inspection, not packet-only, and without flowint operations (those run in
    `match`, so trying a rule on more than one buffer would repeat them)."""
    return (sig.proto in ("tcp", "tcp-stream", "ip") and sig.payload_chain is not None
            and not sig.pkt_only and not sig.final_checks)


class Window:
    """One direction's expected next sequence number and the tail of its in-order data."""

    __slots__ = ("next_seq", "tail")

    def __init__(self, next_seq: int, tail: bytes) -> None:
        self.next_seq = next_seq
        self.tail = tail


def advance(win: Window | None, pkt: Packet, payload: bytes) -> tuple[Window | None, bytes, bytes]:
    """Account for this segment; returns the (new) window, the earlier data it follows
    (b"" when there is none: first data, gap, retransmission or RST) and, when there
    is earlier data, `old + payload` (the engine scans it; joined once here)."""
    flags = pkt.tcp_flags
    if flags & _RST:
        return win, b"", b""
    start = (pkt.seq + 1) & _SEQ_MASK if flags & _SYN else pkt.seq
    end = (start + len(payload)) & _SEQ_MASK
    if win is None:
        return Window(end, payload[-TAIL:]), b"", b""
    delta = (start - win.next_seq) & _SEQ_MASK
    if delta == 0:
        old = win.tail
        whole = old + payload
        win.tail = whole[-TAIL:]
        win.next_seq = end
        return win, old, whole
    if delta < 0x80000000:            # a gap: data went missing, start again from here
        win.tail = payload[-TAIL:]
        win.next_seq = end
        return win, b"", b""
    return win, b"", b""              # retransmission of earlier data: nothing new
