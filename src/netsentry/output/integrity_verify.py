"""``netsentry log verify FILE... [--key KEYFILE]``: check an eve file against its chain.

The reading side of output/integrity.py. It recomputes each line's SHA-256,
compares it with the chain's per-record digests to find the *first* record
that differs and what happened to it (changed, removed, inserted, reordered,
truncated), recomputes the chain hashes of every block, and checks every
checkpoint's HMAC when given the key. Several files are verified as one
chain, oldest first (``eve.json.1 eve.json``): each file's chain must start
where the previous one ended, so a rotated-away or deleted file shows.

Exit status: 0 when everything verifies, 1 when something does not (or the
log cannot be read), 2 for a usage error. Every problem is one line naming
the file and line.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from netsentry.output.integrity import GENESIS, SHORT, key_id, read_key, side_path, sign

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
_LOOKAHEAD = 64             # how far to look for a removed or inserted run of lines


class VerifyError(Exception):
    """The first problem found, as the one line to print."""


@dataclass
class _Chain:
    """What the side file of one eve file says."""

    starts: list[tuple[int, dict[str, Any]]] = field(default_factory=list)      # (side line, record)
    blocks: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    checkpoints: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    digests: list[bytes] = field(default_factory=list)      # short digests, record order
    last_type: str = ""


@dataclass
class Verified:
    """What one successful verification covered (for the OK line and the next file)."""

    records: int = 0
    seq: int = 0
    hash: bytes = GENESIS
    checkpoints: int = 0
    keyed: bool = False
    last_reason: str = ""
    last_time: str = ""
    continues_from: int = 0      # >0: the chain began in an earlier file at this record number


# the fields each kind of side-file record must have, and their types
_FIELDS: dict[str, dict[str, type]] = {
    "start": {"seq": int, "prev": str, "offset": int},
    "block": {"seq": int, "n": int, "digests": str, "hash": str},
    "checkpoint": {"seq": int, "hash": str},
}


def _read_side(path: Path) -> _Chain:
    if not path.is_file():
        raise VerifyError(f"{path}: cannot read: " + ("not a file" if path.exists() else "No such file or directory"))
    side = side_path(path)
    try:
        raw = side.read_bytes()
    except FileNotFoundError:
        raise VerifyError(f"{path}: no chain file {side.name} beside it (was it written with "
                          "outputs.eve-log.integrity: sha256-chain?)") from None
    except OSError as exc:
        raise VerifyError(f"{side}: cannot read: {exc.strerror or exc}") from None
    chain = _Chain()
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for n, line in enumerate(lines, 1):
        try:
            rec = orjson.loads(line)
            kind = rec["type"]
            for name, kind_type in _FIELDS.get(kind, {}).items():
                if not isinstance(rec.get(name), kind_type) or isinstance(rec.get(name), bool):
                    raise ValueError(f"{kind} record without a valid {name}")
            if kind == "block":
                digests = bytes.fromhex(rec["digests"])
                if len(digests) != SHORT * int(rec["n"]) or int(rec["seq"]) != len(chain.digests) + \
                        (chain.starts[0][1]["seq"] if chain.starts else 1):
                    raise ValueError("block does not follow the previous one")
                chain.digests.extend(digests[i:i + SHORT] for i in range(0, len(digests), SHORT))
                chain.blocks.append((n, rec))
            elif kind == "start":
                chain.starts.append((n, rec))
            elif kind == "checkpoint":
                chain.checkpoints.append((n, rec))
            else:
                raise ValueError(f"unknown record type {kind!r}")
            chain.last_type = kind
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise VerifyError(f"{side}:{n}: damaged chain record ({exc})") from None
    if not chain.starts or chain.starts[0][0] != 1:
        raise VerifyError(f"{side}:1: not a netsentry chain file (no start record first)")
    return chain


def _eve_lines(path: Path, offset: int) -> list[bytes]:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError as exc:
        raise VerifyError(f"{path}: cannot read: {exc.strerror or exc}") from None
    lines = data.split(b"\n")
    last = lines.pop()                   # b"" when the file ends with a newline
    lines = [line + b"\n" for line in lines]
    if last:
        lines.append(last)               # a partial last line: a record cut short
    return lines


def _locate(path: Path, lines: list[bytes], actual: list[bytes], expected: list[bytes],
            first_seq: int, first_line: int) -> None:
    """Name the first record whose line does not match the chain; raise VerifyError."""
    i = 0
    n = min(len(actual), len(expected))
    while i < n and actual[i] == expected[i]:
        i += 1
    if i == len(expected) == len(actual):
        return
    seq, line_no = first_seq + i, first_line + i
    where = f"{path}:{line_no}"
    if i == len(actual):
        missing = len(expected) - i
        raise VerifyError(f"{where}: record {seq} and the {missing - 1} after it are missing: "
                          f"the file ends early (truncated or lines removed at the end)")
    if i == len(expected):
        raise VerifyError(f"{where}: record at this line is not in the chain: {len(actual) - i} line(s) "
                          f"inserted or appended after the last chained record {seq - 1}")
    if not lines[i].endswith(b"\n"):
        raise VerifyError(f"{where}: record {seq} is cut short (the file is truncated inside it)")
    if i + 1 < n and actual[i] == expected[i + 1] and actual[i + 1] == expected[i]:
        raise VerifyError(f"{where}: records {seq} and {seq + 1} are reordered (swapped)")
    later = {d: k for k, d in enumerate(expected[i + 1:i + 1 + _LOOKAHEAD], i + 1)}
    k = later.get(actual[i])
    if k is not None and expected[i] not in actual[i + 1:i + 1 + _LOOKAHEAD]:
        raise VerifyError(f"{where}: record {seq} removed" + (f" (and the {k - i - 1} after it)" if k - i > 1 else "")
                          + f"; this line holds record {first_seq + k}")
    earlier = {d: k for k, d in enumerate(actual[i + 1:i + 1 + _LOOKAHEAD], i + 1)}
    k = earlier.get(expected[i])
    if k is not None and actual[i] not in expected[i + 1:]:
        raise VerifyError(f"{where}: {k - i} line(s) inserted here that are not in the chain; "
                          f"record {seq} follows at line {first_line + k}")
    if actual[i] in expected[i + 1:i + 1 + _LOOKAHEAD]:
        raise VerifyError(f"{where}: record {seq} is out of order (this line holds a later record)")
    raise VerifyError(f"{where}: record {seq} changed (its digest does not match the chain)")


def verify_file(path: Path, key: bytes | None, previous: Verified | None) -> Verified:
    """Verify one eve file against its side file; `previous` is the file before it, if any."""
    chain = _read_side(path)
    side = side_path(path)
    first_start = chain.starts[0][1]
    prev_hash = bytes.fromhex(first_start["prev"])
    first_seq = int(first_start["seq"])
    result = Verified(keyed=key is not None)
    if previous is not None:
        if first_seq != previous.seq + 1 or prev_hash != previous.hash:
            raise VerifyError(f"{side}:1: the chain does not continue the previous file's (it ends at "
                              f"record {previous.seq}; this one starts at record {first_seq}): "
                              "a file is missing between them, or they are out of order")
    elif first_seq != 1 or prev_hash != GENESIS:
        result.continues_from = first_seq
    if key is not None:
        want = key_id(key)
        got = first_start.get("key_id")
        if got != want:
            raise VerifyError(f"{side}:1: wrong key: the chain was signed with key id {got}, "
                              f"the key file's id is {want}")
        for n, rec in chain.starts + chain.checkpoints:
            if not hmac.compare_digest(str(rec.get("hmac", "")), sign(key, rec)):
                what = "start" if rec["type"] == "start" else f"checkpoint at record {rec.get('seq')}"
                raise VerifyError(f"{side}:{n}: {what}: HMAC does not match the key "
                                  "(the chain file was rewritten)")

    offset = int(first_start["offset"])
    lines = _eve_lines(path, offset)
    full = [hashlib.sha256(line).digest() for line in lines]
    actual = [d[:SHORT] for d in full]
    first_line = 1 + (_count_lines(path, offset) if offset else 0)
    _locate(path, lines, actual, chain.digests, first_seq, first_line)

    # every block's and checkpoint's chain hash, recomputed from the lines themselves
    h, done = prev_hash, 0
    hashes: dict[int, bytes] = {first_seq - 1: prev_hash}
    for n, rec in chain.blocks:
        k = int(rec["n"])
        h = hashlib.sha256(h + b"".join(full[done:done + k])).digest()
        done += k
        hashes[first_seq - 1 + done] = h
        if h.hex() != rec["hash"]:
            raise VerifyError(f"{side}:{n}: block of records {rec['seq']}-{first_seq + done - 1}: chain hash "
                              "does not match its records (the chain file was edited)")
    for n, rec in chain.starts[1:]:
        at = int(rec["seq"]) - 1
        if at not in hashes or hashes[at].hex() != rec["prev"]:
            raise VerifyError(f"{side}:{n}: a chain segment starts at record {rec['seq']} "
                              "without continuing the chain before it")
    for n, rec in chain.checkpoints:
        at = int(rec["seq"])
        if at not in hashes or hashes[at].hex() != rec["hash"]:
            raise VerifyError(f"{side}:{n}: checkpoint at record {at} does not match the chain")
        result.last_reason, result.last_time = str(rec.get("reason")), str(rec.get("time"))
    last_cp = int(chain.checkpoints[-1][1]["seq"]) if chain.checkpoints else first_seq - 1
    end_seq = first_seq - 1 + len(chain.digests)
    if chain.last_type != "checkpoint" or last_cp != end_seq or \
            result.last_reason not in ("shutdown", "rotation"):
        raise VerifyError(f"{side}: no closing checkpoint: records {last_cp + 1}-{end_seq} are chained "
                          f"but never signed (the sensor is still writing this file, or stopped "
                          f"without shutting down); the signed part ends at record {last_cp}")
    result.records = len(lines)
    result.seq = end_seq
    result.hash = h
    result.checkpoints = len(chain.checkpoints)
    return result


def _count_lines(path: Path, offset: int) -> int:
    with open(path, "rb") as f:
        return f.read(offset).count(b"\n")


def verify(paths: Sequence[Path], key: bytes | None) -> list[str]:
    """Verify `paths` (oldest first) as one chain; the OK lines, or VerifyError."""
    out = []
    previous: Verified | None = None
    for path in paths:
        res = verify_file(path, key, previous)
        how = f"{res.checkpoints} checkpoint(s) " + ("verified with the key" if res.keyed
                                                     else "present but not authenticated (no --key)")
        note = f"; continues a chain begun in an earlier file (from record {res.continues_from})" \
            if res.continues_from and previous is None else ""
        out.append(f"{path}: OK, {res.records} records (to record {res.seq}), {how}, "
                   f"last: {res.last_reason} at {res.last_time}{note}")
        previous = res
    return out


def add_parser(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Register ``log verify`` under the ``netsentry`` command."""
    log = sub.add_parser("log", help="tamper-evident log tools")
    log_sub = log.add_subparsers(dest="log_command", metavar="SUBCOMMAND", parser_class=parser_class)
    v = log_sub.add_parser("verify", help="check an eve file written with integrity: sha256-chain",
                           description="Check eve files against their .chain side files; several "
                                       "files (oldest first) are checked as one chain across rotation.")
    v.add_argument("files", nargs="+", metavar="FILE", help="eve file(s), oldest first (eve.json.1 eve.json)")
    v.add_argument("--key", metavar="KEYFILE", help="the HMAC key file: authenticate the checkpoints")


def cmd_log(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``netsentry log verify``: prints OK lines (stdout) or the first problem (stderr)."""
    import sys
    if getattr(args, "log_command", None) != "verify":
        print("netsentry log: expected a subcommand: verify (see netsentry log --help)", file=sys.stderr)
        return EXIT_USAGE
    key = None
    if args.key:
        try:
            key = read_key(args.key)
        except ValueError as exc:
            print(f"netsentry: {exc}", file=sys.stderr)
            return EXIT_FAILED
    try:
        lines = verify([Path(p) for p in args.files], key)
    except VerifyError as exc:
        print(f"netsentry: FAILED: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for line in lines:
        print(line)
    return EXIT_OK
