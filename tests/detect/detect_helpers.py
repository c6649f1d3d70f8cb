"""Helpers for detect/ tests: real rules (load_rules), real decoder and flow table, scapy frames."""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether

from netsentry.decode import Decoder, Packet
from netsentry.detect import SignatureEngine
from netsentry.flow import FlowTable
from netsentry.rules import load_rules
from netsentry.stream import StreamEngine, StreamSettings


def tcp(src: str, dst: str, sp: int, dp: int, payload: bytes = b"", flags: str = "PA", seq: int = 1000,
        ack: int = 1) -> bytes:
    return bytes(Ether() / IP(src=src, dst=dst) / TCP(sport=sp, dport=dp, flags=flags, seq=seq, ack=ack) / payload)


def udp(src: str, dst: str, sp: int, dp: int, payload: bytes = b"") -> bytes:
    return bytes(Ether() / IP(src=src, dst=dst) / UDP(sport=sp, dport=dp) / payload)


def icmp(src: str, dst: str, payload: bytes = b"", type_: int = 8) -> bytes:
    return bytes(Ether() / IP(src=src, dst=dst) / ICMP(type=type_) / payload)


def handshake(c: str, s: str, cp: int, sp: int) -> list[bytes]:
    return [tcp(c, s, cp, sp, flags="S", seq=100, ack=0),
            tcp(s, c, sp, cp, flags="SA", seq=500, ack=101),
            tcp(c, s, cp, sp, flags="A", seq=101, ack=501)]


@dataclass
class Run:
    engine: SignatureEngine
    packets: list[Packet] = field(default_factory=list)
    alerts: list[tuple[int, int, str]] = field(default_factory=list)   # (pcap_cnt, sid, action)

    def sids(self) -> list[int]:
        return [sid for _n, sid, _a in self.alerts]

    def sids_at(self, n: int) -> list[int]:
        return [sid for cnt, sid, _a in self.alerts if cnt == n]


class Detect:
    """Rules text -> engine; frames (with times) -> alerts, through decode and flow."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path

    def engine(self, rules: str, config: dict[str, Any] | None = None, ips: bool = False) -> SignatureEngine:
        path = self.tmp_path / "test.rules"
        path.write_text(rules)
        rs = load_rules([path], config or {})
        assert not rs.errors, rs.errors
        return SignatureEngine(rs, config or {}, ips=ips)

    def run(self, rules: str, frames: list[bytes | tuple[float, bytes]], config: dict[str, Any] | None = None,
            ips: bool = False) -> Run:
        eng = self.engine(rules, config, ips)
        decoder = Decoder()
        flows = FlowTable({}, lambda f: None)
        # tcp rules see the stream, as in the sensor; each packet's own window (on arrival):
        # these tests read per-packet results (acked timing: tests/stream/test_raw_inspection.py)
        settings = dataclasses.replace(StreamSettings.from_config(config or {}), raw_inspection="arrival")
        stream = StreamEngine(settings)
        out = Run(eng)
        for n, item in enumerate(frames, 1):
            ts, data = item if isinstance(item, tuple) else (1_700_000_000.0 + n * 0.001, item)
            pkt = decoder.decode(data, 1)
            pkt.ts = ts
            pkt.pcap_cnt = n
            flow = flows.update(pkt)
            if flow is not None and pkt.proto == 6:
                stream.update(pkt, flow)
            events = eng.inspect(pkt, flow)
            for e in events or ():
                assert e.event_type == "alert"
                out.alerts.append((n, e.alert.signature_id, e.alert.action))
            out.packets.append(pkt)
        return out


def inline_run(tmp_path: Path, rules: str, frames: list[bytes], *sets: str, name: str = "t.rules",
               config: dict | None = None, suricata: str | None = None) -> list[dict]:
    """EVE records of a whole sensor in IPS mode (drop records of every flow) over raw IP
    frames (link type 101): the firewall and IPS tests' run."""
    from netsentry.config import load_config
    from netsentry.output.eve import render
    from netsentry.output.memory import MemoryOutput
    from netsentry.sensor import Sensor
    rf = tmp_path / name
    rf.write_text(rules)
    cfg = load_config(None, ["stream.inline=true", "outputs.eve-log.drop.flows=all", *sets], suricata=suricata)
    if config:
        cfg.update(config)
    rs = load_rules([str(rf)], cfg)
    assert not rs.errors, rs.errors
    out = MemoryOutput()
    sensor = Sensor(cfg, [out], rs)
    sensor.run([(1_700_000_000.0 + i * 0.01, f, len(f), 101) for i, f in enumerate(frames)])
    sensor.finish()
    return [render(e) for e in out.events]


def drops(recs: list[dict]) -> list[tuple[int, str]]:
    """(pcap_cnt, drop reason) of each drop record."""
    return [(r["pcap_cnt"], r["drop"]["reason"]) for r in recs if r["event_type"] == "drop"]
