"""DCERPC keywords (Suricata's rust/src/dcerpc/detect.rs) and `smb.version`: `dcerpc.iface`, `dcerpc.opnum`,
`dcerpc.stub_data` and their legacy names `dce_iface`, `dce_opnum`, `dce_stub_data`.

As Suricata, they make a rule a DCERPC rule (`alert tcp ... dce_iface:...` inspects DCERPC
transactions) unless its header names SMB; a DCERPC rule also sees DCERPC carried over SMB
named pipes (AppProtoEquals: rules/parser.py `_APP_PROTO_ALSO`). They read a transaction's
`dce` call (applayer/dcerpc.py DceCall), which SMB transactions over a pipe have too.

- ``dcerpc.iface:UUID[,<op>VERSION][,any_frag]``: the call's context id names an
  interface the server accepted with that UUID (and a major version the comparison
  allows: ``=``, ``<``, ``>``, ``!``); without ``any_frag`` only interfaces bound by a
  first fragment count.
- ``dcerpc.opnum:N[,N2-N3,...]`` (numbers and ranges) or one integer comparison
  (``>3``): the request's operation number.
- ``dcerpc.stub_data``: sticky buffer of the call's stub data of the inspected side;
  ``byte_test``/``byte_jump``/... with ``dce`` read its numbers in the PDUs' byte order.
"""

from __future__ import annotations

import re
from typing import Any

from netsentry.applayer.registry import BOTH
from netsentry.rules.errors import RuleError
from netsentry.rules.numeric import parse_uint
from netsentry.rules.registry import RuleBuilder, keyword, unquote

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _proto(b: RuleBuilder) -> str:
    """The rule's protocol: an SMB rule stays one (its transactions carry the calls)."""
    return "smb" if b.sig.app_proto == "smb" else "dcerpc"


def parse_iface(text: str) -> tuple[bytes, Any, bool]:
    parts = [p.strip() for p in text.split(",")]
    if not _UUID.match(parts[0]):
        raise RuleError(f"dcerpc.iface: invalid UUID '{parts[0]}'")
    uuid = bytes.fromhex(parts[0].replace("-", ""))
    pred = None
    any_frag = False
    if len(parts) == 2:
        if parts[1] == "any_frag":
            any_frag = True
        else:
            pred = parse_uint(parts[1], "dcerpc.iface version", 16)
    elif len(parts) == 3:
        pred = parse_uint(parts[1], "dcerpc.iface version", 16)
        if parts[2] != "any_frag":
            raise RuleError(f"dcerpc.iface: expected any_frag, got '{parts[2]}'")
        any_frag = True
    elif len(parts) > 3:
        raise RuleError(f"dcerpc.iface: too many values in '{text}'")
    return uuid, pred, any_frag


@keyword("dcerpc.iface", "dce_iface", help="dcerpc.iface:UUID[,[<>=!]VERSION][,any_frag]; the DCERPC interface bound")
def dcerpc_iface(b: RuleBuilder, arg: str | None) -> None:
    uuid, pred, any_frag = parse_iface(unquote(arg, "dcerpc.iface"))

    def check(tx: Any, ts: bool) -> bool:
        c = getattr(tx, "dce", None)
        return c is not None and c.iface_match(uuid, pred, any_frag)
    _add(b, check)


def parse_opnum(text: str) -> Any:
    """Suricata's two forms: a list of numbers and low-high ranges, else one integer
    comparison."""
    ranges: list[tuple[int, int]] = []
    ok = True
    for part in text.split(","):
        lo, dash, hi = part.strip().partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            ok = False
            break
        a = int(lo)
        z = int(hi) if dash else a
        if z < a:
            raise RuleError(f"dcerpc.opnum: range '{part.strip()}' goes from high to low")
        ranges.append((a, z))
    if ok and ranges:
        if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
            n = ranges[0][0]
            return lambda v: v == n
        rs = tuple(ranges)
        return lambda v: any(a <= v <= z for a, z in rs)
    return parse_uint(text.strip(), "dcerpc.opnum", 16)


@keyword("dcerpc.opnum", "dce_opnum", help="dcerpc.opnum:N[,A-B,...] or [<>=!]N; the DCERPC request's operation number")
def dcerpc_opnum(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_opnum(unquote(arg, "dcerpc.opnum"))

    def check(tx: Any, ts: bool) -> bool:
        c = getattr(tx, "dce", None)
        return c is not None and c.first_request_seen and pred(c.opnum)
    _add(b, check)


def _add(b: RuleBuilder, check: Any) -> None:
    proto = _proto(b)
    b.tx_checks.append((proto, BOTH, check))
    b.app_protos.add(proto)


@keyword("dcerpc.stub_data", "dce_stub_data", value="none", help="dcerpc.stub_data; sticky buffer: a DCERPC call's stub data")
def dcerpc_stub_data(b: RuleBuilder, arg: str | None) -> None:
    b.select_buffer("dcerpc.stub_data")
    b.app_protos.add(_proto(b))


@keyword("smb.version", help="smb.version:1|2; the SMB version of the transaction")
def smb_version(b: RuleBuilder, arg: str | None) -> None:
    text = unquote(arg, "smb.version").strip()
    if text not in ("1", "2"):
        raise RuleError(f"smb.version: expected 1 or 2, got '{text}'")
    if any(getattr(fn, "smb_version", False) for _p, _d, fn in b.tx_checks):
        raise RuleError("smb.version: only one per rule")
    want = int(text)

    def check(tx: Any, ts: bool) -> bool:
        return getattr(tx, "version", None) == want
    check.smb_version = True            # type: ignore[attr-defined]
    b.tx_checks.append(("smb", BOTH, check))
    b.app_protos.add("smb")
