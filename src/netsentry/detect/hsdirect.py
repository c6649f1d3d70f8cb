"""The prefilter's Hyperscan database bound to libhs directly: no Python call per match.

The `hyperscan` PyPI binding reports every match through a Python callback
(five argument objects and a call each), plus a keyword-parsing call per scan:
on the bench capture that binding was ~6% of the whole sensor, ~11% on real
traffic with ET Open. This module calls libhs (Debian's `libhyperscan-dev`)
from C: the match callback is a C function that writes the pattern id into a
buffer of one slot per pattern, and `scan` turns that buffer into the list the
engine reads. It exists only compiled (setup.py builds it where `hs/hs.h` is
found and links `-lhs`); the pure path, and a machine without the library, use
`prefilter.HyperscanPrefilter` over the `hyperscan` package. Both give the same
ids in the same order (see `scan`), which tests/test_prefilter.py checks.

Compile: the same flags as the package path (block mode, HS_FLAG_SINGLEMATCH,
HS_FLAG_CASELESS for nocase), through `hs_compile_lit_multi` with explicit
lengths, so a pattern holding NUL needs no `\\xHH` regex rewrite (the package
hands the literal compiler NUL-terminated strings and cannot).

Scratch: one scratch region for the process, grown (`hs_alloc_scratch` on an
existing region) to fit every database made here. libhs forbids two scans on
one region at once; every scan here runs with the GIL held, so scans are
serial even while a rule reload builds the next engine in a thread. One region
instead of one per database keeps it warm in the cache across rule groups.

Pickling (the rule cache, rules/cache.py) stores `hs_serialize_database`'s bytes
and `_load` deserialises them. A database serialised by another libhs (the
`hyperscan` wheel bundles its own) is never handed to this one: the cache key
names the library (`prefilter.library()`), and libhs itself refuses another
version's or platform's bytes (`HS_DB_VERSION_ERROR`, `HS_DB_PLATFORM_ERROR`),
which `_load` turns into a ValueError, so the entry is rebuilt.
"""

from __future__ import annotations

try:
    import cython
except ImportError:   # pragma: no cover - a pure install without Cython
    raise ImportError("netsentry.detect.hsdirect is compiled only (no Cython here)") from None

if not cython.compiled:
    # the .py source (NETSENTRY_PURE=1, a stale or unbuilt extension): the prefilter then
    # uses the hyperscan package; nothing below means anything without libhs
    raise ImportError("netsentry.detect.hsdirect is compiled only")

from cython.cimports.libc.stdlib import free, malloc  # noqa: E402


def library() -> str:
    """Which library builds and scans the databases: part of the rule cache's key."""
    v: bytes = hs_version()
    return "libhs " + v.decode("ascii", "replace")


def _on_match(pid: cython.uint, frm: cython.ulonglong, to: cython.ulonglong, flags: cython.uint,
              ctx: cython.p_void) -> cython.int:
    """The C match callback: append the id (SINGLEMATCH: once per pattern and scan)."""
    h = cython.cast(cython.pointer(Hits), ctx)
    if h.n < h.cap:
        h.ids[h.n] = pid
        h.n += 1
    return 0


def _grow_scratch(db: cython.pointer(hs_database_t)) -> cython.int:
    """Make the process's scratch region fit `db` too (allocated on the first database)."""
    global _scratch
    err: hs_error_t = hs_alloc_scratch(db, cython.address(_scratch))
    if err != HS_SUCCESS:
        raise MemoryError(f"hyperscan: cannot allocate scratch (error {err})")
    return 0


@cython.cclass
class HyperscanPrefilter:
    """Block-mode libhs database over literal patterns; `scan` as prefilter.HyperscanPrefilter's."""

    backend = "hyperscan"

    def __cinit__(self) -> None:
        self._db = cython.NULL
        self._ids = cython.NULL
        self.size = 0

    def __init__(self, patterns) -> None:  # noqa: ANN001 - Sequence[tuple[bytes, bool]]
        n: cython.Py_ssize_t = len(patterns)
        pats = [bytes(p) for p, _nc in patterns]     # kept alive while libhs reads them
        exprs = cython.cast(cython.pointer(cython.p_const_char), malloc(max(n, 1) * cython.sizeof(cython.p_char)))
        lens = cython.cast(cython.pointer(cython.size_t), malloc(max(n, 1) * cython.sizeof(cython.size_t)))
        flags = cython.cast(cython.pointer(cython.uint), malloc(max(n, 1) * cython.sizeof(cython.uint)))
        ids = cython.cast(cython.pointer(cython.uint), malloc(max(n, 1) * cython.sizeof(cython.uint)))
        db: cython.pointer(hs_database_t) = cython.NULL
        cerr: cython.pointer(hs_compile_error_t) = cython.NULL
        i: cython.Py_ssize_t
        try:
            if not exprs or not lens or not flags or not ids:
                raise MemoryError()
            for i in range(n):
                p: bytes = pats[i]
                if not p:
                    # libhs 5.4.0's literal compiler accepts it and then crashes the
                    # process; the package's binding refuses it the same way
                    raise ValueError(f"hyperscan: pattern {i} (b''): the literal compiler takes no empty pattern")
                exprs[i] = p
                lens[i] = len(p)
                flags[i] = HS_FLAG_SINGLEMATCH | (HS_FLAG_CASELESS if patterns[i][1] else 0)
                ids[i] = i
            err: hs_error_t = hs_compile_lit_multi(exprs, flags, ids, lens, n, HS_MODE_BLOCK,
                                                   cython.NULL, cython.address(db), cython.address(cerr))
            if err != HS_SUCCESS:
                if cerr:
                    msg = cerr.message.decode("utf-8", "replace")
                    which = cerr.expression
                    hs_free_compile_error(cerr)
                    if which >= 0:
                        raise ValueError(f"hyperscan: pattern {which} ({pats[which][:40]!r}"
                                         f"{'...' if len(pats[which]) > 40 else ''}): {msg}")
                    raise ValueError(f"hyperscan: {msg}")
                raise ValueError(f"hyperscan: compile failed (error {err})")
        finally:
            free(exprs)
            free(lens)
            free(flags)
            if not db:
                free(ids)
        self._adopt(db, ids, n)

    def _adopt(self, db: cython.pointer(hs_database_t), ids: cython.pointer(cython.uint),
               n: cython.Py_ssize_t) -> cython.int:
        """Own `db` and the id buffer (freed in __dealloc__), and fit the scratch to `db`."""
        self._db = db
        self._ids = ids
        self.size = n
        return _grow_scratch(db)

    def __dealloc__(self) -> None:
        if self._db:
            hs_free_database(self._db)
        free(self._ids)

    def scan(self, buf) -> list:  # noqa: ANN001 - bytes (or any buffer)
        """Ids of the patterns found in `buf`, each once, ascending.

        Ascending rather than in libhs's report order: that order (by match end, ties
        as the library's internals fall) is the same only for the same library build,
        and the pure path runs the wheel's bundled libhs; the engine sorts hits into
        evaluation order anyway, so sorting here costs one pass over a few ids."""
        if type(buf) is not bytes:
            buf = bytes(buf)
        data: cython.p_const_char = buf
        length: cython.Py_ssize_t = len(buf)
        if length > 0xFFFFFFFF:
            raise ValueError("hyperscan: buffer over 4 GiB")
        h: Hits
        h.ids = self._ids
        h.n = 0
        h.cap = cython.cast(cython.uint, self.size)
        err: hs_error_t = hs_scan(self._db, data, cython.cast(cython.uint, length), 0, _scratch,
                                  _on_match, cython.address(h))
        if err != HS_SUCCESS:
            raise RuntimeError(f"hyperscan: scan failed (error {err})")
        ids = h.ids
        n: cython.uint = h.n
        i: cython.uint
        j: cython.uint
        v: cython.uint
        for i in range(1, n):        # insertion sort: a scan reports a handful of ids
            v = ids[i]
            j = i
            while j > 0 and ids[j - 1] > v:
                ids[j] = ids[j - 1]
                j -= 1
            ids[j] = v
        return [ids[i] for i in range(n)]

    def __reduce__(self):  # noqa: ANN204
        blob: cython.p_char = cython.NULL
        length: cython.size_t = 0
        err: hs_error_t = hs_serialize_database(self._db, cython.address(blob), cython.address(length))
        if err != HS_SUCCESS:
            raise ValueError(f"hyperscan: cannot serialise database (error {err})")
        try:
            data = blob[:length]
        finally:
            free(blob)
        return _load, (data, self.size)


def _load(data: bytes, size: int) -> HyperscanPrefilter:
    """A database from `HyperscanPrefilter.__reduce__`'s bytes; ValueError when this libhs
    cannot use them (another library's version or platform, damage)."""
    raw: cython.p_const_char = data
    db: cython.pointer(hs_database_t) = cython.NULL
    err: hs_error_t = hs_deserialize_database(raw, len(data), cython.address(db))
    if err != HS_SUCCESS:
        info: cython.p_char = cython.NULL
        what = "unreadable"
        if hs_serialized_database_info(raw, len(data), cython.address(info)) == HS_SUCCESS:
            what = info.decode("ascii", "replace")
            free(info)
        raise ValueError(f"hyperscan: stored database not loadable here (error {err}; {what}; "
                         f"this is {library()})")
    n: cython.Py_ssize_t = size
    ids = cython.cast(cython.pointer(cython.uint), malloc(max(n, 1) * cython.sizeof(cython.uint)))
    if not ids:
        hs_free_database(db)
        raise MemoryError()
    obj: HyperscanPrefilter = HyperscanPrefilter.__new__(HyperscanPrefilter)
    obj._adopt(db, ids, n)
    return obj
