"""PCRE -> Python re translation: what is rewritten, what is refused with a reason."""

import re

import pytest

from netsentry.rules.errors import RuleError, UnsupportedError
from netsentry.rules.pcre import compile_pcre, translate


@pytest.mark.parametrize("pcre,python", [
    (r"(?<n>a)\k<n>", r"(?P<n>a)(?P=n)"),
    (r"(?'n'a)\k{n}", r"(?P<n>a)(?P=n)"),
    (r"a\z", r"a\Z"),
    (r"a\Z", r"a(?=\n?\Z)"),
    (r"\h+", r"[\t \xa0]+"),
    (r"[\h\d]", r"[\t \xa0\d]"),
    (r"\e\cA\x{41}", r"\x1b\x01\x41"),
    (r"[\x22\x2][\x4]\xg\x41", r"[\x22\x02][\x04]\x00g\x41"),    # PCRE: 0 to 2 hex digits (ET sid 2025916)
    (r"\Qa.b\E+", r"a\.b+"),
    (r"[[:alpha:][:digit:]]", r"[a-zA-Z0-9]"),
    (r"a{,3}", r"a\{,3}"),
    (r"a(?i)b|c", r"a(?i:b)|(?i:c)"),
    (r"(?i)ab", r"(?i)ab"),
    (r"[a[b]", r"[a\[b]"),
    (r"[]x]", r"[\]x]"),
    (r"(?<!a|bc)x", r"(?<!a)(?<!bc)x"),
    (r"a\/b", r"a\/b"),
])
def test_translate(pcre, python):
    assert translate(pcre) == python
    re.compile(python.encode())


@pytest.mark.parametrize("pcre,reason", [
    (r"a\Kb", r"\\K"), (r"\G", r"\\G"), (r"\p{L}", "unicode property"), (r"(?|a)", "branch reset"),
    (r"(*UTF8)a", "verb"), (r"a(?1)", "recursion"), (r"[[:^alpha:]]", "POSIX class"),
    (r"\x{100}", "above 0xff"), (r"(?U)a", "inline option"),
])
def test_refused_constructs(pcre, reason):
    with pytest.raises(UnsupportedError, match=reason):
        translate(pcre)


def test_syntax_errors():
    with pytest.raises(RuleError, match="lone backslash"):
        translate("a\\")
    with pytest.raises(RuleError, match="terminating"):
        translate("[abc")
    with pytest.raises(UnsupportedError, match="cannot compile"):
        compile_pcre("a)", "")


def test_flags_and_bytes_semantics():
    r = compile_pcre(r"^GET\s+/\w+$", "im")
    assert r.search(b"x\nget  /abc\ny")
    assert compile_pcre(r"\xff\x00", "").search(b"a\xff\x00")       # binary bytes
    assert compile_pcre("caf\u00e9", "").search("caf\u00e9".encode())     # UTF-8 literal as in the rule file
