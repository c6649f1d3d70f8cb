"""The `Flow` record: one bidirectional conversation.

Created and updated only by the flow table; every other stage reads it and
may keep its own per-flow state in the slots reserved for it below (so the
detect engine never needs a side table keyed by flow).
"""

from __future__ import annotations

from typing import Any
from zlib import crc32

try:
    import cython
except ImportError:          # pure install without Cython: the annotations are no-ops
    from netsentry import _cython_shim as cython  # type: ignore[no-redef]

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


@cython.cclass
class Flow:
    """One live flow: fixed fields, no per-flow dict, so a typo is an AttributeError and
    a stage that needs per-flow state gets a field here (listed last, None until it
    first uses it) instead of a side table keyed by flow.

    Compiled (setup.py `COMPILED_MODULES`), this is a typed extension type declared in
    flow.pxd beside this file: times are C doubles, counters, ports, flags, the wheel
    slot and the sequence bookkeeping C integers, stored in the record itself instead
    of one int or float object each; the compiled flow table and TCP state (and any
    compiled module that cimports the .pxd) read and write them as C struct fields.
    Pure Python, the same class is a ``__slots__`` class with the same fields and
    behaviour. Only the per-stage slots and the identity/state values others share
    (key, addresses, state names) are Python objects.

    Memory (bench/bench_flow_memory.py, 262,144 live TCP flows): compiled, the record
    is 312 bytes with nothing beside it but the objects it shares (key, addresses,
    per-stage state), and the whole table 447 B per flow; the ``__slots__`` class was
    352 bytes plus ~220 bytes of int and float objects per TCP flow (counters above
    256, times, sequence numbers), 696 B per flow in the table. Pure Python the
    record is 344 bytes (8 per slot). So a new object field costs every flow 8 bytes.

    The sequence bookkeeping (``client_isn``, ``server_isn``, ``client_next_seq``,
    ``server_next_seq``: an int, or None while unknown, see tcp_state) is stored in
    ``_client_isn``... as an int with -1 for unknown (sequence numbers are < 2**32);
    the public names are properties that give None for -1."""

    __slots__ = (
        # identity
        "_flow_id", "key", "proto", "ip_version", "vlan",
        "client", "server", "client_port", "server_port",
        # time and counters
        "start", "last_seen",
        "pkts_toserver", "pkts_toclient", "bytes_toserver", "bytes_toclient",
        # state
        "tcp_state", "established", "end_reason", "alerted", "state", "timeout_slot",
        "tcp_flags_ts", "tcp_flags_tc", "icmp",
        "_client_isn", "_server_isn", "_client_next_seq", "_server_next_seq",
        # per-stage storage (owned by the stage named)
        "flowbits", "flowints", "stream", "detect", "anomaly", "anomaly_due", "action", "app_proto", "app", "eve",
        "exception_policy",
    )

    def __init__(self, flow_id: int, key: Any, proto: int, ip_version: int, vlan: tuple[int, ...],
                 client: bytes, server: bytes, client_port: int, server_port: int, ts: float) -> None:
        self._flow_id = flow_id         # 0: computed on first read of `flow_id` (the table passes 0)
        self.key = key                  # flow table: the client -> server key, the one it is filed under
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
        self.timeout_slot = -1          # flow table: wheel key this flow is filed under for expiry
        self.tcp_flags_ts = 0           # TCP: every flag the client sent, ORed (EVE flow tcp.tcp_flags_ts)
        self.tcp_flags_tc = 0           # ... and the server
        self.icmp = None                # ICMP: (type, code) of the first packet, + the first reply's
        self._client_isn = -1           # -1: unknown (the properties below give None)
        self._server_isn = -1
        self._client_next_seq = -1      # stream_size bookkeeping: highest seq+len seen per side
        self._server_next_seq = -1
        self.flowbits = None            # rules: flowbits (name -> None) and pcre flowvars (("var", name) -> bytes), insertion-ordered dict
        self.flowints = None            # rules: flowint name -> int
        self.stream = None              # stream/tcp.py: both directions' reassembly state
        self.detect = None              # detect engine's private per-flow state
        self.anomaly = None             # anomaly engine's private per-flow state
        self.anomaly_due = NEVER_SEEN   # anomaly engine: packet time from which it needs this flow's packets again
        self.action = None              # "drop" once a drop rule matched (IPS: dropped flows stay dropped), "pass"
        self.app_proto = None
        self.app = None                 # applayer: protocol detection and parser state (applayer/state.py)
        self.eve = None                 # EVE writer: client, server and start as text (output/eve.py flow_texts)
        self.exception_policy = None    # [(target, policy)] applied (exception_policy.py)

    # sequence bookkeeping: int, or None while unknown (-1 inside)
    @property
    def client_isn(self) -> int | None:
        v = self._client_isn
        return None if v < 0 else v

    @client_isn.setter
    def client_isn(self, value: int | None) -> None:
        self._client_isn = -1 if value is None else value

    @property
    def server_isn(self) -> int | None:
        v = self._server_isn
        return None if v < 0 else v

    @server_isn.setter
    def server_isn(self, value: int | None) -> None:
        self._server_isn = -1 if value is None else value

    @property
    def client_next_seq(self) -> int | None:
        v = self._client_next_seq
        return None if v < 0 else v

    @client_next_seq.setter
    def client_next_seq(self, value: int | None) -> None:
        self._client_next_seq = -1 if value is None else value

    @property
    def server_next_seq(self) -> int | None:
        v = self._server_next_seq
        return None if v < 0 else v

    @server_next_seq.setter
    def server_next_seq(self, value: int | None) -> None:
        self._server_next_seq = -1 if value is None else value

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
