"""DNS over TCP (RFC 7766): queries after their 2-byte length reach the DNS detectors."""

from __future__ import annotations

import random
import string
import struct
from pathlib import Path

from anomaly_helpers import config_with, replay
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

T0 = 1_800_000_000.0
CLIENT, RESOLVER = "10.0.0.5", "10.0.0.53"


def tcp_dns_capture(path: Path, payloads: list[bytes]) -> Path:
    """A TCP/53 connection: handshake, then one client segment per payload, each ACKed."""
    eth = Ether(src="00:11:22:33:44:55", dst="66:77:88:99:aa:bb")
    c2s = eth / IP(src=CLIENT, dst=RESOLVER)
    s2c = eth / IP(src=RESOLVER, dst=CLIENT)
    frames = [c2s / TCP(sport=40001, dport=53, flags="S", seq=1000),
              s2c / TCP(sport=53, dport=40001, flags="SA", seq=5000, ack=1001),
              c2s / TCP(sport=40001, dport=53, flags="A", seq=1001, ack=5001)]
    seq = 1001
    for p in payloads:
        frames.append(c2s / TCP(sport=40001, dport=53, flags="PA", seq=seq, ack=5001) / Raw(p))
        seq += len(p)
        frames.append(s2c / TCP(sport=53, dport=40001, flags="A", seq=5001, ack=seq))
    for i, f in enumerate(frames):
        f.time = T0 + i * 0.01
    wrpcap(str(path), frames)
    return path


def framed(msg: bytes) -> bytes:
    return struct.pack("!H", len(msg)) + msg


def test_tunnel_like_names_over_tcp_fire_dns_tunnel(tmp_path: Path):
    rnd = random.Random(7)
    names = ["".join(rnd.choice(string.ascii_lowercase + string.digits) for _ in range(50)) + ".t.example.com"
             for _ in range(12)]
    queries = [framed(bytes(DNS(id=i, rd=1, qd=DNSQR(qname=n)))) for i, n in enumerate(names)]
    events, eng = replay(tcp_dns_capture(tmp_path / "dns-tcp.pcap", queries),
                         config_with({"dns-tunnel": {"queries": 5}}))
    tunnel = [e.extra["netsentry"]["anomaly"] for e in events if e.extra["netsentry"]["anomaly"]["detector"] == "dns-tunnel"]
    assert [a["key"] for a in tunnel] == [CLIENT]
    assert tunnel[0]["observed"] >= 5
    assert tunnel[0]["examples"][0].startswith(names[0])
    assert eng.stats()["anomaly.dns.queries_parsed"] == 12


def test_segments_that_do_not_start_a_query_are_not_counted(tmp_path: Path):
    """Continuations of a large message, or not DNS at all: QDCOUNT is not 1, so nothing counts
    (a flood threshold of 2 queries/s would fire otherwise)."""
    junk = [bytes([0x41] * 60) for _ in range(100)]
    events, eng = replay(tcp_dns_capture(tmp_path / "junk.pcap", junk),
                         config_with({"dns-query-flood": {"rate": 2.0}}))
    assert not [e for e in events if e.extra["netsentry"]["anomaly"]["detector"].startswith("dns")]
    assert eng.stats()["anomaly.dns.queries_parsed"] == 0


def test_query_flood_over_tcp(tmp_path: Path):
    queries = [framed(bytes(DNS(id=i, rd=1, qd=DNSQR(qname=f"host{i}.example.com")))) for i in range(60)]
    events, _ = replay(tcp_dns_capture(tmp_path / "flood.pcap", queries),
                       config_with({"dns-query-flood": {"rate": 5.0}}))
    flood = [e.extra["netsentry"]["anomaly"] for e in events if e.extra["netsentry"]["anomaly"]["detector"] == "dns-query-flood"]
    assert [a["key"] for a in flood] == [CLIENT]
