"""MPLS and PPPoE: the IP packet inside is decoded, counted, and broken shims are decoder events."""

from __future__ import annotations

import pytest
from decode_frames import DST4, ETHER, SRC4, sample_frames
from scapy.all import IP, TCP, UDP, Ether, raw  # type: ignore[import-untyped]
from scapy.contrib.mpls import MPLS  # type: ignore[import-untyped]
from scapy.layers.ppp import PPP, PPPoE, PPPoED, PPPoETag  # type: ignore[import-untyped]

from netsentry.decode import Decoder

MPLS_ETHER = Ether(src="00:11:22:33:44:55", dst="66:77:88:99:aa:bb", type=0x8847)
INNER = IP(src=SRC4, dst=DST4) / TCP(sport=40000, dport=80, flags="PA") / b"GET /x"


def frame(name: str) -> bytes:
    return next(f for n, f, _ in sample_frames() if n == name)


def test_mpls_stack_reaches_the_inner_tcp_packet_and_counts() -> None:
    d = Decoder()
    pkt = d.decode(frame("mpls-ipv4"), 1)
    assert (pkt.src_ip, pkt.dst_ip, pkt.sp, pkt.dp, pkt.proto) == (SRC4, DST4, 40000, 80, 6)
    assert pkt.payload == b"GET /"
    assert pkt.events is None
    stats = d.stats()
    assert stats["decoder.mpls"] == 1 and stats["decoder.ipv4"] == 1 and stats["decoder.tcp"] == 1


def test_mpls_pseudowire_decodes_the_inner_ethernet_frame() -> None:
    d = Decoder()
    pkt = d.decode(frame("mpls-ethernet-pseudowire"), 1)
    assert (pkt.src_ip, pkt.dst_ip, pkt.proto, pkt.dp) == (SRC4, DST4, 17, 9)
    assert d.stats()["decoder.ethernet"] == 2      # the outer frame and the one in the pseudowire


@pytest.mark.parametrize("label,event", [(1, "mpls.bad_label_router_alert"),
                                         (3, "mpls.bad_label_implicit_null"),
                                         (7, "mpls.bad_label_reserved")])
def test_reserved_bottom_label_is_an_event_and_the_payload_is_still_guessed(label: int, event: str) -> None:
    pkt = Decoder().decode(raw(MPLS_ETHER / MPLS(label=label, s=1) / INNER), 1)
    assert pkt.events == [event]
    assert pkt.dp == 80                             # the event does not stop decoding


@pytest.mark.parametrize("tail,event", [
    (raw(MPLS(label=100, s=0))[:2], "mpls.header_too_small"),               # shim cut short
    (raw(MPLS(label=100, s=0)), "mpls.header_too_small"),                   # no bottom of stack
    (raw(MPLS(label=100, s=1)), "mpls.pkt_too_small"),                      # nothing after the stack
    (raw(MPLS(label=100, s=1)) + b"\x00\x00", "mpls.pkt_too_small"),        # pseudowire word cut short
    (raw(MPLS(label=100, s=1)) + b"\x50" + bytes(30), "mpls.unknown_payload_type"),
])
def test_broken_mpls_is_an_invalid_packet_not_a_crash(tail: bytes, event: str) -> None:
    d = Decoder()
    pkt = d.decode(raw(MPLS_ETHER) + tail, 1)
    assert pkt.events == [event]
    assert pkt.ip_version == 0
    assert d.stats()["decoder.invalid"] == 1


def test_pppoe_session_reaches_ipv4_and_ipv6() -> None:
    d = Decoder()
    v4 = d.decode(frame("pppoe-ipv4"), 1)
    v6 = d.decode(frame("pppoe-ipv6"), 1)
    assert (v4.ip_version, v4.src_ip, v4.dp, v4.tcp_flags) == (4, SRC4, 80, 0x02)
    assert (v6.ip_version, v6.dp, v6.payload) == (6, 53, b"q")
    stats = d.stats()
    assert stats["decoder.pppoe"] == 2 and stats["decoder.ppp"] == 2 and stats["decoder.ipv6"] == 1


def test_pppoe_length_cuts_off_ethernet_padding() -> None:
    session = raw(ETHER / PPPoE(sessionid=1) / PPP(proto=0x0021) / IP(src=SRC4, dst=DST4) / UDP(sport=1, dport=2))
    pkt = Decoder().decode(session + b"\xee" * 12, 1)     # trailer bytes after the PPPoE payload
    assert pkt.payload_len == 0 and pkt.events is None


@pytest.mark.parametrize("ppp,event", [(PPP(proto=0x002B) / b"\x01\x01\x00\x04", "ppp.unsup_proto"),   # IPX
                                       (PPP(proto=0x1234) / b"xxxx", "ppp.wrong_type")])
def test_pppoe_non_ip_payload_is_named(ppp, event: str) -> None:  # type: ignore[no-untyped-def]
    pkt = Decoder().decode(raw(ETHER / PPPoE(sessionid=1) / ppp), 1)
    assert pkt.events == [event] and pkt.ip_version == 0


@pytest.mark.parametrize("proto", [0xC021, 0x8021, 0x8057, 0xC023, 0xC223, 0x80FD])  # LCP IPCP IPV6CP PAP CHAP CCP
def test_pppoe_control_protocols_raise_nothing(proto: int) -> None:
    """Suricata treats a session's control traffic as valid PPP: no event."""
    d = Decoder()
    pkt = d.decode(raw(ETHER / PPPoE(sessionid=1) / PPP(proto=proto) / b"\x01\x01\x00\x04"), 1)
    assert pkt.events is None and pkt.ip_version == 0
    assert d.stats()["decoder.invalid"] == 0


@pytest.mark.parametrize("data,event", [
    (raw(ETHER / PPPoE(sessionid=1))[:17], "pppoe.pkt_too_small"),
    (raw(ETHER / PPPoE(code=0x09, sessionid=1) / PPP(proto=0x0021) / INNER), "pppoe.wrong_code"),
    (raw(ETHER / PPPoE(sessionid=1) / PPP(proto=0x0021) / IP(src=SRC4, dst=DST4))[:30], "ppp.ip4_pkt_too_small"),
])
def test_broken_pppoe_session(data: bytes, event: str) -> None:
    pkt = Decoder().decode(data, 1)
    assert pkt.events == [event]


def test_pppoe_discovery_is_counted_and_its_tags_checked() -> None:
    d = Decoder()
    padi = d.decode(raw(ETHER / PPPoED(code=0x09) / PPPoETag(tag_type=0x0101, tag_value=b"")), 1)
    assert padi.events is None
    bad = raw(ETHER / PPPoED(code=0x09, len=10) / b"\x01\x01\x00\x20")        # tag runs past the end
    assert d.decode(bad + bytes(6), 1).events == ["pppoe.malformed_tags"]
    assert d.decode(raw(ETHER / PPPoED(code=0x42)), 1).events == ["pppoe.wrong_code"]
    assert d.stats()["decoder.pppoe"] == 3
