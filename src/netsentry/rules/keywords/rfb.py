"""RFB keywords (applayer/rfb.py), as Suricata's rust/src/rfb/detect.rs: `rfb.sectype` (the
chosen security type), `rfb.secresult` (the SecurityResult: a number or ok, fail, toomany,
unknown), the `rfb.name` sticky buffer and the `rfb.*` events."""

from __future__ import annotations

from netsentry.applayer import rfb
from netsentry.rules.keywords.applayer import APP_LAYER_EVENTS, _sticky, tx_check
from netsentry.rules.keywords.sctp import parse_uint_enum
from netsentry.rules.numeric import parse_uint
from netsentry.rules.registry import KEYWORDS, RuleBuilder, keyword, unquote

APP_LAYER_EVENTS["rfb"] = dict(rfb.EVENTS)

if "rfb.name" not in KEYWORDS:
    keyword("rfb.name", value="none", help="rfb.name; sticky buffer (rfb), the ServerInit's desktop name")(
        _sticky("rfb.name"))


@keyword("rfb.sectype", help="rfb.sectype:[op]N; the security type the handshake chose")
def rfb_sectype(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint(unquote(arg, "rfb.sectype"), "rfb.sectype", 32)
    tx_check(b, "rfb", 0, lambda tx, ts: tx.chosen is not None and pred(tx.chosen))


@keyword("rfb.secresult", help="rfb.secresult:[op]N|ok|fail|toomany|unknown; the SecurityResult status")
def rfb_secresult(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint_enum(unquote(arg, "rfb.secresult"), "rfb.secresult", 32, rfb.RESULTS)
    tx_check(b, "rfb", 1, lambda tx, ts: tx.result is not None and pred(tx.result))
