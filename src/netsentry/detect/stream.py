"""How a stream-capable rule is tried on the reassembled stream's inspection window.

Why: Suricata inspects `tcp` (and `ip`) rules with payload keywords against
the reassembled stream when the packet's data went into it (detect.c,
SIG_FLAG_REQUIRE_STREAM / PKT_STREAM_ADD), so a content split over
segments, sent out of order or overlapped still alerts, once. The stream
stage (stream/tcp.py) gives each such packet a window: up to 2 KB of data
inspected before (`old` bytes) followed by the new bytes. A rule must match
*because of* the new bytes, or a content seen earlier would alert again on
every segment. Each rule gets one of three ways to ensure that, chosen once
at load time (`stream_rule`):

- `SUFFIX`: only positionless, non-negated contents (most ET rules): the
  window is cut to the new bytes plus `longest content - 1` old bytes, too
  few to hold a whole earlier match; one match call;
- `NEW`: the rule anchors a content at the start (offset, depth,
  startswith): Suricata's raw stream window starts where inspection last
  stopped, so the anchor refers to the new bytes;
- `FULL`: anything else (relative chains, pcre, byte tests): the new bytes
  alone (as Suricata's window) or else the whole window must match while the
  old bytes alone do not (a chain that crosses the boundary).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from netsentry.rules.inspect import Content

if TYPE_CHECKING:  # pragma: no cover
    from netsentry.decode.packet import Packet
    from netsentry.flow.flow import Flow
    from netsentry.rules.signature import Signature

SUFFIX, NEW, FULL = "suffix", "new", "full"


def stream_capable(sig: Signature) -> bool:
    """Rules Suricata would inspect against the stream: tcp/ip with payload
    inspection, not packet-only, and without flowint operations (those run in
    `match`, so trying a rule on more than one buffer would repeat them)."""
    return (sig.proto in ("tcp", "tcp-stream", "ip") and sig.payload_chain is not None
            and not sig.pkt_only and not sig.final_checks)


def packet_too(sig: Signature, stream_size: bool) -> bool:
    """Does this stream rule also inspect the packet payload when the stream gives no match?

    Suricata (SigConsolidateTcpBuffer): a tcp (or ip) rule with payload keywords
    that neither packet keywords (dsize, tcp-pkt, flow:no_stream) nor the stream
    (tcp-stream, flow:only_stream) already claimed reads the stream; it reads
    the packet too when a payload content is anchored (depth, offset,
    startswith: positions in a packet mean little in a stream) or the rule uses
    stream_size. On a packet whose segment joined the stream such a rule first
    tries the stream data, and only without a match there its payload
    (DetectEngineInspectRulePayloadMatches). So it can alert twice on the same
    bytes: on their packet before they are acknowledged and on the stream once
    they are (suricata-verify detect-bytetest-02).
    """
    if not stream_capable(sig) or sig.needs_stream or sig.proto == "tcp-stream":
        return False
    if stream_size:
        return True
    return any(isinstance(it, Content) and it.buffer == "pkt_data"
               and (it.offset is not None or it.depth is not None or it.startswith)
               for it in sig.payload_chain.items)


class StreamView:
    """`pkt`'s header fields over other payload bytes (the stream window), for trying
    a rule on stream data with the same `Signature.match`.

    Every field but the payload ones is read through from the packet, so the
    decoder's lazily read header fields stay lazy. It replaced a `copy.copy` of the
    packet, whose field materialisation cost ~100 us per copy (py-spy, bench a:
    7% of detect time for 5,561 copies)."""

    __slots__ = ("_pkt", "data", "payload", "payload_len")
    payload_off = 0

    def __init__(self, pkt: Packet, data: bytes) -> None:
        self._pkt = pkt
        self.data = self.payload = data
        self.payload_len = len(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pkt, name)


class StreamRule:
    """One rule's way of matching a window (see the module doc)."""

    __slots__ = ("mode", "back")

    def __init__(self, mode: str, back: int = 0) -> None:
        self.mode = mode
        self.back = back        # SUFFIX: old bytes kept in front of the new ones

    def matches(self, s: Signature, pkt: Packet, flow: Flow | None, window: bytes, old: int) -> bool:
        mode = self.mode
        if not old:
            return s.match(StreamView(pkt, window), flow)      # type: ignore[arg-type]
        if mode is SUFFIX:
            start = old - self.back
            return s.match(StreamView(pkt, window[start:] if start > 0 else window), flow)  # type: ignore[arg-type]
        if mode is NEW:
            return s.match(StreamView(pkt, window[old:]), flow)   # type: ignore[arg-type]
        if s.match(StreamView(pkt, window[old:]), flow):          # type: ignore[arg-type]
            return True
        return (s.match(StreamView(pkt, window), flow)            # type: ignore[arg-type]
                and not s.match(StreamView(pkt, window[:old]), flow))  # type: ignore[arg-type]


_FULL = StreamRule(FULL)
_NEW = StreamRule(NEW)


def window_lookback(sigs: Sequence[Signature]) -> int | None:
    """How many already inspected bytes the stream stage must keep in front of new data
    for these rules (stream/tcp.py `StreamEngine.overlap`); None: as many as it keeps.

    Why: the stage keeps that many bytes per direction of every live session (the
    `tail`), up to 2 KB each, the largest per-flow cost of the sensor after the flow
    record (bench/README.md "Flow memory"). A `SUFFIX` rule reads `longest content
    - 1` old bytes, a `NEW` rule none, the prefilter `longest fast pattern - 1` of a
    stream-capable rule; a `FULL` rule (relative chains, pcre, byte tests) can reach
    any distance back, so one of them makes it None. So the windows every rule and
    the prefilter see are the same as with the whole overlap kept: alerts do not change."""
    back = 0
    for s in sigs:
        if not stream_capable(s):
            continue
        how = stream_rule(s)
        if how.mode is FULL:
            return None
        if how.mode is SUFFIX and how.back > back:
            back = how.back
        fp = s.fast_pattern
        if fp is not None and len(fp.fp_bytes) - 1 > back:
            back = len(fp.fp_bytes) - 1
    return back


def stream_rule(sig: Signature) -> StreamRule:
    chain = sig.payload_chain
    if chain is None or not stream_capable(sig):
        return _FULL
    items = tuple(chain.items)
    if not items:
        return _FULL
    first = items[0]
    if isinstance(first, Content) and (first.offset is not None or first.depth is not None or first.startswith):
        return _NEW
    contents = [it for it in items if isinstance(it, Content)]
    if len(contents) != len(items) or any(c.buffer != "pkt_data" for c in contents):
        return _FULL
    if all(c.is_single and not c.negated and not c.endswith for c in contents):
        return StreamRule(SUFFIX, max(len(c.pattern) for c in contents) - 1)
    return _FULL
