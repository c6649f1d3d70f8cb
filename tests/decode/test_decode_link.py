"""Link layers: every supported pcap link type reaches the same IP fields scapy put there."""

from __future__ import annotations

import pytest
from decode_frames import DST4, DST6, ETHER, SRC4, SRC6, decode, sample_frames
from scapy.all import IP, UDP, CookedLinux, Dot1Q, IPv6, raw  # type: ignore[import-untyped]

from netsentry.decode import Decoder


@pytest.mark.parametrize("name,frame,linktype", sample_frames(), ids=[n for n, _, _ in sample_frames()])
def test_every_path_decodes_addresses(name: str, frame: bytes, linktype: int) -> None:
    pkt = decode(frame, linktype)
    assert pkt.ip_version in (4, 6)
    if name.startswith("gre"):
        assert pkt.tunnel == (bytes([1, 1, 1, 1]), bytes([2, 2, 2, 2]), 47)
    expected = (SRC4, DST4) if pkt.ip_version == 4 else (SRC6, DST6)
    if name == "eth-ipv4-icmp-unreach":
        expected = (DST4, SRC4)
    assert (pkt.src_ip, pkt.dst_ip) == expected
    assert pkt.linktype == linktype
    assert not pkt.events or name == "eth-ipv6-exthdrs"


def test_vlan_ids_outermost_first_and_counted() -> None:
    d = Decoder()
    qinq = next(f for n, f, _ in sample_frames() if n == "qinq")
    pkt = d.decode(qinq, 1)
    assert pkt.vlan == (10, 20)
    assert pkt.proto == 6
    s = d.stats()
    assert s["decoder.vlan"] == 2 and s["decoder.vlan_qinq"] == 1 and s["decoder.ethernet"] == 1


def test_vlan_too_many_layers() -> None:
    frame = raw(ETHER / Dot1Q(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / Dot1Q(vlan=4) / IP() / UDP())
    pkt = decode(frame)
    assert pkt.vlan == (1, 2, 3)
    assert pkt.events == ["vlan.too_many_layers"]
    assert pkt.ip_version == 0


@pytest.mark.parametrize("frame,linktype,event", [
    (b"\x00" * 13, 1, "ethernet.pkt_too_small"),
    (raw(ETHER / Dot1Q(vlan=5))[:16], 1, "vlan.header_too_small"),
    (b"\x00" * 15, 113, "sll.pkt_too_small"),
    (b"\x00" * 19, 276, "sll.pkt_too_small"),
    (b"\x02\x00", 0, "ltnull.pkt_too_small"),
    (b"\x07\x00\x00\x00" + raw(IP() / UDP()), 0, "ltnull.unsupported_type"),
    (b"\x55" + b"\x00" * 30, 101, "ipraw.invalid_ip_version"),
    (b"\x0f\x00\x08", 104, "chdlc.pkt_too_small"),
])
def test_link_events(frame: bytes, linktype: int, event: str) -> None:
    d = Decoder()
    pkt = d.decode(frame, linktype)
    assert pkt.events == [event]
    assert d.stats()["decoder.event." + event] == 1
    assert d.stats()["decoder.invalid"] == 1


def test_null_accepts_both_byte_orders() -> None:
    ip = raw(IP(src=SRC4, dst=DST4) / UDP(sport=1, dport=2))
    little = decode(b"\x02\x00\x00\x00" + ip, 0)
    big = decode(b"\x00\x00\x00\x02" + ip, 0)
    assert little.src_ip == big.src_ip == SRC4


def test_cooked_offsets() -> None:
    pkt = decode(raw(CookedLinux(proto=0x0800) / IP(src=SRC4, dst=DST4) / UDP(sport=9, dport=10) / b"abc"), 113)
    assert pkt.ip_off == 16 and pkt.l4_off == 36
    assert pkt.payload == b"abc"


def test_unknown_linktype_is_counted_not_raised() -> None:
    d = Decoder()
    pkt = d.decode(b"\x45" * 40, 9999)
    assert pkt.ip_version == 0
    assert d.stats()["decoder.pkts"] == 1


def test_chdlc_counted_and_ipv6_inside() -> None:
    d = Decoder()
    pkt = d.decode(b"\x8f\x00\x86\xdd" + raw(IPv6(src=SRC6, dst=DST6) / UDP(sport=5, dport=6) / b"z"), 104)
    assert (pkt.src_ip, pkt.dst_ip, pkt.dp, pkt.payload) == (SRC6, DST6, 6, b"z")
    assert d.stats()["decoder.chdlc"] == 1
