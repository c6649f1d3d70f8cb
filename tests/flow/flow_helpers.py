"""Packets for the flow-table tests, built with scapy and run through the real decoder."""

from __future__ import annotations

from scapy.all import ICMP, IP, TCP, UDP, Dot1Q, Ether, IPv6, raw  # type: ignore[import-untyped]

from netsentry.decode import Decoder
from netsentry.decode.packet import Packet
from netsentry.flow import Flow, FlowTable

ETHER = Ether(src="00:11:22:33:44:55", dst="66:77:88:99:aa:bb")   # explicit: no ARP lookups
C, S = "10.0.0.1", "10.0.0.2"
_decoder = Decoder()


def packet(l3, ts: float, vlan: int | None = None) -> Packet:  # type: ignore[no-untyped-def]
    frame = raw(ETHER / Dot1Q(vlan=vlan) / l3) if vlan is not None else raw(ETHER / l3)
    pkt = _decoder.decode(frame, 1)
    pkt.ts = ts
    return pkt


def tcp(src: str, dst: str, sport: int, dport: int, flags: str, ts: float, seq: int = 0, ack: int = 0,
        payload: bytes = b"", vlan: int | None = None) -> Packet:
    return packet(IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack) / payload,
                  ts, vlan)


def udp(src: str, dst: str, sport: int, dport: int, ts: float, payload: bytes = b"x") -> Packet:
    return packet(IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / payload, ts)


def udp6(src: str, dst: str, sport: int, dport: int, ts: float) -> Packet:
    return packet(IPv6(src=src, dst=dst) / UDP(sport=sport, dport=dport) / b"6", ts)


def icmp(src: str, dst: str, itype: int, ts: float, ident: int = 1) -> Packet:
    return packet(IP(src=src, dst=dst) / ICMP(type=itype, id=ident), ts)


def handshake(table: FlowTable, t0: float = 100.0, cport: int = 40000, sport: int = 80) -> Flow:
    table.update(tcp(C, S, cport, sport, "S", t0, seq=1000))
    table.update(tcp(S, C, sport, cport, "SA", t0 + 0.01, seq=5000, ack=1001))
    flow = table.update(tcp(C, S, cport, sport, "A", t0 + 0.02, seq=1001, ack=5001))
    assert flow is not None
    return flow


class Ended(list):
    """on_end collector."""

    def __init__(self) -> None:
        super().__init__()
        self.reasons: list[str] = []

    def __call__(self, flow: Flow) -> None:
        self.append(flow)
        self.reasons.append(flow.end_reason)   # as seen at the moment on_end is called


def table(cfg: dict | None = None) -> tuple[FlowTable, Ended]:
    ended = Ended()
    return FlowTable(cfg or {}, ended), ended


def flow_module_compiled() -> bool:
    """True when `Flow` is the compiled typed record (flow.pxd), not the __slots__ class."""
    import netsentry.flow.flow as flow_module
    return not flow_module.__file__.endswith(".py")


def keys_per_flow() -> int:
    """Entries the table keeps per flow with distinct ends (`FlowTable.key_entries`): one
    when compiled (a C index slot under the normalised key for untagged IPv4 TCP/UDP,
    else the client's dict key, a miss probing the reversed one), both keys pure
    Python (there building the reversed key costs more than the entry; flow/table.py)."""
    import netsentry.flow.table as table_module
    return 2 if table_module.__file__.endswith(".py") else 1
