"""Run a pcre RE2 cannot take on PCRE2 itself, bounded by a backtracking step count.

Why: patterns with back-references, look-around or possessive quantifiers
cannot run on RE2 (pcre_re2.py). On Python's `re` their only bound is CPU
time, and the kernel's timer tick makes ~8 ms an evaluation the floor; a
hostile flow then costs tens of milliseconds per packet. Suricata bounds
PCRE by steps instead (``pcre.match-limit`` 3500, ``match-limit-recursion``
1500 by default), which costs microseconds per hostile evaluation. The
`pcre2` binding does not expose the match-context limits, but PCRE2 reads
them from the pattern itself: ``(*LIMIT_MATCH=n)(*LIMIT_DEPTH=n)`` at its
start. Exceeding one raises `LIMIT_ERRORS`: no match, as in Suricata.

The original PCRE pattern is compiled (after pcre.translate accepted it, so
what netsentry refuses stays refused), in 8-bit non-UTF mode: one byte one
character, ASCII-only case folding, as Suricata's pcre on packet bytes.
None when the binding is missing or cannot compile it: the rule then runs on
Python's `re` under the CPU-time limit (pcre_limit.py).
"""

from __future__ import annotations

from typing import Any

try:  # pragma: no cover - import guard
    import pcre2 as _pcre2
except ImportError:  # pragma: no cover
    _pcre2 = None

MATCH_LIMIT = 3500          # Suricata's default pcre.match-limit
DEPTH_LIMIT = 1500          # Suricata's default pcre.match-limit-recursion

# What a search raises when it runs out of steps (pcre2.LibraryError, or a
# never-raised placeholder without the binding).
LIMIT_ERRORS: tuple[type[BaseException], ...] = (_pcre2.LibraryError,) if _pcre2 is not None else ()


def available() -> bool:
    return _pcre2 is not None


def compile_limited(pattern: str, flags: str, match_limit: int = MATCH_LIMIT,
                    depth_limit: int = DEPTH_LIMIT) -> Any | None:
    """PCRE2 compile of `pattern` with PCRE `flags` (subset of "ismx") and step limits, or None."""
    if _pcre2 is None:
        return None
    text = (f"(*LIMIT_MATCH={match_limit})(*LIMIT_DEPTH={depth_limit})"
            + "".join(f"(?{f})" for f in "imsx" if f in flags) + pattern)
    try:
        compiled = _pcre2.compile(text.encode("utf-8", "surrogateescape"))
    except (_pcre2.LibraryError, ValueError, TypeError, UnicodeEncodeError):
        return None
    try:
        compiled.jit_compile()      # the match limit applies to JIT matching too
    except Exception:  # noqa: BLE001 - JIT is an optimisation; the interpreter still works
        pass
    return compiled
