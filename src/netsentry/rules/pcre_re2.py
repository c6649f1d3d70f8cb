"""Run a rule's pcre on RE2 (linear time) when RE2 means exactly what PCRE means.

Why: a backtracking engine can be driven into exponential time by the packet
(ET Open sid 2022542's pattern takes seconds on 56 crafted bytes), and the
CPU-time limit around Python's `re` (pcre_limit.py) cannot cut below the
kernel's tick, ~8 ms an evaluation. RE2 (google-re2) runs in time linear in
the payload, so a hostile packet costs what any packet costs. Patterns RE2
cannot run, or would run with a different meaning, stay on Python's `re`
under the CPU-time limit.

Input is the pattern already translated to Python syntax (pcre.translate),
so only the Python-vs-RE2 differences matter here. RE2 runs in Latin-1 mode
(one byte, one character; ``\\xHH`` is a byte). Refused (None), so the rule
keeps `re` and its exact PCRE meaning:

- anything RE2 does not compile (back-references, look-around, atomic groups,
  possessive quantifiers, counts over 1000, ...);
- the ``x`` flag (RE2 has no verbose mode);
- ``$`` outside a class without ``m``: PCRE's ``$`` also matches before a
  final newline, RE2's only at the very end;
- ``i`` with non-ASCII bytes in the pattern: PCRE folds ASCII only, RE2's
  Latin-1 folding would also pair bytes like 0xC9/0xE9;
- ``\\S`` inside a class (PCRE's ``\\s`` has \\v, RE2's has not; outside a class
  and ``\\s`` inside one are rewritten with the explicit set).

Rewritten: ``\\Z`` (Python's end of subject, from PCRE's ``\\z``) -> ``\\z``.
"""

from __future__ import annotations

from typing import Any

try:  # pragma: no cover - import guard
    import re2 as _re2
except ImportError:  # pragma: no cover
    _re2 = None

_SPACE = "\\t\\n\\x0b\\x0c\\r "       # PCRE2/Perl \s: includes \v (0x0b)


def available() -> bool:
    return _re2 is not None


def _options() -> Any:
    opts = _re2.Options()
    opts.encoding = _re2.Options.Encoding.LATIN1
    opts.log_errors = False         # RE2 would print to stderr for every refused pattern
    return opts


def to_re2(text: str, flags: str) -> str | None:
    """The RE2 spelling of Python-syntax `text` with PCRE `flags` (subset of "ismx"),
    or None when RE2 would not mean the same."""
    if "x" in flags:
        return None
    multiline = "m" in flags
    out: list[str] = []
    i, n = 0, len(text)
    in_class = class_empty = False
    while i < n:
        ch = text[i]
        if ch == "\\":
            if i + 1 >= n:
                return None
            nx = text[i + 1]
            if nx == "Z":
                out.append("\\z")
            elif nx == "s":
                out.append(_SPACE if in_class else f"[{_SPACE}]")
            elif nx == "S":
                if in_class:
                    return None
                out.append(f"[^{_SPACE}]")
            elif nx == "x" and "i" in flags and text[i + 2:i + 3] in tuple("89abcdefABCDEF"):
                return None             # a byte >= 0x80 under nocase
            else:
                out.append(text[i:i + 2])
            class_empty = False         # an escape is a member: a "]" after it closes the class
            i += 2
            continue
        if ord(ch) > 0x7F and "i" in flags:
            return None
        if in_class:
            if ch == "]" and not class_empty:
                in_class = False
            class_empty = False
            out.append(ch)
        elif ch == "[":
            in_class = True
            class_empty = True
            out.append(ch)
            if text[i + 1:i + 2] == "^":
                out.append("^")
                i += 1
        elif ch == "$" and not multiline:
            return None
        else:
            out.append(ch)
        i += 1
    prefix = "".join(f"(?{f})" for f in "ism" if f in flags)
    return prefix + "".join(out)


def compile_re2(text: str, flags: str) -> Any | None:
    """A compiled RE2 pattern equivalent to Python-syntax `text` with `flags`, or None."""
    if _re2 is None:
        return None
    spelled = to_re2(text, flags)
    if spelled is None:
        return None
    try:
        # the same bytes Python's re gets (pcre.compile_pcre), one character each in Latin-1 mode
        return _re2.compile(spelled.encode("utf-8", "surrogateescape"), _options())
    except (_re2.error, UnicodeEncodeError, ValueError, TypeError):
        return None
