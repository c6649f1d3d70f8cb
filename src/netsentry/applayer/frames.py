"""The `frame` object of an alert on an app-layer frame (Suricata's AlertAddFrame and
FrameJsonLogOneFrame, output-json-frame.c).

Suricata's parsers mark frames (a PDU, its header, a request line...) in the stream;
a `frame:NAME` rule is inspected per frame and its alert describes the frame it matched:
its `type` (the frame's name within the protocol: `pdu`, `request.headers`), the packet's
`direction`, its `length`, whether all its bytes were there (`complete`) and its bytes as
`payload` / `payload_printable` (a TCP frame's up to the alert payload buffer, 4 KiB by
default, with "[N bytes missing]" where the stream had a gap; a UDP frame's first 256).

Here frames are rebuilt per transaction by the protocol's buffer getters (`frame:*`
buffers in the registry); a getter may register what it knows beyond the bytes with
`register_frame_info` (a frame still growing, its offset in the stream, a gap inside).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from netsentry.applayer.registry import BUFFERS

# Suricata's alert payload buffer (4 KiB: a MemBuffer keeps its last byte for the NUL, so
# 4095 bytes are logged, suricata-verify smb2-frames-gap-payload-logging-02) and its UDP
# frame cut
TCP_FRAME_LOG_LIMIT = 4095
UDP_FRAME_LOG_LIMIT = 256

# the frame protocol prefix of a buffer's protocol, where it is not the protocol's name
FRAME_PREFIX = {"http": "http1"}

_PRINTABLE = bytes(c if 32 <= c < 127 or c in (10, 13) else 46 for c in range(256))

# buffer name -> info(tx, to_server, frame bytes) -> dict of fields that override the
# defaults (length, complete, stream_offset, payload: the bytes to log with gap markers)
FRAME_INFO: dict[str, Callable[[Any, bool, bytes], dict[str, Any] | None]] = {}


def register_frame_info(name: str, info: Callable[[Any, bool, bytes], dict[str, Any] | None]) -> None:
    FRAME_INFO[name] = info


def frame_type(name: str) -> str:
    """`frame:sip.request.headers` -> `request.headers`: the frame's name in its protocol."""
    text = name[len("frame:"):]
    buf = BUFFERS.get(name)
    proto = buf.proto if buf is not None else ""
    prefix = FRAME_PREFIX.get(proto, proto) + "."
    return text[len(prefix):] if prefix != "." and text.startswith(prefix) else text


def matched_frame(name: str, transforms: tuple[Any, ...], chain: Any, tx: Any, to_server: bool,
                  get_buffer: Callable[..., Any]) -> bytes | None:
    """The frame (untransformed) the rule's chain matched on `tx`: for a frame type with
    several instances (TLS records, DCERPC PDUs), the first one the chain matches."""
    raw = get_buffer(tx, name, (), to_server)
    if raw is None or not BUFFERS[name].multi:
        return raw if isinstance(raw, bytes) else None
    seen = get_buffer(tx, name, transforms, to_server) if transforms else raw
    if seen is None:
        return None
    for i, b in enumerate(seen):
        if chain.run(b):
            return raw[i] if i < len(raw) else None
    return None


def frame_object(name: str, frame: bytes, tx: Any, to_server: bool, pkt: Any) -> dict[str, Any]:
    """The alert's `frame` object for `frame`, a frame of buffer `name`."""
    obj: dict[str, Any] = {"type": frame_type(name),
                           "direction": "toserver" if pkt.to_server else "toclient"}
    info = FRAME_INFO.get(name)
    extra = info(tx, to_server, frame) if info is not None else None
    tcp = pkt.proto == 6
    if tcp and extra is not None and "stream_offset" in extra:
        obj["stream_offset"] = extra["stream_offset"]
    obj["length"] = extra.get("length", len(frame)) if extra else len(frame)
    logged = extra.get("payload", frame) if extra else frame
    logged = logged[:TCP_FRAME_LOG_LIMIT if tcp else UDP_FRAME_LOG_LIMIT]
    if logged or not tcp:
        obj["payload"] = base64.b64encode(logged).decode()
        obj["payload_printable"] = logged.translate(_PRINTABLE).decode()
        obj["complete"] = extra.get("complete", True) if extra else True
    return obj


# --- stream frames (Suricata's FramesContainer, app-layer-frames.c) ---------------------------
# A parser that Suricata registers frames for marks them in its stream as it reads them: one
# `frames.add(...)` call per frame kind, on the parser's `stream_frames` (None unless a rule asks for
# a frame of the protocol: then a parser pays one attribute test per PDU). Detection
# (detect/framedetect.py) inspects each frame of a packet's direction once it is complete and
# alerts once per matching frame; the alert's `frame` object is `Frame.eve`.

# protocol -> frame type names its parser registers ("pdu", "smb2.hdr"); a `frame:` rule on
# one of them is a stream-frame rule. Filled by `register_stream_frames`.
STREAM_FRAMES: dict[str, tuple[str, ...]] = {}
# the "frame:..." buffer names of those frames
STREAM_FRAME_BUFFERS: set[str] = set()
# protocol -> the frame types the loaded rules inspect (Suricata's FrameConfigEnable); read
# by a parser when it is made. Set by the detection engine (FrameDetect) for its rules.
ENABLED: dict[str, frozenset[str]] = {}

# a frame's data kept at most this long beyond what a rule or the log can read
FRAME_DATA_LIMIT = 1 << 16
# frames kept per direction waiting for inspection; past it the oldest go (a flow whose
# packets of one side stopped, or frames left by a parser made before a rule reload took
# the frame rules away, must not grow without bound)
MAX_FRAMES = 4096


def _no_tx_buffer(tx: Any, to_server: bool) -> None:
    return None


def register_stream_frames(proto: str, types: tuple[str, ...], bare: bool = False) -> None:
    """A protocol's frame types (Suricata's AppLayerFrameType enum, as named in rules after the
    protocol's prefix: `tls.pdu` is type `pdu` of `tls`). Each becomes a `frame:PREFIX.TYPE`
    buffer the transaction engine never sees (its getter has nothing). `bare`: the types
    carry a prefix of their own (SMB's `smb2.pdu`, `nbss.hdr`), named so in rules and alerts."""
    from netsentry.applayer.registry import BOTH, register_buffer
    STREAM_FRAMES[proto] = types
    pre = FRAME_PREFIX.get(proto, proto)
    for t in (*types, "stream"):
        names = (f"frame:{t}", f"frame:{pre}.{t}") if bare else (f"frame:{pre}.{t}",)
        STREAM_FRAME_BUFFERS.update(names)
        register_buffer(names[0], proto, BOTH, _no_tx_buffer, *names[1:])


def stream_frame_type(name: str) -> str:
    """`frame:tls.pdu` -> `pdu`, `frame:smb2.pdu` -> `smb2.pdu`: a stream frame's type."""
    buf = BUFFERS[name]
    text = buf.name[len("frame:"):]
    types = STREAM_FRAMES.get(buf.proto, ())
    if text in types or text == "stream":
        return text
    pre = FRAME_PREFIX.get(buf.proto, buf.proto) + "."
    return text[len(pre):] if text.startswith(pre) else text


def frames_for(proto: str) -> Frames | None:
    """The frames container a new parser of `proto` keeps, or None when no rule reads its frames."""
    want = ENABLED.get(proto)
    return Frames(want) if want else None


class Frame:
    """One frame: its type, id (per direction, from 1, as Suricata's), where it starts in
    its direction's stream, its length (-1 while unknown), the bytes of it read so far
    (`have`: how many of its stream bytes went by, kept or not) and the stream bytes
    missing inside it (a gap: `[N bytes missing]` when logged)."""

    __slots__ = ("id", "type", "offset", "length", "data", "have", "tx_id", "gaps", "looked", "alerted")

    def __init__(self, fid: int, ftype: str, offset: int, length: int, data: bytes, tx_id: int | None) -> None:
        self.id = fid
        self.type = ftype
        self.offset = offset
        self.length = length
        self.data = bytearray(data[:length] if length >= 0 else data)
        self.have = len(self.data)
        self.tx_id = tx_id
        self.gaps: list[tuple[int, int]] | None = None   # (position in data, bytes missing)
        self.looked = 0         # `have` when detection last looked at the open frame (IPS)
        self.alerted: set[int] | None = None    # rules that alerted on it while it was open

    @property
    def complete(self) -> bool:
        return 0 <= self.length <= self.have

    def append(self, data: bytes) -> None:
        """More stream bytes of a frame that started on an earlier segment."""
        room = self.length - self.have if self.length >= 0 else len(data)
        if room <= 0:
            return
        take = data[:room]
        if len(self.data) < FRAME_DATA_LIMIT:
            self.data += take
        self.have += len(take)

    def close(self, length: int) -> None:
        """The length of a frame opened without one (SMTP's data frame) is known now."""
        self.length = max(length, 0)
        if self.have > self.length:
            del self.data[self.length:]
            self.have = self.length

    def gap(self, nbytes: int) -> None:
        """`nbytes` of the stream inside this frame were never seen."""
        if self.length >= 0:
            nbytes = min(nbytes, self.length - self.have)
        if nbytes <= 0:
            return
        if self.gaps is None:
            self.gaps = []
        self.gaps.append((len(self.data), nbytes))
        self.have += nbytes

    def logged(self) -> bytes:
        """The frame's bytes as logged: a gap as Suricata's "[N bytes missing]"."""
        if not self.gaps:
            return bytes(self.data)
        out = bytearray()
        at = 0
        for pos, n in self.gaps:
            out += self.data[at:pos]
            out += b"[%d bytes missing]" % n
            at = pos
        out += self.data[at:]
        return bytes(out)

    def eve(self, direction_to_server: bool, tcp: bool) -> dict[str, Any]:
        """The alert's `frame` object (Suricata's FrameJsonLogOneFrame)."""
        obj: dict[str, Any] = {"type": self.type, "id": self.id,
                               "direction": "toserver" if direction_to_server else "toclient"}
        if tcp:
            obj["stream_offset"] = self.offset
        obj["length"] = self.length if self.length >= 0 else len(self.data)
        obj["complete"] = self.complete
        logged = self.logged()[:TCP_FRAME_LOG_LIMIT if tcp else UDP_FRAME_LOG_LIMIT]
        obj["payload"] = base64.b64encode(logged).decode()
        obj["payload_printable"] = logged.translate(_PRINTABLE).decode()
        if self.tx_id is not None:
            obj["tx_id"] = self.tx_id
        return obj


class Frames:
    """A flow's frames by direction (0 to client, 1 to server), kept by its parser.

    The parser hands each direction's stream bytes to `stream` (and its gaps to `gap`)
    before reading them: a frame still short of its length takes them, so a frame's bytes
    are the stream's whatever the parser buffers or skips, and `total[d]` is the stream
    offset after them: a parser finds a frame's offset as `total - len(buffer) + position`."""

    __slots__ = ("want", "items", "ids", "total")

    def __init__(self, want: frozenset[str]) -> None:
        self.want = want
        self.items: tuple[list[Frame], list[Frame]] = ([], [])
        self.ids = [0, 0]
        self.total = [0, 0]

    def stream(self, to_server: bool, data: bytes) -> None:
        d = 1 if to_server else 0
        end = self.total[d]
        if not end and "stream" in self.want and data:
            # Suricata's `<proto>.stream` frame, the direction's whole stream, made on its
            # first bytes (app-layer-parser.c HandleStreamFrames): always frame 1
            self.add(to_server, "stream", 0, b"")
        for f in self.items[d]:
            if not f.complete and f.offset + f.have == end:
                f.append(data)
        self.total[d] = end + len(data)

    def gap(self, to_server: bool, nbytes: int) -> None:
        """A stream gap: it is inside each frame of the direction still short of bytes."""
        d = 1 if to_server else 0
        end = self.total[d]
        for f in self.items[d]:
            if not f.complete and f.offset + f.have == end:
                f.gap(nbytes)
        self.total[d] = end + nbytes

    def add(self, to_server: bool, ftype: str, offset: int, data: bytes, length: int = -1,
            tx_id: int | None = None) -> Frame | None:
        """A new frame of `ftype` starting at stream `offset` with the bytes of it at hand
        (up to the stream's end so far; `length` -1: not known yet). None when no rule
        reads this type."""
        if ftype not in self.want:
            return None
        d = 1 if to_server else 0
        self.ids[d] += 1
        f = Frame(self.ids[d], ftype, offset, length, data, tx_id)
        items = self.items[d]
        if len(items) >= MAX_FRAMES:
            del items[:len(items) - MAX_FRAMES + 1]
        items.append(f)
        return f
