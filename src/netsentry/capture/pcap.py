"""Classic libpcap files: both byte orders, microsecond and nanosecond magic.

Layout (draft-ietf-opsawg-pcap): a 24-byte file header (magic, version,
thiszone, sigfigs, snaplen, link type) then records of a 16-byte header
(ts seconds, ts fraction, captured length, original length) and the data.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator

from netsentry.capture.errors import CaptureError

try:
    import cython
except ImportError:      # Cython is a build dependency only (netsentry/_cython_shim.py)
    from netsentry import _cython_shim as cython

Record = tuple[float, bytes, int, int]  # (ts, data, wirelen, linktype)
DamageHook = Callable[[CaptureError], None]   # gets a damaged file's error; the records then end

FILE_HEADER_LEN = 24

# Largest captured length we believe. libpcap refuses records above its
# MAXIMUM_SNAPLEN (262144) for ordinary link types; a bigger caplen is a
# corrupt header, and trusting it would swallow the rest of the file.
MAX_CAPLEN = 262144

# magic as it appears in the file -> (struct byte order, ticks per second,
# record header length)
MAGICS: dict[bytes, tuple[str, int, int]] = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000_000, 16),      # 0xa1b2c3d4 little-endian, microseconds
    b"\xa1\xb2\xc3\xd4": (">", 1_000_000, 16),      # 0xa1b2c3d4 big-endian
    b"\x4d\x3c\xb2\xa1": ("<", 1_000_000_000, 16),  # 0xa1b23c4d little-endian, nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1_000_000_000, 16),
    # Alexey Kuznetsov's patched libpcap (old Red Hat tcpdump): 8 more bytes
    # per record header (ifindex, protocol, pkt_type), otherwise the same.
    b"\x34\xcd\xb2\xa1": ("<", 1_000_000, 24),      # 0xa1b2cd34
    b"\xa1\xb2\xcd\x34": (">", 1_000_000, 24),
}

# The link-type field's top bits carry FCS information (libpcap's
# LT_LINKTYPE mask); the link type itself is below them.
_LINKTYPE_MASK = 0x03FFFFFF


def caplen_limit(snaplen: int) -> int:
    """Largest believable caplen for a file with this snaplen.

    A record may exceed snaplen a little (libpcap tolerates the old Solaris
    BUFMOD bug), so allow twice the snaplen, never below 64 KiB (writers put
    0 or nonsense in snaplen) and never above MAX_CAPLEN.
    """
    return min(MAX_CAPLEN, max(2 * snaplen, 65536))


class PcapFormat:
    """One classic pcap file: header parsed at open, records on iteration."""

    name = "pcap"

    def __init__(self, head: bytes, path: str) -> None:
        self.path = path
        order, self.ticks, self.record_header_len = MAGICS[head[:4]]
        if len(head) < FILE_HEADER_LEN:
            raise CaptureError(path, len(head), "truncated pcap file header",
                               f"need {FILE_HEADER_LEN} bytes, file has {len(head)}")
        _magic, major, _minor, _zone, _sigfigs, snaplen, network = struct.unpack_from(
            order + "IHHiIII", head)
        if major != 2:
            raise CaptureError(path, 4, "unsupported pcap version", f"major version {major}, expected 2")
        self.order = order
        self.snaplen = snaplen
        self.linktype = network & _LINKTYPE_MASK
        self.linktypes = [self.linktype]

    def records(self, buf, end: int, on_damage: DamageHook | None = None) -> Iterator[Record]:
        """Yield ``(ts, data, wirelen, linktype)`` from ``buf[24:end]``.

        A damaged record (a header cut short, a captured length beyond
        `caplen_limit` or beyond the end of the file) raises CaptureError
        after every good record before it; with ``on_damage``, the error goes
        to that hook instead and the records end there, as at the end of the
        file (Suricata's pcap file source: pcap_dispatch's error is logged and
        the file is done). The check costs nothing per record: it sits in the
        bounds test the loop makes anyway.

        This is the per-packet path. Best-of-5 CPU-time figures on
        bench-1m.pcap (1,000,112 records, 185 MB; shared 2-core VM, CPython
        3.11; bench/bench_capture.py and variants of this loop):
          - `while offset + 16 <= end:` bounds test per record: 2.00 M rec/s
          - `while True` + `except struct.error` at the end (a 3.11 `try`
            costs nothing until it fires): 2.08-2.34 M rec/s  <- kept
          - batches of 2048 tuples in lists, flattened by
            itertools.chain.from_iterable: 1.64 M rec/s
          - timestamp `sec + frac / ticks` vs `sec + frac * scale`: 2.01 vs
            2.09; the float timestamp alone costs a third of the loop
            (3.0 M rec/s when yielding the int seconds), so it is computed
            once, here, with one multiply and one add.
          - bytes (f.read) vs mmap: within noise; mmap only above 64 MiB.
        ``offset`` is read by CaptureReader.bytes_read through the suspended
        generator's locals: keep that name. Storing an attribute per record
        would cost more than a progress bar is worth.

        Compiled (setup.py COMPILED_MODULES), the same records come from
        `PcapRecords`, which reads the record header as C integers and keeps
        ``offset`` as a C field (bench/README.md, "Compiled path").
        """
        if cython.compiled:
            return PcapRecords(self, buf, end, on_damage)
        return self._records(buf, end, on_damage)

    def _records(self, buf, end: int, on_damage: DamageHook | None) -> Iterator[Record]:
        """The pure-Python record loop (see `records`)."""
        unpack = struct.Struct(self.order + "IIII").unpack_from
        struct_error = struct.error
        scale = 1.0 / self.ticks
        linktype = self.linktype
        limit = caplen_limit(self.snaplen)
        header_len = self.record_header_len
        offset = FILE_HEADER_LEN
        while True:
            try:
                sec, frac, caplen, wirelen = unpack(buf, offset)
            except struct_error:
                break                           # the end, or a record header cut short
            start = offset + header_len
            nxt = start + caplen
            if caplen > limit or nxt > end:
                self._damaged(buf, offset, caplen, end, on_damage)
                return
            yield sec + frac * scale, buf[start:nxt], wirelen, linktype
            offset = nxt
        if offset < end:
            self._damaged(buf, offset, -1, end, on_damage)

    def _damaged(self, buf, offset: int, caplen: int, end: int, on_damage: DamageHook | None) -> None:
        """The record at `offset` is damaged (caplen -1: its header is cut short):
        raise the error, or hand it to `on_damage` (both loops then end)."""
        header_len = self.record_header_len
        if caplen < 0:
            reason, detail = "truncated record header", f"need {header_len} bytes, {end - offset} left"
        elif caplen > caplen_limit(self.snaplen):
            reason = "absurd record length"
            detail = (f"header says {caplen} bytes, snaplen {self.snaplen}, "
                      f"limit {caplen_limit(self.snaplen)}")
        else:
            reason, detail = "truncated record", f"header says {caplen} bytes, {max(0, end - offset - header_len)} left"
        err = CaptureError(self.path, offset, reason, detail, packet=self._packet_number(buf, offset))
        if on_damage is None:
            raise err
        on_damage(err)

    def _packet_number(self, buf, offset: int) -> int:
        """1-based number of the record at `offset` (the records before it are good:
        counted once, when damage is found, so the loops keep no counter)."""
        caplen_at = struct.Struct(self.order + "I").unpack_from
        pos, n = FILE_HEADER_LEN, 1
        while pos < offset:
            pos += self.record_header_len + caplen_at(buf, pos + 8)[0]
            n += 1
        return n


@cython.cclass
class PcapRecords:
    """The compiled record loop: `PcapFormat._records` as an iterator object.

    A generator's locals are invisible once compiled, and a Python iterator
    class is slower than a generator in CPython (a method call per record),
    so the pure path keeps the generator and only the compiled one uses this
    class; both yield the same tuples and raise the same errors (the pure
    loop's docstring has the measurements; tests run both paths). The header
    fields are read byte by byte in C: no ``struct`` call and no int objects
    for ``sec``, ``frac`` and ``caplen``. They are read through a plain pointer
    into the buffer (``_p``), taken once from a typed memoryview that stays held
    (``_view``) for as long as the iterator lives: reading through the memoryview
    itself acquired and released a slice (two atomic counter updates) per header
    word, 3% of read+decode+flow in py-spy (bench/README.md, "pktc").
    ``offset`` is public for CaptureReader.bytes_read and means what the
    generator's local does: the start of the record last returned, the end
    once the file is done.
    """

    offset = cython.declare(cython.Py_ssize_t, visibility="public")
    _next = cython.declare(cython.Py_ssize_t)
    _end = cython.declare(cython.Py_ssize_t)
    _limit = cython.declare(cython.Py_ssize_t)
    _header_len = cython.declare(cython.Py_ssize_t)
    _big = cython.declare(cython.bint)
    _scale = cython.declare(cython.double)
    _view = cython.declare(cython.const[cython.uchar][::1])
    _p: cython.p_const_uchar
    _buf = cython.declare(object)
    _linktype = cython.declare(object)
    _format = cython.declare(object)
    _on_damage = cython.declare(object)

    def __init__(self, fmt: PcapFormat, buf, end: int, on_damage: DamageHook | None = None) -> None:
        self._format = fmt
        self._on_damage = on_damage
        self._buf = buf
        self._view = buf
        self._p = cython.address(self._view[0]) if len(self._view) else cython.NULL
        self._end = min(end, len(self._view))     # the pointer is read unchecked below `_end`
        self._limit = caplen_limit(fmt.snaplen)
        self._header_len = fmt.record_header_len
        self._big = fmt.order == ">"
        self._scale = 1.0 / fmt.ticks
        self._linktype = fmt.linktype
        self.offset = FILE_HEADER_LEN
        self._next = FILE_HEADER_LEN

    def __iter__(self) -> PcapRecords:
        return self

    @cython.cfunc
    @cython.inline
    def _u32(self, off: cython.Py_ssize_t) -> cython.ulong:
        v: cython.p_const_uchar = self._p
        if self._big:
            return ((cython.cast(cython.ulong, v[off]) << 24) | (cython.cast(cython.ulong, v[off + 1]) << 16)
                    | (cython.cast(cython.ulong, v[off + 2]) << 8) | v[off + 3])
        return ((cython.cast(cython.ulong, v[off + 3]) << 24) | (cython.cast(cython.ulong, v[off + 2]) << 16)
                | (cython.cast(cython.ulong, v[off + 1]) << 8) | v[off])

    @cython.cfunc
    def _stop(self) -> cython.void:
        """Nothing more comes from this file (damage found): later calls end at once."""
        self._next = self._end

    def __next__(self) -> Record:
        offset: cython.Py_ssize_t = self._next
        end: cython.Py_ssize_t = self._end
        if offset + 16 > end:
            if offset < end:
                self._stop()                    # the next call ends, as the generator would
                self._format._damaged(self._buf, offset, -1, end, self._on_damage)
            self.offset = end
            raise StopIteration
        sec: cython.ulong = self._u32(offset)
        frac: cython.ulong = self._u32(offset + 4)
        caplen: cython.Py_ssize_t = self._u32(offset + 8)
        wirelen: cython.ulong = self._u32(offset + 12)
        start: cython.Py_ssize_t = offset + self._header_len
        nxt: cython.Py_ssize_t = start + caplen
        if caplen > self._limit or nxt > end:
            self._stop()
            self._format._damaged(self._buf, offset, caplen, end, self._on_damage)
            self.offset = end
            raise StopIteration
        self.offset = offset
        self._next = nxt
        # the same two float operations as the pure loop, so timestamps match to the bit
        ts: cython.double = cython.cast(cython.double, frac) * self._scale
        ts = cython.cast(cython.double, sec) + ts
        # the frame copied straight from the mapped file into a new bytes object (a char
        # pointer sliced is one PyBytes_FromStringAndSize), not through a slice object and
        # the buffer's generic subscript: same bytes, ~5% of read+decode+flow less
        if caplen:
            frame = cython.cast(cython.p_const_char, self._p + start)[:caplen]
        else:
            frame = b""
        return ts, frame, wirelen, self._linktype
