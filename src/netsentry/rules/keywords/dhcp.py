"""DHCP keywords (applayer/dhcp.py), as Suricata's rust/src/dhcp/detect.rs: the lease,
rebinding and renewal times of a message's options (`dhcp.leasetime:<7200`), inspected
on the message's own side only (Suricata's bug-8621), and the `dhcp.*` events."""

from __future__ import annotations

from netsentry.applayer import dhcp
from netsentry.applayer.registry import BOTH
from netsentry.rules.keywords.applayer import APP_LAYER_EVENTS, tx_check
from netsentry.rules.numeric import parse_uint
from netsentry.rules.registry import RuleBuilder, keyword, unquote

APP_LAYER_EVENTS["dhcp"] = dict(dhcp.EVENTS)


def _time(name: str, code: int):
    def setup(b: RuleBuilder, arg: str | None) -> None:
        pred = parse_uint(unquote(arg, name), name, 64)

        def check(tx, ts: bool) -> bool:
            if tx.to_server != ts:
                return False
            v = tx.time(code)
            return v is not None and pred(v)
        tx_check(b, "dhcp", BOTH, check)
    return setup


keyword("dhcp.leasetime", help="dhcp.leasetime:[op]N; the lease time option (51)")(
    _time("dhcp.leasetime", dhcp.OPT_LEASE))
keyword("dhcp.rebinding_time", help="dhcp.rebinding_time:[op]N; the rebinding time option (59)")(
    _time("dhcp.rebinding_time", dhcp.OPT_REBINDING))
keyword("dhcp.renewal_time", help="dhcp.renewal_time:[op]N; the renewal time option (58)")(
    _time("dhcp.renewal_time", dhcp.OPT_RENEWAL))
