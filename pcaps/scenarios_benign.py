"""Benign background traffic: what a small office gateway sees on a quiet morning.

These captures are the false-positive guard: no bundled signature may fire on
them (tests/e2e/test_bundled_signatures.py). Some flows are deliberately
*near misses* -- text that a careless rule would match (a blog post about
``UNION SELECT``, a page that mentions ``/etc/passwd``, a bearer token, a
resolver name containing ``duckdns`` as an ordinary label, ping with the
usual 56-byte payload, TLS on 443/8443/993) -- so the rules have to be as
precise as a rule author would make them.

Addresses (see pcaps/README.md): LAN clients 192.168.1.0/24, DMZ servers
10.0.0.0/24 (web 10.0.0.10, resolver 10.0.0.53, mail 10.0.0.25),
internet hosts 198.51.100.0/24 and 192.0.2.0/24.
"""

from __future__ import annotations

import random

from craft import (BASE_TS, RDP_CONFIRM, Packet, dns_exchange, http_request, http_response, icmp_echo,
                   rdp_connection_request, smb2_negotiate, snmp_get_public, tcp_conversation, tcp_request,
                   tls_client_hello, tls_server_hello, udp_packet)

WEB_SERVER = "10.0.0.10"
RESOLVER = "10.0.0.53"
MAIL_SERVER = "10.0.0.25"
UPSTREAM_DNS = "192.0.2.53"
LAN = [f"192.168.1.{n}" for n in range(20, 32)]
SITES = {  # external web sites the LAN browses
    "www.example.com": "198.51.100.80",
    "news.example.net": "198.51.100.81",
    "cdn.example.org": "198.51.100.82",
    "api.example.com": "198.51.100.83",
}
VISITORS = ["198.51.100.17", "198.51.100.33", "192.0.2.140", "192.0.2.77"]


def _page(title: str, words: int, rng: random.Random) -> bytes:
    vocab = ("network gateway sensor report quarter meeting invoice update release notes "
             "customer support service status weather calendar project").split()
    text = " ".join(rng.choice(vocab) for _ in range(words))
    return f"<!doctype html><html><head><title>{title}</title></head><body><p>{text}</p></body></html>".encode()


def benign_web() -> list[Packet]:
    """LAN users browsing over HTTP; internet visitors on the DMZ web server; near-miss content."""
    rng = random.Random(1001)
    t = BASE_TS + 60.0
    pkts: list[Packet] = []
    sport = 40000
    # LAN -> internet HTTP browsing (ordinary browsers, curl, a package manager).
    agents = ["Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
              "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
              "curl/8.5.0", "Debian APT-HTTP/1.3 (2.6.1)"]
    paths = ["/", "/index.html", "/news/2026/11/gateway-update", "/static/app.js", "/search?q=select+a+union+rep",
             "/docs/linux/etc-passwd-format.html", "/api/v1/status?format=json", "/images/logo.png"]
    for i in range(16):
        host, ip = list(SITES.items())[i % len(SITES)]
        client = LAN[i % len(LAN)]
        path = paths[i % len(paths)]
        req = http_request("GET", path, host, user_agent=agents[i % len(agents)])
        body = _page(path, 60 + 20 * (i % 5), rng)
        pkts += tcp_request(client, ip, sport, 80, req, http_response(body=body), t)
        sport += 1
        t += 1.7
    # Internet visitors on the DMZ web server, including text that looks like attacks but is not.
    visits = [
        ("GET", "/", b"", []),
        ("GET", "/blog/why-union-select-queries-are-slow", b"", []),
        ("GET", "/wiki/Passwd_file", b"", []),
        ("POST", "/contact", b"name=Ann+Lee&email=ann%40example.com&message=Please+select+one+option+or+1%3D1+more",
         [("Content-Type", "application/x-www-form-urlencoded")]),
        ("GET", "/api/v2/orders?limit=20", b"", [("Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig")]),
        ("GET", "/downloads/release-2.1.tar.gz", b"", []),
        ("GET", "/robots.txt", b"", []),
        ("GET", "/search?q=cat+etc+passwd+tutorial", b"", []),
        ("GET", "/docs/tools/wget-and-curl-examples.html", b"", []),
        ("POST", "/api/v2/templates", b'{"greeting":"Hello ${name}, your order ships ${date}","sleep_mode":"or 1 hour"}',
         [("Content-Type", "application/json")]),
        ("GET", "/media/shop/flash-sale.sh.txt", b"", []),
        ("GET", "/blog/2026/11/benchmark-results-union-station", b"", []),
    ]
    for i, (method, path, body, headers) in enumerate(visits * 2):
        visitor = VISITORS[i % len(VISITORS)]
        req = http_request(method, path, "www.corp.example", headers=headers, body=body)
        page = _page(path, 80, rng)
        if "passwd" in path.lower():
            page += b"<p>/etc/passwd lists the accounts, one per line: name, password placeholder, uid, gid</p>"
        pkts += tcp_request(visitor, WEB_SERVER, 50000 + i, 80, req, http_response(body=page), t)
        t += 2.3
    # A keep-alive connection with three requests on it.
    exchanges = [(http_request("GET", p, "www.example.com"), http_response(body=_page(p, 40, rng)))
                 for p in ("/", "/style.css", "/favicon.ico")]
    pkts += tcp_conversation(LAN[0], SITES["www.example.com"], 41000, 80, exchanges, t)
    return pkts


def benign_dns() -> list[Packet]:
    """LAN clients resolving through the DMZ resolver, which forwards misses upstream."""
    t = BASE_TS + 300.0
    pkts: list[Packet] = []
    names = [("www.example.com", "A", ["198.51.100.80"]), ("news.example.net", "A", ["198.51.100.81"]),
             ("cdn.example.org", "AAAA", ["2001:db8::82"]), ("mail.corp.example", "MX", []),
             ("api.example.com", "A", ["198.51.100.83"]), ("time.example.net", "A", ["192.0.2.123"]),
             ("_ldap._tcp.corp.example", "SRV", []), ("80.100.51.198.in-addr.arpa", "PTR", ["www.example.com"]),
             ("duckdns-review.example.com", "A", ["198.51.100.90"]),     # near miss: not the duckdns.org zone
             ("ngrok-docs.example.net", "A", ["198.51.100.91"]),
             ("updates.example.org", "CNAME", ["cdn.example.org"]), ("missing.corp.example", "A", [])]
    for i in range(36):
        qname, qtype, answers = names[i % len(names)]
        client = LAN[i % len(LAN)]
        rcode = 3 if qname.startswith("missing.") else 0
        if qtype in ("MX", "SRV"):
            answers = []
        pkts += dns_exchange(client, RESOLVER, qname, t, qtype=qtype, answers=answers, rcode=rcode,
                             txid=0x1000 + i, sport=30000 + 7 * i)
        if i % 3 == 0:  # cache miss: the resolver asks upstream
            pkts += dns_exchange(RESOLVER, UPSTREAM_DNS, qname, t + 0.002, qtype=qtype, answers=answers,
                                 rcode=rcode, txid=0x8000 + i, sport=45000 + i)
        t += 0.8
    return pkts


def benign_services() -> list[Packet]:
    """ping, NTP, SSH, SMTP without AUTH: the rest of a normal day."""
    t = BASE_TS + 600.0
    pkts: list[Packet] = []
    for i in range(10):  # ping with the ordinary 56-byte payload
        pkts += icmp_echo(LAN[i % 4], SITES["www.example.com"], t, ident=0x4d00 + i % 4, seq=i + 1)
        t += 1.0
    for i in range(6):  # NTP client mode 3 -> server mode 4
        req = bytes([0x23]) + bytes(47)
        resp = bytes([0x24, 2, 0, 0xE9]) + bytes(44)
        pkts.append(udp_packet(LAN[i], "192.0.2.123", 123, 123, req, t))
        pkts.append(udp_packet("192.0.2.123", LAN[i], 123, 123, resp, t + 0.02))
        t += 0.5
    # SSH: version exchange and some opaque binary packets.
    rng = random.Random(1003)
    ssh = [(b"SSH-2.0-OpenSSH_9.6p1 Debian-3\r\n", b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"),
           (rng.randbytes(1024), rng.randbytes(1100)), (rng.randbytes(64), rng.randbytes(300))]
    pkts += tcp_conversation(LAN[2], "10.0.0.22", 51022, 22, ssh, t)
    t += 3.0
    smtp = [(b"", b"220 mail.corp.example ESMTP Postfix\r\n"),
            (b"EHLO laptop.corp.example\r\n", b"250-mail.corp.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n"),
            (b"MAIL FROM:<ann@corp.example>\r\n", b"250 2.1.0 Ok\r\n"),
            (b"RCPT TO:<bob@corp.example>\r\n", b"250 2.1.5 Ok\r\n"),
            (b"DATA\r\n", b"354 End data with <CR><LF>.<CR><LF>\r\n"),
            (b"Subject: minutes\r\n\r\nThe login page now asks to select a user; pass the word on.\r\n.\r\n",
             b"250 2.0.0 Ok: queued as 4F2A1\r\n"),
            (b"QUIT\r\n", b"221 2.0.0 Bye\r\n")]
    pkts += tcp_conversation(LAN[3], MAIL_SERVER, 52025, 25, smtp, t, close="server-fin")
    t += 3.0
    # Inside the network, SMB, RDP and SNMP with "public" are normal administration:
    # the exposure rules must only fire when these come from the internet.
    pkts += tcp_conversation(LAN[4], "10.0.0.30", 52445, 445, [(smb2_negotiate(), rng.randbytes(200))], t)
    t += 1.0
    pkts += tcp_conversation(LAN[5], "10.0.0.31", 53389, 3389, [(rdp_connection_request("ann"), RDP_CONFIRM)], t)
    t += 1.0
    for i in range(4):  # the monitoring box polls the gateway
        pkts.append(udp_packet("10.0.0.5", "10.0.0.1", 40161, 161, snmp_get_public(0x100 + i), t))
        t += 0.5
    return pkts


def benign_tls() -> list[Packet]:
    """HTTPS on 443, an admin console on 8443, IMAPS on 993: TLS where TLS belongs."""
    t = BASE_TS + 900.0
    pkts: list[Packet] = []
    targets = [("www.example.com", SITES["www.example.com"], 443), ("api.example.com", SITES["api.example.com"], 443),
               ("cdn.example.org", SITES["cdn.example.org"], 443), ("console.example.net", "198.51.100.84", 8443),
               ("imap.example.net", "198.51.100.85", 993)]
    for i in range(15):
        sni, ip, port = targets[i % len(targets)]
        hello = tls_client_hello(sni, seed=str(i))
        pkts += tcp_conversation(LAN[i % len(LAN)], ip, 43000 + i, port,
                                 [(hello, tls_server_hello(seed=str(i), app_data=900 + 100 * (i % 4)))], t)
        t += 1.3
    return pkts


SCENARIOS = {
    "benign-web.pcap": benign_web,
    "benign-dns.pcap": benign_dns,
    "benign-services.pcap": benign_services,
    "benign-tls.pcap": benign_tls,
}
