"""What the stream tests share: one replay through the whole sensor (the capture, the
rules and the config they choose, every event collected in memory, no EVE file), and
frames through the stream stage alone with a consumer that keeps what it is given."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from netsentry.capture import read_captures
from netsentry.config import load_config
from netsentry.decode import Decoder
from netsentry.flow import FlowTable
from netsentry.output.memory import MemoryOutput
from netsentry.rules import load_rules
from netsentry.sensor import Sensor
from netsentry.stream import StreamEngine, StreamSettings


def replay_events(pcap: Path, rules: Path, config_path: Path | None = None,
                  overrides: tuple[str, ...] = ()) -> tuple[MemoryOutput, Sensor]:
    """Replay `pcap` against `rules` (anomaly engine off: these tests look at stream
    semantics only); the rules must all load."""
    config = load_config(config_path, ["anomaly.enabled=false", *overrides])
    rs = load_rules([rules], config)
    assert not rs.errors, rs.errors
    out = MemoryOutput()
    sensor = Sensor(config, [out], rs)
    sensor.run(read_captures([str(pcap)]))
    sensor.finish()
    return out, sensor


def alerts_of(out: MemoryOutput) -> list[tuple[int, int]]:
    """(packet number, sid) of each alert, in order."""
    return [(e.pkt.pcap_cnt, e.alert.signature_id) for e in out.events if e.event_type == "alert"]


class Feed:
    """A real consumer of the stream stage's app-layer hook: it keeps what it was given."""

    def __init__(self) -> None:
        self.data: dict[bool, bytearray] = {True: bytearray(), False: bytearray()}
        self.gaps: list[int] = []

    def feed(self, flow: Any, to_server: bool, data: bytes, pkt: Any) -> None:
        self.data[to_server] += data

    def gap(self, flow: Any, to_server: bool, nbytes: int, pkt: Any) -> None:
        self.gaps.append(nbytes)


def stream_through(frames: list[bytes], config: dict[str, Any],
                   raw: str = "arrival") -> tuple[StreamEngine, Feed, list[Any]]:
    """Ethernet frames decoded, given flows and fed to a stream stage built from `config`
    (packet n at second n): the stage, what it delivered, the packets. `raw`: when the
    windows are set (`stream.reassembly.raw-inspection`); these unit tests read each
    packet's own window, so on arrival unless a test asks for Suricata's acked timing."""
    feed = Feed()
    settings = dataclasses.replace(StreamSettings.from_config(config), raw_inspection=raw)
    eng = StreamEngine(settings, applayer=feed)
    dec, flows = Decoder(), FlowTable({}, lambda f: None)
    pkts = []
    for n, data in enumerate(frames, 1):
        pkt = dec.decode(data, 1)
        pkt.ts = 1_700_000_000 + n
        pkt.pcap_cnt = n
        eng.update(pkt, flows.update(pkt))
        pkts.append(pkt)
    return eng, feed, pkts


EVE_PAYLOAD = ["outputs.eve-log.alert.payload=true", "outputs.eve-log.alert.payload-printable=true"]


def replay_eve(tmp_path: Path, pkts: list[Any], rules: str, *overrides: str) -> list[dict[str, Any]]:
    """Crafted frames through the whole sensor to a real eve.json (alerts with their
    payload fields), read back. Each frame gets its own capture time: scapy stamps a
    packet when it is made, and a module's shared frames are made at collection, minutes
    before a late test's own (a flow timeout in between would end the flow early)."""
    import json

    from scapy.all import wrpcap  # type: ignore[import-untyped]

    from netsentry.output import OutputContext, open_outputs
    from netsentry.rules import load_rules
    from netsentry.sensor import Sensor

    pcap = tmp_path / "t.pcap"
    for i, p in enumerate(pkts):
        p.time = 1_700_000_000 + i / 100
    wrpcap(str(pcap), pkts)
    (tmp_path / "t.rules").write_text(rules)
    config = load_config(None, ["anomaly.enabled=false", "outputs.eve-log.types=[alert]", *EVE_PAYLOAD,
                                *overrides])
    rs = load_rules([tmp_path / "t.rules"], config)
    assert not rs.errors, rs.errors
    logdir = tmp_path / "log"
    sensor = Sensor(config, open_outputs(config["outputs"], OutputContext(logdir=logdir)), rs)
    sensor.run(read_captures([str(pcap)]))
    sensor.finish()
    return [json.loads(line) for line in (logdir / "eve.json").read_text().splitlines()]
