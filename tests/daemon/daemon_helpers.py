"""Shared pieces of the daemon-operations tests: a live-like source and a collecting output."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from netsentry.config import load_config
from netsentry.output.memory import MemoryOutput

T0 = 1_700_000_000.0


class Collect(MemoryOutput):
    def alert_sids(self) -> list[tuple[int, int]]:
        """(packet number, sid) of every signature alert, in order."""
        return [(e.pkt.pcap_cnt, e.alert.signature_id) for e in self.of("alert") if e.pkt is not None]


def frame(payload: bytes, src: str = "10.0.0.1", dst: str = "10.0.0.2", sport: int = 1000) -> bytes:
    return bytes(Ether() / IP(src=src, dst=dst) / UDP(sport=sport, dport=53) / payload)


class LiveLike:
    """A packet source shaped like the live ones: one generator for the whole run, and a hook
    called between packets (where a live source polls the lifecycle and ticks)."""

    def __init__(self, frames: list[bytes], between: Callable[[int], None] = lambda n: None,
                 t0: float = T0, step: float = 0.01) -> None:
        self.frames = frames
        self.between = between
        self.t0 = t0
        self.step = step
        self.iterations = 0

    def __iter__(self) -> Iterator[tuple[float, bytes, int, int]]:
        self.iterations += 1
        for i, data in enumerate(self.frames):
            self.between(i)
            yield self.t0 + i * self.step, data, len(data), 1


def write_rules(path: Path, *rules: str) -> Path:
    path.write_text("".join(r + "\n" for r in rules))
    return path


def config_for(rules: Path, *overrides: str) -> dict:
    cfg = load_config(None, ["anomaly.enabled=false", "respond.blocklist.allow-own-addresses=false", *overrides])
    cfg["rule-files"] = [str(rules)]
    cfg["classification-file"] = "/nonexistent"
    return cfg
