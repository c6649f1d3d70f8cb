"""hostbits and xbits: bits per host / address pair, across flows, with expiry on packet time."""

from __future__ import annotations

import pytest
from detect_helpers import Detect, tcp, udp

from netsentry.detect.xbits import XBitStore
from netsentry.rules import load_rules

T0 = 1_700_000_000.0
A, B, C = "10.0.0.1", "10.0.0.2", "10.0.0.3"


def sids(detect: Detect, rules: str, frames) -> list[tuple[int, int]]:
    return [(n, sid) for n, sid, _a in detect.run(rules, frames).alerts]


def test_hostbits_set_in_one_flow_seen_in_another(detect: Detect) -> None:
    rules = ('alert tcp any any -> any any (content:"login"; hostbits:set,seen,src; hostbits:noalert; sid:1;)\n'
             'alert udp any any -> any any (hostbits:isset,seen,src; content:"x"; sid:2;)\n'
             'alert udp any any -> any any (hostbits:isset,seen,dst; content:"x"; sid:3;)\n')
    frames = [udp(A, C, 5, 53, b"x"), tcp(A, B, 1000, 80, b"login"), udp(A, C, 6, 53, b"x"),
              udp(C, A, 53, 7, b"x"), udp(B, C, 8, 53, b"x")]
    # sid 2 only once A is marked and A is the source; sid 3 when A is the destination
    assert sids(detect, rules, frames) == [(3, 2), (4, 3)]


def test_hostbits_toggle_unset_and_isnotset(detect: Detect) -> None:
    rules = ('alert udp any any -> any any (content:"t"; hostbits:toggle,b; sid:1;)\n'
             'alert udp any any -> any any (content:"u"; hostbits:unset,b; sid:2;)\n'
             'alert udp any any -> any any (content:"?"; hostbits:isnotset,b; sid:3;)\n')
    frames = [udp(A, B, 1, 2, b"?"), udp(A, B, 1, 2, b"t"), udp(A, B, 1, 2, b"?"),
              udp(A, B, 1, 2, b"t"), udp(A, B, 1, 2, b"?"), udp(A, B, 1, 2, b"t"),
              udp(A, B, 1, 2, b"u"), udp(A, B, 1, 2, b"?")]
    assert [n for n, sid in sids(detect, rules, frames) if sid == 3] == [1, 5, 8]


def test_hostbits_expire_after_300_seconds(detect: Detect) -> None:
    rules = ('alert udp any any -> any any (content:"s"; hostbits:set,b; sid:1;)\n'
             'alert udp any any -> any any (content:"?"; hostbits:isset,b; sid:2;)\n')
    frames = [(T0, udp(A, B, 1, 2, b"s")), (T0 + 300, udp(A, B, 1, 2, b"?")), (T0 + 300.5, udp(A, B, 1, 2, b"?"))]
    assert [n for n, sid in sids(detect, rules, frames) if sid == 2] == [2]


def test_xbits_ip_pair_both_ways_and_expire(detect: Detect) -> None:
    rules = ('alert udp any any -> any any (content:"s"; xbits:set,p,track ip_pair,expire 10; sid:1;)\n'
             'alert udp any any -> any any (content:"?"; xbits:isset,p,track ip_pair; sid:2;)\n')
    frames = [(T0, udp(A, B, 1, 2, b"s")), (T0 + 1, udp(B, A, 2, 1, b"?")), (T0 + 2, udp(A, C, 1, 2, b"?")),
              (T0 + 11, udp(A, B, 1, 2, b"?"))]
    assert [n for n, sid in sids(detect, rules, frames) if sid == 2] == [2]


def test_xbits_ip_src_shares_hostbits_names(detect: Detect) -> None:
    rules = ('alert udp any any -> any any (content:"s"; xbits:set,h,track ip_dst; sid:1;)\n'
             'alert udp any any -> any any (content:"?"; hostbits:isset,h,src; sid:2;)\n')
    frames = [udp(A, B, 1, 2, b"s"), udp(B, C, 1, 2, b"?"), udp(A, C, 1, 2, b"?")]
    assert [n for n, sid in sids(detect, rules, frames) if sid == 2] == [2]


def test_set_only_runs_after_the_whole_rule_matched(detect: Detect) -> None:
    rules = ('alert udp any any -> any any (hostbits:set,b; content:"never"; sid:1;)\n'
             'alert udp any any -> any any (hostbits:isset,b; sid:2;)\n')
    assert sids(detect, rules, [udp(A, B, 1, 2, b"x"), udp(A, B, 1, 2, b"x")]) == []


def test_hostbits_rules_stay_ip_only(tmp_path) -> None:
    path = tmp_path / "r.rules"
    path.write_text('alert ip any any -> any any (hostbits:isset,b; sid:1;)\n'
                    'alert ip any any -> any any (xbits:set,b,track ip_pair; sid:2;)\n'
                    'alert ip any any -> any any (hostbits:isset,b; ttl:3; sid:3;)\n')
    sigs = load_rules([path], {}).signatures
    assert [s.is_ip_only for s in sigs] == [True, True, False]


@pytest.mark.parametrize("opt, reason", [
    ("hostbits:set,b,both", "'both' is not implemented"),
    ("hostbits:set,b,src,3600", "not a valid setting"),
    ("hostbits:set", "needs a name"),
    ("hostbits:flip,b", "unknown action"),
    ("hostbits:noalert,b", "takes no name"),
    ("xbits:set,b", "'track ip_src|ip_dst|ip_pair' is required"),
    ("xbits:set,b,track ip_source", "invalid tracker"),
    ("xbits:set,b,track ip_src,expire 0", "invalid expire"),
    ("xbits:set,b,track ip_src,track ip_dst", "unexpected"),
])
def test_bad_options_are_rule_errors(tmp_path, opt: str, reason: str) -> None:
    path = tmp_path / "r.rules"
    path.write_text(f"alert ip any any -> any any ({opt}; sid:1;)\n")
    rs = load_rules([path], {})
    assert not rs.signatures and reason in str(rs.errors[0]), rs.errors


def test_store_is_bounded() -> None:
    store = XBitStore(max_keys=100)
    for i in range(1000):
        store.set(i.to_bytes(4, "big"), "b", 10.0)
    assert len(store) <= 100 and store.evicted >= 900
    store.prune_expired(11.0)
    assert len(store) == 0
