"""`netsentry rules check`: load rule files and report what loads, what not, and why.

Exit status (the convention):
  0  every rule loaded, or was skipped only because it needs a feature we do
     not implement yet (app-layer protocols/buffers, transforms, ...): valid
     Suricata rules, e.g. a full ET Open set, pass;
  1  some rule is *wrong* (syntax, bad value, unknown keyword, duplicate
     sid) or a rules file cannot be read;
  with ``strict``: 1 as soon as any rule was skipped for any reason, or a
     loader warning was raised (e.g. classification.config not found).

The report, meant to stay readable for 20k skipped rules: per-file
loaded/skipped counts; every erroneous rule as ``file:line sid N: reason``;
unsupported rules summarised by their first reason with a count and a few
examples (all of them with ``verbose``); the features the skipped rules need
(a rule may need several) with how many rules each one alone would unlock;
load time and peak memory.
"""

from __future__ import annotations

import resource
import sys
from collections import Counter, defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from netsentry.rules.errors import RuleError, UnsupportedError
from netsentry.rules.loader import load_rules

EXAMPLES = 3


def _where(e: RuleError) -> str:
    sid = f" sid {e.sid}" if e.sid is not None else ""
    return f"{e.file}:{e.line}{sid}"


def run(paths: list[str], config: Mapping[str, Any] | None, strict: bool = False,
        verbose: bool = False, out: TextIO | None = None) -> int:
    """Print the report for `paths` to `out` (stdout) and return the exit status (see module doc)."""
    out = out or sys.stdout
    rs = load_rules(paths, config)
    w = out.write

    unsupported = [e for e in rs.errors if isinstance(e, UnsupportedError)]
    errors = [e for e in rs.errors if not isinstance(e, UnsupportedError)]
    total_loaded = sum(f.loaded for f in rs.files)
    total_skipped = sum(f.skipped for f in rs.files)
    commented = sum(f.commented for f in rs.files)

    w(f"rules check: {len(rs.files)} file(s), {total_loaded + total_skipped} rules: "
      f"{total_loaded} loaded, {total_skipped} skipped ({len(errors)} with errors, "
      f"{len(unsupported)} unsupported); {commented} commented out\n")
    w("\nper file (loaded / skipped):\n")
    width = max((len(Path(f.path).name) for f in rs.files), default=0)
    for f in rs.files:
        w(f"  {Path(f.path).name:<{width}}  {f.loaded:>6} / {f.skipped:<6}\n")

    for warning in rs.warnings:
        w(f"\nwarning: {warning}\n")

    if errors:
        w(f"\nerrors ({len(errors)}): rules that are wrong\n")
        for e in errors:
            w(f"  {_where(e)}: {e.reason}\n")

    if unsupported:
        by_reason: dict[str, list[RuleError]] = defaultdict(list)
        for e in unsupported:
            by_reason[e.category].append(e)
        w(f"\nunsupported ({len(unsupported)}): valid rules needing features not implemented yet, "
          f"by first reason\n")
        for reason, errs in sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            w(f"  {len(errs):>6}  {reason}\n")
            shown = errs if verbose else errs[:EXAMPLES]
            for e in shown:
                w(f"            {_where(e)}: {e.reason}\n")
            if len(errs) > len(shown):
                w(f"            ... {len(errs) - len(shown)} more (--verbose lists all)\n")

        needed = Counter(f for e in unsupported for f in e.features)
        alone = Counter(e.features[0] for e in unsupported if len(e.features) == 1)
        w("\nfeatures needed by skipped rules (rules needing it / rules it alone would unlock):\n")
        for feat, n in needed.most_common():
            w(f"  {n:>6} / {alone.get(feat, 0):<6} {feat}\n")

    _write_management(rs, w, verbose)

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    w(f"\nloaded {total_loaded} signatures in {rs.load_seconds:.2f} s; peak RSS {peak_mib:.0f} MiB\n")

    if errors:
        return 1
    if strict and (unsupported or rs.warnings):
        return 1
    return 0


def _write_management(rs: Any, w: Any, verbose: bool) -> None:
    """What disable.conf / enable.conf / modify.conf changed (rules/manage.py), rule by rule."""
    filters = rs.filters
    if filters is None or not filters.files:
        return
    counts = Counter(what for _, what, _ in filters.changes)
    w(f"\nrule management ({', '.join(filters.files)}): {counts.get('disabled', 0)} disabled, "
      f"{counts.get('enabled', 0)} enabled, {counts.get('modified', 0)} modified\n")
    shown = filters.changes if verbose else filters.changes[:50]
    for where, what, by in shown:
        w(f"  {where}: {what} by {by}\n")
    if len(filters.changes) > len(shown):
        w(f"  ... {len(filters.changes) - len(shown)} more (--verbose lists all)\n")
