"""tcp.wscale and l3_proto (rules/keywords/header8.py), on packets netsentry decoded."""

from __future__ import annotations

import pytest
from rules_helpers import rule
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from netsentry.decode import Decoder
from netsentry.rules import RuleError


def syn(wscale: int | None, v6: bool = False) -> object:
    opts = [("MSS", 1460)] + ([("WScale", wscale)] if wscale is not None else [])
    ip = IPv6(src="fd00::1", dst="fd00::2") if v6 else IP(src="10.3.0.1", dst="10.3.0.2")
    return Decoder().decode(bytes(Ether() / ip / TCP(flags="S", options=opts)), 1)


def hit(opts: str, p: object, header: str = "alert tcp any any -> any any") -> bool:
    return bool(rule(opts, header).match(p, None))


@pytest.mark.parametrize("opts, wscale, want", [
    ("tcp.wscale:7;", 7, True),
    ("tcp.wscale:7;", 8, False),
    ("tcp.wscale:>10;", 14, True),
    ("tcp.wscale:>10;", 15, False),       # over 14 reads as 0, as Suricata's decoder
    ("tcp.wscale:0;", 15, True),
    ("tcp.wscale:0-3;", 2, True),
    ("tcp.wscale:0;", None, False),       # no option: never matches
    ("tcp.wscale:!5;", None, False),
])
def test_wscale(opts: str, wscale: int | None, want: bool) -> None:
    assert hit(opts, syn(wscale)) is want


def test_wscale_value_must_fit_8_bits() -> None:
    with pytest.raises(RuleError, match="does not fit"):
        rule("tcp.wscale:300;")


def test_l3_proto() -> None:
    v4, v6 = syn(2), syn(2, v6=True)
    for header in ("alert ip any any -> any any", "alert tcp any any -> any any"):
        assert hit("l3_proto:ipv4;", v4, header) and not hit("l3_proto:ipv4;", v6, header)
        assert hit("l3_proto:IP6;", v6, header) and not hit("l3_proto:ip6;", v4, header)
    assert rule("l3_proto:ipv4;", "alert ip any any -> any any").is_ip_only


@pytest.mark.parametrize("opts, msg", [
    ("l3_proto:ipx;", "invalid value"),
    ("l3_proto:ipv4; l3_proto:ipv6;", "conflicting"),
])
def test_l3_proto_errors(opts: str, msg: str) -> None:
    with pytest.raises(RuleError, match=msg):
        rule(opts, "alert ip any any -> any any")
