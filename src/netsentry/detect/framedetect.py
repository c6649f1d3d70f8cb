"""Frame inspection: `frame:` rules run on each frame a parser marked in the stream.

Suricata's DetectRunFrames (detect-engine-frame.c): on a packet, the frames of the
packet's direction that are complete (or cut by a gap, or at the flow's end) are
inspected once each by the rules of their protocol and type; a rule alerts once per
matching frame, and its alert carries the frame (`frame` object: applayer/frames.py
`Frame.eve`) and the frame's transaction, when it has one.

The rules are the transaction engine's (TxDetect numbers them, and its `_apply` takes
the action, thresholds and alert): a stream-frame rule never enters its candidate
lists, so frames cost nothing to a ruleset without them, and the parsers mark frames
only of the types a rule reads (applayer/frames.py ENABLED).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netsentry.applayer import frames as _frames
from netsentry.applayer.frames import STREAM_FRAME_BUFFERS, stream_frame_type
from netsentry.applayer.registry import BUFFERS
from netsentry.config import get
from netsentry.rules.inspect import Content
from netsentry.rules.keywords.applayer import apply_transforms

if TYPE_CHECKING:  # pragma: no cover
    from netsentry.applayer.frames import Frame
    from netsentry.decode.packet import Packet
    from netsentry.event import Event
    from netsentry.flow.flow import Flow
    from netsentry.rules.signature import Signature


_END_SRC = "stream (flow timeout)"     # stream/tcp.py StreamEndPacket.pkt_src


def is_frame_rule(s: Signature) -> bool:
    """A rule inspected per stream frame: its first buffer is a registered stream frame."""
    return bool(s.tx_chains) and s.tx_chains[0][0] in STREAM_FRAME_BUFFERS


class FrameDetect:
    """The stream-frame rules of one ruleset, by (protocol, frame type)."""

    __slots__ = ("txd", "rules", "stats_frames", "early", "types")

    def __init__(self, txd: Any, nums: list[int], config: Any = None) -> None:
        self.txd = txd
        self.rules: dict[tuple[str, str], list[int]] = {}
        enabled: dict[str, set[str]] = {}
        for num in nums:            # in evaluation order: TxDetect's numbering is that order
            s = txd.sigs[num]
            name = s.tx_chains[0][0]
            proto = BUFFERS[name].proto
            ftype = stream_frame_type(name)
            self.rules.setdefault((proto, ftype), []).append(num)
            enabled.setdefault(proto, set()).add(ftype)
        if config is not None and get(config, "outputs.eve-log.frame-logging", False):
            # frame logging on: Suricata marks every type (FrameConfigEnableAll), so the
            # frame ids an alert carries count them all
            for proto, types in _frames.STREAM_FRAMES.items():
                enabled.setdefault(proto, set()).update((*types, "stream"))
        self.types = {p: frozenset(t) for p, t in enabled.items()}
        self._activate()
        self.stats_frames = 0
        # IPS: the rules an open frame is inspected by as its bytes come (Suricata inspects
        # a frame still growing; suricata-verify http-gap-simple-frames-ips): those whose
        # match more bytes cannot undo, a chain of positive contents not anchored at the end
        self.early = frozenset(num for num in nums if txd.ips and _prefix_safe(txd.sigs[num]))

    def _activate(self) -> None:
        """The parsers made from now on mark these types (Suricata's FrameConfigEnable)."""
        _frames.ENABLED.clear()
        _frames.ENABLED.update(self.types)

    def __getstate__(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # a ruleset loaded from the rule cache (or handed to a worker on reload) is
        # unpickled, not built: the frame types its rules read must be switched on again,
        # or the parsers mark no frames and every frame rule is silent
        for name, value in state.items():
            setattr(self, name, value)
        self._activate()

    def inspect(self, pkt: Packet, flow: Flow, parser: Any, to_server: bool) -> list[Event] | None:
        """The frames of the packet's direction ready to inspect, each once."""
        frames = getattr(parser, "stream_frames", None)
        if frames is None:
            return None
        items = frames.items[1 if to_server else 0]
        if not items:
            return None
        # the flow's end (its pseudo packet): a frame still short (the stream frame, one a
        # gap or the close cut) is inspected with what it has, as Suricata's at the stream's end
        ending = getattr(pkt, "pkt_src", None) == _END_SRC
        events: list[Event] | None = None
        keep: list[Frame] = []
        proto = flow.app_proto or ""
        early = self.early
        for f in items:
            if not (f.complete or ending):
                keep.append(f)      # its bytes are still to come: inspected once they are
                if early and f.have > f.looked:
                    f.looked = f.have
                    nums = [n for n in self.rules.get((proto, f.type), ()) if n in early
                            and (f.alerted is None or n not in f.alerted)]
                    evs = self._inspect_frame(pkt, flow, parser, f, nums, to_server) if nums else None
                    if evs:
                        if events is None:
                            events = evs
                        else:
                            events.extend(evs)
                continue
            self.stats_frames += 1
            nums = self.rules.get((proto, f.type))
            if not nums:
                continue
            if f.alerted is not None:
                nums = [n for n in nums if n not in f.alerted]
            evs = self._inspect_frame(pkt, flow, parser, f, nums, to_server)
            if evs:
                if events is None:
                    events = evs
                else:
                    events.extend(evs)
        items[:] = keep
        return events

    def _inspect_frame(self, pkt: Packet, flow: Flow, parser: Any, f: Frame, nums: list[int],
                       to_server: bool) -> list[Event] | None:
        data = bytes(f.data)
        tx = _tx_of(parser, f.tx_id)
        txd = self.txd
        events: list[Event] | None = None
        for num in nums:
            s = txd.sigs[num]
            if not s.header_match(pkt, flow):
                continue
            if not all(check(pkt, flow) for check in s.packet_checks):
                continue
            if s.tx_checks and (tx is None or not all(fn(tx, to_server) for _p, _d, fn in s.tx_checks)):
                continue
            ok = True
            for name, transforms, chain in s.tx_chains:
                if name in STREAM_FRAME_BUFFERS:
                    buf = apply_transforms(data, transforms) if transforms else data
                    if buf is None or not chain.run(buf):
                        ok = False
                        break
                else:
                    # another buffer next to the frame: the frame's transaction's
                    from netsentry.detect.txdetect import get_buffer
                    other = get_buffer(tx, name, transforms, to_server) if tx is not None else None
                    if other is None or not (any(chain.run(b) for b in other) if BUFFERS[name].multi
                                             else chain.run(other)):
                        ok = False
                        break
            if not ok:
                continue
            if s.payload_chain is not None and not (pkt.payload_len and s.payload_chain.run(pkt.payload)):
                continue
            if not all(check(pkt, flow) for check in s.final_checks):
                continue
            if s.post_actions:
                s.post_match(pkt, flow)
            if f.alerted is None:
                f.alerted = {num}
            else:
                f.alerted.add(num)
            ev = txd._apply(num, s, pkt, flow, tx)
            if ev is None:
                continue
            extra = ev.extra
            if extra is None:
                extra = ev.extra = {}
            extra["frame"] = f.eve(to_server, flow.proto == 6)
            if events is None:
                events = [ev]
            else:
                events.append(ev)
        return events


def _prefix_safe(s: Signature) -> bool:
    """A rule whose frame match on the bytes so far stays a match with more bytes: one
    frame chain, no transforms, only positive contents not anchored at the end."""
    if len(s.tx_chains) != 1 or s.tx_chains[0][1] or s.tx_checks or s.payload_chain is not None:
        return False
    return all(isinstance(it, Content) and not it.negated and not it.endswith
               for it in s.tx_chains[0][2].items)


def _tx_of(parser: Any, tx_id: int | None) -> Any:
    """The frame's transaction (by id), else none: a frame before any transaction."""
    if tx_id is None:
        return None
    txs = getattr(parser, "txs", None)
    if not txs:
        return None
    for tx in reversed(txs):
        if tx.tx_id == tx_id:
            return tx
    return None
