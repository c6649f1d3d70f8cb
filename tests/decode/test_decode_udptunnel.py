"""VXLAN, Geneve and Teredo: the packet inside the UDP datagram is what gets analysed, the
outer one is kept for EVE's `tunnel`, and a datagram that does not look like the tunnel
stays plain UDP. Both decode paths (the fast path's packets get the tunnel decoders
after it) must agree."""

from __future__ import annotations

import struct

import pytest
from decode_frames import DST4, DST6, ETHER, SRC4, SRC6
from scapy.all import ARP, ICMP, IP, TCP, UDP, Ether, IPv6, raw  # type: ignore[import-untyped]
from scapy.layers.vxlan import VXLAN  # type: ignore[import-untyped]

from netsentry.config import ConfigError
from netsentry.decode import Decoder
from netsentry.decode import udptunnel

OUTER_SRC, OUTER_DST = "172.16.0.1", "172.16.0.2"
INNER_ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
INNER = IP(src=SRC4, dst=DST4) / TCP(sport=40000, dport=80, flags="PA") / b"GET /x"


def outer(port: int, payload: bytes, sport: int = 55555) -> bytes:
    return raw(ETHER / IP(src=OUTER_SRC, dst=OUTER_DST) / UDP(sport=sport, dport=port) / payload)


def vxlan(inner) -> bytes:  # type: ignore[no-untyped-def]
    return outer(4789, raw(VXLAN(vni=42, flags=0x08) / inner))


def geneve(etype: int, inner: bytes, options: bytes = b"") -> bytes:
    hdr = struct.pack("!BBH", len(options) // 4, 0, etype) + b"\x00\x00\x2a\x00"
    return outer(6081, hdr + options + inner)


def decoders(config=None) -> list[Decoder]:  # type: ignore[no-untyped-def]
    """The default decoder (fast path, then the tunnel step) and the layered path alone."""
    fast = Decoder(udp_tunnels=udptunnel.build(config))
    layered = Decoder(udp_tunnels=udptunnel.build(config))
    layered.decode = layered.decode_layered          # type: ignore[method-assign]
    return [fast, layered]


@pytest.mark.parametrize("d", decoders(), ids=["fast", "layered"])
def test_vxlan_inner_ethernet_frame_is_the_packet(d: Decoder) -> None:
    data = vxlan(INNER_ETH / INNER)
    pkt = d.decode(data, 1)
    assert (pkt.src_ip, pkt.dst_ip, pkt.sp, pkt.dp, pkt.proto) == (SRC4, DST4, 40000, 80, 6)
    assert pkt.payload == b"GET /x"
    src, dst, proto, sp, dp, name, inner_off = pkt.tunnel
    assert (proto, sp, dp, name) == (17, 55555, 4789, "vxlan encapsulation")
    assert data[inner_off:] == raw(INNER_ETH / INNER)
    assert d.stats()["decoder.vxlan"] == 1


@pytest.mark.parametrize("d", decoders(), ids=["fast", "layered"])
def test_vxlan_reserved_bits_or_missing_flag_leave_plain_udp(d: Decoder) -> None:
    for hdr in (b"\x00\x00\x00\x00\x00\x00\x2a\x00",     # no I flag
                b"\x08\x00\x00\x01\x00\x00\x2a\x00",     # reserved bits set (strict, as Suricata)
                b"\x08\x00\x00\x00\x00\x00\x2a\x01"):
        pkt = d.decode(outer(4789, hdr + raw(INNER_ETH / INNER)), 1)
        assert pkt.tunnel is None and (pkt.proto, pkt.dp) == (17, 4789)


@pytest.mark.parametrize("d", decoders(), ids=["fast", "layered"])
def test_vxlan_arp_is_the_inner_packet_and_unknown_payload_is_an_event(d: Decoder) -> None:
    """Suricata 9 decodes the ARP frame a VXLAN carries: it is the tunnel's inner packet,
    a non-IP one that the `arp` rule protocol sees (suricata-verify detect-arp-04-vxlan)."""
    from netsentry.decode.arp import is_arp
    arp = d.decode(vxlan(Ether(src="02:00:00:00:00:01", dst="ff:ff:ff:ff:ff:ff") / ARP()), 1)
    assert arp.tunnel is not None and arp.tunnel[5] == "vxlan encapsulation"
    assert is_arp(arp) and (arp.proto, arp.ip_version) == (0, 0)
    assert d.stats()["decoder.arp"] == 1
    odd = d.decode(vxlan(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=0x88B5) / (b"x" * 30)), 1)
    assert "vxlan.unknown_payload_type" in odd.events
    assert d.stats()["decoder.vxlan"] == 2


def test_vxlan_matches_the_destination_port_only_and_follows_the_configured_ports() -> None:
    d = Decoder(udp_tunnels=udptunnel.build(None))
    # VXLAN by destination port only: a reply *from* 4789 is plain UDP
    back = raw(ETHER / IP(src=OUTER_SRC, dst=OUTER_DST) / UDP(sport=4789, dport=5555)
               / raw(VXLAN(vni=1, flags=0x08) / INNER_ETH / INNER))
    assert d.decode(back, 1).tunnel is None
    d = Decoder(udp_tunnels=udptunnel.build({"vxlan": {"ports": "[8472, 4789]"}}))
    assert d.decode(outer(8472, raw(VXLAN(vni=1, flags=0x08) / INNER_ETH / INNER)), 1).proto == 6
    d = Decoder(udp_tunnels=udptunnel.build({"vxlan": {"enabled": False}}))
    assert d.decode(vxlan(INNER_ETH / INNER), 1).tunnel is None
    assert Decoder().decode(vxlan(INNER_ETH / INNER), 1).tunnel is None     # no table: no tunnels


@pytest.mark.parametrize("d", decoders(), ids=["fast", "layered"])
def test_geneve_ethernet_and_ip_payloads_with_options(d: Decoder) -> None:
    option = struct.pack("!HBB", 0x0102, 3, 1) + b"abcd"           # class, type, length 1 word
    pkt = d.decode(geneve(0x6558, raw(INNER_ETH / INNER), option), 1)
    assert (pkt.proto, pkt.dp, pkt.tunnel[5]) == (6, 80, "geneve encapsulation")
    pkt = d.decode(geneve(0x0800, raw(IP(src=SRC4, dst=DST4) / ICMP())), 1)
    assert (pkt.proto, pkt.src_ip, pkt.tunnel[3:5]) == (1, SRC4, (55555, 6081))
    # options that do not fill the declared length: not Geneve
    bad = struct.pack("!HBB", 0x0102, 3, 2) + b"abcd"
    assert d.decode(geneve(0x6558, raw(INNER_ETH / INNER), bad), 1).tunnel is None


@pytest.mark.parametrize("d", decoders(), ids=["fast", "layered"])
def test_teredo_ipv6_with_and_without_origin_indication(d: Decoder) -> None:
    inner6 = raw(IPv6(src=SRC6, dst=DST6) / UDP(sport=1, dport=53) / b"q")
    pkt = d.decode(outer(3544, inner6), 1)
    assert (pkt.ip_version, pkt.src_ip, pkt.dp, pkt.tunnel[5]) == (6, SRC6, 53, "teredo tunnel")
    origin = b"\x00\x00" + b"\x12\x34" + b"\x01\x02\x03\x04"
    pkt = d.decode(outer(3544, origin + inner6, sport=3544), 1)
    assert pkt.ip_version == 6 and pkt.tunnel[6] == 14 + 20 + 8 + 8
    # a length that does not fill the datagram, or a hop limit of 0: not Teredo
    assert d.decode(outer(3544, inner6 + b"x"), 1).tunnel is None
    assert d.decode(outer(3544, raw(IPv6(src=SRC6, dst=DST6, hlim=0) / UDP())), 1).tunnel is None


def test_ports_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match="decoder.vxlan.ports"):
        udptunnel.build({"vxlan": {"ports": "47x"}})
    with pytest.raises(ConfigError, match="decoder.geneve.ports"):
        udptunnel.build({"geneve": {"ports": 70000}})
    with pytest.raises(ConfigError, match="decoder.teredo.enabled"):
        udptunnel.build({"teredo": {"enabled": "maybe"}})
    assert udptunnel.build({n: {"enabled": False} for n in ("vxlan", "geneve", "teredo")}) is None
    any_port = udptunnel.build({"teredo": {"ports": "any"}})
    assert any_port is not None and any_port.wants(1, 2)
