"""TFTP (RFC 1350) over UDP, as Suricata's parser (rust/src/tftp/) reads it: the `tftp`
EVE record of each read/write request.

- Detection on port 69 only (Suricata's probing parser by port): a datagram of at least
  4 bytes starting with a zero byte; anything else is undecided.
- A to-server datagram that reads as opcode, file name, NUL, mode (netascii, mail or octet,
  any case) with a known opcode is a transaction, complete at once; one that does not is an
  app-layer error. The server's datagrams (data, acks) are not parsed.
- EVE `tftp`: `packet` (read, write, error for the other opcodes), `file`, `mode` (lowercase).
"""

from __future__ import annotations

from typing import Any

from netsentry.applayer import enabled
from netsentry.applayer.registry import ParserError, Protocol, register_protocol, register_states
from netsentry.applayer.tx import Tx

EVENTS: dict[str, int | None] = {}
MIN_FRAME = 4
_OPCODES = frozenset((1, 2, 3, 4, 5))
_MODES = frozenset(("netascii", "mail", "octet"))
_PACKET = {1: "read", 2: "write"}


def parse_request(data: bytes) -> tuple[int, str, str] | None:
    """(opcode, file name, mode) of a request datagram, None when it is not one."""
    if len(data) < 2 or data[0] != 0:
        return None
    opcode = data[1]
    end = data.find(b"\x00", 2)
    if end < 0:
        return None
    mode_end = data.find(b"\x00", end + 1)
    if mode_end < 0:
        return None             # Suricata's streaming parser: the mode must end in a NUL
    try:
        name = data[2:end].decode("utf-8")
        mode = data[end + 1:mode_end].decode("utf-8").lower()
    except UnicodeDecodeError:
        return None
    if mode not in _MODES or opcode not in _OPCODES:
        return None
    return opcode, name, mode


def probe(data: bytes, to_server: bool) -> bool | None:
    return True if len(data) >= MIN_FRAME and data[0] == 0 else None


class TftpTx(Tx):
    __slots__ = ("opcode", "file", "mode")
    proto = "tftp"

    def __init__(self, tx_id: int, opcode: int, file: str, mode: str) -> None:
        super().__init__(tx_id)
        self.opcode, self.file, self.mode = opcode, file, mode
        self.done = [True, True]

    def eve(self) -> dict[str, Any]:
        return {"packet": _PACKET.get(self.opcode, "error"), "file": self.file, "mode": self.mode}


class TftpParser:
    def __init__(self, settings: Any = None) -> None:
        self.off = settings is not None and not settings["parse"]     # detection-only
        self.txs: list[TftpTx] = []

    def parse(self, data: bytes, to_server: bool, pkt: Any = None) -> None:
        if self.off:
            return
        if not to_server:
            return
        r = parse_request(data)
        if r is None:
            raise ParserError("tftp: not a request")
        tx = TftpTx(len(self.txs), *r)
        self.txs.append(tx)
        tx.touch(True)


register_states("tftp", ("request_started", "request_complete"), ("response_started", "response_complete"),
                lambda tx, ts: 1)
register_protocol(Protocol("tftp", (17,), probe, TftpParser, (69,), ports_only=True,
                           configure=lambda config: enabled.settings(config, "tftp")))
