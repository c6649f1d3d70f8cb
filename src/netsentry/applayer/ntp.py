"""NTP (RFC 1305, RFC 5905) over UDP, as Suricata's parser (rust/src/ntp/, on the
ntp-parser crate) reads it: the `ntp.*` keywords, the `ntp` EVE record, the `ntp.*` events.

- Detection on port 123 only (Suricata registers a probing parser by port): a datagram
  that parses as an NTP version 3 or 4 header (48 bytes at least); shorter is undecided.
- Every datagram is a transaction of its own direction, complete at once, logged when seen
  (`version`, `mode`, `stratum`, `reference_id` as four hex bytes).
- A datagram that does not parse (another version, cut short) raises ``malformed_data`` on
  the flow's newest transaction and is an app-layer error.
"""

from __future__ import annotations

from typing import Any

from netsentry.applayer import enabled
from netsentry.applayer.registry import (BOTH, ParserError, Protocol, register_buffer, register_protocol,
                                         register_states)
from netsentry.applayer.tx import MessageTx

EVENTS: dict[str, int | None] = {"unsolicited_response": BOTH, "malformed_data": BOTH}
HEADER_LEN = 48
MODES = {"reserved": 0, "symmetric_active": 1, "symmetric_passive": 2, "client": 3, "server": 4,
         "broadcast": 5, "control": 6, "private": 7}


def parse(data: bytes) -> tuple[int, int, int, bytes] | None:
    """(version, mode, stratum, reference id) of an NTP v3/v4 header, None when it is not."""
    if len(data) < HEADER_LEN:
        return None
    b0 = data[0]
    version = (b0 >> 3) & 7
    if version not in (3, 4):
        return None
    return version, b0 & 7, data[1], data[12:16]


def probe(data: bytes, to_server: bool) -> bool | None:
    if not data:
        return None
    if ((data[0] >> 3) & 7) not in (3, 4):
        return False
    return True if len(data) >= HEADER_LEN else None


class NtpTx(MessageTx):
    __slots__ = ("version", "mode", "stratum", "reference_id")
    proto = "ntp"

    def __init__(self, tx_id: int, to_server: bool, version: int, mode: int, stratum: int, ref: bytes) -> None:
        super().__init__(tx_id, to_server)
        self.version, self.mode, self.stratum, self.reference_id = version, mode, stratum, ref

    def eve(self) -> dict[str, Any]:
        return {"version": self.version, "mode": self.mode, "stratum": self.stratum,
                "reference_id": ":".join(f"{c:02x}" for c in self.reference_id)}


class NtpParser:
    def __init__(self, settings: Any = None) -> None:
        self.off = settings is not None and not settings["parse"]     # detection-only
        self.txs: list[NtpTx] = []

    def parse(self, data: bytes, to_server: bool, pkt: Any = None) -> None:
        if self.off:
            return
        r = parse(data)
        if r is None:
            if self.txs:
                self.txs[-1].add_event("malformed_data")
                self.txs[-1].touch(to_server)
            raise ParserError("ntp: malformed_data")
        tx = NtpTx(len(self.txs), to_server, *r)
        self.txs.append(tx)
        tx.touch(to_server)


register_buffer("ntp.reference_id", "ntp", BOTH, lambda tx, ts: tx.reference_id if tx.to_server == ts else None)
register_states("ntp", ("request_started", "request_complete"), ("response_started", "response_complete"),
                lambda tx, ts: 1)
register_protocol(Protocol("ntp", (17,), probe, NtpParser, (123,), ports_only=True,
                           configure=lambda config: enabled.settings(config, "ntp")))
