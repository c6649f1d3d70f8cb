"""`RuleError`: why one rule (or one option of it) cannot load.

One exception type for every rule problem so the loader can report each
skipped rule uniformly as ``file:line sid: reason`` and carry on with the rest.
Keyword parsers raise it with just the reason; the loader fills in where.
"""

from __future__ import annotations


class RuleError(Exception):
    """A rule that cannot load. ``reason`` is the exact, user-facing cause.

    ``category`` groups reasons for the `rules check` summary (e.g.
    "app-layer buffer 'http.uri' not supported yet" for every http.uri rule),
    defaulting to the reason itself.
    """

    def __init__(self, reason: str, *, file: str = "", line: int = 0, sid: int | None = None,
                 category: str | None = None) -> None:
        # a non-UTF-8 byte of the rules file (read with surrogateescape) must not
        # break printing or JSON logging of the reason
        reason = reason.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        super().__init__(reason)
        self.reason = reason
        self.file = file
        self.line = line
        self.sid = sid
        self.category = category or reason
        self.features: list[str] = [self.category]   # every unsupported feature found in the rule

    def located(self, file: str, line: int, sid: int | None) -> RuleError:
        """The same error with its place in the rules file filled in."""
        self.file, self.line, self.sid = file, line, sid
        return self

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.file else ""
        sid = f" sid {self.sid}" if self.sid is not None else ""
        return f"{where}{sid}: {self.reason}" if (where or sid) else self.reason


class UnsupportedError(RuleError):
    """Valid Suricata syntax we do not implement yet (app-layer protocols, buffers, keywords)."""
