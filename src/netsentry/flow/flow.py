"""The `Flow` record: one bidirectional conversation.

Created and updated only by the flow table; every other stage reads it and
may keep its own per-flow state in the slots reserved for it below (so the
detect engine never needs a side table keyed by flow).
"""

from __future__ import annotations

from array import array
from typing import Any
from zlib import crc32

try:
    import cython
except ImportError:          # pure install without Cython: the annotations are no-ops
    from netsentry import _cython_shim as cython  # type: ignore[no-redef]

from netsentry.decode.packet import ip_to_str


# `Flow.anomaly_due` of a flow the anomaly engine has not seen: every packet time is >= it.
NEVER_SEEN = float("-inf")

# TCP session states (Suricata's names) by the code `Flow._tcp_st` stores, and EVE's
# flow.state names by the code `Flow._st` stores: small C integers in the record, so
# the flow table's transition step is a table index (tcp_state.py), not a dict probe.
TCP_STATE_NAMES = ("none", "syn_sent", "syn_recv", "established", "fin_wait1", "fin_wait2",
                   "time_wait", "last_ack", "close_wait", "closing", "closed")
TCP_STATE_CODES = {name: code for code, name in enumerate(TCP_STATE_NAMES)}
FLOW_STATE_NAMES = ("new", "established", "closed")
FLOW_STATE_CODES = {name: code for code, name in enumerate(FLOW_STATE_NAMES)}
UNSET_STATE = 255       # either code of a record whose state was set to None (never the table's flows)


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
    behaviour. Only the per-stage slots and the identity values others share (key,
    addresses) are Python objects; the TCP and EVE states are small codes with their
    names as properties.

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
        "_flow_id", "_key", "proto", "ip_version", "vlan",
        "client", "server", "client_port", "server_port",
        # time and counters
        "start", "last_seen",
        "pkts_toserver", "pkts_toclient", "bytes_toserver", "bytes_toclient",
        # state
        "_tcp_st", "established", "end_reason", "alerted", "_st", "timeout_slot",
        "tcp_flags_ts", "tcp_flags_tc", "icmp",
        "_client_isn", "_server_isn", "_client_next_seq", "_server_next_seq",
        # per-stage storage (owned by the stage named)
        "flowbits", "flowints", "stream", "detect", "anomaly", "anomaly_due", "action", "app_proto", "app", "eve",
        "exception_policy", "payload_off",
    )

    def __init__(self, flow_id: int, key: Any, proto: int, ip_version: int, vlan: tuple[int, ...],
                 client: bytes, server: bytes, client_port: int, server_port: int, ts: float) -> None:
        _fill(self, flow_id, key, proto, ip_version, vlan, client, server, client_port, server_port, ts)

    @property
    def key(self) -> Any:
        """The flow table's client -> server key. A flow the compiled table keeps in its C
        index (untagged IPv4 TCP/UDP) stores none; its key is the same bytes rebuilt
        from the endpoints (``client server client_port server_port``), so flow ids
        and anything else derived from the key are those of the pure path."""
        k = self._key
        if k is None:
            return self.client + self.server + self.client_port.to_bytes(2, "big") + \
                self.server_port.to_bytes(2, "big")
        return k

    @key.setter
    def key(self, value: Any) -> None:
        self._key = value

    @property
    def tcp_state(self) -> str | None:
        """TCP session state in Suricata's names: none syn_sent syn_recv established
        fin_wait1 fin_wait2 time_wait last_ack close_wait closing closed. None (code
        UNSET_STATE) only on a record made outside the flow table that set it so."""
        code = self._tcp_st
        return None if code == UNSET_STATE else TCP_STATE_NAMES[code]

    @tcp_state.setter
    def tcp_state(self, name: str | None) -> None:
        code = UNSET_STATE if name is None else TCP_STATE_CODES.get(name)
        if code is None:
            raise ValueError(f"Flow.tcp_state: unknown TCP state {name!r} (one of {', '.join(TCP_STATE_NAMES)})")
        self._tcp_st = code

    @property
    def state(self) -> str | None:
        """EVE flow.state: "new", "established" or "closed" (None: left to the EVE
        writer to work out, for records made outside the flow table)."""
        code = self._st
        return None if code == UNSET_STATE else FLOW_STATE_NAMES[code]

    @state.setter
    def state(self, name: str | None) -> None:
        code = UNSET_STATE if name is None else FLOW_STATE_CODES.get(name)
        if code is None:
            raise ValueError(f"Flow.state: unknown flow state {name!r} (one of {', '.join(FLOW_STATE_NAMES)})")
        self._st = code

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
            if cython.compiled:
                fid = _flow_id_c(self)      # 0: a key shape it does not take (a VLAN tuple)
            if not fid:
                fid = flow_id_for(self.key, self.proto, self.start)
            self._flow_id = fid
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


def _crc32_table() -> bytes:
    """zlib's CRC-32 table (reflected polynomial 0xEDB88320), one 32-bit entry per byte
    value, as the bytes of a native-order unsigned int array (`_crc32` reads it in C)."""
    table = array("I")
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0xEDB88320 if c & 1 else 0)
        table.append(c)
    return table.tobytes()


# Read by `_flow_id_c` through one pointer per flow id: bit by bit, the CRC was ~1,100
# instructions per flow record under callgrind (bench-200k); by table ~150.
_CRC_TABLE = _crc32_table()


@cython.cfunc
@cython.exceptval(check=False)
def _crc32(tbl: cython.p_uint, crc: cython.uint, p: cython.p_uchar, n: cython.Py_ssize_t) -> cython.uint:
    """zlib's ``crc32(bytes, crc)`` (CRC-32, reflected polynomial 0xEDB88320) of `n` bytes
    at `p`, continuing from `crc`; a lookup per byte in `tbl` (`_CRC_TABLE`'s entries)."""
    i: cython.Py_ssize_t
    crc = ~crc
    for i in range(n):
        crc = tbl[(crc ^ p[i]) & 0xFF] ^ (crc >> 8)
    return ~crc


@cython.cfunc
def _flow_id_c(flow: Flow) -> cython.longlong:
    """`flow_id_for(flow.key, flow.proto, flow.start)` in C, without the key's bytes
    object (a flow in the compiled table's C index stores none, see `key`) or the two
    ``crc32`` calls: 2.5% of the whole sensor on bench-1m, where every flow is logged.
    0 where it does not apply (a tuple key, addresses that are not bytes, a start time
    out of range): the caller then takes `flow_id_for`. tests/flow/test_flow_table.py
    compares the two."""
    buf: cython.uchar[4]
    crc: cython.uint
    t: cython.longlong
    fid: cython.longlong
    ts: cython.double = flow.start
    if not (0.0 <= ts < 1e12):
        return 0
    tbl: cython.p_uint = cython.cast(cython.p_uint, cython.cast(cython.p_char, _CRC_TABLE))
    key = flow._key
    if key is None:
        client = flow.client
        server = flow.server
        if type(client) is not bytes or type(server) is not bytes:
            return 0
        crc = _crc32(tbl, flow.proto, cython.cast(cython.p_uchar, cython.cast(cython.p_char, client)), len(client))
        crc = _crc32(tbl, crc, cython.cast(cython.p_uchar, cython.cast(cython.p_char, server)), len(server))
        buf[0] = flow.client_port >> 8
        buf[1] = flow.client_port & 0xFF
        buf[2] = flow.server_port >> 8
        buf[3] = flow.server_port & 0xFF
        crc = _crc32(tbl, crc, cython.address(buf[0]), 4)
    elif type(key) is bytes:
        crc = _crc32(tbl, flow.proto, cython.cast(cython.p_uchar, cython.cast(cython.p_char, key)), len(key))
    else:
        return 0
    t = cython.cast(cython.longlong, ts * 1000000.0)
    fid = (cython.cast(cython.longlong, crc) << 31) ^ (t & 0x7FFFFFFF)
    return fid if fid else 1


@cython.cfunc
def _fill(flow: Flow, flow_id: cython.longlong, key: object, proto: cython.int, ip_version: cython.int,
          vlan: object, client: object, server: object, client_port: cython.int, server_port: cython.int,
          ts: cython.double) -> cython.void:
    """Every field of a new flow (`Flow.__init__` and `new_flow`)."""
    flow._flow_id = flow_id         # 0: computed on first read of `flow_id` (the table passes 0)
    flow._key = key                 # flow table: the client -> server key, the one it is filed under;
                                    # None: filed in the compiled table's C index (see `key`)
    flow.proto = proto
    flow.ip_version = ip_version
    flow.vlan = vlan
    flow.client = client            # packed address of the side that opened the flow
    flow.server = server
    flow.client_port = client_port
    flow.server_port = server_port
    flow.start = ts
    flow.last_seen = ts
    flow.pkts_toserver = 0
    flow.pkts_toclient = 0
    flow.bytes_toserver = 0
    flow.bytes_toclient = 0
    flow._tcp_st = 0                # TCP state, TCP_STATE_NAMES' code (`tcp_state` gives the name)
    flow.established = False        # flow:established for the current packet: TCP, the state before it was
                                    # established (not the handshake-completing ACK); UDP, both ways seen
    flow.end_reason = ""            # "timeout", "forced", "shutdown" when the flow ends
    flow.alerted = False
    flow._st = 0                    # EVE flow.state, FLOW_STATE_NAMES' code (`state` gives the name)
    flow.payload_off = 0            # Suricata's FLOW_NOPAYLOAD_INSPECTION (an encrypted session, see
                                    # applayer/registry.py Encrypted): 0 no; 1 from the next packet
                                    # (set by the app layer on the packet whose bytes turned the session
                                    # encrypted, which is still inspected in full); 2 in effect: packet
                                    # and stream payload are not inspected, the raw stream keeps nothing
    flow.timeout_slot = -1          # flow table: wheel key this flow is filed under for expiry
    flow.tcp_flags_ts = 0           # TCP: every flag the client sent, ORed (EVE flow tcp.tcp_flags_ts)
    flow.tcp_flags_tc = 0           # ... and the server
    flow.icmp = None                # ICMP: (type, code) of the first packet, + the first reply's
    flow._client_isn = -1           # -1: unknown (the properties below give None)
    flow._server_isn = -1
    flow._client_next_seq = -1      # stream_size bookkeeping: highest seq+len seen per side
    flow._server_next_seq = -1
    flow.flowbits = None            # rules: flowbits (name -> None) and pcre flowvars (("var", name) -> bytes), insertion-ordered dict
    flow.flowints = None            # rules: flowint name -> int
    flow.stream = None              # stream/tcp.py: both directions' reassembly state
    flow.detect = None              # detect engine's private per-flow state
    flow.anomaly = None             # anomaly engine's private per-flow state
    flow.anomaly_due = NEVER_SEEN   # anomaly engine: packet time from which it needs this flow's packets again
    flow.action = None              # "drop" once a drop rule matched (IPS: dropped flows stay dropped), "pass"
    flow.app_proto = None
    flow.app = None                 # applayer: protocol detection and parser state (applayer/state.py)
    flow.eve = None                 # EVE writer: client, server and start as text (output/eve.py flow_texts)
    flow.exception_policy = None    # [(target, policy)] applied (exception_policy.py)


@cython.cfunc
def new_flow(key: object, proto: cython.int, ip_version: cython.int, vlan: object, client: object,
             server: object, client_port: cython.int, server_port: cython.int, ts: cython.double) -> Flow:
    """The flow table's constructor (flow id 0: computed on first read). Compiled, a C call:
    the type's allocation and C stores, without `Flow(...)`'s argument boxing and
    parsing (it was 6% of the read+decode+flow bench in py-spy, a new flow per 4.5
    packets there)."""
    flow: Flow = Flow.__new__(Flow)
    _fill(flow, 0, key, proto, ip_version, vlan, client, server, client_port, server_port, ts)
    return flow
