"""Memory per live flow of the flow table (issue #12: at most 1 KB per live flow, table included).

tracemalloc counts the bytes Python allocates, so the figure is deterministic
for a given interpreter: no timing, no RSS noise. bench/bench_flow_memory.py
measures the same thing at 262,144 flows and the whole sensor's RSS.
"""

from __future__ import annotations

import gc
import struct
import sys
import tracemalloc

from netsentry.decode import Decoder
from netsentry.flow import Flow, FlowTable

N = 20_000
T0 = 1_700_000_000.0


def _frame(src: int, dst: int, sp: int, dp: int, seq: int, flags: int, payload: bytes) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sp, dp, seq, 1, 5 << 4, flags, 65535, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + len(payload), 1, 0, 64, 6, 0,
                     src.to_bytes(4, "big"), dst.to_bytes(4, "big"))
    return b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00" + ip + tcp + payload


def _frames(n: int) -> list[tuple[float, bytes]]:
    """n concurrent TCP flows, a SYN and a request segment each, all inside the timeouts."""
    out = []
    for i in range(n):
        c, s, cp = 0x0A000000 + (i >> 4), 0xC0A80000 + (i & 0xFFF), 1024 + (i * 7919) % 60000
        out.append((T0 + i * 1e-5, _frame(c, s, cp, 80, 1000, 0x02, b"")))
        out.append((T0 + i * 1e-5 + 5e-6, _frame(c, s, cp, 80, 1001, 0x18, b"GET / HTTP/1.1\r\n\r\n")))
    return out


def _bytes_per_live_flow(table: FlowTable, frames: list[tuple[float, bytes]]) -> float:
    decode, update = Decoder().decode, table.update
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for ts, data in frames:
            pkt = decode(data, 1)
            pkt.ts = ts
            update(pkt)
        del pkt
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    return used / len(table)


def test_table_keeps_at_most_1kb_per_live_flow() -> None:
    table = FlowTable({"max-flows": N + 1}, lambda f: None)
    per_flow = _bytes_per_live_flow(table, _frames(N))
    assert len(table) == N
    # the bound, table included (3.11: 674 B; 706 B before the wheel-slot
    # ints were shared)
    assert per_flow <= 1024, f"{per_flow:.0f} B per live flow"
    # and what the table keeps beside the record itself (3.11: 322 B = two dict
    # entries 66, the two 12-byte keys 90, the two addresses 74, client port, ISN and
    # next sequence number 3 x 28, the wheel's list slot 9): a per-flow int, tuple or
    # container more breaks it
    record = sys.getsizeof(next(iter(table.live_flows())))
    assert per_flow - record <= 340, f"{per_flow - record:.0f} B per live flow beside the {record} B record"


def test_flow_record_is_fixed_slots_without_a_dict() -> None:
    """No per-flow __dict__ (a dict is ~100 B more and per-key work on every store);
    a typo'd attribute is an error instead of a silent new field."""
    table = FlowTable({}, lambda f: None)
    ts, data = _frames(1)[0]
    pkt = Decoder().decode(data, 1)
    pkt.ts = ts
    flow = table.update(pkt)
    assert isinstance(flow, Flow) and not hasattr(flow, "__dict__")
    assert sys.getsizeof(flow) <= 32 + 8 * len(Flow.__slots__)    # object and GC headers + slots
    try:
        flow.not_a_field = 1  # type: ignore[attr-defined]
    except AttributeError:
        pass
    else:
        raise AssertionError("Flow accepted an undeclared attribute")
    # the stages' slots cost nothing until the stage uses them: None (or a shared constant)
    for name in ("flowbits", "flowints", "stream", "detect", "anomaly", "app", "eve", "exception_policy"):
        assert getattr(flow, name) is None, name


def test_sequence_bookkeeping_reads_none_until_known() -> None:
    """The ISN and next-sequence fields are C integers when compiled (-1 inside for
    unknown); readers (stream_size) still see None until a segment sets them."""
    table = FlowTable({}, lambda f: None)
    ts, data = _frames(1)[0]
    pkt = Decoder().decode(data, 1)
    pkt.ts = ts
    flow = table.update(pkt)
    assert flow.client_isn == 1000 and flow.client_next_seq == 1001      # the SYN consumed one number
    assert flow.server_isn is None and flow.server_next_seq is None
    flow.server_isn = 0                 # 0 is a sequence number, not "unknown"
    assert flow.server_isn == 0
    flow.server_isn = None
    assert flow.server_isn is None


def test_flows_of_one_host_share_its_address_object() -> None:
    """A host's packed address is kept once, however many flows it has (the table's
    address cache; 37 bytes per flow and side otherwise)."""
    table = FlowTable({}, lambda f: None)
    decode = Decoder().decode
    flows = []
    for ts, data in _frames(16)[::2]:        # 16 SYNs from one client (i >> 4), 16 servers
        pkt = decode(data, 1)
        pkt.ts = ts
        flows.append(table.update(pkt))
    assert len({id(f) for f in flows}) == 16 and len(table) == 16
    assert all(f.client is flows[0].client for f in flows)
    assert flows[0].client == bytes([10, 0, 0, 0])


def test_packets_of_a_known_flow_allocate_nothing_it_keeps() -> None:
    """Compiled, counters, times and sequence numbers are C fields of the record: the
    flow holds no int or float object, however large the numbers (pure Python, each
    counter above 256, each time and sequence number is an object the flow keeps:
    ~220 B per TCP flow, see Flow's docstring)."""
    import netsentry.flow.flow as flow_module
    if flow_module.__file__.endswith(".py"):
        return      # the pure path keeps number objects by design
    table = FlowTable({}, lambda f: None)
    decode = Decoder().decode
    frames = _frames(1)
    for ts, data in frames:
        pkt = decode(data, 1)
        pkt.ts = ts
        table.update(pkt)
    for i in range(300):                    # data segments with large, growing numbers
        ts, data = frames[1]
        data = data[:38] + struct.pack("!I", 1001 + 18 * i) + data[42:]
        pkt = decode(data, 1)
        pkt.ts = ts + 0.5 + i * 1e-3
        table.update(pkt)
    flow = pkt.flow
    assert flow.pkts_toserver == 302 and flow.bytes_toserver > 256 and flow.client_next_seq == 1001 + 18 * 300
    # what the record points to (its tp_traverse): object fields only, no numbers
    numbers = [r for r in gc.get_referents(flow) if type(r) in (int, float)]
    assert not numbers, numbers
