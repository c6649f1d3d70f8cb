"""The flow table: packets to bidirectional `Flow` records, bounded in size.

Keys. A flow is found by the raw bytes of its addresses and ports as they sit
in the packet (IPv4: ``src dst sp dp``, 12 bytes, one slice of the frame when
the transport header follows a 20-byte IP header), in one dict per IP
protocol; with VLAN tags the key is ``(vlan ids, bytes)``. Compiled, a flow
is filed under its client's key only, and a miss probes the reversed key
(one C allocation); pure Python, under its forward and its reverse key, so
every packet costs one slice and one dict lookup (building the reversed key
in Python cost more than the second entry's ~85 B per flow). No
normalisation either way (bench/README.md "Typed flow record" has the figures).
ICMP and other port-less protocols are keyed by addresses only, as Suricata
does for non-error ICMP.

Time. Everything runs on packet time. Each live flow sits in one bucket of
a timer wheel keyed by (the packet-time second its timeout would fall in,
its timeout class); a bucket is examined only when packet time passes it,
and a flow that saw traffic since is refiled under its new deadline. One
heap of bucket seconds per timeout value keeps deadline order equal to idle
order within a heap, which is what eviction needs. So the per-packet cost of
expiry is one float comparison, and each flow is looked at a handful of
times in its life rather than once per scan.

Collector (compiled). A live flow is held by the table until it ends, so the
cyclic garbage collector has nothing to find in it: the table takes each
record it creates out of the collector's sight (``PyObject_GC_UnTrack``), and
a young collection no longer walks every flow created since the last one and
whatever hangs off them (it was 14% of read+decode+flow in py-spy, bench/README.md
"loopc2"). When the flow ends, before `on_end` sees it, the table hands it back
(`_collectable`): a reference cycle through an ended flow and a stage's per-flow
state is then found and freed as before, and a table dropped without a flush
hands back every flow it still holds (`FlowTable.__del__`). The timer wheel's
buckets, lists that only the table holds and that hold only flows, are out of
its sight too: a young collection walking one read the header of every flow in
it. So untracking changes when the collector looks, never what it can reclaim. Pure Python a
``__slots__`` record cannot be untracked, and every flow stays tracked.

Cap. At ``max-flows`` live flows a new flow first evicts the flows idle
longest (up to 64 at a time, fewer for small caps), counted in
``flow.evicted`` and ended with ``end_reason = "forced"``; unless the
`on_full` hook (the flow memcap exception policy) refuses the new flow.

Config (the ``flow`` section plus ``midstream`` from ``stream.midstream``)::

    max-flows: 262144
    timeouts:
      default: {new: 30, established: 300, closed: 0}
      tcp:     {new: 60, established: 600, closed: 60}
      udp:     {new: 30, established: 300}
      icmp:    {new: 30, established: 300}
    midstream: false
    vlan-tracking: true    # from vlan.use-for-tracking: false keys flows without VLAN ids
"""

from __future__ import annotations

import heapq
import math
import os
from collections.abc import Iterator
from typing import Any, Callable

try:
    import cython
except ImportError:          # pure install without Cython: the annotations are no-ops
    from netsentry import _cython_shim as cython  # type: ignore[no-redef]

from netsentry.decode.packet import Packet
from netsentry.flow import tcp_state
# compiled: Flow is the typed record (table.pxd cimports flow.pxd), its fields C struct members
from netsentry.flow.flow import Flow, flow_id_for  # noqa: F401  (flow_id_for: re-exported)

if not cython.compiled:         # compiled: a C function, cimported by table.pxd
    from netsentry.flow.flow import new_flow

DEFAULT_MAX_FLOWS = 262_144
# Suricata's shipped flow-timeouts (suricata.yaml)
DEFAULT_TIMEOUTS: dict[str, dict[str, float]] = {
    "default": {"new": 30, "established": 300, "closed": 0},
    "tcp": {"new": 60, "established": 600, "closed": 60},
    "udp": {"new": 30, "established": 300},
    "icmp": {"new": 30, "established": 300},
}
_PROTO_TIMEOUTS = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp"}
_STATES = ("new", "established", "closed")
_PORT_PROTOS = (6, 17)


class FlowConfigError(ValueError):
    """A bad value in the flow section; the message names the dotted key."""


def _number(cfg: dict[str, Any], key: str, path: str, default: float) -> float:
    v = cfg.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
        raise FlowConfigError(f"flow.{path}: expected a non-negative number, got {v!r}")
    return v


def parse_timeouts(cfg: dict[str, Any]) -> dict[int | None, tuple[float, float, float]]:
    """protocol number (None = default) -> (new, established, closed) seconds."""
    user = cfg.get("timeouts") or {}
    if not isinstance(user, dict):
        raise FlowConfigError(f"flow.timeouts: expected a mapping, got {user!r}")
    for proto in user:
        if proto not in DEFAULT_TIMEOUTS:
            raise FlowConfigError(f"flow.timeouts.{proto}: unknown protocol (one of {', '.join(DEFAULT_TIMEOUTS)})")
    resolved: dict[str, tuple[float, float, float]] = {}
    base = {**DEFAULT_TIMEOUTS["default"], **(user.get("default") or {})}
    for proto, defaults in DEFAULT_TIMEOUTS.items():
        merged = {**base, **defaults} if proto != "default" else base
        given = user.get(proto) or {}
        for state in given:
            if state not in _STATES:
                raise FlowConfigError(f"flow.timeouts.{proto}.{state}: unknown state (one of {', '.join(_STATES)})")
        merged = {**merged, **given}
        resolved[proto] = tuple(_number(merged, s, f"timeouts.{proto}.{s}", 0) for s in _STATES)  # type: ignore[assignment]
    table: dict[int | None, tuple[float, float, float]] = {None: resolved["default"]}
    for num, name in _PROTO_TIMEOUTS.items():
        table[num] = resolved[name]
    return table


def _reverse12(key: bytes) -> bytes:
    """`reverse_key` of an IPv4 address-and-port key (``src dst sp dp``, 12 bytes): compiled,
    one allocation and four copies instead of four slices and three concatenations."""
    if cython.compiled:
        out: bytes = PyBytes_FromStringAndSize(cython.NULL, 12)  # noqa: F821 - table.pxd
        s: cython.p_char = key
        d: cython.p_char = PyBytes_AS_STRING(out)  # noqa: F821 - table.pxd
        memcpy(d, s + 4, 4)  # noqa: F821 - table.pxd
        memcpy(d + 4, s, 4)  # noqa: F821
        memcpy(d + 8, s + 10, 2)  # noqa: F821
        memcpy(d + 10, s + 8, 2)  # noqa: F821
        return out
    return key[4:8] + key[0:4] + key[10:12] + key[8:10]


def _slice12(data: bytes, at: cython.Py_ssize_t) -> bytes:
    """``data[at:at + 12]`` (the caller knows it is in bounds): compiled, one allocation
    and a copy, without the slice object a generic ``data[a:b]`` builds."""
    if cython.compiled:
        return PyBytes_FromStringAndSize(PyBytes_AS_STRING(data) + at, 12)  # noqa: F821 - table.pxd
    return data[at:at + 12]


def _collectable(flow: Any) -> None:
    """Compiled: hand an ended flow back to the cyclic collector (see the module docstring,
    "Collector"); a no-op for one it tracks already (a record made outside the table)."""
    if cython.compiled:
        if not PyObject_GC_IsTracked(flow):  # noqa: F821 - table.pxd
            PyObject_GC_Track(flow)  # noqa: F821


def _seed() -> int:
    """A random 64-bit hash seed for a FlowIndex."""
    return int.from_bytes(os.urandom(8), "little")


# Sequence arithmetic modulo 2**32 as C globals: a literal above 2**31 in an expression
# makes Cython box the whole expression into Python ints.
# ICMPv4 error messages (Suricata's ICMPV4_IS_ERROR_MSG): destination unreachable, source
# quench, redirect, time exceeded, parameter problem; never a flow of their own
_ICMP4_ERRORS = frozenset((3, 4, 5, 11, 12))
_M32 = cython.declare(cython.longlong, 0xFFFFFFFF)
_HALF32 = cython.declare(cython.longlong, 0x80000000)

_INDEX_MIN = 1024                 # FlowIndex's first size (slots, a power of two)
# 64-bit mixing constants (golden ratio; MurmurHash3's fmix64 multiplier)
_MIX1 = cython.declare(cython.ulonglong, 0x9E3779B97F4A7C15)
_MIX2 = cython.declare(cython.ulonglong, 0xFF51AFD7ED558CCD)


@cython.cclass
class FlowIndex:
    """Compiled build: the IPv4 TCP/UDP flows without VLAN tags (nearly all of them),
    found in C. An open-addressing hash table (linear probing, deletion by backward
    shift, so no tombstones) of 24-byte slots keyed by the flow's address pair and
    port pair, normalised so that both directions hash alike (the lower ``(address,
    port)`` end first) and one probe serves every packet; the slot says which end is
    the client. A packet therefore costs no key object, no SipHash and no dict probe,
    and a live flow no key bytes and no dict entry (bench/README.md "flowc").

    The hash is seeded per table from os.urandom, as Suricata seeds its flow hash
    (``flow_config.hash_rand``), so crafted addresses cannot pile flows into one
    chain; nothing iterates the index, so the seed never shows in any output.
    The flows it holds are strong references (released on removal and when the
    index goes). Pure Python has no FlowIndex: the table's dicts (two keys per flow)
    serve every flow there, with the same results."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.count = 0
        self._resize(_INDEX_MIN)

    def __dealloc__(self) -> None:
        i: cython.Py_ssize_t
        if self.slots != cython.NULL:
            for i in range(self.mask + 1):
                Py_XDECREF(self.slots[i].flow)  # noqa: F821 - table.pxd
            PyMem_RawFree(self.slots)  # noqa: F821
            self.slots = cython.NULL

    def __len__(self) -> int:
        return self.count

    @cython.cfunc
    @cython.exceptval(-1, check=True)
    def _resize(self, size: cython.Py_ssize_t) -> cython.int:
        """Rehash into `size` slots (a power of two); grows at 70% full."""
        old = self.slots
        old_size: cython.Py_ssize_t = self.mask + 1 if old != cython.NULL else 0
        slots = cython.cast(cython.pointer(IndexSlot), PyMem_RawCalloc(size, cython.sizeof(IndexSlot)))  # noqa: F821
        if slots == cython.NULL:
            raise MemoryError("flow index")
        self.slots = slots
        self.mask = size - 1
        self.grow_at = size * 7 // 10
        i: cython.Py_ssize_t
        j: cython.Py_ssize_t
        for i in range(old_size):
            if old[i].flow != cython.NULL:
                j = _home(self.seed, old[i].addrs, old[i].ports, self.mask)
                while slots[j].flow != cython.NULL:
                    j = (j + 1) & self.mask
                slots[j] = old[i]
        if old != cython.NULL:
            PyMem_RawFree(old)  # noqa: F821
        return 0

    @cython.cfunc
    def find(self, addrs: cython.ulonglong, ports: cython.uint) -> cython.Py_ssize_t:
        """The slot holding this (normalised) key, or -1."""
        slots = self.slots
        mask: cython.Py_ssize_t = self.mask
        i: cython.Py_ssize_t = _home(self.seed, addrs, ports, mask)
        while slots[i].flow != cython.NULL:
            if slots[i].addrs == addrs and slots[i].ports == ports:
                return i
            i = (i + 1) & mask
        return -1

    @cython.cfunc
    @cython.exceptval(-1, check=True)
    def insert(self, addrs: cython.ulonglong, ports: cython.uint, client_lo: cython.bint, flow: Flow) -> cython.int:
        """File `flow` under a key that is not in the index."""
        if self.count >= self.grow_at:
            self._resize((self.mask + 1) * 2)
        slots = self.slots
        mask: cython.Py_ssize_t = self.mask
        i: cython.Py_ssize_t = _home(self.seed, addrs, ports, mask)
        while slots[i].flow != cython.NULL:
            i = (i + 1) & mask
        slots[i].addrs = addrs
        slots[i].ports = ports
        slots[i].client_lo = client_lo
        p = cython.cast(cython.pointer(PyObject), flow)  # noqa: F821
        Py_XINCREF(p)  # noqa: F821
        slots[i].flow = p
        self.count += 1
        return 0

    @cython.cfunc
    def clear(self) -> cython.void:
        """Drop every flow (the end-of-capture flush, `FlowTable.flush`): one sweep of
        the slot array instead of a hashed probe and a backward shift per flow. The
        timer wheel still holds each live flow, so none is freed here; each goes when
        its bucket has been ended, as before."""
        i: cython.Py_ssize_t
        slots = self.slots
        for i in range(self.mask + 1):
            if slots[i].flow != cython.NULL:
                Py_XDECREF(slots[i].flow)  # noqa: F821 - table.pxd
                slots[i].flow = cython.NULL
        self.count = 0

    @cython.cfunc
    def remove(self, flow: Flow) -> cython.bint:
        """Take `flow` out (its key rebuilt from its endpoints); False if it is not here."""
        c: cython.ulonglong = _u32(flow.client)
        s: cython.ulonglong = _u32(flow.server)
        ce: cython.ulonglong = (c << 16) | flow.client_port
        se: cython.ulonglong = (s << 16) | flow.server_port
        addrs: cython.ulonglong
        ports: cython.uint
        if ce <= se:
            addrs = (c << 32) | s
            ports = (flow.client_port << 16) | flow.server_port
        else:
            addrs = (s << 32) | c
            ports = (flow.server_port << 16) | flow.client_port
        i: cython.Py_ssize_t = self.find(addrs, ports)
        if i < 0 or self.slots[i].flow != cython.cast(cython.pointer(PyObject), flow):  # noqa: F821
            return False
        slots = self.slots
        mask: cython.Py_ssize_t = self.mask
        j: cython.Py_ssize_t = i
        k: cython.Py_ssize_t
        # backward-shift deletion: move up every later entry of the run whose home slot
        # is not cyclically in (i, j], so every key stays reachable from its home
        while True:
            j = (j + 1) & mask
            if slots[j].flow == cython.NULL:
                break
            k = _home(self.seed, slots[j].addrs, slots[j].ports, mask)
            if (k <= i or k > j) if i <= j else (k <= i and k > j):
                slots[i] = slots[j]
                i = j
        slots[i].flow = cython.NULL
        self.count -= 1
        Py_XDECREF(cython.cast(cython.pointer(PyObject), flow))  # noqa: F821
        return True


@cython.cfunc
@cython.inline
def _home(seed: cython.ulonglong, addrs: cython.ulonglong, ports: cython.uint,
          mask: cython.Py_ssize_t) -> cython.Py_ssize_t:
    """Home slot of a key: a seeded 64-bit mix (MurmurHash3's finaliser) of both pairs."""
    x: cython.ulonglong = (addrs ^ seed) + ports * _MIX1
    x ^= x >> 33
    x *= _MIX2
    x ^= x >> 33
    return cython.cast(cython.Py_ssize_t, x & mask)


@cython.cfunc
@cython.inline
def _u32(b: bytes) -> cython.ulonglong:
    """A packed 4-byte address as a big-endian integer."""
    p: cython.p_const_uchar = b
    return ((cython.cast(cython.ulonglong, p[0]) << 24) | (cython.cast(cython.ulonglong, p[1]) << 16)
            | (cython.cast(cython.ulonglong, p[2]) << 8) | p[3])


def reverse_key(key: Any) -> Any:
    """The key of the opposite direction (same layout, endpoints swapped)."""
    if type(key) is tuple:
        return (key[0], reverse_key(key[1]))
    n = len(key)
    if n == 12:
        return key[4:8] + key[0:4] + key[10:12] + key[8:10]
    if n == 36:
        return key[16:32] + key[0:16] + key[34:36] + key[32:34]
    half = n >> 1   # address-only keys
    return key[half:] + key[:half]


class FlowTable:
    """See the module docstring. ``update`` and ``flush`` are the hot and the final call."""

    update: Callable[[Packet], Flow | None]

    def __init__(self, cfg: dict[str, Any], on_end: Callable[[Flow], None],
                 on_new_tcp: Callable[[Flow, Packet], None] | None = None,
                 on_full: Callable[[Packet], bool] | None = None) -> None:
        """`on_new_tcp(flow, pkt)`: called once per new TCP flow with its first packet
        (the exception policies look for sessions picked up midstream). `on_full(pkt)`:
        called when `pkt` would start a flow at ``max-flows``; True: evict the longest-idle
        flows and admit it (the default without a hook), False: the packet gets no flow
        (exception_policy.py's ``flow.memcap-policy``)."""
        cfg = cfg or {}
        max_flows = cfg.get("max-flows", DEFAULT_MAX_FLOWS)
        if isinstance(max_flows, bool) or not isinstance(max_flows, int) or max_flows < 1:
            raise FlowConfigError(f"flow.max-flows: expected a positive integer, got {max_flows!r}")
        midstream = cfg.get("midstream", False)
        if not isinstance(midstream, bool):
            raise FlowConfigError(f"stream.midstream: expected true or false, got {midstream!r}")
        vlan_tracking = cfg.get("vlan-tracking", True)
        if not isinstance(vlan_tracking, bool):
            raise FlowConfigError(f"vlan.use-for-tracking: expected true or false, got {vlan_tracking!r}")
        self.max_flows = max_flows
        self.midstream = midstream
        # Suricata's vlan.use-for-tracking: VLAN ids part of the flow key (a flow's two
        # directions may travel tagged differently, e.g. one tagged, one not); the flow
        # still records its first packet's ids
        self.vlan_tracking = vlan_tracking
        self.timeouts = parse_timeouts(cfg)
        self.on_end = on_end
        self.on_new_tcp = on_new_tcp
        self.on_full = on_full
        self._tables: dict[int, dict[Any, Flow]] = {6: {}, 17: {}, 1: {}, 58: {}}
        self._wheel: dict[int, dict[Flow, None]] = {}   # (slot second << 4 | timeout class) -> flows
        self._counts = dict.fromkeys(("timeout", "evicted", "shutdown"), 0)
        self._new_flows = [0] * 256     # flows created, by IP protocol number
        # compiled: (TCP, UDP) FlowIndex; pure Python: none (the dicts hold every flow)
        self._index = ((FlowIndex(_seed()), FlowIndex(_seed())) if cython.compiled else (None, None))
        self.update, self._housekeeping, self._end = self._build()

    # ------------------------------------------------------------------ hot path
    def _build(self):  # type: ignore[no-untyped-def]
        tables = self._tables
        wheel = self._wheel
        counts = self._counts
        timeouts = self.timeouts
        on_end = self.on_end
        on_new_tcp = self.on_new_tcp
        on_full = self.on_full
        max_flows = self.max_flows
        midstream = self.midstream
        track_vlan: cython.bint = self.vlan_tracking
        # the TCP transition as a table of state codes (tcp_state.STEP_TABLE), indexed here
        step_table: bytes = tcp_state.STEP_TABLE
        flow_state_of: bytes = tcp_state.FLOW_STATE_OF
        step_base: cython.Py_ssize_t = tcp_state.step_index(midstream, 0, 0, False)
        ESTABLISHED: cython.int = tcp_state.ESTABLISHED_CODE
        N_TCP: cython.int = tcp_state.N_STATES      # codes at or above it are not states
        tcp_st: cython.int
        EST_FLOW: cython.int = tcp_state.ESTABLISHED_FLOW_STATE
        CLOSED_FLOW: cython.int = tcp_state.CLOSED_FLOW_STATE
        heappush, heappop = heapq.heappush, heapq.heappop
        # timeout classes: one per distinct timeout value, each with its own heap of
        # slots. Within a class, deadline order is idle order, which eviction needs.
        tvals = sorted({t for ts_ in timeouts.values() for t in ts_})
        assert len(tvals) <= 16, "wheel keys keep the timeout class in 4 bits"   # 4 protos x 3 states
        class_of = {t: i for i, t in enumerate(tvals)}
        heaps: list[list[int]] = [[] for _ in tvals]
        self._heaps = heaps
        inf = math.inf
        # typed when compiled: compared or counted on every packet, C values in the closure
        next_check: cython.double = inf
        active: cython.Py_ssize_t = 0
        cap: cython.Py_ssize_t = max_flows

        # protocol -> flow state code (flow.py FLOW_STATE_NAMES) -> (timeout, class): one
        # lookup pair per deadline
        by_state = {proto: tuple((t, class_of[t]) for t in ts_) for proto, ts_ in timeouts.items()}
        default_by_state = by_state[None]
        # a new flow is always "new" (code 0): its (timeout, class) per protocol, one lookup at creation
        new_due = {proto: st[0] for proto, st in by_state.items()}
        tcp_new_t: cython.double = new_due[6][0]
        tcp_new_cls: cython.longlong = new_due[6][1]
        udp_new_t: cython.double = new_due[17][0]
        udp_new_cls: cython.longlong = new_due[17][1]
        new_flows = self._new_flows
        # packed address -> the one bytes object every flow of that host keeps as
        # client/server (a 4-byte address is a 37-byte object, and busy hosts have many
        # flows: bench_flow_memory.py). Cleared when full: at most max-flows/16 entries
        # (~3 B per flow of a full table, paid even where every client is new, as in a
        # scan), and the hosts seen often are back in it right after a clear. Sharing is
        # only a saving, never a meaning (no stage compares addresses by identity).
        addrs: dict[bytes, bytes] = {}
        addr_cap = max(1024, max_flows >> 4)
        end_counter = {"forced": "evicted"}
        tcp_tab, udp_tab = tables[6], tables[17]
        # compiled: untagged IPv4 TCP and UDP flows live in these C indexes, not the dicts
        tcp_index: FlowIndex = self._index[0]
        udp_index: FlowIndex = self._index[1]
        # the bucket new flows were last filed in: consecutive new flows mostly share
        # (second, class), so filing is one list append (see bench/README.md)
        last_key: cython.longlong = -1
        last_bucket: list[Flow] = []

        def due_key(flow: Flow) -> int:
            """Wheel key for the flow's current deadline: slot second * 16 + timeout class."""
            t, cls = by_state.get(flow.proto, default_by_state)[flow._st]
            return ((int(flow.last_seen + t) + 1) << 4) | cls

        def new_bucket(key: int) -> list[Flow]:
            nonlocal next_check
            bucket = wheel[key] = []
            if cython.compiled:
                # a bucket is the table's alone and holds only flows, which never point
                # back at it: no cycle to find, and a young collection walking it read
                # the header of every flow it holds (module docstring, "Collector")
                PyObject_GC_UnTrack(bucket)  # noqa: F821 - table.pxd
            heappush(heaps[key & 15], key)
            if key >> 4 < next_check:
                next_check = float(key >> 4)   # float: a float/int compare per packet costs a frexp
            return bucket

        def file_under(flow: Flow, key: int) -> None:
            # buckets are lists, never searched: an entry whose flow.timeout_slot is no
            # longer this key (ended, or refiled elsewhere) is stale and skipped when
            # the bucket comes due, evicted or flushed
            bucket = wheel.get(key)
            if bucket is None:
                bucket = new_bucket(key)
            bucket.append(flow)
            flow.timeout_slot = key

        def end(flow: Flow, reason: str) -> None:
            nonlocal active
            k = flow._key
            if k is None:                   # compiled: an untagged IPv4 TCP/UDP flow, in the C index
                (tcp_index if flow.proto == 6 else udp_index).remove(flow)
            else:
                tab = tables[flow.proto]
                tab.pop(k, None)
                if not cython.compiled:     # pure: the reverse entry too (update, below)
                    tab.pop(reverse_key(k), None)
            flow.timeout_slot = -1          # its wheel entry, if any, is now stale
            flow.end_reason = reason
            if cython.compiled:
                _collectable(flow)          # ended: the collector may look at it again
            active -= 1
            counter = end_counter.get(reason, reason)
            counts[counter] = counts.get(counter, 0) + 1
            on_end(flow)

        def end_all(reason: str) -> None:
            """End every live flow (`FlowTable.flush`): the keys are let go in one sweep
            before the first flow ends (the C index's slot array, the dicts), since every
            live flow is filed in the wheel, which holds it until its bucket is done;
            then `end` inlined per flow, without a removal. At the bench's end 193k of
            219k flows end here (bench/README.md "loopc")."""
            nonlocal active
            counter = end_counter.get(reason, reason)
            if counter not in counts:
                counts[counter] = 0
            if cython.compiled:
                tcp_index.clear()
                udp_index.clear()
            for tab in tables.values():
                tab.clear()
            flow: Flow
            for key in sorted(wheel):
                # each bucket leaves the wheel before its flows end, so a flow is freed
                # once it is logged (see FlowTable.flush)
                for flow in wheel.pop(key):
                    if flow.timeout_slot != key:
                        continue            # stale entry (ended, or refiled later)
                    flow.timeout_slot = -1
                    flow.end_reason = reason
                    if cython.compiled:
                        _collectable(flow)
                    active -= 1
                    counts[counter] += 1    # before on_end: it may read stats()
                    on_end(flow)
            reset_wheel()

        def drop_bucket(heap: list[int]) -> None:
            nonlocal last_key, last_bucket
            key = heappop(heap)
            del wheel[key]
            if key == last_key:
                # and let go of it: its flows have ended, and the list kept them until
                # the next new flow
                last_key = -1
                last_bucket = []

        def housekeeping(now: float) -> None:
            """Expire the flows filed under seconds that packet time has passed."""
            nonlocal next_check
            for heap in heaps:
                while heap and heap[0] >> 4 <= now:
                    key = heap[0]
                    bucket = wheel[key]
                    drop_bucket(heap)
                    flow: Flow
                    for flow in bucket:
                        if flow.timeout_slot != key:
                            continue            # stale entry
                        t, cls = by_state.get(flow.proto, default_by_state)[flow._st]
                        deadline = flow.last_seen + t
                        if deadline < now:
                            end(flow, "timeout")
                        else:
                            file_under(flow, ((int(deadline) + 1) << 4) | cls)
            next_check = float(min((h[0] >> 4 for h in heaps if h), default=inf))

        # evict in small batches at the cap: choosing the oldest-idle timeout class is a
        # scan over the classes, paid once per batch instead of once per new flow
        evict_batch = max(1, min(64, max_flows // 256))

        def evict() -> None:
            """End the flows idle longest to make room (cap reached).

            due_key and end are inlined here: 153k evictions in the bench, where the
            three calls per evicted flow were ~12% of the flow stage in py-spy."""
            nonlocal active
            left = evict_batch
            while left:
                best = None
                best_idle = inf
                for cls, heap in enumerate(heaps):
                    if heap:
                        idle_since = (heap[0] >> 4) - tvals[cls]
                        if idle_since < best_idle:
                            best, best_idle = heap, idle_since
                if best is None:
                    return
                key = best[0]
                bucket = wheel[key]
                pop = bucket.pop
                flow: Flow
                while bucket and left:
                    flow = pop()
                    if flow.timeout_slot != key:
                        continue        # stale entry
                    proto = flow.proto
                    t, cls = by_state.get(proto, default_by_state)[flow._st]
                    due = ((int(flow.last_seen + t) + 1) << 4) | cls
                    if due != key:      # saw traffic or changed state since: refile, look again
                        file_under(flow, due)
                        continue
                    k = flow._key           # end(flow, "forced"), inlined
                    if k is None:
                        (tcp_index if proto == 6 else udp_index).remove(flow)
                    else:
                        tab = tables[proto]
                        tab.pop(k, None)
                        if not cython.compiled:
                            tab.pop(reverse_key(k), None)
                    flow.timeout_slot = -1
                    flow.end_reason = "forced"
                    if cython.compiled:
                        _collectable(flow)
                    active -= 1
                    counts["evicted"] += 1  # before on_end: it may read stats()
                    on_end(flow)
                    left -= 1
                if not bucket:
                    drop_bucket(best)


        def other_key(pkt: Packet, proto: int) -> tuple[Any, dict | None]:
            """Key and table for ICMP and protocols without ports: addresses only (Suricata)."""
            if proto == 1 or proto == 58:
                if pkt.l4_off < 0:      # ICMP header not decoded (truncated, or a fragment)
                    return None, None
            elif not pkt.ip_version or pkt.frag_offset or pkt.ip_flags & 1:
                return None, None       # not IP, or a fragment: defragmentation's business
            tab = tables.get(proto)
            if tab is None:
                tab = tables[proto] = {}
            off = pkt.ip_off
            if pkt.ip_version == 4:
                return pkt.data[off + 12:off + 20], tab
            return pkt.data[off + 8:off + 40], tab

        def quoted_flow(pkt: Packet, ts: cython.double) -> Flow | None:
            """An ICMPv4 error message (Suricata's flow-hash.c, FlowCompareICMPv4): a
            destination unreachable quoting a TCP or UDP header (its ports) belongs to the
            flow of the packet it quotes, in the direction its own sender makes it (to
            the client when a client's segment bounced: the flow's counters, and alerts
            on it, count it there). Any other error message, or one whose flow is not
            known, has no flow: Suricata makes none for ICMP errors (FlowCreateCheck)."""
            index: FlowIndex
            i: cython.Py_ssize_t
            kaddrs: cython.ulonglong
            kports: cython.uint
            if pkt.icmp_type != 3 or pkt.l4_off < 0 or pkt.ip_version != 4:
                return None
            data = pkt.data
            q = pkt.l4_off + 8
            if len(data) < q + 20 or data[q] >> 4 != 4:
                return None
            iproto = data[q + 9]
            ihl = (data[q] & 15) * 4
            # Suricata's DecodePartialIPV4: the TCP ports from 4 bytes on, UDP's from a whole header
            if (iproto != 6 and iproto != 17) or ihl < 20 or len(data) < q + ihl + (4 if iproto == 6 else 8):
                return None
            key = bytes(data[q + 12:q + 20]) + bytes(data[q + ihl:q + ihl + 4])
            vlan = pkt.vlan
            flow: Any = None
            if cython.compiled and (not vlan or not track_vlan):
                a = (int.from_bytes(key[0:4], "big") << 16) | int.from_bytes(key[8:10], "big")
                b = (int.from_bytes(key[4:8], "big") << 16) | int.from_bytes(key[10:12], "big")
                if a > b:
                    a, b = b, a
                kaddrs = ((a >> 16) << 32) | (b >> 16)
                kports = ((a & 0xFFFF) << 16) | (b & 0xFFFF)
                index = tcp_index if iproto == 6 else udp_index
                i = index.find(kaddrs, kports)
                if i >= 0:
                    flow = cython.cast(Flow, cython.cast(object, index.slots[i].flow))
            else:
                tab = tcp_tab if iproto == 6 else udp_tab
                k: Any = (vlan, key) if vlan and track_vlan else key
                flow = tab.get(k)
                if flow is None:
                    flow = tab.get(reverse_key(k))
            if flow is None:
                return None
            found: Flow = flow
            n = len(data)
            pkt.flow = found
            found.last_seen = ts
            if pkt.src == found.client:
                found.pkts_toserver += 1
                found.bytes_toserver += n
            else:
                pkt.to_server = False
                found.pkts_toclient += 1
                found.bytes_toclient += n
                if found.proto != 6 and not found.established:
                    found.established = True        # both directions seen (not TCP's own state)
                    found._st = EST_FLOW
            return found

        def update(pkt: Packet) -> Flow | None:
            nonlocal active, last_key, last_bucket
            flow: Flow
            ts: cython.double = pkt.ts
            proto: cython.int
            l4: cython.Py_ssize_t
            off: cython.Py_ssize_t
            flags: cython.int
            plen: cython.longlong
            end_seq: cython.longlong
            nxt: cython.longlong
            seq: cython.longlong
            old_st: cython.int
            nxt_st: cython.int
            index: FlowIndex
            p: cython.p_const_uchar
            stp: cython.p_const_uchar
            a_off: cython.Py_ssize_t
            p_off: cython.Py_ssize_t
            a_ip: cython.ulonglong
            b_ip: cython.ulonglong
            a_port: cython.ulonglong
            b_port: cython.ulonglong
            a_end: cython.ulonglong
            b_end: cython.ulonglong
            kaddrs: cython.ulonglong
            kports: cython.uint
            src_lo: cython.bint
            i: cython.Py_ssize_t
            nt: cython.double
            ncls: cython.longlong
            wkey: cython.longlong
            if ts >= next_check:
                housekeeping(ts)
            proto = pkt.proto
            indexed: cython.bint = False
            if proto == 6 or proto == 17:
                l4 = pkt.l4_off
                if l4 < 0:          # transport header not decoded (fragment, truncated): no flow
                    return None
                data = pkt.data
                off = pkt.ip_off
                vlan = pkt.vlan
                if cython.compiled and pkt.ip_version == 4 and (not vlan or not track_vlan):
                    # compiled, untagged IPv4: the endpoints read as C integers and looked up
                    # in the C index (FlowIndex), no key object
                    if type(data) is bytes and len(data) >= l4 + 4:
                        p = data
                        a_off = off + 12
                        p_off = l4
                    else:                   # a bytearray or memoryview frame: one copy of the endpoints
                        kb = bytes(data[off + 12:off + 20]) + bytes(data[l4:l4 + 4])
                        p = kb
                        a_off = 0
                        p_off = 8
                    a_ip = ((cython.cast(cython.ulonglong, p[a_off]) << 24) | (p[a_off + 1] << 16)
                           | (p[a_off + 2] << 8) | p[a_off + 3])
                    b_ip = ((cython.cast(cython.ulonglong, p[a_off + 4]) << 24) | (p[a_off + 5] << 16)
                           | (p[a_off + 6] << 8) | p[a_off + 7])
                    a_port = (p[p_off] << 8) | p[p_off + 1]
                    b_port = (p[p_off + 2] << 8) | p[p_off + 3]
                    a_end = (a_ip << 16) | a_port
                    b_end = (b_ip << 16) | b_port
                    src_lo = a_end <= b_end
                    if src_lo:
                        kaddrs = (a_ip << 32) | b_ip
                        kports = (a_port << 16) | b_port
                    else:
                        kaddrs = (b_ip << 32) | a_ip
                        kports = (b_port << 16) | a_port
                    index = tcp_index if proto == 6 else udp_index
                    indexed = True
                elif pkt.ip_version == 4:
                    # addresses and ports are one contiguous slice behind a 20-byte header
                    if cython.compiled and l4 == off + 20 and type(data) is bytes:
                        key = _slice12(data, off + 12)     # one allocation, no slice object
                    else:
                        key = data[off + 12:off + 24] if l4 == off + 20 else data[off + 12:off + 20] + data[l4:l4 + 4]
                else:
                    key = data[off + 8:off + 44] if l4 == off + 40 else data[off + 8:off + 40] + data[l4:l4 + 4]
                tab = tcp_tab if proto == 6 else udp_tab
            else:
                if proto == 1 and pkt.icmp_type in _ICMP4_ERRORS:
                    return quoted_flow(pkt, ts)
                key, tab = other_key(pkt, proto)
                if tab is None:
                    return None
                data = pkt.data
                vlan = pkt.vlan
            to_server: cython.bint = True
            if indexed:
                # one probe either way: the key is normalised (FlowIndex); the slot says
                # which end is the client. Both ends equal: every packet is to-server.
                i = index.find(kaddrs, kports)
                if i >= 0:
                    flow = cython.cast(Flow, cython.cast(object, index.slots[i].flow))
                    to_server = a_end == b_end or src_lo == index.slots[i].client_lo
                else:
                    flow = None
            else:
                if vlan and track_vlan:
                    key = (vlan, key)
                # compiled, a flow is filed under its client's key only: a miss is the server's
                # side of a known flow or a new flow (bench/README.md "Key shapes"). Pure Python,
                # under both keys: building the reversed key there is four slices and three
                # concatenations, dearer than a second dict entry ("Pure path: two keys").
                flow = tab.get(key)
                if cython.compiled:
                    if flow is None:
                        if type(key) is bytes and len(key) == 12:
                            rkey = _reverse12(key)
                        else:
                            rkey = reverse_key(key)
                        flow = tab.get(rkey)
                        if flow is not None:
                            to_server = False
                elif flow is None:
                    rkey = key[4:8] + key[0:4] + key[10:12] + key[8:10] if type(key) is bytes and len(key) == 12 \
                        else reverse_key(key)
                elif key != flow._key:      # equal bytes (or vlan tuples): the client's side
                    to_server = False
            if flow is None:
                # ---- a new flow, inlined (a call per new flow was 0.15 us of it)
                if active >= cap:
                    # the cap: room is made by ending the longest-idle flows, unless the
                    # flow memcap exception policy (exception_policy.py) refuses this one
                    if on_full is not None and not on_full(pkt):
                        return None     # not admitted: the packet goes on without a flow
                    evict()
                if indexed:
                    # compiled, IPv4: the decoder's fast path already hands out one shared
                    # object per busy address (decode/decoder.py AddrCache)
                    src = pkt.src
                    dst = pkt.dst
                else:
                    if len(addrs) >= addr_cap:
                        addrs.clear()
                    src = addrs.setdefault(pkt.src, pkt.src)
                    dst = addrs.setdefault(pkt.dst, pkt.dst)
                # client: the side of the first SYN; a SYN-ACK seen first makes its receiver the client.
                # flow_id 0: computed from key and start on first read (Flow.flow_id)
                if proto == 6 and cython.cast(cython.int, pkt.tcp_flags) & 0x12 == 0x12:
                    if indexed:                 # key None: Flow.key rebuilds it from the endpoints
                        flow = new_flow(None, proto, 4, vlan, dst, src, pkt.dp, pkt.sp, ts)
                        index.insert(kaddrs, kports, not src_lo, flow)
                        to_server = a_end == b_end
                    else:
                        flow = new_flow(rkey, proto, pkt.ip_version, vlan, dst, src, pkt.dp, pkt.sp, ts)
                        tab[rkey] = flow
                        if not cython.compiled:
                            tab[key] = flow         # pure: filed under both keys
                        to_server = rkey == key     # both ends equal: the key is its own reverse
                elif indexed:
                    flow = new_flow(None, proto, 4, vlan, src, dst, pkt.sp, pkt.dp, ts)
                    index.insert(kaddrs, kports, src_lo, flow)
                else:
                    flow = new_flow(key, proto, pkt.ip_version, vlan, src, dst, pkt.sp, pkt.dp, ts)
                    tab[key] = flow
                    if not cython.compiled:
                        tab[rkey] = flow
                    if proto == 1 or proto == 58:
                        flow.icmp = (pkt.icmp_type, pkt.icmp_code)      # the flow record's icmp_type/code
                if cython.compiled:
                    # held by the table until it ends: out of the collector's sight until
                    # then (module docstring, "Collector"; `_collectable` hands it back)
                    PyObject_GC_UnTrack(flow)  # noqa: F821 - table.pxd
                active += 1
                new_flows[proto] += 1        # flow.total and per protocol: summed in stats()
                if proto == 6:
                    nt = tcp_new_t
                    ncls = tcp_new_cls
                elif proto == 17:
                    nt = udp_new_t
                    ncls = udp_new_cls
                else:
                    t, cls = new_due.get(proto) or new_due[None]
                    nt = t
                    ncls = cls
                if cython.compiled:     # C arithmetic (int() of a double would box)
                    wkey = ((cython.cast(cython.longlong, ts + nt) + 1) << 4) | ncls
                else:
                    wkey = ((int(ts + nt) + 1) << 4) | ncls
                if wkey != last_key:
                    bucket = wheel.get(wkey)
                    last_bucket = new_bucket(wkey) if bucket is None else bucket
                    last_key = wkey
                last_bucket.append(flow)
                # last_key, not wkey: the flows of one bucket share one int object (wheel
                # keys are ~2**35, a 32-byte int each; bench_flow_memory.py)
                flow.timeout_slot = last_key
                if proto == 6 and on_new_tcp is not None:
                    on_new_tcp(flow, pkt)
            pkt.flow = flow
            flow.last_seen = ts
            if to_server:
                flow.pkts_toserver += 1
                flow.bytes_toserver += len(data)
            else:
                pkt.to_server = False
                flow.pkts_toclient += 1
                flow.bytes_toclient += len(data)
            if proto == 6:
                flags = pkt.tcp_flags
                if to_server:               # the flags seen per direction, for the flow record
                    flow.tcp_flags_ts |= flags
                else:
                    flow.tcp_flags_tc |= flags
                if flags & 0x07 or flow._tcp_st != ESTABLISHED:
                    # the TCP step (tcp_state.update), inlined: established as of before this
                    # segment, the transition from the table, the sequence bookkeeping
                    old_st = flow._st
                    # Suricata's FlowHandlePacketUpdate: the flow state, or a TCP session at
                    # or past ESTABLISHED (closing and closed ones too: its enum's order)
                    tcp_st = flow._tcp_st
                    flow.established = old_st == EST_FLOW or ESTABLISHED <= tcp_st < N_TCP
                    if tcp_st >= N_TCP:     # not a state (flow.UNSET_STATE, set from outside): no step
                        nxt_st = 127
                    elif cython.compiled:   # the tables' bytes read in place
                        stp = step_table
                        nxt_st = stp[step_base + ((tcp_st * 32 + (flags & 0x17)) << 1) + to_server]
                    else:
                        nxt_st = step_table[step_base + ((tcp_st * 32 + (flags & 0x17)) << 1) + to_server]
                    if nxt_st != 127:   # tcp_state.NO_CHANGE
                        flow._tcp_st = nxt_st
                        if cython.compiled:
                            stp = flow_state_of
                            flow._st = stp[nxt_st]
                        else:
                            flow._st = flow_state_of[nxt_st]
                    seq = pkt.seq
                    plen = pkt.payload_len
                    end_seq = (seq + plen + (1 if flags & 0x03 else 0)) & _M32
                    # the sequence fields are -1 while unknown (Flow: the properties give None)
                    if to_server:
                        if flow._client_isn < 0:
                            # the SYN's seq is the ISN; picked up midstream, the byte before the first one seen
                            flow._client_isn = seq if flags & 0x02 else (seq - 1) & _M32
                        nxt = flow._client_next_seq
                        if nxt < 0 or (end_seq - nxt) & _M32 < _HALF32:
                            flow._client_next_seq = end_seq
                    else:
                        if flow._server_isn < 0:
                            flow._server_isn = seq if flags & 0x02 else (seq - 1) & _M32
                        nxt = flow._server_next_seq
                        if nxt < 0 or (end_seq - nxt) & _M32 < _HALF32:
                            flow._server_next_seq = end_seq
                    if flow._st != old_st and flow._st == CLOSED_FLOW:
                        # a shorter timeout: refile earlier (other transitions only lengthen
                        # it); the old entry goes stale
                        due = due_key(flow)
                        if due >> 4 < flow.timeout_slot >> 4:
                            file_under(flow, due)
                else:
                    if not flow.established:
                        # the segment after the handshake-completing ACK (or a midstream
                        # pickup): established from here on (tcp_state.update)
                        flow.established = True
                    plen = pkt.payload_len
                    if plen:   # stream_size bookkeeping, inlined (tcp_state.track_seq)
                        seq = pkt.seq
                        end_seq = (seq + plen) & _M32      # SEQ_MASK
                        # -1: unknown (Flow.client_next_seq gives None)
                        if to_server:
                            nxt = flow._client_next_seq
                            if nxt < 0 or (end_seq - nxt) & _M32 < _HALF32:   # HALF
                                flow._client_next_seq = end_seq
                        else:
                            nxt = flow._server_next_seq
                            if nxt < 0 or (end_seq - nxt) & _M32 < _HALF32:
                                flow._server_next_seq = end_seq
            elif not to_server and not flow.established:
                # UDP/ICMP/other: established once both directions were seen (Suricata)
                flow.established = True
                flow._st = EST_FLOW
                if flow.icmp is not None and pkt.icmp_type >= 0:
                    flow.icmp += (pkt.icmp_type, pkt.icmp_code)        # response_icmp_type/code
            return flow

        def active_count() -> int:
            return active

        def reset_wheel() -> None:
            """After a flush: an empty wheel, and no bucket remembered for new flows
            (one left in `last_bucket` would take flows that then never expire)."""
            nonlocal last_key, last_bucket, next_check
            wheel.clear()
            for heap in heaps:
                heap.clear()
            last_key = -1
            last_bucket = []
            next_check = inf

        self._active_count = active_count
        self._reset_wheel = reset_wheel
        self._end_all = end_all
        return update, housekeeping, end

    # ------------------------------------------------------------------ housekeeping
    def expire(self, now: float) -> None:
        """Time out flows as of packet time ``now`` (the hot path calls this itself)."""
        self._housekeeping(now)

    def flush(self, reason: str = "shutdown") -> None:
        """End every live flow with ``end_reason = reason`` (calls ``on_end`` for each).

        Order: by timeout slot, then filing order; deterministic for a given input
        without sorting every flow (a 200k-flow sort cost 0.3 s in the bench).
        Each bucket leaves the wheel before its flows end, so a flow is freed once
        it is logged: the outputs' per-flow text (EVE's flow.eve) would otherwise
        pile up for every flow until the end of the flush. The keys go first, all at
        once (`end_all` in `_build`)."""
        self._end_all(reason)

    def live_flows(self) -> Iterator[Flow]:
        """Every live flow, once (a rule reload clears their detection state)."""
        for key, bucket in list(self._wheel.items()):
            for flow in bucket:
                if flow.timeout_slot == key:
                    yield flow

    def __len__(self) -> int:
        return self._active_count()

    def __del__(self, _compiled: bool = cython.compiled) -> None:
        """A table dropped without a flush (a sensor torn down, a test): its live flows go
        back to the collector, so a cycle through one and its stages' state is still
        freed (module docstring, "Collector"). `_compiled` is bound at import: at
        interpreter exit this may run after the module's globals were wiped."""
        if _compiled:
            for bucket in getattr(self, "_wheel", {}).values():   # (none: __init__ raised)
                for flow in bucket:
                    _collectable(flow)

    def key_entries(self) -> int:
        """Entries filing the live flows: dict keys (two per flow pure Python, the
        client's only compiled) plus the C index's slots (one per flow). For tests."""
        return (sum(len(t) for t in self._tables.values())
                + sum(len(ix) for ix in self._index if ix is not None))

    def stats(self) -> dict[str, int]:
        """Counters under Suricata-style names (``flow.total``, ``flow.tcp``, ``flow.active``, ...)."""
        c = self._counts
        n = self._new_flows
        known = n[6] + n[17] + n[1] + n[58]
        total = sum(n)
        return {
            "flow.total": total,
            "flow.tcp": n[6],
            "flow.udp": n[17],
            "flow.icmpv4": n[1],
            "flow.icmpv6": n[58],
            "flow.other": total - known,
            "flow.active": self._active_count(),
            "flow.timeout": c["timeout"],
            "flow.evicted": c["evicted"],
            "flow.shutdown": c["shutdown"],
            "flow.max_flows": self.max_flows,
        }
