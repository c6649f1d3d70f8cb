"""Syslog output (``outputs.syslog``): EVE records (or CEF) to one or more syslog receivers.

The message is what Suricata's ``eve-log`` with ``filetype: syslog`` sends
(the EVE JSON record as the message), in an RFC 5424 header (default) or an
RFC 3164 one, over UDP, TCP, TLS or the local socket (syslog_transport.py).

- PRI: the configured facility (default ``local5``, Suricata's) and a
  severity derived from the record (`level_of`): an alert's severity 1-4
  (already raised for a critical asset by assets.py) -> crit, err, warning,
  notice; a drop as its alert (err without one); a decoder anomaly notice;
  flow and stats info. ``min-severity`` filters on it.
- RFC 5424 header: ``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD``,
  the timestamp the send time (the EVE record keeps the event time), MSGID
  the event type, and the registered ``meta`` SD element with a
  ``sequenceId`` per receiver, so a SIEM can see gaps (RFC 5424 7.3.1).
- The capture loop only encodes and queues (sendqueue.py): a slow or absent
  receiver never blocks it; losses are bounded, counted and logged.

Settings are checked when the output is built; a setting that can never work
(unknown transport, unreadable CA file) is a ConfigError naming its key
(exit 2); a receiver that is down is a logged retry.
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from netsentry.config import ConfigError
from netsentry.event import Event
from netsentry.output import EVENT_TYPES, Output, OutputContext, check_event_types, register
from netsentry.output.cef import cef_line
from netsentry.output.eve import render
from netsentry.output.sendqueue import SendQueue, Transport
from netsentry.output.syslog_transport import (
    FRAMINGS,
    STANDARD_PORTS,
    DatagramTransport,
    TcpTransport,
    TlsTransport,
    UnixTransport,
)

SECTION = "outputs.syslog"

FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
    "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "local0": 16, "local1": 17, "local2": 18,
    "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}
SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
_LEVEL = {name: i for i, name in enumerate(SEVERITIES)}

# Suricata's alert severity (1 most severe) -> syslog severity
ALERT_LEVELS = {1: 2, 2: 3, 3: 4}
OTHER_LEVELS = {"anomaly": 5, "flow": 6, "stats": 6}

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# The keys a receiver takes (the section's own, and each entry of `receivers`).
RECEIVER_KEYS = ("server", "port", "transport", "format", "body", "framing", "facility", "hostname",
                 "app-name", "types", "min-severity", "ca-file", "cert-file", "key-file", "tls-name",
                 "socket", "queue-size", "max-message-size", "drain-timeout")


def level_of(event: Event) -> int:
    """The syslog severity (0-7) of an event."""
    alert = event.alert
    if alert is not None:
        return ALERT_LEVELS.get(alert.severity, 5)
    if event.event_type == "drop":
        return 3
    return OTHER_LEVELS.get(event.event_type, 6)


_SECOND: list[Any] = [-1, ""]          # the last second formatted by header_5424, and its text


def header_5424(pri: int, host: str, app: str, procid: str, msgid: str, seq: int, now: float) -> bytes:
    sec = int(now)
    if sec != _SECOND[0]:               # strftime once per second, not once per message
        _SECOND[0], _SECOND[1] = sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    return (f'<{pri}>1 {_SECOND[1]}.{int((now - sec) * 1e6):06d}Z {host} {app} {procid} {msgid} '
            f'[meta sequenceId="{seq}"] ').encode()


def header_3164(pri: int, host: str, app: str, procid: str, msgid: str, seq: int, now: float) -> bytes:
    """RFC 3164 (BSD) header, UTC. `host` "" leaves the HOSTNAME out, as the C library's
    syslog() does on the local socket (the daemon adds its own host name there)."""
    t = time.gmtime(now)
    stamp = f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    if host:
        return f"<{pri}>{stamp} {host} {app}[{procid}]: ".encode()
    return f"<{pri}>{stamp} {app}[{procid}]: ".encode()


FORMATS: dict[str, Callable[..., bytes]] = {"rfc5424": header_5424, "rfc3164": header_3164}


def eve_body(rec: dict[str, Any]) -> bytes:
    return orjson.dumps(rec)


def cef_body(rec: dict[str, Any]) -> bytes:
    return cef_line(rec).encode()


BODIES: dict[str, Callable[[dict[str, Any]], bytes]] = {"eve": eve_body, "cef": cef_body}


def _token(value: Any, key: str, limit: int) -> str:
    """An RFC 5424 header field: printable US-ASCII without spaces, at most `limit` long."""
    text = str(value)
    if not text or len(text) > limit or any(not 33 <= ord(c) <= 126 for c in text):
        raise ConfigError(f"expected 1-{limit} printable ASCII characters without spaces, got {value!r}", key)
    return text


def _choice(value: Any, table: Mapping[str, Any], key: str) -> str:
    if value not in table:
        raise ConfigError(f"unknown value {value!r} (known: {', '.join(table)})", key)
    return str(value)


def _int(value: Any, key: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"expected an integer from {lo} to {hi}, got {value!r}", key)
    return value


def _readable(path: Any, key: str, what: str) -> str:
    if not isinstance(path, str) or not path:
        raise ConfigError(f"a {what} is required for this transport", key)
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}", key) from None
    return path


class Receiver:
    """One syslog receiver: its filters, its header and body, its queue and transport."""

    def __init__(self, cfg: Mapping[str, Any], key: str) -> None:
        transport = _choice(cfg.get("transport", "udp"), STANDARD_PORTS, f"{key}.transport")
        self.format = FORMATS[_choice(cfg.get("format", "rfc5424"), FORMATS, f"{key}.format")]
        self.body = _choice(cfg.get("body", "eve"), BODIES, f"{key}.body")
        frame = FRAMINGS[_choice(cfg.get("framing", "octet-counting"), FRAMINGS, f"{key}.framing")]
        self.facility = FACILITIES[_choice(cfg.get("facility", "local5"), FACILITIES, f"{key}.facility")]
        self.min_level = _LEVEL[_choice(cfg.get("min-severity", "debug"), _LEVEL, f"{key}.min-severity")]
        self.event_types = check_event_types(list(cfg.get("types") or EVENT_TYPES), f"{key}.types")
        host = cfg.get("hostname") or socket.gethostname() or "-"
        self.hostname = _token(host, f"{key}.hostname", 255)
        self.app = _token(cfg.get("app-name", "netsentry"), f"{key}.app-name", 48)
        self.procid = str(os.getpid())
        limit = _int(cfg.get("max-message-size", 8192), f"{key}.max-message-size", 480, 65507)
        size = _int(cfg.get("queue-size", 10000), f"{key}.queue-size", 1, 10_000_000)
        drain = cfg.get("drain-timeout", 5)
        if isinstance(drain, bool) or not isinstance(drain, (int, float)) or drain < 0:
            raise ConfigError(f"expected a number of seconds >= 0, got {drain!r}", f"{key}.drain-timeout")
        self.drain = float(drain)
        server = str(cfg.get("server") or "127.0.0.1")
        port = _int(cfg.get("port", 0) or STANDARD_PORTS[transport], f"{key}.port", 0, 65535)
        self.transport = self._transport(transport, server, port, frame, limit, cfg, key)
        self.label = f"syslog {self.transport.name}"
        self.header_host = "" if (transport == "unix" and self.format is header_3164) else self.hostname
        self.seq = 0
        self.queue: SendQueue | None = None

    @staticmethod
    def _transport(kind: str, server: str, port: int, frame: Callable[[bytes], bytes], limit: int,
                   cfg: Mapping[str, Any], key: str) -> Transport:
        if kind in ("udp", "tcp", "tls") and not port:
            raise ConfigError("a port from 1 to 65535 is required", f"{key}.port")
        if kind == "udp":
            family = socket.AF_INET6 if ":" in server else socket.AF_INET
            return DatagramTransport(family, (server, port), limit, f"udp://{server}:{port}")
        if kind == "tcp":
            return TcpTransport(server, port, frame)
        if kind == "tls":
            ca = _readable(cfg.get("ca-file"), f"{key}.ca-file", "CA file")
            try:
                context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
            except (ssl.SSLError, OSError) as exc:
                raise ConfigError(f"not a usable CA file {ca}: {exc}", f"{key}.ca-file") from None
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            cert, keyfile = cfg.get("cert-file") or "", cfg.get("key-file") or ""
            if cert or keyfile:
                _readable(cert, f"{key}.cert-file", "client certificate")
                _readable(keyfile, f"{key}.key-file", "client key")
                try:
                    context.load_cert_chain(cert, keyfile)
                except (ssl.SSLError, OSError) as exc:
                    raise ConfigError(f"client certificate and key do not load: {exc}", f"{key}.cert-file") from None
            return TlsTransport(server, port, frame, context, str(cfg.get("tls-name") or server))
        path = str(cfg.get("socket") or "/dev/log")
        return UnixTransport(path, limit, frame)

    def start(self, size: int) -> None:
        self.queue = SendQueue(self.transport, size, self.label)

    def wants(self, event_type: str, level: int) -> bool:
        return event_type in self.event_types and level <= self.min_level

    def put(self, event_type: str, level: int, body: bytes) -> None:
        self.seq = self.seq % 2147483647 + 1         # RFC 5424 sequenceId: 1 .. 2^31-1
        head = self.format(self.facility * 8 + level, self.header_host, self.app, self.procid,
                           event_type, self.seq, time.time())
        self.queue.put(head + body, level)          # type: ignore[union-attr]


class SyslogOutput(Output):
    """Every configured receiver; a record is encoded once per body kind."""

    name = "syslog"

    def __init__(self, cfg: Mapping[str, Any], ctx: OutputContext) -> None:
        base = {k: v for k, v in cfg.items() if k not in ("enabled", "receivers")}
        unknown = [k for k in base if k not in RECEIVER_KEYS]
        if unknown:
            raise ConfigError(f"unknown key (known: {', '.join(RECEIVER_KEYS)})", f"{SECTION}.{unknown[0]}")
        specs = [(base, SECTION)]
        extra = cfg.get("receivers") or []
        if not isinstance(extra, list):
            raise ConfigError(f"expected a list of receivers, got {extra!r}", f"{SECTION}.receivers")
        for i, item in enumerate(extra):
            key = f"{SECTION}.receivers[{i}]"
            if not isinstance(item, Mapping):
                raise ConfigError(f"expected a mapping of receiver settings, got {item!r}", key)
            for k in item:
                if k not in RECEIVER_KEYS:
                    raise ConfigError(f"unknown key (known: {', '.join(RECEIVER_KEYS)})", f"{key}.{k}")
            specs.append(({**base, **item}, key))
        # every receiver's settings are checked before any thread starts
        self.receivers = [Receiver(spec, key) for spec, key in specs]
        sizes = [int(spec.get("queue-size", 10000)) for spec, _ in specs]
        for receiver, size in zip(self.receivers, sizes):
            receiver.start(size)
        types: set[str] = set()
        for r in self.receivers:
            types |= r.event_types
        self.event_types = frozenset(types)
        self.produced = 0

    def emit(self, event: Event) -> None:
        etype = event.event_type
        level = level_of(event)
        bodies: dict[str, bytes] = {}
        rec = None
        for r in self.receivers:
            if not r.wants(etype, level):
                continue
            body = bodies.get(r.body)
            if body is None:
                if rec is None:
                    rec = render(event)
                body = bodies[r.body] = BODIES[r.body](rec)
            r.put(etype, level, body)

    def on_chain_checkpoint(self, record: dict[str, Any]) -> None:
        """integrity.py's hook: every signed checkpoint of a chained eve-log goes to every
        receiver as one message (MSGID ``integrity``, severity notice, the checkpoint as
        JSON), whatever the receiver's types and min-severity, so a copy of the proof
        lives away from the sensor and its key (docs/integrity.md)."""
        body = orjson.dumps(record)
        for r in self.receivers:
            r.put("integrity", 5, body)

    def flush(self, timeout: float = 0.0) -> None:
        if timeout:
            for r in self.receivers:
                r.queue.flush(timeout)          # type: ignore[union-attr]

    def close(self) -> None:
        for r in self.receivers:
            if r.queue is not None:
                r.queue.close(r.drain)

    def stats(self) -> dict[str, int]:
        """Per receiver (numbered in configuration order): queue depth, sent, dropped, reconnects."""
        out: dict[str, int] = {}
        for i, r in enumerate(self.receivers):
            if r.queue is None:
                continue
            for name, value in r.queue.stats().items():
                out[f"outputs.syslog.{i}.{name}"] = value
            truncated = getattr(r.transport, "truncated", None)
            if truncated is not None:
                out[f"outputs.syslog.{i}.truncated"] = truncated
        return out


@register("syslog")
def _open(cfg: Mapping[str, Any], ctx: OutputContext) -> Output:
    return SyslogOutput(cfg, ctx)
