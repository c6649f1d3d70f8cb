"""Replace a file whole or not at all.

The anomaly state file and the rule cache are both read back by a later run
that trusts their shape, so a crash or a full disk mid-write must leave the
old file (or nothing), never half of a new one: write a temporary file in the
same directory, fsync it, rename it over the target, fsync the directory so
the rename itself survives a power cut. The temporary file is removed when
anything fails.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_write(path: Path, *, prefix: str | None = None, suffix: str = ".tmp") -> Iterator[BinaryIO]:
    """A binary file that becomes `path` when the block ends without an exception.

    The temporary file is named `prefix` + random + `suffix` in `path`'s directory
    (default prefix ``.<name>.``), so a directory's owner can recognise and sweep
    leftovers of a killed process."""
    directory = path.parent          # Path("name").parent is Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}." if prefix is None else prefix, suffix=suffix,
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable; best effort (some filesystems refuse)."""
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)
