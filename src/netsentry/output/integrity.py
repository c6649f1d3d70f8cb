"""Tamper-evident EVE log (``outputs.eve-log.integrity: sha256-chain``): the writer side.

Every line written to eve.json is chained to the ones before it in a *side
file*, ``<eve file>.chain``, rather than in the record: eve.json stays byte
for byte what it is without the option, so Suricata's schema and every SIEM
parser keep reading it unchanged (docs/integrity.md says why in full).

The side file is JSON lines of three kinds:

- ``start``: a chain segment begins (sensor start, or a reopen after
  rotation): the number of the first record it covers (``seq``, counted
  across rotated files), the chain hash it continues from (``prev``; zeros for
  a new chain), the byte offset in the eve file where its records begin, and
  the key id of the HMAC key.
- ``block``: a run of records: for each, the first 8 bytes of the SHA-256 of
  its line (``digests``, hex; they let `verify` say *which* record changed),
  and the chain hash after the block: ``H = SHA-256(H_prev || d_1 || ... || d_k)``
  over the full 32-byte digests ``d_i = SHA-256(line_i)``.
- ``checkpoint``: the chain hash so far, its record number, the wall-clock
  time and the reason (``periodic``, ``rotation``, ``shutdown``), with an
  HMAC-SHA256 under the admin's key. Without the key nobody can rewrite the
  log and its side file consistently up to a checkpoint.

One hash per record (the line's digest) and one per block keeps the cost to
about one SHA-256 of each line; see docs/integrity.md "Cost" for the measured
replay throughput with and without it.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from netsentry.config import ConfigError

METHOD = "sha256-chain"
METHODS = ("none", METHOD)
SIDE_SUFFIX = ".chain"
VERSION = 1
GENESIS = bytes(32)
SHORT = 8                    # bytes of each record's digest kept in the side file (for locating)
BLOCK_RECORDS = 1024         # a block line at least this often (and at every checkpoint)
MIN_KEY_BYTES = 16

CheckpointListener = Callable[[dict[str, Any]], None]
_sha256 = hashlib.sha256
_monotonic = time.monotonic


def side_path(eve_path: str | os.PathLike[str]) -> Path:
    """The side file of an eve file: ``eve.json`` -> ``eve.json.chain``."""
    p = Path(eve_path)
    return p.with_name(p.name + SIDE_SUFFIX)


def read_key(path: str | os.PathLike[str]) -> bytes:
    """The HMAC key in `path` (its bytes, surrounding whitespace stripped).

    Raises ValueError with the file name and the reason: missing, unreadable,
    or shorter than 16 bytes (too easy to guess to prove anything)."""
    try:
        key = Path(path).read_bytes().strip()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read key file: {exc.strerror or exc}") from None
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"{path}: key file holds {len(key)} bytes; at least {MIN_KEY_BYTES} are needed "
                         f"(e.g. head -c 32 /dev/urandom | base64 > {path})")
    return key


def key_id(key: bytes) -> str:
    """A short public name of a key, so `verify` can say "wrong key" rather than "tampered"."""
    return hashlib.sha256(b"netsentry-chain-key-id\0" + key).hexdigest()[:16]


def signed_text(rec: Mapping[str, Any]) -> bytes:
    """What a start or checkpoint record's HMAC covers: every field but ``hmac``, in a fixed order."""
    fields = ("type", "version", "seq", "prev", "offset", "hash", "time", "reason", "key_id")
    return "|".join(f"{f}={rec.get(f)}" for f in fields).encode()


def sign(key: bytes, rec: Mapping[str, Any]) -> str:
    return hmac.new(key, signed_text(rec), hashlib.sha256).hexdigest()


def _now_text() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")


class IntegrityConfig:
    """The integrity settings of one file output, checked before any file is opened."""

    def __init__(self, cfg: Mapping[str, Any], prefix: str) -> None:
        method = cfg.get("integrity", "none")
        if method not in METHODS:
            raise ConfigError(f"expected one of {', '.join(METHODS)}, got {method!r}", f"{prefix}.integrity")
        self.enabled = method == METHOD
        self.key = b""
        cp = cfg.get("integrity-checkpoint") or {}
        self.every_records = cp.get("records", 10000)
        self.every_seconds = cp.get("seconds", 60)
        for name, value in (("records", self.every_records), ("seconds", self.every_seconds)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"expected a number >= 0, got {value!r}",
                                  f"{prefix}.integrity-checkpoint.{name}")
        if not self.enabled:
            return
        key_file = str(cfg.get("integrity-key") or "")
        if not key_file:
            raise ConfigError("integrity: sha256-chain needs the HMAC key file for its checkpoints",
                              f"{prefix}.integrity-key")
        try:
            self.key = read_key(key_file)
        except ValueError as exc:
            raise ConfigError(str(exc), f"{prefix}.integrity-key") from None


class ChainWriter:
    """Chains the lines of one eve file into its side file; checkpoints them under a key.

    The owning output calls `add(line)` after writing each line, `reopen(offset)`
    after it reopened its file (rotation, SIGHUP), and `close()` at shutdown
    after its last line is flushed. `flush_eve` is called before every
    checkpoint so that the records a checkpoint vouches for are on disk first.
    """

    def __init__(self, eve_path: Path, settings: IntegrityConfig, flush_eve: Callable[[], None],
                 offset: int = 0, append: bool = False) -> None:
        self.eve_path = eve_path
        self.path = side_path(eve_path)
        self._key = settings.key
        self._key_id = key_id(settings.key)
        self._every_records = int(settings.every_records)
        self._every_seconds = float(settings.every_seconds)
        self._flush_eve = flush_eve
        self.listeners: list[CheckpointListener] = []   # e.g. the syslog output (docs/integrity.md)
        self.seq = 0                     # records chained so far, across rotated files
        self.hash = GENESIS
        self.checkpoints = 0
        self._digests: list[bytes] = []
        self._since_checkpoint = 0
        # wall-clock time of the next periodic checkpoint (monotonic clock; inf: by count only)
        self._due = _monotonic() + self._every_seconds if self._every_seconds else math.inf
        if append:
            self._resume()
        # a fresh eve file (append: false) starts a fresh side file too
        self._file = self._open_side(offset, "ab" if append else "wb")

    # --- the per-record path (one SHA-256 of the line) ----------------------------

    def add(self, line: bytes) -> None:
        """Chain one line. ~1.0 us per 600-byte record, 0.67 of it the SHA-256
        (docs/integrity.md "Cost"); the clock read for the time period is ~0.05."""
        digests = self._digests
        digests.append(_sha256(line).digest())
        self._since_checkpoint += 1
        if self._since_checkpoint >= self._every_records > 0 or _monotonic() >= self._due:
            self.checkpoint("periodic")
        elif len(digests) >= BLOCK_RECORDS:
            self._write_block()

    def tick(self) -> None:
        """A periodic checkpoint if one is due by time, for records written before a
        quiet spell (a live source's idle wake-up calls it)."""
        if self._since_checkpoint and _monotonic() >= self._due:
            self.checkpoint("periodic")

    # --- blocks and checkpoints ----------------------------------------------------

    def _write_block(self) -> None:
        digests = self._digests
        if not digests:
            return
        first = self.seq + 1
        self.hash = hashlib.sha256(self.hash + b"".join(digests)).digest()
        self.seq += len(digests)
        short = "".join(d[:SHORT].hex() for d in digests)
        self._digests = []
        self._file.write(orjson.dumps({"type": "block", "seq": first, "n": len(digests),
                                       "digests": short, "hash": self.hash.hex()},
                                      option=orjson.OPT_APPEND_NEWLINE))

    def checkpoint(self, reason: str) -> dict[str, Any]:
        """Close the current block and sign the chain so far; returns the checkpoint record."""
        self._flush_eve()
        self._write_block()
        rec: dict[str, Any] = {"type": "checkpoint", "version": VERSION, "seq": self.seq,
                               "hash": self.hash.hex(), "time": _now_text(), "reason": reason,
                               "key_id": self._key_id}
        rec["hmac"] = sign(self._key, rec)
        self._file.write(orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE))
        self._file.flush()
        self.checkpoints += 1
        self._since_checkpoint = 0
        self._due = _monotonic() + self._every_seconds if self._every_seconds else math.inf
        for listener in self.listeners:
            listener(dict(rec, file=str(self.eve_path)))
        return rec

    # --- segments: start, rotation, shutdown ------------------------------------------

    def _open_side(self, offset: int, mode: str = "ab") -> BinaryIO:
        try:
            f = open(self.path, mode)  # noqa: SIM115 - closed in reopen()/close()
        except OSError as exc:
            raise OSError(f"cannot open {self.path}: {exc.strerror or exc}") from None
        rec: dict[str, Any] = {"type": "start", "version": VERSION, "seq": self.seq + 1,
                               "prev": self.hash.hex(), "offset": offset, "time": _now_text(),
                               "key_id": self._key_id}
        rec["hmac"] = sign(self._key, rec)
        f.write(orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE))
        f.flush()
        return f

    def _resume(self) -> None:
        """``append: true``: continue the chain of the side file left by the previous run."""
        try:
            with open(self.path, "rb") as f:
                f.seek(max(0, os.fstat(f.fileno()).st_size - 65536))
                tail = f.read().splitlines()
        except FileNotFoundError:
            return
        for raw in reversed(tail):
            try:
                rec = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(rec, dict) and rec.get("type") in ("checkpoint", "block"):
                self.seq = int(rec["seq"]) + (int(rec["n"]) - 1 if rec["type"] == "block" else 0)
                self.hash = bytes.fromhex(rec["hash"])
                return

    def reopen(self, offset: int = 0) -> None:
        """The eve file was reopened (logrotate + SIGHUP): sign the chain into the old side
        file, then start a new segment in a new one that carries the chain on.

        Call it after the output has flushed, closed and reopened its own file;
        `offset` is where the new records begin in it (its size, in append mode).
        """
        self.checkpoint("rotation")
        self._file.close()
        self._file = self._open_side(offset)

    def close(self) -> None:
        """Shutdown: the closing checkpoint (the output's last line must be flushed first)."""
        if self._file.closed:
            return
        try:
            self.checkpoint("shutdown")
        finally:
            self._file.close()


def connect_checkpoint_listeners(outputs: list[Any]) -> int:
    """Send every chained output's checkpoints to each output that takes them.

    An output takes them by having ``on_chain_checkpoint(record: dict)`` (the
    syslog output, so a copy of the proof lives away from the sensor and its
    key). Called once by `open_outputs`; returns how many links it made."""
    takers = [o.on_chain_checkpoint for o in outputs if callable(getattr(o, "on_chain_checkpoint", None))]
    links = 0
    for out in outputs:
        chain = getattr(out, "chain", None)
        if isinstance(chain, ChainWriter):
            for take in takers:
                chain.listeners.append(take)
                links += 1
    return links
