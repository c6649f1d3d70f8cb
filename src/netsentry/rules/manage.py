"""Rule management without editing rule files: suricata-update's disable.conf,
enable.conf and modify.conf, applied to every rule line as it is loaded.

Admins keep vendor rule files (ET Open) untouched and say in three small
files what to turn off, what to turn on and what to rewrite; the same
filters apply at start-up, on every reload and in ``netsentry rules check``
(which lists what they changed). Line formats as suricata-update reads them:

``disable.conf`` / ``enable.conf`` — one matcher per line:
  ``2019401``                 a sid (gid 1)
  ``1:2019401``               gid:sid; several ids may be given comma-separated
  ``re:heartbleed``           a regular expression searched (case-insensitive)
                              in the rule text
  ``group:emerging-dos.rules``  a glob on the rule file's name
  ``filename:rules/*.rules``  a glob on the rule file's path
  ``metadata:deployment perimeter``  a metadata key with that value

``modify.conf`` — ``MATCHER "FROM" "TO"``: in every rule the matcher selects,
the regular expression FROM is replaced by TO (``${1}`` / ``\\1`` refer to
groups), e.g. ``2019401 "seconds \\d+" "seconds 3600"`` or
``re:ET.SCAN "^alert" "drop"``.

Order, as suricata-update applies them: disable, then enable (a rule both
disabled and enabled is enabled; enable also turns on a rule commented out
in its file), then modify on the enabled rules. ``#`` starts a comment.
A bad line is a `RuleError` with the management file's path and line.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from netsentry.rules.errors import RuleError

# the part of a rule that matchers look at: its text, where it came from
Matcher = Callable[[str, str], bool]       # (rule text, rule file path) -> bool

# one rule option: `name;` or `name: value;` where the value may hold quoted strings and \; escapes
_OPTION = re.compile(r'\s*([A-Za-z_][\w.-]*)\s*(?::((?:"(?:[^"\\]|\\.)*"|\\.|[^;"\\])*))?;')
_ACTIONS = ("alert", "drop", "reject", "rejectsrc", "rejectdst", "rejectboth", "pass")
_MODIFY = re.compile(r'^(?P<matcher>.+?)\s+"(?P<from>(?:[^"\\]|\\.)*)"\s+"(?P<to>(?:[^"\\]|\\.)*)"\s*$')

CONFIG_KEYS = ("disable-conf", "enable-conf", "modify-conf")


def _options(text: str) -> list[tuple[str, str]]:
    """(name, value) of each option between the rule's parentheses (quotes and escapes respected)."""
    start = text.find("(")
    if start < 0:
        return []
    body = text[start + 1:text.rfind(")")]
    return [(m.group(1).lower(), (m.group(2) or "").strip()) for m in _OPTION.finditer(body)]


def rule_ids(text: str) -> tuple[int, int | None]:
    """(gid, sid) read from the rule text; sid None when the rule has none."""
    gid, sid = 1, None
    for name, value in _options(text):
        if name in ("sid", "gid") and value.isdigit():
            if name == "sid":
                sid = int(value)
            else:
                gid = int(value)
    return gid, sid


def _metadata(text: str) -> set[str]:
    """Every ``key value`` pair of the rule's metadata options, normalised to single spaces."""
    pairs = set()
    for name, value in _options(text):
        if name == "metadata":
            for item in value.split(","):
                words = item.split()
                if words:
                    pairs.add(" ".join(words).lower())
    return pairs


# --- matchers: one parser per prefix (a registration table, as the keyword registry) ---

def _id_matcher(arg: str) -> Matcher:
    wanted: set[tuple[int, int]] = set()
    for part in arg.split(","):
        part = part.strip()
        gid_s, sep, sid_s = part.partition(":")
        if not sep:
            gid_s, sid_s = "1", gid_s
        if not (gid_s.isdigit() and sid_s.isdigit()):
            raise ValueError(f"expected a sid or gid:sid, got {part!r}")
        wanted.add((int(gid_s), int(sid_s)))

    def match(text: str, path: str) -> bool:
        return rule_ids(text) in wanted
    return match


def _re_matcher(arg: str) -> Matcher:
    try:
        pattern = re.compile(arg, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"bad regular expression {arg!r}: {exc}") from None
    return lambda text, path: pattern.search(text) is not None


def _group_matcher(arg: str) -> Matcher:
    return lambda text, path: fnmatch.fnmatch(os.path.basename(path), arg)


def _filename_matcher(arg: str) -> Matcher:
    return lambda text, path: fnmatch.fnmatch(path, arg) or fnmatch.fnmatch(os.path.basename(path), arg)


def _metadata_matcher(arg: str) -> Matcher:
    wanted = " ".join(arg.split()).lower()
    if " " not in wanted:
        raise ValueError(f"expected 'metadata:KEY VALUE', got {arg!r}")
    return lambda text, path: wanted in _metadata(text)


MATCHERS: dict[str, Callable[[str], Matcher]] = {
    "re": _re_matcher,
    "group": _group_matcher,
    "filename": _filename_matcher,
    "metadata": _metadata_matcher,
}


def parse_matcher(spec: str) -> Matcher:
    """One disable/enable line (or a modify line's first field) -> a matcher. ValueError with the reason."""
    spec = spec.strip()
    prefix, sep, arg = spec.partition(":")
    factory = MATCHERS.get(prefix.strip().lower()) if sep else None
    if factory is not None:
        if not arg.strip():
            raise ValueError(f"{prefix}: needs a value")
        return factory(arg.strip())
    return _id_matcher(spec)


@dataclass
class Modify:
    matcher: Matcher
    pattern: re.Pattern[str]
    replacement: str
    where: str


@dataclass
class RuleFilters:
    """The disable/enable/modify filters of one configuration, and what they did to the last load."""

    disable: list[tuple[Matcher, str]] = field(default_factory=list)     # (matcher, "file:line")
    enable: list[tuple[Matcher, str]] = field(default_factory=list)
    modify: list[Modify] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    # what the last load changed: (rule file:line, what, by which filter line)
    changes: list[tuple[str, str, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.disable or self.enable or self.modify)

    def apply(self, text: str, path: str, line: int) -> str | None:
        """The rule line as it should be loaded, or None if it stays off.

        `text` may be a commented-out rule (``# alert ...``): only enable.conf
        turns it on. Other comments come back as they are (the loader skips them).
        """
        commented = text.startswith("#")
        body = text.lstrip("# \t") if commented else text
        if commented and body.split(" ", 1)[0] not in _ACTIONS:
            return text
        enabled = not commented
        where = f"{path}:{line}"
        if enabled:
            for matcher, by in self.disable:
                if matcher(body, path):
                    enabled = False
                    self.changes.append((where, "disabled", by))
                    break
        if not enabled:
            for matcher, by in self.enable:
                if matcher(body, path):
                    enabled = True
                    self.changes.append((where, "enabled", by))
                    break
        if not enabled:
            return text if commented else None    # a rule commented out in its file stays a comment
        for mod in self.modify:
            if mod.matcher(body, path):
                new = mod.pattern.sub(mod.replacement, body)
                if new != body:
                    body = new
                    self.changes.append((where, "modified", mod.where))
        return body


def _lines(path: str) -> list[tuple[int, str]]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            raw = f.read().splitlines()
    except OSError as exc:
        raise RuleError(f"{path}: cannot read rule management file: {exc.strerror or exc}",
                        category="rule management") from None
    out = []
    for n, line in enumerate(raw, 1):
        line = line.strip()
        if line and not line.startswith("#"):
            out.append((n, line))
    return out


def _modify_replacement(to: str) -> str:
    # suricata-update writes group references as ${1}; Python's re wants \g<1>
    return re.sub(r"\$\{(\d+)\}", r"\\g<\1>", to)


def load_filters(config: Mapping[str, Any] | None) -> RuleFilters:
    """The filters named by ``rule-management.*`` in `config`. Raises RuleError (file:line: reason)."""
    section = (config or {}).get("rule-management") or {}
    filters = RuleFilters()
    for key in CONFIG_KEYS:
        path = str(section.get(key) or "")
        if not path:
            continue
        filters.files.append(path)
        for n, line in _lines(path):
            where = f"{path}:{n}"
            try:
                if key == "modify-conf":
                    m = _MODIFY.match(line)
                    if m is None:
                        raise ValueError('expected MATCHER "FROM" "TO"')
                    try:
                        pattern = re.compile(m.group("from").replace('\\"', '"'))
                    except re.error as exc:
                        raise ValueError(f"bad regular expression {m.group('from')!r}: {exc}") from None
                    repl = _modify_replacement(m.group("to").replace('\\"', '"'))
                    try:
                        pattern.sub(repl, "")        # a bad group reference fails here, not at load
                    except (re.error, IndexError) as exc:
                        raise ValueError(f"bad replacement {m.group('to')!r}: {exc}") from None
                    filters.modify.append(Modify(parse_matcher(m.group("matcher")), pattern, repl, where))
                else:
                    target = filters.disable if key == "disable-conf" else filters.enable
                    target.append((parse_matcher(line), where))
            except ValueError as exc:
                raise RuleError(f"{key}: {exc}", file=path, line=n, category="rule management") from None
    return filters
