"""A replay worker's share of a capture: who owns a record, and the records one worker keeps.

With ``--workers N`` every replay worker reads the whole capture and keeps the
records of the IP pairs it owns (docs/architecture.md, "How a worker gets its
packets"): the XOR of the two addresses, mixed, modulo N (Suricata's autofp
``ippair`` scheduler), so both directions of a flow, its fragments and every
flow between two hosts meet in one worker.

This runs over *every* record in *every* worker, so it is in setup.py's
COMPILED_MODULES: compiled, `ShareSource` is its own iterator and reads the
addresses of untagged Ethernet IPv4/IPv6 frames as C integers straight from
the record's bytes; the pure-Python path (the reference, also what runs
without a compiler or with ``NETSENTRY_PURE=1``) is the generator in
`ShareSource._records`. Both give the same records, numbers and clock.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterator
from typing import Any

try:
    import cython
except ImportError:      # Cython is a build dependency only (netsentry/_cython_shim.py)
    from netsentry import _cython_shim as cython

Record = tuple[float, bytes, int, int]

# --- who owns a packet: the symmetric IP-pair hash, per link type --------------------

_V4_PAIR = struct.Struct("!II").unpack_from
_V6_PAIR = struct.Struct("!8I").unpack_from
_U16 = struct.Struct("!H").unpack_from
_U32_LE = struct.Struct("<I").unpack_from
_VLAN_TYPES = frozenset((0x8100, 0x88A8, 0x9100))


def _ip_pair_key(data: bytes, off: int) -> int:
    """XOR of the two addresses of the IP header at `off` (symmetric); 0 when there is none."""
    if len(data) <= off:
        return 0
    version = data[off] >> 4
    if version == 4 and len(data) >= off + 20:
        a, b = _V4_PAIR(data, off + 12)
        return a ^ b
    if version == 6 and len(data) >= off + 40:
        w = _V6_PAIR(data, off + 8)
        return (w[0] ^ w[4]) ^ (w[1] ^ w[5]) ^ (w[2] ^ w[6]) ^ (w[3] ^ w[7])
    return 0


def _ethertype_key(data: bytes, ethertype: int, off: int) -> int:
    """Skip VLAN tags (up to 3, as the decoder does), then hash an IPv4/IPv6 header."""
    for _ in range(3):
        if ethertype not in _VLAN_TYPES or len(data) < off + 4:
            break
        ethertype = _U16(data, off + 2)[0]
        off += 4
    if ethertype in (0x0800, 0x86DD):
        return _ip_pair_key(data, off)
    return 0


def _ethernet_key(data: bytes) -> int:
    if len(data) < 14:
        return 0
    return _ethertype_key(data, _U16(data, 12)[0], 14)


def _sll_key(data: bytes) -> int:
    if len(data) < 16:
        return 0
    return _ethertype_key(data, _U16(data, 14)[0], 16)


def _sll2_key(data: bytes) -> int:
    if len(data) < 20:
        return 0
    return _ethertype_key(data, _U16(data, 0)[0], 20)


def _null_key(data: bytes) -> int:
    return _ip_pair_key(data, 4)


def _raw_key(data: bytes) -> int:
    return _ip_pair_key(data, 0)


# Link type -> the function giving a packet's IP-pair key. Link types not here
# (Cisco HDLC, ...) and non-IP frames all go to worker 0: still symmetric, only
# unbalanced. Tunnels hash their outer pair, so a tunnel's inner flows stay
# together; MPLS and PPPoE likewise go by the outermost header found here (0).
PAIR_KEYS: dict[int, Callable[[bytes], int]] = {
    0: _null_key, 1: _ethernet_key, 12: _raw_key, 14: _raw_key, 101: _raw_key,
    108: _null_key, 113: _sll_key, 228: _raw_key, 229: _raw_key, 276: _sll2_key,
}


def worker_of(data: bytes, linktype: int, workers: int) -> int:
    """The worker (0..workers-1) that owns this frame: the same for both directions."""
    pair_key = PAIR_KEYS.get(linktype)
    if pair_key is None:
        return 0
    key = pair_key(data)
    if not key:
        return 0
    # fold and mix so that addresses differing only in high or low bits spread too
    key = ((key ^ (key >> 16)) * 0x45D9F3B) & 0xFFFFFFFF
    return (key ^ (key >> 16)) % workers


class _NoLink:
    """ShareSource without host-state judge: no second ever ends."""

    tick_end = math.inf
    own_closes = False


_NO_LINK = _NoLink()

# Compiled path: a stop request is looked at before each record handed out, and every
# STOP_EVERY records skipped in between (a Python call per record is ~0.1 us, on every
# record of the capture in every worker).
STOP_EVERY = 64


@cython.cfunc
@cython.inline
def _be32(p: cython.p_const_uchar, off: cython.Py_ssize_t) -> cython.uint:
    return ((cython.cast(cython.uint, p[off]) << 24) | (cython.cast(cython.uint, p[off + 1]) << 16)
            | (cython.cast(cython.uint, p[off + 2]) << 8) | p[off + 3])


@cython.cclass
class ShareSource:
    """A capture, reduced to the records one worker owns.

    Counts every record it reads (`pcap_cnt`, the global packet number the
    sensor writes into EVE) and remembers the last timestamp of the whole
    capture (flows still open at the end get the end time of the capture, as
    with one worker). Ends early when `stop` says so (checked before each
    record it hands out, and every `STOP_EVERY` records it skips).

    With a `link` (hoststate.WorkerLink, set before iterating) every record also
    drives the judge's clock: a record that reaches the end of the second in
    progress closes it in this worker too, whoever owns the record, so every
    worker cuts packet time at the same packet. The worker's own records are
    left to its anomaly observer (which closes the second after the flow table
    saw the packet, as the engine does) when it has one. Without a link,
    `_NO_LINK`'s second never ends.
    """

    pcap_cnt = cython.declare(cython.Py_ssize_t, visibility="public")
    index = cython.declare(cython.Py_ssize_t, visibility="public")
    workers = cython.declare(cython.Py_ssize_t, visibility="public")
    last_ts = cython.declare(object, visibility="public")
    link = cython.declare(object, visibility="public")
    _source = cython.declare(object)
    _stop = cython.declare(object)
    _it = cython.declare(object)
    _clock = cython.declare(object)         # the link in use while iterating (or _NO_LINK)
    _tick_end = cython.declare(cython.double)
    _own_closes = cython.declare(cython.bint)
    _done = cython.declare(cython.bint)

    def __init__(self, source: Any, index: int, workers: int, stop: Callable[[], bool]) -> None:
        self._source = source
        self.index = index
        self.workers = workers
        self._stop = stop
        self.pcap_cnt = 0
        self.last_ts = None
        self.link = None
        self._it = None
        self._clock = _NO_LINK
        self._tick_end = math.inf
        self._own_closes = False
        self._done = False

    @property
    def bytes_read(self) -> int:
        return int(self._source.bytes_read)

    @property
    def path(self) -> str:
        return str(getattr(self._source, "path", ""))

    def __iter__(self) -> Iterator[Record]:
        if cython.compiled:
            self._it = iter(self._source)
            self._clock = self.link if self.link is not None else _NO_LINK
            self._own_closes = bool(self._clock.own_closes)
            self._done = False
            return self
        return self._records()

    def __next__(self) -> Record:
        """The compiled path: the next record this worker owns (see `_records`)."""
        record: tuple
        data: bytes
        p: cython.p_const_uchar
        key: cython.uint
        n: cython.Py_ssize_t = self.pcap_cnt
        workers: cython.uint = self.workers
        index: cython.uint = self.index
        mine: cython.bint
        skipped: cython.Py_ssize_t = 0
        clock = self._clock
        if self._done or self._stop():
            self._done = True
            raise StopIteration
        # the observer may have closed a second while the sensor handled the last record
        self._tick_end = clock.tick_end
        for record in self._it:
            n += 1
            self.pcap_cnt = n
            self.last_ts = record[0]
            data = record[1]
            size: cython.Py_ssize_t = len(data)
            p = data
            # untagged Ethernet IPv4 / IPv6 (most traffic): the pair from fixed offsets, in C
            if record[3] == 1 and size >= 34 and p[12] == 0x08 and p[13] == 0x00 and p[14] >> 4 == 4:
                key = _be32(p, 26) ^ _be32(p, 30)
            elif record[3] == 1 and size >= 54 and p[12] == 0x86 and p[13] == 0xDD and p[14] >> 4 == 6:
                key = (_be32(p, 22) ^ _be32(p, 38)) ^ (_be32(p, 26) ^ _be32(p, 42)) ^ \
                      (_be32(p, 30) ^ _be32(p, 46)) ^ (_be32(p, 34) ^ _be32(p, 50))
            else:
                pair_key = PAIR_KEYS.get(record[3])
                key = pair_key(data) if pair_key is not None else 0
            if key:
                key = (key ^ (key >> 16)) * 0x45D9F3B        # uint: wraps mod 2**32, as `& 0xFFFFFFFF`
                mine = (key ^ (key >> 16)) % workers == index
            else:
                mine = index == 0
            ts: cython.double = record[0]
            if not mine:
                if ts >= self._tick_end:
                    clock.advance(record[0], n)
                    self._tick_end = clock.tick_end
                skipped += 1
                if skipped % STOP_EVERY == 0 and self._stop():
                    self._done = True
                    raise StopIteration
                continue
            if self._own_closes and ts >= self._tick_end:
                clock.advance(record[0], n)
            return record
        self._done = True
        raise StopIteration

    def _records(self) -> Iterator[Record]:
        """The pure-Python path: the records this worker owns, as a generator (the stop
        request is looked at before every record, as before the compiled path existed)."""
        index, workers, stop = self.index, self.workers, self._stop
        link = self.link if self.link is not None else _NO_LINK
        keys = PAIR_KEYS
        v4_pair = _V4_PAIR
        own_closes = link.own_closes
        n = 0
        ts = None
        try:
            for record in self._source:
                if stop():
                    return
                n += 1
                ts, data, _, linktype = record
                # untagged Ethernet IPv4 inline (most traffic): no call per record;
                # bench/bench_workers.py's share filter: 1.3 -> 0.6 us per record
                if linktype == 1 and data[12:14] == b"\x08\x00" and len(data) >= 34 and data[14] >> 4 == 4:
                    a, b = v4_pair(data, 26)
                    key = a ^ b
                else:
                    pair_key = keys.get(linktype)
                    key = pair_key(data) if pair_key is not None else 0
                if key:
                    key = ((key ^ (key >> 16)) * 0x45D9F3B) & 0xFFFFFFFF
                    mine = (key ^ (key >> 16)) % workers == index
                else:
                    mine = not index
                if not mine:
                    if ts >= link.tick_end:
                        self.pcap_cnt = n
                        link.advance(ts, n)
                    continue
                self.pcap_cnt = n
                if own_closes and ts >= link.tick_end:
                    link.advance(ts, n)
                yield record
        finally:
            self.pcap_cnt = n
            self.last_ts = ts
