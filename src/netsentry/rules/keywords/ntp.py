"""NTP keywords (applayer/ntp.py), as Suricata's rust/src/ntp/detect.rs: `ntp.version`,
`ntp.mode` (a number or a mode name: client, server, ...), `ntp.stratum`, the
`ntp.reference_id` sticky buffer, and the `ntp.*` events."""

from __future__ import annotations

from netsentry.applayer import ntp
from netsentry.applayer.registry import BOTH
from netsentry.rules.keywords.applayer import APP_LAYER_EVENTS, _sticky, tx_check
from netsentry.rules.keywords.sctp import parse_uint_enum
from netsentry.rules.numeric import parse_uint
from netsentry.rules.registry import KEYWORDS, RuleBuilder, keyword, unquote

APP_LAYER_EVENTS["ntp"] = dict(ntp.EVENTS)

if "ntp.reference_id" not in KEYWORDS:
    keyword("ntp.reference_id", value="none", help="ntp.reference_id; sticky buffer (ntp)")(
        _sticky("ntp.reference_id"))


@keyword("ntp.version", help="ntp.version:[op]N; the NTP header's version")
def ntp_version(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint(unquote(arg, "ntp.version"), "ntp.version", 8)
    tx_check(b, "ntp", BOTH, lambda tx, ts: tx.to_server == ts and pred(tx.version))


@keyword("ntp.stratum", help="ntp.stratum:[op]N; the NTP header's stratum")
def ntp_stratum(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint(unquote(arg, "ntp.stratum"), "ntp.stratum", 8)
    tx_check(b, "ntp", BOTH, lambda tx, ts: tx.to_server == ts and pred(tx.stratum))


@keyword("ntp.mode", help="ntp.mode:[!]MODE; the association mode (a number or client, server, "
         "symmetric_active, symmetric_passive, broadcast, control, private, reserved)")
def ntp_mode(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint_enum(unquote(arg, "ntp.mode"), "ntp.mode", 8, ntp.MODES)
    tx_check(b, "ntp", BOTH, lambda tx, ts: tx.to_server == ts and pred(tx.mode))
