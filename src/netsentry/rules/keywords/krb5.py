"""Kerberos 5 keywords (applayer/krb5.py), as Suricata's rust/src/krb/detect.rs:
`krb5_msg_type` (a number or AS_REQ, AS_REP, TGS_REQ, TGS_REP, AP_REQ, AP_REP, SAFE, PRIV,
CRED, ERROR), `krb5_err_code`, `krb5.ticket_encryption` (`weak`, `!weak`, or a list of
encryption types by name or number), the `krb5.cname` / `krb5.sname` multi-buffers (one per
name component) and the `krb5.*` events. A transaction is inspected on its own side only."""

from __future__ import annotations

import re

from netsentry.applayer import krb5
from netsentry.applayer.registry import BOTH
from netsentry.rules.errors import RuleError
from netsentry.rules.keywords.applayer import APP_LAYER_EVENTS, _sticky, tx_check
from netsentry.rules.keywords.sctp import parse_uint_enum
from netsentry.rules.numeric import parse_uint
from netsentry.rules.registry import KEYWORDS, RuleBuilder, keyword, unquote

APP_LAYER_EVENTS["krb5"] = dict(krb5.EVENTS)

for _name in ("krb5.cname", "krb5.sname"):
    if _name not in KEYWORDS:
        keyword(_name, value="none", help=f"{_name}; sticky buffer (krb5), one per name component")(
            _sticky(_name))

_ETYPE_NUMBERS = {name: n for n, name in krb5.ETYPES.items()}


@keyword("krb5_msg_type", help="krb5_msg_type:[op]N|NAME; the Kerberos message type (10 AS-REQ, ...)")
def krb5_msg_type(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint_enum(unquote(arg, "krb5_msg_type"), "krb5_msg_type", 32, krb5.MSG_TYPE_NAMES)
    tx_check(b, "krb5", BOTH, lambda tx, ts: tx.to_server == ts and pred(tx.msg_type))


@keyword("krb5_err_code", help="krb5_err_code:[op]N; a KRB-ERROR's error code")
def krb5_err_code(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint(unquote(arg, "krb5_err_code"), "krb5_err_code", 32)
    tx_check(b, "krb5", BOTH, lambda tx, ts: tx.to_server == ts and tx.error_code is not None
             and pred(tx.error_code & 0xFFFFFFFF))


@keyword("krb5.ticket_encryption", help="krb5.ticket_encryption:weak|!weak|ETYPE[,ETYPE...]; the "
         "encryption type of a reply's ticket")
def krb5_ticket_encryption(b: RuleBuilder, arg: str | None) -> None:
    text = unquote(arg, "krb5.ticket_encryption").strip(" ")
    if text in ("weak", "!weak"):
        want = text == "weak"
        tx_check(b, "krb5", 1, lambda tx, ts: tx.to_server == ts and tx.ticket_etype is not None
                 and krb5.weak(tx.ticket_etype) == want)
        return
    wanted = set()
    for part in text.split(","):
        p = part.strip(" ")
        if not re.fullmatch(r"[A-Za-z0-9-]+", p):
            raise RuleError(f"krb5.ticket_encryption: invalid encryption type '{part.strip()}'")
        if p in _ETYPE_NUMBERS:
            wanted.add(_ETYPE_NUMBERS[p])
        else:
            try:
                wanted.add(int(p))
            except ValueError:
                raise RuleError(f"krb5.ticket_encryption: unknown encryption type '{p}'") from None
    tx_check(b, "krb5", 1, lambda tx, ts: tx.to_server == ts and tx.ticket_etype in wanted)
