"""Translate a PCRE pattern (as Suricata rules write it) into a compiled Python `re` on bytes.

Python's `re` is close to PCRE but not equal. This module rewrites what
has a faithful equivalent and refuses, with a reason, what has none, so a
rule never silently matches differently:

rewritten: ``(?<name>``/``(?'name'`` -> ``(?P<name>``, ``\\k<name>`` ->
``(?P=name)``, ``\\z`` -> ``\\Z``, PCRE ``\\Z`` -> ``(?=\\n?\\Z)``, ``\\h \\H \\v \\R \\e
\\cX \\x{hh} \\Q..\\E``, POSIX classes ``[:alpha:]``, a literal ``{,n}``, inline
flags after the start (``a(?i)b`` -> ``a(?i:b)``), nested-set look-alikes in
classes (``[`` ``--`` ``&&`` escaped).

refused: recursion/subroutines, ``\\K \\G \\X \\C \\p \\P``, branch reset, verbs
``(*...)``, ungreedy, and anything Python's compiler rejects (e.g. a
variable-width look-behind), each with the reason.
"""

from __future__ import annotations

import re

from netsentry.rules.errors import RuleError, UnsupportedError

_POSIX = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
    "space": r"\t\n\x0b\x0c\r ", "blank": r" \t", "xdigit": "0-9a-fA-F", "word": r"\w",
    "punct": r"!-/:-@\[-`{-~", "print": r"\x20-\x7e", "graph": r"\x21-\x7e",
    "cntrl": r"\x00-\x1f\x7f", "ascii": r"\x00-\x7f",
}
_H = r"\t \xa0"
_V = r"\n\x0b\x0c\r\x85"
_REFUSED_ESCAPES = {
    "K": "\\K (reset match start)", "G": "\\G (first match position)", "X": "\\X (extended grapheme)",
    "C": "\\C (single code unit)", "p": "\\p{..} (unicode property)", "P": "\\P{..} (unicode property)",
    "N": "\\N (non-newline)", "o": "\\o{..} (octal)",
}
_FLAG_GROUP = re.compile(r"\(\?([a-zA-Z]*)(?:-([a-zA-Z]*))?\)")


def _unsupported(what: str) -> UnsupportedError:
    return UnsupportedError(f"pcre: {what} not supported by Python re",
                            category="pcre construct not supported by Python re")


def translate(pattern: str) -> str:
    """PCRE syntax -> Python re syntax (text), or RuleError/UnsupportedError."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    class_start = 0
    depth = 0
    close_at: list[tuple[int, str]] = []   # (group depth, opener) of inserted '(?flags:' groups
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= n:
                raise RuleError("pcre: pattern ends with a lone backslash")
            nx = pattern[i + 1]
            if nx == "Q":
                end = pattern.find("\\E", i + 2)
                lit = pattern[i + 2:] if end < 0 else pattern[i + 2:end]
                out.append("".join("\\" + c if not c.isalnum() else c for c in lit))
                i = n if end < 0 else end + 2
                continue
            if nx == "E":
                i += 2
                continue
            if nx in _REFUSED_ESCAPES:
                raise _unsupported(_REFUSED_ESCAPES[nx])
            if nx == "z":
                out.append("\\Z")
            elif nx == "Z":
                out.append("(?=\\n?\\Z)")
            elif nx == "h":
                out.append(_H if in_class else f"[{_H}]")
            elif nx == "v":
                out.append(_V if in_class else f"[{_V}]")
            elif nx in "HV":
                if in_class:
                    raise _unsupported(f"\\{nx} inside a character class")
                out.append(f"[^{_H if nx == 'H' else _V}]")
            elif nx == "R":
                if in_class:
                    raise _unsupported("\\R inside a character class")
                out.append(r"(?:\r\n|\n|\x0b|\x0c|\r|\x85)")
            elif nx == "e":
                out.append(r"\x1b")
            elif nx == "c":
                if i + 2 >= n:
                    raise RuleError("pcre: \\c at end of pattern")
                out.append(f"\\x{ord(pattern[i + 2].upper()) ^ 0x40:02x}")
                i += 3
                continue
            elif nx == "x" and i + 2 < n and pattern[i + 2] == "{":
                end = pattern.find("}", i + 3)
                if end < 0:
                    raise RuleError("pcre: unterminated \\x{")
                try:
                    v = int(pattern[i + 3:end], 16)
                except ValueError:
                    raise RuleError(f"pcre: bad \\x{{{pattern[i + 3:end]}}}") from None
                if v > 0xFF:
                    raise _unsupported(f"code point \\x{{{pattern[i + 3:end]}}} above 0xff")
                out.append(f"\\x{v:02x}")
                i = end + 1
                continue
            elif nx == "x":
                # PCRE: up to two hex digits (`\x2]` is 0x02, a bare `\x` NUL); Python wants two
                m = re.match(r"[0-9A-Fa-f]{0,2}", pattern[i + 2:])
                digits = m.group(0) if m else ""
                out.append(f"\\x{int(digits or '0', 16):02x}")
                i += 2 + len(digits)
                continue
            elif nx == "k" and i + 2 < n and pattern[i + 2] in "<'{":
                close = {"<": ">", "'": "'", "{": "}"}[pattern[i + 2]]
                end = pattern.find(close, i + 3)
                if end < 0:
                    raise RuleError("pcre: unterminated \\k")
                out.append(f"(?P={pattern[i + 3:end]})")
                i = end + 1
                continue
            elif nx == "g":
                m = re.match(r"\\g(?:\{(-?\d+)\}|(\d+)|\{(\w+)\})", pattern[i:])
                if not m or (m.group(1) or "").startswith("-"):
                    raise _unsupported("\\g subroutine or relative back-reference")
                out.append(f"\\{m.group(1) or m.group(2)}" if (m.group(1) or m.group(2))
                           else f"(?P={m.group(3)})")
                i += m.end()
                continue
            else:
                out.append(ch + nx)
            i += 2
            continue
        if in_class:
            if ch == "]" and i > class_start:
                in_class = False
                out.append("]")
            elif ch == "[" and pattern.startswith("[:", i):
                end = pattern.find(":]", i + 2)
                name = pattern[i + 2:end] if end > 0 else ""
                if name.startswith("^") or name not in _POSIX:
                    raise _unsupported(f"POSIX class '[:{name}:]'")
                out.append(_POSIX[name])
                i = end + 2
                continue
            elif ch == "[":
                out.append("\\[")
            elif ch in "-&~|" and i + 1 < n and pattern[i + 1] == ch:
                out.append("\\" + ch)   # Python warns: possible set operation
            else:
                out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            out.append("[")
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            class_start = i
            if i < n and pattern[i] == "]":   # leading ']' is literal
                out.append("\\]")
                i += 1
            class_start = i
            continue
        if ch == "(":
            rest = pattern[i:i + 4]
            if rest.startswith("(*"):
                raise _unsupported("verb '(*...)'")
            if rest.startswith("(?|"):
                raise _unsupported("branch reset '(?|'")
            if re.match(r"\(\?(R|[+-]?\d|&|P>)", pattern[i:]):
                raise _unsupported("recursion/subroutine call")
            if pattern.startswith(("(?<=", "(?<!"), i):
                end = _group_end(pattern, i)
                alts = _split_alternatives(pattern[i + 4:end])
                if len(alts) > 1:
                    # PCRE allows branches of different fixed lengths in a
                    # look-behind, Python does not: (?<!a|bc) == (?<!a)(?<!bc),
                    # (?<=a|bc) == (?:(?<=a)|(?<=bc)).
                    kind = pattern[i + 3]
                    parts = [f"(?<{kind}{translate(a)})" for a in alts]
                    out.append("".join(parts) if kind == "!" else "(?:" + "|".join(parts) + ")")
                    i = end + 1
                    continue
            if rest.startswith("(?<") and not pattern.startswith(("(?<=", "(?<!"), i):
                out.append("(?P<")
                i += 3
                depth += 1
                continue
            if rest.startswith("(?'"):
                end = pattern.find("'", i + 3)
                out.append(f"(?P<{pattern[i + 3:end]}>")
                i = end + 1
                depth += 1
                continue
            m = _FLAG_GROUP.match(pattern, i)
            if m:
                on, off = m.group(1), m.group(2) or ""
                if set(on + off) - set("imsx"):
                    raise _unsupported(f"inline option '{m.group(0)}'")
                if i == 0 and not off:
                    out.append(m.group(0))
                else:
                    opener = f"(?{on}{'-' + off if off else ''}:"
                    out.append(opener)
                    close_at.append((depth, opener))
                i = m.end()
                continue
            depth += 1
            out.append("(")
            i += 1
            continue
        if ch == ")":
            while close_at and close_at[-1][0] == depth:
                close_at.pop()
                out.append(")")
            depth -= 1
            out.append(")")
            i += 1
            continue
        if ch == "|" and close_at and close_at[-1][0] == depth:
            # PCRE: an inline option applies to the rest of its group, across
            # '|': close the scoped groups, then reopen them in the next branch.
            openers = []
            while close_at and close_at[-1][0] == depth:
                openers.append(close_at.pop()[1])
                out.append(")")
            out.append("|")
            for op in reversed(openers):
                out.append(op)
                close_at.append((depth, op))
            i += 1
            continue
        if ch == "{" and pattern.startswith("{,", i):
            out.append("\\{")
            i += 1
            continue
        out.append(ch)
        i += 1
    if in_class:
        raise RuleError("pcre: missing terminating ']' for character class")
    out.extend(")" * len(close_at))
    return "".join(out)


def _group_end(pattern: str, start: int) -> int:
    """Index of the ')' closing the group opened at `start` (escapes and classes skipped)."""
    depth, i, n = 0, start, len(pattern)
    in_class = False
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
        elif ch == "[":
            in_class = True
            if pattern.startswith("[^]", i) or pattern.startswith("[]", i):
                i += 2 if pattern[i + 1] == "]" else 3
                continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise RuleError("pcre: missing ')'")


def _split_alternatives(body: str) -> list[str]:
    """Split on top-level '|' (not inside groups, classes or after a backslash)."""
    alts, depth, cur, i, n = [], 0, [], 0, len(body)
    in_class = False
    while i < n:
        ch = body[i]
        if ch == "\\":
            cur.append(body[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            alts.append("".join(cur))
            cur = []
            i += 1
            continue
        cur.append(ch)
        i += 1
    alts.append("".join(cur))
    return alts


_FLAGS = {"i": re.IGNORECASE, "s": re.DOTALL, "m": re.MULTILINE, "x": re.VERBOSE}


def compile_pcre(pattern: str, flags: str) -> re.Pattern[bytes]:
    """Compile with PCRE flags among ``i s m x`` (others are the caller's business)."""
    text = translate(pattern)
    reflags = 0
    for f in flags:
        reflags |= _FLAGS.get(f, 0)
    try:
        return re.compile(text.encode("utf-8", "surrogateescape"), reflags)
    except re.error as e:
        raise UnsupportedError(f"pcre: Python re cannot compile '{pattern}': {e}",
                               category="pcre construct not supported by Python re") from None
    except (OverflowError, RecursionError) as e:
        raise UnsupportedError(f"pcre: Python re cannot compile '{pattern}': {e}",
                               category="pcre construct not supported by Python re") from None
