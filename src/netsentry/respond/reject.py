"""Reject responses: a TCP RST or an ICMP port-unreachable for a packet a reject rule dropped.

As Suricata (respond-reject): a TCP packet is answered with RST+ACK, any
other with ICMP destination-unreachable / port-unreachable (ICMPv6
type 1 code 4), carrying the offending IP header and the first 8 bytes
after it. The rule's action says who is told:

- ``reject`` / ``rejectsrc``: the packet's sender;
- ``rejectdst``: its receiver;
- ``rejectboth``: both.

RST numbers (RFC 793 section 3.4, as Suricata picks them): towards the
sender, an RST answering a packet without ACK has seq 0 and acknowledges
everything the packet occupied (payload, +1 for a SYN or FIN); otherwise
its seq is the packet's ACK number. Towards the receiver, the RST carries
the packet's own seq and ack, so the receiver takes it as the next segment.

Built with struct on raw ``IPPROTO_RAW`` sockets (the header is ours, the
kernel routes it): rejects are rare, but a flood of reject-rule hits must
not cost a scapy dissection each. An ICMP error is never sent about an
ICMP error (RFC 1122 3.2.2).
"""

from __future__ import annotations

import socket
import struct
from typing import Any

REJECT_DIRECTIONS = {
    "reject": ("src",),
    "rejectsrc": ("src",),
    "rejectdst": ("dst",),
    "rejectboth": ("src", "dst"),
}

TH_FIN, TH_SYN, TH_RST, TH_ACK = 0x01, 0x02, 0x04, 0x10
TTL = 64

_IP4 = struct.Struct("!BBHHHBBH4s4s")
_IP6 = struct.Struct("!IHBB16s16s")
_TCP = struct.Struct("!HHIIBBHHH")
_ICMP = struct.Struct("!BBHI")
_PSEUDO4 = struct.Struct("!4s4sxBH")
_PSEUDO6 = struct.Struct("!16s16sI3xB")

_ICMP4_ERRORS = frozenset((3, 4, 5, 11, 12))


def _csum(data: bytes) -> int:
    """RFC 1071 checksum via one big integer (2**16 == 1 mod 0xFFFF; see decode/checksum.py)."""
    if len(data) & 1:
        data += b"\0"
    v = int.from_bytes(data, "big")
    if v == 0:
        return 0xFFFF
    return 0xFFFF - (v % 0xFFFF or 0xFFFF)


def _l4_checksum(src: bytes, dst: bytes, proto: int, seg: bytes) -> int:
    if len(src) == 4:
        pseudo = _PSEUDO4.pack(src, dst, proto, len(seg))
    else:
        pseudo = _PSEUDO6.pack(src, dst, len(seg), proto)
    return _csum(pseudo + seg)


def _ip_header(src: bytes, dst: bytes, proto: int, payload_len: int) -> bytes:
    if len(src) == 4:
        hdr = _IP4.pack(0x45, 0, 20 + payload_len, 0, 0x4000, TTL, proto, 0, src, dst)
        return hdr[:10] + struct.pack("!H", _csum(hdr)) + hdr[12:]
    return _IP6.pack(0x60000000, payload_len, proto, TTL, src, dst)


def build_rst(pkt: Any, direction: str) -> bytes:
    """The RST+ACK (IP header included) telling `direction` ("src" or "dst") of TCP packet `pkt`."""
    if direction == "src":
        if pkt.ack == 0 or not pkt.tcp_flags & TH_ACK:
            seq = 0
            ack = pkt.seq + pkt.payload_len + (1 if pkt.tcp_flags & (TH_SYN | TH_FIN) else 0)
        else:
            seq = pkt.ack
            ack = pkt.seq + pkt.payload_len
        src, dst, sp, dp = pkt.dst, pkt.src, pkt.dp, pkt.sp
    else:
        seq, ack = pkt.seq, pkt.ack
        src, dst, sp, dp = pkt.src, pkt.dst, pkt.sp, pkt.dp
    seq &= 0xFFFFFFFF
    ack &= 0xFFFFFFFF
    tcp = _TCP.pack(sp, dp, seq, ack, 5 << 4, TH_RST | TH_ACK, 0, 0, 0)
    tcp = tcp[:16] + struct.pack("!H", _l4_checksum(src, dst, 6, tcp)) + tcp[18:]
    return _ip_header(src, dst, 6, len(tcp)) + tcp


def build_unreachable(pkt: Any, direction: str) -> bytes | None:
    """ICMP(v6) port unreachable to `direction` of `pkt`, quoting its IP header + 8 bytes (None for an ICMP error)."""
    data = pkt.data
    ip_off = pkt.ip_off
    if ip_off < 0:
        return None
    if pkt.proto == 1 and pkt.icmp_type in _ICMP4_ERRORS:
        return None
    if pkt.proto == 58 and 0 <= pkt.icmp_type < 128:
        return None
    if direction == "src":
        src, dst = pkt.dst, pkt.src
    else:
        src, dst = pkt.src, pkt.dst
    l4 = pkt.l4_off if pkt.l4_off >= 0 else ip_off + pkt.ip_hlen
    quoted = bytes(data[ip_off:l4 + 8])
    if len(src) == 4:
        body = _ICMP.pack(3, 3, 0, 0) + quoted
        body = body[:2] + struct.pack("!H", _csum(body)) + body[4:]
        return _ip_header(src, dst, 1, len(body)) + body
    quoted = quoted[:1232]          # the whole error within the IPv6 minimum MTU
    body = _ICMP.pack(1, 4, 0, 0) + quoted
    body = body[:2] + struct.pack("!H", _l4_checksum(src, dst, 58, body)) + body[4:]
    return _ip_header(src, dst, 58, len(body)) + body


class Rejecter:
    """Sends reject responses on two raw sockets (IPv4, IPv6) opened once, at start-up."""

    def __init__(self) -> None:
        try:
            self._sock4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        except OSError as exc:
            raise OSError(f"nfq: cannot open a raw socket for reject responses: {exc.strerror or exc} "
                          "(needs root or CAP_NET_RAW)") from None
        try:
            self._sock6: socket.socket | None = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
        except OSError:
            self._sock6 = None           # no IPv6 in this kernel: IPv6 packets are dropped without a response
        self.sent = 0
        self.errors = 0

    def reject(self, pkt: Any, action: str) -> int:
        """Answer `pkt` as reject rule `action` asks; returns the number of packets sent."""
        if pkt.ip_version not in (4, 6):
            return 0
        sent = 0
        for direction in REJECT_DIRECTIONS.get(action, ("src",)):
            frame = build_rst(pkt, direction) if pkt.proto == 6 else build_unreachable(pkt, direction)
            if frame is None:
                continue
            if pkt.ip_version == 4:
                sock, dst = self._sock4, socket.inet_ntop(socket.AF_INET, frame[16:20])
            else:
                if self._sock6 is None:
                    continue
                sock, dst = self._sock6, socket.inet_ntop(socket.AF_INET6, frame[24:40])
            try:
                sock.sendto(frame, (dst, 0))
                sent += 1
            except OSError:
                self.errors += 1        # unroutable, no buffer: the packet is still dropped
        self.sent += sent
        return sent

    def close(self) -> None:
        self._sock4.close()
        if self._sock6 is not None:
            self._sock6.close()
