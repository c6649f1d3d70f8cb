"""Suricata's example protocol (rust/src/applayertemplate/): messages ``LEN:DATA`` over
TCP on port 7000, the `template.buffer` keyword and the EVE `template` record.

- Detection by its port only (Suricata registers a probing parser on 7000, no
  pattern; `app-layer.protocols.template.detection-ports` moves it): the first
  bytes must look like a decimal length and a colon within the first 10 bytes, and
  the port decides.
- Each request is a transaction; a response completes the oldest transaction
  without one. A message that does not parse is an app-layer error.
- `template.buffer`: the request on the request side, the response on the response side.
- EVE `template`: `request`, `response`; logged once the response is in (the flow's
  end logs the others).
"""

from __future__ import annotations

from typing import Any

from netsentry.applayer.registry import BOTH, ParserError, Protocol, register_buffer, register_protocol
from netsentry.applayer.tx import Tx

EVENTS: dict[str, int | None] = {"too_many_transactions": BOTH}
MAX_TX = 256            # Suricata's TEMPLATE_MAX_TX default
_DIGITS = frozenset(b"0123456789")


def probe(data: bytes, to_server: bool) -> bool | None:
    """Digits then ':' in the first 10 bytes: undecided (the port decides), else not this."""
    head = data[:10]
    colon = head.find(b":")
    if colon < 0:
        return None if len(data) < 10 and all(c in _DIGITS for c in head) else False
    if colon == 0 or any(c not in _DIGITS for c in head[:colon]):
        return False
    return None


class TemplateTx(Tx):
    __slots__ = ("request", "response")
    proto = "template"

    def __init__(self, tx_id: int, request: bytes) -> None:
        super().__init__(tx_id)
        self.request = request
        self.response: bytes | None = None
        self.done = [False, True]

    def eve(self) -> dict[str, Any]:
        out: dict[str, Any] = {"request": self.request.decode("utf-8", "replace")}
        if self.response is not None:
            out["response"] = self.response.decode("utf-8", "replace")
        return out


class TemplateParser:
    def __init__(self, settings: Any = None) -> None:
        self.txs: list[TemplateTx] = []
        self.buf = [b"", b""]
        self.lost = [False, False]

    def parse(self, data: bytes, to_server: bool, pkt: Any = None) -> None:
        d = int(to_server)
        if self.lost[d] or not data:
            return
        buf = self.buf[d] + data if self.buf[d] else data
        off, n = 0, len(buf)
        while off < n:
            colon = buf.find(b":", off)
            if colon < 0:
                if n - off > 20 or any(c not in _DIGITS for c in buf[off:]):
                    self._fail(d)
                break
            digits = buf[off:colon]
            if not digits or any(c not in _DIGITS for c in digits):
                self._fail(d)
            end = colon + 1 + int(digits)
            if end > n:
                break
            self._message(to_server, buf[colon + 1:end])
            off = end
        self.buf[d] = buf[off:]

    def _message(self, to_server: bool, msg: bytes) -> None:
        if to_server:
            tx = TemplateTx(len(self.txs), msg)
            self.txs.append(tx)
            if len(self.txs) >= MAX_TX:
                tx.add_event("too_many_transactions")
            tx.touch(True)
            return
        for tx in self.txs:
            if tx.response is None:
                tx.response = msg
                tx.done[0] = True
                tx.touch(False)
                return

    def _fail(self, d: int) -> None:
        self.lost[d] = True
        self.buf[d] = b""
        raise ParserError("template: not a LEN:DATA message")


def _buffer(tx: TemplateTx, to_server: bool) -> bytes | None:
    return tx.request if to_server else tx.response


register_buffer("template.buffer", "template", BOTH, _buffer)
register_protocol(Protocol("template", (6,), probe, TemplateParser, (7000,), port_decides=(6,)))
