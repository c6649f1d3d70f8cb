"""The HTML replay report: ``netsentry report LOGDIR/eve.json [-o report.html]``.

Reads only eve.json (never the per-packet path): `aggregate.read_eve` makes
one pass of counters and sample references, `html.render` draws the page
with the inline SVG writer `svg`. docs/report.md describes what it shows.
"""

from __future__ import annotations

import os
from pathlib import Path

from netsentry.report.aggregate import Aggregate, ReportInputError, read_eve

__all__ = ["Aggregate", "ReportInputError", "read_eve", "write_report"]


def write_report(eve_path: str | os.PathLike[str], out_path: str | os.PathLike[str] | None = None,
                 title: str = "") -> tuple[Path, Aggregate]:
    """Write the report of `eve_path` (default: report.html beside it); returns its path and
    the aggregate. Raises ReportInputError for an eve file that cannot make one, OSError
    (with the path) when the report cannot be written."""
    from netsentry.report.html import render
    eve = Path(eve_path)
    agg = read_eve(eve)
    out = Path(out_path) if out_path is not None else eve.with_name("report.html")
    text = render(agg, title)
    tmp = out.with_name(out.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out)          # a reader never sees half a report
    except OSError as exc:
        raise OSError(f"cannot write {out}: {exc.strerror or exc}") from None
    return out, agg
