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
    assert list(f.flowbits) == ["t"]
    toggle.post_match(p, f)
    assert not f.flowbits
    rule("flowbits:set,b&a;").post_match(p, f)
    assert list(f.flowbits) == ["b", "a"]      # in the order set (EVE metadata.flowbits)
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


def matched(sig, p, f) -> bool:
    """What the engine does with a candidate: match, then the post-match side effects."""
    if not sig.match(p, f):
        return False
    sig.post_match(p, f)
    return True


def test_flowint_changes_apply_after_the_rule_matched():
    """Suricata (detect-flowint.c): =, + and - are post-match, comparisons are checks."""
    f, p = flow(), pkt()
    count = rule("flowint:cnt,+,1; flowint:cnt,>,2;")
    assert not matched(count, p, f) and f.flowints is None     # the check fails first: no increment
    assert matched(rule("flowint:cnt,=,2;"), p, f)
    assert not matched(count, p, f)                            # compares 2 > 2, then no increment
    assert f.flowints == {"cnt": 2}
    assert matched(rule("flowint:cnt,+,1;"), p, f)
    assert matched(count, p, f)                                # 3 > 2, then + 1
    assert f.flowints == {"cnt": 4}
    assert matched(rule("flowint:cnt,==,4;"), p, f)
    assert matched(rule("flowint:cnt,isset;"), p, f) and matched(rule("flowint:other,notset;"), p, f)
    assert not matched(rule("flowint:other,>,0;"), p, f)          # unset compares false


def test_flowint_unset_target_counts_as_zero_and_subtract_from_unset_is_a_no_op():
    f, p = flow(), pkt()
    assert matched(rule("flowint:a,=,7;"), p, f)
    assert matched(rule("flowint:a,>,missing;"), p, f)            # 7 > 0
    assert matched(rule("flowint:b,=,missing;"), p, f) and f.flowints["b"] == 0
    assert matched(rule("flowint:nope,-,1;"), p, f)               # the rule matches; nothing changes
    assert "nope" not in f.flowints
    assert matched(rule("flowint:a,-,8;"), p, f) and f.flowints["a"] == (1 << 32) - 1   # uint32 wraps
    assert not matched(rule("flowint:a,isset;"), p, None)


def test_flowint_use_is_recorded_for_evaluation_order():
    sig = rule("flowint:a,isset; flowint:b,+,1; flowint:c,<,a;")
    assert sig.flowints_set == {"b"} and sig.flowints_checked == {"a", "c"}


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


# --- flow.pkts / flow.bytes ---------------------------------------------------------------

@pytest.mark.parametrize("opts, want", [
    ("flow.pkts:toserver,=3;", True),
    ("flow.pkts:toclient,>2;", False),
    ("flow.pkts:either,2;", True),
    ("flow.pkts:both,>=2;", True),
    ("flow.pkts:both,3;", False),
    ("flow.pkts_toserver:3;", True),
    ("flow.pkts_toclient:<3;", True),
    ("flow.bytes:toserver,>1000;", True),
    ("flow.bytes_toclient:>1000;", False),
])
def test_flow_counters(opts, want):
    f = flow()
    f.pkts_toserver, f.pkts_toclient, f.bytes_toserver, f.bytes_toclient = 3, 2, 1500, 120
    sig = rule(opts, "alert ip any any -> any any")
    assert sig.match(pkt(b""), f) is want
    assert not sig.match(pkt(b""), None)          # no flow, no match


def test_flow_counter_needs_a_direction():
    with pytest.raises(RuleError, match="DIRECTION"):
        rule("flow.pkts:10;")


def test_flow_age_counts_whole_seconds_since_the_first_packet() -> None:
    from types import SimpleNamespace
    sig = rule("flow.age:>20;", "alert ip any any -> any any")
    assert sig.match(pkt(b"", ts=1000.9), SimpleNamespace(start=979.0))        # 1000 - 979 = 21
    assert not sig.match(pkt(b"", ts=1000.9), SimpleNamespace(start=980.5))    # 1000 - 980 = 20
    assert not sig.match(pkt(b"", ts=1000.0), None)
