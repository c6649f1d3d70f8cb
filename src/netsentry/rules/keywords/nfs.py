"""NFS keywords (applayer/nfs.py), as Suricata's rust/src/nfs/detect.rs: `nfs_procedure`
and `nfs.version` (alias `nfs_version`), both inspected on the request side, and the
`nfs.*` events.

- `nfs_procedure`: an integer with its operators (`7`, `<3`, `>3`, `2<>4`, `!7`), or a
  procedure name (`WRITE`, any case), which means that procedure's number in each NFS
  version: WRITE is 8 in v2, 7 in v3, 38 in v4. A file transaction also matches the
  procedures it carried besides its own (COMMIT).
- `nfs.version`: an integer with its operators.

Both read a range `A<>B` inclusively, as Suricata's parser for these two keywords.
"""

from __future__ import annotations

from typing import Any

from netsentry.applayer import nfs
from netsentry.applayer.registry import TO_SERVER
from netsentry.rules.errors import RuleError
from netsentry.rules.keywords.applayer import APP_LAYER_EVENTS, tx_check
from netsentry.rules.numeric import _RANGE, number, parse_uint
from netsentry.rules.registry import RuleBuilder, keyword, unquote

APP_LAYER_EVENTS["nfs"] = dict(nfs.EVENTS)


def parse_uint_inclusive(text: str, what: str) -> Any:
    """Suricata's inclusive integer (detect_parse_uint_inclusive): a range `A<>B` takes
    both ends (`2<>4` is 2, 3 or 4); everything else as any integer keyword."""
    m = _RANGE.match(text)
    if m:
        parse_uint(text, what, 32)          # its checks (bits, low before high)
        lo, hi = number(m.group(2), what), number(m.group(3), what)
        if m.group(1):
            return lambda v: v < lo or v > hi
        return lambda v: lo <= v <= hi
    return parse_uint(text, what, 32)


def _procedure_pred(text: str) -> Any:
    """fn(procedure, version) -> bool."""
    try:
        pred = parse_uint_inclusive(text, "nfs_procedure")
        return lambda proc, version: pred(proc)
    except RuleError:
        pass
    neg = text.startswith("!")
    name = (text[1:] if neg else text).strip().lower()
    by_version = (nfs.NAMES2.get(name), nfs.NAMES3.get(name), nfs.NAMES4.get(name))
    if by_version == (None, None, None):
        raise RuleError(f"nfs_procedure: unknown value '{text}' (a number, or a procedure name)")

    def match(proc: int, version: int) -> bool:
        want = by_version[0 if version < 3 else 1 if version == 3 else 2]
        if want is None:
            return False
        return (proc != want) if neg else (proc == want)
    return match


@keyword("nfs_procedure", help="nfs_procedure:[op]N|NAME; the NFS procedure (a number with its operators, "
         "or a procedure name: WRITE, READ...)")
def nfs_procedure(b: RuleBuilder, arg: str | None) -> None:
    pred = _procedure_pred(unquote(arg, "nfs_procedure").strip())

    def check(tx: Any, ts: bool) -> bool:
        v = tx.version
        return pred(tx.procedure, v) or (tx.is_file_tx and any(pred(p, v) for p in tx.extra_procs))
    tx_check(b, "nfs", TO_SERVER, check)


@keyword("nfs.version", "nfs_version", help="nfs.version:[op]N; the NFS version of the call")
def nfs_version(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint_inclusive(unquote(arg, "nfs.version").strip(), "nfs.version")
    tx_check(b, "nfs", TO_SERVER, lambda tx, ts: pred(tx.version))
