"""The `Flow` record: one bidirectional conversation.

Created and updated only by the flow table; every other stage reads it and
may keep its own per-flow state in the slots reserved for it below (so the
detect engine never needs a side table keyed by flow).
"""

from __future__ import annotations

from typing import Any
from zlib import crc32

from netsentry.decode.packet import ip_to_str


# `Flow.anomaly_due` of a flow the anomaly engine has not seen: every packet time is >= it.
NEVER_SEEN = float("-inf")


def flow_id_for(key: Any, proto: int, ts: float) -> int:
    """Stable across runs (no hash randomisation) and in Suricata's range (0 < id < 2**63):
    CRC-32 of key and protocol in the high 32 bits, start time in microseconds below.
    (Was blake2b: 6.5% of the flow stage in py-spy; crc32 costs a quarter of it.)"""
    if type(key) is tuple:
        crc = crc32(repr(key[0]).encode(), crc32(key[1], proto))
    else:
        crc = crc32(key, proto)
    return ((crc << 31) ^ (int(ts * 1_000_000) & 0x7FFFFFFF)) or 1


class Flow:
    """One live flow: fixed slots, no per-flow dict, so a typo is an AttributeError and
    a stage that needs per-flow state gets a slot here (listed last, None until it
    first uses it) instead of a side table keyed by flow.

    Memory (bench/bench_flow_memory.py, CPython 3.11, 262,144 live TCP flows): the
    record is 352 bytes (16 object + 16 GC header + 8 per slot), and the table keeps
    ~336 more per flow beside it: two dict entries (~80-105, by dict fill), the two
    12-byte keys (96), the two packed addresses (80), a port above 256 and the
    sequence bookkeeping (28-32 each). So a new slot costs every flow 8 bytes, and a
    per-flow value that is not a small int (-5..256), None, a bool or a shared
    constant costs an object (an int 28-32 bytes, a float 24, a tuple 56+). Values
    many flows hold are shared where it is free (the wheel slot is one int per bucket).

    For the compiled build (Cython's pure-Python mode, `COMPILED_MODULES`): the
    counters, ports, flags, timeout_slot and _flow_id are plain ints, start,
    last_seen and anomaly_due floats; client_isn, server_isn, client_next_seq and
    server_next_seq are ints or None (unknown, see tcp_state); every other field is
    a Python object."""

    __slots__ = (
        # identity
        "_flow_id", "key", "proto", "ip_version", "vlan",
        "client", "server", "client_port", "server_port",
        # time and counters
        "start", "last_seen",
        "pkts_toserver", "pkts_toclient", "bytes_toserver", "bytes_toclient",
        # state
        "tcp_state", "established", "end_reason", "alerted", "state", "timeout_slot", "rkey",
        "tcp_flags_ts", "tcp_flags_tc", "icmp",
        "client_isn", "server_isn", "client_next_seq", "server_next_seq",
        # per-stage storage (owned by the stage named)
        "flowbits", "flowints", "stream", "detect", "anomaly", "anomaly_due", "action", "app_proto", "app", "eve",
        "exception_policy",
    )

    def __init__(self, flow_id: int, key: Any, proto: int, ip_version: int, vlan: tuple[int, ...],
                 client: bytes, server: bytes, client_port: int, server_port: int, ts: float,
                 rkey: Any = None) -> None:
        self._flow_id = flow_id         # 0: computed on first read of `flow_id` (the table passes 0)
        self.key = key                  # normalised table key
        self.proto = proto
        self.ip_version = ip_version
        self.vlan = vlan
        self.client = client            # packed address of the side that opened the flow
        self.server = server
        self.client_port = client_port
        self.server_port = server_port
        self.start = ts
        self.last_seen = ts
        self.pkts_toserver = 0
        self.pkts_toclient = 0
        self.bytes_toserver = 0
        self.bytes_toclient = 0
        self.tcp_state = "none"         # Suricata names: none syn_sent syn_recv established fin_wait1 ... closed
        self.established = False        # flow:established for the current packet: TCP, the state before it was
                                        # established (not the handshake-completing ACK); UDP, both ways seen
        self.end_reason = ""            # "timeout", "forced", "shutdown" when the flow ends
        self.alerted = False
        self.state = "new"              # EVE flow.state: "new", "established" or "closed"
        self.timeout_slot = -1          # flow table: packet-time second this flow is filed under for expiry
        self.rkey = rkey                # flow table: key of the server -> client direction
        self.tcp_flags_ts = 0           # TCP: every flag the client sent, ORed (EVE flow tcp.tcp_flags_ts)
        self.tcp_flags_tc = 0           # ... and the server
        self.icmp: tuple[int, ...] | None = None  # ICMP: (type, code) of the first packet, + the first reply's
        self.client_isn = None
        self.server_isn = None
        self.client_next_seq = None     # stream_size bookkeeping: highest seq+len seen per side
        self.server_next_seq = None
        self.flowbits: set[str] | None = None   # rules: flowbits (created on first set)
        self.flowints: dict[str, int] | None = None
        self.stream: Any = None         # stream/tcp.py: both directions' reassembly state
        self.detect: Any = None         # detect engine's private per-flow state
        self.anomaly: Any = None        # anomaly engine's private per-flow state
        self.anomaly_due = NEVER_SEEN   # anomaly engine: packet time from which it needs this flow's packets again
        self.action: str | None = None  # "drop" once a drop rule matched (IPS: dropped flows stay dropped), "pass"
        self.app_proto: str | None = None
        self.app: Any = None            # applayer: protocol detection and parser state (applayer/state.py)
        self.eve: Any = None            # EVE writer: client, server and start as text (output/eve.py flow_texts)
        self.exception_policy: list[tuple[str, str]] | None = None  # (target, policy) applied (exception_policy.py)

    @property
    def flow_id(self) -> int:
        """Stable 64-bit id (as Suricata: fits in a signed int64, > 0), from key, protocol and
        start time. Computed on first use: most flows in a busy capture are never
        reported, and the CRC at creation was 0.3 us of each new flow (bench/README.md)."""
        fid = self._flow_id
        if not fid:
            fid = self._flow_id = flow_id_for(self.key, self.proto, self.start)
        return fid

    @flow_id.setter
    def flow_id(self, value: int) -> None:
        self._flow_id = value

    @property
    def client_ip(self) -> str:
        return ip_to_str(self.client)

    @property
    def server_ip(self) -> str:
        return ip_to_str(self.server)

    def __repr__(self) -> str:
        return (f"<Flow {self.flow_id} {self.client_ip}:{self.client_port} -> "
                f"{self.server_ip}:{self.server_port} proto={self.proto} state={self.tcp_state}>")
