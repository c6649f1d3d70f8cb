"""MQTT 3.1, 3.1.1 and 5 over TCP, as Suricata's parser (rust/src/mqtt/) reads it: the
`mqtt.*` keywords, the `mqtt` EVE record, the `mqtt.*` app-layer events.

- Detection: a fixed header whose type is 1..15 and whose QoS is at most 2 (Suricata's
  probing parser), on port 1883 (`app-layer.protocols.mqtt.detection-ports`).
- Each message is parsed once its fixed header's remaining length is in; a message
  longer than `app-layer.protocols.mqtt.max-msg-length` (1 MiB) is skipped unread and
  logged as truncated. A body that does not parse is ``malformed_traffic`` (on a
  transaction of its own) and an app-layer error: the direction stops.
- Transactions as Suricata's: CONNECT and CONNACK share one, so do a PUBLISH of QoS 1/2
  and its PUBACK/PUBREC/PUBREL/PUBCOMP, a SUBSCRIBE and its SUBACK, an UNSUBSCRIBE and its
  UNSUBACK (matched by message id); every other message is a transaction complete at
  once. A transaction belongs to the direction of its first message (Suricata's
  one-direction transactions). The protocol version the CONNECT announced decides how the
  later messages read (v5: properties, reason codes).
- Events: `missing_connect`, `missing_publish`, `missing_subscribe`, `missing_unsubscribe`,
  `double_connect`, `unintroduced_message` (before the CONNACK), `invalid_qos_level`,
  `missing_msg_id`, `unassigned_msg_type`, `too_many_transactions`, `malformed_traffic`,
  `too_many_messages`.
- EVE `mqtt`: one object per message type of the transaction (`connect`, `connack`,
  `publish`, ...) with the fixed header's `qos`, `retain`, `dup`; passwords unless
  `outputs.eve-log.mqtt.passwords: no`; strings cut at `string-log-limit` (1024).
"""

from __future__ import annotations

from typing import Any

from netsentry.applayer import enabled, evestr
from netsentry.applayer.frames import frames_for, register_stream_frames
from netsentry.applayer.registry import (BOTH, TO_CLIENT, TO_SERVER, ParserError, Protocol, register_buffer,
                                         register_protocol, register_states)
from netsentry.applayer.tx import Tx
from netsentry.config import ConfigError, get

EVENTS: dict[str, int | None] = {name: BOTH for name in (
    "missing_connect", "missing_publish", "missing_subscribe", "missing_unsubscribe", "double_connect",
    "unintroduced_message", "invalid_qos_level", "missing_msg_id", "unassigned_msg_type",
    "too_many_transactions", "malformed_traffic", "too_many_messages")}

TYPES = ("unassigned", "connect", "connack", "publish", "puback", "pubrec", "pubrel", "pubcomp",
         "subscribe", "suback", "unsubscribe", "unsuback", "pingreq", "pingresp", "disconnect", "auth")
(UNASSIGNED, CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, SUBACK,
 UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH) = range(16)
TRUNCATED = -1            # Msg.kind of a message skipped for its length (Msg.mtype keeps its type)

MAX_TX = 1024             # Suricata's MQTT_MAX_TX (open transactions)
MAX_MSGS = 1024           # messages one transaction takes (MQTT_MAX_MSGS)
CONNECT_PKT_ID = -1       # the "message id" CONNACK answers
DEFAULT_MAX_MSG_LEN = 1 << 20
DEFAULT_LOG_LIMIT = 1024


class Malformed(Exception):
    """A message body that does not read as its type says."""


class Msg:
    """One MQTT control packet: the fixed header, its bytes, what its type carries (`f`)."""

    __slots__ = ("mtype", "kind", "dup", "qos", "retain", "length", "raw", "hdr_len", "f")

    def __init__(self, first: int, length: int, hdr_len: int) -> None:
        self.mtype = first >> 4
        self.kind = self.mtype
        self.dup = bool(first & 0x08)
        self.qos = (first >> 1) & 3
        self.retain = bool(first & 1)
        self.length = length
        self.hdr_len = hdr_len
        self.raw = b""
        self.f: dict[str, Any] = {}


# --- reading ------------------------------------------------------------------------------------

def varint(data: bytes, off: int, end: int) -> tuple[int, int] | None:
    """MQTT's variable byte integer at `off` (at most 4 bytes): (value, next offset); None when
    `data` ends first; Malformed when a fourth byte still says "more"."""
    value = 0
    mult = 1
    for i in range(4):
        if off + i >= end:
            return None
        b = data[off + i]
        value += (b & 0x7F) * mult
        if not b & 0x80:
            return value, off + i + 1
        mult *= 128
    raise Malformed("variable integer over 4 bytes")


def fixed_header(data: bytes, off: int = 0) -> tuple[int, int, int] | None:
    """(first byte, remaining length, header length) or None when more bytes are needed."""
    n = len(data)
    if off >= n:
        return None
    r = varint(data, off + 1, n)
    if r is None:
        return None
    return data[off], r[0], r[1] - off


class _Reader:
    __slots__ = ("d", "o", "e")

    def __init__(self, data: bytes, off: int, end: int) -> None:
        self.d, self.o, self.e = data, off, end

    def left(self) -> int:
        return self.e - self.o

    def u8(self) -> int:
        if self.o >= self.e:
            raise Malformed("short")
        self.o += 1
        return self.d[self.o - 1]

    def u16(self) -> int:
        if self.o + 2 > self.e:
            raise Malformed("short")
        self.o += 2
        return (self.d[self.o - 2] << 8) | self.d[self.o - 1]

    def u32(self) -> int:
        if self.o + 4 > self.e:
            raise Malformed("short")
        self.o += 4
        return int.from_bytes(self.d[self.o - 4:self.o], "big")

    def var(self) -> int:
        r = varint(self.d, self.o, self.e)
        if r is None:
            raise Malformed("short")
        self.o = r[1]
        return r[0]

    def binary(self) -> bytes:
        n = self.u16()
        if self.o + n > self.e:
            raise Malformed("short")
        self.o += n
        return self.d[self.o - n:self.o]

    def string(self) -> str:
        return evestr.lossy(self.binary())

    def rest(self) -> bytes:
        out = self.d[self.o:self.e]
        self.o = self.e
        return out


# property id -> (EVE name, kind): b byte, h two bytes, w four bytes, v variable integer,
# s string, d binary data, p string pair (a user property: logged under its own name)
PROPERTIES: dict[int, tuple[str, str]] = {
    1: ("payload_format_indicator", "b"), 2: ("message_expiry_interval", "w"), 3: ("content_type", "s"),
    8: ("response_topic", "s"), 9: ("correlation_data", "d"), 11: ("subscription_identifier", "v"),
    17: ("session_expiry_interval", "w"), 18: ("assigned_client_identifier", "s"),
    19: ("server_keep_alive", "h"), 21: ("authentication_method", "s"), 22: ("authentication_data", "d"),
    23: ("request_problem_information", "b"), 24: ("will_delay_interval", "w"),
    25: ("request_response_information", "b"), 26: ("response_information", "s"),
    28: ("server_reference", "s"), 31: ("reason_string", "s"), 33: ("receive_maximum", "h"),
    34: ("topic_alias_maximum", "h"), 35: ("topic_alias", "h"), 36: ("maximum_qos", "b"),
    37: ("retain_available", "b"), 38: ("", "p"), 39: ("maximum_packet_size", "w"),
    40: ("wildcard_subscription_available", "b"), 41: ("subscription_identifier_available", "b"),
    42: ("shared_subscription_available", "b")}


def _properties(r: _Reader) -> list[tuple[str, Any]] | None:
    """A v5 property list: (name, value) pairs in order; None when its length is 0. An
    unknown identifier is skipped by its own bytes only, as Suricata's parser does."""
    n = r.var()
    if n == 0:
        return None
    if r.o + n > r.e:
        raise Malformed("property length past the message")
    sub = _Reader(r.d, r.o, r.o + n)
    r.o += n
    out: list[tuple[str, Any]] = []
    while sub.o < sub.e:
        pid = sub.var()
        spec = PROPERTIES.get(pid)
        if spec is None:
            continue
        name, kind = spec
        if kind == "b":
            out.append((name, sub.u8()))
        elif kind == "h":
            out.append((name, sub.u16()))
        elif kind == "w":
            out.append((name, sub.u32()))
        elif kind == "v":
            out.append((name, sub.var()))
        elif kind == "s":
            out.append((name, sub.string()))
        elif kind == "d":
            out.append((name, sub.binary()))
        else:
            key = sub.string()
            out.append((key, sub.string()))
    return out


def _body(m: Msg, r: _Reader, version: int) -> None:
    f = m.f
    t = m.mtype
    v5 = version == 5
    if t == CONNECT:
        f["protocol_string"] = r.binary()
        f["protocol_version"] = r.u8()
        flags = f["rawflags"] = r.u8()
        f["keepalive"] = r.u16()
        f["properties"] = _properties(r) if f["protocol_version"] == 5 else None
        f["client_id"] = r.binary()
        will = bool(flags & 0x04)
        f["will_properties"] = _properties(r) if will and f["protocol_version"] == 5 else None
        f["will_topic"] = r.binary() if will else None
        f["will_message"] = r.binary() if will else None
        f["username"] = r.binary() if flags & 0x80 else None
        f["password"] = r.binary() if flags & 0x40 else None
    elif t == CONNACK:
        f["session_present"] = bool(r.u8() & 1)
        f["return_code"] = r.u8()
        f["properties"] = _properties(r) if v5 else None
    elif t == PUBLISH:
        f["topic"] = r.binary()
        f["message_id"] = r.u16() if m.qos > 0 else None
        f["properties"] = _properties(r) if v5 else None
        f["message"] = r.rest()
    elif t in (PUBACK, PUBREC, PUBREL, PUBCOMP):
        f["message_id"] = r.u16()
        f["reason_code"] = None
        f["properties"] = None
        if version >= 5:
            if r.left() == 0:
                f["reason_code"] = 0
            else:
                f["reason_code"] = r.u8()
                if r.left():
                    f["properties"] = _properties(r)
    elif t == SUBSCRIBE:
        f["message_id"] = r.u16()
        f["properties"] = _properties(r) if v5 else None
        topics = []
        while True:
            save = r.o
            try:
                name = r.binary()
                qos = r.u8()
            except Malformed:
                r.o = save
                break
            topics.append((name, qos))
        if not topics:
            raise Malformed("SUBSCRIBE without a topic")
        f["topics"] = topics
    elif t == SUBACK:
        f["message_id"] = r.u16()
        f["properties"] = _properties(r) if v5 else None
        f["qoss"] = r.rest()
    elif t == UNSUBSCRIBE:
        f["message_id"] = r.u16()
        f["properties"] = _properties(r) if v5 else None
        topics = []
        while True:
            save = r.o
            try:
                topics.append(r.binary())
            except Malformed:
                r.o = save
                break
        f["topics"] = topics
    elif t == UNSUBACK:
        f["message_id"] = r.u16()
        f["properties"] = _properties(r) if v5 else None
        f["reason_codes"] = r.rest()
    elif t == DISCONNECT:
        f["reason_code"] = None
        f["properties"] = None
        if version >= 5:
            if m.length == 0:
                f["reason_code"] = 0
            else:
                code = r.u8()
                if m.length == 1:
                    f["reason_code"] = 0        # as Suricata: a lone reason byte reads as 0
                else:
                    f["properties"] = _properties(r)
                    f["reason_code"] = code
    elif t == AUTH:
        f["reason_code"] = r.u8()
        f["properties"] = _properties(r)


def parse_message(data: bytes, off: int, version: int, max_len: int) -> Msg | None:
    """The message at `off`: None when more bytes are needed; a TRUNCATED Msg (nothing read)
    when it is longer than `max_len`; Malformed when its body does not parse."""
    h = fixed_header(data, off)
    if h is None:
        return None
    first, length, hdr_len = h
    m = Msg(first, length, hdr_len)
    if length > max_len:
        m.kind = TRUNCATED
        m.f["skipped_length"] = length + hdr_len
        return m
    end = off + hdr_len + length
    if end > len(data):
        return None
    m.raw = data[off:end]
    if m.mtype not in (UNASSIGNED, PINGREQ, PINGRESP):
        _body(m, _Reader(data, off + hdr_len, end), version)
    return m


def probe(data: bytes, to_server: bool) -> bool | None:
    """Suricata's probing parser: a fixed header that reads, of a known type, QoS <= 2."""
    try:
        h = fixed_header(data)
    except Malformed:
        return False
    if h is None:
        return None
    first = h[0]
    return (first >> 4) != UNASSIGNED and ((first >> 1) & 3) <= 2


# --- transactions ---------------------------------------------------------------------------------

class MqttTx(Tx):
    __slots__ = ("msgs", "pkt_id", "to_server", "is_complete", "parser_state")
    proto = "mqtt"

    def __init__(self, tx_id: int, to_server: bool, state: list[Any]) -> None:
        super().__init__(tx_id)
        self.msgs: list[Msg] = []
        self.pkt_id: int | None = None
        self.to_server = to_server
        self.is_complete = False
        self.parser_state = state          # [protocol version, settings] shared by the flow's txs
        self.done = [to_server, not to_server]

    def finish(self) -> None:
        self.is_complete = True
        self.done = [True, True]

    def one_way(self) -> bool | None:
        return self.to_server

    def eve(self) -> dict[str, Any]:
        settings = self.parser_state[1]
        return eve_object(self.msgs, settings["log-limit"], settings["passwords"])


def _props_eve(props: list[tuple[str, Any]], limit: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in props:
        if isinstance(value, bytes):
            out[name] = evestr.from_bytes_limited(value, limit)
        elif isinstance(value, str):
            out[name] = evestr.limited(value, limit)
        else:
            out[name] = value
    return out


def eve_object(msgs: list[Msg], limit: int, passwords: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in msgs:
        if m.kind == UNASSIGNED:
            continue
        o: dict[str, Any] = {"qos": m.qos, "retain": m.retain, "dup": m.dup}
        f = m.f
        t = m.kind
        if t == TRUNCATED:
            o["truncated"] = True
            o["skipped_length"] = f["skipped_length"]
            out[TYPES[m.mtype]] = o
            continue
        if t == CONNECT:
            flags = f["rawflags"]
            o["protocol_string"] = evestr.lossy(f["protocol_string"])
            o["protocol_version"] = f["protocol_version"]
            o["client_id"] = evestr.limited(evestr.lossy(f["client_id"]), limit)
            o["flags"] = {"username": bool(flags & 0x80), "password": bool(flags & 0x40),
                          "will_retain": bool(flags & 0x20), "will": bool(flags & 0x04),
                          "clean_session": bool(flags & 0x02)}
            if f["username"] is not None:
                o["username"] = evestr.limited(evestr.lossy(f["username"]), limit)
            if passwords and f["password"] is not None:
                o["password"] = evestr.from_bytes(f["password"])
            if flags & 0x04:
                will: dict[str, Any] = {}
                if f["will_topic"] is not None:
                    will["topic"] = evestr.limited(evestr.lossy(f["will_topic"]), limit)
                if f["will_message"] is not None:
                    will["message"] = evestr.from_bytes_limited(f["will_message"], limit)
                if f["will_properties"] is not None:
                    will["properties"] = _props_eve(f["will_properties"], limit)
                o["will"] = will
        elif t == CONNACK:
            o["session_present"] = f["session_present"]
            o["return_code"] = f["return_code"]
        elif t == PUBLISH:
            o["topic"] = evestr.limited(evestr.lossy(f["topic"]), limit)
            if f["message_id"] is not None:
                o["message_id"] = f["message_id"]
            o["message"] = evestr.from_bytes_limited(f["message"], limit)
        elif t in (PUBACK, PUBREC, PUBREL, PUBCOMP):
            o["message_id"] = f["message_id"]
            if f["reason_code"] is not None:
                o["reason_code"] = f["reason_code"]
        elif t == SUBSCRIBE:
            o["message_id"] = f["message_id"]
            topics = []
            used = 0
            for name, qos in f["topics"]:
                text = evestr.lossy(name)
                size = min(len(text.encode()), limit)
                if used + size > limit:
                    topics.append({"topic": evestr.limited(text, limit - used), "qos": qos})
                    break
                topics.append({"topic": evestr.limited(text, limit), "qos": qos})
                used += size
            o["topics"] = topics
        elif t == SUBACK:
            o["message_id"] = f["message_id"]
            o["qos_granted"] = list(f["qoss"])
        elif t == UNSUBSCRIBE:
            o["message_id"] = f["message_id"]
            o["topics"] = [evestr.lossy(x) for x in f["topics"]]
        elif t == UNSUBACK:
            o["message_id"] = f["message_id"]
            if f["reason_codes"]:
                o["reason_codes"] = list(f["reason_codes"])
        elif t in (DISCONNECT, AUTH):
            if f.get("reason_code") is not None:
                o["reason_code"] = f["reason_code"]
        props = f.get("properties")
        if props is not None and t not in (SUBACK, UNSUBSCRIBE, UNSUBACK):
            o["properties"] = _props_eve(props, limit)
        out[TYPES[t]] = o
    return out


class MqttParser:
    """One flow's MQTT: per direction the bytes of an unfinished message and the bytes of a
    truncated one still to skip."""

    def __init__(self, settings: Any = None) -> None:
        self.settings = settings if settings is not None else configure({})
        self.txs: list[MqttTx] = []
        self.state: list[Any] = [0, self.settings]      # [protocol version, settings]
        self.open: list[MqttTx] = []                    # transactions waiting for an answer
        self.connected = False
        self.buf = [b"", b""]
        self.skip = [0, 0]
        self.lost = [not self.settings["parse"]] * 2      # detection-only: nothing is read
        self.stream_frames = frames_for("mqtt")    # applayer/frames.py: None unless a rule reads MQTT frames

    def gap(self, to_server: bool, nbytes: int) -> None:
        d = int(to_server)
        if self.stream_frames is not None:
            self.stream_frames.gap(to_server, nbytes)
        self.buf[d] = b""
        self.lost[d] = True

    def parse(self, data: bytes, to_server: bool, pkt: Any = None) -> None:
        d = int(to_server)
        if self.lost[d] or not data:
            return
        fr = self.stream_frames
        if fr is not None:
            fr.stream(to_server, data)
            # the parse call's input as Suricata's stream slice: what was kept plus the new bytes
            sl = self.buf[d] + data if self.buf[d] else data
            sl_at = fr.total[d] - len(sl)
        if self.skip[d]:
            if len(data) <= self.skip[d]:
                self.skip[d] -= len(data)
                return
            data = data[self.skip[d]:]
            self.skip[d] = 0
        buf = self.buf[d] + data if self.buf[d] else data
        off, n = 0, len(buf)
        max_len = self.settings["max-msg-length"]
        while off < n:
            try:
                m = parse_message(buf, off, self.state[0], max_len)
            except Malformed:
                self.buf[d] = b""
                self.lost[d] = True
                tx = self._new(to_server)
                tx.add_event("malformed_traffic")
                tx.finish()
                raise ParserError("mqtt: malformed_traffic") from None
            if m is None:
                break
            if fr is not None:
                at = fr.total[d] - n + off
                size = m.f["skipped_length"] if m.kind == TRUNCATED else len(m.raw)
                fr.add(to_server, "pdu", at, buf[off:off + size], size)
                if m.kind != TRUNCATED:
                    # Suricata's mqtt_hdr_and_data_frames marks both at the start of the parse
                    # call's input, not of the message: a second message read in the same call
                    # gets the first one's header and data bytes (suricata-verify mqtt-frames-xpdu)
                    fr.add(to_server, "header", sl_at, sl[:2], 2)
                    fr.add(to_server, "data", sl_at + 2, sl[2:2 + m.length], m.length)
            if m.kind == TRUNCATED:
                skipped = m.f["skipped_length"]
                self._handle(m, to_server)
                if off + skipped >= n:
                    self.skip[d] = off + skipped - n
                    off = n
                    break
                off += skipped
                continue
            off += len(m.raw)
            self._handle(m, to_server)
        self.buf[d] = buf[off:] if off < n else b""

    def _new(self, to_server: bool, msg: Msg | None = None) -> MqttTx:
        opened = self.open
        if len(opened) > MAX_TX:
            old = opened.pop(0)
            old.add_event("too_many_transactions")
            old.finish()
            old.touch(True)
            old.touch(False)
        tx = MqttTx(len(self.txs), to_server, self.state)
        if msg is not None:
            tx.msgs.append(msg)
        self.txs.append(tx)
        tx.touch(to_server)
        return tx

    def _answer(self, pkt_id: int) -> MqttTx | None:
        for tx in self.open:
            if tx.pkt_id == pkt_id:
                tx.touch(True)
                tx.touch(False)
                return tx
        return None

    def _close(self, tx: MqttTx) -> None:
        tx.finish()
        tx.pkt_id = None
        try:
            self.open.remove(tx)
        except ValueError:
            pass

    def _handle(self, m: Msg, to_server: bool) -> None:
        t = m.kind
        if t == CONNECT:
            self.state[0] = m.f["protocol_version"]
            tx = self._new(to_server, m)
            tx.pkt_id = CONNECT_PKT_ID
            self.open.append(tx)
            if self.connected:
                tx.add_event("double_connect")
            return
        if t in (PUBLISH, SUBSCRIBE, UNSUBSCRIBE):
            tx = self._new(to_server, m)
            qos = m.qos
            if qos == 0:
                tx.finish()
            elif qos <= 2:
                pid = m.f["message_id"]
                if pid is None:
                    tx.add_event("missing_msg_id")
                else:
                    tx.pkt_id = pid
                    self.open.append(tx)
            else:
                tx.add_event("invalid_qos_level")
            if not self.connected:
                tx.add_event("unintroduced_message")
            return
        if t == CONNACK:
            tx = self._answer(CONNECT_PKT_ID)
            if tx is not None:
                tx.msgs.append(m)
                self._close(tx)
                self.connected = True
            else:
                tx = self._new(to_server, m)
                tx.add_event("missing_connect")
                tx.finish()
            return
        if t in (PUBREC, PUBREL, PUBACK, PUBCOMP, SUBACK, UNSUBACK):
            tx = self._answer(m.f["message_id"])
            if tx is not None:
                if t in (PUBREC, PUBREL):
                    if len(tx.msgs) >= MAX_MSGS:
                        tx.add_event("too_many_messages")
                    else:
                        tx.msgs.append(m)
                else:
                    tx.msgs.append(m)
                    self._close(tx)
                return
            tx = self._new(to_server, m)
            tx.add_event("missing_subscribe" if t == SUBACK else
                         "missing_unsubscribe" if t == UNSUBACK else "missing_publish")
            if not self.connected:
                tx.add_event("unintroduced_message")
            tx.finish()
            return
        tx = self._new(to_server, m)
        tx.finish()
        if t == UNASSIGNED:
            tx.add_event("unassigned_msg_type")
        elif t != TRUNCATED and not self.connected:
            tx.add_event("unintroduced_message")     # AUTH, DISCONNECT, PINGREQ, PINGRESP


def configure(config: Any) -> dict[str, Any]:
    """`app-layer.protocols.mqtt.max-msg-length` (1 MiB; a size), the topic match limits of
    the multi-buffers, and the eve-log `mqtt` options `passwords` (yes) and `string-log-limit`."""
    from netsentry.applayer.state import _size
    key = "app-layer.protocols.mqtt.max-msg-length"
    try:
        max_len = _size(get(config, key, DEFAULT_MAX_MSG_LEN))
    except (TypeError, ValueError):
        raise ConfigError("expected a size (1mb, 4096)", key) from None
    eve = get(config, "outputs.eve-log.mqtt", None)
    eve = eve if isinstance(eve, dict) else {}
    pw = eve.get("passwords", True)
    passwords = pw is True or str(pw).lower() in ("yes", "true", "on", "1")
    try:
        limit = _size(eve.get("string-log-limit", DEFAULT_LOG_LIMIT))
    except (TypeError, ValueError):
        raise ConfigError("expected a size", "outputs.eve-log.mqtt.string-log-limit") from None
    limits = {}
    for name in ("subscribe", "unsubscribe"):
        k = f"app-layer.protocols.mqtt.{name}-topic-match-limit"
        try:
            limits[name] = int(get(config, k, 100))
        except (TypeError, ValueError):
            raise ConfigError("expected a number", k) from None
    return enabled.settings(config, "mqtt", **{
        "max-msg-length": max_len, "passwords": passwords, "log-limit": limit,
        "subscribe-limit": limits["subscribe"], "unsubscribe-limit": limits["unsubscribe"]})


# --- buffers ----------------------------------------------------------------------------------------

def _field(kind: int, name: str):
    """The first non-empty `name` of a message of `kind` in the transaction."""
    def get_(tx: MqttTx, to_server: bool) -> bytes | None:
        if tx.to_server != to_server:
            return None                 # a one-direction transaction (MqttTx.one_way)
        for m in tx.msgs:
            if m.kind == kind:
                v = m.f.get(name)
                if v:
                    return v
        return None
    return get_


def _topics(kind: int, limit_key: str):
    def get_(tx: MqttTx, to_server: bool) -> list[bytes] | None:
        if tx.to_server != to_server:
            return None
        out: list[bytes] = []
        for m in tx.msgs:
            if m.kind == kind:
                for t in m.f["topics"]:
                    out.append(t[0] if isinstance(t, tuple) else t)
        if not out:
            return None
        limit = tx.parser_state[1][limit_key]
        return out[:limit] if limit > 0 else out
    return get_


for _name, _kind, _attr in (("mqtt.connect.clientid", CONNECT, "client_id"),
                            ("mqtt.connect.username", CONNECT, "username"),
                            ("mqtt.connect.password", CONNECT, "password"),
                            ("mqtt.connect.willtopic", CONNECT, "will_topic"),
                            ("mqtt.connect.willmessage", CONNECT, "will_message"),
                            ("mqtt.connect.protocol_string", CONNECT, "protocol_string")):
    register_buffer(_name, "mqtt", TO_SERVER, _field(_kind, _attr))
# Suricata's MQTT frames (rust/src/mqtt/mqtt.rs MQTTFrameType), marked by MqttParser.parse
register_stream_frames("mqtt", ("pdu", "header", "data"))
register_buffer("mqtt.publish.topic", "mqtt", BOTH, _field(PUBLISH, "topic"))
register_buffer("mqtt.publish.message", "mqtt", BOTH, _field(PUBLISH, "message"))
register_buffer("mqtt.subscribe.topic", "mqtt", TO_SERVER, _topics(SUBSCRIBE, "subscribe-limit"), multi=True)
register_buffer("mqtt.unsubscribe.topic", "mqtt", TO_SERVER, _topics(UNSUBSCRIBE, "unsubscribe-limit"), multi=True)
_ = TO_CLIENT

# Suricata's MQTT progress: a side is complete when the transaction is, or is of the other side
register_states("mqtt", ("request_started", "request_complete"), ("response_started", "response_complete"),
                lambda tx, ts: 1 if tx.done[int(ts)] else 0)
register_protocol(Protocol("mqtt", (6,), probe, MqttParser, (1883,), port_decides=(), configure=configure,
                           ports_only=True))
