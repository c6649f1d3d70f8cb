"""Rule management (disable.conf / enable.conf / modify.conf) as suricata-update applies it."""

import io

import pytest

from netsentry.rules import RuleError, load_rules
from netsentry.rules.check import run
from netsentry.rules.manage import load_filters, parse_matcher, rule_ids

RULES = (
    'alert tcp any any -> any 80 (msg:"ET SCAN one"; content:"aaa"; sid:1001; rev:1;)\n'
    'alert tcp any any -> any any (msg:"two"; content:"bbb"; metadata:deployment perimeter, '
    'former_category SCAN; sid:1002; rev:1;)\n'
    '# alert tcp any any -> any any (msg:"three off in the file"; content:"ccc"; sid:1003; rev:1;)\n'
    'alert udp any any -> any 53 (msg:"four"; content:"ddd"; gid:3; sid:1004; rev:1;)\n'
)


def load(tmp_path, disable="", enable="", modify="", name="scan.rules", rules=RULES):
    rf = tmp_path / name
    rf.write_text(rules)
    section = {}
    for key, text in (("disable-conf", disable), ("enable-conf", enable), ("modify-conf", modify)):
        if text:
            p = tmp_path / key.replace("-conf", ".conf")
            p.write_text(text)
            section[key] = str(p)
    config = {"classification-file": "/nonexistent", "rule-management": section}
    return load_rules([str(rf)], config), config, rf


def sids(rs):
    return sorted(s.sid for s in rs.signatures)


def test_no_management_loads_the_file_as_is(tmp_path):
    rs, _, _ = load(tmp_path)
    assert sids(rs) == [1001, 1002, 1004]


@pytest.mark.parametrize("line,expected", [
    ("1001", [1002, 1004]),
    ("1:1002", [1001, 1004]),
    ("3:1004", [1001, 1002]),
    ("1004", [1001, 1002, 1004]),          # plain sid means gid 1: the gid-3 rule stays
    ("1001,1:1002", [1004]),
    ("re:et scan", [1002, 1004]),          # case-insensitive, on the rule text
    ("group:scan.rules", []),
    ("group:*.rules", []),
    ("group:other.rules", [1001, 1002, 1004]),
    ("metadata:deployment perimeter", [1001, 1004]),
    ("metadata:former_category  scan", [1001, 1004]),
])
def test_disable_matchers(tmp_path, line, expected):
    rs, _, _ = load(tmp_path, disable=f"# comment\n\n{line}\n")
    assert sids(rs) == expected
    assert not rs.errors


def test_enable_turns_on_a_commented_rule_and_wins_over_disable(tmp_path):
    rs, _, _ = load(tmp_path, disable="group:*\n", enable="1003\nre:msg:\"two\"\n")
    assert sids(rs) == [1002, 1003]
    by_sid = {s.sid: s for s in rs.signatures}
    assert by_sid[1003].line == 3                       # file:line still point at the rule file


def test_disabled_rules_are_counted_not_skipped(tmp_path):
    rs, _, _ = load(tmp_path, disable="1001\n")
    assert rs.files[0].disabled == 1 and rs.files[0].skipped == 0


def test_modify_rewrites_matching_rules(tmp_path):
    rs, _, _ = load(tmp_path, modify='re:ET SCAN "^alert" "drop"\n1002 "content:\\"bbb\\"" "content:\\"xyz\\""\n')
    by_sid = {s.sid: s for s in rs.signatures}
    assert by_sid[1001].action == "drop"
    assert by_sid[1002].action == "alert"
    assert by_sid[1002].fast_pattern.pattern == b"xyz"
    assert by_sid[1004].action == "alert"


def test_modify_group_references(tmp_path):
    rs, _, _ = load(tmp_path, modify='1001 "msg:\\"ET SCAN (\\w+)\\"" "msg:\\"renamed ${1}\\""\n')
    assert {s.sid: s.msg for s in rs.signatures}[1001] == "renamed one"


def test_modify_does_not_apply_to_disabled_rules(tmp_path):
    rs, _, _ = load(tmp_path, disable="1001\n", modify='1001 "^alert" "drop"\n')
    assert sids(rs) == [1002, 1004]


@pytest.mark.parametrize("key,line,reason", [
    ("disable", "abc", "expected a sid or gid:sid"),
    ("disable", "re:(", "bad regular expression"),
    ("enable", "1:x", "expected a sid or gid:sid"),
    ("disable", "metadata:onlykey", "metadata:KEY VALUE"),
    ("modify", '1001 "alert"', 'expected MATCHER "FROM" "TO"'),
    ("modify", '1001 "(" "x"', "bad regular expression"),
    ("modify", '1001 "a" "\\9"', "bad replacement"),
])
def test_bad_lines_are_errors_with_file_and_line(tmp_path, key, line, reason):
    rs, _, _ = load(tmp_path, **{key: f"# first\n{line}\n"})
    err = [e for e in rs.errors if e.category == "rule management"]
    assert len(err) == 1
    assert str(err[0]).startswith(f"{tmp_path / (key + '.conf')}:2: {key}-conf: ")
    assert reason in str(err[0])


def test_missing_management_file_is_an_error(tmp_path):
    config = {"rule-management": {"disable-conf": str(tmp_path / "nope.conf")}}
    with pytest.raises(RuleError, match="nope.conf: cannot read rule management file"):
        load_filters(config)


def test_rules_check_lists_the_changes_and_fails_on_a_bad_file(tmp_path):
    _, config, rf = load(tmp_path, disable="1001\n", enable="1003\n", modify='1002 "^alert" "drop"\n')
    out = io.StringIO()
    assert run([str(rf)], config, out=out) == 0
    text = out.getvalue()
    assert "1 disabled, 1 enabled, 1 modified" in text
    assert f"{rf}:1: disabled by {tmp_path / 'disable.conf'}:1" in text
    assert f"{rf}:3: enabled by {tmp_path / 'enable.conf'}:1" in text
    assert f"{rf}:2: modified by {tmp_path / 'modify.conf'}:1" in text

    (tmp_path / "disable.conf").write_text("re:[\n")
    out = io.StringIO()
    assert run([str(rf)], config, out=out) == 1
    assert f"{tmp_path / 'disable.conf'}:1" in out.getvalue()


def test_rule_ids_and_matcher_parsing():
    assert rule_ids('alert ip any any -> any any (msg:"x; sid:9;"; gid:2; sid:77;)') == (2, 77)
    assert parse_matcher("group:x.rules")("", "/a/x.rules")
    assert not parse_matcher("filename:/b/*")("", "/a/x.rules")
