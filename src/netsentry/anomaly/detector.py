"""The detector interface and registry.

A detector is a small policy over the engine's cheap bookkeeping (Zeek's
split: the engine counts, detectors decide). The engine calls, per flow and
per bucket boundary only, never per packet:

- ``on_new_flows(flows)``: the flows whose first packet fell in the second
  that just closed, in first-packet order (optional). One call per second
  instead of one per flow: with ~2,200 new flows per second on the bench
  capture, four calls per flow were the largest per-flow cost;
- ``on_tick(tick)``: the per-second aggregates the engine folded from the
  flows touched in the last second (packets toward each address, flows whose
  handshake state may have changed; traffic-spike's per-host sums go straight
  into its open bucket);
- ``evaluate(now, out)``: append `Finding`s for keys over threshold;
- ``roll(ts)``: the next second starts at packet time `ts` (reset windows).

Each registers under its configuration key with `@register`, so a new
detector is one module and one YAML block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from netsentry.anomaly.alerts import Finding
from netsentry.anomaly.settings import Section
from netsentry.anomaly.window import KeyTable
from netsentry.assets import NetworkMap

# Per-flow state (flow.anomaly) is a `FlowState` (anomaly/flowstate.py: typed fields).
# (Flow.anomaly_due, not a field there, holds the end of the second in which the flow was last
# queued for accounting, -inf for a DNS flow: the capture loop reads it to skip the engine.)

# FlowState.scope: traffic-spike's bits, which ends of the flow get a baseline
SCOPE_CLIENT = 1
SCOPE_SERVER = 2

# FlowState.flags
FLAG_HALF_OPEN = 1   # counted as half-open by syn-flood
FLAG_SYN_PROBE = 2   # a SYN probe counted by port-scan (connect scans complete the handshake)
FLAG_UNLISTED = 4    # half-open flow whose source syn-flood does not list (per-destination cap)


@dataclass(slots=True)
class Tick:
    """What happened in one second of packet time, folded from the touched flows."""

    start: float
    next_start: float                                                     # packet time that closed this second
    pkts_in: dict[int, dict[bytes, int]] = field(default_factory=dict)    # proto -> receiver -> packets
    flagged: list[Any] = field(default_factory=list)                      # touched flows with FlowState.flags set
    touched: list[Any] = field(default_factory=list)


class Context:
    """What detectors share: the key cap, address lists and criticality factors."""

    def __init__(self, sec: Section, criticality_of: Callable[[bytes], str | None]) -> None:
        self.cap = sec.count("max-tracked-keys")
        self.ignore: NetworkMap = sec.networks("ignore-sources")
        self.ignore_any = bool(self.ignore)     # checked before every new key: skip the call when empty
        factors = sec.sub("criticality-factors")
        self.factors: dict[str | None, float] = {None: 1.0}
        for level in ("low", "medium", "high", "critical"):
            self.factors[level] = float(factors.positive(level))
        self.min_factor = min(self.factors.values())
        self._criticality_of = criticality_of
        self.tables: list[KeyTable] = []
        self.spike_scope: Any = None      # spike.HostScope: hosts traffic-spike baselines (None: all)

    def table(self, name: str) -> KeyTable:
        t = KeyTable(name, self.cap)
        self.tables.append(t)
        return t

    def factor(self, addr: bytes) -> float:
        """Threshold multiplier for a key whose host is `addr` (1.0 unless it is an asset)."""
        return self.factors[self._criticality_of(addr)]

    def ignored(self, addr: bytes) -> bool:
        return self.ignore_any and addr in self.ignore


class Detector:
    name = ""
    names: tuple[str, ...] = ()    # config sections it reads (several for a combined detector)

    def __init__(self, ctx: Context, sec: Section) -> None:
        self.ctx = ctx
        self.sec = sec

    on_new_flows: Callable[[list[Any]], None] | None = None
    # True when on_new_flows only prepares the engine's own per-flow accounting (its
    # result is read by `_account` alone): an engine fed per-host sums skips it
    accounting_hook = False

    def on_tick(self, tick: Tick) -> None:
        pass

    def evaluate(self, now: float, out: list[Finding]) -> None:
        pass

    def roll(self, ts: float) -> None:
        pass

    def stats(self) -> dict[str, int]:
        return {}


DETECTORS: dict[str, type[Detector]] = {}


def register(*names: str) -> Callable[[type[Detector]], type[Detector]]:
    """Register a detector under its config section name(s). A detector with one
    name gets its own section; one with several (one pass serving several
    alert kinds) gets the whole `anomaly` section and reads its sub-sections."""
    def deco(cls: type[Detector]) -> type[Detector]:
        cls.name = names[0]
        cls.names = names
        for name in names:
            DETECTORS[name] = cls
        return cls
    return deco
