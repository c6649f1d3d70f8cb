"""One pass over an eve.json: the aggregates the report shows, and references to samples.

The report never holds every record: each table keeps counters plus a few
*references* (eve.json line, byte offset, flow_id, pcap_cnt) to the records
behind a row, and only those lines are read again to be embedded
(`fetch_lines`). So a 461k-record, 242 MB eve.json of the 1M-packet bench
replay makes a report of a few hundred kB (docs/report.md, "Scale").

Rates come from the records themselves, in packet time: each flow record's
packets and bytes are spread evenly over the seconds between its ``start``
and ``end`` (an exact count for flows within one second, a smoothed one for
longer ones), and alerts are counted at their timestamps. Packets that
belong to no flow (non-IP frames) are in the stats record's total, not in
the timeline.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

SAMPLES = 5                  # records kept behind each table row
ANOMALY_ROWS = 200           # anomaly alerts listed one by one (the rest counted)
MARKS = 500                  # anomaly alerts marked on the timeline


class ReportInputError(Exception):
    """The eve file cannot make a report; the message is the one line to print."""


# A reference to one record: (eve.json line number, byte offset, flow_id, pcap_cnt)
Ref = tuple[int, int, Any, Any]


class Row:
    """One row of a count table: how many, how many bytes, and a few records behind it."""

    __slots__ = ("count", "bytes", "flows", "refs", "info")

    def __init__(self, count: int = 0, nbytes: int = 0, flows: int = 0, refs: list[Ref] | None = None) -> None:
        self.count = count
        self.bytes = nbytes
        self.flows = flows
        self.refs: list[Ref] = refs if refs is not None else []
        self.info: dict[str, Any] = {}

    def add(self, ref: Ref) -> None:
        self.count += 1
        if len(self.refs) < SAMPLES:
            self.refs.append(ref)


# hosts, pairs and ports: [bytes, flows, first flow record] per key, a Row only for the
# rows shown (`traffic_rows`): 151k hosts and 219k pairs on the 1M bench capture
Traffic = list[Any]


@dataclass
class Aggregate:
    """Everything the report shows, from one eve file."""

    path: Path
    records: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    first_ts: float | None = None
    last_ts: float | None = None
    truncated_line: int | None = None     # a last line cut short (the file was still being written)
    stats: dict[str, Any] | None = None   # the last stats record's `stats` object
    # per-second timeline: flow packets/bytes as difference arrays (rate changes), alerts as counts
    pkt_rate_delta: dict[int, float] = field(default_factory=lambda: defaultdict(float))
    alerts_at: Counter[int] = field(default_factory=Counter)
    anomaly_at: Counter[int] = field(default_factory=Counter)
    marks: list[tuple[float, str]] = field(default_factory=list)
    flow_pkts: int = 0
    flow_bytes: int = 0
    signatures: dict[tuple[int, int], Row] = field(default_factory=dict)
    categories: dict[str, Row] = field(default_factory=dict)
    severities: dict[int, Row] = field(default_factory=dict)
    hosts: dict[str, Traffic] = field(default_factory=dict)
    pairs: dict[tuple[str, str], Traffic] = field(default_factory=dict)
    ports: dict[tuple[str, int], Traffic] = field(default_factory=dict)
    assets: dict[tuple[str, str], Row] = field(default_factory=dict)
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    anomaly_alerts: int = 0
    drops: dict[str, Row] = field(default_factory=dict)
    dropped_flows: int = 0
    decoder_events: dict[str, Row] = field(default_factory=dict)


_MINUTES: dict[str, float] = {}


def parse_ts(text: str) -> float:
    """EVE's ``2026-11-02T08:02:01.700000+0000`` as epoch seconds.

    One datetime parse per distinct minute and offset (cached), then the
    seconds added as a float: ~10x cheaper than parsing every timestamp, which
    matters at 461k records."""
    if len(text) != 31 or text[19] != ".":          # not EVE's usual shape: parse it whole
        return datetime.fromisoformat(text).timestamp()
    key = text[:16] + text[26:]
    base = _MINUTES.get(key)
    if base is None:
        try:
            base = datetime.strptime(text[:16] + text[26:], "%Y-%m-%dT%H:%M%z").timestamp()
        except ValueError:
            return datetime.fromisoformat(text).timestamp()
        if len(_MINUTES) > 100_000:
            _MINUTES.clear()
        _MINUTES[key] = base
    return base + float(text[17:26])


def anomaly_evidence(rec: dict[str, Any]) -> dict[str, Any] | None:
    """An anomaly alert's evidence: ``netsentry.anomaly``, or the older top-level
    ``anomaly`` object of an alert (logs written before the `netsentry` object).
    A top-level ``anomaly`` of an *anomaly* record is Suricata's decoder event, not this."""
    ours = rec.get("netsentry")
    if isinstance(ours, dict) and isinstance(ours.get("anomaly"), dict):
        return ours["anomaly"]
    old = rec.get("anomaly")
    if rec.get("event_type") == "alert" and isinstance(old, dict):
        return old
    return None


def record_assets(rec: dict[str, Any]) -> list[dict[str, Any]]:
    """The critical assets an alert involves: ``netsentry.asset`` (one or a list) or
    ``netsentry.assets`` (a list), each ``{role, ip, name, criticality}``."""
    ours = rec.get("netsentry")
    if not isinstance(ours, dict):
        return []
    found = ours.get("asset", ours.get("assets"))
    if isinstance(found, dict):
        found = [found]
    return [a for a in found if isinstance(a, dict)] if isinstance(found, list) else []


def _row(table: dict[Any, Row], key: Any) -> Row:
    row = table.get(key)
    if row is None:
        row = table[key] = Row()
    return row


def read_eve(path: Path) -> Aggregate:
    """Aggregate every record of `path`. Raises ReportInputError (one line, with
    file:line) for a file that is missing, empty, not EVE, or damaged before its end;
    a last line cut short is only noted (``truncated_line``), as a file still being written."""
    agg = Aggregate(path=path)
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise ReportInputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    loads = orjson.loads
    by_type = agg.by_type
    handlers = _HANDLERS
    first: float | None = None
    last: float | None = None
    offset = 0
    n = 0
    with f:
        for line in f:
            n += 1
            start = offset
            offset += len(line)
            try:
                rec = loads(line)
                if not isinstance(rec, dict) or "event_type" not in rec or "timestamp" not in rec:
                    raise ValueError
                ts = parse_ts(rec["timestamp"])
            except (orjson.JSONDecodeError, ValueError, TypeError):
                if not line.endswith(b"\n") and line.startswith(b"{"):
                    agg.truncated_line = n          # the last line, cut short
                    break
                if line.strip() == b"" and n > 1:
                    continue
                what = "not an EVE record (expected a JSON object with timestamp and event_type)"
                raise ReportInputError(f"{path}:{n}: {what}") from None
            etype = rec["event_type"]
            by_type[etype] += 1
            if etype != "stats":      # stamped with the wall clock (as Suricata's), not traffic time
                if first is None or ts < first:
                    first = ts
                if last is None or ts > last:
                    last = ts
            handler = handlers.get(etype)
            if handler is not None:
                handler(agg, rec, ts, (n, start, rec.get("flow_id"), rec.get("pcap_cnt")))
    if agg.first_ts is not None and (first is None or agg.first_ts < first):
        first = agg.first_ts                  # a flow's start before any record's time
    agg.first_ts, agg.last_ts = first, last
    agg.records = n - (1 if agg.truncated_line else 0)
    if agg.records == 0:
        what = "its only record is cut short" if agg.truncated_line else "empty"
        raise ReportInputError(f"{path}: {what}: no complete EVE records to report on")
    return agg


def _flow(agg: Aggregate, rec: dict[str, Any], ts: float, ref: Ref) -> None:
    """Flow records are half of a busy log: plain lists and dict.get here, no Row objects
    (1M bench eve.json: the report went from 9.8 to ~4 s CPU)."""
    fl = rec.get("flow") or {}
    pkts = fl.get("pkts_toserver", 0) + fl.get("pkts_toclient", 0)
    nbytes = fl.get("bytes_toserver", 0) + fl.get("bytes_toclient", 0)
    text = fl.get("start")
    start = parse_ts(text) if text else ts
    text = fl.get("end")
    end = ts if text is None or text == rec["timestamp"] else parse_ts(text)
    if agg.first_ts is None or start < agg.first_ts:
        agg.first_ts = start
    s0, s1 = int(start), int(end)
    seconds = s1 - s0 + 1
    rate = pkts / seconds
    delta = agg.pkt_rate_delta
    delta[s0] += rate
    delta[s1 + 1] -= rate
    agg.flow_pkts += pkts
    agg.flow_bytes += nbytes
    src, dst = rec.get("src_ip", "?"), rec.get("dest_ip", "?")
    for table, key in ((agg.hosts, src), (agg.hosts, dst), (agg.pairs, (src, dst)),
                       (agg.ports, (rec.get("proto", "?"), rec.get("dest_port")))):
        entry = table.get(key)
        if entry is None:
            table[key] = [nbytes, 1, ref]
        else:
            entry[0] += nbytes
            entry[1] += 1
    if fl.get("action") == "drop":
        agg.dropped_flows += 1


def _alert(agg: Aggregate, rec: dict[str, Any], ts: float, ref: Ref) -> None:
    alert = rec.get("alert") or {}
    second = int(ts)
    evidence = anomaly_evidence(rec)
    sig = str(alert.get("signature", "?"))
    if evidence is not None:
        agg.anomaly_alerts += 1
        agg.anomaly_at[second] += 1
        if len(agg.marks) < MARKS:
            agg.marks.append((ts, sig))
        if len(agg.anomalies) < ANOMALY_ROWS:
            agg.anomalies.append({"ts": ts, "signature": sig, "src": rec.get("src_ip"),
                                  "dest": rec.get("dest_ip"), "evidence": evidence, "ref": ref})
    else:
        agg.alerts_at[second] += 1
    key = (int(alert.get("gid", 1)), int(alert.get("signature_id", 0)))
    row = _row(agg.signatures, key)
    if not row.info:
        row.info = {"signature": sig, "category": alert.get("category", ""),
                    "severity": alert.get("severity", 3), "anomaly": evidence is not None}
    row.add(ref)
    _row(agg.categories, str(alert.get("category") or "(none)")).add(ref)
    _row(agg.severities, int(alert.get("severity", 3))).add(ref)
    for asset in record_assets(rec):
        arow = _row(agg.assets, (str(asset.get("name", "")), str(asset.get("ip", ""))))
        if not arow.info:
            arow.info = {"criticality": asset.get("criticality", ""), "signatures": Counter(),
                         "roles": Counter()}
        arow.info["signatures"][sig] += 1
        arow.info["roles"][str(asset.get("role", ""))] += 1
        arow.add(ref)


def _drop(agg: Aggregate, rec: dict[str, Any], ts: float, ref: Ref) -> None:
    alert = rec.get("alert") or {}
    reason = (rec.get("drop") or {}).get("reason", "?")
    key = f"{alert['signature']} (sid {alert.get('signature_id')})" if alert.get("signature") \
        else f"({reason})"
    _row(agg.drops, key).add(ref)


def _anomaly(agg: Aggregate, rec: dict[str, Any], ts: float, ref: Ref) -> None:
    body = rec.get("anomaly") or {}
    name = str(body.get("event") or body.get("type") or "?")
    _row(agg.decoder_events, name).add(ref)


def _stats(agg: Aggregate, rec: dict[str, Any], ts: float, ref: Ref) -> None:
    if isinstance(rec.get("stats"), dict):
        agg.stats = rec["stats"]        # cumulative: the last one has the totals


_HANDLERS = {"flow": _flow, "alert": _alert, "drop": _drop, "anomaly": _anomaly, "stats": _stats}


def fetch_lines(path: Path, refs: set[Ref]) -> dict[int, bytes]:
    """The lines behind `refs`, read by offset (only the few the report embeds)."""
    out: dict[int, bytes] = {}
    with open(path, "rb") as f:
        for line_no, offset, _, _ in sorted(refs, key=lambda r: r[1]):
            f.seek(offset)
            out[line_no] = f.readline().rstrip(b"\n")
    return out
