"""classification.config and reference.config, as Suricata reads them.

classification.config: ``config classification: shortname,description,priority``
reference.config:      ``config reference: system url-prefix``
Class names are matched case-insensitively (Suricata lowercases them). A
malformed line is reported with file:line and skipped, like a bad rule.
"""

from __future__ import annotations

import re
from pathlib import Path

from netsentry.rules.errors import RuleError

_CLASS = re.compile(r"^\s*config\s+classification\s*:\s*([^,]+?)\s*,\s*(.*?)\s*,\s*(\d+)\s*$")
_REF = re.compile(r"^\s*config\s+reference\s*:\s*(\S+)\s+(\S+)\s*$")


def load_classifications(path: str | Path) -> tuple[dict[str, tuple[str, int]], list[RuleError]]:
    """shortname (lowercase) -> (description, priority); plus errors for bad lines."""
    table: dict[str, tuple[str, int]] = {}
    errors: list[RuleError] = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        m = _CLASS.match(s)
        if not m:
            errors.append(RuleError(f"bad classification line: {s!r}", file=str(path), line=lineno))
            continue
        table[m.group(1).lower()] = (m.group(2), int(m.group(3)))
    return table, errors


def load_references(path: str | Path) -> tuple[dict[str, str], list[RuleError]]:
    """system (lowercase) -> url prefix; plus errors for bad lines."""
    table: dict[str, str] = {}
    errors: list[RuleError] = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        m = _REF.match(s)
        if not m:
            errors.append(RuleError(f"bad reference line: {s!r}", file=str(path), line=lineno))
            continue
        table[m.group(1).lower()] = m.group(2)
    return table, errors
