"""HTTP/1.x: probe, parser (requests and responses into transactions, in order), buffers, EVE.

The parser follows libhtp's behaviour where rules can tell the difference:

- leading empty lines before a request line are skipped; the request line is
  method, then the target, then the protocol when the last word starts with
  ``HTTP/`` (so a target may contain spaces, suricata-verify http-uri-spaces);
  without a protocol the request is HTTP/0.9 unless header lines follow;
- header lines end at LF (CR optional); a line starting with space or tab
  continues the previous header; repeated headers are joined with ", ";
- request bodies: chunked, else Content-Length, else none; response bodies:
  none for HEAD, 1xx, 204 and 304, else chunked, Content-Length, or up to
  the end of the connection; a 100 Continue response is followed by the
  transaction's real response;
- Content-Encoding gzip / deflate (also x-gzip, x-deflate, layered) is
  decoded in both directions, each body within its inspection limit
  (`app-layer.protocols.http.*-body-limit`) and the decompressed output
  within the decompression limit; a body that does not decode stays as sent.

Transactions are numbered in order from 0 per flow (EVE `tx_id`); response
N belongs to request N.
"""

from __future__ import annotations

import lzma
import re
import zlib
from typing import Any

from netsentry.applayer import files as files_mod
from netsentry.applayer.files import http_files
from netsentry.applayer.frames import frames_for, register_stream_frames
from netsentry.applayer.httpheaders import DEFORMED_EOL as HF_DEFORMED_EOL
from netsentry.applayer.httpheaders import MISSING_COLON as HF_MISSING_COLON
from netsentry.applayer.httpheaders import NAME_EMPTY as HF_NAME_EMPTY
from netsentry.applayer.httpheaders import NAME_LEADING_WHITESPACE as HF_NAME_LEADING_WHITESPACE
from netsentry.applayer.httpheaders import NAME_NON_TOKEN_CHARS as HF_NAME_NON_TOKEN_CHARS
from netsentry.applayer.httpheaders import NAME_TRAILING_WHITESPACE as HF_NAME_TRAILING_WHITESPACE
from netsentry.applayer.httpheaders import Incomplete, parse_headers
from netsentry.applayer.registry import (BOTH, TO_CLIENT, TO_SERVER, Protocol, ProtocolChange, register_buffer,
                                         register_states,
                                         register_protocol)
from netsentry.applayer.tx import Tx
from netsentry.applayer.uri import decode_percent, normalise_uri, split_target

METHODS = (b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"TRACE", b"CONNECT", b"PATCH",
           b"PROPFIND", b"PROPPATCH", b"MKCOL", b"COPY", b"MOVE", b"LOCK", b"UNLOCK", b"SEARCH",
           b"REPORT", b"CHECKOUT", b"MERGE", b"SUBSCRIBE", b"NOTIFY", b"M-SEARCH")
MAX_LINE = 65536          # a header or request line longer than this is cut (libhtp field limit)
# the buffers a body segment changes (Tx.touch keeps the others and their prefilter hits)
BODY_BUFFERS = frozenset({"http.request_body", "http.response_body", "file.data", "file.name",
                          "frame:http1.request", "frame:http1.response", "frame:http1.request_body",
                          "frame:http1.response_body"})
LIMITS = {"request-body-limit": 100 * 1024, "response-body-limit": 100 * 1024,
          "decompression-limit": 1 << 20, "decompress-layer-limit": 2,
          "lzma-memlimit": 1 << 20, "lzma-layers": 0,
          "double-decode-path": False, "double-decode-query": False}
FIELD_LIMIT = 18000       # libhtp-rs field_limit: a line buffered beyond it is request/response_field_too_long
# Authorization schemes libhtp-rs parses (parse_authorization); any other is request_auth_unrecognized
AUTH_SCHEMES = frozenset({b"basic", b"digest", b"bearer"})
# The app-layer events this parser raises (Suricata's names, app-layer-event:http.NAME), with
# the side of the transaction each belongs to (0 request, 1 response, None either)
EVENTS: dict[str, int | None] = {
    "request_chunk_extension": 0, "response_chunk_extension": 1,
    "duplicate_content_length_field_in_request": 0, "duplicate_content_length_field_in_response": 1,
    "request_auth_unrecognized": 0, "request_field_too_long": 0, "response_field_too_long": 1,
    "too_many_encoding_layers": None, "double_encoded_uri": 0, "missing_host_header": 0,
    "request_line_missing_protocol": 0, "request_body_unexpected": 0,
    "request_line_leading_whitespace": 0, "method_delim_non_compliant": 0, "uri_delim_non_compliant": 0,
    "request_line_unknown_method": 0, "request_line_unknown_method_no_protocol": 0,
    "request_field_missing_colon": 0, "response_field_missing_colon": 1,
    "request_header_repetition": 0, "response_header_repetition": 1,
    "invalid_content_length_field_in_request": 0, "invalid_content_length_field_in_response": 1,
    "invalid_transfer_encoding_value_in_request": 0, "response_abnormal_transfer_encoding": 1,
    "response_chunked_old_proto": 1, "response_line_invalid_protocol": 1,
    "response_line_invalid_response_status": 1, "host_header_ambiguous": 0,
    "unable_to_match_response_to_request": 1, "100_continue_already_seen": 1,
    # raised on the response while the flow's packets both ways still inspect the tx:
    # Suricata alerts on it once each way (suricata-verify protocol-change-failed-event)
    "failed_protocol_change": BOTH,
    # header lines libhtp-rs warns about (httpheaders' flags) and a body where none belongs
    "request_invalid_lws_after_name": 0, "invalid_request_field_folding": 0, "request_header_invalid": 0,
    "request_invalid_empty_name": 0, "deformed_eol": 1, "response_invalid_lws_after_name": 1,
    "invalid_response_field_folding": 1, "response_header_name_not_token": 1,
    "response_invalid_empty_name": 1, "response_body_unexpected": 1,
}
# libhtp-rs's known methods (HtpMethod): after a request, a line not starting with one of
# them is more of that request's body (request_body_unexpected), not a new request
LIBHTP_METHODS = frozenset({
    b"GET", b"PUT", b"POST", b"DELETE", b"CONNECT", b"OPTIONS", b"TRACE", b"PATCH", b"PROPFIND",
    b"PROPPATCH", b"MKCOL", b"COPY", b"MOVE", b"LOCK", b"UNLOCK", b"VERSION-CONTROL", b"CHECKOUT",
    b"UNCHECKOUT", b"CHECKIN", b"UPDATE", b"LABEL", b"REPORT", b"MKWORKSPACE", b"MKACTIVITY",
    b"BASELINE-CONTROL", b"MERGE", b"INVALID", b"HEAD"})
HTTP09_MAX_JUNK = 16      # libhtp-rs HTTP09_MAX_JUNK_LEN: more blanks than this after a 0.9 line are headers
_H_REPEATED, _H_NO_COLON = 1, 2       # HttpParser.hflags bits; httpheaders' flags << 8
_HF_EMPTY_NAME = 0x8000                # (a flag httpheaders does not use: the name is empty, a colon is there)
_HF_EVENTS = (HF_DEFORMED_EOL | HF_NAME_LEADING_WHITESPACE | HF_NAME_TRAILING_WHITESPACE
              | HF_NAME_NON_TOKEN_CHARS | HF_NAME_EMPTY)
_RESP_LEAD = b" \t\r\n\x0b\x0c\x00"    # libhtp-rs take_is_space_or_null
_PROTO_OK = re.compile(rb"HTTP/\d\.\d$", re.I)
# a request line: leading blanks, the method, the blanks after it, the rest
_RL = re.compile(rb"[ \t]*([^ \t\x0b\x0c\r]+)([ \t\x0b\x0c\r]*)(.*)$", re.S)


# a folded response line that is a header after all: optional blanks, an RFC 7230 token, ':'
_FOLDED_NAME = re.compile(rb"[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+[ \t]*:")


def probe(data: bytes, to_server: bool) -> bool | None:
    """A request line's method or a response's ``HTTP/`` (as Suricata's HTTP patterns)."""
    d = data.lstrip(b"\r\n")
    if not d:
        return None
    if d[:5].upper() == b"HTTP/":
        return not to_server
    if len(d) < 5 and b"HTTP/".startswith(d.upper()):
        return None
    if not to_server:
        return False
    sp = d.find(b" ")
    if sp < 0:
        if len(d) < 10 and any(m.startswith(d) for m in METHODS):
            return None
        return False
    return d[:sp] in METHODS


class HttpTx(Tx):
    __slots__ = ("method", "uri_raw", "protocol", "request_line", "req_headers", "req_header_raw",
                 "req_body", "resp_line", "resp_protocol", "status", "stat_msg", "resp_headers",
                 "resp_header_raw", "resp_body", "req_body_len", "resp_body_len", "_uri",
                 "req_file_len", "resp_file_len", "file_cut", "file_hash")

    proto = "http"

    def header_list(self, to_server: bool) -> list[Any]:
        """The request's (to_server) or the response's header list, made on first use."""
        headers = self.req_headers if to_server else self.resp_headers
        if headers is None:
            headers = []
            if to_server:
                self.req_headers = headers
            else:
                self.resp_headers = headers
        return headers

    def __init__(self, tx_id: int) -> None:
        super().__init__(tx_id)
        self.method = self.uri_raw = self.protocol = self.request_line = None
        self.req_headers: list[tuple[bytes, bytes]] | None = None
        self.req_header_raw = b""
        self.req_body = bytearray()
        self.resp_line = self.resp_protocol = self.status = self.stat_msg = None
        self.resp_headers: list[tuple[bytes, bytes]] | None = None
        self.resp_header_raw = b""
        self.resp_body = bytearray()
        self.req_body_len = 0
        self.resp_body_len = 0
        self._uri: bytes | None = None
        # the file each side's body is (applayer/files.py): its decoded size, and whether the
        # kept body lost some of it (body limit) so its hash is unknown: bit 1 << to_server.
        # Plain ints, no list per transaction (each container made is one more for the GC)
        self.req_file_len = 0
        self.resp_file_len = 0
        self.file_cut = 0
        self.file_hash: list[Any] | None = None     # by to_server: hashes of a cut body (files.py)

    def settled(self, name: str, to_server: bool) -> bool:
        """Whether buffer `name` of one side can no longer appear (Suricata's inspection
        progress, for `absent`): a body buffer once the side is complete, the others once
        its headers are in."""
        if self.done[int(to_server)]:
            return True
        if name in BODY_BUFFERS:
            return False
        return bool(self.req_header_raw if to_server else self.resp_header_raw)

    def release(self) -> None:
        super().release()
        self.req_body = bytearray()
        self.resp_body = bytearray()
        self.req_header_raw = self.resp_header_raw = b""

    @property
    def uri(self) -> bytes | None:
        if self._uri is None and self.uri_raw is not None:
            self._uri = normalise_uri(self.uri_raw)
        return self._uri

    def header(self, name: bytes, to_server: bool = True) -> bytes | None:
        headers = self.req_headers if to_server else self.resp_headers
        if headers:
            for k, v in headers:
                # libhtp's get_nocase_nozero: NUL bytes in a name are ignored ("Content\0-Encoding")
                if k.lower() == name or (b"\0" in k and k.replace(b"\0", b"").lower() == name):
                    return v
        return None

    def host(self) -> bytes | None:
        """libhtp's hostname: the absolute URI's authority, else the Host header; no port, lowercase."""
        auth = split_target(self.uri_raw)[0] if self.uri_raw else None
        h = auth if auth else self.header(b"host")
        if h is None:
            return None
        h = h.strip()
        if b"@" in h:
            h = h.rsplit(b"@", 1)[1]
        if h.startswith(b"["):
            end = h.find(b"]")
            h = h[:end + 1] if end > 0 else h
        elif h.count(b":") == 1:
            h = h.split(b":", 1)[0]
        return h.rstrip(b".").lower()

    def eve(self) -> dict[str, Any]:
        """Suricata's `http` object (EveHttpLogJSONBasic + extended fields)."""
        d: dict[str, Any] = {}
        host = self.host()
        if host is not None:
            d["hostname"] = _text(host)
            hh = self.header(b"host")
            if hh is not None and b":" in hh and not hh.startswith(b"["):
                try:
                    d["http_port"] = int(hh.rsplit(b":", 1)[1])
                except ValueError:
                    pass
        if self.uri_raw is not None:
            d["url"] = _text(self.uri_raw)
        for key, name in ((b"user-agent", "http_user_agent"),):
            v = self.header(key)
            if v is not None:
                d[name] = _text(v)
        ct = self.header(b"content-type", False)
        if ct is not None:
            d["http_content_type"] = _text(ct.split(b";", 1)[0].strip())
        ref = self.header(b"referer")
        if ref is not None:
            d["http_refer"] = _text(ref)
        if self.method is not None:
            d["http_method"] = _text(self.method)
        if self.protocol:
            d["protocol"] = _text(self.protocol)
        elif self.resp_protocol:
            d["protocol"] = _text(self.resp_protocol)
        if self.status is not None:
            try:
                d["status"] = int(self.status)
            except ValueError:
                pass
        loc = self.header(b"location", False)
        if loc is not None:
            d["redirect"] = _text(loc)
        d["length"] = self.resp_body_len
        return d


def _content_length(v: bytes) -> int | None:
    """libhtp-rs parse_content_length: blanks around, then digits (None: not a length)."""
    t = v.split(b",")[0].strip(b" \t\r\n")
    return int(t) if t.isdigit() else None


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


_CHUNK_CTL = b"\r\n \t\x0b\x0c"
_CHUNK_HEX = re.compile(rb"[ \t]*([0-9A-Fa-f]*)")
_HEX_DIGITS = frozenset(bytes([c]) for c in b"0123456789abcdefABCDEF")


def chunk_size(line: bytes) -> int | None:
    """A chunk-size line as libhtp-rs (parse_chunked_length) reads it: control characters
    first are skipped, then the leading hex digits count and whatever follows them is
    ignored ("f,", "5;ext"). None: a line of control characters only (skipped) or a size
    beyond 2^31-1; -1: no digits, so the body is not chunked after all."""
    rest = line.lstrip(_CHUNK_CTL)
    if not rest:
        return None
    digits = _CHUNK_HEX.match(rest).group(1)       # type: ignore[union-attr]
    if not digits:
        return -1
    size = int(digits, 16)
    return None if size > 0x7FFFFFFF else size


def content_codings(ce: bytes | None, layer_limit: int, lzma_layers: int = 0) -> list[str]:
    """The codings a Content-Encoding value asks to undo, in header order, as libhtp-rs
    (response_initialize_decompressors) reads it: NUL bytes ignored in a plain value
    (`gz\\0ip` is gzip, `lzma`); else the value is split on ',' and ' ', a token naming gzip
    or deflate anywhere in it counts (`\\xa0deflate`), `lzma` exactly, unknown tokens are no
    layer, and only the first `layer_limit` tokens are used (with at most `lzma_layers`
    lzma ones when that is set: the rest are left)."""
    if not ce or layer_limit <= 0:
        return []
    plain = ce.replace(b"\0", b"").lower()
    if plain in (b"gzip", b"x-gzip"):
        return ["gzip"]
    if plain in (b"deflate", b"x-deflate"):
        return ["deflate"]
    if plain == b"lzma":
        return ["lzma"]
    if plain in (b"br", b"inflate", b"none"):
        return []             # brotli is not decoded here
    out: list[str] = []
    n_lzma = 0
    for token in ce.replace(b",", b" ").split(b" "):
        if not token:
            continue
        if len(out) >= layer_limit:
            break
        low = token.lower()
        if b"gzip" in low:
            out.append("gzip")
        elif b"deflate" in low:
            out.append("deflate")
        elif token == b"lzma":
            n_lzma += 1
            if lzma_layers and n_lzma > lzma_layers:
                break
            out.append("lzma")
        else:
            out.append("")      # a layer (it counts toward the limit) that decodes nothing
    return [c for c in out if c]


def _gzip_header_len(b: bytes) -> int | None:
    """Length of the gzip member header at the start of `b` (RFC 1952), None when more
    bytes are needed, -1 when `b` does not start with one."""
    if len(b) < 10:
        return None if b"\x1f\x8b\x08".startswith(b[:3]) else -1
    if b[:3] != b"\x1f\x8b\x08":
        return -1
    flg, pos = b[3], 10
    if flg & 4:                     # FEXTRA
        if len(b) < pos + 2:
            return None
        pos += 2 + int.from_bytes(b[pos:pos + 2], "little")
    for bit in (8, 16):             # FNAME, FCOMMENT: zero-terminated
        if flg & bit:
            end = b.find(b"\0", pos)
            if end < 0:
                return None
            pos = end + 1
    if flg & 2:                     # FHCRC
        pos += 2
    return pos if pos <= len(b) else None


class _Layer:
    """One content coding to undo. gzip is its header then raw deflate, with the trailer's
    CRC and length never checked (libhtp passes on what inflated, servers send wrong
    trailers: suricata-verify http-evader-204); deflate is zlib or raw, decided on the
    first byte. A layer whose data does not decode passes its input through from then on
    (libhtp's passthrough), so one bogus layer of several does not hide the others."""

    __slots__ = ("kind", "d", "pending", "passthrough", "memlimit", "window", "out")

    def __init__(self, kind: str, memlimit: int = 1 << 20) -> None:
        self.kind = kind
        self.d: Any = None
        self.pending = b""
        self.passthrough = False
        self.memlimit = memlimit
        self.window = 0
        self.out = 0

    def decode(self, data: bytes, out_limit: int) -> bytes:
        if self.passthrough:
            return data
        if self.kind == "lzma":
            return self._lzma(data, out_limit)
        if self.d is None:
            data = self.pending + data
            if self.kind == "gzip":
                n = _gzip_header_len(data)
                if n is None:
                    self.pending = data
                    return b""
                self.pending = b""
                if n < 0:
                    self.kind = "deflate"    # no gzip header: try it as deflate
                else:
                    data = data[n:]
                    self.d = zlib.decompressobj(-zlib.MAX_WBITS)
            if self.d is None:
                if not data:
                    return b""
                self.d = zlib.decompressobj(zlib.MAX_WBITS if data[:1] == b"\x78" else -zlib.MAX_WBITS)
        if self.d.eof:
            return b""              # trailer and anything after the stream's end
        try:
            return self.d.decompress(data, out_limit)
        except zlib.error:
            self.passthrough = True
            return data

    def _lzma(self, data: bytes, out_limit: int) -> bytes:
        """LZMA (the .lzma "alone" format: properties, dictionary size, length, data), as
        libhtp-rs decodes it with lzma-rs: its window grows with the output, and one
        larger than `lzma-memlimit` stops the layer (LZMA_MEMLIMIT_REACHED). Data that is
        not LZMA passes through, like any layer's."""
        if self.d is None:
            data = self.pending + data
            if len(data) < 13:
                self.pending = data
                return b""
            self.pending = b""
            if self.memlimit <= 0:
                self.passthrough = True
                return data
            self.window = int.from_bytes(data[1:5], "little")
            # liblzma sizes the window up front; cap what it may take, the lzma-rs limit
            # (window and output both over lzma-memlimit) is applied on the output below
            self.d = lzma.LZMADecompressor(lzma.FORMAT_ALONE, memlimit=max(self.memlimit, 1 << 26))
        if self.d.eof or self.out < 0:
            return b""
        try:
            out = self.d.decompress(data, out_limit)
        except (lzma.LZMAError, MemoryError):
            self.passthrough = True
            return data
        self.out += len(out)
        if self.out > self.memlimit and self.window > self.memlimit:
            keep = len(out) - (self.out - self.memlimit)
            self.out = -1               # the memory limit is reached: no more output
            return out[:max(keep, 0)]
        return out


class _Body:
    """One direction's body framing and content decoding."""

    __slots__ = ("mode", "remaining", "chunk_state", "decoders", "limit", "out_limit")

    def __init__(self, mode: str, length: int, codings: list[str], limit: int, out_limit: int,
                 lzma_memlimit: int = 1 << 20) -> None:
        self.mode = mode                 # "length", "chunked", "close"
        self.remaining = length
        self.chunk_state = "size"        # size, data, crlf, trailer
        # the last coding applied is undone first
        self.decoders = [_Layer(kind, lzma_memlimit) for kind in reversed(codings)]
        self.limit = limit
        self.out_limit = out_limit

    def decode(self, data: bytes) -> bytes:
        out = data
        for layer in self.decoders:
            out = layer.decode(out, self.out_limit)
        return out


def _hash_past_limit(tx: HttpTx, d: int, kept: bytearray, out: bytes, room: int) -> None:
    """A body past its inspection limit while hash rules are loaded (files.STREAM_HASH):
    its file's hashes go on over the bytes that are no longer kept, started from the kept
    part when the body is first cut."""
    if tx.file_hash is None:
        tx.file_hash = [None, None]
    hashers = tx.file_hash[d]
    if hashers is None:
        if tx.file_cut & (1 << d):
            return                  # cut before hashing was needed: the start is gone
        hashers = tx.file_hash[d] = files_mod.Hashes(bytes(kept))
        out = out[max(room, 0):]
    hashers.update(out)


class HttpParser:
    """One flow's HTTP/1.x state: a byte queue and a parse state per direction."""

    # set by the app layer while the flow is changing protocol to HTTP (SMTP's STARTTLS
    # answered by HTTP): an upgrade asked for then fails (AppLayer._changed)
    changing = False
    upgraded: Any = None    # the tx a 101 to h2c answered: `parse` hands the flow to HTTP/2
    ws_upgraded = False     # a 101 to websocket was answered: `parse` hands the flow to WebSocket

    def __init__(self, limits: dict[str, int] | None = None) -> None:
        self.limits = LIMITS if limits is None else limits
        self.txs: list[HttpTx] = []
        self.buf = [bytearray(), bytearray()]      # by to_server
        self.state = ["line", "line"]
        self.req_tx: HttpTx | None = None           # the request being parsed
        self.resp_index = 0                         # the transaction the next response belongs to
        self.body: list[_Body | None] = [None, None]
        self.headers_raw = [bytearray(), bytearray()]
        self.broken = [False, False]               # a stream gap lost this direction's framing
        self.hflags = [0, 0]                       # header block anomalies so far (_H_*), by to_server
        self.body_left = False                     # request_body_unexpected raised for req_tx
        self.stream_frames = frames_for("http")           # applayer/frames.py: http1.request/response/stream frames
        self.msg_frame: list[Any] = [None, None]          # the open request / response frame, by to_server

    # --- entry --------------------------------------------------------------------------
    def parse(self, data: bytes, to_server: bool, pkt: Any = None) -> None:
        d = int(to_server)
        if self.stream_frames is not None:
            self.stream_frames.stream(to_server, data)
        if self.broken[d]:
            return
        self.buf[d] += data
        guard = 0
        while self.buf[d] and guard < 10000:
            guard += 1
            if not (self._step_request() if to_server else self._step_response()) or self.upgraded:
                break
            if self.ws_upgraded:
                break
        if self.ws_upgraded:
            # 101 to websocket (_upgrade): the WebSocket parser (applayer/websocket.py) takes over
            # with the HTTP transactions and what both sides sent past the upgrade
            from netsentry.applayer.websocket import upgrade_parser
            rest = (bytes(self.buf[1]), bytes(self.buf[0]))
            self.broken[0] = self.broken[1] = True
            self.buf[0].clear()
            self.buf[1].clear()
            raise ProtocolChange("websocket", upgrade_parser(self.txs, *rest))
        if self.upgraded:
            # 101 to h2c (_upgrade): the flow is HTTP/2 from the next bytes on; the HTTP/2
            # parser takes over the request (stream 1) and the server's bytes after the 101
            from netsentry.applayer.http2 import upgrade_parser   # (registered after the others: probing order)
            rest = bytes(self.buf[0])
            self.broken[0] = self.broken[1] = True
            self.buf[0].clear()
            self.buf[1].clear()
            raise ProtocolChange("http2", upgrade_parser(self.txs, self.upgraded, rest))

    def eof(self, to_server: bool) -> None:
        """The connection closed: a body up to the close is complete, and so is a header
        block the close cut short (libhtp: suricata-verify http-close-headers)."""
        d = int(to_server)
        if self.state[d] == "headers":
            tx = self.req_tx if to_server else self._resp_tx()
            if tx is not None:
                headers = tx.header_list(to_server)
                rest = bytes(self.buf[d])
                self.buf[d].clear()
                self.headers_raw[d] += rest
                for line in rest.split(b"\n"):
                    self._header_line(headers, line[:-1] if line.endswith(b"\r") else line, not to_server)
                self._end_headers(d, tx)
        # libhtp-rs finalizes a response on the close whether its body runs to the close or
        # has a length the close cut short (response_body_identity_cl_known: the response
        # is complete, its body what came); a request body waits (request_body_identity)
        if (not to_server and self.state[d] == "body" and self.body[d] is not None
                and self.body[d].mode in ("close", "length")):
            tx = self._resp_tx()
            if tx is not None:
                tx.done[0] = True
                tx.touch(False)
            self.state[d] = "line"
        if self.msg_frame[d] is not None:
            self._frame_end(d)

    def gap(self, to_server: bool, nbytes: int) -> None:
        """Bytes lost in the stream: inside a body with a known length they are skipped
        (the body misses them, as libhtp's gap handling); anywhere else the direction's
        framing is lost, so it is not parsed any further."""
        d = int(to_server)
        if self.stream_frames is not None:
            self.stream_frames.gap(to_server, nbytes)
        body = self.body[d]
        tx = self.req_tx if to_server else self._resp_tx()
        if self.state[d] == "body" and body is not None and body.mode in ("length", "close") and tx is not None:
            if to_server:
                tx.req_body_len += nbytes
            else:
                tx.resp_body_len += nbytes
            body.decoders = []            # a compressed stream cannot resume after a hole
            if body.mode == "length":
                body.remaining -= nbytes
                if body.remaining <= 0:
                    self._finish(d, tx)
            return
        self.broken[d] = True
        self.buf[d].clear()

    @staticmethod
    def _event(tx: HttpTx | None, name: str) -> None:
        """Raise an app-layer event on `tx`. Both sides see it (the events are the
        transaction's, as Suricata's tx events): each is marked for inspection again."""
        if tx is None or (tx.events is not None and name in tx.events):
            return
        tx.add_event(name)
        tx.touch(True, frozenset())
        tx.touch(False, frozenset())

    def _too_long(self, d: int, tx: HttpTx | None) -> None:
        """The unfinished line buffered for direction `d` is over libhtp's field limit."""
        if len(self.buf[d]) > FIELD_LIMIT:
            self._event(tx, "request_field_too_long" if d else "response_field_too_long")

    # --- requests -----------------------------------------------------------------------
    def _line(self, d: int) -> bytes | None:
        buf = self.buf[d]
        nl = buf.find(b"\n")
        if nl < 0:
            if len(buf) > FIELD_LIMIT and self.state[d] != "line":     # a tx is open
                self._too_long(d, self.req_tx if d else self._resp_tx())
            if len(buf) > MAX_LINE:
                line = bytes(buf[:MAX_LINE])
                del buf[:MAX_LINE]
                return line
            return None
        line = bytes(buf[:nl])
        del buf[:nl + 1]
        return line[:-1] if line.endswith(b"\r") else line

    def _status_line(self) -> bytes | None:
        """The response line: as libhtp-rs's take_till_eol, a lone CR ends it as well as
        LF or CRLF (`HTTP/1.1 200 \\rTransfer-Encoding: chunked`: http-evader-385)."""
        buf = self.buf[0]
        cr = buf.find(b"\r")
        nl = buf.find(b"\n")
        if cr < 0 or (0 <= nl < cr):
            return self._line(0)
        if cr + 1 >= len(buf):
            return None if len(buf) <= MAX_LINE else self._line(0)    # CR or CRLF: the next byte says
        line = bytes(buf[:cr])
        del buf[:cr + 2 if buf[cr + 1] == 0x0A else cr + 1]
        return line

    def _step_request(self) -> bool:
        st = self.state[1]
        if st == "line":
            buf = self.buf[1]
            while buf[:1] in (b"\r", b"\n"):
                del buf[:1]
            if not buf:
                return False
            prev = self.req_tx
            if prev is not None and prev.done[1] and prev.method is not None:
                # libhtp-rs's request finalize: after a request, a line whose first word is no
                # method it knows is more body of that request (request_body_unexpected)
                nl = buf.find(b"\n")
                if nl < 0 and len(buf) <= MAX_LINE:
                    return False
                first = bytes(buf[:nl if nl >= 0 else MAX_LINE]).split(None, 1)
                if first and first[0] not in LIBHTP_METHODS:
                    end = nl + 1 if nl >= 0 else MAX_LINE
                    chunk = bytes(buf[:end])
                    del buf[:end]
                    self._event(prev, "request_body_unexpected")
                    room = self.limits["request-body-limit"] - len(prev.req_body)
                    prev.req_body_len += len(chunk)
                    prev.req_file_len += len(chunk)
                    if room > 0:
                        prev.req_body += chunk[:room]
                    prev.touch(True, BODY_BUFFERS)
                    return True
            fr = self.stream_frames
            raw = bytes(buf) if fr is not None and "request" in fr.want else None
            line = self._line(1)
            if line is None:
                return False
            tx = HttpTx(len(self.txs))
            self.txs.append(tx)
            self.req_tx = tx
            if raw is not None:
                self._frame_start(1, raw, tx)
            self._request_line(tx, line)
            self._request_line_events(tx, line)
            tx.touch(True)
            if not tx.protocol:
                if not self._headers_follow():
                    tx.req_headers = []
                    tx.done[1] = True
                    if self.msg_frame[1] is not None:
                        self._frame_end(1)      # an HTTP/0.9 request is its line
                    return True
                self._event(tx, "request_line_missing_protocol")
            self.state[1] = "headers"
            self.headers_raw[1] = bytearray()
            tx.req_headers = []
            return True
        tx = self.req_tx
        if tx is None:        # pragma: no cover - state says a request is open
            self.state[1] = "line"
            return True
        if st == "headers":
            return self._step_headers(1, tx)
        return self._step_body(1, tx)

    def _headers_follow(self) -> bool:
        """After a request line without protocol: headers follow (libhtp-rs
        request_protocol: more than blanks, or more than HTTP09_MAX_JUNK of them, is
        buffered after the line), else it is an HTTP/0.9 request."""
        nxt = self.buf[1]
        nl = nxt.find(b"\n")
        first = nxt if nl < 0 else nxt[:nl]
        if b":" in first:
            return True
        rest = bytes(nxt).lstrip(b" \t\r\n\x0b\x0c")
        return bool(rest) or len(nxt) > HTTP09_MAX_JUNK

    def _request_line_events(self, tx: HttpTx, line: bytes) -> None:
        """libhtp-rs parse_request_line's warnings on the request line's shape."""
        if line[:1] in (b" ", b"\t"):
            self._event(tx, "request_line_leading_whitespace")
        m = _RL.match(line)
        if m is None:
            return
        ws, rest = m.group(2), m.group(3)
        if ws.strip(b" "):
            self._event(tx, "method_delim_non_compliant")
        known = m.group(1) in LIBHTP_METHODS
        if not rest:
            if not known:
                self._event(tx, "request_line_unknown_method")
            return
        uri = rest.rstrip()
        sp = uri.rfind(b" ")
        if sp >= 0:
            uri = uri[:sp]
        if any(c in uri for c in (b"\t", b"\x0b", b"\x0c", b"\r")):
            self._event(tx, "uri_delim_non_compliant")
        if not tx.protocol and not known:
            self._event(tx, "request_line_unknown_method_no_protocol")

    @staticmethod
    def _request_line(tx: HttpTx, line: bytes) -> None:
        tx.request_line = line
        parts = line.split(None, 1)
        tx.method = parts[0] if parts else b""
        rest = parts[1].strip() if len(parts) > 1 else b""
        proto = b""
        k = max(rest.rfind(b" "), rest.rfind(b"\t"))
        if k >= 0 and rest[k + 1:].upper().startswith(b"HTTP"):
            proto = rest[k + 1:]
            rest = rest[:k].rstrip()
        elif rest.upper().startswith(b"HTTP/") and b" " not in rest:
            pass
        tx.uri_raw = rest
        tx.protocol = proto

    def _step_headers(self, d: int, tx: HttpTx) -> bool:
        """The header block as libhtp-rs reads it (httpheaders.parse_headers: folding of
        names and values, deformed line ends, lone CRs in responses), in as many steps as
        the data arrives: what is read is taken, the rest waits for more bytes."""
        buf = self.buf[d]
        if buf.find(b"\n") < 0 and (d or buf.find(b"\r") < 0):
            self._too_long(d, tx)
            if len(buf) > MAX_LINE:
                del buf[MAX_LINE:]
            return False
        # an empty line first: the block ends (no headers, or the last one was taken); a
        # response's lone CR or LF CR first is more header block to libhtp-rs (a line
        # without colon: http-evader-405's "\n\r" line ends)
        if buf[:2] == b"\r\n" or (buf[:1] == b"\n" and (d or (len(buf) > 1 and buf[1] != 0x0D))):
            end = 2 if buf[:1] == b"\r" else 1
            self.headers_raw[d] += buf[:end]
            del buf[:end]
            self._end_headers(d, tx)
            return True
        data = bytes(buf)
        try:
            used, found, eoh = parse_headers(data, not d)
        except Incomplete:
            self._too_long(d, tx)
            if len(buf) <= MAX_LINE:
                return False
            used, found, eoh = 0, [], False
        if not used:
            return self._step_headers_lines(d, tx)
        del buf[:used]
        self.headers_raw[d] += data[:used]
        headers = tx.header_list(bool(d))
        for name, value, flags in found:
            self._add_header(headers, name, value, flags, not d)
        if eoh:
            self._end_headers(d, tx)
        return True

    def _add_header(self, headers: list[tuple[bytes, bytes]], name: bytes, value: bytes, flags: int,
                    response: bool) -> None:
        """One header libhtp-rs read: a line without a colon is flagged and left out, a
        repeated name is joined to the first with ", "."""
        if flags & _HF_EVENTS:
            ev = flags & _HF_EVENTS
            if flags & HF_MISSING_COLON == HF_NAME_EMPTY:
                ev |= _HF_EMPTY_NAME            # ":value": an empty name, not a line without colon
            self.hflags[0 if response else 1] |= ev << 8
        if flags & HF_MISSING_COLON == HF_MISSING_COLON:
            self.hflags[0 if response else 1] |= _H_NO_COLON
            return
        self._join_header(headers, name, value, response)

    def _join_header(self, headers: list, name: bytes, value: bytes, response: bool) -> None:
        """A header line's name and value into the block: a repeated name is joined to the
        first with ", " (libhtp), flagged unless it is Content-Length."""
        low = name.lower()
        for i, (n, v) in enumerate(headers):
            if n.lower() == low:
                headers[i] = (n, v + b", " + value)
                if low != b"content-length":
                    self.hflags[0 if response else 1] |= _H_REPEATED
                return
        headers.append((name, value))

    def _step_headers_lines(self, d: int, tx: HttpTx) -> bool:
        """Header lines up to the empty one, line by line: the fallback for a block
        libhtp-rs's rules cannot read (an over-long line, a malformed start)."""
        buf = self.buf[d]
        headers = tx.header_list(bool(d))
        if buf[:1] == b"\n" or buf[:2] == b"\r\n":
            end = 1 if buf[:1] == b"\n" else 2
        else:
            a, b = buf.find(b"\n\r\n"), buf.find(b"\n\n")
            end = min(a + 3 if a >= 0 else 1 << 62, b + 2 if b >= 0 else 1 << 62)
            # an empty fold (a space or tab, then LF) is an empty line: libhtp-rs keeps
            # "empty folding as a future new eol" (http-evader-416: "Content-length: 68\n \n")
            for fold in (b"\n \n", b"\n\t\n"):
                c = buf.find(fold, 0, end)
                if c >= 0:
                    end = c + 3
        if end < 1 << 62:
            raw = bytes(buf[:end])
            del buf[:end]
            self.headers_raw[d] += raw
            for line in raw.split(b"\n"):
                line = line[:-1] if line.endswith(b"\r") else line
                if not d and b"\r" in line:
                    for part in line.split(b"\r"):     # a response's lone CR ends a line too
                        self._header_line(headers, part, True)
                else:
                    self._header_line(headers, line, not d)
            self._end_headers(d, tx)
            return True
        nl = buf.find(b"\n")
        if nl < 0:
            self._too_long(d, tx)
            if len(buf) > MAX_LINE:
                del buf[MAX_LINE:]
            return False
        raw = bytes(buf[:nl + 1])
        del buf[:nl + 1]
        self.headers_raw[d] += raw
        line = raw[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
        if line and not (line in (b" ", b"\t") and not raw.endswith(b"\r\n")):
            if not d and b"\r" in line:
                for part in line.split(b"\r"):        # a response's lone CR ends a line too
                    self._header_line(headers, part, True)
            else:
                self._header_line(headers, line, not d)
        else:
            self._end_headers(d, tx)
        return True

    def _header_line(self, headers: list[tuple[bytes, bytes]], line: bytes, response: bool = False) -> None:
        if not line:
            return
        # a folded line; on the response side one that reads "name:" is a header of its own
        # (libhtp-rs headers.rs: "ambiguous name with lws vs. value with folding";
        # http-evader-275: "X-Foo: bar\r\n\tTransfer-Encoding: chunked")
        if line[:1] in (b" ", b"\t") and headers and not (response and _FOLDED_NAME.match(line)):
            name, value = headers[-1]
            headers[-1] = (name, (value + b" " + line.strip()).strip())
            return
        name, sep, value = line.partition(b":")
        if not sep:
            self.hflags[0 if response else 1] |= _H_NO_COLON
            return               # not a header: libhtp flags it and goes on
        name = name.strip()
        value = value.strip()
        self._join_header(headers, name, value, response)

    def _end_headers(self, d: int, tx: HttpTx) -> None:
        if d:
            tx.req_header_raw = bytes(self.headers_raw[d])
        else:
            tx.resp_header_raw = bytes(self.headers_raw[d])
        self._header_events(d, tx)
        flags = self.hflags[d]
        if flags:
            self.hflags[d] = 0
            side = "request" if d else "response"
            if flags & _H_NO_COLON:
                self._event(tx, side + "_field_missing_colon")
            if flags & _H_REPEATED:
                self._event(tx, side + "_header_repetition")
            if flags >> 8:
                self._header_flag_events(tx, flags >> 8, bool(d))
        tx.touch(bool(d))
        self._start_body(d, tx)

    def _header_flag_events(self, tx: HttpTx, flags: int, request: bool) -> None:
        """libhtp-rs's warnings on the header lines of one block (request_generic /
        response_generic process_*_headers_generic), from httpheaders' flags."""
        if request:
            names = (("request_invalid_lws_after_name", HF_NAME_TRAILING_WHITESPACE),
                     ("invalid_request_field_folding", HF_NAME_LEADING_WHITESPACE),
                     ("request_header_invalid", HF_NAME_NON_TOKEN_CHARS))
        else:
            names = (("deformed_eol", HF_DEFORMED_EOL),
                     ("response_invalid_lws_after_name", HF_NAME_TRAILING_WHITESPACE),
                     ("invalid_response_field_folding", HF_NAME_LEADING_WHITESPACE),
                     ("response_header_name_not_token", HF_NAME_NON_TOKEN_CHARS))
        for name, bit in names:
            if flags & bit:
                self._event(tx, name)
        if flags & _HF_EMPTY_NAME:
            self._event(tx, "request_invalid_empty_name" if request else "response_invalid_empty_name")

    def _header_events(self, d: int, tx: HttpTx) -> None:
        """The anomalies libhtp-rs reports once a header block is in: one pass over the
        names (a lookup each would lower every name again)."""
        cl = ce = auth = None
        host = False
        for k, v in (tx.req_headers if d else tx.resp_headers) or ():
            n = k.lower()
            if n == b"content-length":
                cl = v
            elif n == b"content-encoding":
                ce = v
            elif n == b"authorization":
                auth = v
            elif n == b"host":
                host = True
        if cl is not None and b"," in cl:
            # repeated Content-Length headers (joined with ", ") that disagree or do not
            # parse: libhtp-rs's "Ambiguous C-L value"
            values = {v.strip() for v in cl.split(b",")}
            if len(values) > 1 or not all(v.isdigit() for v in values):
                self._event(tx, "duplicate_content_length_field_in_" + ("request" if d else "response"))
        if ce is not None and (b"," in ce or b" " in ce.strip()):
            layers = [t for t in ce.replace(b",", b" ").split(b" ") if t]
            if len(layers) > self.limits["decompress-layer-limit"]:
                self._event(tx, "too_many_encoding_layers")
        if not d:
            return
        if auth is not None:
            scheme = auth.split(None, 1)[0].lower() if auth.strip() else b""
            if scheme not in AUTH_SCHEMES:
                self._event(tx, "request_auth_unrecognized")
        if not host and tx.protocol and tx.protocol.upper() >= b"HTTP/1.1":
            self._event(tx, "missing_host_header")
        limits = self.limits
        if tx.uri_raw and (limits.get("double-decode-path") or limits.get("double-decode-query")):
            _, path, query = split_target(tx.uri_raw)
            for enabled, part in ((limits.get("double-decode-path"), path),
                                  (limits.get("double-decode-query"), query)):
                if enabled and part:
                    once = decode_percent(part)
                    if len(decode_percent(once)) < len(once):
                        self._event(tx, "double_encoded_uri")

    def _framing_events(self, d: int, tx: HttpTx, te: bytes | None, cl: bytes | None) -> None:
        """libhtp-rs's body framing anomalies (process_request_headers' flags, which
        Suricata turns into events, and the response side's warnings)."""
        chunked = te is not None and b"chunked" in te.replace(b"\0", b"").lower()
        if d:
            if te is not None:
                if not chunked or (tx.protocol or b"").upper() < b"HTTP/1.1":
                    self._event(tx, "invalid_transfer_encoding_value_in_request")
            elif cl is not None and _content_length(cl) is None:
                self._event(tx, "invalid_content_length_field_in_request")
            host = tx.header(b"host", True)
            auth = split_target(tx.uri_raw)[0] if tx.uri_raw else None
            if auth and host is not None:
                def strip(h: bytes) -> bytes:
                    h = h.strip().lower()
                    return h.rsplit(b":", 1)[0] if h.count(b":") == 1 else h
                if strip(auth) != strip(host):
                    self._event(tx, "host_header_ambiguous")
            return
        if chunked:
            if te.strip().lower() != b"chunked":
                self._event(tx, "response_abnormal_transfer_encoding")
            if (tx.resp_protocol or b"").upper() < b"HTTP/1.1":
                self._event(tx, "response_chunked_old_proto")
        elif cl is not None and _content_length(cl) is None:
            self._event(tx, "invalid_content_length_field_in_response")

    def _upgrade(self, tx: HttpTx) -> None:
        """101 Switching Protocols to h2c: Suricata asks for a change to HTTP/2, which fails
        while the flow is still changing to HTTP (failed_protocol_change on the response).
        Otherwise the flow changes to HTTP/2 (applayer/http2.py) after this response."""
        if tx.header(b"upgrade", False) == b"h2c":
            if self.changing:
                self._event(tx, "failed_protocol_change")
            else:
                self.upgraded = tx          # the change is asked for once the response is done (parse)
        elif b"websocket" in (tx.header(b"upgrade", False) or b"").lower() and not self.changing:
            self.ws_upgraded = True         # Suricata's change to WebSocket after the 101

    def _start_body(self, d: int, tx: HttpTx) -> None:
        to_server = bool(d)
        te = tx.header(b"transfer-encoding", to_server)
        cl = tx.header(b"content-length", to_server)
        codings = content_codings(tx.header(b"content-encoding", to_server),
                                  self.limits["decompress-layer-limit"], self.limits.get("lzma-layers", 0))
        limit = self.limits["request-body-limit" if to_server else "response-body-limit"]
        mk = lambda mode, n: _Body(mode, n, codings, limit, self.limits["decompression-limit"],  # noqa: E731
                                   self.limits.get("lzma-memlimit", 1 << 20))
        if not to_server:
            status = tx.status or b""
            # libhtp-rs response_body_determine: a 100 with a Content-Length above 0 is no
            # 100 Continue, and a 1xx, 204 or 304 that announces a body (Transfer-Encoding
            # or Content-Length) has one ("Unexpected Response body"; http-evader-476)
            if status == b"100" and te is None and not (_content_length(cl or b"") or 0) > 0:
                # 100 Continue: the real response follows
                tx.resp_headers = None
                self.state[0] = "line"
                return
            if status == b"101":
                self._upgrade(tx)
            if (tx.method or b"").upper() == b"HEAD":
                self._finish(d, tx)
                return
            if status[:1] == b"2" and (tx.method or b"").upper() == b"CONNECT":
                # a proxy's tunnel: the response has no body and what follows is another
                # protocol (libhtp-rs tunnel mode). The flow's first transaction being that
                # CONNECT, Suricata detects its protocol again (HTTP CONNECT handling in
                # HTPCallbackResponseComplete: AppLayerRequestProtocolChange, no expectation)
                self._finish(d, tx)
                if tx.tx_id == 0:
                    raise ProtocolChange("")
                return
            if status[:1] == b"1" or status in (b"204", b"304"):
                if te is None and cl is None:
                    self._finish(d, tx)
                    return
                self._event(tx, "response_body_unexpected")
        self._framing_events(d, tx, te, cl)
        if te is not None and b"chunked" in te.replace(b"\0", b"").lower():
            # libhtp-rs (process_request_headers, state_response_headers): a Transfer-Encoding
            # naming chunked frames the body whatever the protocol version and any
            # Content-Length (http-evader-042); a body that then has no valid chunk length
            # is read as not chunked after all (_step_body; http-evader-050)
            self.body[d] = mk("chunked", 0)
        elif cl is not None:
            try:
                n = int(cl.split(b",")[0].strip())
            except ValueError:
                n = 0
            if n <= 0:
                self._finish(d, tx)
                return
            self.body[d] = mk("length", n)
        elif not to_server:
            self.body[d] = mk("close", 0)
        else:
            self._finish(d, tx)
            return
        self.state[d] = "body"

    def _frame_start(self, d: int, raw: bytes, tx: HttpTx) -> None:
        """A request (d 1) or response starts with `raw`, the direction's buffer before its
        first line was taken: its `request`/`response` frame (Suricata's
        HTPCallbackRequestStart/ResponseStart), open until the message completes."""
        fr = self.stream_frames
        at = fr.total[d] - len(raw)
        f = fr.add(bool(d), "request" if d else "response", at, raw, -1, tx.tx_id)
        self.msg_frame[d] = f

    def _frame_end(self, d: int) -> None:
        """The message of direction `d` completed: its frame ends where the parser is."""
        f = self.msg_frame[d]
        if f is not None:
            self.msg_frame[d] = None
            f.close(self.stream_frames.total[d] - len(self.buf[d]) - f.offset)

    def _finish(self, d: int, tx: HttpTx) -> None:
        if self.msg_frame[d] is not None:
            self._frame_end(d)
        tx.done[d] = True
        tx.touch(bool(d))
        self.state[d] = "line"
        self.body[d] = None
        if not d:
            self.resp_index = tx.tx_id + 1

    def _add_body(self, d: int, tx: HttpTx, data: bytes) -> None:
        if not data:
            return
        body = self.body[d]
        if d:
            tx.req_body_len += len(data)
        else:
            tx.resp_body_len += len(data)
        out = body.decode(data) if body is not None else data
        target = tx.req_body if d else tx.resp_body
        room = (body.limit if body is not None else 0) - len(target)
        if d:
            tx.req_file_len += len(out)
        else:
            tx.resp_file_len += len(out)
        if room > 0 and out:
            target += out[:room]
        if len(out) > max(room, 0):
            if files_mod.STREAM_HASH:
                _hash_past_limit(tx, d, target, out, room)
            tx.file_cut |= 1 << d
        tx.touch(bool(d), BODY_BUFFERS)

    def _step_body(self, d: int, tx: HttpTx) -> bool:
        body = self.body[d]
        buf = self.buf[d]
        if body is None:
            self.state[d] = "line"
            return True
        if body.mode == "close":
            self._add_body(d, tx, bytes(buf))
            buf.clear()
            return False
        if body.mode == "length":
            take = bytes(buf[:body.remaining])
            del buf[:len(take)]
            body.remaining -= len(take)
            self._add_body(d, tx, take)
            if body.remaining <= 0:
                self._finish(d, tx)
                return True
            return False
        # chunked
        if body.chunk_state == "size":
            head = bytes(buf[:64]).lstrip(_CHUNK_CTL)
            if head and head[:1] not in _HEX_DIGITS:
                # not a chunk length even before its line ends (libhtp-rs
                # is_valid_chunked_length_data): the body is not chunked after all
                body.mode = "close"
                return True
            nl = buf.find(b"\n")
            raw = bytes(buf[:nl + 1]) if nl >= 0 else b""
            line = self._line(d)
            if line is None:
                return False
            size = chunk_size(line)
            if size is None:
                return True           # a line of control characters only: skipped
            if size >= 0 and b";" in line:
                self._event(tx, "request_chunk_extension" if d else "response_chunk_extension")
            if size < 0:
                # no length at all: not chunked after all; this line and the rest are the
                # body, up to the close (libhtp-rs: BodyIdentityStreamClose)
                buf[0:0] = raw
                body.mode = "close"
                return True
            if size <= 0:
                body.chunk_state = "trailer"
            else:
                body.remaining = size
                body.chunk_state = "data"
            return True
        if body.chunk_state == "data":
            take = bytes(buf[:body.remaining])
            del buf[:len(take)]
            body.remaining -= len(take)
            self._add_body(d, tx, take)
            if body.remaining <= 0:
                body.chunk_state = "crlf"
                return True
            return False
        if body.chunk_state == "crlf":
            line = self._line(d)
            if line is None:
                return False
            body.chunk_state = "size"
            return True
        line = self._line(d)          # trailer lines up to an empty one
        if line is None:
            return False
        if not line:
            self._finish(d, tx)
        return True

    # --- responses ----------------------------------------------------------------------
    def _resp_tx(self) -> HttpTx | None:
        if self.resp_index < len(self.txs):
            return self.txs[self.resp_index]
        return None

    def _step_response(self) -> bool:
        st = self.state[0]
        if st == "line":
            buf = self.buf[0]
            # lines of whitespace only before the status line are ignorable (libhtp's
            # htp_is_line_ignorable; suricata-verify http-evader-481)
            while buf[:1] in (b"\r", b"\n", b" ", b"\t"):
                del buf[:1]
            if not buf:
                return False
            tx = self._resp_tx()
            fr = self.stream_frames
            raw = bytes(buf) if fr is not None and "response" in fr.want else None
            if (tx is not None and tx.protocol == b"" and tx.method is not None and tx.resp_line is None
                    and buf[:5].upper() != b"HTTP/"):
                # (an answer that starts with a status line is parsed as one even after a
                # request without protocol: suricata-verify http-not09-file)
                # HTTP/0.9: the response is the body, up to the close
                tx.resp_line = b""
                tx.resp_headers = []
                if raw is not None:
                    self._frame_start(0, raw, tx)
                self.body[0] = _Body("close", 0, [], self.limits["response-body-limit"], 0)
                self.state[0] = "body"
                return True
            lead = bytes(buf[:80]).lstrip(_RESP_LEAD)
            if lead[:4].upper() != b"HTTP" and (len(buf) >= 5 or len(lead) >= 4):
                # not a status line (libhtp-rs treat_response_line_as_body: it must start
                # with "http", any case). A junk line followed by one starting with 'H', or
                # of at most 2 bytes, is ignored (http-evader-488: " SIP/2.0 200 ok");
                nl = buf.find(b"\n")
                if 0 <= nl < len(buf) - 1 and (buf[nl + 1] == 0x48 or len(buf[:nl].rstrip(b"\r")) <= 2):
                    del buf[:nl + 1]
                    return True
                # else libhtp treats the bytes as body of an unknown response
                if tx is None:
                    tx = HttpTx(len(self.txs))
                    self.txs.append(tx)
                    tx.done[1] = True
                tx.resp_line = b""
                tx.resp_headers = []
                if raw is not None:
                    self._frame_start(0, raw, tx)
                self.body[0] = _Body("close", 0, [], self.limits["response-body-limit"], 0)
                self.state[0] = "body"
                return True
            line = self._status_line()
            if line is None:
                return False
            if tx is None:
                tx = HttpTx(len(self.txs))     # a response without a request
                self.txs.append(tx)
                tx.done[1] = True
                self._event(tx, "unable_to_match_response_to_request")
            elif tx.resp_line is not None and tx.status == b"100" and line.split(None, 2)[1:2] == [b"100"]:
                self._event(tx, "100_continue_already_seen")
            if raw is not None:
                self._frame_start(0, raw, tx)
            tx.resp_line = line
            # libhtp-rs parse_response_line: blanks and NULs before the protocol are skipped
            # (http-evader-390: "\0HTTP/1.1 200 ok")
            parts = line.lstrip(_RESP_LEAD).split(None, 2)
            tx.resp_protocol = parts[0] if parts else b""
            tx.status = parts[1] if len(parts) > 1 else b""
            tx.stat_msg = parts[2] if len(parts) > 2 else b""
            # libhtp-rs validate_response_line
            if not _PROTO_OK.match(tx.resp_protocol):
                self._event(tx, "response_line_invalid_protocol")
            if not (len(tx.status) == 3 and tx.status.isdigit() and tx.status >= b"100"):
                self._event(tx, "response_line_invalid_response_status")
            tx.resp_headers = []
            self.headers_raw[0] = bytearray()
            self.state[0] = "headers"
            tx.touch(False)
            return True
        tx = self._resp_tx()
        if tx is None:     # pragma: no cover
            self.state[0] = "line"
            return True
        if st == "headers":
            return self._step_headers(0, tx)
        return self._step_body(0, tx)


# --- buffers -------------------------------------------------------------------------------

def _hdr(name: bytes):
    def get(tx: HttpTx, to_server: bool) -> bytes | None:
        return tx.header(name, to_server)
    return get


def _req_hdr(name: bytes):
    def get(tx: HttpTx, to_server: bool) -> bytes | None:
        return tx.header(name, True)
    return get


def _resp_hdr(name: bytes):
    def get(tx: HttpTx, to_server: bool) -> bytes | None:
        return tx.header(name, False)
    return get


def _headers_buf(tx: HttpTx, to_server: bool) -> bytes | None:
    """Suricata's http.header: "Name: value\\r\\n" per header; the request's Cookie and the
    response's Set-Cookie are left out (they have http.cookie)."""
    headers = tx.req_headers if to_server else tx.resp_headers
    raw = tx.req_header_raw if to_server else tx.resp_header_raw
    if headers is None or not raw:
        return None
    skip = b"cookie" if to_server else b"set-cookie"
    return b"".join(n + b": " + v + b"\r\n" for n, v in headers if n.lower() != skip)


def _header_raw(tx: HttpTx, to_server: bool) -> bytes | None:
    raw = tx.req_header_raw if to_server else tx.resp_header_raw
    return raw or None


def _header_names(tx: HttpTx, to_server: bool) -> bytes | None:
    headers = tx.req_headers if to_server else tx.resp_headers
    raw = tx.req_header_raw if to_server else tx.resp_header_raw
    if headers is None or not raw:
        return None
    return b"\r\n" + b"".join(n + b"\r\n" for n, _ in headers) + b"\r\n"


def _header_list(tx: HttpTx, to_server: bool) -> list[bytes] | None:
    headers = tx.req_headers if to_server else tx.resp_headers
    raw = tx.req_header_raw if to_server else tx.resp_header_raw
    if headers is None or not raw:
        return None
    return [n + b": " + v for n, v in headers]


def _start(tx: HttpTx, to_server: bool) -> bytes | None:
    line = tx.request_line if to_server else tx.resp_line
    headers = tx.req_headers if to_server else tx.resp_headers
    raw = tx.req_header_raw if to_server else tx.resp_header_raw
    if line is None or not raw:
        return None
    return line + b"\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in headers or ()) + b"\r\n"


def _protocol(tx: HttpTx, to_server: bool) -> bytes | None:
    return (tx.protocol or None) if to_server else (tx.resp_protocol or None)


def _cookie(tx: HttpTx, to_server: bool) -> bytes | None:
    return tx.header(b"cookie", True) if to_server else tx.header(b"set-cookie", False)


def _host(tx: HttpTx, to_server: bool) -> bytes | None:
    return tx.host()


def _host_raw(tx: HttpTx, to_server: bool) -> bytes | None:
    auth = split_target(tx.uri_raw)[0] if tx.uri_raw else None
    return auth if auth else tx.header(b"host")


def _body(request: bool):
    def get(tx: HttpTx, to_server: bool) -> bytes | None:
        b = tx.req_body if request else tx.resp_body
        return bytes(b) if b else None
    return get


def _file_data(tx: HttpTx, to_server: bool) -> list[bytes] | None:
    """file.data: one instance per file of the side (Suricata inspects each file on its
    own, so two contents of one `file.data` must be in the same file): each part of a
    multipart/form-data request that names a file, else the body (a response, a PUT or
    POST body is one file)."""
    b = tx.req_body if to_server else tx.resp_body
    if not b:
        return None
    if to_server and b"multipart/" in (tx.header(b"content-type", True) or b"").lower():
        return [f.data for f in http_files(tx, True)] or None
    return [bytes(b)]


def _file_names(tx: HttpTx, to_server: bool) -> list[bytes] | None:
    """file.name: the names of the side's files (applayer/files.py)."""
    return [f.name for f in http_files(tx, to_server)] or None


register_buffer("file.name", "http", BOTH, _file_names, multi=True)


def _frame(part: str, request: bool) -> Any:
    """Suricata's HTTP/1 frames of one side, rebuilt from what the parser kept: the line
    (its CRLF assumed), the header block as sent, the body as inspected (de-chunked,
    decoded), and the whole of them."""
    def get(tx: HttpTx, to_server: bool) -> bytes | None:
        line = tx.request_line if request else tx.resp_line
        raw = tx.req_header_raw if request else tx.resp_header_raw
        body = tx.req_body if request else tx.resp_body
        if part == "line":
            return line + b"\r\n" if line else None
        if part == "headers":
            return raw or None
        if part == "body":
            return bytes(body) if body else None
        if not line:
            return None
        return line + b"\r\n" + raw + bytes(body)
    return get


# Suricata's HTTP/1 frames (app-layer-htp.c http_frame_table) are marked in the stream
# (HttpParser._frame_start/_frame_end); their line/headers/body parts, netsentry's own, are
# rebuilt per transaction
register_stream_frames("http", ("request", "response"))
for _side, _request in (("request", True), ("response", False)):
    for _part in ("line", "headers", "body"):
        register_buffer(f"frame:http1.{_side}{'_' + _part if _part else ''}", "http",
                        TO_SERVER if _request else TO_CLIENT, _frame(_part or "all", _request))


def _nonempty(v: bytes | None) -> bytes | None:
    return v if v else None


_REGS: list[tuple[Any, ...]] = [
    ("http.method", TO_SERVER, lambda tx, ts: _nonempty(tx.method), ()),
    ("http.uri", TO_SERVER, lambda tx, ts: _nonempty(tx.uri), ()),
    ("http.uri.raw", TO_SERVER, lambda tx, ts: _nonempty(tx.uri_raw), ()),
    ("http.request_line", TO_SERVER, lambda tx, ts: _nonempty(tx.request_line), ()),
    ("http.protocol", BOTH, _protocol, ()),
    ("http.header", BOTH, _headers_buf, ()),
    ("http.header.raw", BOTH, _header_raw, ()),
    ("http.header_names", BOTH, _header_names, ()),
    ("http.start", BOTH, _start, ()),
    ("http.host", TO_SERVER, _host, ()),
    ("http.host.raw", TO_SERVER, _host_raw, ()),
    ("http.user_agent", TO_SERVER, _req_hdr(b"user-agent"), ()),
    ("http.accept", TO_SERVER, _req_hdr(b"accept"), ()),
    ("http.accept_enc", TO_SERVER, _req_hdr(b"accept-encoding"), ()),
    ("http.accept_lang", TO_SERVER, _req_hdr(b"accept-language"), ()),
    ("http.referer", TO_SERVER, _req_hdr(b"referer"), ()),
    ("http.connection", BOTH, _hdr(b"connection"), ()),
    ("http.content_type", BOTH, _hdr(b"content-type"), ()),
    ("http.content_len", BOTH, _hdr(b"content-length"), ()),
    ("http.cookie", BOTH, _cookie, ()),
    ("http.request_body", TO_SERVER, _body(True), ("http.client_body",)),
    ("http.response_line", TO_CLIENT, lambda tx, ts: _nonempty(tx.resp_line), ()),
    ("http.stat_code", TO_CLIENT, lambda tx, ts: _nonempty(tx.status), ()),
    ("http.stat_msg", TO_CLIENT, lambda tx, ts: _nonempty(tx.stat_msg), ()),
    ("http.server", TO_CLIENT, _resp_hdr(b"server"), ()),
    ("http.location", TO_CLIENT, _resp_hdr(b"location"), ()),
    ("http.response_body", TO_CLIENT, _body(False), ("http.server_body",)),
]
for _name, _dir, _get, _aliases in _REGS:
    register_buffer(_name, "http", _dir, _get, *_aliases)
register_buffer("file.data", "http", BOTH, _file_data, "file_data", multi=True)
register_buffer("http.request_header", "http", TO_SERVER, lambda tx, ts: _header_list(tx, True), multi=True)
register_buffer("http.response_header", "http", TO_CLIENT, lambda tx, ts: _header_list(tx, False), multi=True)

def configure(config: Any) -> dict[str, Any]:
    """The parser's limits from `app-layer.protocols.http` (netsentry's keys) and Suricata's
    `app-layer.protocols.http.libhtp.default-config` (its keys win where both are set:
    `response-body-decompress-layer-limit`, `lzma-memlimit`, `lzma-enabled`)."""
    from netsentry.applayer.state import _size, _yes
    from netsentry.config import ConfigError, get
    http = dict(get(config, "app-layer.protocols.http", {}) or {})
    libhtp = dict(get(config, "app-layer.protocols.http.libhtp.default-config", {}) or {})
    prefix = "app-layer.protocols.http."

    def value(key: str, conv: Any, where: dict[str, Any], default: Any, full: str) -> Any:
        try:
            return conv(where.get(key, default))
        except (TypeError, ValueError):
            raise ConfigError(f"expected a number or size, got {where.get(key)!r}", prefix + full) from None

    if "response-body-decompress-layer-limit" in libhtp:
        layers = value("response-body-decompress-layer-limit", int, libhtp, 2,
                       "libhtp.default-config.response-body-decompress-layer-limit")
    else:
        layers = value("decompress-layer-limit", int, http, 2, "decompress-layer-limit")
    # lzma-enabled: yes is one lzma layer, a number that many; false leaves the default
    # (libhtp-rs: no lzma layer limit; only lzma-memlimit 0 turns lzma off)
    lz = libhtp.get("lzma-enabled")
    lzma_layers = 0
    if lz is not None and str(lz).strip().lower() not in ("no", "false", "off", "0"):
        lzma_layers = 1 if _yes(lz) else max(value("lzma-enabled", lambda v: int(str(v)), libhtp, 0,
                                                   "libhtp.default-config.lzma-enabled"), 0)
    return {
        "request-body-limit": value("request-body-limit", _size, http, 100 * 1024, "request-body-limit"),
        "response-body-limit": value("response-body-limit", _size, http, 100 * 1024, "response-body-limit"),
        "decompression-limit": value("decompression-limit", _size, http, 1 << 20, "decompression-limit"),
        "decompress-layer-limit": layers,
        "lzma-memlimit": value("lzma-memlimit", _size, libhtp, 1 << 20, "libhtp.default-config.lzma-memlimit"),
        "lzma-layers": lzma_layers,
        "double-decode-path": _yes(libhtp.get("double-decode-path", False)),
        "double-decode-query": _yes(libhtp.get("double-decode-query", False)),
    }


register_protocol(Protocol("http", (6,), probe, HttpParser, (80, 8080), configure=configure))


def _progress(tx: HttpTx, to_server: bool) -> int:
    """libhtp's request / response progress: started, line, headers, body, trailer, complete."""
    if tx.done[int(to_server)]:
        return 5
    if to_server:
        line, headers, body = tx.request_line, tx.req_headers, tx.req_body_len
    else:
        line, headers, body = tx.resp_line, tx.resp_headers, tx.resp_body_len
    if body:
        return 3
    if headers is not None:
        return 2
    return 1 if line is not None else 0


register_states("http", ("request_started", "request_line", "request_headers", "request_body", "request_trailer",
                         "request_complete"),
                ("response_started", "response_line", "response_headers", "response_body", "response_trailer",
                 "response_complete"), _progress)


# Suricata's XFF_CHAIN_MINLEN / XFF_CHAIN_MAXLEN (app-layer-htp-xff.h): shorter or longer
# header values are not read
_XFF_MIN, _XFF_MAX = 7, 256


def xff_address(tx: HttpTx, header: bytes, reverse: bool) -> str | None:
    """The client address a proxy put in the request header `header` (X-Forwarded-For),
    as Suricata's HttpXFFGetIPFromTxAux reads it: `reverse` deployment takes the chain's
    last entry (after the last space), `forward` its first (before the first comma); an
    IPv6 entry may be bracketed, an IPv4 one may carry a port; anything that is not an
    address gives None. The text is returned as written."""
    import ipaddress
    value = tx.header(header.lower(), True)
    if value is None or not _XFF_MIN <= len(value) < _XFF_MAX:
        return None
    if reverse:
        entry = value[value.rfind(b" ") + 1:]
    else:
        entry = value.split(b",", 1)[0]
    text = entry.decode("latin-1")
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        text = text[1:end]
    elif text.count(".") == 3 and text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return None
    return text
