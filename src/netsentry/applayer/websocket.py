"""WebSocket (RFC 6455) after an HTTP/1 upgrade, as Suricata's parser (rust/src/websocket/)
reads it: the `websocket.opcode`, `websocket.flags`, `websocket.mask`, `websocket.payload`
keywords, the `frame:websocket.{header,pdu,data}` frames, the `websocket` EVE record.

- The flow becomes WebSocket when HTTP/1 sees a 101 answer to a request with
  `Upgrade: websocket` (applayer/http.py `_upgrade`): this parser takes over with the HTTP
  transactions, and the bytes already read past the 101 on either side.
- Every frame is a transaction of its own direction, complete at once. The payload is
  unmasked; a frame's payload past `app-layer.protocols.websocket.max-payload-size`
  (65535) is skipped (``skip_end_of_payload``). Data frames that are not final (opcode < 8)
  are reassembled: the final one carries the whole message (up to the same limit,
  ``reassembly_limit_reached``). A message with RSV1 set (permessage-deflate) is inflated
  (raw deflate, the context kept across messages as the extension's default), up to the
  limit. Control frames between fragments are transactions of their own.
"""

from __future__ import annotations

import zlib
from typing import Any

from netsentry.applayer import enabled
from netsentry.applayer.registry import BOTH, Protocol, register_buffer, register_protocol, register_states
from netsentry.applayer.tx import Tx
from netsentry.config import ConfigError, get

EVENTS: dict[str, int | None] = {"skip_end_of_payload": BOTH, "reassembly_limit_reached": BOTH}
OPCODES = {"continuation": 0, "text": 1, "binary": 2, "close": 8, "ping": 9, "pong": 10}
_OPCODE_NAMES = {v: k for k, v in OPCODES.items()}
DEFAULT_MAX_PAYLOAD = 0xFFFF


class WebSocketTx(Tx):
    __slots__ = ("flags", "fin", "opcode", "mask", "payload", "raw", "hdr_len", "to_server")
    proto = "websocket"

    def __init__(self, tx_id: int, to_server: bool) -> None:
        super().__init__(tx_id)
        self.to_server = to_server
        self.done = [True, True]
        self.flags = 0
        self.fin = False
        self.opcode = 0
        self.mask: int | None = None
        self.payload = b""
        self.raw = b""
        self.hdr_len = 0

    def one_way(self) -> bool | None:
        return self.to_server

    def eve(self) -> dict[str, Any]:
        out: dict[str, Any] = {"fin": self.fin}
        if self.mask is not None:
            out["mask"] = self.mask
        out["opcode"] = _OPCODE_NAMES.get(self.opcode, f"unknown-{self.opcode}")
        return out


def _frame(data: bytes, off: int, max_pl: int) -> tuple[int, int, int | None, int, int, int] | None:
    """(flags byte, header length, mask, payload length kept, bytes to skip after, total
    length of header + kept payload) of the frame at `off`, None when more bytes are needed."""
    n = len(data) - off
    if n < 2:
        return None
    b0, b1 = data[off], data[off + 1]
    plen = b1 & 0x7F
    hdr = 2
    if plen == 126:
        if n < 4:
            return None
        plen = int.from_bytes(data[off + 2:off + 4], "big")
        hdr = 4
    elif plen == 127:
        if n < 10:
            return None
        plen = int.from_bytes(data[off + 2:off + 10], "big")
        hdr = 10
    mask = None
    if b1 & 0x80:
        if n < hdr + 4:
            return None
        mask = int.from_bytes(data[off + hdr:off + hdr + 4], "big")
        hdr += 4
    skip = 0
    if plen >= max_pl:
        skip = plen - max_pl
        plen = max_pl
    if n < hdr + plen:
        return None
    return b0, hdr, mask, plen, skip, hdr + plen


def _unmask(payload: bytes, mask: int) -> bytes:
    if not payload:
        return payload
    key = mask.to_bytes(4, "big")
    n = len(payload)
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


class WebSocketParser:
    def __init__(self, settings: Any = None, txs: list[Any] | None = None) -> None:
        self.settings = settings if settings is not None else {"parse": True, "max-payload-size": DEFAULT_MAX_PAYLOAD}
        self.off = not self.settings["parse"]
        self.max_pl = self.settings["max-payload-size"]
        self.txs: list[Any] = list(txs) if txs else []
        self.buf = [b"", b""]
        self.skip = [0, 0]
        self.reasm: list[list[Any]] = [[b"", False], [b"", False]]     # per direction: data, compressed
        self.inflate: list[Any] = [None, None]
        self.lost = [False, False]

    def gap(self, to_server: bool, nbytes: int) -> None:
        d = int(to_server)
        self.buf[d] = b""
        self.lost[d] = True

    def parse(self, data: bytes, to_server: bool, pkt: Any = None) -> None:
        d = int(to_server)
        if self.off or self.lost[d] or not data:
            return
        if self.skip[d]:
            if self.skip[d] >= len(data):
                self.skip[d] -= len(data)
                return
            data = data[self.skip[d]:]
            self.skip[d] = 0
        buf = self.buf[d] + data if self.buf[d] else data
        off, n = 0, len(buf)
        while off < n:
            f = _frame(buf, off, self.max_pl)
            if f is None:
                break
            b0, hdr, mask, plen, skip, total = f
            raw = buf[off:off + total]
            off += total
            self._pdu(to_server, b0, hdr, mask, raw, skip)
            if skip:
                if off + skip > n:
                    self.skip[d] = off + skip - n
                    off = n
                    break
                off += skip
        self.buf[d] = buf[off:] if off < n else b""

    def _pdu(self, to_server: bool, b0: int, hdr: int, mask: int | None, raw: bytes, skip: int) -> None:
        d = int(to_server)
        tx = WebSocketTx(len(self.txs), to_server)
        tx.flags = b0 & 0xF0
        tx.fin = bool(b0 & 0x80)
        compress = bool(b0 & 0x40)
        tx.opcode = b0 & 0x0F
        tx.mask = mask
        tx.raw = raw
        tx.hdr_len = hdr
        payload = raw[hdr:]
        if mask is not None:
            payload = _unmask(payload, mask)
        if skip:
            tx.add_event("skip_end_of_payload")
        r = self.reasm[d]
        if tx.opcode < 8 and (r[0] or not tx.fin):
            if not r[0]:
                r[1] = compress
            room = self.max_pl - len(r[0])
            if len(payload) < room:
                r[0] += payload
            elif room > 0:
                r[0] += payload[:room]
                tx.add_event("reassembly_limit_reached")
        if tx.opcode < 8 and tx.fin and r[0]:
            compress = r[1]
            payload = r[0]
            r[0] = b""
        if compress and tx.fin:
            r[1] = False
            dec = self.inflate[d]
            if dec is None:
                dec = self.inflate[d] = zlib.decompressobj(-15)
            try:
                out = dec.decompress(payload + b"\x00\x00\xff\xff", self.max_pl)
            except zlib.error:
                out = b""
            if out:
                payload = out
        tx.payload = payload
        self.txs.append(tx)
        tx.touch(to_server)


def configure(config: Any) -> dict[str, Any]:
    """`app-layer.protocols.websocket.max-payload-size` (65535; a size) and `enabled`."""
    from netsentry.applayer.state import _size
    key = "app-layer.protocols.websocket.max-payload-size"
    try:
        size = _size(get(config, key, DEFAULT_MAX_PAYLOAD))
    except (TypeError, ValueError):
        raise ConfigError("expected a size (65535, 64kb)", key) from None
    if not 0 < size <= 0xFFFFFFFF:
        raise ConfigError("must be 1 .. 4GiB", key)
    SETTINGS.clear()
    SETTINGS.update(enabled.settings(config, "websocket", **{"max-payload-size": size}))
    return SETTINGS


# the settings of the run (configure): the parser is made by HTTP's upgrade, not by the app
# layer, so it reads them here
SETTINGS: dict[str, Any] = {"parse": True, "enabled": True, "max-payload-size": DEFAULT_MAX_PAYLOAD}


def upgrade_parser(txs: list[Any], to_server: bytes, to_client: bytes) -> WebSocketParser:
    """The parser of a flow HTTP/1 upgraded (101 to websocket): it keeps the HTTP
    transactions and reads the bytes each side already sent past the upgrade."""
    parser = WebSocketParser(SETTINGS, txs)
    if to_client:
        parser.parse(to_client, False)
    if to_server:
        parser.parse(to_server, True)
    return parser


def probe(data: bytes, to_server: bool) -> bool | None:
    """Only reached through HTTP's upgrade: WebSocket is never detected on its own."""
    return False


def _side(get_):
    def get(tx: Any, to_server: bool) -> Any:
        if getattr(tx, "proto", "") != "websocket" or tx.to_server != to_server:
            return None
        return get_(tx)
    return get


register_buffer("websocket.payload", "websocket", BOTH, _side(lambda tx: tx.payload))
register_buffer("frame:websocket.pdu", "websocket", BOTH, _side(lambda tx: tx.raw))
register_buffer("frame:websocket.header", "websocket", BOTH, _side(lambda tx: tx.raw[:tx.hdr_len]))
register_buffer("frame:websocket.data", "websocket", BOTH, _side(lambda tx: tx.raw[tx.hdr_len:] or None))
register_states("websocket", ("request_started", "request_complete"), ("response_started", "response_complete"),
                lambda tx, ts: 1)
register_protocol(Protocol("websocket", (6,), probe, WebSocketParser, (), port_decides=(), ports_only=True,
                           configure=configure))
