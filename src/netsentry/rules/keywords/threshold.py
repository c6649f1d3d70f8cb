"""Rate keywords: threshold and detection_filter (parsed here; detect/ applies them).

threshold:type limit|threshold|both, track by_src|by_dst|by_rule|by_both|by_flow, count N, seconds N;
detection_filter:track by_src|by_dst|by_rule|by_both|by_flow, count N, seconds N[, unique_on src_port|dst_port];
Suricata allows one of them per rule.
"""

from __future__ import annotations

from netsentry.rules.errors import RuleError
from netsentry.rules.registry import RuleBuilder, keyword, parse_int, unquote
from netsentry.rules.signature import Threshold

_TRACKS = ("by_src", "by_dst", "by_rule", "by_both", "by_flow")


def _fields(arg: str | None, what: str, allowed: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (p.strip() for p in unquote(arg, what).split(",")):
        if not part:
            continue
        key, _, val = part.partition(" ")
        key, val = key.strip(), val.strip()
        if key not in allowed:
            raise RuleError(f"{what}: unknown option '{key}'")
        if key in out:
            raise RuleError(f"{what}: '{key}' given twice")
        if not val:
            raise RuleError(f"{what}: '{key}' needs a value")
        out[key] = val
    return out


def _common(f: dict[str, str], what: str) -> tuple[str, int, int]:
    for need in ("track", "count", "seconds"):
        if need not in f:
            raise RuleError(f"{what}: missing '{need}'")
    track = f["track"]
    if track not in _TRACKS:
        raise RuleError(f"{what}: unknown track '{track}'")
    return track, parse_int(f["count"], f"{what} count", 0, (1 << 32) - 1, decimal=True), \
        parse_int(f["seconds"], f"{what} seconds", 0, (1 << 32) - 1, decimal=True)


def _only_one(b: RuleBuilder) -> None:
    if b.sig.threshold is not None or b.sig.detection_filter is not None:
        raise RuleError("only one threshold or detection_filter per rule")


@keyword("threshold", help="threshold:type limit|threshold|both,track by_src|by_dst|by_rule|by_both,count N,seconds N;")
def threshold(b: RuleBuilder, arg: str | None) -> None:
    _only_one(b)
    f = _fields(arg, "threshold", ("type", "track", "count", "seconds"))
    kind = f.get("type")
    if kind not in ("limit", "threshold", "both"):
        raise RuleError(f"threshold: type must be limit, threshold or both, got '{kind}'")
    track, count, seconds = _common(f, "threshold")
    b.sig.threshold = Threshold(kind, track, count, seconds)


@keyword("detection_filter", help="detection_filter:track by_src|by_dst|by_rule|by_both|by_flow,count N,seconds N[,unique_on src_port|dst_port];")
def detection_filter(b: RuleBuilder, arg: str | None) -> None:
    _only_one(b)
    f = _fields(arg, "detection_filter", ("track", "count", "seconds", "unique_on"))
    track, count, seconds = _common(f, "detection_filter")
    unique = f.get("unique_on")
    if unique is not None and unique not in ("src_port", "dst_port"):
        raise RuleError(f"detection_filter: unique_on must be src_port or dst_port, got '{unique}'")
    b.sig.detection_filter = Threshold("detection_filter", track, count, seconds, unique)
