"""IKE's keywords (applayer/ike.py), as Suricata's: `ike.exchtype`,
`ike.chosen_sa_attribute:NAME OP N`, `ike.nonce_payload_length`,
`ike.key_exchange_payload_length`, the sticky buffers `ike.init_spi`, `ike.resp_spi`
(hex), `ike.nonce_payload`, `ike.key_exchange_payload`, `ike.vendor` (hex, one per vendor
id), and the `ike.*`/`ikev2.*` app-layer events."""

from __future__ import annotations

import re
from typing import Any

from netsentry.applayer import ike
from netsentry.applayer.registry import BOTH, TO_CLIENT
from netsentry.rules.errors import RuleError
from netsentry.rules.keywords.applayer import APP_LAYER_EVENTS, _sticky, tx_check
from netsentry.rules.numeric import parse_uint
from netsentry.rules.registry import KEYWORDS, RuleBuilder, keyword, unquote

APP_LAYER_EVENTS["ike"] = dict(ike.EVENTS)

for _name in ("ike.init_spi", "ike.resp_spi", "ike.nonce_payload", "ike.key_exchange_payload", "ike.vendor"):
    if _name not in KEYWORDS:
        keyword(_name, value="none", help=f"{_name}; sticky buffer (ike)")(_sticky(_name))


@keyword("ike.exchtype", help="ike.exchtype:[op]N; the ISAKMP exchange type")
def ike_exchtype(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint(unquote(arg, "ike.exchtype"), "ike.exchtype", 8)
    tx_check(b, "ike", BOTH, lambda tx, ts: pred(tx.hdr["exch"]))


@keyword("ike.chosen_sa_attribute", help="ike.chosen_sa_attribute:NAME[op]N; an attribute of the first "
         "transform (IKEv1) or the algorithms (IKEv2)")
def ike_chosen_sa(b: RuleBuilder, arg: str | None) -> None:
    text = unquote(arg, "ike.chosen_sa_attribute").strip()
    m = re.match(r"([A-Za-z_]+)\s*(.*)$", text)
    code = ike.ATTRIBUTE_CODES.get(m.group(1).lower()) if m else None
    if code is None:
        raise RuleError(f"ike.chosen_sa_attribute: unknown attribute in '{text}'")
    rest = m.group(2).strip()
    if rest.startswith("="):
        rest = rest[1:]
    pred = parse_uint(rest, "ike.chosen_sa_attribute", 32)

    def check(tx: Any, ts: bool) -> bool:
        if tx.hdr["maj"] == 1:
            if not tx.transforms:
                return False
            for t, v, _ in tx.transforms[0]:
                if t == code and v is not None:
                    return pred(v)
            return False
        for t, i in tx.v2_transforms:
            if ike.V2_TRANSFORMS.get(t) == code:
                return pred(i)
        return False
    tx_check(b, "ike", TO_CLIENT, check)


def _length_keyword(name: str, attr: str) -> None:
    def setup(b: RuleBuilder, arg: str | None) -> None:
        pred = parse_uint(unquote(arg, name), name, 32)
        tx_check(b, "ike", BOTH, lambda tx, ts: tx.hdr["maj"] == 1 and bool(getattr(tx, attr))
                 and pred(len(getattr(tx, attr))))
    keyword(name, help=f"{name}:[op]N; the IKEv1 payload's length")(setup)


_length_keyword("ike.nonce_payload_length", "nonce")
_length_keyword("ike.key_exchange_payload_length", "ke")
