"""Per-rule profiling (`--profile-rules`), as Suricata's rule profiling (`profiling.rules`).

Per rule: how often it was checked (verified after the prefilter named it a
candidate), how often it matched, and the time its checks took, so a user
finds the one slow rule among 30,000. At the end of the run the top N rules
by total time go to stderr as a table and to ``LOGDIR/rule_perf.log`` as JSON
lines with Suricata's field names (`signature_id`, `gid`, `rev`, `checks`,
`matches`, `ticks_total`, `ticks_max`, `ticks_avg`, `ticks_avg_match`,
`ticks_avg_nomatch`, `percent`). Suricata's ticks are CPU cycles; ours are
nanoseconds of `time.perf_counter_ns` (each record says so:
``"ticks_unit": "ns"``).

Selected when the sensor is built, never tested per packet: `RuleProfiler`
puts a timing proxy (`ProfiledSignature`) in place of each signature of the
engine's evaluation list and a timing wrapper in place of the transaction
engine's `_match`, so the default path runs the same code as without
profiling and pays nothing. In profiling mode the engine's two shortcuts
that skip a signature's own methods are turned off, so every candidate's
check is seen and timed: prefilter-confirmed rules (the fast-pattern hit *is*
the match) are verified, and address checks settled by the flow's home
class go through `header_match`. Both give the same answer by construction
(detect/engine.py's `_confirmed_by_prefilter`, detect/homeclass.py), so
alerts are unchanged; only the timings include the work the shortcuts save.

What a check is:
- packet and stream rules: one candidate evaluation, from `header_match`
  through `match` (the stream path may try `match` on two windows) and
  `post_match`; a match is a candidate that passed verification (before
  thresholds and suppression, as Suricata counts it);
- transaction rules (detect/txdetect.py): one verification of a candidate
  against one transaction and direction.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter_ns
from typing import IO, Any

DEFAULT_TOP = 20
LOG_NAME = "rule_perf.log"


@dataclass(slots=True, eq=False)
class RuleStats:
    """One rule's counters; times in nanoseconds."""

    sid: int
    gid: int
    rev: int
    msg: str
    kind: str                    # "packet" (packet and stream inspection) or "tx"
    checks: int = 0
    matches: int = 0
    ticks_total: int = 0
    ticks_max: int = 0
    ticks_match: int = 0         # total of the checks that matched

    def record(self, rank: int, grand_total: int) -> dict[str, Any]:
        nomatch = self.checks - self.matches
        return {
            "rank": rank, "signature_id": self.sid, "gid": self.gid, "rev": self.rev,
            "msg": self.msg, "inspection": self.kind,
            "checks": self.checks, "matches": self.matches,
            "ticks_total": self.ticks_total, "ticks_max": self.ticks_max,
            "ticks_avg": self.ticks_total // self.checks if self.checks else 0,
            "ticks_avg_match": self.ticks_match // self.matches if self.matches else 0,
            "ticks_avg_nomatch": (self.ticks_total - self.ticks_match) // nomatch if nomatch else 0,
            "percent": round(100.0 * self.ticks_total / grand_total, 2) if grand_total else 0.0,
            "ticks_unit": "ns",
        }


class ProfiledSignature:
    """A signature seen through timing wrappers; every other attribute reads through."""

    __slots__ = ("_sig", "stats", "_cur", "_matched")

    def __init__(self, sig: Any, stats: RuleStats) -> None:
        self._sig = sig
        self.stats = stats
        self._cur = 0              # time of the evaluation in progress
        self._matched = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sig, name)

    def finish(self) -> None:
        """Close the evaluation in progress (its time is already in ticks_total)."""
        st = self.stats
        if self._cur > st.ticks_max:
            st.ticks_max = self._cur
        if self._matched:
            st.ticks_match += self._cur
        self._cur = 0
        self._matched = False

    def header_match(self, pkt: Any, flow: Any) -> bool:
        # every evaluation starts here in profiling mode (RuleProfiler turns the home-class
        # shortcut off), so this is where a check begins
        self.finish()
        t0 = perf_counter_ns()
        ok = self._sig.header_match(pkt, flow)
        dt = perf_counter_ns() - t0
        st = self.stats
        st.checks += 1
        st.ticks_total += dt
        self._cur = dt
        return ok

    def match(self, pkt: Any, flow: Any) -> bool:
        t0 = perf_counter_ns()
        ok = self._sig.match(pkt, flow)
        dt = perf_counter_ns() - t0
        self.stats.ticks_total += dt
        self._cur += dt
        return ok

    def post_match(self, pkt: Any, flow: Any) -> None:
        t0 = perf_counter_ns()
        self._sig.post_match(pkt, flow)
        dt = perf_counter_ns() - t0
        self.stats.ticks_total += dt
        self._cur += dt

    @property
    def post_actions(self) -> Any:
        # Both packet loops of the engine read `post_actions` exactly once per candidate,
        # right after it passed verification: that is a match.
        self.stats.matches += 1
        self._matched = True
        return self._sig.post_actions


def _stats_of(sig: Any, kind: str) -> RuleStats:
    return RuleStats(sig.sid, sig.gid, sig.rev, sig.msg or "", kind)


class RuleProfiler:
    """Installs the profiling path into a built SignatureEngine and reports at the end."""

    def __init__(self, engine: Any, top: int = DEFAULT_TOP) -> None:
        from netsentry.detect.homeclass import NEEDS_HEADER
        self.top = top
        self.rules: list[RuleStats] = []
        self._proxies: list[ProfiledSignature] = []
        if engine is None:
            return
        n = len(engine.sigs)
        proxies = [ProfiledSignature(s, _stats_of(s, "packet")) for s in engine.sigs]
        engine.sigs = proxies
        engine._confirmed = [False] * n            # verify prefilter-confirmed rules too
        engine._amask = [NEEDS_HEADER] * n         # every address check through header_match
        for rule, proxy in zip(engine._rules, proxies):     # the candidate loops' records (engine.py _Rule)
            rule.sig, rule.confirmed, rule.amask = proxy, False, NEEDS_HEADER
        self._proxies = proxies
        self.rules = [p.stats for p in proxies]
        tx = engine.tx
        if tx is not None:
            by_sig = {id(s): _stats_of(s, "tx") for s in tx.sigs}
            self.rules += by_sig.values()
            tx._match = _profiled_tx_match(type(tx)._match, by_sig)

    def results(self) -> list[RuleStats]:
        """Every rule that was checked, most total time first."""
        for p in self._proxies:
            p.finish()
        checked = [r for r in self.rules if r.checks]
        checked.sort(key=lambda r: (-r.ticks_total, r.gid, r.sid))
        return checked

    def records(self, top: int | None = None) -> list[dict[str, Any]]:
        res = self.results()
        grand = sum(r.ticks_total for r in res)
        n = self.top if top is None else top
        return [r.record(i, grand) for i, r in enumerate(res[:n], 1)]

    def report(self, logdir: str | Path | None, out: IO[str] | None = None) -> list[dict[str, Any]]:
        """Write the top rules to `logdir`/rule_perf.log (JSON lines) and a table to `out`."""
        records = self.records()
        if logdir is not None:
            path = Path(logdir) / LOG_NAME
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                for rec in records:
                    f.write(json.dumps({"sort": "ticks", **rec}) + "\n")
        print(format_table(records, len(self.results())), file=out or sys.stderr)
        return records


def _profiled_tx_match(match: Any, by_sig: dict[int, RuleStats]) -> Any:
    def profiled_match(s: Any, pkt: Any, flow: Any, tx: Any, to_server: bool, header: int = 0) -> bool:
        t0 = perf_counter_ns()
        ok = match(s, pkt, flow, tx, to_server, header)
        dt = perf_counter_ns() - t0
        st = by_sig[id(s)]
        st.checks += 1
        st.ticks_total += dt
        if dt > st.ticks_max:
            st.ticks_max = dt
        if ok:
            st.matches += 1
            st.ticks_match += dt
        return ok
    return profiled_match


def format_table(records: Iterable[dict[str, Any]], checked: int) -> str:
    rows = list(records)
    head = (f"{'rank':>4} {'sid':>10} {'gid':>3} {'rev':>3} {'checks':>10} {'matches':>8} "
            f"{'total ms':>10} {'avg us':>9} {'max us':>9} {'%':>6}  msg")
    lines = [f"rule profiling: top {len(rows)} of {checked} rules checked, by total time "
             f"(ns from time.perf_counter_ns; {LOG_NAME} has the same as JSON)", head]
    for r in rows:
        lines.append(f"{r['rank']:>4} {r['signature_id']:>10} {r['gid']:>3} {r['rev']:>3} {r['checks']:>10} "
                     f"{r['matches']:>8} {r['ticks_total'] / 1e6:>10.2f} {r['ticks_avg'] / 1e3:>9.1f} "
                     f"{r['ticks_max'] / 1e3:>9.1f} {r['percent']:>6.2f}  {r['msg'][:60]}")
    return "\n".join(lines)
