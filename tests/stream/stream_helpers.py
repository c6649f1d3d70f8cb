"""One replay through the whole sensor for the stream tests: the capture, the rules and
the config they choose, every event collected in memory (no EVE file)."""

from __future__ import annotations

from pathlib import Path

from netsentry.capture import read_captures
from netsentry.config import load_config
from netsentry.output.memory import MemoryOutput
from netsentry.rules import load_rules
from netsentry.sensor import Sensor


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
