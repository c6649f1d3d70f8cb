"""Flow table: bidirectional keys, direction, counters, expiry on packet time, the cap, flush."""

from __future__ import annotations

import pytest
from flow_helpers import C, S, flow_module_compiled, handshake, icmp, keys_per_flow, table, tcp, udp, udp6

from netsentry.flow import FlowConfigError, FlowTable
from netsentry.flow.table import flow_id_for


def test_both_directions_share_one_flow_with_direction_and_counters() -> None:
    t, _ = table()
    a = t.update(udp(C, S, 5000, 53, 1.0, b"q" * 10))
    b_pkt = udp(S, C, 53, 5000, 1.5, b"r" * 30)
    b = t.update(b_pkt)
    assert a is b and b_pkt.flow is a and b_pkt.to_server is False
    assert (a.client_ip, a.client_port, a.server_ip, a.server_port) == (C, 5000, S, 53)
    assert (a.pkts_toserver, a.pkts_toclient) == (1, 1)
    assert a.bytes_toserver == 14 + 28 + 10 and a.bytes_toclient == 14 + 28 + 30
    assert (a.start, a.last_seen) == (1.0, 1.5)
    s = t.stats()
    assert s["flow.total"] == s["flow.udp"] == s["flow.active"] == 1


def test_ended_flows_leave_no_key_and_equal_ends_share_one() -> None:
    """Both paths file a flow the same way as far as behaviour goes: after it ends
    neither direction finds it, and a flow whose two ends are equal (the key is its own
    reverse) has one entry and sees every packet as to-server."""
    t, ended = table()
    f = t.update(udp(C, S, 5000, 53, 1.0))
    back = udp(S, C, 53, 5000, 1.1)
    assert t.update(back) is f and back.to_server is False
    assert t.key_entries() == keys_per_flow()
    t.expire(1000.0)
    assert ended == [f] and t.key_entries() == 0
    again = udp(S, C, 53, 5000, 1001.0)
    g = t.update(again)
    assert g is not f and again.to_server is True and (g.client_ip, g.client_port) == (S, 53)
    t.flush()
    same = t.update(udp(C, C, 7, 7, 2000.0))
    echo = udp(C, C, 7, 7, 2000.1)
    assert t.update(echo) is same and echo.to_server is True
    assert (same.pkts_toserver, same.pkts_toclient) == (2, 0)
    assert t.key_entries() == 1
    # a SYN-ACK seen first files the flow under its receiver's (the client's) key
    t.flush()
    sa = tcp(S, C, 80, 40000, "SA", 3000.0)
    h = t.update(sa)
    assert (h.client_ip, h.client_port) == (C, 40000) and sa.to_server is False
    fwd = tcp(C, S, 40000, 80, "A", 3000.1)
    assert t.update(fwd) is h and fwd.to_server is not False
    assert t.key_entries() == keys_per_flow()


def test_udp_established_only_after_both_directions() -> None:
    t, _ = table()
    f = t.update(udp(C, S, 5000, 53, 1.0))
    assert not f.established and f.state == "new"
    t.update(udp(C, S, 5000, 53, 1.1))
    assert not f.established
    t.update(udp(S, C, 53, 5000, 1.2))
    assert f.established and f.state == "established"


def test_distinct_tuples_vlans_and_protocols_are_distinct_flows() -> None:
    t, _ = table()
    base = t.update(tcp(C, S, 1, 2, "S", 1.0))
    assert t.update(tcp(C, S, 1, 3, "S", 1.0)) is not base
    assert t.update(tcp(C, S, 1, 2, "S", 1.0, vlan=7)) is not base
    assert t.update(tcp(C, S, 1, 2, "S", 1.0, vlan=7)) is t.update(tcp(S, C, 2, 1, "SA", 1.1, vlan=7))
    assert t.update(udp(C, S, 1, 2, 1.0)) is not base
    assert t.stats()["flow.total"] == 4


def test_icmp_flows_keyed_by_addresses_like_suricata() -> None:
    t, _ = table()
    req = t.update(icmp(C, S, 8, 1.0, ident=1))
    rep = t.update(icmp(S, C, 0, 1.1, ident=1))
    other_id = t.update(icmp(C, S, 8, 1.2, ident=2))
    assert req is rep is other_id
    assert req.established and t.stats()["flow.icmpv4"] == 1


@pytest.mark.parametrize("vlan", [None, 7])
def test_icmp_unreachable_joins_the_flow_it_quotes_and_errors_make_no_flow(vlan: int | None) -> None:
    """Suricata (flow-hash.c): a destination unreachable quoting a TCP/UDP header is a
    packet of that flow, to the client when the client's segment bounced; ICMP error
    messages never make a flow of their own (a router's, an unknown flow's)."""
    from flow_helpers import packet
    from scapy.all import ICMP, IP, TCP, UDP  # type: ignore[import-untyped]
    t, _ = table()
    t.update(tcp(C, S, 40000, 25, "S", 1.0, seq=1000, vlan=vlan))
    f = t.update(tcp(S, C, 25, 40000, "SA", 1.1, seq=5000, ack=1001, vlan=vlan))
    router = "192.0.2.1"
    quoted = IP(src=C, dst=S) / TCP(sport=40000, dport=25, flags="PA", seq=1001) / (b"x" * 40)
    err = packet(IP(src=router, dst=C) / ICMP(type=3, code=4) / quoted, 1.2, vlan)
    assert t.update(err) is f and err.flow is f and err.to_server is False
    assert (f.pkts_toserver, f.pkts_toclient) == (1, 2)
    assert f.tcp_state == "syn_recv"            # an ICMP packet is no step of the TCP session
    # the direction is the sender's (FlowGetPacketDirection): the client's own unreachable
    # about a server's segment goes to the server, a router's to the server to the client
    back = IP(src=S, dst=C) / TCP(sport=25, dport=40000, flags="A") / b"y"
    err2 = packet(IP(src=C, dst=S) / ICMP(type=3, code=3) / back, 1.3, vlan)
    assert t.update(err2) is f and err2.to_server is True and f.pkts_toserver == 2
    err3 = packet(IP(src=router, dst=S) / ICMP(type=3, code=1) / back, 1.35, vlan)
    assert t.update(err3) is f and err3.to_server is False and f.pkts_toclient == 3
    # no flow: the quoted flow is unknown, another error type, a UDP header cut short
    unknown = IP(src=C, dst=S) / UDP(sport=1, dport=2) / b"z"
    assert t.update(packet(IP(src=router, dst=C) / ICMP(type=3) / unknown, 1.4, vlan)) is None
    assert t.update(packet(IP(src=router, dst=C) / ICMP(type=11) / quoted, 1.5, vlan)) is None
    short = bytes(IP(src=C, dst=S, proto=17))[:20] + b"\x00\x01"
    assert t.update(packet(IP(src=router, dst=C) / ICMP(type=3) / short, 1.6, vlan)) is None
    s = t.stats()
    assert s["flow.total"] == s["flow.tcp"] == 1 and s["flow.icmpv4"] == 0
    # a UDP flow answered only by an unreachable is established, as two directions seen
    u = t.update(udp(C, S, 5000, 53, 2.0))
    gone = IP(src=C, dst=S) / UDP(sport=5000, dport=53) / b"x"
    assert t.update(packet(IP(src=S, dst=C) / ICMP(type=3, code=3) / gone, 2.1)) is u
    assert u.pkts_toclient == 1 and u.established


def test_ipv6_flows() -> None:
    t, _ = table()
    f = t.update(udp6("2001:db8::1", "2001:db8::2", 7, 9, 1.0))
    assert t.update(udp6("2001:db8::2", "2001:db8::1", 9, 7, 1.1)) is f
    assert f.ip_version == 6 and f.client_ip == "2001:db8::1"


def test_non_flow_packets_return_none() -> None:
    from flow_helpers import packet
    from scapy.all import IP, UDP  # type: ignore[import-untyped]
    t, _ = table()
    frag = packet(IP(src=C, dst=S, flags="MF") / UDP(sport=1, dport=2) / (b"a" * 16), 1.0)
    assert t.update(frag) is None and frag.flow is None
    from netsentry.decode import Decoder
    arp_like = Decoder().decode(b"\xff" * 12 + b"\x08\x06" + b"\x00" * 28, 1)
    arp_like.ts = 1.0
    assert t.update(arp_like) is None
    assert t.stats()["flow.total"] == 0
    # port-less protocols get address-keyed flows, but never from fragments
    esp = packet(IP(src=C, dst=S, proto=50) / (b"e" * 20), 2.0)
    assert t.update(esp) is not None
    esp_frag = packet(IP(src=C, dst=S, proto=50, flags="MF") / (b"e" * 20), 2.1)
    assert t.update(esp_frag) is None
    assert t.stats()["flow.other"] == 1


def test_flow_id_is_stable_positive_and_in_suricata_range() -> None:
    ids = []
    for _ in range(2):
        t, _ = table()
        ids.append(t.update(udp(C, S, 5000, 53, 1700000000.25)).flow_id)
    assert ids[0] == ids[1]
    assert 0 < ids[0] < 2 ** 63
    assert flow_id_for(b"k" * 12, 17, 1.0) != flow_id_for(b"k" * 12, 17, 2.0)
    assert flow_id_for(b"k" * 12, 6, 1.0) != flow_id_for(b"k" * 12, 17, 1.0)


def test_timeout_by_packet_time_calls_on_end() -> None:
    t, ended = table({"timeouts": {"udp": {"new": 30, "established": 300}}})
    f = t.update(udp(C, S, 5000, 53, 100.0))
    t.update(udp("10.9.9.9", S, 1, 2, 120.0))       # 20 s later: still alive
    assert ended == []
    t.update(udp("10.9.9.9", S, 1, 2, 131.5))       # > 30 s idle: expired
    assert ended == [f] and f.end_reason == "timeout"
    assert t.stats()["flow.timeout"] == 1 and t.stats()["flow.active"] == 1
    # a packet of the same tuple now starts a new flow
    g = t.update(udp(C, S, 5000, 53, 132.0))
    assert g is not f


def test_activity_and_established_state_extend_the_timeout() -> None:
    t, ended = table({"timeouts": {"udp": {"new": 30, "established": 300}}})
    f = t.update(udp(C, S, 5000, 53, 0.0))
    t.update(udp(S, C, 53, 5000, 25.0))               # established now: 300 s from 25
    t.update(udp("10.9.9.9", S, 1, 2, 200.0))
    assert f not in ended
    t.update(udp("10.9.9.9", S, 1, 2, 326.0))
    assert f in ended


def test_closed_tcp_flow_uses_the_closed_timeout() -> None:
    t, ended = table({"timeouts": {"tcp": {"new": 60, "established": 600, "closed": 10}}})
    f = handshake(t, 0.0)
    t.update(tcp(C, S, 40000, 80, "R", 1.0, seq=1001))
    assert f.tcp_state == "closed" and f.state == "closed"
    t.update(udp("10.9.9.9", S, 1, 2, 12.0))
    assert ended == [f] and f.end_reason == "timeout"


def test_cap_evicts_the_longest_idle_flow_first() -> None:
    t, ended = table({"max-flows": 3})
    a = t.update(udp("10.1.0.1", S, 1, 53, 1.0))
    b = t.update(udp("10.1.0.2", S, 1, 53, 2.0))
    c = t.update(udp("10.1.0.3", S, 1, 53, 3.0))
    t.update(udp("10.1.0.1", S, 1, 53, 4.0))          # a is busy again: b is now the longest idle
    d = t.update(udp("10.1.0.4", S, 1, 53, 5.0))
    assert ended == [b] and b.end_reason == "forced"
    assert ended.reasons == ["forced"]     # what on_end saw
    assert len(t) == 3 and t.stats()["flow.evicted"] == 1
    assert {a, c, d}.isdisjoint(ended)


def test_memory_stays_bounded_with_many_one_packet_flows() -> None:
    import struct

    from netsentry.decode.packet import Packet
    cap = 1000
    t, ended = table({"max-flows": cap})
    proto_pkt = udp(C, S, 1, 2, 0.0)
    frame = proto_pkt.data
    n = 200_000
    decode = __import__("netsentry.decode", fromlist=["Decoder"]).Decoder().decode
    for i in range(n):
        # distinct source address and port per packet, everything else identical
        data = frame[:26] + struct.pack("!I", 0x0A000000 + i) + frame[30:34] + struct.pack("!H", i & 0xFFFF) \
            + frame[36:]
        pkt: Packet = decode(data, 1)
        pkt.ts = i * 0.0001
        t.update(pkt)
        if i % 50_000 == 0:
            assert len(t) <= cap
    s = t.stats()
    live = s["flow.active"]
    assert s["flow.total"] == n and cap - 64 <= live <= cap    # evictions come in small batches
    assert s["flow.evicted"] == n - live == len(ended)
    # the table's own structures hold only live flows
    # one entry per flow (its client's key) compiled, two (both keys) pure
    assert t.key_entries() == live * keys_per_flow()
    assert sum(len(b) for b in t._wheel.values()) == live


def test_flush_ends_everything_with_the_reason() -> None:
    t, ended = table()
    f1 = t.update(udp(C, S, 1, 2, 1.0))
    f2 = handshake(t, 2.0)
    t.flush("shutdown")
    assert ended == [f1, f2]
    assert all(f.end_reason == "shutdown" for f in ended)
    assert ended.reasons == ["shutdown", "shutdown"]
    assert t.stats()["flow.active"] == 0 and t.stats()["flow.shutdown"] == 2
    assert t.update(udp(C, S, 1, 2, 3.0)) is not f1


@pytest.mark.parametrize("cfg,key", [
    ({"max-flows": 0}, "flow.max-flows"),
    ({"max-flows": "lots"}, "flow.max-flows"),
    ({"midstream": "yes"}, "stream.midstream"),
    ({"timeouts": {"sctp": {"new": 1}}}, "flow.timeouts.sctp"),
    ({"timeouts": {"tcp": {"new": -1}}}, "flow.timeouts.tcp.new"),
    ({"timeouts": {"udp": {"bypassed": 1}}}, "flow.timeouts.udp.bypassed"),
])
def test_config_errors_name_the_key(cfg: dict, key: str) -> None:
    with pytest.raises(FlowConfigError, match=key.replace(".", r"\.")):
        FlowTable(cfg, lambda f: None)


def test_refiled_flow_ends_once_and_flow_id_is_the_documented_function() -> None:
    """A closing TCP flow is refiled under its shorter timeout and leaves a stale wheel
    entry behind: flush (and expiry) must still end it exactly once."""
    t, ended = table({"timeouts": {"tcp": {"new": 60, "established": 600, "closed": 10}}})
    f = handshake(t, 0.0)
    t.update(tcp(C, S, 40000, 80, "R", 1.0, seq=1001))       # closed: refiled from ~601 s to ~11 s
    g = handshake(t, 2.0, cport=40001)
    t.flush("shutdown")
    assert ended == [f, g] and ended.reasons == ["shutdown", "shutdown"]
    assert f.flow_id == flow_id_for(f.key, 6, 0.0) and g.flow_id == flow_id_for(g.key, 6, 2.0)
    t2, ended2 = table({"timeouts": {"tcp": {"new": 60, "established": 600, "closed": 10}}})
    h = handshake(t2, 0.0)
    t2.update(tcp(C, S, 40000, 80, "R", 1.0, seq=1001))
    t2.update(udp("10.9.9.9", S, 1, 2, 700.0))               # past both deadlines
    assert ended2 == [h] and h.end_reason == "timeout" and t2.stats()["flow.timeout"] == 1


def test_a_flow_made_after_a_flush_still_times_out_and_is_flushed() -> None:
    """flush empties the timer wheel; a flow created right after, in the second and
    timeout class of the last flow filed before it, must land in a live bucket (not
    the one the flush dropped) so that it expires and a second flush ends it."""
    t, ended = table({"timeouts": {"udp": {"new": 5, "established": 5}}})
    t.update(udp(C, S, 1, 2, 1.0))
    t.flush("shutdown")
    g = t.update(udp(C, S, 3, 4, 1.0))            # same second, same class as the flushed one
    t.update(udp(C, S, 5, 6, 20.0))               # packet time passes g's deadline
    assert ended[-1] is g and g.end_reason == "timeout"
    t.flush("shutdown")
    assert len(t) == 0 and ended.reasons == ["shutdown", "timeout", "shutdown"]


def test_flows_filed_together_share_one_timeout_slot_object() -> None:
    """The timer-wheel slot (an int near 2**35, 32 bytes) costs no object per flow:
    pure Python, it is one object per bucket; compiled, a C field of the record
    (test_flow_memory.py's bound counts on it)."""
    t, _ = table()
    a = t.update(udp(C, S, 40000, 5353, 1.0))
    b = t.update(udp("10.0.0.3", S, 40001, 5353, 1.2))
    assert a is not b and a.timeout_slot == b.timeout_slot
    if not flow_module_compiled():
        assert a.timeout_slot is b.timeout_slot


def test_flush_frees_each_flow_once_it_has_ended() -> None:
    """The wheel lets go of a bucket before its flows end, so what on_end attaches to
    a flow (EVE's per-flow texts) is freed flow by flow during a flush, not kept for all."""
    import gc
    import weakref
    alive: list[int] = []
    refs: list[weakref.ref] = []
    t = FlowTable({}, lambda f: alive.append(sum(r() is not None for r in refs)))
    for i in range(20):
        refs.append(weakref.ref(payload := _Tag()))
        f = t.update(udp(C, S, 1000 + i, 53, 1.0 + i))
        f.eve = payload
        del payload, f
    gc.collect()
    t.flush("shutdown")
    # the earlier buckets' flows (and their eve objects) are gone before the last ones end
    assert alive[0] == 20 and alive[-1] < 20


class _Tag:
    """A weak-referenceable stand-in for an output's per-flow object."""


def test_flush_lets_go_of_every_key_and_the_table_works_after() -> None:
    """The flush lets go of every key at once (the C index swept, the dicts cleared)
    before it ends the flows: each flow of every key kind (indexed IPv4 TCP/UDP, a
    VLAN-tagged one, IPv6, ICMP) still ends exactly once, in wheel order, and both
    directions of every 5-tuple make a new flow afterwards, enough of them to grow
    the emptied index again."""
    t, ended = table()
    live = [t.update(udp(f"10.1.{i >> 8}.{i & 255}", S, 1000 + i, 53, 1.0 + i * 1e-3)) for i in range(900)]
    live.append(handshake(t, 2.0))
    live.append(t.update(tcp(C, S, 40001, 80, "S", 3.0, vlan=7)))
    live.append(t.update(udp6("2001:db8::1", "2001:db8::2", 5000, 53, 4.0)))
    live.append(t.update(icmp(C, S, 8, 5.0)))
    assert len(set(map(id, live))) == len(live) == len(t)
    t.flush("shutdown")
    assert len(ended) == len(live) and set(map(id, ended)) == set(map(id, live))
    assert ended.reasons == ["shutdown"] * len(live)
    assert len(t) == 0 and t.key_entries() == 0 and t.stats()["flow.shutdown"] == len(live)
    again = [t.update(udp(S, f"10.1.{i >> 8}.{i & 255}", 53, 1000 + i, 10.0 + i * 1e-3)) for i in range(2000)]
    assert not set(map(id, again)) & set(map(id, live)) and len(set(map(id, again))) == 2000
    back = udp("10.1.0.5", S, 1005, 53, 20.0)
    assert t.update(back) is again[5] and back.to_server is False
    assert len(t) == 2000 and t.key_entries() == 2000 * keys_per_flow()


@pytest.mark.parametrize("make", [
    lambda ts: udp(C, S, 5000, 53, ts),
    lambda ts: udp("192.168.200.17", "8.8.4.4", 65535, 1, ts),
    lambda ts: tcp(C, S, 40000, 80, "S", ts),
    lambda ts: udp6("2001:db8::1", "2001:db8::ff:2", 1234, 53, ts),
    lambda ts: icmp(C, S, 8, ts),
    lambda ts: tcp(C, S, 40000, 80, "S", ts, vlan=7),
])
@pytest.mark.parametrize("ts", [0.0, 0.000001, 1.5, 1700000000.123456, 1700000000.999999, 4102444800.5])
def test_flow_id_is_flow_id_for_of_key_proto_and_start(make, ts: float) -> None:  # type: ignore[no-untyped-def]
    """Compiled, a flow's id is computed in C from its endpoints (flow.py `_flow_id_c`,
    no key bytes built); it must be the documented function's value for every key shape
    the table files (IPv4 in the C index, IPv6, ICMP) and start time."""
    t, _ = table()
    f = t.update(make(ts))
    assert f.flow_id == flow_id_for(f.key, f.proto, f.start)
    assert 0 < f.flow_id < 2 ** 63
