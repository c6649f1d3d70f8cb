"""Open capture files by magic and iterate them as one stream of records.

A record is ``(ts, data, wirelen, linktype)``: a plain tuple, because the
capture loop unpacks it straight into locals and an object per packet would
cost more than the whole read.
"""

from __future__ import annotations

import inspect
import itertools
import mmap
import os
from collections.abc import Iterable, Iterator
from typing import Protocol

from netsentry.capture import pcap, pcapng
from netsentry.capture.errors import CaptureError
from netsentry.capture.pcap import DamageHook, Record
from netsentry.log import get_logger

# Files up to this size are read into one bytes object; bigger ones are
# mmapped so a multi-GB capture does not need its size in RAM. Parsing speed
# is the same on both (bench-1m.pcap: 2.08 bytes vs 2.34 M rec/s mmap, within
# the noise of the shared VM).
_READ_WHOLE_MAX = 64 << 20
# Prefix read at open time: enough for any file header and, for pcapng, the
# interface descriptions that usually follow the first section header.
_HEAD_LEN = 64 << 10


class CaptureFormat(Protocol):
    name: str
    linktypes: list[int]

    def records(self, buf, end: int, on_damage: DamageHook | None = None) -> Iterator[Record]: ...


# Registration table: file magic (first 4 bytes, as stored) -> format class.
_FORMATS: dict[bytes, type] = {}
for _magic in pcap.MAGICS:
    _FORMATS[_magic] = pcap.PcapFormat
for _magic in pcapng.MAGICS:
    _FORMATS[_magic] = pcapng.PcapngFormat


class CaptureReader:
    """One capture file. Iterate it for records; ``bytes_read`` for progress."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        try:
            with open(self.path, "rb") as f:
                self.size = os.fstat(f.fileno()).st_size
                head = f.read(_HEAD_LEN)
        except OSError as e:
            raise CaptureError(self.path, None, "cannot open", e.strerror or str(e)) from e
        if self.size == 0:
            raise CaptureError(self.path, None, "empty file")
        fmt = _FORMATS.get(head[:4])
        if fmt is None:
            raise CaptureError(self.path, 0, "not a pcap or pcapng file",
                               f"unknown magic {head[:4].hex()}")
        self._format: CaptureFormat = fmt(head, self.path)
        self.format = self._format.name
        self._records: Iterator[Record] | None = None
        # None: iterating raises CaptureError at damage; a hook gets it and the records end
        self.on_damage: DamageHook | None = None

    @property
    def linktypes(self) -> list[int]:
        """Distinct link types seen so far (pcapng interfaces appear as read)."""
        return self._format.linktypes

    @property
    def bytes_read(self) -> int:
        """File offset reached, for a progress bar. Costs nothing per record:
        it peeks at the running generator's ``offset`` local instead of the
        generator storing an attribute for every packet."""
        gen = self._records
        if gen is None:
            return 0
        offset = getattr(gen, "offset", None)     # the compiled pcap loop (pcap.PcapRecords)
        if offset is not None:
            return int(offset)
        if gen.gi_frame is None:  # finished
            return self.size
        return inspect.getgeneratorlocals(gen).get("offset", 0)

    def __iter__(self) -> Iterator[Record]:
        # Return the format's generator itself: wrapping it in another
        # generator (`yield from`) cost about 10% on bench-1m.pcap.
        # The buffer (bytes or mmap) lives as long as the generator does.
        with open(self.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                raise CaptureError(self.path, None, "empty file")
            if size <= _READ_WHOLE_MAX:
                buf = f.read()
            else:
                buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                if hasattr(buf, "madvise"):
                    buf.madvise(mmap.MADV_SEQUENTIAL)  # we read front to back, once
        self.size = size
        self._records = gen = self._format.records(buf, len(buf), self.on_damage)
        return gen

    def stats(self) -> dict[str, int]:
        """Counters of what the reader had to repair (the packet-source `stats()` seam)."""
        return {"netsentry.capture.ts_out_of_range": getattr(self._format, "ts_out_of_range", 0)}

    def __repr__(self) -> str:
        return f"<CaptureReader {self.format} {self.path!r} {self.size} bytes>"


def first_timestamp(path: str | os.PathLike[str]) -> float | None:
    """Time of the file's first packet, reading only its first 64 KiB (for
    ordering a directory of captures); None when the file has no readable
    first record there. Errors are left for the replay to report."""
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD_LEN)
        fmt = _FORMATS.get(head[:4])
        if fmt is None:
            return None
        for ts, _data, _wirelen, _linktype in fmt(head, os.fspath(path)).records(head, len(head)):
            return ts
    except (OSError, CaptureError):
        pass
    return None


def open_capture(path: str | os.PathLike[str]) -> CaptureReader:
    """Open a pcap or pcapng file (detected by magic). Raises CaptureError."""
    return CaptureReader(path)


class CaptureChain:
    """Several capture files read in the given order as one stream.

    A file that cannot be opened, or is not a capture, fails here, before the
    first packet. Damage found while reading (a record header cut short, a
    captured length past the end or beyond any snaplen) ends that file as its
    end would: the error is logged with file, packet number and byte, kept in
    `damaged`, and the next file is read. That is what Suricata's pcap file
    source does (pcap_dispatch's error is logged, the file is done); a replay
    of a capture cut short by a crash still yields every packet before the cut
    and its complete outputs, and exits 0."""

    def __init__(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        # Open (header only) every file up front: a typo in the third path
        # should fail before the first file is replayed.
        self.readers = [open_capture(p) for p in paths]
        self.damaged: list[CaptureError] = []
        # False: damage is kept in `damaged` but not logged (replay workers: each reads
        # every record of every file, and one of them reports the damage)
        self.log_damage = True
        for r in self.readers:
            r.on_damage = self._damaged
        self.size = sum(r.size for r in self.readers)
        self._current: CaptureReader | None = None
        self._last: CaptureReader | None = None     # the file read last, once the chain is done
        self._bytes_done = 0

    @property
    def path(self) -> str:
        """The file being read now (the first before iteration starts, the last after it:
        records written at shutdown, such as the flows still open, name the last file)."""
        if self._current is not None:
            return self._current.path
        if self._last is not None:
            return self._last.path
        return self.readers[0].path if self.readers else ""

    @property
    def linktypes(self) -> list[int]:
        seen: list[int] = []
        for r in self.readers:
            for lt in r.linktypes:
                if lt not in seen:
                    seen.append(lt)
        return seen

    @property
    def bytes_read(self) -> int:
        cur = self._current
        return self._bytes_done + (cur.bytes_read if cur is not None else 0)

    def __iter__(self) -> Iterator[Record]:
        # itertools.chain switches files in C; a `yield from` per file would
        # add a generator hop to every record.
        self._bytes_done = 0
        return itertools.chain.from_iterable(self._files())

    def stats(self) -> dict[str, int]:
        """The readers' counters, summed."""
        total: dict[str, int] = {}
        for r in self.readers:
            for k, v in r.stats().items():
                total[k] = total.get(k, 0) + v
        return total

    def _damaged(self, err: CaptureError) -> None:
        self.damaged.append(err)
        if self.log_damage:
            get_logger().error("damaged capture file: the rest of it is skipped", file=err.path, packet=err.packet,
                               byte=err.offset, error=str(err))

    def _files(self) -> Iterator[Iterator[Record]]:
        for r in self.readers:
            self._current = r
            yield iter(r)
            self._bytes_done += r.size
        self._last = self._current
        self._current = None


def read_captures(paths: Iterable[str | os.PathLike[str]]) -> CaptureChain:
    """Chain several captures, in the order given, as one record stream."""
    return CaptureChain(paths)
