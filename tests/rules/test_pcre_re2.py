"""pcre on RE2 (rules/pcre_re2.py): only where RE2 means what PCRE (our `re` translation) means.

A differential test: patterns from a grammar of the constructs RE2 takes, on random
bytes, must give the same match span on RE2 as on Python's `re`."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netsentry.rules.pcre import compile_pcre, translate
from netsentry.rules.pcre_re2 import available, compile_re2

pytestmark = pytest.mark.skipif(not available(), reason="google-re2 is not installed")


@pytest.mark.parametrize("pattern,flags", [
    (r"(a)\1", ""),                 # back-reference
    (r"a(?=b)", ""),                # look-ahead
    (r"(?<!x)a", ""),               # look-behind
    (r"abc$", ""),                  # PCRE's $ also matches before a final newline
    (r"[\S]x", ""),                 # \S in a class
    (r"\xe9", "i"),                 # PCRE folds ASCII only
    (r"é", "i"),
    (r"a b", "x"),                  # verbose mode
    (r"a{1001}", ""),               # over RE2's repeat limit
    (r"a\Z", ""),                   # PCRE \Z: before a final newline too
])
def test_patterns_re2_would_read_differently_stay_on_re(pattern, flags):
    assert compile_re2(translate(pattern), flags) is None


@pytest.mark.parametrize("pattern,flags,subject,span", [
    (r"^(?:.[a-z0-9-]{2,}){2,}\x00\x00(?:\x01|\x1c)", "", b"\x03abc\x03def\x00\x00\x01", (0, 11)),
    (r"host:\s+(\w+)", "i", b"GET / HTTP/1.1\r\nHOST:\x0bexample", (16, 29)),
    (r"abc$", "m", b"abc\nx", (0, 3)),
    (r"a\z", "", b"a\n", None),
    (r"^\d{1,3}\.\d{1,3}", "", b"10.20.x", (0, 5)),
    (r"[^\x00-\x1f]+", "", b"\x01\xffab\x02", (1, 4)),
    (r".+?b", "s", b"a\nab", (0, 4)),
    # an escape first in a class: the "]" after it closes the class (it was read as a
    # literal "]", so the \s after it was spelled as a bare run of characters)
    (r"[\s]*\s*", "", b"", (0, 0)),
    (r"x[\d]y\s", "", b"ax1y z", (1, 5)),
])
def test_known_spans(pattern, flags, subject, span):
    fast = compile_re2(translate(pattern), flags)
    assert fast is not None
    m = fast.search(subject)
    assert (m.span() if m else None) == span
    slow = compile_pcre(pattern, flags).search(subject)
    assert (slow.span() if slow else None) == span


_ATOMS = st.sampled_from([
    "a", "b", "A", r"\x00", r"\xff", r"\n", ".", r"\d", r"\w", r"\s", r"\S", r"\W", r"\b",
    "[ab]", "[^a]", r"[\s]", r"[a-c\x00]", r"[\x80-\xff]", "^", r"\A", r"\z", "(?:a|b)", "(a|ab)",
])
_QUANT = st.sampled_from(["", "", "*", "+", "?", "*?", "+?", "{2}", "{1,3}", "{2,}"])


@st.composite
def _patterns(draw):
    parts = draw(st.lists(st.tuples(_ATOMS, _QUANT), min_size=1, max_size=6))
    text = ""
    for atom, q in parts:
        if atom in ("^", r"\A", r"\z", r"\b"):
            q = ""
        text += atom + q
    if draw(st.booleans()):
        text = f"(?:{text})|b"
    return text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=_patterns(), flags=st.sampled_from(["", "i", "s", "m", "is", "ms"]),
       subject=st.binary(max_size=40), pos=st.integers(0, 10))
def test_re2_and_re_agree(pattern, flags, subject, pos):
    fast = compile_re2(translate(pattern), flags)
    if fast is None:
        return
    slow = compile_pcre(pattern, flags)
    a = fast.search(subject, pos)
    b = slow.search(subject, pos)
    assert (a.span() if a else None) == (b.span() if b else None), (pattern, flags, subject, pos)
    a = fast.match(subject, pos)
    b = slow.match(subject, pos)
    assert (a.span() if a else None) == (b.span() if b else None), (pattern, flags, subject, pos)


def test_the_reported_bomb_runs_on_re2():
    from rules_helpers import rule
    sig = rule('content:"|83 80|"; pcre:"/^(?:.[a-z0-9-]{2,}){2,}\\x00\\x00(?:\\x01|\\x1c)/Ri";')
    (pcre_item,) = [it for it in sig.payload_chain.items if type(it).__name__ == "Pcre"]
    assert pcre_item.linear
    assert not re.search("pcre_gate", repr(sig.packet_checks))
