"""Attack shapes for the anomaly engine, each mixed into light benign background traffic.

One capture per detector family (tests/anomaly/test_scenarios.py replays each
and checks that its detector fires with the right key and evidence, and
nothing else does). Every attack is sized just over the bundled default
threshold (see docs/anomaly.md), so the captures stay small and double as a
demonstration of the defaults. Windows and buckets are cut from packet time
aligned to the epoch; attacks start on whole seconds past BASE_TS (itself a
multiple of 60 s) so they fall inside one window.

Addresses: the office of scenarios_benign (LAN 192.168.1.0/24, DMZ 10.0.0.0/24:
web 10.0.0.10, mail 10.0.0.25, resolver 10.0.0.53), attackers from the
documentation ranges 203.0.113.0/24 and 198.51.100.0/24.
"""

from __future__ import annotations

import base64
import random

from craft import (ACK, BASE_TS, FIN, PSH, RST, SYN, URG, Packet, dns_exchange, http_request, http_response,
                   icmp_echo, icmp_packet, tcp_packet, tcp_request, udp_packet)
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import IP

WEB = "10.0.0.10"
MAIL = "10.0.0.25"
RESOLVER = "10.0.0.53"
LAN = [f"192.168.1.{n}" for n in range(20, 28)]
SITES = ["www.example.com", "news.example.net", "docs.example.org", "mail.example.com"]


def background(t0: float, duration: float, seed: int, every: float = 4.0) -> list[Packet]:
    """A LAN client looks a name up and fetches a page from the DMZ web server every few seconds."""
    rng = random.Random(seed)
    pkts: list[Packet] = []
    t = t0
    i = 0
    while t < t0 + duration:
        client = LAN[i % len(LAN)]
        name = SITES[i % len(SITES)]
        pkts += dns_exchange(client, RESOLVER, name, t, answers=[WEB], sport=30000 + i)
        body = b"<html><body>status ok</body></html>"
        pkts += tcp_request(client, WEB, 40000 + i, 80, http_request("GET", f"/page/{i}", name),
                            http_response(200, "OK", body), t + 0.05)
        t += every * (0.5 + rng.random())
        i += 1
    return pkts


def _closed_port_reply(scanner: str, target: str, sport: int, port: int, t: float) -> Packet:
    return tcp_packet(target, scanner, port, sport, RST | ACK, t + 0.001, ack=1)


def _tcp_scan(scanner: str, target: str, flags: int, ports: range, t0: float, *, open_ports: tuple[int, ...] = (),
              connect: bool = False, step: float = 0.01) -> list[Packet]:
    """nmap-style probes: one packet per port; closed ports answer RST (stealth scans: open ports stay silent)."""
    pkts = []
    t = t0
    for n, port in enumerate(ports):
        sport = 40000 + n if connect else 51234
        pkts.append(tcp_packet(scanner, target, sport, port, flags, t, seq=1000))
        if port in open_ports:
            if flags == SYN:
                pkts.append(tcp_packet(target, scanner, port, sport, SYN | ACK, t + 0.001, seq=5000, ack=1001))
                if connect:
                    pkts.append(tcp_packet(scanner, target, sport, port, ACK, t + 0.002, seq=1001, ack=5001))
                    pkts.append(tcp_packet(scanner, target, sport, port, RST | ACK, t + 0.003, seq=1001, ack=5001))
                else:
                    pkts.append(tcp_packet(scanner, target, sport, port, RST, t + 0.002, seq=1001))
        else:
            pkts.append(_closed_port_reply(scanner, target, sport, port, t))
        t += step
    return pkts


def portscan() -> list[Packet]:
    """A SYN scan, a connect() scan and a UDP scan of three DMZ hosts."""
    t0 = BASE_TS + 3600.0
    pkts = background(t0, 90.0, 11)
    pkts += _tcp_scan("203.0.113.50", WEB, SYN, range(1, 121), t0 + 10.0, open_ports=(22, 80, 443))
    pkts += _tcp_scan("203.0.113.51", MAIL, SYN, range(1, 101), t0 + 20.0, open_ports=(25, 110, 143), connect=True)
    for n, port in enumerate(range(100, 180)):                     # UDP scan: closed ports answer port unreachable
        t = t0 + 30.0 + n * 0.02
        probe = udp_packet("203.0.113.52", RESOLVER, 61000, port, b"", t)
        pkts.append(probe)
        if port != 123:
            quoted = IP(bytes(probe[IP]))[IP]
            pkts.append(icmp_packet(RESOLVER, "203.0.113.52", t + 0.001, type=3, code=3,
                                    payload=bytes(quoted)[:28]))
    return pkts


def portscan_stealth() -> list[Packet]:
    """FIN, NULL and XMAS scans (closed ports answer RST, open ones stay silent)."""
    t0 = BASE_TS + 7200.0
    pkts = background(t0, 60.0, 12)
    pkts += _tcp_scan("203.0.113.60", WEB, FIN, range(1, 81), t0 + 5.0, open_ports=(80, 443))
    pkts += _tcp_scan("203.0.113.61", MAIL, 0, range(1, 81), t0 + 15.0, open_ports=(25,))
    pkts += _tcp_scan("203.0.113.62", RESOLVER, FIN | PSH | URG, range(1, 81), t0 + 25.0, open_ports=(53,))
    return pkts


def sweep() -> list[Packet]:
    """An SSH sweep, an ICMP echo sweep and an SNMP (UDP/161) sweep of internal subnets."""
    t0 = BASE_TS + 10800.0
    pkts = background(t0, 60.0, 13)
    for n in range(1, 101):
        t = t0 + 5.0 + n * 0.02
        target = f"10.0.1.{n}"
        pkts.append(tcp_packet("203.0.113.70", target, 52000, 22, SYN, t, seq=77))
        if n % 10 == 0:
            pkts.append(tcp_packet(target, "203.0.113.70", 22, 52000, RST | ACK, t + 0.001, ack=78))
    for n in range(1, 101):
        t = t0 + 15.0 + n * 0.02
        pkts += icmp_echo("203.0.113.71", f"10.0.2.{n}", t, ident=0x4242, seq=n, reply=(n % 7 == 0))
    for n in range(1, 81):
        t = t0 + 25.0 + n * 0.02
        snmp = b"\x30\x26\x02\x01\x01\x04\x06public\xa0\x19"
        pkts.append(udp_packet("203.0.113.72", f"10.0.3.{n}", 53000, 161, snmp, t))
    return pkts


def synflood() -> list[Packet]:
    """800 SYNs from spoofed sources at the web server in under a second; it answers SYN-ACK and waits."""
    t0 = BASE_TS + 14400.0
    rng = random.Random(14)
    pkts = background(t0, 40.0, 14)
    for n in range(800):
        t = t0 + 10.0 + n * 0.001
        src = f"198.51.100.{rng.randint(1, 254)}" if n % 2 else f"203.0.113.{rng.randint(1, 254)}"
        sport = 1024 + rng.randint(0, 60000)
        pkts.append(tcp_packet(src, WEB, sport, 80, SYN, t, seq=rng.getrandbits(32)))
        if n % 4 == 0:
            pkts.append(tcp_packet(WEB, src, 80, sport, SYN | ACK, t + 0.0005, seq=9, ack=1))
    return pkts


def icmpflood() -> list[Packet]:
    """A ping flood: 1200 echo requests with 8-byte payloads in two seconds."""
    t0 = BASE_TS + 18000.0
    pkts = background(t0, 40.0, 15)
    for n in range(1200):
        pkts.append(icmp_packet("203.0.113.80", WEB, t0 + 10.0 + n / 600.0, type=8, ident=7, seq=n & 0xFFFF,
                                payload=b"floodfld"))
    return pkts


def udpflood() -> list[Packet]:
    """2200 small UDP datagrams from three sources at one host in two seconds."""
    t0 = BASE_TS + 21600.0
    pkts = background(t0, 40.0, 16)
    srcs = ["203.0.113.90", "203.0.113.91", "198.51.100.92"]
    for n in range(2200):
        src = srcs[0] if n % 5 < 3 else srcs[n % 2 + 1]
        pkts.append(udp_packet(src, MAIL, 20000 + n % 500, 9999, b"XXXX", t0 + 10.0 + n / 1100.0))
    return pkts


def newconn() -> list[Packet]:
    """One source opens 550 HTTP connections in five seconds (a brute-force/burst tool)."""
    t0 = BASE_TS + 25200.0
    pkts = background(t0, 40.0, 17)
    src = "203.0.113.95"
    for n in range(550):
        t = t0 + 10.0 + n * (4.9 / 550)
        sport = 30000 + n
        pkts.append(tcp_packet(src, WEB, sport, 80, SYN, t, seq=100))
        pkts.append(tcp_packet(WEB, src, 80, sport, SYN | ACK, t + 0.0004, seq=900, ack=101))
        pkts.append(tcp_packet(src, WEB, sport, 80, RST, t + 0.0008, seq=101))
    return pkts


def spike() -> list[Packet]:
    """A LAN host with a quiet routine (a small UDP report every 2 s for 15 minutes, past the
    baseline warm-up) suddenly sends 1800 datagrams within one 10-second bucket."""
    t0 = BASE_TS + 28800.0
    host, collector = "192.168.1.40", "10.0.0.30"
    pkts: list[Packet] = []
    end = t0 + 960.0
    t = t0
    while t < end:
        pkts.append(udp_packet(host, collector, 5140, 514, b"<14>ok", t))
        t += 2.0
    burst = t0 + 930.0
    for n in range(1800):
        pkts.append(udp_packet(host, collector, 5141, 514, b"x", burst + n * (9.5 / 1800)))
    return pkts


def _tunnel_name(n: int) -> str:
    chunk = base64.b32encode(random.Random(1000 + n).randbytes(30)).decode().rstrip("=").lower()
    return f"{chunk}.{n:04d}.t.tunnel.example.net"


def dns_tunnel() -> list[Packet]:
    """A LAN host exchanging data through 30 TXT queries with 48-character base32 labels."""
    t0 = BASE_TS + 32400.0
    pkts = background(t0, 60.0, 18)
    for n in range(30):
        pkts += dns_exchange("192.168.1.66", RESOLVER, _tunnel_name(n), t0 + 5.0 + n * 1.5, qtype="TXT",
                             answers=[b"ack"], sport=41000 + n)
    return pkts


def dns_flood() -> list[Packet]:
    """600 queries for random names in five seconds from one host (no answers: the resolver is swamped)."""
    t0 = BASE_TS + 36000.0
    rng = random.Random(19)
    pkts = background(t0, 40.0, 19)
    for n in range(600):
        name = f"{rng.choice(['www', 'mail', 'api', 'cdn'])}{n}.example.com"
        q = DNS(id=n, rd=1, qd=DNSQR(qname=name, qtype=1))
        pkts.append(udp_packet("192.168.1.77", RESOLVER, 20000 + n, 53, q, t0 + 10.0 + n * (4.9 / 600)))
    return pkts


SCENARIOS = {
    "anomaly-portscan.pcap": portscan,
    "anomaly-portscan-stealth.pcap": portscan_stealth,
    "anomaly-sweep.pcap": sweep,
    "anomaly-synflood.pcap": synflood,
    "anomaly-icmpflood.pcap": icmpflood,
    "anomaly-udpflood.pcap": udpflood,
    "anomaly-newconn.pcap": newconn,
    "anomaly-spike.pcap": spike,
    "anomaly-dns-tunnel.pcap": dns_tunnel,
    "anomaly-dns-flood.pcap": dns_flood,
}
