"""Redis output (``outputs.redis``): EVE records into a Redis list or channel, as Suricata's
``eve-log`` with ``filetype: redis`` does, so many sensors feed one pipeline (Logstash's
redis input, a consumer of its own) without a home-made transport.

Modes, by Suricata's names: ``list`` (LPUSH, as Suricata's ``list``), ``lpush``,
``rpush``, and ``channel`` (PUBLISH, Suricata's ``channel``/``publish``). Records
are pipelined: one round trip per batch of up to sendqueue.BATCH records.

The same bounded queue and sender thread as syslog (sendqueue.py): the capture
loop never waits for Redis; when the queue is full the least severe records go
first; every loss is counted (stats, the closing log line) and logged once per
interval. A batch whose reply never came because the connection broke is sent
again on the next connection (Redis may then hold some of it twice); a server
that is only slow is waited for on the same connection, so nothing is doubled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from netsentry.config import ConfigError
from netsentry.event import Event
from netsentry.output import Output, OutputContext, check_event_types, register
from netsentry.output.eve import render
from netsentry.output.sendqueue import SendError, SendQueue, Transport
from netsentry.output.syslog import _LEVEL, _choice, _int, level_of

SECTION = "outputs.redis"
CONNECT_TIMEOUT = 5.0

# mode -> the pipeline command for a batch
MODES: dict[str, str] = {"list": "lpush", "lpush": "lpush", "rpush": "rpush",
                         "channel": "publish", "publish": "publish"}


def _redis() -> Any:
    """The `redis` client package, imported when a Redis output is configured: importing
    it costs ~0.2 s, which every replay would pay otherwise."""
    import redis
    return redis


class RedisTransport(Transport):
    def __init__(self, host: str, port: int, key: str, mode: str, password: str, db: int) -> None:
        self.host, self.port, self.key, self.command = host, port, key, MODES[mode]
        self._password = password or None
        self._db = db
        self._client: Any = None
        self.name = f"redis://{host}:{port}/{db} {mode} {key}"

    def connect(self) -> None:
        redis_client = _redis()
        self.close()
        # no socket timeout once connected: a frozen server is waited for on the same
        # connection (a timeout would resend a batch the server may already hold)
        try:
            client = redis_client.Redis(host=self.host, port=self.port, db=self._db, password=self._password,
                                        socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=None,
                                        retry_on_timeout=False, retry=None, single_connection_client=True)
        except redis_client.RedisError as exc:
            raise SendError(str(exc)) from None
        try:
            client.ping()
        except redis_client.RedisError as exc:
            client.close()
            raise SendError(str(exc)) from None
        self._client = client

    def send(self, records: list[bytes], stop: Callable[[], bool]) -> None:
        client = self._client
        if client is None:
            raise SendError("not connected")
        redis_client = _redis()
        try:
            pipe = client.pipeline(transaction=False)
            if self.command == "publish":
                for rec in records:
                    pipe.publish(self.key, rec)
            elif self.command == "lpush":
                pipe.lpush(self.key, *records)
            else:
                pipe.rpush(self.key, *records)
            pipe.execute()
        except redis_client.RedisError as exc:
            raise SendError(str(exc)) from None

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except _redis().RedisError:
                pass
            self._client = None


class RedisOutput(Output):
    name = "redis"

    def __init__(self, cfg: Mapping[str, Any], ctx: OutputContext) -> None:
        self.event_types = check_event_types(list(cfg.get("types") or ["alert", "drop", "anomaly"]),
                                             f"{SECTION}.types")
        mode = _choice(cfg.get("mode", "list"), MODES, f"{SECTION}.mode")
        key = cfg.get("key", "netsentry")
        if not isinstance(key, str) or not key:
            raise ConfigError(f"expected a non-empty key name, got {key!r}", f"{SECTION}.key")
        port = _int(cfg.get("port", 6379), f"{SECTION}.port", 1, 65535)
        db = _int(cfg.get("db", 0), f"{SECTION}.db", 0, 1 << 16)
        size = _int(cfg.get("queue-size", 10000), f"{SECTION}.queue-size", 1, 10_000_000)
        self.min_level = _LEVEL[_choice(cfg.get("min-severity", "debug"), _LEVEL, f"{SECTION}.min-severity")]
        drain = cfg.get("drain-timeout", 5.0)
        if isinstance(drain, bool) or not isinstance(drain, (int, float)) or drain < 0:
            raise ConfigError(f"expected a number of seconds >= 0, got {drain!r}", f"{SECTION}.drain-timeout")
        self.drain = float(drain)
        server = str(cfg.get("server") or "127.0.0.1")
        self.transport = RedisTransport(server, port, key, mode, str(cfg.get("password") or ""), db)
        self.queue = SendQueue(self.transport, size, self.transport.name)

    def emit(self, event: Event) -> None:
        level = level_of(event)
        if level <= self.min_level:
            self.queue.put(orjson.dumps(render(event)), level)

    def close(self) -> None:
        self.queue.close(self.drain)

    def stats(self) -> dict[str, int]:
        return {f"outputs.redis.{name}": value for name, value in self.queue.stats().items()}


@register("redis")
def _open(cfg: Mapping[str, Any], ctx: OutputContext) -> Output:
    return RedisOutput(cfg, ctx)
