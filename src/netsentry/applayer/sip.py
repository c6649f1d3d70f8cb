"""SIP (RFC 3261) over UDP and TCP, as Suricata's SIP parser (rust/src/sip/) reads it:
the `sip.*` buffers, the `sip` EVE record, the `sip.invalid_data` event.

- Detection by pattern, not by port (Suricata registers no default port): a client
  opens with a method (REGISTER, INVITE, BYE, CANCEL, REFER, PRACK, PUBLISH,
  MESSAGE; ACK, INFO, NOTIFY, SUBSCRIBE, OPTIONS and UPDATE only with "SIP/"
  further on), a server with "SIP/2.0".
- Every message is a transaction of its own, complete at once: a request (method,
  request URI, version, headers, body) or a response (version, 3-character code,
  reason, headers, body). A UDP datagram is one message; on TCP messages follow
  each other, the body delimited by Content-Length (what has none ends at the
  headers' end).
- Header names are kept as sent; the compact forms (RFC 3261 7.3.3: i, m, e, l, c,
  f, s, k, t, v) are expanded. A header may repeat: `sip.from`, `sip.to`, `sip.via`,
  `sip.user_agent`, `sip.content_type` and `sip.content_length` are multi-buffers,
  one instance per header, read from the inspected direction's message.
- A message that does not parse (a bad request line, a header value with a byte
  Suricata's grammar refuses, headers without their blank line) raises
  ``invalid_data`` on the newest transaction and is an app-layer error (the
  ``app-layer.error-policy`` applies).
- Frames (`frame:pdu`, `frame:request.line`, `...headers`, `...body`, and the
  response ones) are buffers of the transaction.
"""

from __future__ import annotations

from typing import Any

from netsentry.applayer import sdp as sdp_parser
from netsentry.applayer.registry import (BOTH, TO_CLIENT, TO_SERVER, ParserError, Protocol, register_buffer,
                                         register_protocol)
from netsentry.applayer.tx import Tx

EVENTS: dict[str, int | None] = {"invalid_data": BOTH}

_METHODS = (b"REGISTER", b"INVITE", b"BYE", b"CANCEL", b"REFER", b"PRACK", b"PUBLISH", b"MESSAGE")
_METHODS_PROBED = (b"ACK", b"INFO", b"NOTIFY", b"SUBSCRIBE", b"OPTIONS", b"UPDATE")
_RESPONSE = b"SIP/2.0"
_PROBE_MAX = 65536
MAX_MESSAGE = 1 << 20      # a TCP message still without its end past this is given up

_ALNUM = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_TOKEN = _ALNUM | frozenset(b"!%'*+-._`~")
_URI = _TOKEN | frozenset(b"~#@:;=?+&$,/")
_VERSION = frozenset(b"0123456789.")
_REASON = _TOKEN | frozenset(b"$&(),/:;=?@[\\]^ ")
_VALUE = _TOKEN | frozenset(b"\"#$&(),/;:<=>?@[]{}()^|~\\\t\n\r ")
_ALPHA = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")

COMPACT = {b"i": b"Call-ID", b"m": b"Contact", b"e": b"Content-Encoding", b"l": b"Content-Length",
           b"c": b"Content-Type", b"f": b"From", b"s": b"Subject", b"k": b"Supported", b"t": b"To",
           b"v": b"Via"}


class Incomplete(Exception):
    """More bytes are needed (a TCP message continues; on UDP: the message is bad)."""


class Invalid(Exception):
    """The bytes are not a SIP message."""


_FIRST = frozenset(m[0] for m in _METHODS + _METHODS_PROBED)   # a method's first letter


def probe(data: bytes, to_server: bool) -> bool | None:
    """Suricata's SIP patterns at offset 0 (to server: a method, to client: "SIP/2.0").
    Runs on every new flow no other protocol claimed first: one byte test rules most out."""
    if not data:
        return None
    if not to_server:
        if len(data) < len(_RESPONSE):
            return None if _RESPONSE.startswith(data) else False
        return data.startswith(_RESPONSE)
    if data[0] not in _FIRST:
        return False
    short = False
    for m in _METHODS:
        if data.startswith(m):
            return True
        short = short or (len(data) < len(m) and m.startswith(data))
    for m in _METHODS_PROBED:
        if data.startswith(m):
            # the probing parser: "SIP/" somewhere in the first 64 KiB, else undecided
            return True if b"SIP/" in data[:_PROBE_MAX] else None
        short = short or (len(data) < len(m) and m.startswith(data))
    return None if short else False


def _take(data: bytes, off: int, allowed: frozenset[int]) -> int:
    """The end of the run of `allowed` bytes from `off`."""
    n = len(data)
    while off < n and data[off] in allowed:
        off += 1
    return off


def _char(data: bytes, off: int, c: bytes) -> int:
    if off >= len(data):
        raise Incomplete
    if data[off:off + 1] != c:
        raise Invalid
    return off + 1


def _crlf(data: bytes, off: int) -> int:
    if off + 2 > len(data):
        if data[off:] in (b"", b"\r"):
            raise Incomplete
        raise Invalid
    if data[off:off + 2] != b"\r\n":
        raise Invalid
    return off + 2


def _version(data: bytes, off: int) -> tuple[bytes, int]:
    if len(data) - off < 4:
        if b"SIP/".startswith(data[off:]):
            raise Incomplete
        raise Invalid
    if data[off:off + 4] != b"SIP/":
        raise Invalid
    end = _take(data, off + 4, _VERSION)
    if end == off + 4:
        raise Incomplete if end >= len(data) else Invalid
    if end >= len(data):
        raise Incomplete
    return data[off:end], end


def _header_value(data: bytes, off: int) -> tuple[bytes, int]:
    """A value up to its line end (a line starting with space or tab continues it);
    trailing spaces are not part of it. Returns (value, offset of its CRLF)."""
    end_pos = off
    trail = 0
    i, n = off, len(data)
    while i < n:
        b = data[i]
        if b == 0x0A:
            i += 1
            if i >= n:
                raise Incomplete
            if data[i] in (0x20, 0x09):
                i += 1
                continue
            return data[off:end_pos], end_pos + trail
        if b in (0x20, 0x09):
            trail += 1
        elif b == 0x0D:
            pass
        else:
            trail = 0
            if b not in _VALUE:
                raise Incomplete        # as Suricata's grammar: an unknown byte asks for more
            end_pos = i + 1
        i += 1
    raise Incomplete


def _headers(data: bytes, off: int) -> tuple[dict[bytes, list[bytes]], int]:
    """Header lines up to the blank line; returns them and the offset of that CRLF."""
    headers: dict[bytes, list[bytes]] = {}
    n = len(data)
    while True:
        if off + 2 > n:
            raise Incomplete
        if data[off:off + 2] == b"\r\n":
            return headers, off
        end = _take(data, off, _TOKEN)
        name = data[off:end]
        off = _take(data, end, frozenset(b" \t"))
        off = _char(data, off, b":")
        off = _take(data, off, frozenset(b" \t"))
        value, off = _header_value(data, off)
        off = _crlf(data, off)
        headers.setdefault(COMPACT.get(name, name), []).append(value)


class Message:
    """One request or response, and where its parts lie in its bytes."""

    __slots__ = ("request", "method", "uri", "version", "code", "reason", "headers", "line",
                 "raw", "line_len", "headers_len", "body_off", "_sdp")

    def __init__(self) -> None:
        self.request = True
        self.method = self.uri = self.version = self.code = self.reason = b""
        self.headers: dict[bytes, list[bytes]] = {}
        self.line = b""
        self.raw = b""
        self.line_len = self.headers_len = self.body_off = 0
        self._sdp: Any = False

    @property
    def sdp(self) -> sdp_parser.Sdp | None:
        """The body as SDP (applayer/sdp.py), parsed on first use; None when it is not."""
        if self._sdp is False:
            body = self.body
            self._sdp = sdp_parser.parse(body) if body.startswith(b"v=") else None
        return self._sdp

    @property
    def body(self) -> bytes:
        return self.raw[self.body_off:]


def parse_message(data: bytes, request: bool, tcp: bool) -> Message:
    """One message from the start of `data`; raises Incomplete or Invalid. On TCP the
    message ends after Content-Length body bytes, else the whole rest is its body."""
    m = Message()
    m.request = request
    if request:
        off = _take(data, 0, _ALPHA)
        m.method = data[:off]
        off = _char(data, off, b" ")
        end = _take(data, off, _URI)
        if end == off:
            raise Incomplete if end >= len(data) else Invalid
        m.uri = data[off:end]
        off = _char(data, end, b" ")
        m.version, off = _version(data, off)
    else:
        m.version, off = _version(data, 0)
        off = _char(data, off, b" ")
        if len(data) - off < 3:
            raise Incomplete
        m.code = data[off:off + 3]
        off = _char(data, off + 3, b" ")
        end = _take(data, off, _REASON)
        m.reason = data[off:end]
        off = end
    off = _crlf(data, off)
    m.line_len = off
    m.headers, hend = _headers(data, off)
    m.headers_len = hend - off
    m.body_off = hend + 2
    end = len(data)
    if tcp:
        clen = m.headers.get(b"Content-Length")
        length = 0
        if clen:
            try:
                length = int(clen[0].strip() or b"0")
            except ValueError:
                length = 0
        end = m.body_off + max(length, 0)
        if end > len(data):
            raise Incomplete
    m.raw = data[:end]
    lend = _take(data, 0, _REASON)
    m.line = data[:lend]
    return m


class SipTx(Tx):
    """One SIP message: a request (to server) or a response (to client)."""

    __slots__ = ("msg",)
    proto = "sip"

    def __init__(self, tx_id: int, msg: Message) -> None:
        super().__init__(tx_id)
        self.msg = msg
        self.done = [True, True]

    def one_way(self) -> bool | None:
        return self.msg.request

    def message_records(self, final: bool) -> list[dict[str, Any]]:
        """Logged once, when seen (Suricata's progress is 1 both ways), named by its packet."""
        self.logged = True
        return [self.eve()]

    def eve(self) -> dict[str, Any]:
        m = self.msg
        out: dict[str, Any] = {}
        if m.request:
            out["method"] = _text(m.method)
            out["uri"] = _text(m.uri)
            out["version"] = _text(m.version)
            if m.sdp is not None:
                out["sdp"] = m.sdp.eve()
            if m.line:
                out["request_line"] = _text(m.line)
        else:
            out["version"] = _text(m.version)
            out["code"] = _text(m.code)
            out["reason"] = _text(m.reason)
            if m.sdp is not None:
                out["sdp"] = m.sdp.eve()
            if m.line:
                out["response_line"] = _text(m.line)
        return out


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


class SipParser:
    """One flow's SIP messages; on TCP the bytes of an unfinished message per direction."""

    def __init__(self, settings: Any = None) -> None:
        self.txs: list[SipTx] = []
        self.buf = [b"", b""]
        self.lost = [False, False]

    def gap(self, to_server: bool, nbytes: int) -> None:
        self.buf[int(to_server)] = b""
        self.lost[int(to_server)] = True

    def parse(self, data: bytes, to_server: bool, pkt: Any = None) -> None:
        d = int(to_server)
        if self.lost[d] or not data:
            return
        tcp = pkt is not None and getattr(pkt, "proto", 17) == 6
        if not tcp:
            try:
                msg = parse_message(data, to_server, False)
            except (Incomplete, Invalid):
                self._fail(to_server, False)
            self._new(msg, to_server)
            return
        buf = self.buf[d] + data if self.buf[d] else data
        self.buf[d] = b""
        while buf:
            try:
                msg = parse_message(buf, to_server, True)
            except Incomplete:
                if len(buf) > MAX_MESSAGE:
                    self._fail(to_server, True)
                self.buf[d] = buf
                return
            except Invalid:
                self._fail(to_server, True)
            self._new(msg, to_server)
            buf = buf[len(msg.raw):]

    def _new(self, msg: Message, to_server: bool) -> None:
        tx = SipTx(len(self.txs), msg)
        self.txs.append(tx)
        tx.touch(to_server)

    def _fail(self, to_server: bool, tcp: bool) -> None:
        """Suricata's SIPEvent::InvalidData on the newest transaction, and an error."""
        if self.txs:
            self.txs[-1].add_event("invalid_data")
            self.txs[-1].touch(to_server)
        if tcp:
            self.lost[int(to_server)] = True
        raise ParserError("sip: invalid_data")


# --- buffers ------------------------------------------------------------------------------------

def _req(attr: str):
    def get(tx: SipTx, to_server: bool) -> bytes | None:
        m = tx.msg
        return (getattr(m, attr) or None) if m.request else None
    return get


def _resp(attr: str):
    def get(tx: SipTx, to_server: bool) -> bytes | None:
        m = tx.msg
        return None if m.request else (getattr(m, attr) or None)
    return get


def _protocol(tx: SipTx, to_server: bool) -> bytes | None:
    m = tx.msg
    return (m.version or None) if m.request == to_server else None


def _header(name: bytes):
    """The values of one header in the inspected direction's message (multi-buffer)."""
    def get(tx: SipTx, to_server: bool) -> list[bytes] | None:
        m = tx.msg
        if m.request != to_server:
            return None
        return m.headers.get(name) or None
    return get


def _frame(part: str, request: bool):
    def get(tx: SipTx, to_server: bool) -> bytes | None:
        m = tx.msg
        if m.request != request:
            return None
        if part == "line":
            return m.raw[:m.line_len]
        if part == "headers":
            return m.raw[m.line_len:m.line_len + m.headers_len] or None
        return m.body or None
    return get


register_buffer("sip.method", "sip", TO_SERVER, _req("method"))
register_buffer("sip.uri", "sip", TO_SERVER, _req("uri"))
register_buffer("sip.request_line", "sip", TO_SERVER, _req("line"))
register_buffer("sip.protocol", "sip", BOTH, _protocol)
register_buffer("sip.stat_code", "sip", TO_CLIENT, _resp("code"))
register_buffer("sip.stat_msg", "sip", TO_CLIENT, _resp("reason"))
register_buffer("sip.response_line", "sip", TO_CLIENT, _resp("line"))
for _kw, _hdr in (("sip.from", b"From"), ("sip.to", b"To"), ("sip.via", b"Via"),
                  ("sip.user_agent", b"User-Agent"), ("sip.content_type", b"Content-Type"),
                  ("sip.content_length", b"Content-Length")):
    register_buffer(_kw, "sip", BOTH, _header(_hdr), *(("sip.ua",) if _kw == "sip.user_agent" else ()),
                    multi=True)
register_buffer("frame:sip.pdu", "sip", BOTH, lambda tx, ts: (tx.msg.raw or None) if tx.msg.request == ts else None)
for _req_side, _prefix in ((True, "request"), (False, "response")):
    for _part in ("line", "headers", "body"):
        register_buffer(f"frame:sip.{_prefix}.{_part}", "sip", TO_SERVER if _req_side else TO_CLIENT,
                        _frame(_part, _req_side))

def _sdp(get_):
    """An `sdp.*` buffer: of the inspected side's message body, when it is SDP."""
    def get(tx: SipTx, to_server: bool) -> Any:
        m = tx.msg
        if m.request != to_server:
            return None
        s = m.sdp
        if s is None:
            return None
        v = get_(s)
        return v if v else None
    return get


for _kw, _get, _multi in (
        ("sdp.origin", lambda s: s.origin, False), ("sdp.session_name", lambda s: s.session_name, False),
        ("sdp.session_info", lambda s: s.session_info, False), ("sdp.uri", lambda s: s.uri, False),
        ("sdp.email", lambda s: s.email, False), ("sdp.phone_number", lambda s: s.phone, False),
        ("sdp.connection_data", lambda s: s.connection, False),
        ("sdp.bandwidth", lambda s: s.bandwidths, True),
        ("sdp.time", lambda s: [t for t, _ in s.times], True),
        ("sdp.repeat_time", lambda s: [r for _, r in s.times if r is not None], True),
        ("sdp.timezone", lambda s: s.timezone, False), ("sdp.encryption_key", lambda s: s.key, False),
        ("sdp.attribute", lambda s: s.attributes, True),
        ("sdp.media.media", lambda s: [m.media for m in s.media], True),
        ("sdp.media.media_info", lambda s: [m.info for m in s.media if m.info is not None], True),
        ("sdp.media.connection_data", lambda s: [m.connection for m in s.media if m.connection is not None], True),
        ("sdp.media.encryption_key", lambda s: [m.key for m in s.media if m.key is not None], True)):
    register_buffer(_kw, "sip", BOTH, _sdp(_get), multi=_multi)

register_protocol(Protocol("sip", (17, 6), probe, SipParser, ()))
