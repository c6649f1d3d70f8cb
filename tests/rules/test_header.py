"""Header keywords: TCP flags, fragbits, IP/TCP/ICMP numeric fields, sameip, ip_proto."""

import pytest
from rules_helpers import pkt, rule

from netsentry.rules import RuleError

F, S, R, P, A, U, E, C = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80


def hit(opts, **fields):
    proto = fields.pop("proto", 6)
    return rule(opts).match(pkt(b"", proto=proto, **fields), None)


@pytest.mark.parametrize("opts,flags,want", [
    ("flags:S;", S, True),
    ("flags:S;", S | A, False),            # exact by default
    ("flags:SA;", S | A, True),
    ("flags:S+;", S | A, True),            # + : at least these
    ("flags:+S;", S | A, True),
    ("flags:*SF;", F | A, True),           # * : any of these
    ("flags:*SF;", A, False),
    ("flags:!S;", A, True),                # ! : not (all of) these
    ("flags:!S;", S, False),
    ("flags:S,CE;", S | C | E, True),      # mask: ignore CWR/ECE
    ("flags:S,12;", S | C | E, True),      # old names 1/2 for CWR/ECE
    ("flags:0;", 0, True),
    ("flags:0;", A, False),
    ("tcp.flags:R,A;", R | A, True),
    ("tcp.flags:R,A;", R, True),
    ("flags:PA;", P | A | U, False),
])
def test_flags(opts, flags, want):
    assert hit(opts, tcp_flags=flags) is want


def test_flags_never_match_udp():
    assert not hit("flags:0;", proto=17, tcp_flags=0)


def test_fragbits():
    assert hit("fragbits:M;", ip_flags=0x1)
    assert not hit("fragbits:M;", ip_flags=0x3)
    assert hit("fragbits:M+;", ip_flags=0x3)
    assert hit("fragbits:!D;", ip_flags=0x1)
    assert hit("fragbits:*MD;", ip_flags=0x2)


@pytest.mark.parametrize("opts,fields,want", [
    ("ttl:64;", {"ttl": 64}, True),
    ("ttl:<5;", {"ttl": 4}, True),
    ("ttl:<5;", {"ttl": 5}, False),
    ("ttl:<=5;", {"ttl": 5}, True),
    ("ttl:>200;", {"ttl": 201}, True),
    ("ttl:1-3;", {"ttl": 2}, True),
    ("ttl:1-3;", {"ttl": 3}, False),          # ranges are exclusive
    ("ttl:1<>3;", {"ttl": 1}, False),
    ("ttl:!64;", {"ttl": 63}, True),
    ("ttl:!1-3;", {"ttl": 3}, True),
    ("tos:0x10;", {"tos": 16}, True),
    ("id:31337;", {"ip_id": 31337}, True),
    ("seq:0;", {"seq": 0}, True),
    ("ack:5;", {"ack": 6}, False),
    ("window:55808;", {"win": 55808}, True),
    ("window:!55808;", {"win": 1}, True),
    ("fragoffset:0;", {"frag_offset": 0}, True),
    ("fragoffset:>0;", {"frag_offset": 0}, False),
    ("tcp.mss:<536;", {"tcp_mss": 500}, True),
    ("tcp.mss:<536;", {"tcp_mss": -1}, False),   # no MSS option: no match
    ("sameip;", {"src": "10.0.0.1", "dst": "10.0.0.1"}, True),
    ("sameip;", {}, False),
    ("ip_proto:6;", {}, True),
    ("ip_proto:tcp;", {}, True),
    ("ip_proto:!6;", {}, False),
    ("ip_proto:udp;", {}, False),
])
def test_numeric_fields(opts, fields, want):
    assert hit(opts, **fields) is want


def test_icmp_fields():
    assert hit("itype:8;", proto=1, icmp_type=8, icmp_code=0)
    assert not hit("itype:8;", proto=6)                      # not ICMP
    assert hit("itype:>10;", proto=1, icmp_type=13)
    assert hit("icode:1<>4;", proto=1, icmp_type=3, icmp_code=2)
    assert hit("icmp_id:0;", proto=1, icmp_type=8, icmp_id=0)
    assert not hit("icmp_id:0;", proto=1, icmp_type=3)       # message without an id
    assert hit("icmp_seq:7;", proto=58, icmp_type=128, icmp_id=1, icmp_seq=7)


@pytest.mark.parametrize("opts,reason", [
    ("flags:SX;", "unknown flag 'X'"),
    ("flags:+*S;", "more than one modifier"),
    ("flags:0S;", "cannot be combined"),
    ("ttl:300;", "does not fit in 8 bits"),
    ("ttl:5-1;", "from low to high"),
    ("ttl:abc;", "invalid value"),
    ("fragbits:Q;", "unknown flag 'Q'"),
])
def test_header_errors(opts, reason):
    with pytest.raises(RuleError, match=reason):
        rule(opts)


# --- ipopts ------------------------------------------------------------------------

def _decoded(options: bytes):
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    from netsentry.decode import Decoder
    return Decoder().decode(bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2", options=options) / UDP()), 1)


@pytest.mark.parametrize("options, name, want", [
    (b"\x07\x07\x04\x00\x00\x00\x00\x00", "rr", True),           # record route, then EOL padding
    (b"\x07\x07\x04\x00\x00\x00\x00\x00", "eol", True),
    (b"\x07\x07\x04\x00\x00\x00\x00\x00", "nop", False),
    (b"\x01\x01\x01\x00", "nop", True),
    (b"\x01\x01\x01\x00", "RR", False),                          # names are case-insensitive
    (b"\x83\x07\x04\x00\x00\x00\x00\x00", "lsrr", True),
    (b"\x89\x07\x04\x00\x00\x00\x00\x00", "ssrr", True),
    (b"\x88\x04\x00\x01", "satid", True),
    (b"\x94\x04\x00\x00", "rtralt", True),
    (b"\x85\x04\x00\x00", "esec", True),
    (b"\x85\x04\x00\x00", "sec", False),
    (b"\x85\x04\x00\x00", "any", True),
    (b"", "any", False),
])
def test_ipopts(options, name, want):
    assert rule(f"ipopts:{name};").match(_decoded(options), None) is want


def test_ipopts_never_matches_ipv6():
    assert not hit("ipopts:any;", ip_version=6, ip_opts=(7,))


def test_ipopts_unknown_name():
    with pytest.raises(RuleError, match="unknown IP option 'route'"):
        rule("ipopts:route;")


# --- vlan.id / vlan.layers -------------------------------------------------------------

@pytest.mark.parametrize("opts, vlans, want", [
    ("vlan.id:200;", (100, 200), True),              # any layer (default)
    ("vlan.id:200,0;", (100, 200), False),
    ("vlan.id:200,1;", (100, 200), True),
    ("vlan.id:200,-1;", (100, 200), True),           # negative: from the innermost
    ("vlan.id:0x64,0;", (100, 200), True),
    ("vlan.id:!200,1;", (100, 300), True),
    ("vlan.id:!500,all;", (100, 200), True),
    ("vlan.id:!500,all;", (), False),                # all: there must be a tag
    ("vlan.id:!500,all_or_absent;", (), True),
    ("vlan.id:5,or_absent;", (), True),
    ("vlan.id:200,2;", (100, 200), False),           # no third tag
    ("vlan.id:>99,nb 2;", (100, 200), True),
    ("vlan.id:count 2;", (100, 200), True),
    ("vlan.id:200,any,1:2;", (100, 200, 300), True),
    ("vlan.id:300,any,0:2;", (100, 200, 300), False),
    ("vlan.layers:2;", (100, 200), True),
    ("vlan.layers:>0;", (), False),
])
def test_vlan_keywords(opts, vlans, want):
    assert hit(opts, vlan=vlans) is want


@pytest.mark.parametrize("opts, reason", [
    ("vlan.id:4096;", "not a VLAN id"),
    ("vlan.id:1,3;", "out of range"),
    ("vlan.id:1,sometimes;", "invalid index"),
    ("vlan.layers:>3;", "can never match"),
])
def test_vlan_errors(opts, reason):
    with pytest.raises(RuleError, match=reason):
        rule(opts)


@pytest.mark.parametrize("opts, want", [
    ("tcp.seq:100;", True), ("tcp.ack:7;", True), ("tcp.window:512;", True), ("tcp.ack:8;", False),
])
def test_suricata_8_tcp_names(opts, want):
    assert hit(opts, seq=100, ack=7, win=512) is want
    assert not hit(opts, proto=17, seq=100, ack=7, win=512)


def test_checksum_keywords_recompute_the_packets_checksums() -> None:
    # Suricata's tcpv4-csum, udpv6-csum, ipv4-csum, ...: valid/invalid as the bytes say
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    from netsentry.decode import Decoder
    good = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=2) / b"hello")
    bad = bytearray(good)
    bad[-1] ^= 0xFF                                   # payload changed, TCP checksum left as it was
    bad_ip = bytearray(good)
    bad_ip[14 + 10] ^= 0x01                           # the IPv4 header checksum
    v6 = bytes(Ether() / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=1, dport=2) / b"x")
    decoders = [Decoder() for _ in range(4)]     # a decoder reuses its packet: one each
    pg, pb, pi, p6 = (d.decode(bytes(f), 1) for d, f in zip(decoders, (good, bad, bad_ip, v6)))   # 1: Ethernet
    hdr = "alert ip any any -> any any"
    assert rule("tcpv4-csum:valid;", hdr).match(pg, None)
    assert not rule("tcpv4-csum:invalid;", hdr).match(pg, None)
    assert rule("tcpv4-csum:invalid;", hdr).match(pb, None)
    assert rule("ipv4-csum:valid;", hdr).match(pb, None) and rule("ipv4-csum:invalid;", hdr).match(pi, None)
    assert rule("udpv6-csum:valid;", hdr).match(p6, None)
    assert not rule("tcpv6-csum:valid;", hdr).match(pg, None)      # no such layer: no match either way
    assert not rule("tcpv6-csum:invalid;", hdr).match(pg, None)
    with pytest.raises(RuleError):
        rule("tcpv4-csum:maybe;", hdr)


def test_icmpv6_mtu_reads_a_packet_too_big_message() -> None:
    from scapy.layers.inet6 import ICMPv6EchoRequest, ICMPv6PacketTooBig, IPv6
    from scapy.layers.l2 import Ether

    from netsentry.decode import Decoder
    ptb = Decoder().decode(bytes(Ether() / IPv6(src="2001:db8::1", dst="2001:db8::2")
                                 / ICMPv6PacketTooBig(mtu=1000) / (b"\x60" + b"\x00" * 39)), 1)
    echo = Decoder().decode(bytes(Ether() / IPv6(src="2001:db8::1", dst="2001:db8::2") / ICMPv6EchoRequest()), 1)
    hdr = "alert ipv6 any any -> any any"
    assert rule("icmpv6.mtu:<1280;", hdr).match(ptb, None)
    assert not rule("icmpv6.mtu:>1280;", hdr).match(ptb, None)
    assert not rule("icmpv6.mtu:<1280;", hdr).match(echo, None)     # only type 2 has an MTU
