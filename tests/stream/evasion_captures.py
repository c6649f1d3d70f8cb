#!/usr/bin/env python3
"""Evasion captures for the stream stage, crafted with scapy.

    python tests/stream/evasion_captures.py OUTDIR      # write every capture as OUTDIR/NAME.pcap

Each scenario returns scapy packets with `.time` set, in wire order, and the
1-based packet number Suricata names in the alert (the packet whose data
completes the match: the last segment or fragment that makes the pattern
whole; stream data is inspected as it becomes in order, i.e. Suricata's
inline timing). Addresses are documentation ones (RFC 5737 / RFC 3849).
The tests (test_evasion.py) write them to a temporary directory and replay
them through the whole sensor; nothing is committed but this script.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

C, S = "192.0.2.10", "198.51.100.20"
# explicit MACs: a bare Ether() would make scapy resolve the destination (ARP) while building
MAC_C, MAC_S = "02:00:00:00:00:0c", "02:00:00:00:00:05"
C6, S6 = "2001:db8::10", "2001:db8::20"
CP, SP = 41000, 8080
T0 = 1_700_000_000.0
ISN_C, ISN_S = 1000, 5000

# what the rules look for (tests/stream/test_evasion.py)
TCP_PATTERN = b"EVIL-PAYLOAD"
UDP_PATTERN = b"FRAGMENTED-EVIL"


def _stamp(pkts: list[Packet]) -> list[Packet]:
    for i, p in enumerate(pkts):
        p.time = T0 + i * 0.001
    return pkts


def _seg(off: int, data: bytes, to_server: bool = True, flags: str = "PA") -> Packet:
    """A data segment at stream offset `off` (0 = first byte after the SYN)."""
    if to_server:
        return Ether(src=MAC_C, dst=MAC_S) / IP(src=C, dst=S) / TCP(sport=CP, dport=SP, flags=flags, seq=ISN_C + 1 + off,
                                                 ack=ISN_S + 1) / Raw(data)
    return Ether(src=MAC_S, dst=MAC_C) / IP(src=S, dst=C) / TCP(sport=SP, dport=CP, flags=flags, seq=ISN_S + 1 + off,
                                             ack=ISN_C + 1) / Raw(data)


def _handshake() -> list[Packet]:
    return [Ether(src=MAC_C, dst=MAC_S) / IP(src=C, dst=S) / TCP(sport=CP, dport=SP, flags="S", seq=ISN_C),
            Ether(src=MAC_S, dst=MAC_C) / IP(src=S, dst=C) / TCP(sport=SP, dport=CP, flags="SA", seq=ISN_S, ack=ISN_C + 1),
            Ether(src=MAC_C, dst=MAC_S) / IP(src=C, dst=S) / TCP(sport=CP, dport=SP, flags="A", seq=ISN_C + 1, ack=ISN_S + 1)]


def tcp_split() -> tuple[list[Packet], int]:
    """The pattern over three in-order segments: alert on the third."""
    data = b"GET /x?q=" + TCP_PATTERN + b" HTTP/1.0\r\n\r\n"
    cut1, cut2 = 12, 16              # inside the pattern
    pkts = _handshake() + [_seg(0, data[:cut1]), _seg(cut1, data[cut1:cut2]), _seg(cut2, data[cut2:])]
    return _stamp(pkts), 6


def tcp_tiny_segments() -> tuple[list[Packet], int]:
    """One byte per segment: alert on the segment carrying the pattern's last byte."""
    data = b"xx" + TCP_PATTERN + b"yy"
    pkts = _handshake() + [_seg(i, data[i:i + 1]) for i in range(len(data))]
    return _stamp(pkts), 3 + 2 + len(TCP_PATTERN)


def tcp_out_of_order() -> tuple[list[Packet], int]:
    """Segments 3, 1, 2: nothing is in order until the second arrives, which completes it."""
    data = b"hello " + TCP_PATTERN + b" bye"
    a, b = 8, 13
    pkts = _handshake() + [_seg(b, data[b:]), _seg(0, data[:a]), _seg(a, data[a:b])]
    return _stamp(pkts), 6


def tcp_retransmission() -> tuple[list[Packet], int]:
    """The whole request, then the same segment again: one alert, on the first."""
    data = b"POST " + TCP_PATTERN + b"\r\n"
    pkts = _handshake() + [_seg(0, data), _seg(0, data)]
    return _stamp(pkts), 4


def tcp_overlap_starts_before() -> tuple[list[Packet], int]:
    """Held data `BENIGN-BYTES` at offset 6, then a segment from offset 0 carrying the pattern over it.

    The new segment starts before the held one: bsd, linux, windows, solaris
    (it reaches the held one's end) and last keep the new bytes (the pattern);
    first and vista keep the held bytes (no pattern)."""
    later = b"BENIGN-BYTES"
    assert len(later) == len(TCP_PATTERN)
    pkts = _handshake() + [_seg(6, later), _seg(0, b"xxxxxx" + TCP_PATTERN)]
    return _stamp(pkts), 5


def tcp_overlap_same_start_longer() -> tuple[list[Packet], int]:
    """Held `BENIGN-BYTES` at offset 6, then a longer segment from the same offset with the pattern.

    Same start, ends beyond: linux, old-linux, solaris and last take the new
    bytes; bsd, windows, first keep the held ones."""
    later = b"BENIGN-BYTES"
    pkts = _handshake() + [_seg(6, later), _seg(6, TCP_PATTERN + b"tail"), _seg(0, b"xxxxxx")]
    return _stamp(pkts), 6


def _frag4(payload: bytes, ident: int, offsets: list[tuple[int, int, bool]]) -> list[Packet]:
    """IPv4 fragments of a UDP datagram: (start, end, more fragments) in bytes of the IP payload."""
    out = []
    for start, end, more in offsets:
        out.append(Ether(src=MAC_C, dst=MAC_S) / IP(src=C, dst=S, id=ident, proto=17, flags="MF" if more else 0,
                                frag=start // 8) / Raw(payload[start:end]))
    return out


def _udp_bytes(payload: bytes, v6: bool = False) -> bytes:
    if v6:
        return bytes(IPv6(src=C6, dst=S6) / UDP(sport=5353, dport=9999) / payload)[40:]
    return bytes(IP(src=C, dst=S) / UDP(sport=5353, dport=9999) / payload)[20:]


def ipv4_tiny_fragments() -> tuple[list[Packet], int]:
    """8-byte fragments (the UDP header alone in the first): alert on the last."""
    data = _udp_bytes(b"aaaaaaaa" + UDP_PATTERN + b"zzzzzzzzz")
    cuts = list(range(0, len(data), 8))
    frags = [(c, min(c + 8, len(data)), c + 8 < len(data)) for c in cuts]
    pkts = _frag4(data, 0x1234, frags)
    return _stamp(pkts), len(pkts)


def ipv4_out_of_order_fragments() -> tuple[list[Packet], int]:
    """Last fragment first, then the middle, then the first: alert on the third packet."""
    data = _udp_bytes(b"aaaaaaaa" + UDP_PATTERN + b"zzzzzzzzz")
    n = len(data)
    pkts = _frag4(data, 0x2345, [(24, n, False), (8, 24, True), (0, 8, True)])
    return _stamp(pkts), 3


def ipv4_overlapping_fragments() -> tuple[list[Packet], int]:
    """A first fragment carrying benign bytes, then one starting earlier carrying the pattern.

    Offsets 16-40 first with `X`s, then 8-40 with the real data: the second
    starts before the first, so bsd, linux, solaris (it reaches the end) and
    last take it; first and windows (it does not end beyond) keep the `X`s."""
    data = _udp_bytes(b"aaaaaaaa" + UDP_PATTERN + b"z")     # 8 + 8 + 15 + 1 = 32 bytes
    n = len(data)
    benign = bytearray(data)
    benign[16:n] = b"X" * (n - 16)
    pkts = (_frag4(bytes(benign), 0x3456, [(16, n, False)])
            + _frag4(data, 0x3456, [(8, n, False)])
            + _frag4(data, 0x3456, [(0, 8, True)]))
    return _stamp(pkts), 3


def ipv6_fragments() -> tuple[list[Packet], int]:
    """IPv6 fragments, out of order and 8 bytes each in the middle: alert on the last one sent."""
    data = _udp_bytes(b"aaaaaaaa" + UDP_PATTERN + b"zzzzzzzzz", v6=True)
    n = len(data)
    pieces = [(0, 8), (8, 16), (16, 24), (24, n)]
    order = [2, 0, 3, 1]
    pkts = []
    for i in order:
        start, end = pieces[i]
        pkts.append(Ether(src=MAC_C, dst=MAC_S) / IPv6(src=C6, dst=S6)
                    / IPv6ExtHdrFragment(id=0xABCD, nh=17, offset=start // 8, m=int(end < n))
                    / Raw(data[start:end]))
    return _stamp(pkts), 4


SCENARIOS: dict[str, Callable[[], tuple[list[Packet], int]]] = {
    "tcp-split": tcp_split,
    "tcp-tiny-segments": tcp_tiny_segments,
    "tcp-out-of-order": tcp_out_of_order,
    "tcp-retransmission": tcp_retransmission,
    "tcp-overlap-starts-before": tcp_overlap_starts_before,
    "tcp-overlap-same-start-longer": tcp_overlap_same_start_longer,
    "ipv4-tiny-fragments": ipv4_tiny_fragments,
    "ipv4-out-of-order-fragments": ipv4_out_of_order_fragments,
    "ipv4-overlapping-fragments": ipv4_overlapping_fragments,
    "ipv6-fragments": ipv6_fragments,
}


def write(name: str, out: Path) -> tuple[Path, int]:
    pkts, pcap_cnt = SCENARIOS[name]()
    path = out / f"{name}.pcap"
    wrpcap(str(path), pkts)
    return path, pcap_cnt


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    target = Path(sys.argv[1])
    target.mkdir(parents=True, exist_ok=True)
    for scenario in SCENARIOS:
        p, cnt = write(scenario, target)
        print(f"{p}  (alert expected on packet {cnt})")
