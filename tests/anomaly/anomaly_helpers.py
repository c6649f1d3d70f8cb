"""Shared helpers for the anomaly tests: run captures through the real stages, build packets."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from netsentry.anomaly import AnomalyEngine
from netsentry.capture import open_capture
from netsentry.config import load_defaults
from netsentry.decode import Decoder
from netsentry.decode.packet import Packet
from netsentry.flow import Flow, FlowTable

REPO = Path(__file__).resolve().parents[2]
PCAPS = REPO / "pcaps"
SHARED = REPO / ".." / "shared"


def config_with(anomaly: dict[str, Any] | None = None, assets: list | None = None) -> dict[str, Any]:
    cfg = load_defaults()
    if anomaly:
        _merge(cfg["anomaly"], anomaly)
    if assets is not None:
        cfg["assets"] = assets
    return cfg


def _merge(base: dict, over: dict) -> None:
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = copy.deepcopy(v)


def replay(paths: Path | list[Path], config: dict[str, Any] | None = None,
           engine: AnomalyEngine | None = None) -> tuple[list, AnomalyEngine]:
    """Capture -> Decoder -> FlowTable -> AnomalyEngine, as the sensor wires them; all alert events."""
    cfg = config or load_defaults()
    eng = engine or AnomalyEngine(cfg)
    flows = FlowTable(dict(cfg["flow"]), eng.on_flow_end)
    decode = Decoder().decode
    events: list = []
    n = 0
    for path in paths if isinstance(paths, list) else [paths]:
        for ts, data, wirelen, linktype in open_capture(path):
            n += 1
            pkt = decode(data, linktype)
            pkt.ts, pkt.pcap_cnt, pkt.wirelen = ts, n, wirelen
            flow = flows.update(pkt)
            out = eng.inspect(pkt, flow)
            if out:
                events += out
    flows.flush("shutdown")
    events += eng.flush() or []
    return events, eng


def kinds(events: list) -> list[str]:
    return [e.extra["netsentry"]["anomaly"]["detector"] + ":" + e.alert.signature for e in events]


def addr(text: str) -> bytes:
    import ipaddress
    return ipaddress.ip_address(text).packed


def packet(src: str, dst: str, ts: float, *, proto: int = 6, sp: int = 40000, dp: int = 80,
           flags: int = 0x02, icmp_type: int = -1, size: int = 60) -> Packet:
    p = Packet()
    p.ts = ts
    p.ip_version = 4
    p.src, p.dst = addr(src), addr(dst)
    p.proto, p.sp, p.dp, p.tcp_flags, p.icmp_type = proto, sp, dp, flags, icmp_type
    p.data = bytes(size)
    return p


class FlowDriver:
    """Hand-made flows for driving the engine directly (one Flow per 5-tuple, counters updated as the table would)."""

    def __init__(self, engine: AnomalyEngine) -> None:
        self.engine = engine
        self.flows: dict[tuple, Flow] = {}
        self.events: list = []
        self.n = 0

    def send(self, pkt: Packet) -> Flow:
        key = (pkt.src, pkt.dst, pkt.sp, pkt.dp, pkt.proto)
        rkey = (pkt.dst, pkt.src, pkt.dp, pkt.sp, pkt.proto)
        flow = self.flows.get(key)
        to_server = True
        if flow is None:
            flow = self.flows.get(rkey)
            if flow is not None:
                to_server = False
        if flow is None:
            flow = Flow(len(self.flows) + 1, key, pkt.proto, 4, (), pkt.src, pkt.dst, pkt.sp, pkt.dp, pkt.ts)
            self.flows[key] = flow
        self.n += 1
        pkt.pcap_cnt = self.n
        pkt.flow, pkt.to_server = flow, to_server
        if to_server:
            flow.pkts_toserver += 1
            flow.bytes_toserver += len(pkt.data)
        else:
            flow.pkts_toclient += 1
            flow.bytes_toclient += len(pkt.data)
        out = self.engine.inspect(pkt, flow)
        if out:
            self.events += out
        return flow

    def finish(self) -> list:
        self.events += self.engine.flush() or []
        return self.events
