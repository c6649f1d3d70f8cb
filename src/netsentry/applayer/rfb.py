"""RFB (VNC, RFC 6143) over TCP, as Suricata's parser (rust/src/rfb/) reads the handshake:
the `rfb.name`, `rfb.sectype`, `rfb.secresult` keywords, the `rfb` EVE record, the `rfb.*`
events.

- Detection by the pattern "RFB " at the start of either side, on any port.
- One transaction per flow, made by the server's ProtocolVersion and complete at the
  ServerInit (or where the handshake stops: a failure, an unknown security type or result,
  a message that does not read). The states follow the versions: 3.3 (the server picks the
  security type), 3.7 and 3.8 (the client picks among the server's list); VNC
  authentication's challenge and response; the SecurityResult; ClientInit; ServerInit
  (framebuffer size, pixel format, desktop name). After the ServerInit nothing more is read.
- Events: `unimplemented_security_type`, `unknown_security_result`, `malformed_message`,
  `confused_state` (a message of the other side where this side was expected).
"""

from __future__ import annotations

from typing import Any

from netsentry.applayer import enabled, evestr
from netsentry.applayer.frames import frames_for, register_stream_frames
from netsentry.applayer.registry import (BOTH, TO_CLIENT, Protocol, register_buffer, register_protocol,
                                         register_states)
from netsentry.applayer.tx import Tx

EVENTS: dict[str, int | None] = {name: BOTH for name in (
    "unimplemented_security_type", "unknown_security_result", "malformed_message", "confused_state")}
RESULTS = {"ok": 0, "fail": 1, "toomany": 2, "unknown": 3}
_RESULT_NAMES = {v: k.upper() for k, v in RESULTS.items()}

# parser states (Suricata's RFBGlobalState): whose message comes next
(TC_SERVER_VERSION, TS_CLIENT_VERSION, TC_SUPPORTED_TYPES, TC_SERVER_TYPE, TS_TYPE_SELECTION,
 TC_VNC_CHALLENGE, TS_VNC_RESPONSE, TC_SECURITY_RESULT, TC_FAILURE_REASON, TS_CLIENT_INIT,
 TC_SERVER_INIT, SKIP) = range(12)
_TS_STATES = frozenset((TS_CLIENT_VERSION, TS_TYPE_SELECTION, TS_VNC_RESPONSE, TS_CLIENT_INIT))


class _More(Exception):
    """The message continues in later bytes."""


class _Bad(Exception):
    """The bytes are not the message the state expects."""


def probe(data: bytes, to_server: bool) -> bool | None:
    if len(data) < 4:
        return None if b"RFB ".startswith(data) else False
    return data.startswith(b"RFB ")


def _version(d: bytes) -> tuple[tuple[str, str], int]:
    if len(d) < 12:
        if not b"RFB ".startswith(d[:4]):
            raise _Bad
        raise _More
    if d[:4] != b"RFB " or d[7:8] != b"." or d[11:12] != b"\n":
        raise _Bad
    return (evestr.lossy(d[4:7]), evestr.lossy(d[8:11])), 12


def _need(d: bytes, n: int) -> None:
    if len(d) < n:
        raise _More


class RfbTx(Tx):
    __slots__ = ("server_version", "client_version", "supported", "chosen", "challenge", "response",
                 "result", "failure_reason", "shared", "server_init", "name")
    proto = "rfb"

    def __init__(self, tx_id: int) -> None:
        super().__init__(tx_id)
        self.server_version: tuple[str, str] | None = None
        self.client_version: tuple[str, str] | None = None
        self.supported: bytes | None = None
        self.chosen: int | None = None
        self.challenge: bytes | None = None
        self.response: bytes | None = None
        self.result: int | None = None
        self.failure_reason: bytes | None = None
        self.shared: int | None = None
        self.server_init: dict[str, Any] | None = None
        self.name: bytes | None = None          # the ServerInit's desktop name

    def finish(self) -> None:
        self.done = [True, True]

    def eve(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.server_version is not None:
            out["server_protocol_version"] = {"major": self.server_version[0], "minor": self.server_version[1]}
        if self.client_version is not None:
            out["client_protocol_version"] = {"major": self.client_version[0], "minor": self.client_version[1]}
        auth: dict[str, Any] = {}
        if self.chosen is not None:
            auth["security_type"] = self.chosen
        if self.chosen == 2:
            vnc = {}
            if self.challenge is not None:
                vnc["challenge"] = self.challenge.hex()
            if self.response is not None:
                vnc["response"] = self.response.hex()
            auth["vnc"] = vnc
        if self.result is not None:
            auth["security_result"] = _RESULT_NAMES.get(self.result, f"UNKNOWN ({self.result})")
        out["authentication"] = auth
        if self.failure_reason is not None:
            out["server_security_failure_reason"] = evestr.lossy(self.failure_reason)
        if self.shared is not None:
            out["screen_shared"] = self.shared != 0
        if self.server_init is not None:
            out["framebuffer"] = dict(self.server_init)
        return out


class RfbParser:
    def __init__(self, settings: Any = None) -> None:
        self.off = settings is not None and not settings["parse"]     # detection-only
        self.txs: list[RfbTx] = []
        self.state = TC_SERVER_VERSION
        self.buf = [b"", b""]
        self.stream_frames = frames_for("rfb")    # applayer/frames.py: None unless a rule reads RFB frames

    def gap(self, to_server: bool, nbytes: int) -> None:
        if self.stream_frames is not None:
            self.stream_frames.gap(to_server, nbytes)
        self.buf[int(to_server)] = b""
        self._stop(None)

    def _stop(self, event: str | None) -> None:
        tx = self.txs[-1] if self.txs else None
        if tx is not None:
            if event is not None:
                tx.add_event(event)
            tx.finish()
            tx.touch(True)
            tx.touch(False)
        self.state = SKIP

    def parse(self, data: bytes, to_server: bool, pkt: Any = None) -> None:
        if self.off or not data or self.state == SKIP:
            return
        d = int(to_server)
        fr = self.stream_frames
        if fr is not None:
            fr.stream(to_server, data)
        buf = self.buf[d] + data if self.buf[d] else data
        consumed = 0
        while buf and self.state != SKIP:
            if (self.state in _TS_STATES) != to_server:
                self._stop("confused_state")
                break
            try:
                used = self._message(buf, to_server)
            except _More:
                break
            except _Bad:
                self._stop("malformed_message")
                buf = b""
                break
            consumed += used
            if fr is not None:
                # Suricata's RFB parser gives each message's `pdu` frame the length of all
                # the parse call read so far (rust/src/rfb/rfb.rs: `consumed`), kept so
                fr.add(to_server, "pdu", fr.total[d] - len(buf), buf[:consumed], consumed)
            buf = buf[used:]
        self.buf[d] = buf if self.state != SKIP else b""

    def _message(self, d: bytes, to_server: bool) -> int:
        st = self.state
        tx = self.txs[-1] if self.txs else None
        if st == TC_SERVER_VERSION:
            v, n = _version(d)
            tx = RfbTx(len(self.txs))
            self.txs.append(tx)
            tx.server_version = v
            tx.touch(False)
            self.state = TS_CLIENT_VERSION
            return n
        assert tx is not None
        if st == TS_CLIENT_VERSION:
            v, n = _version(d)
            tx.client_version = v
            self.state = TC_SERVER_TYPE if v == ("003", "003") else TC_SUPPORTED_TYPES
            tx.touch(True)
            return n
        if st == TC_SUPPORTED_TYPES:
            _need(d, 1)
            count = d[0]
            _need(d, 1 + count)
            tx.supported = d[1:1 + count]
            self.state = TS_TYPE_SELECTION if count else TC_FAILURE_REASON
            tx.touch(False)
            return 1 + count
        if st == TC_SERVER_TYPE:                    # 3.3: the server decides
            _need(d, 4)
            t = int.from_bytes(d[:4], "big")
            tx.chosen = t
            tx.touch(False)
            if t == 0:
                self.state = TC_FAILURE_REASON
            elif t == 1:
                self.state = TS_CLIENT_INIT
            elif t == 2:
                self.state = TC_VNC_CHALLENGE
            else:
                self._stop("unimplemented_security_type")
            return 4
        if st == TS_TYPE_SELECTION:
            _need(d, 1)
            t = d[0]
            tx.chosen = t
            tx.touch(True)
            if t == 2:
                self.state = TC_VNC_CHALLENGE
            elif t == 1:
                self.state = TS_CLIENT_INIT
            else:
                self._stop("unimplemented_security_type")
            return 1
        if st == TC_VNC_CHALLENGE:
            _need(d, 16)
            tx.challenge = d[:16]
            self.state = TS_VNC_RESPONSE
            tx.touch(False)
            return 16
        if st == TS_VNC_RESPONSE:
            _need(d, 16)
            tx.response = d[:16]
            self.state = TC_SECURITY_RESULT
            tx.touch(True)
            return 16
        if st == TC_SECURITY_RESULT:
            _need(d, 4)
            status = int.from_bytes(d[:4], "big")
            if status == 0:
                tx.result = status
                self.state = TS_CLIENT_INIT
                tx.touch(False)
            elif status == 1:
                tx.result = status
                self.state = TC_FAILURE_REASON
                tx.touch(False)
            else:
                self._stop("unknown_security_result")
            return 4
        if st == TC_FAILURE_REASON:
            _need(d, 4)
            n = int.from_bytes(d[:4], "big")
            _need(d, 4 + n)
            tx.failure_reason = d[4:4 + n]
            tx.touch(False)
            self._stop(None)
            return 4 + n
        if st == TS_CLIENT_INIT:
            _need(d, 1)
            tx.shared = d[0]
            self.state = TC_SERVER_INIT
            tx.touch(True)
            return 1
        if st == TC_SERVER_INIT:
            _need(d, 24)
            n = int.from_bytes(d[20:24], "big")
            _need(d, 24 + n)
            pf = d[4:20]
            tx.server_init = {
                "width": int.from_bytes(d[0:2], "big"), "height": int.from_bytes(d[2:4], "big"),
                "name": evestr.from_bytes(d[24:24 + n]),
                "pixel_format": {"bits_per_pixel": pf[0], "depth": pf[1], "big_endian": pf[2] != 0,
                                 "true_color": pf[3] != 0, "red_max": int.from_bytes(pf[4:6], "big"),
                                 "green_max": int.from_bytes(pf[6:8], "big"),
                                 "blue_max": int.from_bytes(pf[8:10], "big"), "red_shift": pf[10],
                                 "green_shift": pf[11], "blue_shift": pf[12]}}
            tx.name = d[24:24 + n]
            tx.finish()
            tx.touch(False)
            tx.touch(True)
            self.state = SKIP
            return 24 + n
        raise _Bad


# Suricata's RFB frame (rust/src/rfb/rfb.rs RFBFrameType), marked by RfbParser.parse
register_stream_frames("rfb", ("pdu",))
register_buffer("rfb.name", "rfb", TO_CLIENT, lambda tx, ts: tx.name or None)
register_states("rfb", ("request_started", "request_complete"), ("response_started", "response_complete"),
                lambda tx, ts: 1 if tx.done[int(ts)] else 0)
register_protocol(Protocol("rfb", (6,), probe, RfbParser, (), port_decides=(),
                           configure=lambda config: enabled.settings(config, "rfb")))
