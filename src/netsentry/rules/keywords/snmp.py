"""SNMP keywords (applayer/snmp.py), as Suricata's rust/src/snmp/detect.rs: `snmp.version`,
`snmp.pdu_type` (a number or a name: get_request, get_next_request, response, set_request,
trap_v1, get_bulk_request, inform_request, trap_v2, report), `snmp.trap_type` (coldstart,
warmstart, linkdown, linkup, authenticationfailure, egpneighborloss, enterprisespecific or a
number), the sticky buffers `snmp.community`, `snmp.usm`, `snmp.trap_oid`,
`snmp.trap_address`, and the `snmp.*` events. A transaction is inspected on its own side
only (Suricata's one-direction transactions)."""

from __future__ import annotations

from netsentry.applayer import snmp
from netsentry.applayer.registry import BOTH
from netsentry.rules.keywords.applayer import APP_LAYER_EVENTS, _sticky, tx_check
from netsentry.rules.keywords.sctp import parse_uint_enum
from netsentry.rules.numeric import parse_uint
from netsentry.rules.registry import KEYWORDS, RuleBuilder, keyword, unquote

APP_LAYER_EVENTS["snmp"] = dict(snmp.EVENTS)

for _name in ("snmp.community", "snmp.usm", "snmp.trap_oid", "snmp.trap_address"):
    if _name not in KEYWORDS:
        keyword(_name, value="none", help=f"{_name}; sticky buffer (snmp)")(_sticky(_name))

_PDU_NAMES = {name: i for i, name in enumerate(snmp.PDU_TYPES)}
_TRAP_NAMES = {name.lower(): i for i, name in enumerate(snmp.TRAP_TYPES)}


@keyword("snmp.version", help="snmp.version:[op]N; the SNMP version of the flow (1, 2, 3)")
def snmp_version(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint(unquote(arg, "snmp.version"), "snmp.version", 32)
    tx_check(b, "snmp", BOTH, lambda tx, ts: tx.to_server == ts and pred(tx.version))


@keyword("snmp.pdu_type", help="snmp.pdu_type:TYPE; the PDU type, a number or a name (get_request, ...)")
def snmp_pdu_type(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint_enum(unquote(arg, "snmp.pdu_type"), "snmp.pdu_type", 32, _PDU_NAMES)
    tx_check(b, "snmp", BOTH,
              lambda tx, ts: tx.to_server == ts and tx.pdu is not None and pred(tx.pdu.pdu_type))


@keyword("snmp.trap_type", help="snmp.trap_type:TYPE; a v1 trap's generic type (coldstart, ... or a number)")
def snmp_trap_type(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint_enum(unquote(arg, "snmp.trap_type"), "snmp.trap_type", 8, _TRAP_NAMES)
    tx_check(b, "snmp", BOTH, lambda tx, ts: tx.to_server == ts and tx.pdu is not None
             and tx.pdu.trap is not None and pred(tx.pdu.trap[0]))
