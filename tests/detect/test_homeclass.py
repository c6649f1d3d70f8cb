"""Home classes (homeclass.py): the bit test gives exactly `Signature.header_match`'s answer
for every rule of a packet's group, and alerts are what they were with header_match alone."""

from __future__ import annotations

import ipaddress
import random

import pytest

from netsentry.config import load_defaults
from netsentry.decode import Packet
from netsentry.detect.homeclass import ALL_CLASSES, NEEDS_HEADER, HomeClasses

from detect_helpers import Detect, handshake, tcp, udp

RULES = """\
alert tcp $EXTERNAL_NET any -> $HOME_NET any (content:"inbound"; sid:1;)
alert tcp $HOME_NET any -> $EXTERNAL_NET 80 (content:"outbound"; sid:2;)
alert tcp any any -> $HOME_NET 443 (content:"tohome"; sid:3;)
alert tcp $HOME_NET any -> any any (content:"fromhome"; sid:4;)
alert tcp $EXTERNAL_NET 80 <> $HOME_NET any (content:"both"; sid:5;)
alert tcp [10.0.0.0/8,!10.9.0.0/16] any -> $HOME_NET any (content:"listed"; sid:6;)
alert tcp any any -> any any (content:"everywhere"; dsize:>1; sid:7;)
alert udp $EXTERNAL_NET 53 -> $HOME_NET any (content:"dns"; sid:8;)
alert tcp ![$HOME_NET] any -> $HOME_NET 1024: (content:"negated"; sid:9;)
alert ip $HOME_NET any -> $EXTERNAL_NET any (ttl:64; sid:10;)
alert tcp $HOME_NET any -> $HOME_NET any (flags:S; sid:11;)
"""

ADDRS = ["10.0.0.5", "10.9.1.1", "192.168.1.20", "172.16.3.4", "8.8.8.8", "203.0.113.9", "172.32.0.1"]
ADDRS6 = ["fe80::1", "2001:db8::5"]


def test_masks_name_the_classes_each_rule_accepts(detect: Detect) -> None:
    eng = detect.engine(RULES, load_defaults())
    by_sid = {s.sid: m for s, m in zip(eng.sigs, eng._amask)}
    # class = src_in_home << 1 | dst_in_home; bit c of the mask set when class c passes
    assert by_sid[1] == 1 << 0b01                 # external -> home
    assert by_sid[2] == 1 << 0b10                 # home -> external
    assert by_sid[3] == (1 << 0b01) | (1 << 0b11)  # anyone -> home
    assert by_sid[4] == (1 << 0b10) | (1 << 0b11)  # home -> anyone
    assert by_sid[5] == NEEDS_HEADER               # two-way: header_match
    assert by_sid[6] == NEEDS_HEADER               # a list of its own: header_match
    assert by_sid[7] == ALL_CLASSES
    assert by_sid[9] == 1 << 0b01                 # ![$HOME_NET] is $EXTERNAL_NET


@pytest.mark.parametrize("seed", [1, 2])
def test_bit_test_equals_header_match_for_every_group_member(detect: Detect, seed: int) -> None:
    config = load_defaults()
    eng = detect.engine(RULES, config)
    homes = HomeClasses(config)
    rng = random.Random(seed)
    checked = 0
    for _ in range(400):
        pkt = Packet()
        pool = ADDRS6 if rng.random() < 0.2 else ADDRS
        pkt.ip_version = 6 if pool is ADDRS6 else 4
        pkt.src = ipaddress.ip_address(rng.choice(pool)).packed
        pkt.dst = ipaddress.ip_address(rng.choice(pool)).packed
        pkt.proto = rng.choice((6, 17))
        pkt.sp, pkt.dp = rng.choice((80, 53, 443, 2000, 40000)), rng.choice((80, 53, 443, 2000, 40000))
        here, _back = homes.home_bits(pkt.src, pkt.dst)
        group = eng.index.lookup(pkt.proto, pkt.sp, pkt.dp)
        for num in group.members:
            m = eng._amask[num]
            if m == NEEDS_HEADER:
                continue
            s = eng.sigs[num]
            assert bool(m & here) == s.header_match(pkt, None), (s.sid, pkt.src, pkt.dst, pkt.sp, pkt.dp)
            checked += 1
    assert checked > 500


def test_reverse_direction_gets_the_mirrored_class() -> None:
    homes = HomeClasses(load_defaults())
    home, ext = bytes([10, 0, 0, 1]), bytes([8, 8, 8, 8])
    assert homes.home_bits(ext, home) == (1 << 0b01, 1 << 0b10)
    assert homes.home_bits(home, home) == (1 << 0b11, 1 << 0b11)


def test_alerts_follow_the_addresses_both_ways(detect: Detect) -> None:
    """Inbound and outbound flows through the engine: each rule fires only where its
    addresses allow, in either direction of a flow."""
    frames = (handshake("203.0.113.9", "10.0.0.5", 40000, 2000)
              + [tcp("203.0.113.9", "10.0.0.5", 40000, 2000, b"inbound fromhome everywhere", seq=101, ack=501),
                 tcp("10.0.0.5", "203.0.113.9", 2000, 40000, b"inbound fromhome everywhere", seq=501, ack=128)]
              + handshake("10.0.0.5", "203.0.113.9", 40001, 80)
              + [tcp("10.0.0.5", "203.0.113.9", 40001, 80, b"outbound inbound", seq=101, ack=501)]
              + [udp("8.8.8.8", "10.0.0.5", 53, 5000, b"dns"), udp("10.0.0.5", "8.8.8.8", 5000, 53, b"dns")])
    run = detect.run(RULES, frames, load_defaults())
    # (sid 10, ttl:64 from home to outside, fires on every such packet: scapy's TTL is 64)
    assert run.sids_at(4) == [1, 7]        # external -> home: inbound, everywhere
    assert run.sids_at(5) == [4, 7, 10]    # home -> external reply: fromhome, everywhere
    assert run.sids_at(9) == [2, 10]       # home -> external port 80: outbound, not inbound
    assert run.sids_at(10) == [8]          # DNS answer from outside
    assert run.sids_at(11) == [10]         # the query goes home -> external: not sid 8


def test_remembered_answers_equal_the_interval_search(monkeypatch: pytest.MonkeyPatch) -> None:
    """home_bits remembers HOME_NET membership per address: asked again, and after the
    bounded memory was cleared, it answers what the address matcher says."""
    import netsentry.detect.homeclass as hc
    monkeypatch.setattr(hc, "HOME_MEMO", 3)
    homes = HomeClasses(load_defaults())
    addrs = [ipaddress.ip_address(a).packed for a in ADDRS + ADDRS6]
    for _ in range(3):
        for a in addrs:
            for b in addrs:
                s, d = bool(homes.contains(a)), bool(homes.contains(b))
                want = 1 << ((2 if s else 0) | (1 if d else 0)), 1 << ((2 if d else 0) | (1 if s else 0))
                assert homes.home_bits(a, b) == want, (a, b)
                assert len(homes._in_home) <= 3
