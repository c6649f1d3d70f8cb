"""The anomaly state file: learned baselines that survive a restart.

Format: one JSON object, versioned (``"format": "netsentry-anomaly-state",
"version": 1``), holding the baseline settings it was learned with and one
row per key: ``[address, first bucket, last bucket, buckets, mean, variance,
...]`` (address as text). JSON because it is small (a row per host), easy to
inspect when a baseline looks wrong, and exact: Python writes floats with
repr, so a save/load round trip is lossless and a replay started from it
is reproducible.

Writes are atomic: a temporary file in the same directory, fsync, rename over
the old file, fsync of the directory. A crash leaves the old state or the
new one, never half of one.

Only a file that carries this format is ever ours to set aside or replace.
A path that is not one (a directory, a device, ``/etc/passwd``, any other
JSON) raises `NotAStateFile`: a typo in ``anomaly.state-file`` run as root
must not move ``/etc`` aside; the engine makes it a configuration error, and
`save` refuses to replace such a file. A file of ours that cannot be used
(unsupported version, other bucket length, damaged rows) raises `StateError`;
the engine turns that into a warning and a fresh start (an IDS that refuses
to start because its cache is bad protects nothing), and moves the file
aside as ``<name>.corrupt`` so the next save does not destroy the evidence.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from netsentry.atomicfile import atomic_write

FORMAT = "netsentry-anomaly-state"
VERSION = 1


class StateError(Exception):
    """The state file exists but cannot be used; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"anomaly state file {path}: {reason}")


class NotAStateFile(StateError):
    """The path holds something that is not a netsentry state file: never rename or replace it."""


def save(path: str | Path, payload: dict[str, Any]) -> None:
    """Write `payload` (plus format and version) to `path` atomically; `NotAStateFile`
    (nothing written) when `path` holds something that is not ours."""
    path = Path(path)
    check_ours(path)
    doc = {"format": FORMAT, "version": VERSION}
    doc.update(payload)
    data = json.dumps(doc, separators=(",", ":"), sort_keys=False).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        f.write(data)


def check_ours(path: str | Path) -> None:
    """Nothing at `path`, or a regular file in our format; else `NotAStateFile`."""
    read(path)


def read(path: str | Path) -> dict[str, Any] | None:
    """The document at `path` if it is ours (any version), None when nothing is there."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise NotAStateFile(path, f"cannot access: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise NotAStateFile(path, f"is {kind}, not a netsentry anomaly state file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise NotAStateFile(path, f"cannot read: {exc.strerror or exc}") from None
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        doc = None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise NotAStateFile(path, f"is not a netsentry anomaly state file (no \"format\": \"{FORMAT}\")")
    return doc


def load(path: str | Path) -> dict[str, Any] | None:
    """The saved document, None when the file does not exist; `NotAStateFile` when
    the path is not ours, `StateError` when it is ours but of another version."""
    doc = read(path)
    if doc is None:
        return None
    if doc.get("version") != VERSION:
        raise StateError(path, f"unsupported version {doc.get('version')!r} (this netsentry reads {VERSION})")
    return doc


def set_aside(path: str | Path) -> Path | None:
    """Rename a damaged state file of ours to ``<name>.corrupt``; the new name, or None
    if that failed or the file is not (or no longer) ours."""
    path = Path(path)
    target = path.with_name(path.name + ".corrupt")
    try:
        check_ours(path)
    except StateError:
        return None
    try:
        os.replace(path, target)
    except OSError:
        return None
    return target
