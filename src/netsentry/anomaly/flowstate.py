"""The anomaly engine's per-flow record (``flow.anomaly``): fixed integer fields.

Why a typed record instead of the list it was: compiled (setup.py
COMPILED_MODULES, layout in flowstate.pxd) it is a C struct of eleven
integers, 96 bytes, which the garbage collector never tracks (the list was
136 bytes plus a boxed int per counter above 256, and a container every
young collection walked: one per live flow). The engine, the worker's
observer and the detectors that `cimport` it read and write its fields as
struct members; the pure-Python path is the same class with ``__slots__``.

Fields (one layout for the single-process engine and a worker's observer):

- ``pts``, ``ptc``, ``bts``, ``btc``: the flow table's packet/byte counters
  (to server / to client) already folded into the per-second sums;
- ``dpts``, ``dptc``: the packet deltas of the last fold (flood top talkers,
  spike peers);
- ``flags``: the engine's FLAG_* bits (detector.py); in a worker, its
  PEND_* bits (observer.py: which of the judge's per-flow decisions are open);
- ``queued``: the second the flow started in; a DNS flow, the second it was
  last queued for the fold (its ``anomaly_due`` stays -inf);
- ``scope``: traffic-spike's SCOPE_* bits (which ends get a baseline);
- ``first``: the first packet's TCP flags (TCP) or ICMP type (others);
- ``lid``: a worker's number for the flow (observer.py, LID_STEP).
"""

from __future__ import annotations


class FlowState:
    """One flow's anomaly bookkeeping; see the module docstring for the fields."""

    __slots__ = ("pts", "ptc", "bts", "btc", "dpts", "dptc", "queued", "lid", "flags", "scope", "first")

    def __init__(self, queued: int, first: int) -> None:
        self.pts = 0
        self.ptc = 0
        self.bts = 0
        self.btc = 0
        self.dpts = 0
        self.dptc = 0
        self.queued = queued
        self.lid = 0
        self.flags = 0
        self.scope = 0
        self.first = first

    def __repr__(self) -> str:
        return ("FlowState(" + ", ".join(f"{n}={getattr(self, n)}" for n in FlowState.__slots__) + ")")
