"""ENIP/CIP keywords (applayer/enip.py), as Suricata's: `enip_command`, `cip_service`, and
Suricata 8's `enip.*` integers and buffers; the `enip.*` app-layer events."""

from __future__ import annotations

import re
from typing import Any

from netsentry.applayer import enip
from netsentry.applayer.registry import BOTH, TO_CLIENT, TO_SERVER
from netsentry.rules.errors import RuleError
from netsentry.rules.keywords.applayer import APP_LAYER_EVENTS, _sticky, tx_check
from netsentry.rules.keywords.sctp import parse_uint_enum
from netsentry.rules.numeric import parse_multi_uint, parse_uint
from netsentry.rules.registry import KEYWORDS, RuleBuilder, keyword, unquote

APP_LAYER_EVENTS["enip"] = dict(enip.EVENTS)

for _name in ("enip.product_name", "enip.service_name"):
    if _name not in KEYWORDS:
        keyword(_name, value="none", help=f"{_name}; sticky buffer (enip)")(_sticky(_name))


def _first(tx: Any, ts: bool) -> Any:
    return tx.request if ts else tx.response


@keyword("enip_command", "enip.command", help="enip_command:N|name; the encapsulation command")
def enip_command(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint_enum(unquote(arg, "enip_command"), "enip_command", 16, enip.COMMAND_CODES)

    def check(tx: Any, ts: bool) -> bool:
        p = _first(tx, ts)
        return p is not None and pred(p.cmd)
    tx_check(b, "enip", BOTH, check)


@keyword("enip.status", help="enip.status:N|name; the encapsulation status")
def enip_status(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint_enum(unquote(arg, "enip.status"), "enip.status", 32, enip.STATUS_CODES)

    def check(tx: Any, ts: bool) -> bool:
        p = _first(tx, ts)
        return p is not None and pred(p.status)
    tx_check(b, "enip", BOTH, check)


def _service_match(c: enip.Cip, service: int, cls: int | None, attr: int | None) -> bool:
    if c.service == service:
        if cls is None:
            return True
        if not any(st >> 2 == 8 and v == cls for st, v in c.path):
            return False
        if attr is None:
            return True
        return c.request and (any(st >> 2 == 12 and v == attr for st, v in c.path) or attr in c.attrs)
    if c.service == enip.CIP_MULTIPLE:
        return any(_service_match(m, service, cls, attr) for m in c.multi)
    return False


@keyword("cip_service", help="cip_service:SERVICE[,CLASS[,ATTRIBUTE]]; a CIP service (and path)")
def cip_service(b: RuleBuilder, arg: str | None) -> None:
    text = unquote(arg, "cip_service")
    m = re.fullmatch(r"\s*(\d+)\s*(?:,\s*(\d+)\s*(?:,\s*(!?)\s*(\d+)\s*)?)?", text)
    if m is None or int(m.group(1)) >= 0x80:
        raise RuleError(f"cip_service: expected SERVICE[,CLASS[,ATTRIBUTE]] (service below 128), got '{text}'")
    service = int(m.group(1))
    cls = int(m.group(2)) if m.group(2) is not None else None
    attr = int(m.group(4)) if m.group(4) is not None and not m.group(3) else None

    def check(tx: Any, ts: bool) -> bool:
        p = _first(tx, ts)
        return p is not None and p.cip is not None and _service_match(p.cip, service, cls, attr)
    tx_check(b, "enip", BOTH, check)


def _segments(c: enip.Cip, kind: int, with_attrs: bool) -> list[list[int]]:
    """Each CIP request's values of one segment kind (itself, then its Multiple members);
    attributes: also those a Get/SetAttributeList names."""
    out = []
    if c.request:
        values = [v for st, v in c.path if st >> 2 == kind]
        if with_attrs:
            values.extend(c.attrs)
        out.append(values)
    for m in c.multi:
        out.extend(_segments(m, kind, with_attrs))
    return out


def _segment_keyword(name: str, kind: int, with_attrs: bool) -> None:
    def setup(b: RuleBuilder, arg: str | None) -> None:
        pred = parse_multi_uint(unquote(arg, name), name, 32)

        def check(tx: Any, ts: bool) -> bool:
            p = tx.request
            if p is None or p.cip is None:
                return False
            for values in _segments(p.cip, kind, with_attrs):
                if pred(values):
                    return True
            return False
        tx_check(b, "enip", TO_SERVER, check)
    keyword(name, help=f"{name}:N[,INDEX]; the CIP request path's {enip.SEGMENT_TYPES[kind]} values")(setup)


_segment_keyword("enip.cip_attribute", 12, True)
_segment_keyword("enip.cip_class", 8, False)
_segment_keyword("enip.cip_instance", 9, False)


def _statuses(c: enip.Cip, ext: bool) -> list[int]:
    out = []
    if not c.request:
        if ext:
            if len(c.ext) == 2:
                out.append(c.ext[0] | c.ext[1] << 8)
        else:
            out.append(c.status)
    for m in c.multi:
        out.extend(_statuses(m, ext))
    return out


def _status_keyword(name: str, ext: bool, bits: int) -> None:
    def setup(b: RuleBuilder, arg: str | None) -> None:
        pred = parse_uint(unquote(arg, name), name, bits)

        def check(tx: Any, ts: bool) -> bool:
            p = tx.response
            return p is not None and p.cip is not None and any(pred(v) for v in _statuses(p.cip, ext))
        tx_check(b, "enip", TO_CLIENT, check)
    keyword(name, help=f"{name}:[op]N; the CIP response's {'extended ' if ext else ''}status")(setup)


_status_keyword("enip.cip_status", False, 8)
_status_keyword("enip.cip_extendedstatus", True, 16)


def _identity_keyword(name: str, field: Any, bits: int) -> None:
    def setup(b: RuleBuilder, arg: str | None) -> None:
        pred = parse_uint(unquote(arg, name), name, bits)

        def check(tx: Any, ts: bool) -> bool:
            p = tx.response
            if p is None or not p.payload.get("identity"):
                return False
            return pred(field(p.payload["identity"][0]))
        tx_check(b, "enip", TO_CLIENT, check)
    keyword(name, help=f"{name}:[op]N; the ListIdentity answer's {name.split('.', 1)[1]}")(setup)


_identity_keyword("enip.vendor_id", lambda f: f["vendor_id"], 16)
_identity_keyword("enip.device_type", lambda f: f["device_type"], 16)
_identity_keyword("enip.product_code", lambda f: f["product_code"], 16)
_identity_keyword("enip.revision", lambda f: f["revision_major"] << 8 | f["revision_minor"], 16)
_identity_keyword("enip.identity_status", lambda f: f["status"], 16)
_identity_keyword("enip.serial", lambda f: f["serial"], 32)
_identity_keyword("enip.state", lambda f: f["state"], 8)


@keyword("enip.protocol_version", help="enip.protocol_version:[op]N; RegisterSession's, ListServices' or "
         "ListIdentity's protocol version")
def enip_protocol_version(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint(unquote(arg, "enip.protocol_version"), "enip.protocol_version", 16)

    def check(tx: Any, ts: bool) -> bool:
        p = _first(tx, ts)
        if p is None:
            return False
        pl = p.payload
        if "protocol_version" in pl:
            return pred(pl["protocol_version"])
        if ts:
            return False
        for key in ("services", "identity"):
            if pl.get(key):
                return pred(pl[key][0]["protocol_version"])
        return False
    tx_check(b, "enip", BOTH, check)


@keyword("enip.capabilities", help="enip.capabilities:[op]N; ListServices' capability flags")
def enip_capabilities(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint(unquote(arg, "enip.capabilities"), "enip.capabilities", 16)

    def check(tx: Any, ts: bool) -> bool:
        p = tx.response
        return p is not None and bool(p.payload.get("services")) and pred(p.payload["services"][0]["capabilities"])
    tx_check(b, "enip", TO_CLIENT, check)
