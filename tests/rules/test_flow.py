"""Flow keywords: flow, flowbits (set/isset/or/and/toggle/noalert), flowint, stream_size."""

import pytest
from rules_helpers import flow, pkt, rule

from netsentry.rules import RuleError, UnsupportedError


def test_flow_direction_and_state():
    sig = rule("flow:established,to_server;")
    assert sig.flow_to_server is True and sig.flow_established is True
    assert sig.match(pkt(to_server=True), flow(established=True))
    assert not sig.match(pkt(to_server=False), flow(established=True))
    assert not sig.match(pkt(to_server=True), flow(established=False))
    assert not sig.match(pkt(to_server=True), None)                  # no flow, no match
    assert rule("flow:from_server;").match(pkt(to_server=False), flow())
    assert rule("flow:not_established;").match(pkt(), flow(established=False))
    assert rule("flow:stateless;").match(pkt(), None)


def test_flow_stream_flags():
    assert rule("flow:to_server,only_stream;").needs_stream
    assert rule("flow:no_stream;").pkt_only
    with pytest.raises(UnsupportedError, match="only_frag"):
        rule("flow:only_frag;")
    with pytest.raises(RuleError, match="conflicts"):
        rule("flow:to_server,to_client;")
    with pytest.raises(RuleError, match="unknown option 'sideways'"):
        rule("flow:sideways;")


def test_flowbits_set_then_isset():
    setter = rule("flowbits:set,login; flowbits:noalert;")
    checker = rule("flowbits:isset,login;", "alert tcp any any -> any any")
    f = flow()
    p = pkt()
    assert setter.noalert and setter.flowbits_set == {"login"} and checker.flowbits_checked == {"login"}
    assert not checker.match(p, f)
    assert setter.match(p, f)
    assert not checker.match(p, f)               # set happens in post_match, not match
    setter.post_match(p, f)
    assert checker.match(p, f)
    assert not rule("flowbits:isnotset,login;").match(p, f)
    assert rule("flowbits:isnotset,other;").match(p, f)
    rule("flowbits:unset,login;").post_match(p, f)
    assert not checker.match(p, f)


def test_flowbits_toggle_or_and():
    f, p = flow(), pkt()
    toggle = rule("flowbits:toggle,t;")
    toggle.post_match(p, f)
    assert f.flowbits == {"t"}
    toggle.post_match(p, f)
    assert f.flowbits == set()
    rule("flowbits:set,a&b;").post_match(p, f)
    assert f.flowbits == {"a", "b"}
    assert rule("flowbits:isset,x|b;").match(p, f)           # any of
    assert not rule("flowbits:isset,x&b;").match(p, f)       # all of
    assert rule("flowbits:isset,a&b;").match(p, f)
    assert rule("flowbits:isnotset,x|b;").match(p, f)        # any not set
    assert not rule("flowbits:isnotset,a|b;").match(p, f)
    assert not rule("flowbits:isset,a;").match(p, None)


@pytest.mark.parametrize("opts,reason", [
    ("flowbits:frob,a;", "unknown command 'frob'"),
    ("flowbits:set;", "needs a name"),
    ("flowbits:set,a|b;", "cannot use '\\|'"),
    ("flowbits:isset,a|b&c;", "cannot mix"),
])
def test_flowbits_errors(opts, reason):
    with pytest.raises(RuleError, match=reason):
        rule(opts)


def test_flowint_arithmetic_in_rule_order():
    f, p = flow(), pkt()
    count = rule("flowint:cnt,+,1; flowint:cnt,>,2;")
    assert not count.match(p, f)          # unset + 1 -> 1
    assert not count.match(p, f)          # 2
    assert count.match(p, f)              # 3 > 2
    assert f.flowints == {"cnt": 3}
    assert rule("flowint:cnt,==,3;").match(p, f)
    assert rule("flowint:cnt,isset;").match(p, f) and rule("flowint:other,notset;").match(p, f)
    assert not rule("flowint:other,>,0;").match(p, f)          # unset compares false
    assert rule("flowint:other,=,5; flowint:cnt,<,other;").match(p, f)
    assert not rule("flowint:nope,-,1;").match(p, f)            # subtract from unset: no match
    assert rule("flowint:cnt,-,1; flowint:cnt,==,2;").match(p, f)
    assert not rule("flowint:cnt,isset;").match(p, None)


def test_flowint_errors():
    with pytest.raises(RuleError, match="unknown operator"):
        rule("flowint:a,*,2;")
    with pytest.raises(RuleError, match="needs a value"):
        rule("flowint:a,+;")


def test_stream_size():
    f = flow()
    f.client_isn, f.client_next_seq = 1000, 1101        # client sent 101 (SYN counts 1)
    f.server_isn, f.server_next_seq = (1 << 32) - 10, 90  # wraps: 100
    p = pkt()
    assert rule("stream_size:client,>,100;").match(p, f)
    assert rule("stream_size:server,=,100;").match(p, f)
    assert not rule("stream_size:both,>,100;").match(p, f)
    assert rule("stream_size:either,>,100;").match(p, f)
    assert rule("stream_size:server,<=,100;").match(p, f)
    assert not rule("stream_size:client,!=,101;").match(p, f)
    assert not rule("stream_size:client,>,1;").match(p, None)
    with pytest.raises(RuleError, match="unknown side"):
        rule("stream_size:middle,>,1;")
