"""The flow table and the cyclic garbage collector (flow/table.py, "Collector").

Compiled, the table keeps its live flows out of the collector's sight and hands each
back when it ends. These tests hold it to both halves: a live flow is not walked (not
tracked), and nothing the collector could reclaim before is kept now: a reference
cycle through a flow and a stage's per-flow state is freed once the flow has ended,
however it ends (timeout, eviction at the cap, the flush, a table dropped without a
flush). Pure Python every flow stays tracked, and the same cycles are freed.
"""

from __future__ import annotations

import gc
import weakref

import pytest
from flow_helpers import C, S, icmp, tcp, udp, udp6

from netsentry.flow import Flow, FlowTable
from netsentry.flow import table as table_module


def table_module_compiled() -> bool:
    """True when the flow table is the compiled extension (it untracks its flows)."""
    return not table_module.__file__.endswith(".py")


class _StageState:
    """A stage's per-flow state that points back at its flow (a reference cycle)."""

    flow: Flow | None = None


def _tie(flow: Flow) -> weakref.ref:
    """Make `flow` part of a cycle (flow.detect -> state -> flow); a weak reference to the state."""
    st = _StageState()
    st.flow = flow
    flow.detect = st
    return weakref.ref(st)


def _one_of_each(t: FlowTable, ts: float) -> list[Flow]:
    """A flow of every kind the table files differently: IPv4 UDP and TCP (the C index when
    compiled), VLAN-tagged TCP, IPv6 UDP, ICMP (the dicts)."""
    flows = [t.update(udp(C, S, 1000, 53, ts)), t.update(tcp(C, S, 40000, 80, "S", ts)),
             t.update(tcp(C, S, 40001, 80, "S", ts, vlan=7)),
             t.update(udp6("2001:db8::1", "2001:db8::2", 1000, 53, ts)), t.update(icmp(C, S, 8, ts))]
    assert all(f is not None for f in flows) and len({id(f) for f in flows}) == len(flows)
    return flows  # type: ignore[return-value]


def test_live_flows_are_not_walked_and_ended_ones_are_handed_back() -> None:
    tracked_at_end: list[bool] = []
    t = FlowTable({}, lambda f: tracked_at_end.append(gc.is_tracked(f)))
    flows = _one_of_each(t, 1.0)
    assert t.update(udp(S, C, 53, 1000, 1.5)) is flows[0]         # later packets change nothing
    for f in flows:
        assert gc.is_tracked(f) is not table_module_compiled(), f
    # the timer wheel's buckets (lists of flows only the table holds) are not walked either
    assert t._wheel and all(gc.is_tracked(b) is not table_module_compiled() for b in t._wheel.values())
    t.flush()
    assert tracked_at_end == [True] * len(flows)
    assert all(gc.is_tracked(f) for f in flows)
    # a record made outside the table is an ordinary tracked object, ending or not
    assert gc.is_tracked(Flow(0, b"k", 17, 4, (), b"\x01" * 4, b"\x02" * 4, 1, 2, 0.0))


@pytest.mark.parametrize("how", ["timeout", "evicted", "shutdown", "table dropped"])
def test_a_cycle_through_a_flow_is_freed_once_the_flow_ends(how: str) -> None:
    ended: list[Flow] = []
    t = FlowTable({"max-flows": 5} if how == "evicted" else {}, ended.append)
    refs = [_tie(f) for f in _one_of_each(t, 1.0)]
    gc.collect()
    assert all(r() is not None for r in refs)      # live: its state is kept, never torn down
    if how == "timeout":
        t.expire(10_000.0)
    elif how == "evicted":
        for i in range(5):                          # five new flows at the cap end the five old ones
            t.update(udp(C, S, 2000 + i, 53, 2.0))
    elif how == "shutdown":
        t.flush()
    else:
        del t
    if how != "table dropped":
        assert len(ended) == 5 and {f.end_reason for f in ended} == {
            {"timeout": "timeout", "evicted": "forced"}.get(how, how)}
    ended.clear()
    gc.collect()
    if how == "table dropped":
        # the table's closures are a cycle of their own, freed by the first collection;
        # the C index's references (which the collector cannot see) go with it, and the
        # flows it held are found by the next one
        gc.collect()
    assert [r() for r in refs] == [None] * 5


def test_the_cap_and_refiling_keep_every_live_flow_untracked() -> None:
    """Flows refiled in the timer wheel (traffic after their first deadline) and the flows
    that survive an eviction batch stay out of the collector's sight; only ended ones
    come back."""
    ended: list[Flow] = []
    t = FlowTable({"max-flows": 300}, ended.append)
    live = {}
    for i in range(1000):
        f = t.update(udp(C, S, 1000 + i, 53, 1.0 + i * 0.1))
        live[id(f)] = f
        if i % 7 == 0:
            t.update(udp(S, C, 53, 1000 + i, 1.05 + i * 0.1))
    assert len(ended) >= 700
    for f in ended:
        assert gc.is_tracked(f) and f.end_reason
        live.pop(id(f), None)
    assert len(live) == len(t) == 300
    assert all(gc.is_tracked(f) is not table_module_compiled() for f in live.values())
