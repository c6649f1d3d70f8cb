"""Building blocks for the sample-capture scenarios (scapy).

Scenario modules (``scenarios_*.py``) describe traffic as conversations, not
as hand-numbered packets: a TCP exchange with a correct handshake, seq/ack
arithmetic and teardown, a DNS query and its answer, an ICMP echo pair.
Everything here is deterministic -- no wall clock, no random numbers, no
routing-table lookups (scapy fills an unset Ether/IP source from the host's
interfaces, which would make a capture depend on the machine that built it)
-- so ``make_pcaps.py --check`` can demand byte-identical regeneration.

Every helper returns a list of scapy packets with ``.time`` set; lists from
several helpers may be concatenated in any order, because the driver sorts
each capture by time (stable, so equal times keep their list order).

This API is shared with the anomaly scenarios: extend it, don't change it.
"""

from __future__ import annotations

import calendar
import ipaddress
import struct
import zlib
from collections.abc import Iterable, Sequence

from scapy.asn1.asn1 import ASN1_OID
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.layers.snmp import SNMP, SNMPget, SNMPvarbind
from scapy.packet import Packet, Raw

__all__ = [
    "BASE_TS", "Packet", "FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR", "mac_for", "frame", "tcp_packet", "udp_packet", "icmp_packet",
    "tcp_conversation", "tcp_request", "dns_exchange", "icmp_echo",
    "http_request", "http_response", "tls_client_hello", "tls_server_hello", "smb2_negotiate",
    "rdp_connection_request", "RDP_CONFIRM", "snmp_get_public", "retime",
]

# 2026-11-02 08:00:00 UTC: every capture's clock starts from here (plus a
# per-scenario offset), so EVE timestamps are the same on every replay.
BASE_TS: float = float(calendar.timegm((2026, 11, 2, 8, 0, 0)))

FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80


def mac_for(addr: str) -> str:
    """A locally administered MAC derived from the address (stable, readable in Wireshark)."""
    packed = ipaddress.ip_address(addr).packed[-4:]
    return "02:00:" + ":".join(f"{b:02x}" for b in packed)


def _ip_layer(src: str, dst: str, ttl: int, ip_id: int | None) -> Packet:
    if ipaddress.ip_address(src).version == 6:
        return IPv6(src=src, dst=dst, hlim=ttl)
    return IP(src=src, dst=dst, ttl=ttl, id=(ip_id if ip_id is not None else _ident(src, dst)) & 0xFFFF)


def _ident(*parts: object) -> int:
    """A stable 32-bit number from the given parts (ISNs, IP ids, DNS ids)."""
    return zlib.crc32(repr(parts).encode())


def frame(src: str, dst: str, l4: Packet, t: float, *, ttl: int = 64, ip_id: int | None = None) -> Packet:
    """Ethernet / IPv4-or-IPv6 / ``l4`` with ``.time = t``. The base every helper builds on."""
    pkt = Ether(src=mac_for(src), dst=mac_for(dst)) / _ip_layer(src, dst, ttl, ip_id) / l4
    pkt.time = t
    return pkt


def tcp_packet(src: str, dst: str, sport: int, dport: int, flags: int | str, t: float, *,
               seq: int = 0, ack: int = 0, payload: bytes = b"", window: int = 64240,
               options: list | None = None, ttl: int = 64, ip_id: int | None = None) -> Packet:
    """One TCP segment; flags as an int (0x12) or scapy letters ("SA"). For scans and odd packets."""
    tcp = TCP(sport=sport, dport=dport, flags=flags, seq=seq & 0xFFFFFFFF, ack=ack & 0xFFFFFFFF,
              window=window, options=options or [])
    l4 = tcp / Raw(payload) if payload else tcp
    return frame(src, dst, l4, t, ttl=ttl, ip_id=ip_id)


def udp_packet(src: str, dst: str, sport: int, dport: int, payload: bytes | Packet, t: float, *,
               ttl: int = 64, ip_id: int | None = None) -> Packet:
    """One UDP datagram; ``payload`` raw bytes or a scapy layer (e.g. DNS)."""
    body = payload if isinstance(payload, Packet) else Raw(payload)
    return frame(src, dst, UDP(sport=sport, dport=dport) / body, t, ttl=ttl, ip_id=ip_id)


def icmp_packet(src: str, dst: str, t: float, *, type: int = 8, code: int = 0, ident: int = 0,
                seq: int = 0, payload: bytes = b"", ttl: int = 64, ip_id: int | None = None,
                **icmp_fields) -> Packet:
    """One ICMPv4 message (default: echo request).

    ``icmp_fields`` go to scapy's ICMP layer (``gw=`` for a redirect,
    ``addr_mask=``...). For timestamp messages (type 13/14) pass ``ts_ori``,
    ``ts_rx`` and ``ts_tx``: scapy fills an unset ``ts_ori`` from the wall
    clock, which would break byte-identical regeneration.
    """
    if type in (13, 14):
        icmp_fields.setdefault("ts_ori", 0)
        icmp_fields.setdefault("ts_rx", 0)
        icmp_fields.setdefault("ts_tx", 0)
    icmp = ICMP(type=type, code=code, id=ident, seq=seq, **icmp_fields)
    return frame(src, dst, icmp / Raw(payload) if payload else icmp, t, ttl=ttl, ip_id=ip_id)


def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)] if data else []


def tcp_conversation(client: str, server: str, sport: int, dport: int,
                     exchanges: Sequence[tuple[bytes, bytes]], t0: float, *,
                     rtt: float = 0.02, close: str = "fin", mss: int = 1460,
                     client_isn: int | None = None, server_isn: int | None = None,
                     client_ttl: int = 64, server_ttl: int = 64, handshake: bool = True) -> list[Packet]:
    """A whole TCP connection: handshake, request/response exchanges, teardown.

    ``exchanges`` is a list of ``(client_data, server_data)``; either side may
    be ``b""`` (a server banner is ``(b"", b"220 ready\\r\\n")``). Data larger
    than ``mss`` is split into segments, PSH on the last one; each side ACKs
    what it received, so seq/ack are what a real stack would put there.

    ``close``: ``"fin"`` (client closes, server answers FIN, final ACK),
    ``"server-fin"`` (server closes first), ``"rst"`` (client resets), or
    ``"none"`` (leave the connection open). ``handshake=False`` starts
    midstream (no SYN/SYN-ACK), as a capture started late would.

    ISNs and IP ids derive from the 4-tuple, so the same call always yields
    the same bytes.
    """
    c_seq = (client_isn if client_isn is not None else _ident("isn", client, sport, server, dport)) & 0xFFFFFFFF
    s_seq = (server_isn if server_isn is not None else _ident("isn", server, dport, client, sport)) & 0xFFFFFFFF
    c_id = _ident("ipid", client, sport) & 0xFFFF
    s_id = _ident("ipid", server, dport) & 0xFFFF
    t = t0
    half = rtt / 2
    pkts: list[Packet] = []

    def c(flags: int, payload: bytes = b"", options: list | None = None) -> None:
        nonlocal c_id
        pkts.append(tcp_packet(client, server, sport, dport, flags, t, seq=c_seq, ack=s_seq if flags & ACK else 0,
                               payload=payload, options=options, ttl=client_ttl, ip_id=c_id))
        c_id += 1

    def s(flags: int, payload: bytes = b"", options: list | None = None) -> None:
        nonlocal s_id
        pkts.append(tcp_packet(server, client, dport, sport, flags, t, seq=s_seq, ack=c_seq,
                               payload=payload, options=options, ttl=server_ttl, ip_id=s_id, window=65160))
        s_id += 1

    if handshake:
        c(SYN, options=[("MSS", mss), ("SAckOK", b""), ("WScale", 7)])
        c_seq += 1
        t += half
        s(SYN | ACK, options=[("MSS", mss), ("SAckOK", b""), ("WScale", 7)])
        s_seq += 1
        t += half
        c(ACK)
    for client_data, server_data in exchanges:
        segs = _chunks(client_data, mss)
        for i, seg in enumerate(segs):
            t += 0.0005
            c(ACK | (PSH if i == len(segs) - 1 else 0), seg)
            c_seq += len(seg)
        if segs and not server_data:
            t += half
            s(ACK)
        segs = _chunks(server_data, mss)
        t += half if segs else 0
        for i, seg in enumerate(segs):
            t += 0.0005
            s(ACK | (PSH if i == len(segs) - 1 else 0), seg)
            s_seq += len(seg)
        if segs:
            t += half
            c(ACK)
    t += 0.001
    if close == "fin":
        c(FIN | ACK); c_seq += 1; t += half
        s(FIN | ACK); s_seq += 1; t += half
        c(ACK)
    elif close == "server-fin":
        s(FIN | ACK); s_seq += 1; t += half
        c(FIN | ACK); c_seq += 1; t += half
        s(ACK)
    elif close == "rst":
        c(RST | ACK)
    elif close != "none":
        raise ValueError(f"tcp_conversation: close must be fin, server-fin, rst or none, not {close!r}")
    return pkts


def tcp_request(client: str, server: str, sport: int, dport: int, request: bytes, response: bytes,
                t0: float, **kw) -> list[Packet]:
    """The common case: one request, one response, FIN teardown."""
    return tcp_conversation(client, server, sport, dport, [(request, response)], t0, **kw)


_QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28, "SRV": 33, "ANY": 255}


def dns_exchange(client: str, resolver: str, qname: str, t0: float, *, qtype: str = "A",
                 answers: Iterable[str | bytes] | None = None, rcode: int = 0, txid: int | None = None,
                 sport: int | None = None, ttl: int = 300, rtt: float = 0.015,
                 response: bool = True) -> list[Packet]:
    """A DNS query over UDP/53 and (unless ``response=False``) its answer.

    ``answers`` are rdata in scapy's form for ``qtype`` (an address for A/AAAA,
    a name for CNAME/PTR/NS, bytes or str for TXT). ``rcode=3`` with no
    answers is NXDOMAIN. The transaction id and source port derive from the
    name unless given.
    """
    if txid is None:
        txid = _ident("txid", client, qname) & 0xFFFF
    if sport is None:
        sport = 1024 + _ident("sport", client, qname) % 60000
    qt = _QTYPES[qtype]
    q = DNS(id=txid, rd=1, qd=[DNSQR(qname=qname, qtype=qt)])
    pkts = [udp_packet(client, resolver, sport, 53, q, t0)]
    if response:
        rrs = [DNSRR(rrname=qname, type=qt, ttl=ttl, rdata=a) for a in (answers or [])]
        r = DNS(id=txid, qr=1, aa=0, rd=1, ra=1, rcode=rcode, qd=[DNSQR(qname=qname, qtype=qt)], an=rrs)
        pkts.append(udp_packet(resolver, client, 53, sport, r, t0 + rtt))
    return pkts


def icmp_echo(src: str, dst: str, t0: float, *, ident: int = 1, seq: int = 1,
              payload: bytes = bytes(range(0x10, 0x38)), reply: bool = True, rtt: float = 0.01,
              ttl: int = 64) -> list[Packet]:
    """An ICMP echo request and (unless ``reply=False``) its reply with the same payload.

    The default payload is the 40 bytes after the timestamp in Linux ping's
    56-byte pattern (0x10..0x37), so it looks like ordinary ``ping``.
    """
    pkts = [icmp_packet(src, dst, t0, type=8, ident=ident, seq=seq, payload=payload, ttl=ttl,
                        ip_id=_ident("icmp", src, ident, seq) & 0xFFFF)]
    if reply:
        pkts.append(icmp_packet(dst, src, t0 + rtt, type=0, ident=ident, seq=seq, payload=payload,
                                ip_id=_ident("icmp", dst, ident, seq) & 0xFFFF))
    return pkts


def http_request(method: str, path: str, host: str, *, headers: Sequence[tuple[str, str]] = (),
                 body: bytes = b"", user_agent: str | None = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                 version: str = "HTTP/1.1") -> bytes:
    """An HTTP/1.x request as bytes (Host, User-Agent, extra headers, Content-Length when there is a body)."""
    lines = [f"{method} {path} {version}", f"Host: {host}"]
    if user_agent is not None:
        lines.append(f"User-Agent: {user_agent}")
    lines.append("Accept: */*")
    lines += [f"{k}: {v}" for k, v in headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def http_response(status: int = 200, reason: str = "OK", body: bytes = b"", *,
                  content_type: str = "text/html; charset=utf-8",
                  headers: Sequence[tuple[str, str]] = (), server: str = "nginx/1.24.0") -> bytes:
    """An HTTP/1.1 response as bytes with a fixed Date (determinism) and Content-Length."""
    lines = [f"HTTP/1.1 {status} {reason}", f"Server: {server}", "Date: Mon, 02 Nov 2026 08:00:00 GMT",
             f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _tls_record(content_type: int, body: bytes) -> bytes:
    return struct.pack("!BHH", content_type, 0x0303, len(body)) + body


def _tls_handshake(msg_type: int, body: bytes) -> bytes:
    return struct.pack("!B", msg_type) + len(body).to_bytes(3, "big") + body


def tls_client_hello(sni: str | None, *, seed: str = "") -> bytes:
    """A TLS 1.2-framed ClientHello record (TLS 1.3 style: supported_versions), optional SNI.

    Random and session id derive from ``sni`` + ``seed`` (deterministic, but
    different per connection when the seed differs).
    """
    rnd = b"".join(struct.pack("!I", _ident("rnd", sni, seed, i)) for i in range(8))
    sid = b"".join(struct.pack("!I", _ident("sid", sni, seed, i)) for i in range(8))
    suites = [0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8]
    ext = b""
    if sni:
        name = sni.encode()
        entry = struct.pack("!BH", 0, len(name)) + name
        ext += struct.pack("!HH", 0, len(entry) + 2) + struct.pack("!H", len(entry)) + entry
    groups = struct.pack("!HHH", 4, 0x001D, 0x0017)
    ext += struct.pack("!HH", 10, len(groups)) + groups
    ext += struct.pack("!HHBHH", 43, 5, 4, 0x0304, 0x0303)          # supported_versions
    body = (struct.pack("!H", 0x0303) + rnd + struct.pack("!B", len(sid)) + sid
            + struct.pack("!H", 2 * len(suites)) + b"".join(struct.pack("!H", s) for s in suites)
            + b"\x01\x00" + struct.pack("!H", len(ext)) + ext)
    return _tls_record(22, _tls_handshake(1, body))


def tls_server_hello(*, seed: str = "", app_data: int = 1200) -> bytes:
    """A ServerHello + ChangeCipherSpec + one opaque application-data record of ``app_data`` bytes."""
    rnd = b"".join(struct.pack("!I", _ident("srnd", seed, i)) for i in range(8))
    ext = struct.pack("!HHH", 43, 2, 0x0304)
    body = struct.pack("!H", 0x0303) + rnd + b"\x20" + bytes(32) + struct.pack("!HB", 0x1301, 0)
    body += struct.pack("!H", len(ext)) + ext
    opaque = b"".join(struct.pack("!I", _ident("app", seed, i)) for i in range((app_data + 3) // 4))[:app_data]
    return (_tls_record(22, _tls_handshake(2, body)) + _tls_record(20, b"\x01")
            + _tls_record(23, opaque))


def smb2_negotiate() -> bytes:
    """NetBIOS session header + SMB2 NEGOTIATE request (dialects 2.0.2, 2.1)."""
    hdr = b"\xfeSMB" + struct.pack("<HHIHHIIQIIQ16s", 64, 0, 0, 0, 31, 0, 0, 0, 0xFEFF, 0, 0, bytes(16))
    body = struct.pack("<HHHHI16sQ", 36, 2, 1, 0, 0x7F, bytes(range(16)), 0) + struct.pack("<HH", 0x0202, 0x0210)
    msg = hdr + body
    return struct.pack(">I", len(msg)) + msg


def rdp_connection_request(user: str) -> bytes:
    """TPKT + X.224 Connection Request with the mstshash cookie and an RDP_NEG_REQ (TLS | CredSSP)."""
    x224 = b"\xe0\x00\x00\x00\x00\x00" + f"Cookie: mstshash={user}\r\n".encode() + b"\x01\x00\x08\x00\x03\x00\x00\x00"
    x224 = bytes([len(x224)]) + x224
    return struct.pack(">BBH", 3, 0, len(x224) + 4) + x224


# TPKT + X.224 Connection Confirm + RDP_NEG_RSP choosing TLS: the server's answer to the request above.
RDP_CONFIRM = bytes.fromhex("03000013" "0ed00000123400" "0200080002000000")


def snmp_get_public(request_id: int) -> bytes:
    """An SNMPv2c GetRequest for sysDescr.0 with community "public"."""
    return bytes(SNMP(version=1, community="public",
                      PDU=SNMPget(id=request_id, varbindlist=[SNMPvarbind(oid=ASN1_OID("1.3.6.1.2.1.1.1.0"))])))


def retime(pkts: Sequence[Packet], t0: float) -> list[Packet]:
    """Shift a list so its first packet is at ``t0`` (keeps the gaps); returns the same packets."""
    if pkts:
        delta = t0 - float(pkts[0].time)
        for p in pkts:
            p.time = float(p.time) + delta
    return list(pkts)
