"""MQTT keywords (applayer/mqtt.py), as Suricata's rust/src/mqtt/detect.rs: the sticky
buffers (`mqtt.connect.*`, `mqtt.publish.*`, the `mqtt.subscribe.topic` /
`mqtt.unsubscribe.topic` multi-buffers), the integer keywords `mqtt.type` (a type by name
or number, with the multi-integer index: `mqtt.type:CONNACK,1`), `mqtt.reason_code`
(`mqtt.connack.return_code`), `mqtt.qos`, `mqtt.protocol_version`, `mqtt.flags`,
`mqtt.connect.flags`, `mqtt.connack.session_present`, and the `mqtt.*` events."""

from __future__ import annotations

import re
from typing import Any

from netsentry.applayer import mqtt
from netsentry.applayer.registry import BOTH
from netsentry.rules.errors import RuleError
from netsentry.rules.keywords.applayer import APP_LAYER_EVENTS, _sticky, tx_check
from netsentry.rules.numeric import parse_multi_uint, parse_uint
from netsentry.rules.registry import KEYWORDS, RuleBuilder, keyword, unquote

APP_LAYER_EVENTS["mqtt"] = dict(mqtt.EVENTS)

for _name in ("mqtt.connect.clientid", "mqtt.connect.username", "mqtt.connect.password",
              "mqtt.connect.willtopic", "mqtt.connect.willmessage", "mqtt.connect.protocol_string",
              "mqtt.publish.topic", "mqtt.publish.message", "mqtt.subscribe.topic", "mqtt.unsubscribe.topic"):
    if _name not in KEYWORDS:
        keyword(_name, value="none", help=f"{_name}; sticky buffer (mqtt)")(_sticky(_name))

_TO_SERVER, _TO_CLIENT = 0, 1


def _check(b: RuleBuilder, direction: int, fn: Any) -> None:
    """A transaction check inspected only on its transaction's own side: Suricata's MQTT
    transactions are one-directional (AppLayerTxData::for_direction), the other side's
    detection skips them, so a rule of both directions alerts once."""
    tx_check(b, "mqtt", direction, lambda tx, ts: tx.to_server == ts and fn(tx, ts))
_TYPE_NUMBERS = {name: i for i, name in enumerate(mqtt.TYPES)}


def parse_bitflags(text: str, what: str, names: dict[str, int]) -> Any:
    """Suricata's detect_parse_uint_bitflags with the `+` default: an integer keyword value,
    or `[=+*] flag,!flag,...` (`+`, the default: the named flags set and the negated ones
    clear; `=`: the value is exactly the flags named; `*`: any of them set)."""
    t = text.strip()
    try:
        return parse_uint(t, what, 8)
    except RuleError:
        pass
    mod = "+"
    if t[:1] in ("=", "+", "*"):
        mod, t = t[0], t[1:].strip()
    mask = want = 0
    for part in t.split(","):
        p = part.strip().lower()
        neg = p.startswith("!")
        p = p[1:].strip() if neg else p
        bit = names.get(p)
        if bit is None:
            raise RuleError(f"{what}: unknown flag '{part.strip()}' (one of {', '.join(names)})")
        if mask & bit:
            raise RuleError(f"{what}: flag '{p}' given twice")
        mask |= bit
        if not neg:
            want |= bit
    if mod == "=":
        return lambda v: v == mask
    if mod == "*":
        return lambda v: bool(v & mask)
    return lambda v: v & mask == want


@keyword("mqtt.type", help="mqtt.type:TYPE[,INDEX]; the types of the transaction's messages (a name "
         "such as CONNECT or a number; Suricata's multi-integer index)")
def mqtt_type(b: RuleBuilder, arg: str | None) -> None:
    text = unquote(arg, "mqtt.type")
    head, comma, rest = text.partition(",")
    word = head.strip()
    bare = word.lstrip("!<>=").strip()
    if bare and not bare[0].isdigit():
        number = _TYPE_NUMBERS.get(bare.lower())
        if number is None:
            raise RuleError(f"mqtt.type: unknown message type '{bare}'")
        head = word[:len(word) - len(bare)] + str(number)
    pred = parse_multi_uint(head + comma + rest, "mqtt.type", 8)
    _check(b, BOTH, lambda tx, ts: pred([m.mtype for m in tx.msgs]))


def _reason_codes(tx: Any) -> list[int]:
    out: list[int] = []
    for m in tx.msgs:
        k = m.kind
        f = m.f
        if k in (mqtt.PUBACK, mqtt.PUBREL, mqtt.PUBREC, mqtt.PUBCOMP, mqtt.DISCONNECT):
            if f["reason_code"] is not None:
                out.append(f["reason_code"])
        elif k == mqtt.AUTH:
            out.append(f["reason_code"])
        elif k == mqtt.CONNACK:
            out.append(f["return_code"])
        elif k == mqtt.UNSUBACK:
            out.extend(f["reason_codes"])
        elif k == mqtt.SUBACK:
            out.extend(f["qoss"])
    return out


@keyword("mqtt.reason_code", "mqtt.connack.return_code",
         help="mqtt.reason_code:[op]N[,INDEX]; the reason/return codes of the transaction's messages")
def mqtt_reason_code(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_multi_uint(unquote(arg, "mqtt.reason_code"), "mqtt.reason_code", 8)
    _check(b, BOTH, lambda tx, ts: pred(_reason_codes(tx)))


@keyword("mqtt.qos", help="mqtt.qos:0|1|2; a message of the transaction with this QoS")
def mqtt_qos(b: RuleBuilder, arg: str | None) -> None:
    text = unquote(arg, "mqtt.qos").strip()
    if not re.fullmatch(r"[0-2]", text):
        raise RuleError(f"mqtt.qos: expected 0, 1 or 2, got '{text}'")
    q = int(text)
    _check(b, _TO_SERVER, lambda tx, ts: any(m.qos == q for m in tx.msgs))


@keyword("mqtt.protocol_version", help="mqtt.protocol_version:[op]N; the version the CONNECT announced")
def mqtt_protocol_version(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint(unquote(arg, "mqtt.protocol_version"), "mqtt.protocol_version", 8)
    # Suricata reads the flow's state: the version of the latest CONNECT
    _check(b, _TO_SERVER, lambda tx, ts: pred(tx.parser_state[0]))


_FLAGS = {"dup": 0x8, "retain": 0x1}
# Suricata's MqttConnFlag values (its `will` and `will_retain` bits as it names them)
_CONN_FLAGS = {"username": 0x80, "password": 0x40, "will": 0x20, "will_retain": 0x4, "clean_session": 0x2}


@keyword("mqtt.flags", help="mqtt.flags:[+*=]dup,!retain; the fixed header's flags of a message")
def mqtt_flags(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_bitflags(unquote(arg, "mqtt.flags"), "mqtt.flags", _FLAGS)
    _check(b, _TO_SERVER,
              lambda tx, ts: any(pred((1 if m.retain else 0) | (8 if m.dup else 0)) for m in tx.msgs))


@keyword("mqtt.connect.flags", help="mqtt.connect.flags:username,password,!will,...; the CONNECT flags")
def mqtt_connect_flags(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_bitflags(unquote(arg, "mqtt.connect.flags"), "mqtt.connect.flags", _CONN_FLAGS)
    _check(b, _TO_SERVER,
              lambda tx, ts: any(m.kind == mqtt.CONNECT and pred(m.f["rawflags"]) for m in tx.msgs))


@keyword("mqtt.connack.session_present", help="mqtt.connack.session_present:true|false; the CONNACK's flag")
def mqtt_session_present(b: RuleBuilder, arg: str | None) -> None:
    text = unquote(arg, "mqtt.connack.session_present").strip().lower()
    if text in ("1", "true", "yes"):
        want = True
    elif text in ("0", "false", "no"):
        want = False
    else:
        raise RuleError(f"mqtt.connack.session_present: expected true or false, got '{text}'")
    _check(b, _TO_CLIENT,
              lambda tx, ts: any(m.kind == mqtt.CONNACK and m.f["session_present"] == want for m in tx.msgs))
