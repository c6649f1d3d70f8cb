"""Prometheus endpoint (``outputs.metrics``): the latest stats record's counters over HTTP.

An output of the ``stats`` event type like any other: every stats record
(at the stats interval in live mode, at the end of a replay) replaces the
snapshot that a scrape reads, so the endpoint shows exactly what EVE's stats
records show, under the same names: ``decoder.pkts`` is
``netsentry_decoder_pkts``, ``stats.netsentry.outputs.syslog.0.dropped`` is
``netsentry_outputs_syslog_0_dropped`` (the ruleset's size is
``netsentry_detect_rules_loaded``). Values are gauges: they restart from zero
with the sensor.

Bound to 127.0.0.1 by default: metrics say a lot about a network; expose
them further only on purpose (``listen``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from netsentry.config import ConfigError
from netsentry.event import Event
from netsentry.output import Output, OutputContext, register

SECTION = "outputs.metrics"
_BAD = re.compile(r"[^a-zA-Z0-9_]")


def flatten(node: Mapping[str, Any], prefix: str = "netsentry") -> Iterator[tuple[str, float]]:
    """(metric name, value) for every number in a nested stats body."""
    for key, value in node.items():
        name = f"{prefix}_{_BAD.sub('_', str(key))}"
        if key == "netsentry" and prefix == "netsentry":
            name = prefix               # stats.netsentry.x -> netsentry_x, not netsentry_netsentry_x
        if isinstance(value, Mapping):
            yield from flatten(value, name)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield name, float(value)


class _Snapshot:
    """The prometheus_client collector: the last stats body, read at scrape time."""

    def __init__(self) -> None:
        self.body: Mapping[str, Any] = {}
        self.lock = threading.Lock()

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily
        with self.lock:
            body = self.body
        for name, value in flatten(body):
            family = GaugeMetricFamily(name, f"netsentry stats counter {name}")
            family.add_metric([], value)
            yield family


class Metrics(Output):
    name = "metrics"
    event_types = frozenset({"stats"})

    def __init__(self, cfg: Mapping[str, Any], ctx: OutputContext) -> None:
        listen = cfg.get("listen", "127.0.0.1")
        port = cfg.get("port", 9464)
        if not isinstance(listen, str) or not listen:
            raise ConfigError(f"expected an address, got {listen!r}", f"{SECTION}.listen")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigError(f"expected a port from 0 to 65535, got {port!r}", f"{SECTION}.port")
        # imported here: only a configured endpoint pays for prometheus_client
        from prometheus_client import CollectorRegistry, start_http_server
        self.snapshot = _Snapshot()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self.snapshot)
        try:
            self._server, self._thread = start_http_server(port, addr=listen, registry=registry)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {listen}:{port}: {exc.strerror or exc}", SECTION) from None
        self.port = self._server.server_address[1]

    def emit(self, event: Event) -> None:
        body = (event.extra or {}).get("stats")
        if isinstance(body, Mapping):
            with self.snapshot.lock:
                self.snapshot.body = body

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@register("metrics")
def _open(cfg: Mapping[str, Any], ctx: OutputContext) -> Output:
    return Metrics(cfg, ctx)
