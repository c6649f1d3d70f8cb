"""Console output (``outputs.console``): one readable line per alert or drop.

The line is Suricata's fast.log layout, which analysts already read at a
glance::

    04/07/2017-22:24:37.251547  [**] [1:2018358:10] ET HUNTING ... [**] \
[Classification: Potentially Bad Traffic] [Priority: 2] {TCP} 192.168.2.14:50096 -> 209.53.113.5:80

Drops are the same line prefixed ``[Drop]`` as fast.log does in IPS mode.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from netsentry.event import Event, HostPacket
from netsentry.output import Output, OutputContext, check_event_types, register
from netsentry.output.fields import PORT_PROTOS, PROTO_TEXT, format_ip


def fast_time(ts: float) -> str:
    sec = int(ts)
    usec = min(round((ts - sec) * 1_000_000), 999_999)
    return time.strftime("%m/%d/%Y-%H:%M:%S", time.gmtime(sec)) + f".{usec:06d}"


def _endpoint(packed: bytes, port: int, proto: int) -> str:
    ip = format_ip(packed)
    if proto in PORT_PROTOS:
        return f"{ip}:{port}"
    return ip


def format_line(event: Event) -> str:
    """The fast.log-style line for an alert or drop event."""
    alert = event.alert
    parts = [fast_time(event.ts), "  "]
    if event.event_type == "drop" or (alert is not None and alert.action == "blocked"):
        parts.append("[Drop] ")
    if alert is not None:
        parts.append(f"[**] [{alert.gid}:{alert.signature_id}:{alert.rev}] {alert.signature} [**] ")
        if alert.category:
            parts.append(f"[Classification: {alert.category}] ")
        parts.append(f"[Priority: {alert.severity}] ")
    pkt, flow = event.pkt, event.flow
    if pkt.__class__ is HostPacket:         # an alert about hosts: only what applies
        if pkt.proto:
            parts.append(f"{{{PROTO_TEXT[pkt.proto & 0xFF]}}} ")
        parts.append(_endpoint(pkt.src, pkt.sp, pkt.proto) if pkt.sp else format_ip(pkt.src))
        if pkt.dst:
            parts.append(f" -> {_endpoint(pkt.dst, pkt.dp, pkt.proto) if pkt.dp else format_ip(pkt.dst)}")
    elif pkt is not None and pkt.ip_version:
        parts.append(f"{{{PROTO_TEXT[pkt.proto & 0xFF]}}} "
                     f"{_endpoint(pkt.src, pkt.sp, pkt.proto)} -> {_endpoint(pkt.dst, pkt.dp, pkt.proto)}")
    elif flow is not None:
        parts.append(f"{{{PROTO_TEXT[flow.proto & 0xFF]}}} "
                     f"{_endpoint(flow.client, flow.client_port, flow.proto)} -> "
                     f"{_endpoint(flow.server, flow.server_port, flow.proto)}")
    return "".join(parts).rstrip()


class Console(Output):
    name = "console"

    def __init__(self, cfg: Mapping[str, Any], ctx: OutputContext) -> None:
        self.event_types = check_event_types(list(cfg.get("types", ["alert"])), "outputs.console.types")
        self._stream = ctx.stdout

    def emit(self, event: Event) -> None:
        self._stream.write(format_line(event) + "\n")

    def flush(self) -> None:
        self._stream.flush()

    def close(self) -> None:
        self.flush()


@register("console")
def _open(cfg: Mapping[str, Any], ctx: OutputContext) -> Output:
    return Console(cfg, ctx)
