"""Rule groups: a packet's group holds exactly the rules its protocol and ports allow."""

from __future__ import annotations

import random

import pytest

from scapy.layers.inet import IP
from scapy.layers.l2 import Ether

from netsentry.decode import Packet
from netsentry.detect.grouping import GroupIndex

from detect_helpers import Detect, icmp, tcp, udp

RULES = """\
alert tcp any any -> any any (content:"aaa"; sid:1;)
alert tcp any any -> any 80 (content:"bbb"; sid:2;)
alert tcp any 80 -> any any (content:"ccc"; sid:3;)
alert tcp any any -> any [443,8000:8100] (content:"ddd"; sid:4;)
alert tcp any 1024: -> any !22 (content:"eee"; sid:5;)
alert tcp any 53 <> any 5353 (content:"fff"; sid:6;)
alert udp any any -> any 53 (content:"ggg"; sid:7;)
alert udp any 53 -> any any (sid:8;)
alert icmp any any -> any any (content:"hhh"; sid:9;)
alert ip any any -> any any (content:"iii"; sid:10;)
alert tcp-pkt any any -> any 8080 (content:"jjj"; sid:11;)
alert ip any any -> any any (ttl:3; sid:12;)
"""


def could_match(sig, proto: int, sp: int, dp: int) -> bool:
    protos = sig.ip_protos
    if protos is not None and proto not in protos:
        return False
    if sig.sp.contains(sp) and sig.dp.contains(dp):
        return True
    return sig.bidirectional and sig.sp.contains(dp) and sig.dp.contains(sp)


def test_group_members_equal_brute_force(detect: Detect) -> None:
    eng = detect.engine(RULES)
    index: GroupIndex = eng.index
    rng = random.Random(3)
    interesting = [0, 1, 21, 22, 23, 52, 53, 54, 79, 80, 81, 443, 1023, 1024, 5353, 7999, 8000, 8080, 8100,
                   8101, 65535]
    for _ in range(3000):
        proto = rng.choice([6, 17, 1, 58, 47])
        sp = rng.choice(interesting) if rng.random() < 0.7 else rng.randrange(65536)
        dp = rng.choice(interesting) if rng.random() < 0.7 else rng.randrange(65536)
        group = index.lookup(proto, sp, dp)
        want = {n for n, s in enumerate(eng.sigs) if could_match(s, proto, sp, dp)}
        assert set(group.members) == want, (proto, sp, dp)


def test_ports_with_the_same_rules_share_one_port_class_and_group(detect: Detect) -> None:
    """Elementary port intervals covered by the same rules are one class: a new port pair in
    an already seen class costs no member-set computation (ET Open on real traffic)."""
    eng = detect.engine(RULES)
    b = eng.index.buckets[6]
    assert len(b.fwd_dp) < len(b.dp_starts)
    # dp 81 and 442 fall in different intervals (80 and 443 cut between them) but the same rules
    assert b.dp_of[81] == b.dp_of[442] and b.dp_of[81] != b.dp_of[80]
    assert eng.index.lookup(6, 40000, 81) is eng.index.lookup(6, 40000, 442)
    assert eng.index.lookup(6, 40000, 81) is not eng.index.lookup(6, 40000, 80)


def test_rules_without_fast_pattern_are_always_checked_and_others_prefiltered(detect: Detect) -> None:
    eng = detect.engine(RULES)
    g = eng.index.lookup(17, 53, 40000)      # udp from port 53: sid 8 (no content), 10 (ip), 12 (ip, ttl)
    sids = {eng.sigs[n].sid for n in g.always}
    assert sids == {8, 12}
    assert {eng.sigs[n].sid for pid in range(len(g.owners)) for n in g.owners[pid]} == {10}


def test_packet_meets_only_its_groups_rules(detect: Detect) -> None:
    frames = [
        tcp("10.0.0.1", "10.0.0.2", 40000, 80, b"aaa bbb ccc ddd eee ggg iii"),   # 1, 2, 5, 10
        tcp("10.0.0.2", "10.0.0.1", 80, 40000, b"aaa bbb ccc eee iii"),           # 1, 3, 10 (5 needs sp >= 1024)
        udp("10.0.0.1", "10.0.0.3", 40001, 53, b"ggg bbb iii"),                   # 7, 10
        tcp("10.0.0.1", "10.0.0.4", 5353, 53, b"fff eee"),                        # 6 (<> reversed), 5
    ]
    run = detect.run(RULES, frames)
    assert sorted(run.sids_at(1)) == [1, 2, 5, 10]
    assert sorted(run.sids_at(2)) == [1, 3, 10]
    assert sorted(run.sids_at(3)) == [7, 10]
    assert sorted(run.sids_at(4)) == [5, 6]


def test_flow_caches_one_group_per_direction(detect: Detect) -> None:
    frames = [tcp("10.0.0.1", "10.0.0.2", 40000, 80, b"bbb"), tcp("10.0.0.2", "10.0.0.1", 80, 40000, b"ccc")]
    run = detect.run(RULES, frames)
    flow = run.packets[0].flow
    assert flow is run.packets[1].flow and flow is not None
    to_client, to_server = flow.detect[:2]
    sid = lambda g: {run.engine.sigs[n].sid for n in g.members}  # noqa: E731
    assert 2 in sid(to_server) and 3 not in sid(to_server)
    assert 3 in sid(to_client) and 2 not in sid(to_client)
    assert run.sids() == [2, 3]


def test_packet_without_flow_uses_its_own_ports(detect: Detect) -> None:
    eng = detect.engine(RULES)
    pkt = Packet()
    pkt.ip_version, pkt.proto, pkt.sp, pkt.dp = 4, 6, 1234, 80
    pkt.src, pkt.dst = b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02"
    pkt.data = b"bbb"
    pkt.payload_off, pkt.payload_len = 0, 3
    events = eng.inspect(pkt, None)
    assert [e.alert.signature_id for e in events] == [2]


def test_shared_bucket_database_filters_hits_to_the_group(detect: Detect) -> None:
    # more port intervals than warm() compiles one database each for: the bucket's
    # rules share one database and each group keeps only its own rules' hits
    lines = [f'alert tcp any any -> any {1000 + 2 * i} (content:"pat"; sid:{i + 1};)' for i in range(20)]
    lines += [f'alert tcp any {3000 + 2 * i} -> any any (content:"pat"; sid:{i + 51};)' for i in range(20)]
    lines.append('alert tcp any any -> any any (content:"pat"; sid:100;)')
    eng = detect.engine("\n".join(lines) + "\n")
    shared = eng.index._shared.get(6)
    assert shared is not None
    run = detect.run("\n".join(lines) + "\n", [tcp("10.0.0.1", "10.0.0.2", 40000, 1004, b"a pat"),
                                                tcp("10.0.0.1", "10.0.0.2", 40000, 1005, b"a pat")])
    assert sorted(run.sids_at(1)) == [3, 100]
    assert run.sids_at(2) == [100]
    group = run.packets[0].flow.detect[1]
    assert group.prefilter is run.engine.index._shared[6].prefilter and group.keep is not None



@pytest.mark.parametrize("any_port_content", [True, False])
def test_port_groups_over_the_shared_database_have_the_facts_of_a_full_pass(detect: Detect,
                                                                          any_port_content: bool) -> None:
    """A port group built from the bucket's any-port facts plus its port-specific rules
    (the shortcut for buckets with a shared database) has exactly the members, candidate
    lists, stream flag and first-packet candidates of a group built by a pass over every
    member (the reference path, used for small buckets)."""
    from netsentry.detect.grouping import Group
    lines = [f'alert tcp any any -> any {1000 + 2 * i} (content:"p{i}"; sid:{i + 1};)' for i in range(20)]
    lines += [f'alert tcp any {3000 + 2 * i} -> any any (flags:S; sid:{i + 51};)' for i in range(20)]
    lines += [f'alert tcp any {4000 + i} <> any 7000 (content:"b{i}"; sid:{i + 81};)' for i in range(5)]
    lines += [f'alert tcp-pkt any any -> any {5000 + i} (dsize:>{i}; sid:{i + 91};)' for i in range(5)]
    if any_port_content:      # else no any-port rule is stream-capable: only some groups are
        lines.append('alert tcp any any -> any any (content:"pat"; sid:100;)')
    lines += ['alert tcp any any -> any any (flags:F; sid:101;)',
              'alert tcp any any -> any any (msg:"no content"; sid:102;)']
    # ip-only rules (addresses only) over many networks: indexed, and on the first packet only
    lines += [f'alert ip 10.{i}.0.0/16 any -> any any (msg:"rep"; sid:{200 + i};)' for i in range(20)]
    eng = detect.engine("\n".join(lines) + "\n")
    index = eng.index
    b = index.buckets[6]
    assert index._shared.get(6) is not None
    checked = 0
    streams = set()
    for dpi in range(len(b.fwd_dp)):
        for spi in range(len(b.fwd_sp)):
            g = index._build(b, dpi, spi)
            if g.keep is None:
                continue         # the shared group itself (every rule of the bucket)
            ref = Group(b.members(dpi, spi), index.sigs, index.backend, index.once_per_direction,
                        None, {}, index._fps)
            assert g.members == ref.members
            assert g.always == ref.always and g.always_later == ref.always_later
            assert g.ip_only == ref.ip_only and g.has_stream == ref.has_stream
            streams.add(g.has_stream)
            assert g.later_by_flags == ref.later_by_flags
            for src in (bytes([10, 3, 1, 1]), bytes([10, 19, 0, 9]), bytes([192, 168, 0, 1])):
                assert g.first_candidates(src, bytes([10, 5, 0, 1])) == ref.first_candidates(
                    src, bytes([10, 5, 0, 1]))
                # asked again: the remembered answer is the same
                assert g.first_candidates(src, bytes([10, 5, 0, 1])) == ref.first_candidates(
                    src, bytes([10, 5, 0, 1]))
            checked += 1
    assert checked > 5
    assert streams == ({True} if any_port_content else {True, False})



def test_first_packet_candidates_memo_is_bounded_and_answers_the_same(detect: Detect, monkeypatch) -> None:
    """The remembered first-packet candidates are one bounded memo for all groups of the
    index: past the bound it starts over, and every answer equals a fresh computation."""
    from netsentry.detect import grouping
    monkeypatch.setattr(grouping, "FIRST_CANDIDATES_MEMO", 4)
    lines = [f'alert ip 10.{i}.0.0/16 any -> any any (msg:"rep"; sid:{200 + i};)' for i in range(20)]
    lines.append('alert tcp any any -> any 80 (content:"x"; sid:1;)')
    eng = detect.engine("\n".join(lines) + "\n")
    index = eng.index
    groups = [index.lookup(6, 40000, 80), index.lookup(6, 40000, 81)]
    assert groups[0] is not groups[1] and groups[0]._first is groups[1]._first is index._first_memo
    for _ in range(2):
        for i in range(10):
            src = bytes([10, i, 1, 1])
            for g in groups:
                want = tuple(sorted(set(g.always_later) | {n for n in g.always
                                                           if eng.sigs[n].src.contains(src)}))
                assert g.first_candidates(src, bytes([192, 168, 0, 1])) == want
                assert len(index._first_memo) <= 4


FLAG_RULES = """\
alert tcp any any -> any any (msg:"fin scan"; flow:stateless; flags:F,12; sid:21;)
alert tcp any any -> any any (msg:"syn-fin"; flow:stateless; flags:SF,12; sid:22;)
alert tcp any any -> any any (msg:"null"; flow:stateless; flags:0; sid:23;)
alert tcp any any -> any any (msg:"any flags"; flow:stateless; dsize:0; sid:24;)
alert tcp any any -> any any (msg:"push or urg"; flags:*PU; sid:25;)
"""


def test_flags_prefilter_keeps_exactly_the_rules_whose_flags_can_match(detect: Detect) -> None:
    eng = detect.engine(FLAG_RULES)
    g = eng.index.lookup(6, 40000, 80)
    table = g.later_by_flags
    assert table is not None
    brute = {}
    for v in range(256):
        pkt = Packet()
        pkt.proto, pkt.tcp_flags = 6, v
        # the flags check is the first packet check of rules 21-23 and 25
        brute[v] = {eng.sigs[n].sid for n in g.always_later
                    if eng.sigs[n].tcp_flags_ok is None or eng.sigs[n].packet_checks[-1](pkt, None)}
    for v in range(256):
        assert {eng.sigs[n].sid for n in table[v]} == brute[v], v
    assert {eng.sigs[n].sid for n in table[0x10]} == {24}          # a plain ACK
    assert {eng.sigs[n].sid for n in table[0x01]} == {21, 24}      # FIN alone
    assert {eng.sigs[n].sid for n in table[0x00]} == {23, 24}


def test_flags_prefilter_alerts_as_before(detect: Detect) -> None:
    frames = [tcp("10.0.0.1", "10.0.0.2", 40000, 80, flags="S", seq=1, ack=0),
              tcp("10.0.0.1", "10.0.0.2", 40000, 80, flags="F", seq=2, ack=0),
              tcp("10.0.0.1", "10.0.0.2", 40000, 80, flags="", seq=2, ack=0),
              tcp("10.0.0.1", "10.0.0.2", 40000, 80, flags="SF", seq=2, ack=0),
              tcp("10.0.0.1", "10.0.0.2", 40000, 80, b"x", flags="PA", seq=2, ack=1)]
    run = detect.run(FLAG_RULES, frames)
    assert run.sids_at(1) == [24]
    assert run.sids_at(2) == [21, 24]
    assert run.sids_at(3) == [23, 24]
    assert run.sids_at(4) == [22, 24]
    assert run.sids_at(5) == [25]


IP_PROTO_RULES = """\
alert ip any any -> any any (msg:"6in4"; ip_proto:41; sid:1;)
alert ip any any -> any any (msg:"not tcp"; ip_proto:!6; sid:2;)
alert ip any any -> any any (msg:"icmp or hopopt"; ip_proto:<2; sid:3;)
alert ip any any -> any any (msg:"proto 99"; ip_proto:99; sid:4;)
alert tcp any any -> any any (msg:"tcp"; ip_proto:41; sid:5;)
"""


def test_ip_proto_narrows_an_ip_rule_to_its_protocols_groups(detect: Detect) -> None:
    # Suricata's ip_proto narrows the rule's protocols: ET Open's `alert ip ... ip_proto:41`
    # must not be verified on every TCP/UDP packet
    eng = detect.engine(IP_PROTO_RULES)
    sid = lambda g: {eng.sigs[n].sid for n in g.members}  # noqa: E731
    assert sid(eng.index.lookup(6, 40000, 80)) == {2, 5}          # !6 stays on every protocol
    assert sid(eng.index.lookup(17, 40000, 53)) == {2}
    assert sid(eng.index.lookup(41, 0, 0)) == {1, 2}
    assert sid(eng.index.lookup(1, 0, 0)) == {2, 3}
    assert sid(eng.index.lookup(99, 0, 0)) == {2, 4}
    assert 1 not in sid(eng.index.lookup(58, 0, 0))


def test_ip_proto_rules_alert_on_exactly_their_protocols(detect: Detect) -> None:
    frames = [
        tcp("10.0.0.1", "10.0.0.2", 40000, 80, b"zz"),
        udp("10.0.0.1", "10.0.0.2", 40000, 53, b"zz"),
        icmp("10.0.0.1", "10.0.0.2", b"zz"),
        # 6in4 whose inner packet does not decode (a good one is inspected as its inner
        # IPv6 packet here, where Suricata also inspects the outer one: not a grouping matter)
        bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.9", proto=41) / b"\x00\x01"),
        bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.9", proto=99) / b"xxzzxx"),
    ]
    run = detect.run(IP_PROTO_RULES, frames)
    assert sorted(run.sids_at(1)) == []
    assert sorted(run.sids_at(2)) == [2]
    assert sorted(run.sids_at(3)) == [2, 3]
    assert sorted(run.sids_at(4)) == [1, 2]
    assert sorted(run.sids_at(5)) == [2, 4]
