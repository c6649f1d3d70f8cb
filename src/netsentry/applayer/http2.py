"""HTTP/2 in clear text (RFC 9113), as Suricata's HTTP/2 parser (rust/src/http2/) reads it:
frames, HPACK header blocks, one transaction per stream, the EVE `http` record with its
`http2` object, and the `http.*` buffers of an HTTP/2 request and response.

- Detection: the client's connection preface (``PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n``,
  prior knowledge) or, from the server, a SETTINGS frame header (flags 0 or ACK, reserved
  bit clear, at most 16384 bytes). An HTTP/1 request with ``Upgrade: h2c`` answered by
  ``101 Switching Protocols`` hands its flow over (applayer/http.py asks for the change).
  ALPN ``h2`` over TLS is encrypted: not parsed.
- Frames: a 9-byte header (length, type, flags, stream id). A frame longer than what is
  buffered is waited for up to 64 KiB; a longer one is read from its first 256 bytes
  (``long_frame_data``) and the rest passed over. Frames on stream 0 (SETTINGS, GOAWAY,
  PING, WINDOW_UPDATE) each make a one-sided "global" transaction; the others belong to
  their stream's transaction (PUSH_PROMISE to the promised stream). At most
  ``app-layer.protocols.http2.max-streams`` transactions (4096): past it the flow's
  transactions are closed with ``too_many_streams`` and the direction given up.
- Header blocks: HPACK (RFC 7541) with the `hpack` library, one decoder per direction;
  a HEADERS frame without END_HEADERS is reassembled with its CONTINUATION frames up to
  ``max-reassembly-size`` (100 KiB; ``reassembly_limit_reached``). Dynamic table size
  updates are kept (`http2.size_update`); a SETTINGS_HEADER_TABLE_SIZE above
  ``max-table-size`` (64 KiB) is capped there.
- A stream's side is "closed" at END_STREAM; the transaction is complete when both are.
- Events (`app-layer-event:http2.*`): Suricata's names, on the frame's transaction
  (``invalid_client_magic``, ``long_frame_data``, ``invalid_frame_length``,
  ``invalid_header``, ``stream_id_reuse``, ``too_many_streams``, ``authority_host_mismatch``,
  ``userinfo_in_uri``, ``data_stream_zero``, ``invalid_frame_header``, ...).
- DATA frames' payload (padding removed) is the side's body: `file.data`,
  `http.request_body` / `http.response_body`; gzip and deflate content-encodings are undone.
"""

from __future__ import annotations

import zlib
from typing import Any

from hpack import Decoder
from hpack.exceptions import HPACKError

from netsentry.applayer.registry import (BOTH, BUFFERS, TO_CLIENT, TO_SERVER, ParserError, Protocol, ProtocolChange,
                                         register_buffer, register_protocol, register_states)
from netsentry.applayer.tx import Tx
from netsentry.config import get

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HEADER_LEN = 9
MAX_HANDLED_FRAME = 65536         # Suricata's HTTP2_MAX_HANDLED_FRAME_SIZE: longer frames are not buffered
MIN_HANDLED_FRAME = 256           # ... of which the first bytes are read
DEFAULT_MAX_FRAME = 16384         # SETTINGS_MAX_FRAME_SIZE's initial value (the server probe's bound)
MAX_FRAMES = 65536                # frames kept per transaction side (too_many_frames)
BODY_LIMIT = 1 << 20              # DATA bytes kept per side for the body buffers

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
FRAME_TYPES = ("DATA", "HEADERS", "PRIORITY", "RSTSTREAM", "SETTINGS", "PUSHPROMISE", "PING", "GOAWAY",
               "WINDOWUPDATE", "CONTINUATION")
F_END_STREAM, F_END_HEADERS, F_PADDED, F_PRIORITY = 0x1, 0x4, 0x8, 0x20
ERROR_CODES = ("NOERROR", "PROTOCOLERROR", "INTERNALERROR", "FLOWCONTROLERROR", "SETTINGSTIMEOUT",
               "STREAMCLOSED", "FRAMESIZEERROR", "REFUSEDSTREAM", "CANCEL", "COMPRESSIONERROR", "CONNECTERROR",
               "ENHANCEYOURCALM", "INADEQUATESECURITY", "HTTP11REQUIRED")
# SETTINGS identifiers (RFC 9113 6.5.2, RFC 8441, RFC 9218): EVE's names after "SETTINGS"
SETTINGS_IDS = {1: "HEADERTABLESIZE", 2: "ENABLEPUSH", 3: "MAXCONCURRENTSTREAMS", 4: "INITIALWINDOWSIZE",
                5: "MAXFRAMESIZE", 6: "MAXHEADERLISTSIZE", 8: "ENABLECONNECTPROTOCOL", 9: "NORFC7540PRIORITIES"}
# the rule names of the settings (http2.settings)
SETTINGS_NAMES = {"SETTINGS_HEADER_TABLE_SIZE": 1, "SETTINGS_ENABLE_PUSH": 2, "SETTINGS_MAX_CONCURRENT_STREAMS": 3,
                  "SETTINGS_INITIAL_WINDOW_SIZE": 4, "SETTINGS_MAX_FRAME_SIZE": 5,
                  "SETTINGS_MAX_HEADER_LIST_SIZE": 6, "SETTINGS_ENABLE_CONNECT_PROTOCOL": 8,
                  "SETTINGS_NO_RFC7540_PRIORITIES": 9}
# a side's progress (Suricata's HTTP2TxProgress)
STARTED, HEADERS_DONE, DATA_STARTED, CLOSED, COMPLETE = range(5)

# Events are the transaction's: seen by rules of either side
EVENTS: dict[str, int | None] = {name: BOTH for name in (
    "invalid_frame_header", "invalid_client_magic", "invalid_frame_data", "invalid_header",
    "invalid_frame_length", "extra_header_data", "long_frame_data", "stream_id_reuse",
    "invalid_http1_settings", "failed_decompression", "invalid_range", "header_integer_overflow",
    "too_many_streams", "authority_host_mismatch", "userinfo_in_uri", "reassembly_limit_reached",
    "dns_request_too_long", "dns_response_too_long", "data_stream_zero", "too_many_frames",
    "compression_bomb")}

LIMITS = {"max-streams": 4096, "max-table-size": 65536, "max-reassembly-size": 102400}


def probe(data: bytes, to_server: bool) -> bool | None:
    """The client's preface; from the server a SETTINGS frame header (Suricata's
    http2_probing_parser_tc)."""
    if to_server:
        if len(data) < len(PREFACE):
            return None if PREFACE.startswith(data) else False
        return data.startswith(PREFACE)
    if len(data) < HEADER_LEN:
        return None
    length = int.from_bytes(data[:3], "big")
    return (data[3] == SETTINGS and not data[4] & 0xFE and not data[5] & 0x80
            and length <= DEFAULT_MAX_FRAME and length % 6 == 0)


class Frame:
    """One frame as a transaction keeps it: its header and what was read of its payload."""

    __slots__ = ("ftype", "flags", "stream_id", "length", "settings", "error_code", "priority", "window",
                 "headers", "size_updates", "header_error", "promised")

    def __init__(self, ftype: int, flags: int, stream_id: int, length: int) -> None:
        self.ftype = ftype
        self.flags = flags
        self.stream_id = stream_id
        self.length = length
        self.settings: list[tuple[int, int]] | None = None
        self.error_code: int | None = None
        self.priority: int | None = None       # the weight of a PRIORITY frame or a HEADERS' priority
        self.window: int | None = None
        self.headers: list[tuple[bytes, bytes]] | None = None
        self.size_updates: list[int] | None = None
        self.header_error = False
        self.promised = 0                      # PUSH_PROMISE: the stream it announces


def _error_name(code: int) -> str:
    return ERROR_CODES[code] if code < len(ERROR_CODES) else f"unknown-{code}"


def _text(b: bytes) -> str:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(chr(c) if c < 128 else f"\\x{c:02x}" for c in b)


class Http2Tx(Tx):
    """A stream (request and response), or one frame of the connection (stream 0)."""

    __slots__ = ("stream_id", "frames", "progress_", "glob", "body", "body_len", "decoders", "child",
                 "request", "response", "doh")
    proto = "http2"

    def __init__(self, tx_id: int, stream_id: int, glob: int | None = None) -> None:
        super().__init__(tx_id)
        self.stream_id = stream_id
        self.frames: tuple[list[Frame], list[Frame]] = ([], [])    # by to_server index
        self.progress_ = [STARTED, STARTED]
        # a global transaction's one side (1 to server, 0 to client); None for a stream's
        self.glob = glob
        self.body = [bytearray(), bytearray()]
        self.body_len = [0, 0]
        self.decoders: list[Any] = [None, None]
        self.child = 0                  # a PUSH_PROMISE's stream whose CONTINUATION is pending
        # DNS over HTTP/2: the DNS request and response the stream carries (dns.Message; the
        # `dns.*` buffers read them as a DNS transaction's), and which sides carry DNS data
        self.request: Any = None
        self.response: Any = None
        self.doh = [False, False]
        if glob is not None:
            self.done[0] = self.done[1] = True
            self.progress_ = [COMPLETE, COMPLETE]

    def one_way(self) -> bool | None:
        return None if self.glob is None else bool(self.glob)

    def release(self) -> None:
        """Detection and logging are done with it: the bodies go (the frames stay, small)."""
        super().release()
        self.body = [bytearray(), bytearray()]

    def progress(self, to_server: bool) -> int:
        return self.progress_[int(to_server)]

    # --- what the buffers read ------------------------------------------------------------------
    def headers(self, to_server: bool) -> list[tuple[bytes, bytes]]:
        out: list[tuple[bytes, bytes]] = []
        for f in self.frames[int(to_server)]:
            if f.headers:
                out.extend(f.headers)
        return out

    def first(self, name: bytes, to_server: bool) -> bytes | None:
        for f in self.frames[int(to_server)]:
            if f.headers:
                for n, v in f.headers:
                    if n == name:
                        return v
        return None

    def joined(self, name: bytes, to_server: bool) -> bytes | None:
        """Every value of a header, joined with ", " (Suricata's http2_frames_get_header_value)."""
        vals = [v for n, v in self.headers(to_server) if n == name]
        return b", ".join(vals) if vals else None

    def frame_values(self, to_server: bool, attr: str) -> list[int]:
        return [v for f in self.frames[int(to_server)] if (v := getattr(f, attr)) is not None]

    # --- EVE -----------------------------------------------------------------------------------
    def eve(self) -> dict[str, Any] | None:
        out: dict[str, Any] = {"version": "2"}
        common: dict[str, bytes] = {}
        has_headers = False
        for key, d in (("request_headers", 1), ("response_headers", 0)):
            items: list[dict[str, Any]] = []
            any_block = False
            for f in self.frames[d]:
                if f.ftype not in (HEADERS, PUSH_PROMISE, CONTINUATION):
                    continue
                any_block = True
                for size in f.size_updates or ():
                    items.append({"table_size_update": size})
                if f.header_error:
                    items.append({"error": "HTTP2HeaderDecodeError"})
                for n, v in f.headers or ():
                    items.append({"name": _text(n), "value": _text(v)})
                    lname = n.lower()
                    if lname in _COMMON:
                        common[_COMMON[lname]] = v
            if any_block:
                out[key] = items
                has_headers = True
        for field in ("hostname", "url", "http_user_agent", "http_method"):
            if field in common:
                out[field] = _text(common[field])
        for field in ("status", "length"):
            if field in common and common[field].isdigit():
                out[field] = int(common[field])
        h2: dict[str, Any] = {"stream_id": self.stream_id}
        has_side = False
        for key, d in (("request", 1), ("response", 0)):
            side = _frames_eve(self.frames[d])
            if side:
                h2[key] = side
                has_side = True
        out["http2"] = h2
        if not (has_side or has_headers):
            return None
        return out

    def eve_objects(self) -> Any:
        rec = self.eve()
        out = [{"http": rec}] if rec is not None else []
        if self.request is not None or self.response is not None:
            # DNS over HTTP/2: each DNS message is a dns record too
            from netsentry.applayer.dns import _eve
            for m, kind in ((self.request, "request"), (self.response, "response")):
                if m is not None:
                    out.append({"dns": _eve(m, kind, self.tx_id)})
        if len(out) == 1:
            return out[0]
        return out

    def alert_objects(self) -> dict[str, Any]:
        rec = self.eve()
        out = {"http": rec} if rec is not None else {}
        m = self.response if self.response is not None else self.request
        if m is not None:
            from netsentry.applayer.dns import _eve
            out["dns"] = _eve(m, "response" if m is self.response else "request", self.tx_id)
        return out


_COMMON = {b":method": "http_method", b":path": "url", b"host": "hostname", b"user-agent": "http_user_agent",
           b":status": "status", b"content-length": "length"}


def _frames_eve(frames: list[Frame]) -> dict[str, Any]:
    """Suricata's log_http2_frames: the settings, the first error code, the first priority."""
    out: dict[str, Any] = {}
    settings = [{"settings_id": "SETTINGS" + SETTINGS_IDS[i], "settings_value": v}
                for f in frames if f.settings is not None for i, v in f.settings]
    if any(f.settings is not None for f in frames):
        out["settings"] = settings
    multiple = None
    for f in frames:
        if f.error_code is not None:
            if "error_code" not in out:
                out["error_code"] = _error_name(f.error_code)
            elif multiple is None:
                multiple = "error_code"
        elif f.priority is not None:
            if "priority" not in out:
                out["priority"] = f.priority
            elif multiple is None:
                multiple = "priority"
    if multiple is not None:
        out["has_multiple"] = multiple
    return out


class _Inflate:
    """One content-coding layer of a side's DATA (gzip or deflate, as Suricata's HTTP/2
    decompression)."""

    __slots__ = ("z", "failed")

    def __init__(self, coding: bytes) -> None:
        self.z = zlib.decompressobj(16 + zlib.MAX_WBITS if coding == b"gzip" else zlib.MAX_WBITS)
        self.failed = False

    def feed(self, data: bytes, room: int) -> bytes | None:
        if self.failed:
            return b""
        try:
            return self.z.decompress(data, room)
        except zlib.error:
            self.failed = True
            return None


class Http2Parser:
    """One HTTP/2 connection: both directions' frames, the streams as transactions."""

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        limits: dict[str, Any] = dict(LIMITS)
        limits.update(settings or {})
        self.max_streams = int(limits["max-streams"])
        self.max_table = int(limits["max-table-size"])
        self.max_reass = int(limits["max-reassembly-size"])
        self.txs: list[Http2Tx] = []
        self.by_stream: dict[int, Http2Tx] = {}
        self.buf = [b"", b""]                 # by to_server index: an incomplete frame
        self.skip = [0, 0]                    # bytes of a long frame still to pass over
        self.preface = False                  # the client's magic is behind us
        self.decoders = [Decoder(), Decoder()]
        self.reass: list[tuple[int, bytearray] | None] = [None, None]
        self.lost = [False, False]
        self.dropped = False                  # max-streams was reached
        self.original_proto: str | None = None    # the protocol the flow was detected as (h2c: http)
        self.doh_found = self.doh_told = False     # a stream carried DNS (the flow is doh2)

    # --- the h2c upgrade (applayer/http.py) -----------------------------------------------------
    def _take_over(self, req: Any, rest: bytes) -> None:
        """The flow came from HTTP/1 (101 to h2c): the request that asked for the upgrade is
        stream 1's, each of its fields a HEADERS frame of its own (`:method`, `:path`, Host as
        `:authority`, HTTP2-Settings as the client's SETTINGS on stream 0), its side closed
        (Suricata's SCHTTP2MimicHttp1Request); then the server's bytes after the 101."""
        import base64
        tx = Http2Tx(len(self.txs), 1)
        self.txs.append(tx)
        self.by_stream[1] = tx
        fields: list[tuple[bytes, bytes]] = [(b":method", req.method or b""), (b":path", req.uri_raw or b"")]
        for name, value in req.req_headers or ():
            if name == b"HTTP2-Settings":
                try:
                    raw = base64.b64decode(value.strip() + b"=" * (-len(value.strip()) % 4), validate=True)
                except ValueError:
                    tx.add_event("invalid_http1_settings")
                    continue
                if len(raw) % 6:
                    tx.add_event("invalid_http1_settings")
                f = Frame(SETTINGS, 0, 0, len(raw))
                self._payload(1, f, raw, True)
                glob = Http2Tx(len(self.txs), 0, glob=1)
                glob.frames[1].append(f)
                self.txs.append(glob)
                glob.touch(True)
                continue
            fields.append((b":authority" if name.lower() == b"host" else name, value))
        for name, value in fields:
            f = Frame(HEADERS, 0, 1, 0)
            f.headers = [(name, value)]
            tx.frames[1].append(f)
        tx.progress_[1] = CLOSED
        tx.done[1] = True
        tx.touch(True)
        if rest:
            self.parse(rest, False)

    # --- entry -----------------------------------------------------------------------------------
    def parse(self, data: bytes, to_server: bool, pkt: Any = None) -> None:
        d = 1 if to_server else 0
        if self.lost[d] or not data:
            return
        if to_server and not self.preface:
            data = self.buf[1] + data
            self.buf[1] = b""
            if len(data) < len(PREFACE):
                self.buf[1] = data
                return
            if not data.startswith(PREFACE):
                self._event(None, "invalid_client_magic")
            else:
                data = data[len(PREFACE):]
            self.preface = True
        skip = self.skip[d]
        if skip:
            if skip >= len(data):
                self.skip[d] = skip - len(data)
                return
            self.skip[d] = 0
            data = data[skip:]
        if self.buf[d]:
            data = self.buf[d] + data
            self.buf[d] = b""
        self._frames(d, data)
        if self.doh_found and not self.doh_told:
            # DNS found in a stream: the flow is DNS over HTTP/2 (Suricata's forced change to doh2)
            self.doh_told = True
            raise ProtocolChange("doh2", self)

    def gap(self, to_server: bool, nbytes: int) -> None:
        """Bytes lost: the framing of that direction is lost with them."""
        d = 1 if to_server else 0
        self.lost[d] = True
        self.buf[d] = b""

    # --- frames ----------------------------------------------------------------------------------
    def _frames(self, d: int, data: bytes) -> None:
        off, n = 0, len(data)
        while n - off >= HEADER_LEN:
            length = int.from_bytes(data[off:off + 3], "big")
            ftype, flags = data[off + 3], data[off + 4]
            sid = int.from_bytes(data[off + 5:off + 9], "big") & 0x7FFFFFFF
            start = off + HEADER_LEN
            avail = n - start
            complete = True
            if avail < length:
                if length < MAX_HANDLED_FRAME or avail < MIN_HANDLED_FRAME:
                    break                                   # wait for the rest
                self._event(None, "long_frame_data")
                self.skip[d] = length - avail
                complete = False
            payload = data[start:start + min(length, avail)]
            off = start + len(payload)
            if length == 0 and ftype == SETTINGS:
                continue                                    # an empty SETTINGS (an ACK) says nothing
            self._frame(d, ftype, flags, sid, length, payload, complete)
            if self.lost[d]:
                return
            if not complete:
                return
        if off < n:
            self.buf[d] = data[off:]

    def _event(self, tx: Http2Tx | None, name: str) -> None:
        if tx is None:
            if not self.txs:
                return                      # Suricata's state event: on the newest tx, if any
            tx = self.txs[-1]
        tx.add_event(name)
        tx.touch(True, frozenset())
        tx.touch(False, frozenset())

    def _frame(self, d: int, ftype: int, flags: int, sid: int, length: int, payload: bytes,
               complete: bool) -> None:
        to_server = bool(d)
        f = Frame(ftype, flags, sid, length)
        reass_limit = self._payload(d, f, payload, complete)
        tx = self._tx_for(d, f)
        if tx is None:
            self.lost[0] = self.lost[1] = True
            raise ParserError("http2: too_many_streams")
        if reass_limit:
            tx.add_event("reassembly_limit_reached")
        if sid == 0 and ftype not in (SETTINGS, WINDOW_UPDATE, PING, GOAWAY):
            tx.add_event("data_stream_zero" if ftype == DATA else "invalid_frame_header")
            tx.touch(to_server)
            return
        if ftype == DATA and sid:
            self._data(tx, d, f, payload)
        self._stream_state(tx, d, f)
        frames = tx.frames[d]
        if len(frames) < MAX_FRAMES:
            frames.append(f)
        else:
            tx.add_event("too_many_frames")
        tx.touch(to_server)
        if tx.glob is None:
            tx.touch(not to_server)     # Suricata marks a stream's both sides updated on each frame

    def _payload(self, d: int, f: Frame, p: bytes, complete: bool) -> bool:
        """Read a frame's payload into `f` (Suricata's parse_frame_data); events go to the
        newest transaction. True: the header reassembly limit was reached."""
        t = f.ftype
        if t == GOAWAY:
            if len(p) < 8:
                self._event(None, "invalid_frame_length")
            else:
                f.error_code = int.from_bytes(p[4:8], "big")
        elif t == SETTINGS:
            f.settings = []
            for i in range(0, len(p) - 5, 6):
                ident = int.from_bytes(p[i:i + 2], "big")
                if ident not in SETTINGS_IDS:
                    break                   # Suricata's many0 stops at an unknown identifier
                value = int.from_bytes(p[i + 2:i + 6], "big")
                f.settings.append((ident, value))
                if ident == 1:
                    # the size the other side's encoder may use: this side's peer decodes with it
                    self.decoders[1 - d].max_allowed_table_size = min(value, self.max_table)
        elif t == RST_STREAM:
            if len(p) != 4:
                self._event(None, "invalid_frame_length")
            else:
                f.error_code = int.from_bytes(p, "big")
        elif t == PRIORITY:
            if len(p) != 5:
                self._event(None, "invalid_frame_length")
            else:
                f.priority = p[4]
        elif t == WINDOW_UPDATE:
            if len(p) != 4:
                self._event(None, "invalid_frame_length")
            else:
                f.window = int.from_bytes(p, "big") & 0x7FFFFFFF
        elif t in (HEADERS, PUSH_PROMISE, CONTINUATION):
            return self._header_frame(d, f, p, complete)
        return False

    def _header_frame(self, d: int, f: Frame, p: bytes, complete: bool) -> bool:
        t, flags = f.ftype, f.flags
        limit = False
        if t == CONTINUATION:
            pending = self.reass[d]
            if pending is not None and pending[0] == f.stream_id:
                block = pending[1]
                room = self.max_reass - len(block)
                if len(p) > room:
                    block += p[:max(room, 0)]
                    limit = True
                else:
                    block += p
                if not flags & F_END_HEADERS:
                    f.headers = []
                    return limit
                self.reass[d] = None
                self._decode(d, f, bytes(block))
            else:
                self._decode(d, f, p)
            return limit
        off, end = 0, len(p)
        if flags & F_PADDED:
            if not p:
                self._event(None, "invalid_frame_data")
                return False
            end -= p[0]
            off = 1
        if t == PUSH_PROMISE:
            if end - off < 4:
                self._event(None, "invalid_frame_data")
                return False
            f.promised = int.from_bytes(p[off:off + 4], "big") & 0x7FFFFFFF
            off += 4
        elif flags & F_PRIORITY:
            if end - off < 5:
                self._event(None, "invalid_frame_data")
                return False
            f.priority = p[off + 4]
            off += 5
        if end < off:
            self._event(None, "invalid_frame_data")
            return False
        block = p[off:end]
        if not flags & F_END_HEADERS:
            self.reass[d] = (f.stream_id, bytearray(block))
            f.headers = []
            return False
        if not complete:
            self._event(None, "invalid_frame_data")
            return False
        self._decode(d, f, block)
        return False

    def _decode(self, d: int, f: Frame, block: bytes) -> None:
        # dynamic table size updates lead the block (RFC 7541 4.2)
        sizes = []
        i = 0
        while i < len(block) and block[i] & 0xE0 == 0x20:
            value, i = _hpack_int(block, i, 5)
            if value is None:
                break
            sizes.append(value)
        if sizes:
            f.size_updates = sizes
        try:
            f.headers = [(bytes(n), bytes(v)) for n, v in self.decoders[d].decode(block, raw=True)]
        except (HPACKError, IndexError, ValueError, UnicodeDecodeError):
            f.headers = []
            f.header_error = True
            self._event(None, "invalid_header")
            self.decoders[d] = Decoder()     # its table is lost with the block
            self.decoders[d].max_allowed_table_size = min(4096, self.max_table)

    # --- transactions ---------------------------------------------------------------------------
    def _tx_for(self, d: int, f: Frame) -> Http2Tx | None:
        if f.stream_id == 0:
            if len(self.txs) >= self.max_streams and not self._too_many():
                return None
            tx = Http2Tx(len(self.txs), 0, glob=d)
            self.txs.append(tx)
            return tx
        sid = f.stream_id
        if f.ftype == PUSH_PROMISE and f.promised:
            sid = f.promised
        elif f.ftype == CONTINUATION and d == 0:
            parent = self.by_stream.get(sid)
            if parent is not None and parent.child:
                sid = parent.child
        tx = self.by_stream.get(sid)
        if tx is not None:
            if (tx.progress_[0] == COMPLETE and f.ftype not in (RST_STREAM, WINDOW_UPDATE, PRIORITY)):
                self._event(None, "stream_id_reuse")
            return tx
        if len(self.txs) >= self.max_streams and not self._too_many():
            return None
        tx = Http2Tx(len(self.txs), sid)
        self.txs.append(tx)
        self.by_stream[sid] = tx
        return tx

    def _too_many(self) -> bool:
        """max-streams reached: every transaction is closed with `too_many_streams` (once)."""
        if not self.dropped:
            self.dropped = True
            for tx in self.txs:
                if not isinstance(tx, Http2Tx):
                    continue            # an h2c flow's HTTP/1 transactions
                tx.add_event("too_many_streams")
                tx.progress_ = [COMPLETE, COMPLETE]
                tx.done[0] = tx.done[1] = True
                tx.touch(True)
                tx.touch(False)
        return False

    def _stream_state(self, tx: Http2Tx, d: int, f: Frame) -> None:
        t = f.ftype
        if t == PUSH_PROMISE and d == 0:
            if not f.flags & F_END_HEADERS:
                tx.child = f.promised
            if tx.progress_[0] < HEADERS_DONE:
                tx.progress_[0] = HEADERS_DONE
        elif t == CONTINUATION and d == 0 and f.flags & F_END_HEADERS:
            tx.child = 0
        elif (t == HEADERS and d == 0) or t == RST_STREAM:
            tx.child = 0
        if t in (HEADERS, PUSH_PROMISE, CONTINUATION) and f.headers:
            self._header_events(tx, f.headers, d)
        if tx.glob is not None or t not in (HEADERS, DATA):
            return
        prog = tx.progress_
        if f.flags & F_END_STREAM and tx.doh[d] and tx.body[d]:
            self._doh_message(tx, bytes(tx.body[d]), bool(d))
        if f.flags & F_END_STREAM:
            if prog[d] < CLOSED:
                prog[d] = CLOSED
                tx.done[d] = True
                if prog[0] == CLOSED and prog[1] == CLOSED:
                    prog[0] = prog[1] = COMPLETE
        elif t == DATA:
            if prog[d] < DATA_STARTED:
                prog[d] = DATA_STARTED
        elif prog[d] < HEADERS_DONE:
            prog[d] = HEADERS_DONE

    def _header_events(self, tx: Http2Tx, headers: list[tuple[bytes, bytes]], d: int) -> None:
        authority = host = path = None
        doh = False
        for n, v in headers:
            ln = n.lower()
            if n == b"accept" and v == b"application/dns-message":
                doh = True
            elif n == b"content-type" and v == b"application/dns-message":
                tx.doh[d] = True
            elif n == b":path":
                path = v
            if ln == b":authority":
                authority = v
                if b"@" in v:
                    tx.add_event("userinfo_in_uri")
            elif ln == b"host":
                host = v
        if authority is not None and host is not None and authority.lower() != host.lower():
            tx.add_event("authority_host_mismatch")
        if doh and path is not None and path.startswith(b"/dns-query?dns="):
            # DNS over HTTP/2 with GET: the query is the path's base64 (RFC 8484 4.1)
            import base64
            import binascii
            b64 = path[len(b"/dns-query?dns="):].replace(b"-", b"+").replace(b"_", b"/")
            try:
                wire = base64.b64decode(b64 + b"=" * (-len(b64) % 4), validate=True)
            except (binascii.Error, ValueError):
                return
            self._doh_message(tx, wire, True)

    def _doh_message(self, tx: Http2Tx, wire: bytes, to_server: bool) -> None:
        from netsentry.applayer.dns import parse_message
        m = parse_message(wire)
        if m is None:
            return
        if to_server:
            tx.request = m
        else:
            tx.response = m
        self.doh_found = True

    def _data(self, tx: Http2Tx, d: int, f: Frame, p: bytes) -> None:
        if f.flags & F_PADDED and p:
            pad = p[0]
            p = p[1:len(p) - pad] if pad < len(p) else b""
        dec = tx.decoders[d]
        if dec is None and tx.body_len[d] == 0:
            coding = (tx.first(b"content-encoding", bool(d)) or b"").strip().lower()
            if coding in (b"gzip", b"deflate"):
                dec = tx.decoders[d] = _Inflate(coding)
            else:
                tx.decoders[d] = False
        tx.body_len[d] += len(p)
        if tx.doh[d] and tx.body_len[d] > 0xFFFF:
            # a DNS message is at most 65535 bytes: this side is not DNS after all
            tx.doh[d] = False
            tx.add_event("dns_request_too_long" if d else "dns_response_too_long")
        body = tx.body[d]
        room = BODY_LIMIT - len(body)
        if room <= 0:
            return
        if dec:
            out = dec.feed(p, room)
            if out is None:
                tx.add_event("failed_decompression")
                return
            p = out
        body += p[:room]


def upgrade_parser(txs: list[Any], request: Any, rest: bytes, settings: dict[str, Any] | None = None) -> Http2Parser:
    """The HTTP/2 parser a flow upgraded from HTTP/1 (101 to h2c) continues with: it keeps the
    HTTP/1 transactions (logged and inspected as they are) and takes over the request."""
    parser = Http2Parser(settings)
    parser.original_proto = "http"
    parser.txs.extend(txs)
    parser._take_over(request, rest)
    return parser


def _hpack_int(b: bytes, i: int, prefix: int) -> tuple[int | None, int]:
    """An HPACK integer (RFC 7541 5.1) at `i` with an N-bit prefix: (value, next index)."""
    mask = (1 << prefix) - 1
    value = b[i] & mask
    i += 1
    if value < mask:
        return value, i
    shift = 0
    while i < len(b):
        c = b[i]
        i += 1
        value += (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return value, i
        if shift > 28:
            return None, i
    return None, i


def configure(config: Any) -> dict[str, Any]:
    """`app-layer.protocols.http2`: enabled, max-streams, max-table-size, max-reassembly-size."""
    out: dict[str, Any] = dict(LIMITS)
    enabled = get(config, "app-layer.protocols.http2.enabled", True)
    out["enabled"] = enabled is True or str(enabled).strip().lower() in ("yes", "true", "on", "1")
    for key in LIMITS:
        v = get(config, f"app-layer.protocols.http2.{key}", None)
        if v is not None:
            try:
                out[key] = int(str(v).strip())
            except ValueError:
                pass
    return out


# --- buffers ------------------------------------------------------------------------------------
# `http2.header_name`, `http2.header` (one instance per header), and the `http.*` buffers Suricata
# maps onto an HTTP/2 transaction, registered as `NAME@http2` (rules/keywords/applayer.py picks
# the variant of the rule's protocol; detect/txdetect.py that of the transaction's).

def _names(tx: Http2Tx, ts: bool) -> list[bytes] | None:
    return [n for n, _v in tx.headers(ts)] or None


def _header_lines(tx: Http2Tx, ts: bool) -> list[bytes] | None:
    return [n + b": " + v for n, v in tx.headers(ts)] or None


def _req(fn: Any) -> Any:
    return lambda tx, ts: fn(tx)


def _request_line(tx: Http2Tx) -> bytes | None:
    if not tx.headers(True):
        return None
    return (tx.first(b":method", True) or b"") + b" " + (tx.first(b":path", True) or b"") + b" HTTP/2\r\n"


def _response_line(tx: Http2Tx) -> bytes | None:
    status = tx.first(b":status", False)
    return b"HTTP/2 " + status + b"\r\n" if status is not None else None


def _host_norm(tx: Http2Tx) -> bytes | None:
    v = tx.joined(b":authority", True)
    if v is None:
        return None
    at = v.find(b"@")
    if at >= 0:
        v = v[at + 1:]
        colon = v.find(b":")
        return (v[:colon] if colon >= 0 else v).lower()
    colon = v.find(b":")
    return (v[:colon] if colon >= 0 else v).lower()


def _headers_buf(tx: Http2Tx, ts: bool) -> bytes | None:
    cookie = b"cookie" if ts else b"set-cookie"
    out = b"".join(n + b": " + v.strip(b" \t") + b"\r\n" for n, v in tx.headers(ts) if n.lower() != cookie)
    return out or None


def _headers_raw(tx: Http2Tx, ts: bool) -> bytes | None:
    return b"".join(n + b": " + v + b"\r\n" for n, v in tx.headers(ts)) or None


def _header_names(tx: Http2Tx, ts: bool) -> bytes | None:
    names = [n for n, _v in tx.headers(ts)]
    return b"\r\n" + b"".join(n + b"\r\n" for n in names) + b"\r\n" if names else None


def _cookie(tx: Http2Tx, ts: bool) -> bytes | None:
    return tx.joined(b"cookie" if ts else b"set-cookie", ts)


def _hdr(name: bytes) -> Any:
    return lambda tx, ts: tx.joined(name, ts)


def _body(tx: Http2Tx, ts: bool) -> bytes | None:
    b = tx.body[int(ts)]
    return bytes(b) if b else None


def _file_data(tx: Http2Tx, ts: bool) -> list[bytes] | None:
    b = tx.body[int(ts)]
    return [bytes(b)] if b else None


def _protocol(tx: Http2Tx, ts: bool) -> bytes | None:
    return b"HTTP/2" if tx.headers(ts) else None


def _own(fn: Any) -> Any:
    """A getter that reads HTTP/2 transactions only (an h2c flow keeps its HTTP/1 ones)."""
    return lambda tx, ts: fn(tx, ts) if tx.proto == "http2" else None


register_buffer("http2.header_name", "http2", BOTH, _own(_names), multi=True)
register_buffer("http2.header", "http2", BOTH, _own(_header_lines), multi=True)

_H2_BUFFERS: list[tuple[str, int, Any, bool]] = [
    ("http.method", TO_SERVER, lambda tx, ts: tx.first(b":method", True), False),
    ("http.uri", TO_SERVER, lambda tx, ts: tx.first(b":path", True), False),
    ("http.uri.raw", TO_SERVER, lambda tx, ts: tx.first(b":path", True), False),
    ("http.request_line", TO_SERVER, _req(_request_line), False),
    ("http.response_line", TO_CLIENT, _req(_response_line), False),
    ("http.stat_code", TO_CLIENT, lambda tx, ts: tx.first(b":status", False), False),
    # HTTP/2 has no reason phrase: an empty buffer once the response's headers are in
    ("http.stat_msg", TO_CLIENT, lambda tx, ts: b"" if tx.first(b":status", False) is not None else None, False),
    ("http.host", TO_SERVER, _req(_host_norm), False),
    ("http.host.raw", TO_SERVER, lambda tx, ts: tx.joined(b":authority", True), False),
    ("http.user_agent", TO_SERVER, lambda tx, ts: tx.joined(b"user-agent", True), False),
    ("http.accept", TO_SERVER, lambda tx, ts: tx.joined(b"accept", True), False),
    ("http.accept_enc", TO_SERVER, lambda tx, ts: tx.joined(b"accept-encoding", True), False),
    ("http.accept_lang", TO_SERVER, lambda tx, ts: tx.joined(b"accept-language", True), False),
    ("http.referer", TO_SERVER, lambda tx, ts: tx.joined(b"referer", True), False),
    ("http.connection", BOTH, _hdr(b"connection"), False),
    ("http.content_type", BOTH, _hdr(b"content-type"), False),
    ("http.content_len", BOTH, _hdr(b"content-length"), False),
    ("http.server", TO_CLIENT, lambda tx, ts: tx.joined(b"server", False), False),
    ("http.location", TO_CLIENT, lambda tx, ts: tx.joined(b"location", False), False),
    ("http.cookie", BOTH, _cookie, False),
    ("http.header", BOTH, _headers_buf, False),
    ("http.header.raw", BOTH, _headers_raw, False),
    ("http.header_names", BOTH, _header_names, False),
    ("http.protocol", BOTH, _protocol, False),
    ("http.request_body", TO_SERVER, lambda tx, ts: _body(tx, True), False),
    ("http.response_body", TO_CLIENT, lambda tx, ts: _body(tx, False), False),
    ("http.request_header", TO_SERVER, lambda tx, ts: _header_lines(tx, True), True),
    ("http.response_header", TO_CLIENT, lambda tx, ts: _header_lines(tx, False), True),
    ("file.data", BOTH, _file_data, True),
]
for _name, _dir, _get, _multi in _H2_BUFFERS:
    register_buffer(f"{_name}@http2", "http2", _dir, _own(_get), multi=_multi)


def _frame(part: str) -> Any:
    """Suricata's HTTP/2 frames (`frame:http2.pdu` / `.hdr` / `.data`), rebuilt per transaction
    from what the parser keeps: only headers and lengths, so the data of a frame is
    available for the frames whose payload is kept whole (SETTINGS, WINDOW_UPDATE, PING,
    GOAWAY, RST_STREAM, PRIORITY)."""
    def get(tx: Http2Tx, ts: bool) -> list[bytes] | None:
        out = []
        for f in tx.frames[int(ts)]:
            hdr = f.length.to_bytes(3, "big") + bytes([f.ftype, f.flags]) + f.stream_id.to_bytes(4, "big")
            data = _frame_payload(f)
            if part == "hdr":
                out.append(hdr)
            elif data is not None:
                out.append(data if part == "data" else hdr + data)
        return out or None
    return get


def _frame_payload(f: Frame) -> bytes | None:
    if f.settings is not None:
        return b"".join(i.to_bytes(2, "big") + v.to_bytes(4, "big") for i, v in f.settings)
    if f.ftype == WINDOW_UPDATE and f.window is not None:
        return f.window.to_bytes(4, "big")
    if f.ftype == RST_STREAM and f.error_code is not None:
        return f.error_code.to_bytes(4, "big")
    return None


# DNS over HTTP/2: the DNS buffers of the stream's DNS messages (the DNS getters read a
# transaction's `request` and `response`)
from netsentry.applayer import dns as _dns  # noqa: E402  (registers the DNS buffers first)

for _name in ("dns.query", "dns.queries.rrname", "dns.answer.name", "dns.answers.rrname", "dns.authorities.rrname",
              "dns.additionals.rrname", "dns.response.rrname"):
    _b = BUFFERS[_name]
    register_buffer(f"{_name}@http2", "http2", _b.direction, _own(_b.getter), multi=_b.multi)

for _part in ("pdu", "hdr", "data"):
    register_buffer(f"frame:http2.{_part}", "http2", BOTH, _own(_frame(_part)), multi=True)

register_protocol(Protocol("http2", (6,), probe, Http2Parser, (), configure=configure))
register_states("http2", ("request_started", "request_headers", "request_data", "request_closed",
                          "request_complete"),
                ("response_started", "response_headers", "response_data", "response_closed",
                 "response_complete"),
                lambda tx, to_server: tx.progress(to_server) if tx.proto == "http2" else 0)


def _files(tx: Any, to_server: bool) -> list[Any]:
    """The file of one side of an HTTP/2 stream (Suricata's HTTP/2 file tracking): its
    DATA (content-decoded), named by the request's :path, closed with the side."""
    from netsentry.applayer.files import File
    if tx.proto != "http2":
        return []
    d = int(to_server)
    size = tx.body_len[d]
    if not size:
        return []
    body = bytes(tx.body[d])
    if tx.decoders[d]:
        size, cut = len(body), len(body) >= BODY_LIMIT
    else:
        cut = size > len(body)
    name = tx.first(b":path", True) or b""
    return [File(name, body, size, bool(tx.done[d]), cut)]


def _register_files() -> None:
    from netsentry.applayer.files import FILES
    FILES["http2"] = _files


_register_files()
