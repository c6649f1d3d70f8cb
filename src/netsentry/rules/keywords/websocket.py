"""WebSocket keywords (applayer/websocket.py), as Suricata's rust/src/websocket/detect.rs:
`websocket.opcode` (a number or continuation, text, binary, close, ping, pong),
`websocket.flags` (fin, comp: `[+*=]fin,!comp`), `websocket.mask` (the masking key, a
32-bit integer; frames without a mask never match), the `websocket.payload` sticky buffer
and the `websocket.*` events. A frame is inspected on its own side only."""

from __future__ import annotations

from netsentry.applayer import websocket
from netsentry.applayer.registry import BOTH
from netsentry.rules.keywords.applayer import APP_LAYER_EVENTS, _sticky, tx_check
from netsentry.rules.keywords.mqtt import parse_bitflags
from netsentry.rules.keywords.sctp import parse_uint_enum
from netsentry.rules.numeric import parse_uint
from netsentry.rules.registry import KEYWORDS, RuleBuilder, keyword, unquote

APP_LAYER_EVENTS["websocket"] = dict(websocket.EVENTS)

if "websocket.payload" not in KEYWORDS:
    keyword("websocket.payload", value="none", help="websocket.payload; sticky buffer (websocket), a "
            "frame's unmasked payload (a message's, reassembled and inflated, on its final frame)")(
        _sticky("websocket.payload"))


def _check(b: RuleBuilder, fn) -> None:
    tx_check(b, "websocket", BOTH,
             lambda tx, ts: tx.proto == "websocket" and tx.to_server == ts and fn(tx))


@keyword("websocket.opcode", help="websocket.opcode:[!]OPCODE; the frame's opcode (text, binary, ping, ...)")
def websocket_opcode(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint_enum(unquote(arg, "websocket.opcode"), "websocket.opcode", 8, websocket.OPCODES)
    _check(b, lambda tx: pred(tx.opcode))


@keyword("websocket.mask", help="websocket.mask:[op]N; the frame's masking key")
def websocket_mask(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint(unquote(arg, "websocket.mask"), "websocket.mask", 32)
    _check(b, lambda tx: tx.mask is not None and pred(tx.mask))


@keyword("websocket.flags", help="websocket.flags:[+*=]fin,!comp; the frame's FIN and RSV1 bits")
def websocket_flags(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_bitflags(unquote(arg, "websocket.flags"), "websocket.flags", {"fin": 0x80, "comp": 0x40})
    _check(b, lambda tx: pred(tx.flags))
