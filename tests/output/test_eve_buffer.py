"""The eve-log's write buffer (`fields.LineBuffer`): records reach the file in the order
they were emitted, whole, and by the time anyone may look (`flush`, `reopen`, `close`).

Compiled, the usual alert and flow records are written straight into one C block and
any other record's line is copied in after them; the block goes to the file about 1 MiB
at a time. These tests run on both paths (the pure path writes every line as it comes)
and compare whole files with the dict form's bytes (`render` through orjson).
"""

from __future__ import annotations

from pathlib import Path

import orjson

from netsentry.event import Alert, Event
from netsentry.output import OutputContext, open_outputs
from netsentry.output.eve import render
from netsentry.output.fields import LineBuffer

from test_eve_lines import SIG, TCP4, TS, UDP4, VLAN, decode, flow_of


def reference(events: list[Event]) -> bytes:
    return b"".join(orjson.dumps(render(ev), option=orjson.OPT_APPEND_NEWLINE) for ev in events)


def eve_log(tmp_path: Path, **cfg: object) -> object:
    (out,) = open_outputs({"eve-log": {"enabled": True, **cfg}}, OutputContext(logdir=tmp_path))
    return out


def mixed(n: int) -> list[Event]:
    """`n` rounds of: a usual alert, an alert with a VLAN tag (the dict path), a flow
    record, an alert with extra fields (the dict path)."""
    tcp, vlan = decode(TCP4), decode(VLAN)
    flow, vflow = flow_of(tcp), flow_of(vlan)
    flow.end_reason = "timeout"
    events = []
    for i in range(n):
        ts = TS + i * 0.001
        events += [Event("alert", ts, tcp, flow, SIG), Event("alert", ts, vlan, vflow, Alert(7, "vlan")),
                   Event("flow", ts, None, flow),
                   Event("alert", ts, tcp, flow, Alert(8, "tx"), extra={"tx_id": i})]
    return events


def test_records_keep_their_order_across_both_paths(tmp_path: Path) -> None:
    events = mixed(50)
    out = eve_log(tmp_path)
    for ev in events:
        out.emit(ev)
    out.flush()
    assert (tmp_path / "eve.json").read_bytes() == reference(events)
    assert out.count == len(events)
    out.close()


def test_more_than_the_buffer_holds_and_lines_longer_than_its_room(tmp_path: Path) -> None:
    # ~3 MiB of records (several hand-overs), and lines of 20 kB (copied whole, not split)
    long_sig = Alert(9, "x" * 20000)
    tcp = decode(TCP4)
    flow = flow_of(tcp)
    events = mixed(4000) + [Event("alert", TS, tcp, flow, long_sig)] + mixed(3)
    out = eve_log(tmp_path)
    for ev in events:
        out.emit(ev)
    out.close()
    data = (tmp_path / "eve.json").read_bytes()
    assert len(data) > 3 << 20
    assert data == reference(events)


def test_flush_makes_every_record_so_far_readable(tmp_path: Path) -> None:
    events = mixed(3)
    out = eve_log(tmp_path)
    for ev in events[:4]:
        out.emit(ev)
    out.flush()         # the daemon's tick: a SIEM tailing eve.json sees these now
    assert (tmp_path / "eve.json").read_bytes() == reference(events[:4])
    for ev in events[4:]:
        out.emit(ev)
    out.close()
    assert (tmp_path / "eve.json").read_bytes() == reference(events)


def test_reopen_puts_earlier_records_in_the_rotated_file(tmp_path: Path) -> None:
    events = mixed(5)
    out = eve_log(tmp_path)
    for ev in events[:10]:
        out.emit(ev)
    (tmp_path / "eve.json").rename(tmp_path / "eve.json.1")     # logrotate
    out.reopen()
    for ev in events[10:]:
        out.emit(ev)
    out.close()
    assert (tmp_path / "eve.json.1").read_bytes() == reference(events[:10])
    assert (tmp_path / "eve.json").read_bytes() == reference(events[10:])


def test_a_swapped_write_function_gets_every_line(tmp_path: Path) -> None:
    # hoststate.py's renderer: the line an emit would write, written nowhere
    out = eve_log(tmp_path)
    ev = mixed(1)[0]
    chunks: list[bytes] = []
    write, count = out._write, out.count
    out._write = chunks.append
    try:
        out.emit(ev)
    finally:
        out._write, out.count = write, count
    assert chunks == [reference([ev])]
    assert out.count == 0
    out.emit(ev)
    assert out.count == 1
    out.close()
    assert (tmp_path / "eve.json").read_bytes() == reference([ev])


def test_line_buffer_on_its_own() -> None:
    got: list[bytes] = []
    buf = LineBuffer(got.append)
    buf.add_line(b"a\n")
    buf.add_line(b"b\n")
    buf.drain()
    buf.drain()                                  # nothing gathered: no empty write
    big = b"c" * 100_000 + b"\n"
    buf.add_line(big)
    buf.drain()
    assert b"".join(got) == b"a\nb\n" + big
    assert b"" not in got
    assert buf.add_event(object()) is False      # not an Event: the caller's dicts write it
    udp = decode(UDP4)
    assert buf.add_event(Event("stats", TS, udp, None)) is False
