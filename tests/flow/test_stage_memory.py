"""Per-flow state of the stages after the flow table (issue #12: at most 1 KB per live flow).

The flow table's own bound is in test_flow_memory.py. Here: the whole sensor's
bytes per live flow (tracemalloc, deterministic for an interpreter; no timing),
and the representation choices that keep it there, each with the behaviour it
must not change: the stream stage's typed per-direction record and its
inspected-data tail bounded by what the rules can read back, the app layer's
and the signature engine's per-flow slots shared between flows that are in
the same state. bench/bench_flow_memory.py measures the same at 262,144 flows.
"""

from __future__ import annotations

import gc
import struct
import sys
import tracemalloc
from pathlib import Path

from netsentry._compiled import COMPILED
from netsentry.applayer.state import AWAIT_OTHER, DONE_NULL, SYN_SEEN, AppState
from netsentry.config import load_config
from netsentry.detect.stream import window_lookback
from netsentry.output.memory import MemoryOutput
from netsentry.rules import load_rules
from netsentry.sensor import Sensor
from netsentry.stream.tcp import OVERLAP, Half, Session

T0 = 1_700_000_000.0
RULES = """\
alert tcp any any -> any any (msg:"GET"; content:"GET "; sid:1;)
alert tcp any any -> any any (msg:"admin"; content:"/admin/"; sid:2;)
alert tcp any any -> any any (msg:"secret"; content:"top-secret"; sid:3;)
"""


def _frame(src: int, dst: int, sp: int, dp: int, seq: int, flags: int, payload: bytes = b"") -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sp, dp, seq, 1, 5 << 4, flags, 65535, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + len(payload), 1, 0, 64, 6, 0,
                     src.to_bytes(4, "big"), dst.to_bytes(4, "big"))
    return b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00" + ip + tcp + payload


def _flows(n: int, payload: bytes | None = b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n") -> list:
    """n concurrent TCP flows, a SYN and (unless payload is None) one request segment each."""
    out = []
    for i in range(n):
        c, s, cp = 0x0A000000 + (i >> 4), 0xC0A80000 + (i & 0xFFF), 1024 + (i * 7919) % 60000
        ts = T0 + i * 1e-5
        out.append((ts, _frame(c, s, cp, 80, 1000, 0x02), 0, 1))
        if payload is not None:
            out.append((ts + 5e-6, _frame(c, s, cp, 80, 1001, 0x18, payload), 0, 1))
    return [(ts, data, len(data), link) for ts, data, _, link in out]


def _sensor(tmp_path: Path, rules: str = RULES, n: int = 1000, out: MemoryOutput | None = None) -> Sensor:
    path = tmp_path / "t.rules"
    path.write_text(rules)
    config = load_config(None, [f"flow.max-flows={n + 1}", "stream.reassembly.raw-inspection=arrival"])
    return Sensor(config, [out] if out is not None else [], load_rules([str(path)], config))


def _segments(tmp_path: Path, rules: str, parts: list[bytes]) -> tuple[Sensor, MemoryOutput]:
    """One TCP session whose client sends `parts` as consecutive segments."""
    out = MemoryOutput(frozenset({"alert"}))
    sensor = _sensor(tmp_path, rules, out=out)
    frames = [(T0, _frame(0x0A000001, 0xC0A80001, 40000, 80, 1000, 0x02))]
    seq = 1001
    for k, part in enumerate(parts):
        frames.append((T0 + 0.001 * (k + 1), _frame(0x0A000001, 0xC0A80001, 40000, 80, seq, 0x18, part)))
        seq += len(part)
    sensor.run([(ts, d, len(d), 1) for ts, d in frames])
    return sensor, out


def _sigs(tmp_path: Path, rules: str) -> list:
    path = tmp_path / "w.rules"
    path.write_text(rules)
    return list(load_rules([str(path)], load_config(None, [])).signatures)


def test_whole_sensor_keeps_at_most_1kb_per_live_flow(tmp_path: Path) -> None:
    n = 20_000
    sensor = _sensor(tmp_path, n=n)
    frames = _flows(n)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        sensor.run(frames)
        del frames
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    live = list(sensor.flows.live_flows())
    assert len(live) == n
    # 3.11, compiled: ~850 B (flow record and table ~450, stream ~240, anomaly ~136);
    # before the stages' slots were typed or shared: ~1,270 B. The pure path keeps
    # ~230 B more (the flow table's int objects and second key, a slotted Half's
    # int objects): ~1,090 B, and ~1,150 B since Half gained bstream's four fields
    # (opening SYN's timestamp, data pending for the next packet, runs behind gaps)
    bound = 1024 if COMPILED else 1200
    assert used / n <= bound, f"{used / n:.0f} B per live flow, all stages"


def test_stream_direction_is_a_fixed_record(tmp_path: Path) -> None:
    """No per-direction __dict__: two of these per TCP session, and no third object
    holding them: the session is the client's direction with the server's beside it."""
    sensor = _sensor(tmp_path, n=10)
    sensor.run(_flows(1))
    flow = next(iter(sensor.flows.live_flows()))
    session = flow.stream
    assert type(session) is Session
    client_half, server_half = session, session.server
    assert type(server_half) is Half
    # the tuple's reading still holds: [to_server] and iteration (to client, to server)
    assert session[True] is client_half and session[False] is server_half
    assert list(session) == [server_half, client_half]
    assert client_half.off == len(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n") and server_half.off == 0
    assert not hasattr(client_half, "__dict__") and not hasattr(server_half, "__dict__")
    # compiled: C fields, no GC header (112 B, the server's Half pointer 8 more); pure:
    # fourteen slots and a GC header (+ the session's one slot)
    assert sys.getsizeof(server_half) <= (112 if COMPILED else 152)
    assert sys.getsizeof(client_half) <= (120 if COMPILED else 160)
    if COMPILED:
        assert not gc.is_tracked(session) and not gc.is_tracked(server_half)


def test_tail_holds_only_what_the_rules_read_back_and_split_contents_still_alert(tmp_path: Path) -> None:
    # "top-secret" (10 bytes) split over three segments, with much data before it
    sensor, out = _segments(tmp_path, RULES, [b"x" * 3000 + b"to", b"p-se", b"cret and more"])
    assert [e.alert.signature_id for e in out.events] == [3]
    flow = next(iter(sensor.flows.live_flows()))
    assert sensor.stream.overlap == 9          # longest content - 1
    assert flow.stream[1].tail == b"cret and more"[-9:]


def test_a_rule_that_reads_far_back_keeps_the_whole_overlap(tmp_path: Path) -> None:
    rules = RULES + 'alert tcp any any -> any any (msg:"chain"; content:"BEGIN"; content:"THE-END"; distance:0; fast_pattern; sid:4;)\n'
    sensor, out = _segments(tmp_path, rules, [b"BEGIN" + b"y" * 1500, b"z" * 100 + b"THE-END"])
    assert [e.alert.signature_id for e in out.events] == [4]
    flow = next(iter(sensor.flows.live_flows()))
    assert sensor.stream.overlap == OVERLAP
    assert len(flow.stream[1].tail) == 1612


def test_window_lookback_by_rule_kind(tmp_path: Path) -> None:
    assert window_lookback(_sigs(tmp_path, RULES)) == 9
    # anchored at the start of the new data (offset/depth): reads none back, but the
    # prefilter still looks back for its fast pattern
    anchored = 'alert tcp any any -> any any (content:"HELLO-WORLD"; depth:11; sid:5;)\n'
    assert window_lookback(_sigs(tmp_path, anchored)) == 10
    assert window_lookback(_sigs(tmp_path, 'alert tcp any any -> any any (pcre:"/a.*b/"; sid:6;)\n')) is None
    # packet-only rules never see the stream
    assert window_lookback(_sigs(tmp_path, 'alert tcp-pkt any any -> any any (pcre:"/a.*b/"; sid:7;)\n')) == 0


def test_app_state_shared_until_a_flow_needs_its_own(tmp_path: Path) -> None:
    sensor = _sensor(tmp_path, n=100)
    sensor.run(_flows(20, payload=None))           # handshakes only: nothing of their own
    assert all(f.app is SYN_SEEN for f in sensor.flows.live_flows())
    sensor2 = _sensor(tmp_path, n=100)
    sensor2.run(_flows(20))                        # HTTP nobody reads: detected, then shared
    flows = list(sensor2.flows.live_flows())
    # (shared: until the server's first bytes, for the generic app-layer events, a shared
    # state that says which side was seen; then DONE_NULL)
    assert all(f.app_proto == "http" and f.app is AWAIT_OTHER[(2, False)] for f in flows)
    DONE_NULL.syn = False
    DONE_NULL.done = False                         # shared: a write changes nothing
    assert DONE_NULL.done and DONE_NULL.syn is False and SYN_SEEN.syn and not SYN_SEEN.done


def test_app_state_of_its_own_when_transactions_are_read(tmp_path: Path) -> None:
    rules = RULES + 'alert http any any -> any any (msg:"uri"; http.uri; content:"/index"; sid:8;)\n'
    out = MemoryOutput(frozenset({"alert"}))
    sensor = _sensor(tmp_path, rules, n=100, out=out)
    sensor.run(_flows(3))
    flows = list(sensor.flows.live_flows())
    assert all(type(f.app) is AppState and f.app.syn for f in flows)
    # (no server packet ever acknowledges the requests: parsed at the flows' end, as in
    # Suricata without stream.async-oneside)
    sensor.finish()
    assert sorted(e.alert.signature_id for e in out.events).count(8) == 3


def test_detect_state_shared_between_flows_in_the_same_state(tmp_path: Path) -> None:
    sensor = _sensor(tmp_path, n=100)
    sensor.run(_flows(50))
    states = {id(f.detect) for f in sensor.flows.live_flows()}
    assert len(states) == 1
    st = next(iter(sensor.flows.live_flows())).detect
    assert st[6] is sensor.signatures and st[5]    # made by this engine; the client side inspected


def test_an_eve_log_that_writes_payloads_keeps_the_whole_window(tmp_path: Path) -> None:
    """A stream match's EVE payload is its inspection window (output/eve.py
    `logged_payload`): with payload logging on, the tail is not cut to what the rules
    read back, so the logged bytes do not depend on the loaded rules."""
    from netsentry.output import OutputContext, open_outputs

    path = tmp_path / "t.rules"
    path.write_text(RULES)
    sets = [f"outputs.eve-log.filename={tmp_path / 'eve.json'}"]
    sets = ["stream.reassembly.raw-inspection=arrival", *sets]
    plain = load_config(None, sets)
    logging = load_config(None, sets + ["outputs.eve-log.alert.payload=true"])
    for config, want in ((plain, 9), (logging, OVERLAP)):
        outputs = open_outputs(config["outputs"], OutputContext(logdir=tmp_path))
        try:
            sensor = Sensor(config, outputs, load_rules([str(path)], config))
            assert sensor.stream.overlap == want
            # the daemon and the CLI build the stages first and attach the outputs after
            late = Sensor(config, [], load_rules([str(path)], config))
            assert late.stream.overlap == 9
            late.attach_outputs(outputs)
            assert late.stream.overlap == want
        finally:
            for out in outputs:
                out.close()
