"""Engine behaviour driven with hand-made packets: dedup, misbehaving sources, criticality,
bounded memory, config checks."""

from __future__ import annotations

import pytest
from anomaly_helpers import FlowDriver, addr, config_with, packet

from netsentry.anomaly import AnomalyEngine
from netsentry.config import ConfigError
from netsentry.decode.packet import Packet
from netsentry.flow import Flow

T0 = 1_800_000_000.0


def scan(d: FlowDriver, src: str, dst: str, ports: int, t: float) -> float:
    sp = 50000 + int(t) % 10000          # a new source port per run: new flows, as a scanner's would be
    for p in range(1, ports + 1):
        d.send(packet(src, dst, t, dp=p, sp=sp))
        t += 0.01
    return t


def tick(d: FlowDriver, t: float) -> None:
    d.send(packet("192.168.9.9", "192.168.9.10", t, proto=17, sp=1234, dp=4321))


def test_repeats_are_suppressed_and_counted_in_the_next_alert():
    eng = AnomalyEngine(config_with({"alert-interval": 300}))
    d = FlowDriver(eng)
    t = scan(d, "203.0.113.9", "10.1.1.1", 60, T0)
    for w in range(1, 4):                           # the same scan in the next three 60 s windows
        t = scan(d, "203.0.113.9", "10.1.1.1", 60, T0 + 60 * w + 1)
    tick(d, T0 + 301)
    t = scan(d, "203.0.113.9", "10.1.1.1", 60, T0 + 360 + 1)
    tick(d, t + 2)
    events = d.finish()
    assert [e.extra["netsentry"]["anomaly"]["suppressed"] for e in events] == [0, 3]
    assert eng.stats()["anomaly.suppressed"] == 3
    assert eng.stats()["anomaly.alerts"] == 2


def test_misbehaving_sources_expire_after_block_ttl():
    eng = AnomalyEngine(config_with({"block-ttl": 100}))
    d = FlowDriver(eng)
    t = scan(d, "203.0.113.9", "10.1.1.1", 60, T0)
    tick(d, t + 1)
    assert eng.misbehaving_sources(t + 2) == {addr("203.0.113.9")}
    assert eng.misbehaving_sources(T0 + 200) == set()


def test_critical_asset_tightens_scan_threshold():
    assets = [{"name": "vault", "cidr": "10.1.1.0/24", "criticality": "critical"}]
    for cfg, expected in ((config_with(), 0), (config_with(assets=assets), 1)):
        d = FlowDriver(AnomalyEngine(cfg))
        t = scan(d, "203.0.113.9", "10.1.1.1", 30, T0)     # 30 ports: under 50, over 50 x 0.5
        tick(d, t + 1)
        events = d.finish()
        assert len(events) == expected
        if expected:
            assert events[0].extra["netsentry"]["anomaly"]["threshold"] == 25.0


def test_ignored_sources_are_not_reported():
    cfg = config_with({"ignore-sources": ["203.0.113.0/28"]})
    d = FlowDriver(AnomalyEngine(cfg))
    t = scan(d, "203.0.113.9", "10.1.1.1", 60, T0)
    t = scan(d, "203.0.113.99", "10.1.1.1", 60, t)
    tick(d, t + 1)
    assert [e.extra["netsentry"]["anomaly"]["key"] for e in d.finish()] == ["203.0.113.99>10.1.1.1/tcp"]


def test_packet_flood_counts_every_protocol():
    cfg = config_with({"packet-flood": {"rate": 100.0}})
    d = FlowDriver(AnomalyEngine(cfg))
    for i in range(250):
        d.send(packet("198.51.100.1", "10.2.2.2", T0 + i / 200, proto=47, sp=0, dp=0))
    tick(d, T0 + 3)
    events = d.finish()
    assert [(e.extra["netsentry"]["anomaly"]["detector"], e.extra["netsentry"]["anomaly"]["key"]) for e in events] == [
        ("packet-flood", "10.2.2.2")]
    assert events[0].pkt.proto == 47


def test_tracked_keys_stay_under_the_cap_with_many_sources():
    """A million spoofed sources (10,000x the cap) each opening one flow: every key table
    stays at the cap, and the process's memory stops growing once the tables are full."""
    cap = 100
    eng = AnomalyEngine(config_with({"max-tracked-keys": cap}))
    dst = addr("10.3.3.3")
    pkt = Packet()
    pkt.ip_version, pkt.proto, pkt.tcp_flags, pkt.dst, pkt.dp = 4, 6, 0x02, addr("10.3.3.3"), 80
    inspect = eng.inspect
    tables = eng.ctx.tables + [eng.ctx.baseline.table]
    n = 1_000_000
    rss_at_10pct = 0
    for i in range(n):
        src = (0x0B000000 + i).to_bytes(4, "big")
        pkt.src = src
        pkt.ts = ts = T0 + i * 0.0001                # 10,000 new sources per second of packet time
        flow = Flow(i, None, 6, 4, (), src, dst, 40000, 80, ts)
        flow.pkts_toserver = 1
        inspect(pkt, flow)
        if not i % 50_000:
            assert max(len(t) for t in tables) <= cap
            if i == n // 10:
                rss_at_10pct = _rss_kib()
    eng.flush()
    # bounded memory: the last 900,000 sources cost no lasting memory (allocator noise aside)
    assert _rss_kib() - rss_at_10pct < 16 * 1024
    assert max(len(t) for t in tables) <= cap
    stats = eng.stats()
    assert stats["anomaly.tracked_keys"] <= cap * len(tables)
    assert stats["anomaly.keys_evicted"] > n          # several tables each evicted most sources
    assert stats["anomaly.flows"] == n


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


@pytest.mark.parametrize("override, message", [
    ({"port-scan": {"window": 0}}, "anomaly.port-scan.window: must be greater than 0"),
    ({"udp-flood": {"rate": -1.0}}, "anomaly.udp-flood.rate: must be greater than 0"),
    ({"ignore-sources": ["10.0.0.300/8"]}, "anomaly.ignore-sources[0]: invalid network '10.0.0.300/8'"),
    ({"criticality-factors": {"high": 2.0}}, "anomaly.criticality-factors.high: a factor tightens"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError) as info:
        AnomalyEngine(config_with(override))
    assert message in str(info.value)


def test_ipv6_scan_and_icmpv6_sweep():
    d = FlowDriver(AnomalyEngine(config_with()))
    t = T0
    for p in range(1, 61):
        pkt = packet("203.0.113.1", "10.0.0.1", t, dp=p)
        pkt.ip_version, pkt.src, pkt.dst = 6, addr("2001:db8::bad"), addr("2001:db8:1::10")
        d.send(pkt)
        t += 0.01
    for h in range(1, 81):
        pkt = packet("203.0.113.1", "10.0.0.1", t, proto=58, sp=0, dp=0, icmp_type=128)
        pkt.ip_version, pkt.src, pkt.dst = 6, addr("2001:db8::bad"), addr(f"2001:db8:2::{h:x}")
        d.send(pkt)
        t += 0.01
    tick(d, t + 1)
    keys = [(e.extra["netsentry"]["anomaly"]["key"], e.pkt.ip_version) for e in d.finish()]
    assert keys == [("2001:db8::bad>2001:db8:1::10/tcp", 6), ("2001:db8::bad>*:echo/icmp", 6)]


def test_spike_networks_limit_the_hosts():
    cfg = config_with({"traffic-spike": {"networks": ["10.50.0.0/16"], "min-bytes-per-second": 1e12},
                       "baseline": {"warm-up": 20}})
    d = FlowDriver(AnomalyEngine(cfg))
    for s in range(40):                         # both hosts quiet, then both burst in one bucket
        d.send(packet("192.168.7.7", "10.50.1.1", T0 + s, proto=17, sp=9, dp=9))
    for i in range(3000):
        d.send(packet("192.168.7.7", "10.50.1.1", T0 + 40 + i / 300, proto=17, sp=9, dp=9))
    d.send(packet("192.168.7.7", "10.50.1.1", T0 + 61, proto=17, sp=9, dp=9))
    assert [e.extra["netsentry"]["anomaly"]["key"] for e in d.finish()] == ["10.50.1.1"]


def _burst_keys(cfg) -> list[str]:
    """Two hosts, 192.168.7.7 (in the default HOME_NET) and 203.0.113.9 (not), quiet, then
    both bursting in one bucket: the hosts whose spike is reported."""
    d = FlowDriver(AnomalyEngine(cfg))
    for s in range(40):
        d.send(packet("192.168.7.7", "203.0.113.9", T0 + s, proto=17, sp=9, dp=9))
    for i in range(3000):
        d.send(packet("192.168.7.7", "203.0.113.9", T0 + 40 + i / 300, proto=17, sp=9, dp=9))
    d.send(packet("192.168.7.7", "203.0.113.9", T0 + 61, proto=17, sp=9, dp=9))
    return sorted(e.extra["netsentry"]["anomaly"]["key"] for e in d.finish())


SPIKE_QUICK = {"min-bytes-per-second": 1e12}


def test_spike_scope_home_is_the_default_and_baselines_only_home_net():
    cfg = config_with({"traffic-spike": SPIKE_QUICK, "baseline": {"warm-up": 20}})
    assert _burst_keys(cfg) == ["192.168.7.7"]


def test_spike_scope_all_baselines_every_host():
    cfg = config_with({"traffic-spike": {**SPIKE_QUICK, "scope": "all"}, "baseline": {"warm-up": 20}})
    assert _burst_keys(cfg) == ["192.168.7.7", "203.0.113.9"]


def test_spike_scope_home_follows_the_configured_home_net():
    cfg = config_with({"traffic-spike": SPIKE_QUICK, "baseline": {"warm-up": 20}})
    cfg["vars"]["address-groups"]["HOME_NET"] = "[203.0.113.0/24]"
    assert _burst_keys(cfg) == ["203.0.113.9"]


def test_spike_scope_must_be_home_or_all():
    with pytest.raises(ConfigError, match="traffic-spike.scope"):
        AnomalyEngine(config_with({"traffic-spike": {"scope": "everything"}}))


def test_spike_scope_table_agrees_with_the_address_spec():
    from netsentry.anomaly.settings import load
    from netsentry.anomaly.spike import scope_of
    from netsentry.rules.addresses import AddressParser
    home_spec = "[10.0.0.0/8,172.16.0.0/12,192.168.1.128/25,!10.9.0.0/16,2001:db8::/32]"
    cfg = config_with()
    cfg["vars"]["address-groups"]["HOME_NET"] = home_spec
    scope = scope_of(cfg, load(cfg).sub("traffic-spike"))
    want = AddressParser({}).parse(home_spec).contains
    hosts = ["10.1.2.3", "10.9.1.1", "10.10.0.1", "172.31.255.255", "172.32.0.1", "192.168.1.127",
             "192.168.1.128", "8.8.8.8", "2001:db8::1", "2001:db9::1"]
    got = {h: scope(addr(h)) for h in hosts}
    assert got == {h: want(addr(h)) for h in hosts}
    assert [h for h, v in got.items() if v] == ["10.1.2.3", "10.10.0.1", "172.31.255.255", "192.168.1.128",
                                               "2001:db8::1"]
    assert scope.mask(addr("10.1.2.3"), addr("8.8.8.8")) == 1
    assert scope.mask(addr("8.8.8.8"), addr("192.168.1.200")) == 2
    assert scope.mask(addr("2001:db8::1"), addr("2001:db8::2")) == 3


def test_flow_ended_in_its_first_second_is_counted_then_released():
    """Detectors see new flows once per second; a flow that ends before that (evicted from a
    full flow table) is still counted as a probe, and its half-open SYN is released."""
    eng = AnomalyEngine(config_with({"syn-flood": {"half-open": 5}}))
    d = FlowDriver(eng)
    t = T0
    for p in range(1, 61):
        eng.on_flow_end(d.send(packet("203.0.113.9", "10.1.1.1", t, dp=p, sp=50000)))
        t += 0.01
    tick(d, T0 + 2)
    events = d.finish()
    assert [e.extra["netsentry"]["anomaly"]["key"] for e in events] == ["203.0.113.9>10.1.1.1/tcp"]
    assert eng.stats()["anomaly.flows"] == 61        # and the one of tick()


def test_flow_state_holds_what_was_folded_and_the_first_packet():
    """flow.anomaly is the engine's typed record (anomaly/flowstate.py): after a second
    closes it holds the counters already folded and the last second's deltas (flood top
    talkers read them), the first packet's TCP flags and, for a SYN toward a listening
    port, syn-flood's half-open flag until the handshake completes."""
    from netsentry.anomaly.detector import FLAG_HALF_OPEN
    from netsentry.anomaly.flowstate import FlowState
    eng = AnomalyEngine(config_with({"syn-flood": {"half-open": 5}}))
    d = FlowDriver(eng)
    flow = d.send(packet("203.0.113.9", "10.1.1.1", T0, dp=80, sp=50000, flags=0x02))
    d.send(packet("10.1.1.1", "203.0.113.9", T0 + 0.1, dp=50000, sp=80, flags=0x12))
    d.send(packet("203.0.113.9", "10.1.1.1", T0 + 0.2, dp=80, sp=50000, flags=0x10))
    st = flow.anomaly
    assert isinstance(st, FlowState)
    assert st.first == 0x02 and st.queued == int(T0)
    tick(d, T0 + 1.5)                   # the second closes: the fold and the new-flow hooks run
    assert (st.pts, st.ptc, st.dpts, st.dptc) == (2, 1, 2, 1)
    assert st.flags & FLAG_HALF_OPEN    # no flow-table TCP state here: still half-open
    flow.tcp_state = "established"
    d.send(packet("203.0.113.9", "10.1.1.1", T0 + 1.6, dp=80, sp=50000, flags=0x10))
    tick(d, T0 + 2.5)
    assert (st.pts, st.dpts, st.dptc) == (3, 1, 0)
    assert not st.flags & FLAG_HALF_OPEN    # released when the handshake completed


def test_flow_state_compiled_is_a_small_untracked_record():
    """Compiled, the per-flow record is a C struct the garbage collector never walks (the
    list it replaced was a tracked container per live flow)."""
    import gc
    import sys

    from netsentry import _compiled
    from netsentry.anomaly import flowstate
    if not flowstate.__file__.endswith(".so"):
        pytest.skip(f"flowstate runs its pure-Python source ({_compiled.status()})")
    st = flowstate.FlowState(1, 2)
    assert not gc.is_tracked(st)
    assert sys.getsizeof(st) <= 96


def test_packets_without_a_flow_count_toward_floods():
    """A packet the flow table gave no flow (the capture loop passes None) is counted per
    destination; the typed entry point accepts it on both paths."""
    eng = AnomalyEngine(config_with({"packet-flood": {"rate": 100.0}}))
    events = []
    for i in range(250):
        p = packet("198.51.100.1", "10.2.2.2", T0 + i / 200, proto=47, sp=0, dp=0)
        p.pcap_cnt = i + 1
        events += eng.inspect(p, None) or []
    last = packet("198.51.100.1", "10.2.2.3", T0 + 3, proto=47, sp=0, dp=0)
    last.pcap_cnt = 251
    events += eng.inspect(last, None) or []
    events += eng.flush() or []
    assert [(e.extra["netsentry"]["anomaly"]["detector"], e.extra["netsentry"]["anomaly"]["key"]) for e in events] == [
        ("packet-flood", "10.2.2.2")]
