"""DNP3's keywords (applayer/dnp3.py), as Suricata's: `dnp3_func` (number or name),
`dnp3_ind` (internal indication flags, any of those named), `dnp3_obj:GROUP,VARIATION`,
the `dnp3_data` sticky buffer (registered with the other sticky buffers), and the
`dnp3.*` app-layer events."""

from __future__ import annotations

from typing import Any

from netsentry.applayer import dnp3
from netsentry.applayer.registry import BOTH, TO_CLIENT
from netsentry.rules.errors import RuleError
from netsentry.rules.keywords.applayer import APP_LAYER_EVENTS, tx_check
from netsentry.rules.keywords.sctp import parse_uint_enum
from netsentry.rules.registry import RuleBuilder, keyword, unquote

APP_LAYER_EVENTS["dnp3"] = dict(dnp3.EVENTS)


@keyword("dnp3_func", "dnp3.func", help="dnp3_func:N|name; the application function code")
def dnp3_func(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint_enum(unquote(arg, "dnp3_func"), "dnp3_func", 8, dnp3.FUNCTION_CODES)
    # the request's code to the server, the response's to the client
    tx_check(b, "dnp3", BOTH, lambda tx, ts: tx.request == ts and pred(tx.fc))


@keyword("dnp3_ind", "dnp3.ind", help="dnp3_ind:[!]FLAG[,[!]FLAG...]|[!]N; the internal indications: any of "
         "the flags named set, none of the negated ones")
def dnp3_ind(b: RuleBuilder, arg: str | None) -> None:
    want = unwanted = 0
    number: tuple[bool, int] | None = None
    for word in unquote(arg, "dnp3_ind").split(","):
        w = word.strip().lower()
        neg = w.startswith("!")
        w = w[1:].strip() if neg else w
        if w.isdigit() or w.startswith("0x"):
            try:
                number = (neg, int(w, 0))
            except ValueError:
                raise RuleError(f"dnp3_ind: invalid number '{word.strip()}'") from None
            continue
        bit = dnp3.IND_FLAGS.get(w)
        if bit is None:
            raise RuleError(f"dnp3_ind: unknown flag '{word.strip()}' (one of {', '.join(dnp3.IND_FLAGS)})")
        if neg:
            unwanted |= bit
        else:
            want |= bit
    if number is not None and (want or unwanted):
        raise RuleError("dnp3_ind: a number or flag names, not both")

    def check(tx: Any, ts: bool) -> bool:
        if tx.request:
            return False
        v = tx.iin
        if number is not None:
            neg, n = number
            hit = v == 0 if n == 0 else bool(v & n)
            return hit != neg
        return (not want or bool(v & want)) and not v & unwanted
    tx_check(b, "dnp3", TO_CLIENT, check)


@keyword("dnp3_obj", "dnp3.obj", help="dnp3_obj:GROUP,VARIATION; an object header of the message")
def dnp3_obj(b: RuleBuilder, arg: str | None) -> None:
    text = unquote(arg, "dnp3_obj")
    g, sep, v = text.partition(",")
    try:
        group, variation = int(g.strip()), int(v.strip())
    except ValueError:
        raise RuleError(f"dnp3_obj: expected GROUP,VARIATION, got '{text}'") from None
    if not sep or not 0 <= group < 256 or not 0 <= variation < 256:
        raise RuleError(f"dnp3_obj: expected GROUP,VARIATION (0-255), got '{text}'")

    def check(tx: Any, ts: bool) -> bool:
        return tx.request == ts and any(o[0] == group and o[1] == variation for o in tx.objects)
    tx_check(b, "dnp3", BOTH, check)
