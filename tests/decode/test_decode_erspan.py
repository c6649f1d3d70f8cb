"""ERSPAN type II in GRE: the mirrored Ethernet frame is what gets inspected, its VLAN
from the ERSPAN header; other versions and short headers raise Suricata's events."""

from __future__ import annotations

import struct

import pytest
from decode_frames import DST4, SRC4, decode, eth
from scapy.layers.inet import GRE, ICMP, IP
from scapy.layers.l2 import Ether


def erspan(ver_vlan: int, inner: bytes) -> bytes:
    hdr = struct.pack("!HHI", ver_vlan, 0x0001, 0)
    return eth(IP(src="192.0.2.1", dst="192.0.2.2") / GRE(proto=0x88BE, sequence_number=5, seqnum_present=1)
               / (hdr + inner))


MIRRORED = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src=SRC4, dst=DST4) / ICMP(type=8))


def test_type_ii_decodes_the_mirrored_frame() -> None:
    pkt = decode(erspan(0x1000 | 23, MIRRORED))
    assert pkt.vlan == (23,)
    assert pkt.proto == 1 and pkt.icmp_type == 8
    assert pkt.tunnel is not None and pkt.tunnel[2] == 47
    assert pkt.events is None


def test_vlan_zero_adds_no_layer() -> None:
    assert decode(erspan(0x1000, MIRRORED)).vlan == ()


@pytest.mark.parametrize("frame,event", [
    (erspan(0x2000 | 23, MIRRORED), "erspan.unsupported_version"),
    (eth(IP(src="192.0.2.1", dst="192.0.2.2") / GRE(proto=0x88BE) / b"\x10\x17\x00"), "erspan.header_too_small"),
])
def test_events(frame: bytes, event: str) -> None:
    pkt = decode(frame)
    assert event in pkt.events
    assert pkt.icmp_type != 8
