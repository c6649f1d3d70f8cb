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

# Suricata's alert payload buffer (JSON_STREAM_BUFFER_SIZE) and its UDP frame cut
TCP_FRAME_LOG_LIMIT = 4096
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
