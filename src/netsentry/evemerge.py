"""Folding the workers' EVE files into one eve.json, in timestamp order (workers.merge_eve).

Each worker's file is already in its own processing order, so a k-way merge on
the record's leading timestamp keeps each worker's order and interleaves them by
time; ties go to the earlier part (worker order). A torn last line (a worker
killed mid-write) is dropped. The key is the slice ``line[14:40]``: every EVE
line starts ``{"timestamp":"YYYY-MM-DDTHH:MM:SS.ffffff+zzzz``.

This runs after the workers end, on one core, over every line they wrote (the
1M bench capture: 460k lines, 260 MB with two workers), so it is in setup.py's
COMPILED_MODULES. Compiled, the parts are mapped and the merge compares the
keys with memcmp and copies whole lines into one output buffer, written a
megabyte at a time: no Python object per line (bench-1m, two workers, written
to /dev/null: 0.17 -> 0.055 s CPU; bench/README.md, "perfwk"). The pure-Python path (the reference, also what
runs without a compiler or with ``NETSENTRY_PURE=1``) is heapq.merge over the
files' lines. Both write the same bytes (tests/test_share.py).
"""

from __future__ import annotations

import heapq
import mmap
import operator
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

try:
    import cython
except ImportError:      # Cython is a build dependency only (netsentry/_cython_shim.py)
    from netsentry import _cython_shim as cython

MERGE_BUFFER = 1 << 20      # read/write buffer of each file of the merge (fewer system calls)

# the merge key, taken by a C-level getter in the pure path (no Python frame per line)
_timestamp_key = operator.itemgetter(slice(14, 40))


def merge_parts(parts: list[Path], out: BinaryIO) -> None:
    """Write the whole lines of the files `parts` (missing ones skipped) to `out`, merged."""
    if cython.compiled:
        _merge_mapped([p for p in parts if p.exists()], out)
        return
    files = [open(p, "rb", buffering=MERGE_BUFFER) if p.exists() else None for p in parts]   # noqa: SIM115
    try:
        # the files themselves are the streams (lines read in C); only a file whose last
        # line is torn goes through the filtering generator. writelines() takes the merge
        # in C too: bench_workers' merge phase 0.22 -> 0.08 s CPU per 138k lines
        streams = [f if _ends_whole(f) else _whole_lines(f) for f in files if f is not None]
        out.writelines(heapq.merge(*streams, key=_timestamp_key))
    finally:
        for f in files:
            if f is not None:
                f.close()


def _ends_whole(f: Any) -> bool:
    """Does the open file `f` end with a newline (or is it empty)? Leaves it at its start."""
    size = os.fstat(f.fileno()).st_size
    if not size:
        return True
    f.seek(size - 1)
    last = f.read(1)
    f.seek(0)
    return last == b"\n"


def _whole_lines(f: Any) -> Iterator[bytes]:
    for line in f:
        if line.endswith(b"\n"):
            yield line


# --- the compiled path -------------------------------------------------------------------


@cython.cfunc
@cython.inline
def _before(a: cython.pointer(Part), b: cython.pointer(Part)) -> cython.bint:
    """Is a's key strictly less than b's (bytes order of line[14:40], as Python compares)?"""
    la: cython.Py_ssize_t = a.eol - a.pos
    lb: cython.Py_ssize_t = b.eol - b.pos
    ka: cython.Py_ssize_t = min(la, 40) - min(la, 14)
    kb: cython.Py_ssize_t = min(lb, 40) - min(lb, 14)
    c: cython.int = memcmp(a.p + a.pos + min(la, 14), b.p + b.pos + min(lb, 14), min(ka, kb))
    if c != 0:
        return c < 0
    return ka < kb


@cython.cfunc
def _address(view: cython.const[cython.uchar][::1]) -> cython.p_const_uchar:
    return cython.address(view[0])


@cython.cfunc
@cython.inline
def _next_line(part: cython.pointer(Part)) -> cython.bint:
    """Move `part` to the line at its `pos`; False when it has no whole line left."""
    if part.pos >= part.end:
        return False
    nl: cython.p_const_uchar = cython.cast(cython.p_const_uchar,
                                           memchr(part.p + part.pos, 10, part.end - part.pos))
    part.eol = (nl - part.p) + 1        # found: `end` follows a newline
    return True


def _merge_mapped(paths: list[Path], out: BinaryIO) -> None:
    maps: list = []
    files: list = []
    n: cython.Py_ssize_t = 0
    parts: cython.pointer(Part) = cython.cast(cython.pointer(Part),
                                              PyMem_Malloc(max(1, len(paths)) * cython.sizeof(Part)))
    if not parts:
        raise MemoryError
    buf = bytearray(MERGE_BUFFER)
    ob: cython.uchar[::1] = buf
    obp: cython.p_uchar = cython.address(ob[0])
    fill: cython.Py_ssize_t = 0
    cap: cython.Py_ssize_t = MERGE_BUFFER
    try:
        for path in paths:
            f = open(path, "rb")        # noqa: SIM115 - closed below
            files.append(f)
            size: cython.Py_ssize_t = os.fstat(f.fileno()).st_size
            if not size:
                continue
            mm = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ)
            maps.append(mm)
            if hasattr(mm, "madvise"):
                mm.madvise(mmap.MADV_SEQUENTIAL)
            part: cython.pointer(Part) = parts + n
            part.p = _address(mm)
            end: cython.Py_ssize_t = size
            while end > 0 and part.p[end - 1] != 10:       # a torn last line is dropped
                end -= 1
            part.end = end
            part.pos = 0
            if _next_line(part):
                n += 1
        best: cython.Py_ssize_t
        i: cython.Py_ssize_t
        length: cython.Py_ssize_t
        while n > 0:
            best = 0
            for i in range(1, n):
                if _before(parts + i, parts + best):
                    best = i
            part = parts + best
            length = part.eol - part.pos
            if fill + length > cap:
                out.write(memoryview(buf)[:fill])
                fill = 0
            if length > cap:
                out.write(cython.cast(cython.p_const_char, part.p + part.pos)[:length])
            else:
                memcpy(obp + fill, part.p + part.pos, length)
                fill += length
            part.pos = part.eol
            if not _next_line(part):
                # the part is done: the later ones move down one place (worker order kept)
                for i in range(best, n - 1):
                    parts[i] = parts[i + 1]
                n -= 1
        if fill:
            out.write(memoryview(buf)[:fill])
    finally:
        PyMem_Free(parts)
        for mm in maps:
            mm.close()
        for f in files:
            f.close()
