"""The compiled whole-line writers (`fields.alert_line`, `fields.flow_line`) write the
bytes the dict form does.

When output/fields.py is compiled, `EveLog.emit` writes the usual alert and the
TCP/UDP/SCTP flow record straight into a C buffer instead of building dicts
for orjson. Every case here goes through the file writer and is compared with
`render(ev)` dumped by orjson (the reference the pure path writes); on the
compiled path the test also requires that the line writer, not the dict
fallback, wrote the usual shapes, so a writer that silently gave up on
everything would fail. Edge cases: IPv6, both directions, large and 64-bit
integers, times before 1970 and beyond the 4-digit years, strings that need
JSON escapes, every flow state and TCP flag combination met here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Dot1Q, Ether

from netsentry.decode import Decoder
from netsentry.event import Alert, Event
from netsentry.flow.flow import Flow
from netsentry.output import OutputContext, open_outputs
from netsentry.output import eve
from netsentry.output.eve import render

TS = 1491603877.251547
SIG = Alert(2018358, "ET HUNTING GENERIC \"SUSPICIOUS\" POST\\ \u00fc \x01", rev=10,
            category="Potentially Bad Traffic", severity=2,
            metadata={"created_at": ["2014_03_27"], "tag": ["a\"b", "\u00fc"]})
LINES = eve.FIELDS_LINES         # the compiled writers are in use

TCP4 = Ether() / IP(src="192.168.2.14", dst="209.53.113.5") / TCP(sport=50096, dport=80, flags="PA") / b"GET /"
TCP6 = (Ether() / IPv6(src="2001:db8::1", dst="fe80::20c:29ff:fef3:cf38")
        / TCP(sport=40000, dport=443, flags="PA") / b"x")
UDP4 = Ether() / IP(src="10.0.0.9", dst="255.255.0.53") / UDP(sport=0, dport=65535) / b"q"
ICMP4 = Ether() / IP(src="10.0.0.9", dst="10.0.0.1") / ICMP(type=8, code=0, id=3, seq=4)
ICMP6 = Ether() / IPv6(src="2001:db8::1", dst="2001:db8::2") / ICMPv6EchoRequest()
GRE4 = Ether() / IP(src="10.0.0.9", dst="10.0.0.1", proto=47) / b"\x00\x00\x00\x00"
VLAN = Ether() / Dot1Q(vlan=10) / IP(src="10.0.0.9", dst="10.0.0.1") / UDP(sport=1, dport=2)


def decode(frame: Any, n: int = 7, ts: float = TS) -> Any:
    pkt = Decoder().decode(bytes(frame), 1)
    pkt.ts, pkt.pcap_cnt = ts, n
    return pkt


def flow_of(pkt: Any, to_server: bool = True, start: float = TS - 2.5) -> Flow:
    c, s, cp, sp = (pkt.src, pkt.dst, pkt.sp, pkt.dp) if to_server else (pkt.dst, pkt.src, pkt.dp, pkt.sp)
    flow = Flow(0, (c, s, pkt.proto), pkt.proto, pkt.ip_version, pkt.vlan, c, s, cp, sp, start)
    flow.pkts_toserver, flow.bytes_toserver, flow.pkts_toclient, flow.bytes_toclient = 3, 300, 2, 1200
    flow.last_seen = start + 30.75
    pkt.to_server = to_server
    return flow


def written(tmp_path: Path, events: list[Event]) -> bytes:
    (out,) = open_outputs({"eve-log": {"enabled": True}}, OutputContext(logdir=tmp_path))
    for ev in events:
        out.emit(ev)
    out.close()
    return (tmp_path / "eve.json").read_bytes()


def check(tmp_path: Path, events: list[Event], usual: bool = True) -> None:
    """The file is the dict form's bytes; on the compiled path the line writer wrote each
    event when `usual` (None from it means the dict path did)."""
    want = b"".join(orjson.dumps(render(ev), option=orjson.OPT_APPEND_NEWLINE) for ev in events)
    assert written(tmp_path, events) == want
    if LINES:
        for ev in events:
            got = eve.LINE_WRITERS[ev.event_type](ev)
            assert (got is not None) == usual, ev
            if got is not None:
                assert got == orjson.dumps(render(ev), option=orjson.OPT_APPEND_NEWLINE)


@pytest.mark.parametrize("frame", [TCP4, TCP6, UDP4], ids=["tcp4", "tcp6", "udp4"])
@pytest.mark.parametrize("to_server", [True, False], ids=["to_server", "to_client"])
def test_usual_alert_and_its_flow_record(tmp_path: Path, frame: Any, to_server: bool) -> None:
    pkt = decode(frame)
    flow = flow_of(pkt, to_server)
    flow.end_reason = "timeout"
    check(tmp_path, [Event("alert", pkt.ts, pkt, flow, SIG), Event("alert", pkt.ts, pkt, flow, Alert(1, "x")),
                     Event("flow", TS + 300, None, flow)])


def test_app_proto_and_strings_that_need_escapes(tmp_path: Path) -> None:
    pkt = decode(TCP4)
    flow = flow_of(pkt)
    for app in ("http", "failed", "we\"ird\\\n\u00e9\U0001f600"):
        flow.app_proto = app
        # flow.state is one of Suricata's three names (Flow keeps a code): the escapes go in end_reason
        flow.state, flow.end_reason = "closed", "for\"\u00e7ed\t"
        check(tmp_path, [Event("alert", pkt.ts, pkt, flow, SIG), Event("flow", TS + 1, None, flow)])


@pytest.mark.parametrize("flow_id", [1, 2**51 - 1, 2**63 - 1])
@pytest.mark.parametrize("count", [0, 10**12, 2**63 - 1])
def test_large_integers(tmp_path: Path, flow_id: int, count: int) -> None:
    pkt = decode(TCP4, n=count or 1)
    flow = flow_of(pkt)
    flow.flow_id = flow_id
    flow.pkts_toserver = flow.bytes_toclient = count
    check(tmp_path, [Event("alert", pkt.ts, pkt, flow, SIG), Event("flow", TS, None, flow)])


def test_integers_beyond_64_bits_take_the_dict_path(tmp_path: Path) -> None:
    pkt = decode(TCP4, n=2**63)          # orjson writes it (u64); the line writer declines
    flow = flow_of(pkt)
    check(tmp_path, [Event("alert", pkt.ts, pkt, flow, SIG)], usual=False)


@pytest.mark.parametrize("ts", [0.0, -0.25, -86400.5, 951782400.0, 4102444800.999999, 1e-7, 253402300760.4,
                                TS + 0.0000005, TS + 0.0000015])
def test_times(tmp_path: Path, ts: float) -> None:
    pkt = decode(UDP4, ts=ts)
    flow = flow_of(pkt, start=ts - 1.5)
    check(tmp_path, [Event("alert", ts, pkt, flow, SIG), Event("flow", ts, None, flow)])


def test_times_beyond_the_four_digit_years_take_the_dict_path(tmp_path: Path) -> None:
    for ts in (1e13, -1e12):
        pkt = decode(UDP4, ts=ts)
        flow = flow_of(pkt, start=TS)
        check(tmp_path, [Event("alert", ts, pkt, flow, SIG)], usual=False)
        flow2 = flow_of(pkt, start=ts)
        check(tmp_path, [Event("flow", TS, None, flow2)], usual=False)
    pkt = decode(UDP4)
    flow = flow_of(pkt)
    flow.last_seen = math.inf
    with pytest.raises(OverflowError):          # the dict path's own error, as before
        written(tmp_path, [Event("flow", TS, None, flow)])


@pytest.mark.parametrize("flags", [0x02, 0x12, 0x1B, 0xFF])
@pytest.mark.parametrize("tcp_state", ["none", "established", "closed", None])
def test_tcp_flow_records(tmp_path: Path, flags: int, tcp_state: str | None) -> None:
    pkt = decode(TCP4)
    flow = flow_of(pkt)
    flow.tcp_flags_ts, flow.tcp_flags_tc = flags, flags >> 1
    flow.tcp_state = tcp_state
    flow.alerted = bool(flags & 1)
    flow.state = None                   # the flow-level state worked out by the writer
    check(tmp_path, [Event("flow", TS + 5, None, flow)])


@pytest.mark.parametrize("frame", [ICMP4, ICMP6, GRE4], ids=["icmp4", "icmp6", "gre"])
@pytest.mark.parametrize("to_server", [True, False], ids=["to_server", "to_client"])
@pytest.mark.parametrize("icmp", [None, (8, 0), (8, 0, 0, 0), (3, 3, 11, 1)])
def test_alerts_and_flow_records_without_ports(tmp_path: Path, frame: Any, to_server: bool,
                                               icmp: tuple[int, ...] | None) -> None:
    pkt = decode(frame)
    flow = flow_of(pkt, to_server)
    flow.icmp = icmp
    flow.end_reason = "timeout"
    events = [Event("alert", pkt.ts, pkt, flow, SIG), Event("flow", TS + 60, None, flow)]
    check(tmp_path, events)
    flow.ip_version = 0                 # a flow record without ip_v
    check(tmp_path, events[1:])


def test_other_shapes_take_the_dict_path(tmp_path: Path) -> None:
    vlan = decode(VLAN)
    vlan_flow = flow_of(vlan)
    tcp = decode(TCP4)
    acted = flow_of(tcp)
    acted.action = "drop"
    policy = flow_of(tcp)
    policy.exception_policy = [("stream", "drop-flow")]
    check(tmp_path, [Event("alert", vlan.ts, vlan, vlan_flow, SIG), Event("flow", TS, None, vlan_flow),
                     Event("alert", tcp.ts, tcp, None, SIG),
                     Event("flow", TS, None, acted), Event("flow", TS, None, policy)], usual=False)


def test_extra_fields_and_options_take_the_dict_path(tmp_path: Path) -> None:
    pkt = decode(TCP4)
    flow = flow_of(pkt)
    ev = Event("alert", pkt.ts, pkt, flow, SIG, extra={"http": {"hostname": "x"}})
    assert written(tmp_path, [ev]) == orjson.dumps(render(ev), option=orjson.OPT_APPEND_NEWLINE)
    (out,) = open_outputs({"eve-log": {"enabled": True, "sensor-name": "gw1"}}, OutputContext(logdir=tmp_path))
    assert not out._lines                # an option that changes records: every record through dicts
    out.close()


def test_compiled_build_uses_the_line_writers() -> None:
    from netsentry import _compiled
    from netsentry.output import fields
    if not fields.COMPILED:
        pytest.skip("output/fields.py runs pure here (NETSENTRY_PURE, or no compiled build)")
    assert not _compiled.PURE and LINES and set(eve.LINE_WRITERS) == {"alert", "flow"}
