"""LDAP's keywords (applayer/ldap.py), as Suricata 8's: `ldap.request.operation`,
`ldap.responses.operation` (multi-integer, by index), `ldap.responses.count`,
`ldap.responses.result_code` (multi-integer), the sticky buffers `ldap.request.dn`,
`ldap.responses.dn`, `ldap.responses.message`, `ldap.request.attribute_type`,
`ldap.responses.attribute_type`, and the `ldap.*` app-layer events."""

from __future__ import annotations

from typing import Any

from netsentry.applayer import ldap
from netsentry.applayer.registry import TO_CLIENT, TO_SERVER
from netsentry.rules.errors import RuleError
from netsentry.rules.keywords.applayer import APP_LAYER_EVENTS, _sticky, tx_check
from netsentry.rules.keywords.sctp import parse_uint_enum
from netsentry.rules.numeric import parse_multi_uint, parse_uint
from netsentry.rules.registry import KEYWORDS, RuleBuilder, keyword, unquote

APP_LAYER_EVENTS["ldap"] = dict(ldap.EVENTS)

for _name in ("ldap.request.dn", "ldap.responses.dn", "ldap.responses.message", "ldap.request.attribute_type",
              "ldap.responses.attribute_type"):
    if _name not in KEYWORDS:
        keyword(_name, value="none", help=f"{_name}; sticky buffer (ldap)")(_sticky(_name))


def _enum_number(text: str, names: dict[str, int], what: str) -> str:
    """A multi-integer value whose VALUE may be a name: the name as its number."""
    head, comma, rest = text.partition(",")
    word = head.strip().lstrip("!<>=").strip()
    if word and not word.lstrip("-").isdigit():
        number = names.get(word.lower())
        if number is None:
            raise RuleError(f"{what}: unknown value '{word}' (a number, or one of {', '.join(names)})")
        head = head.replace(word, str(number))
    return head + comma + rest


def _needs_end(text: str) -> bool:
    """An index mode that says something of the whole list (all, or_absent, from the end,
    a count): matched once the transaction is complete, as Suricata's eof argument."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) < 2:
        return False
    index = parts[1]
    return index in ("all", "all_or_absent", "or_absent") or index.startswith(("-", "nb", "oob_or"))


@keyword("ldap.request.operation", help="ldap.request.operation:OP; the request's operation (number or name)")
def ldap_request_operation(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint_enum(unquote(arg, "ldap.request.operation"), "ldap.request.operation", 8,
                           ldap.OPERATION_CODES)
    tx_check(b, "ldap", TO_SERVER, lambda tx, ts: tx.request is not None and pred(tx.request.op))


def _multi(name: str, values: Any, names: dict[str, int], bits: int):
    def setup(b: RuleBuilder, arg: str | None) -> None:
        text = unquote(arg, name)
        pred = parse_multi_uint(_enum_number(text, names, name), name, bits)
        end = _needs_end(text)

        def check(tx: Any, ts: bool) -> bool:
            if end and not tx.done[0]:
                return False
            return pred(values(tx))
        tx_check(b, "ldap", TO_CLIENT, check)
    return setup


keyword("ldap.responses.operation", help="ldap.responses.operation:OP[,INDEX]; the responses' operations")(
    _multi("ldap.responses.operation", lambda tx: [m.op for m in tx.responses], ldap.OPERATION_CODES, 8))
keyword("ldap.responses.result_code", help="ldap.responses.result_code:CODE[,INDEX]; the responses' result codes")(
    _multi("ldap.responses.result_code",
           lambda tx: [m.fields["result_code"] for m in tx.responses if m.op in ldap.RESULT_OPS],
           ldap.RESULT_NUMBERS, 32))


@keyword("ldap.responses.count", help="ldap.responses.count:[op]N; how many responses the transaction has")
def ldap_responses_count(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint(unquote(arg, "ldap.responses.count"), "ldap.responses.count", 32)
    tx_check(b, "ldap", TO_CLIENT, lambda tx, ts: pred(len(tx.responses)))
