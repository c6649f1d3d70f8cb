"""threshold and detection_filter parsing (the engine applies them)."""

import pytest
from rules_helpers import rule

from netsentry.rules import RuleError, Threshold


def test_threshold_forms():
    t = rule("threshold: type limit, track by_src, count 1, seconds 60;").threshold
    assert t == Threshold("limit", "by_src", 1, 60) and t.type == "limit"
    assert rule("threshold:type both,track by_dst,count 5,seconds 10;").threshold.kind == "both"
    assert rule("threshold:type threshold,track by_rule,count 3,seconds 1;").threshold.track == "by_rule"
    assert rule("msg:\"x\";").threshold is None


def test_detection_filter():
    d = rule("detection_filter:track by_src, count 10, seconds 60, unique_on dst_port;").detection_filter
    assert d == Threshold("detection_filter", "by_src", 10, 60, "dst_port")
    assert rule("detection_filter:track by_both,count 2,seconds 5;").detection_filter.unique_on is None


@pytest.mark.parametrize("opts,reason", [
    ("threshold:type sometimes,track by_src,count 1,seconds 1;", "type must be"),
    ("threshold:type limit,track by_host,count 1,seconds 1;", "unknown track"),
    ("threshold:type limit,track by_src,seconds 1;", "missing 'count'"),
    ("threshold:type limit,track by_src,count x,seconds 1;", "invalid number"),
    ("threshold:type limit,track by_src,count 1,seconds 1,extra 2;", "unknown option 'extra'"),
    ("detection_filter:track by_src,count 1,seconds 1,unique_on proto;", "unique_on must be"),
    ("threshold:type limit,track by_src,count 1,seconds 1; detection_filter:track by_src,count 1,seconds 1;",
     "only one threshold"),
])
def test_errors(opts, reason):
    with pytest.raises(RuleError, match=reason):
        rule(opts)
