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


@keyword("threshold", help="threshold:type limit|threshold|both,track by_src|by_dst|by_rule|by_both|by_flow,"
                              "count N,seconds N; threshold:type backoff,track by_flow,count N,multiplier M;")
def threshold(b: RuleBuilder, arg: str | None) -> None:
    _only_one(b)
    f = _fields(arg, "threshold", ("type", "track", "count", "seconds", "multiplier"))
    kind = f.get("type")
    if kind not in ("limit", "threshold", "both", "backoff"):
        raise RuleError(f"threshold: type must be limit, threshold, both or backoff, got '{kind}'")
    if kind == "backoff":
        b.sig.threshold = _backoff(f)
        return
    if "multiplier" in f:
        raise RuleError("threshold: 'multiplier' only goes with type backoff")
    track, count, seconds = _common(f, "threshold")
    b.sig.threshold = Threshold(kind, track, count, seconds)


def _backoff(f: dict[str, str]) -> Threshold:
    """Suricata 8's backoff: alert on the count-th match of a flow, then on count*m, count*m*m, ..."""
    if "seconds" in f:
        raise RuleError("threshold: type backoff takes no 'seconds' (it counts for the whole flow)")
    for need in ("track", "count", "multiplier"):
        if need not in f:
            raise RuleError(f"threshold: type backoff needs '{need}'")
    if f["track"] != "by_flow":
        raise RuleError("threshold: type backoff is only supported with track by_flow")
    count = parse_int(f["count"], "threshold count", 1, 65535, decimal=True)
    multiplier = parse_int(f["multiplier"], "threshold multiplier", 2, 65535, decimal=True)
    return Threshold("backoff", "by_flow", count, 0, multiplier=multiplier)


@keyword("detection_filter", help="detection_filter:track by_src|by_dst|by_rule|by_both|by_flow,count N,seconds N[,unique_on src_port|dst_port];")
def detection_filter(b: RuleBuilder, arg: str | None) -> None:
    _only_one(b)
    f = _fields(arg, "detection_filter", ("track", "count", "seconds", "unique_on"))
    track, count, seconds = _common(f, "detection_filter")
    unique = f.get("unique_on")
    if unique is not None and unique not in ("src_port", "dst_port"):
        raise RuleError(f"detection_filter: unique_on must be src_port or dst_port, got '{unique}'")
    b.sig.detection_filter = Threshold("detection_filter", track, count, seconds, unique)
