"""Telnet (RFC 854) over TCP, as Suricata's parser (rust/src/telnet/) reads it: detection
on port 23, and its frames: each message is a `frame:telnet.pdu` and either a
`frame:telnet.ctl` (an IAC command: IAC + command, IAC + WILL/WONT/DO/DONT + option, or a
subnegotiation up to IAC SE) or a `frame:telnet.data` (a line, up to and with its LF).

- Detection: two bytes or more on port 23 (Suricata's probe accepts any data there).
- Each message is a one-direction transaction here, so that rules on frames are inspected
  message by message (`frame:data; content:...` sees one line). Telnet has no EVE record
  of its own and its alerts carry no telnet object, as Suricata's.
"""

from __future__ import annotations

from typing import Any

from netsentry.applayer import enabled
from netsentry.applayer.registry import BOTH, Protocol, register_buffer, register_protocol, register_states
from netsentry.applayer.tx import MessageTx

EVENTS: dict[str, int | None] = {}
MAX_LINE = 1 << 16          # a data message still without its LF past this is taken as it is


class TelnetTx(MessageTx):
    __slots__ = ("raw", "ctl")
    proto = "telnet"

    def __init__(self, tx_id: int, to_server: bool, raw: bytes, ctl: bool) -> None:
        super().__init__(tx_id, to_server)
        self.raw, self.ctl = raw, ctl

    def alert_objects(self) -> dict[str, Any]:
        return {}

    def message_records(self, final: bool) -> list[dict[str, Any]]:
        self.logged = True
        return []                   # Suricata has no telnet record


def message_end(d: bytes, off: int) -> int:
    """The end of the message at `off`, or -1 when it continues in later bytes."""
    n = len(d)
    if d[off] == 0xFF:
        if off + 2 > n:
            return -1
        cmd = d[off + 1]
        if 251 <= cmd <= 254:
            return off + 3 if off + 3 <= n else -1
        if cmd == 250:
            end = d.find(b"\xff\xf0", off + 3)
            return end + 2 if end >= 0 else -1
        return off + 2
    lf = d.find(b"\n", off)
    if lf < 0:
        return off + MAX_LINE if n - off >= MAX_LINE else -1
    return lf + 1


def probe(data: bytes, to_server: bool) -> bool | None:
    return True if len(data) > 1 else None


class TelnetParser:
    def __init__(self, settings: Any = None) -> None:
        self.off = settings is not None and not settings["parse"]
        self.txs: list[TelnetTx] = []
        self.buf = [b"", b""]
        self.lost = [False, False]

    def gap(self, to_server: bool, nbytes: int) -> None:
        self.buf[int(to_server)] = b""

    def parse(self, data: bytes, to_server: bool, pkt: Any = None) -> None:
        d = int(to_server)
        if self.off or not data:
            return
        buf = self.buf[d] + data if self.buf[d] else data
        off, n = 0, len(buf)
        while off < n:
            end = message_end(buf, off)
            if end < 0:
                break
            tx = TelnetTx(len(self.txs), to_server, buf[off:end], buf[off] == 0xFF)
            self.txs.append(tx)
            tx.touch(to_server)
            off = end
        self.buf[d] = buf[off:]


def _frame(ctl: bool | None):
    def get(tx: TelnetTx, to_server: bool) -> bytes | None:
        if tx.to_server != to_server or (ctl is not None and tx.ctl != ctl):
            return None
        return tx.raw
    return get


register_buffer("frame:telnet.pdu", "telnet", BOTH, _frame(None))
register_buffer("frame:telnet.ctl", "telnet", BOTH, _frame(True))
register_buffer("frame:telnet.data", "telnet", BOTH, _frame(False))
register_states("telnet", ("request_started", "request_complete"), ("response_started", "response_complete"),
                lambda tx, ts: 1)
register_protocol(Protocol("telnet", (6,), probe, TelnetParser, (23,), ports_only=True, port_decides=(),
                           configure=lambda config: enabled.settings(config, "telnet")))
