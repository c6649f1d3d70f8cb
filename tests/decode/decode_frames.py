"""scapy-built frames for the decoder tests (scapy crafts; the decoder under test dissects)."""

from __future__ import annotations

from scapy.all import (  # type: ignore[import-untyped]
    GRE, ICMP, IP, TCP, UDP, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether, ICMPv6EchoRequest,
    IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, Loopback,
    LoopbackOpenBSD, Raw, raw,
)
from scapy.contrib.mpls import MPLS  # type: ignore[import-untyped]
from scapy.layers.ppp import PPP, PPPoE  # type: ignore[import-untyped]

from netsentry.decode import Decoder
from netsentry.decode.packet import FIELDS as PACKET_FIELDS
from netsentry.decode.packet import Packet

SRC4, DST4 = "10.1.2.3", "192.168.7.9"
SRC6, DST6 = "2001:db8::1", "2001:db8::2"

# every Packet field a decoder may set, for field-by-field comparisons
FIELDS = [name for name in PACKET_FIELDS if name not in ("flow", "to_server", "verdict", "ts",
                                                         "pcap_cnt", "wirelen", "drop_alert")]


# explicit MACs: a bare Ether() makes scapy resolve the destination (ARP) on the host network
ETHER = Ether(src="00:11:22:33:44:55", dst="66:77:88:99:aa:bb")


def tcp_syn() -> TCP:
    return TCP(sport=40000, dport=80, flags="S", seq=1000, window=29200,
               options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (12345, 0)), ("NOP", None),
                        ("WScale", 7)])


def eth(l3) -> bytes:   # type: ignore[no-untyped-def]
    return raw(ETHER / l3)


def ipv4_tcp(payload: bytes = b"GET / HTTP/1.1\r\n\r\n", **ip) -> bytes:   # type: ignore[no-untyped-def]
    return eth(IP(src=SRC4, dst=DST4, **ip) / TCP(sport=40000, dport=80, flags="PA", seq=5, ack=7) / payload)


def sample_frames() -> list[tuple[str, bytes, int]]:
    """(name, frame, linktype) covering every decoder path in its valid form."""
    inner4 = IP(src=SRC4, dst=DST4, ttl=33, id=77) / TCP(sport=1234, dport=443, flags="S") / b"x"
    inner6 = IPv6(src=SRC6, dst=DST6, hlim=9) / UDP(sport=5353, dport=53) / b"q"
    return [
        ("eth-ipv4-tcp", ipv4_tcp(), 1),
        ("eth-ipv4-tcp-syn-opts", eth(IP(src=SRC4, dst=DST4) / tcp_syn()), 1),
        ("eth-ipv4-udp", eth(IP(src=SRC4, dst=DST4) / UDP(sport=5000, dport=53) / b"dnsq"), 1),
        ("eth-ipv4-icmp-echo", eth(IP(src=SRC4, dst=DST4) / ICMP(type=8, id=0x1234, seq=7) / (b"ping" * 12)), 1),
        ("eth-ipv4-icmp-unreach", eth(IP(src=DST4, dst=SRC4) / ICMP(type=3, code=3) / raw(inner4)[:28]), 1),
        ("eth-ipv4-opts", eth(IP(src=SRC4, dst=DST4, options=b"\x94\x04\x00\x00" + b"\x00" * 4) / UDP(sport=1, dport=2)), 1),
        ("eth-ipv4-frag", eth(IP(src=SRC4, dst=DST4, flags="MF", frag=0) / UDP(sport=1, dport=2) / (b"a" * 16)), 1),
        ("eth-ipv6-tcp", eth(IPv6(src=SRC6, dst=DST6) / TCP(sport=2222, dport=22, flags="A") / b"ssh"), 1),
        ("eth-ipv6-exthdrs", eth(IPv6(src=SRC6, dst=DST6) / IPv6ExtHdrHopByHop(options=[])
                                  / IPv6ExtHdrDestOpt() / IPv6ExtHdrRouting(type=2, addresses=[])
                                  / UDP(sport=7, dport=9) / b"hi"), 1),
        ("eth-ipv6-frag", eth(IPv6(src=SRC6, dst=DST6) / IPv6ExtHdrFragment(id=99, m=1, offset=0)
                              / UDP(sport=7, dport=9) / (b"x" * 16)), 1),
        ("eth-ipv6-icmpv6", eth(IPv6(src=SRC6, dst=DST6) / ICMPv6EchoRequest(id=5, seq=6, data=b"abc")), 1),
        ("vlan", raw(ETHER / Dot1Q(vlan=100) / IP(src=SRC4, dst=DST4) / UDP(sport=1, dport=2)), 1),
        ("qinq", raw(ETHER / Dot1AD(vlan=10) / Dot1Q(vlan=20) / IP(src=SRC4, dst=DST4) / TCP()), 1),
        ("gre-ipv4", eth(IP(src="1.1.1.1", dst="2.2.2.2") / GRE(proto=0x0800) / inner4), 1),
        ("gre-ipv6-key", eth(IP(src="1.1.1.1", dst="2.2.2.2") / GRE(proto=0x86DD, key_present=1, key=5)
                             / inner6), 1),
        ("sll", raw(CookedLinux(proto=0x0800) / IP(src=SRC4, dst=DST4) / TCP(sport=1, dport=2)), 113),
        ("sll2", raw(CookedLinuxV2(proto=0x86DD) / IPv6(src=SRC6, dst=DST6) / UDP(sport=1, dport=2)), 276),
        ("raw-v4", raw(IP(src=SRC4, dst=DST4) / UDP(sport=3, dport=4) / b"r"), 101),
        ("raw-v6-dlt12", raw(IPv6(src=SRC6, dst=DST6) / TCP(sport=3, dport=4)), 12),
        ("raw-dlt14", raw(IP(src=SRC4, dst=DST4) / ICMP()), 14),
        ("chdlc-ipv4", b"\x0f\x00\x08\x00" + raw(IP(src=SRC4, dst=DST4) / TCP(sport=7, dport=8)), 104),
        ("ipv4-link", raw(IP(src=SRC4, dst=DST4) / TCP(sport=5, dport=6)), 228),
        ("ipv6-link", raw(IPv6(src=SRC6, dst=DST6) / UDP(sport=5, dport=6)), 229),
        ("null-v4", raw(Loopback(type=2) / IP(src=SRC4, dst=DST4) / UDP(sport=8, dport=9)), 0),
        ("null-v6", raw(Loopback(type=30) / IPv6(src=SRC6, dst=DST6) / UDP(sport=8, dport=9)), 0),
        ("loop-v4", raw(LoopbackOpenBSD(type=2) / IP(src=SRC4, dst=DST4) / TCP(sport=8, dport=9)), 108),
        ("mpls-ipv4", raw(Ether(src="00:11:22:33:44:55", dst="66:77:88:99:aa:bb", type=0x8847)
                          / MPLS(label=1000, s=0, ttl=64) / MPLS(label=2000, s=1, ttl=64)
                          / IP(src=SRC4, dst=DST4) / TCP(sport=40000, dport=80, flags="PA") / b"GET /"), 1),
        ("mpls-ipv6-explicit-null", raw(Ether(src="00:11:22:33:44:55", dst="66:77:88:99:aa:bb", type=0x8848)
                                        / MPLS(label=2, s=1) / IPv6(src=SRC6, dst=DST6) / UDP(sport=5, dport=53)),
         1),
        ("mpls-ethernet-pseudowire", raw(Ether(src="00:11:22:33:44:55", dst="66:77:88:99:aa:bb", type=0x8847)
                                         / MPLS(label=3000, s=1) / b"\x00\x00\x00\x00"
                                         / ETHER / IP(src=SRC4, dst=DST4) / UDP(sport=7, dport=9)), 1),
        ("pppoe-ipv4", raw(ETHER / PPPoE(sessionid=0x1234) / PPP(proto=0x0021)
                           / IP(src=SRC4, dst=DST4) / TCP(sport=40000, dport=80, flags="S")), 1),
        ("pppoe-ipv6", raw(ETHER / PPPoE(sessionid=0x1234) / PPP(proto=0x0057)
                           / IPv6(src=SRC6, dst=DST6) / UDP(sport=5, dport=53) / b"q"), 1),
    ]


LINKTYPES = sorted({lt for _, _, lt in sample_frames()})


def decode(frame: bytes, linktype: int = 1, checksums: bool = False) -> Packet:
    return Decoder(checksums=checksums).decode(frame, linktype)


__all__ = ["Raw", "ETHER", "FIELDS", "LINKTYPES", "SRC4", "DST4", "SRC6", "DST6", "decode", "eth", "ipv4_tcp",
           "sample_frames", "tcp_syn"]
