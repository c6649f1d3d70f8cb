"""HTTP/2 keywords (Suricata's detect-http2.c and rust/src/http2/detect.rs), on the frames of
the side a transaction is inspected from (applayer/http2.py):

- `http2.frametype:TYPE[,INDEX...]`: the frames' types, by name (DATA, HEADERS, PRIORITY,
  RSTSTREAM, SETTINGS, PUSHPROMISE, PING, GOAWAY, WINDOWUPDATE, CONTINUATION; case and
  underscores do not matter) or number, with the multi-integer index syntax;
- `http2.errorcode:CODE[,INDEX...]`: GOAWAY and RST_STREAM error codes (NO_ERROR ...
  HTTP_1_1_REQUIRED, or a number), `!` negates;
- `http2.priority:[op]N`: a PRIORITY frame's weight or a HEADERS frame's;
- `http2.window:[op]N`: a WINDOW_UPDATE's increment;
- `http2.size_update:[op]N`: a header block's dynamic table size update;
- `http2.settings:NAME[op N]`: a SETTINGS parameter (SETTINGS_HEADER_TABLE_SIZE ...), with
  a value test or without.

The sticky buffers `http2.header_name` and `http2.header` come from the registry (each
header one instance). `app-layer-event:http2.*` takes the parser's event names.
"""

from __future__ import annotations

import re
from typing import Any

from netsentry.applayer import http2
from netsentry.applayer.registry import BOTH
from netsentry.rules.errors import RuleError
from netsentry.rules.keywords.applayer import APP_LAYER_EVENTS, tx_check
from netsentry.rules.numeric import parse_uint
from netsentry.rules.registry import RuleBuilder, keyword, unquote

APP_LAYER_EVENTS["http2"] = dict(http2.EVENTS)

_TYPES = {name: i for i, name in enumerate(http2.FRAME_TYPES)}
_CODES = {name: i for i, name in enumerate(http2.ERROR_CODES)}


def _enum_value(text: str, table: dict[str, int], what: str) -> str:
    """The value part of a multi-integer argument with a name put as its number."""
    head, comma, rest = text.partition(",")
    m = re.fullmatch(r"\s*(!?\s*[<>]?=?\s*)([A-Za-z_0-9]+)\s*", head)
    if m is None:
        return text
    word = m.group(2)
    if word.isdigit():
        return text
    key = word.replace("_", "").upper()
    if key not in table:
        raise RuleError(f"{what}: unknown name '{word}' (one of {', '.join(table)})")
    return m.group(1).replace(" ", "") + str(table[key]) + comma + rest


def _frames_multi(text: str, what: str, bits: int) -> Any:
    """Suricata's multi-integer match over a side's frames (detect_uint_match_at_index): the
    positions, slice and count are the frames', a frame without the value (another type) is
    passed over; `all`, `all_or_absent`, `or_absent`, `oob_or`, `count` and `nb` with other
    than > / >= wait for the end of the side (its stream closed both ways)."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) == 1 and parts[0].startswith("count"):
        body = parts[0][len("count"):].strip()
        count = parse_uint(body, f"{what} count")
        grows = body.startswith(">")
        return lambda vals, eof: (eof or grows) and count(sum(1 for v in vals if v is not None))
    if len(parts) > 3:
        raise RuleError(f"{what}: too many comma-separated parts in '{text.strip()}'")
    value = parse_uint(parts[0], what, bits)
    start = end = 0
    if len(parts) == 3:
        m = re.fullmatch(r"(-?\d+)\s*:\s*(-?\d+)", parts[2])
        if m is None:
            raise RuleError(f"{what}: invalid slice '{parts[2]}' (START:END)")
        start, end = int(m.group(1)), int(m.group(2))

    def sub(vals: list[Any]) -> list[Any]:
        n = len(vals)
        s = start if start >= 0 else n + start
        e = end if end > 0 else n + end
        return vals[s:e] if 0 <= s < e <= n else []
    index = parts[1] if len(parts) >= 2 else "any"
    if index == "any":
        return lambda vals, eof: any(v is not None and value(v) for v in sub(vals))
    if index == "or_absent":
        def or_absent(vals: list[Any], eof: bool) -> bool:
            present = [v for v in sub(vals) if v is not None]
            return any(value(v) for v in present) or (not present and eof)
        return or_absent
    if index == "all":
        def all_(vals: list[Any], eof: bool) -> bool:
            present = [v for v in sub(vals) if v is not None]
            return eof and bool(present) and all(value(v) for v in present)
        return all_
    if index == "all_or_absent":
        return lambda vals, eof: eof and all(value(v) for v in sub(vals) if v is not None)
    if index.startswith("nb"):
        body = index[2:].strip()
        nb = parse_uint(body, f"{what} nb")
        grows = body.startswith(">")
        return lambda vals, eof: (eof or grows) and nb(sum(1 for v in sub(vals) if v is not None and value(v)))
    m = re.fullmatch(r"(oob_or\s*)?(-?\d+)", index)
    if m is None:
        raise RuleError(f"{what}: invalid index '{index}'")
    oob, i = bool(m.group(1)), int(m.group(2))

    def at(vals: list[Any], eof: bool) -> bool:
        vs = sub(vals)
        j = i if i >= 0 else len(vs) + i
        if not 0 <= j < len(vs):
            return oob and eof
        return vs[j] is not None and value(vs[j])
    return at


def _frames_check(attr: str, pred: Any):
    def check(tx: Any, ts: bool) -> bool:
        if tx.proto != "http2":
            return False
        vals = [getattr(f, attr) for f in tx.frames[int(ts)]]
        return pred(vals, tx.progress_[int(ts)] == http2.COMPLETE)
    return check


@keyword("http2.frametype", help="http2.frametype:TYPE[,INDEX]; an HTTP/2 frame type (GOAWAY, SETTINGS, ...)")
def frametype(b: RuleBuilder, arg: str | None) -> None:
    text = _enum_value(unquote(arg, "http2.frametype"), _TYPES, "http2.frametype")
    pred = _frames_multi(text, "http2.frametype", 8)
    tx_check(b, "http2", BOTH, _frames_check("ftype", pred))


@keyword("http2.errorcode", help="http2.errorcode:CODE[,INDEX]; a GOAWAY or RST_STREAM error code")
def errorcode(b: RuleBuilder, arg: str | None) -> None:
    text = _enum_value(unquote(arg, "http2.errorcode"), _CODES, "http2.errorcode")
    pred = _frames_multi(text, "http2.errorcode", 32)
    tx_check(b, "http2", BOTH, _frames_check("error_code", pred))


@keyword("http2.priority", help="http2.priority:[op]N[,INDEX]; a PRIORITY or HEADERS frame's weight")
def priority(b: RuleBuilder, arg: str | None) -> None:
    pred = _frames_multi(unquote(arg, "http2.priority"), "http2.priority", 8)
    tx_check(b, "http2", BOTH, _frames_check("priority", pred))


@keyword("http2.window", help="http2.window:[op]N[,INDEX]; a WINDOW_UPDATE's increment")
def window(b: RuleBuilder, arg: str | None) -> None:
    pred = _frames_multi(unquote(arg, "http2.window"), "http2.window", 32)
    tx_check(b, "http2", BOTH, _frames_check("window", pred))


@keyword("http2.size_update", help="http2.size_update:[op]N; a header block's dynamic table size update")
def size_update(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint(unquote(arg, "http2.size_update"), "http2.size_update", 64)

    def check(tx: Any, ts: bool) -> bool:
        if tx.proto != "http2":
            return False
        return any(pred(v) for f in tx.frames[int(ts)] for v in (f.size_updates or ()))
    tx_check(b, "http2", BOTH, check)


@keyword("http2.settings", help="http2.settings:SETTINGS_NAME[op N]; a SETTINGS parameter (and its value)")
def settings(b: RuleBuilder, arg: str | None) -> None:
    text = unquote(arg, "http2.settings").strip()
    m = re.fullmatch(r"([A-Za-z_0-9]+)\s*(.*)", text)
    if m is None or m.group(1).upper() not in http2.SETTINGS_NAMES:
        raise RuleError(f"http2.settings: unknown setting in '{text}' (one of {', '.join(http2.SETTINGS_NAMES)})")
    ident = http2.SETTINGS_NAMES[m.group(1).upper()]
    pred = parse_uint(m.group(2), "http2.settings", 32) if m.group(2).strip() else None

    def check(tx: Any, ts: bool) -> bool:
        if tx.proto != "http2":
            return False
        for f in tx.frames[int(ts)]:
            for i, v in f.settings or ():
                if i == ident and (pred is None or pred(v)):
                    return True
        return False
    tx_check(b, "http2", BOTH, check)
