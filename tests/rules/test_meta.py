"""Meta keywords: msg sid rev gid classtype priority metadata reference target noalert prefilter."""

import pytest
from rules_helpers import rule

from netsentry.rules import RuleError


def test_msg_unescaping_and_meta():
    sig = rule(r'msg:"say \"hi\"\; ok"; sid:9; rev:3; gid:2; classtype:trojan-activity; '
               r'reference:url,example.com/x; reference:cve,2020-1234; metadata:created_at 2020_01_01, '
               r'tag A, tag B; target:dest_ip;')
    assert sig.msg == 'say "hi"; ok'
    assert (sig.sid, sig.rev, sig.gid) == (9, 3, 2)
    assert sig.severity == 1 and sig.class_description == "A Network Trojan was detected"
    assert sig.references == [("url", "example.com/x"), ("cve", "2020-1234")]
    assert sig.metadata == {"created_at": ["2020_01_01"], "tag": ["A", "B"]}
    assert sig.target == "dest_ip"


def test_severity_priority_wins_default_three():
    assert rule("classtype:trojan-activity; priority:4;").severity == 4
    assert rule("priority:2; classtype:trojan-activity;").severity == 2
    assert rule("msg:\"x\";").severity == 3
    assert rule("classtype:attempted-recon;").severity == 2


def test_noalert_and_prefilter_flags():
    sig = rule('content:"x"; noalert; prefilter;')
    assert sig.noalert and sig.prefilter
    assert not rule('content:"x";').noalert


@pytest.mark.parametrize("options,reason", [
    ("classtype:nope;", "unknown classtype 'nope'"),
    ("sid:0;", "sid: 0 out of range"),
    ("sid:abc;", "sid: invalid number 'abc'"),
    ("target:both;", "target: expected src_ip or dest_ip"),
    ("priority:0;", "priority: 0 out of range"),
    ("priority:256;", "priority: 256 out of range"),
    ("sid:1; sid:2;", "'sid' given more than once"),
    ('msg:"a"; msg:"b";', "'msg' given more than once"),
    ("reference:nocomma;", "expected 'system,id'"),
    ("rev:-1;", "rev: -1 out of range"),
])
def test_meta_errors(options, reason):
    with pytest.raises(RuleError, match=reason):
        rule(options if "sid" in options else options + " sid:7;")


def test_alert_and_tag_keywords() -> None:
    assert rule("alert;", "pass tcp any any -> any any").force_alert
    sig = rule("tag:session; tag:host,100,packets,src; tag:host,60,seconds;")
    assert sig.tags == [("session", 256, "packets", "dst"), ("host", 100, "packets", "src"),
                        ("host", 60, "seconds", "dst")]
    for bad in ("tag:flow;", "tag:host,100;", "tag:host,x,packets;", "tag:host,1,frames;",
                "tag:session,1,packets,src;", "tag:host,1,packets,up;"):
        with pytest.raises(RuleError):
            rule(bad)


@pytest.mark.parametrize("req, loads", [
    ("version >= 8", True), ("version >= 7 < 10", True), ("version >= 10", False), ("version >= 9.0.1", False),
    ("feature ja3", True), ("feature ja4", True), ("feature ja5", False), ("keyword content", True), ("keyword no.such", False),
    ("version >= 8, feature ja4", True), ("version >= 8, feature ja5", False)])
def test_requires_skips_a_rule_whose_requirements_are_not_met(req: str, loads: bool) -> None:
    from netsentry.rules import UnsupportedError
    if loads:
        assert rule(f"requires: {req};").sid == 1
    else:
        with pytest.raises(UnsupportedError, match="requires: not met"):
            rule(f"requires: {req};")


def test_requires_syntax_errors() -> None:
    for bad in ("requires: foo bar;", "requires: version ~8;", "requires: feature;"):
        with pytest.raises(RuleError):
            rule(bad)


@pytest.mark.parametrize("req, loads", [
    ("version >= 7.0.3 < 8 | >= 9", True),        # alternatives: the second holds
    ("version >= 7.0.3 < 8 | >= 9.0.99", False),
    ("version < 8 | >= 8.0.1 < 9", False),
    ("version >= 10 | < 10", True),
])
def test_requires_version_alternatives(req: str, loads: bool) -> None:
    from netsentry.rules import UnsupportedError
    if loads:
        assert rule(f"requires: {req};").sid == 1
    else:
        with pytest.raises(UnsupportedError, match="requires: not met"):
            rule(f"requires: {req};")


def test_requires_unknown_requirement_skips_the_rule() -> None:
    from netsentry.rules import UnsupportedError
    with pytest.raises(UnsupportedError, match="unknown requirement 'foo bar'"):
        rule("requires: foo bar;")


def test_requires_is_read_before_the_rest_of_the_rule() -> None:
    """A rule for a later version may use what this one does not know: skipped, not failed."""
    from netsentry.rules import UnsupportedError
    with pytest.raises(UnsupportedError):
        rule("requires: version >= 10; sid:1;", "alert vxlan any any -> any any")
    with pytest.raises(UnsupportedError):
        rule("no_such_keyword:1; requires: version >= 10;")
    with pytest.raises(RuleError) as e:          # met: the unknown protocol is an error again
        rule("requires: version >= 6; sid:1;", "alert asdf any any -> any any")
    assert not isinstance(e.value, UnsupportedError)


def test_requires_two_versions_is_an_error() -> None:
    from netsentry.rules import UnsupportedError
    with pytest.raises(RuleError, match="more than one version") as e:
        rule("requires: version >= 8, version < 10;")
    assert not isinstance(e.value, UnsupportedError)
