"""The `Packet` record: what the decoder knows about one frame.

Every stage after decode reads packets, so this is the first of the small
data types the pipeline stages meet at (with `Flow` and `Event`).

Two forms of one class, with the same fields and meanings:

* **pure Python**: a plain class with class-level defaults and no
  ``__slots__``. The decoder sets only the fields a given packet has (an ICMP
  packet never touches ``seq``), and unset fields fall back to the class
  defaults for free. CPython 3.11 keeps such instances' attributes in a
  shared-key "inline values" layout, so a store costs about what a slot
  store does, and constructing ``Packet()`` with no ``__init__`` is the
  cheapest object creation there is. The decoder's fast path returns
  subclasses of `Packet` (one per common shape, e.g. Ethernet/IPv4/TCP
  without options) whose shared fields are class attributes and whose rarely
  read header fields (``ttl``, ``tos``, ``ip_id``, ``ip_flags``, ``win``) are
  read from ``data`` on first access. Replace ``data`` only on a copy
  (``copy.copy`` materialises those fields), never on the original.
* **compiled** (setup.py ``COMPILED_MODULES``): an extension type laid out in
  packet.pxd, one object slot per field, the defaults stored by
  ``__cinit__``. The compiled decoder, flow table, TCP state and capture loop
  cimport the layout and read and write fields as struct members; Python
  stages go through slot member descriptors (installed in place of Cython's
  properties at import), which the interpreter serves as fast as a plain
  instance's attributes. The decoder returns plain `Packet`s with every
  field stored. An attribute that is not a field still works (the type has
  a ``__dict__``), but a stage that needs a per-packet value adds a field:
  one line in the class body, in `FIELDS`, in packet.pxd and, when its
  default is not None, in ``__cinit__`` (tests/decode/test_packet.py checks
  they agree).

For readers nothing differs between the two; writers may assign any field.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

try:
    import cython
except ImportError:      # Cython is a build dependency only (netsentry/_cython_shim.py)
    from netsentry import _cython_shim as cython  # type: ignore[no-redef]

if TYPE_CHECKING:  # pragma: no cover
    from netsentry.flow.flow import Flow

_AF = {4: socket.AF_INET, 16: socket.AF_INET6}
MAX_EVENTS = 15     # decoder events kept per packet (Suricata's PACKET_ENGINE_EVENT_MAX)

# Every field, in class-body order: the compiled type's slots (packet.pxd) and its pickle state.
FIELDS = (
    "pcap_cnt", "ts", "linktype", "data", "wirelen", "vlan",
    "ip_version", "ip_off", "src", "dst", "proto", "ttl", "tos", "ip_id", "ip_flags",
    "frag_offset", "ip_hlen", "ip_len", "ip_opts", "ip6_exthdrs", "tunnel",
    "l4_off", "sp", "dp", "tcp_flags", "seq", "ack", "win", "tcp_hlen", "tcp_mss", "tcp_wscale",
    "tcp_sackok", "tcp_tsval", "tcp_tsecr", "icmp_type", "icmp_code", "icmp_id", "icmp_seq",
    "payload_off", "payload_len",
    "events", "checksum_bad", "frag", "reassembled", "root",
    "flow", "to_server", "verdict", "stream_added", "stream_data", "stream_old", "stream_to_server",
    "drop_alert", "drop_reason", "reject_action", "pktvars", "no_inspect",
)
# True when `Packet` is the compiled extension type (the decoder's fast path builds
# plain `Packet`s then; the pure one builds its lazy-field subclasses)
TYPED: bool = cython.compiled


@cython.freelist(64)
@cython.cclass
class Packet:
    """One decoded frame; the fields below, with their defaults, are the whole record.

    Pure Python: a plain class whose class-level defaults stand for the fields a
    packet never sets (see the module docstring). Compiled: an extension type laid
    out in packet.pxd, every field a slot, its defaults stored by ``__cinit__``.
    """

    if not cython.compiled:
        # --- capture -----------------------------------------------------------
        pcap_cnt: int = 0          # 1-based packet number across the whole replay/capture
        ts: float = 0.0            # seconds since the epoch (packet time in replay)
        linktype: int = 1          # pcap LINKTYPE_* of `data`
        data: bytes = b""          # the captured frame, never copied
        wirelen: int = 0           # original length on the wire (>= len(data))

        # --- link --------------------------------------------------------------
        vlan: tuple[int, ...] = ()  # 802.1Q / 802.1ad ids, outermost first

        # --- network (innermost IP header when tunnelled) -------------------------
        ip_version: int = 0        # 4, 6, or 0 for non-IP frames
        ip_off: int = -1           # offset of the IP header in `data`
        src: bytes = b""           # packed source address (4 or 16 bytes)
        dst: bytes = b""           # packed destination address
        proto: int = 0             # transport protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...)
        ttl: int = 0               # TTL / hop limit
        tos: int = 0               # IPv4 TOS / IPv6 traffic class
        ip_id: int = 0             # IPv4 identification (IPv6: fragment header id, else 0)
        ip_flags: int = 0          # IPv4 flags bits (0x4 reserved, 0x2 DF, 0x1 MF)
        frag_offset: int = 0       # fragment offset in 8-byte units
        ip_hlen: int = 0           # IPv4 header length / IPv6 40 + extension headers
        ip_len: int = 0            # IPv4 total length / IPv6 40 + payload length
        ip_opts: tuple[int, ...] = ()    # IPv4 option types present (EOL 0 and NOP 1 included)
        ip6_exthdrs: tuple[int, ...] = ()  # IPv6 extension header types present, in order
        tunnel: tuple[bytes, bytes, int] | None = None  # outer (src, dst, proto) for GRE etc.

        # --- transport -----------------------------------------------------------
        l4_off: int = -1           # offset of the transport header in `data`
        sp: int = 0                # source port (0 when the protocol has none)
        dp: int = 0                # destination port
        tcp_flags: int = 0         # FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08 ACK 0x10 URG 0x20 ECE 0x40 CWR 0x80
        seq: int = 0
        ack: int = 0
        win: int = 0               # raw window field (unscaled)
        tcp_hlen: int = 0          # data offset in bytes
        tcp_mss: int = -1          # MSS option value, -1 if absent
        tcp_wscale: int = -1       # window-scale option shift, -1 if absent
        tcp_sackok: bool = False
        tcp_tsval: int = -1        # timestamp option value, -1 if absent
        tcp_tsecr: int = -1
        icmp_type: int = -1
        icmp_code: int = -1
        icmp_id: int = -1          # echo / timestamp / info id, -1 if the message has none
        icmp_seq: int = -1

        # --- payload (zero-copy: offsets into `data`) -------------------------------
        payload_off: int = 0
        payload_len: int = 0

        # --- decoder events ----------------------------------------------------------
        events: list[str] | None = None  # Suricata decoder event names, e.g. "ipv4.trunc_pkt"
        checksum_bad: bool = False  # set only when checksum validation is on (-k all); not inspected then
        frag: bool = False         # an IP fragment (IPv4 MF/offset, IPv6 fragment header): stream/defrag.py's input
        reassembled: Any = None    # stream/defrag.py: the datagram this fragment completed (runs the pipeline next)
        root: Any = None           # stream/defrag.py: on a reassembled datagram, the fragment that completed it

        # --- set by later stages -----------------------------------------------------
        flow: Flow | None = None   # set by the flow table
        to_server: bool = True     # direction within `flow` (client -> server)
        verdict: str | None = None  # IPS: None (accept), "drop" or "reject"; set by detect/respond
        stream_added: bool = False  # stream/tcp.py: this segment's data went into the reassembled stream
        stream_data: bytes | None = None  # stream/tcp.py: inspection window (already inspected overlap + new bytes)
        stream_old: int = 0        # ... how many leading bytes of stream_data were inspected before
        stream_to_server: bool = True  # ... the direction of stream_data
        drop_alert: Any = None     # IPS: the event.Alert of the rule that dropped this packet (even a noalert one); set by detect
        drop_reason: str | None = None  # IPS: EVE drop.reason when not the default ("threshold detection_filter"); set by detect
        reject_action: str | None = None  # IPS: the exception policy's reject target (exception_policy.py; respond/verdict.py)
        pktvars: Any = None        # detect: [(name, value)] a rule's pcre captured as pkt:NAME (EVE metadata.pktvars)
        no_inspect: bool = False   # exception_policy.py: drop-packet / pass-packet (and the flow forms) took this packet out of detection

    if cython.compiled:
        def __cinit__(self) -> None:
            # the non-None defaults of the class body above (tp_new set every field
            # to None); tests/decode/test_packet.py checks the two lists agree
            self.pcap_cnt = 0
            self.ts = 0.0
            self.linktype = 1
            self.data = b""
            self.wirelen = 0
            self.vlan = ()
            self.ip_version = 0
            self.ip_off = -1
            self.src = b""
            self.dst = b""
            self.proto = 0
            self.ttl = 0
            self.tos = 0
            self.ip_id = 0
            self.ip_flags = 0
            self.frag_offset = 0
            self.ip_hlen = 0
            self.ip_len = 0
            self.ip_opts = ()
            self.ip6_exthdrs = ()
            self.l4_off = -1
            self.sp = 0
            self.dp = 0
            self.tcp_flags = 0
            self.seq = 0
            self.ack = 0
            self.win = 0
            self.tcp_hlen = 0
            self.tcp_mss = -1
            self.tcp_wscale = -1
            self.tcp_sackok = False
            self.tcp_tsval = -1
            self.tcp_tsecr = -1
            self.icmp_type = -1
            self.icmp_code = -1
            self.icmp_id = -1
            self.icmp_seq = -1
            self.payload_off = 0
            self.payload_len = 0
            self.checksum_bad = False
            self.frag = False
            self.to_server = True
            self.stream_added = False
            self.stream_old = 0
            self.stream_to_server = True
            self.no_inspect = False

        def __reduce__(self):  # type: ignore[no-untyped-def]
            """copy.copy, deepcopy and pickle: every field, and any extra attribute."""
            return _rebuild, (type(self), tuple([getattr(self, name) for name in FIELDS]),
                              getattr(self, "__dict__") or None)

    @property
    def payload(self) -> bytes:
        """Transport payload. Sliced on demand so packets nobody inspects cost nothing."""
        off = self.payload_off
        return self.data[off:off + self.payload_len]

    @property
    def src_ip(self) -> str:
        return ip_to_str(self.src)

    @property
    def dst_ip(self) -> str:
        return ip_to_str(self.dst)

    def add_event(self, name: str) -> bool:
        """Keep decoder event `name`; False (not kept) once the packet holds
        MAX_EVENTS, as Suricata's PACKET_ENGINE_EVENT_MAX: a crafted packet with
        thousands of bad options must not become thousands of EVE records."""
        events = self.events
        if events is None:
            self.events = [name]
        elif len(events) < MAX_EVENTS:
            events.append(name)
        else:
            return False
        return True

    def __repr__(self) -> str:  # debugging aid, never on the hot path
        return (f"<Packet #{self.pcap_cnt} {self.src_ip}:{self.sp} -> {self.dst_ip}:{self.dp}"
                f" proto={self.proto} len={len(self.data)} events={self.events}>")


def ip_to_str(packed: bytes) -> str:
    """Text form of a packed 4- or 16-byte address ('' for none)."""
    af = _AF.get(len(packed))
    return socket.inet_ntop(af, packed) if af is not None else ""


def _rebuild(cls: type, values: tuple, extra: dict | None) -> Packet:
    """`Packet.__reduce__`'s constructor (compiled path)."""
    pkt = cls()
    for name, value in zip(FIELDS, values):
        setattr(pkt, name, value)
    if extra:
        pkt.__dict__.update(extra)
    return pkt


@cython.cfunc
def new_packet() -> Packet:
    """The decoder's new record: `Packet()`'s defaults, at the cost of one copy.

    Compiled: `Packet()` runs the type's ``tp_new`` (every field set to None) and then
    ``__cinit__`` (45 defaults stored over those Nones), and gc-tracks the record; that
    was 13% of read+decode+flow (py-spy, bench/README.md "pktc"). Here the record is
    allocated and its slots copied from `_DEFAULTS` (a `Packet()` made once) with one
    reference taken per slot: the same values, a third of the reference-count traffic.

    Not gc-tracked: a record from here takes part in no reference cycle, so the
    collector need not know it (no link and unlink per packet, and a young collection
    never walks the packets in flight). What a packet points at (its flow, events,
    alert, tuples of ints) never points back at a packet; the one packet cycle there
    was, a fragment and the datagram it completed (``reassembled`` <-> ``root``,
    stream/defrag.py), is cut by the capture loop once both went through the pipeline
    (capture_loop.py). A stage that keeps a packet where the packet can reach it again
    (in its flow's state, say) must break that link itself: docs/architecture.md
    "Packet records". tests/decode/test_packet.py checks both paths: no packet of the
    sample captures is left in a cycle (pure Python, where the collector sees every
    packet), and the compiled records are untracked and equal to `Packet()`'s.

    Pure Python: `Packet()` (the decoder's fast path builds its shape classes instead)."""
    if cython.compiled:
        return _copy_record(Packet, _DEFAULTS)  # noqa: F821 - packet.pxd
    return Packet()


@cython.cfunc
def copy_packet(model: Packet) -> Packet:
    """A new record holding `model`'s field values, made as `new_packet` makes one (not
    gc-tracked when compiled): the decoder's fast path keeps one model per header shape
    with the fields every packet of that shape shares already set (decode/decoder.py)."""
    if cython.compiled:
        return _copy_record(Packet, model)  # noqa: F821 - packet.pxd
    return _rebuild(Packet, tuple([getattr(model, name) for name in FIELDS]), None)


if cython.compiled:
    # Python code reads and writes the fields through slot member descriptors (what a
    # __slots__ class has, which the interpreter's attribute caches serve as fast as a
    # plain instance's), not through the getset properties Cython makes: those cost
    # 35-85 ns a read or write from Python against ~6 ns (bench/README.md "pktrec").
    _install_slots(Packet, FIELDS)  # noqa: F821 - packet.pxd

# new_packet's model (compiled): never handed out, never written
_DEFAULTS = cython.declare(Packet, Packet())
