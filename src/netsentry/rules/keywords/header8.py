"""Header keywords Suricata 8 added beside the classic ones (header.py): tcp.wscale, l3_proto.

- ``tcp.wscale``: the TCP window-scale option's shift count, an 8-bit integer
  keyword; never matches a packet without the option. As Suricata's decoder,
  a shift over 14 (RFC 7323's maximum) reads as 0.
- ``l3_proto``: ``ipv4``/``ip4`` or ``ipv6``/``ip6`` (case-insensitive): the
  rule matches only packets of that IP version (Suricata sets the rule's
  protocol flags); asking for both is an error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netsentry.rules.errors import RuleError
from netsentry.rules.numeric import parse_uint
from netsentry.rules.registry import RuleBuilder, keyword, unquote

if TYPE_CHECKING:  # pragma: no cover
    from netsentry.decode.packet import Packet
    from netsentry.flow.flow import Flow

WSCALE_MAX = 14
_L3 = {"ipv4": 4, "ip4": 4, "ipv6": 6, "ip6": 6}


@keyword("tcp.wscale", help="tcp.wscale:[op]N; TCP window-scale option value (8-bit integer)")
def tcp_wscale(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint(unquote(arg, "tcp.wscale"), "tcp.wscale", 8)

    def check(pkt: Packet, flow: Flow | None) -> bool:
        if pkt.proto != 6:
            return False
        w = pkt.tcp_wscale
        if w < 0:
            return False
        return pred(w if w <= WSCALE_MAX else 0)
    b.packet_checks.append(check)
    b.sig.pkt_only = True


@keyword("l3_proto", help="l3_proto:ipv4|ipv6; match only packets of this IP version")
def l3_proto(b: RuleBuilder, arg: str | None) -> None:
    text = unquote(arg, "l3_proto").strip()
    version = _L3.get(text.lower())
    if version is None:
        raise RuleError(f"l3_proto: invalid value '{text}' (ipv4, ip4, ipv6, ip6)")
    have = b.extra.get("l3_proto")
    if have is not None and have != version:
        raise RuleError("l3_proto: conflicting IP versions in one rule")
    if have is None:
        b.extra["l3_proto"] = version
        b.packet_checks.append(lambda pkt, flow: pkt.ip_version == version)
        b.sig.iponly_checks += 1        # Suricata: a protocol flag, so the rule stays IP-only
