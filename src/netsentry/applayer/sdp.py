"""SDP (RFC 8866) bodies of SIP messages, as Suricata's rust/src/sdp/ reads them: the
`sdp.*` buffers and the `sdp` object of the EVE `sip` record.

A body is SDP when it opens with ``v=0``, then ``o=`` and ``s=`` lines; the session
fields follow in RFC order (i, u, e, p, c, b*, then time descriptions t with an
optional r, z, k, a*), then media descriptions (m, with i, c, b*, k, a*). A line
that breaks the order ends the description (what came before it is kept). The
origin and connection lines are logged with their fields joined by single spaces.
"""

from __future__ import annotations

from typing import Any


class Media:
    __slots__ = ("media", "info", "connection", "bandwidths", "key", "attributes")

    def __init__(self, media: bytes) -> None:
        self.media = media
        self.info: bytes | None = None
        self.connection: bytes | None = None
        self.bandwidths: list[bytes] = []
        self.key: bytes | None = None
        self.attributes: list[bytes] = []


class Sdp:
    __slots__ = ("origin", "session_name", "session_info", "uri", "email", "phone", "connection",
                 "bandwidths", "times", "timezone", "key", "attributes", "media")

    def __init__(self) -> None:
        self.origin = b""
        self.session_name = b""
        self.session_info: bytes | None = None
        self.uri: bytes | None = None
        self.email: bytes | None = None
        self.phone: bytes | None = None
        self.connection: bytes | None = None
        self.bandwidths: list[bytes] = []
        self.times: list[list[bytes | None]] = []      # [time, repeat]
        self.timezone: bytes | None = None
        self.key: bytes | None = None
        self.attributes: list[bytes] = []
        self.media: list[Media] = []

    def eve(self) -> dict[str, Any]:
        out: dict[str, Any] = {"origin": _t(self.origin), "session_name": _t(self.session_name)}
        for key, v in (("session_info", self.session_info), ("uri", self.uri), ("email", self.email),
                       ("phone_number", self.phone), ("connection_data", self.connection)):
            if v is not None:
                out[key] = _t(v)
        if self.bandwidths:
            out["bandwidths"] = [_t(b) for b in self.bandwidths]
        out["time_descriptions"] = [{"time": _t(t), **({"repeat_time": _t(r)} if r is not None else {})}
                                    for t, r in self.times]
        if self.timezone is not None:
            out["timezone"] = _t(self.timezone)
        if self.key is not None:
            out["encryption_key"] = _t(self.key)
        if self.attributes:
            out["attributes"] = [_t(a) for a in self.attributes]
        if self.media:
            media = []
            for m in self.media:
                d: dict[str, Any] = {"media": _t(m.media)}
                if m.info is not None:
                    d["media_info"] = _t(m.info)
                if m.bandwidths:
                    d["bandwidths"] = [_t(b) for b in m.bandwidths]
                if m.connection is not None:
                    d["connection_data"] = _t(m.connection)
                if m.key is not None:
                    d["encryption_key"] = _t(m.key)
                if m.attributes:
                    d["attributes"] = [_t(a) for a in m.attributes]
                media.append(d)
            out["media_descriptions"] = media
        return out


def _t(b: bytes) -> str:
    return b.decode("utf-8", "replace")


# session-level line types in RFC order: each may come only after those before it
_ORDER = {b"i": 0, b"u": 1, b"e": 2, b"p": 3, b"c": 4, b"b": 5, b"t": 6, b"r": 6, b"z": 7, b"k": 8, b"a": 9}
_MEDIA_ORDER = {b"i": 0, b"c": 1, b"b": 2, b"k": 3, b"a": 4}


def parse(body: bytes) -> Sdp | None:
    """The SDP description at the start of `body`, or None when it is not one."""
    lines = body.replace(b"\r\n", b"\n").split(b"\n")
    if len(lines) < 3 or lines[0] != b"v=0" or not lines[1].startswith(b"o=") or not lines[2].startswith(b"s="):
        return None
    sdp = Sdp()
    sdp.origin = b" ".join(lines[1][2:].split())
    sdp.session_name = lines[2][2:]
    pos = -1
    media: Media | None = None
    for line in lines[3:]:
        if len(line) < 2 or line[1:2] != b"=":
            break
        kind, value = line[:1], line[2:]
        if kind == b"m":
            media = Media(value)
            sdp.media.append(media)
            pos = -1
            continue
        if media is not None:
            order = _MEDIA_ORDER.get(kind)
            if order is None or order < pos or (order == pos and kind not in (b"b", b"a")):
                break
            pos = order
            if kind == b"i":
                media.info = value
            elif kind == b"c":
                media.connection = b" ".join(value.split())
            elif kind == b"b":
                media.bandwidths.append(value)
            elif kind == b"k":
                media.key = value
            else:
                media.attributes.append(value)
            continue
        order = _ORDER.get(kind)
        if order is None or order < pos or (order == pos and kind not in (b"b", b"t", b"r", b"a")):
            break
        pos = order
        if kind == b"i":
            sdp.session_info = value
        elif kind == b"u":
            sdp.uri = value
        elif kind == b"e":
            sdp.email = value
        elif kind == b"p":
            sdp.phone = value
        elif kind == b"c":
            sdp.connection = b" ".join(value.split())
        elif kind == b"b":
            sdp.bandwidths.append(value)
        elif kind == b"t":
            sdp.times.append([value, None])
        elif kind == b"r":
            if not sdp.times or sdp.times[-1][1] is not None:
                break
            sdp.times[-1][1] = value
        elif kind == b"z":
            sdp.timezone = value
        elif kind == b"k":
            sdp.key = value
        else:
            sdp.attributes.append(value)
    if not sdp.times:
        return None             # a time description is mandatory
    return sdp
