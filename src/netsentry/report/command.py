"""``netsentry report EVE [-o OUT]``: the command; cli.py only registers it.

Exit status: 0 written; 1 the eve file is unusable (missing, empty, not EVE,
damaged) or the report cannot be written, and 1 as well, *with* the report
written, when the last record is cut short (as replay exits 1 on a damaged
capture after writing what came before). Every problem is one line.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXIT_OK = 0
EXIT_BAD_INPUT = 1


def add_parser(sub: Any) -> None:
    rep = sub.add_parser("report", help="write the HTML report of an eve.json",
                         description="Write a self-contained HTML report (timeline, alerts, top talkers, "
                                     "assets, anomaly baselines, drops, decoder events) of an eve.json.")
    rep.add_argument("eve", metavar="EVE", help="the eve.json to report on (e.g. LOGDIR/eve.json)")
    rep.add_argument("-o", dest="output", metavar="OUT", help="report file (default: report.html beside EVE)")
    rep.add_argument("--title", default="", help="a title for the page (e.g. the capture's name)")


def run(eve: str, output: str | None, title: str = "", quiet: bool = False) -> int:
    """Write the report; print where (unless `quiet`) or the one-line reason it could not."""
    from netsentry.report import ReportInputError, write_report
    try:
        out, agg = write_report(eve, output, title)
    except (ReportInputError, OSError) as exc:
        print(f"netsentry: report: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not quiet:
        print(f"report: {out} ({agg.records:,} records)")
    if agg.truncated_line:
        print(f"netsentry: report: {eve}:{agg.truncated_line}: last record cut short; "
              "the report covers the records before it", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK


def cmd_report(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    return run(args.eve, args.output, args.title)
