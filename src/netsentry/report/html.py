"""The report as one self-contained HTML page: styles and charts inline, no script, printable.

Sections follow what an analyst looks at first: span and totals, the
timeline, alerts (signature, category, severity), top talkers and ports,
critical assets, anomaly evidence against baselines, IPS drops, decoder
events, then the sampled records every table links to (``#rec-LINE``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from html import escape
from typing import Any

import heapq

import orjson

from netsentry import __version__
from netsentry.report import svg
from netsentry.report.aggregate import Aggregate, Ref, Row, Traffic, fetch_lines

TOP = 20                     # rows per table
BIN_WIDTHS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)
MAX_BINS = 240

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1a202c;margin:0 auto;max-width:1100px;padding:16px 24px}
h1{font-size:22px;margin:4px 0}h2{font-size:17px;border-bottom:2px solid #e2e8f0;padding-bottom:3px;margin-top:28px}
h3{font-size:14px;margin:14px 0 4px}
table{border-collapse:collapse;margin:6px 0 12px;width:100%}th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #edf2f7;vertical-align:top}
th{background:#f7fafc;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.meta{color:#4a5568}.totals{display:flex;flex-wrap:wrap;gap:8px;margin:10px 0}
.totals div{background:#f7fafc;border:1px solid #e2e8f0;border-radius:6px;padding:6px 12px}
.totals b{display:block;font-size:18px}
svg{max-width:100%;height:auto}.chart text{font-size:11px;fill:#2d3748}.chart .grid{stroke:#e2e8f0}.chart .axis{font-weight:600}
.refs a{font-size:12px;margin-right:6px;white-space:nowrap}.empty{color:#718096;font-style:italic}
.note{background:#fffaf0;border-left:4px solid #dd6b20;padding:6px 10px}
pre{white-space:pre-wrap;word-break:break-all;font-size:11px;background:#f7fafc;padding:6px;margin:2px 0 10px}
.legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:12px;height:10px;margin-right:4px}
.anom{display:grid;grid-template-columns:1fr 440px;gap:10px;border-bottom:1px solid #edf2f7;padding:6px 0}
@media print{body{max-width:none;padding:0}h2{break-after:avoid}table,svg,.anom{break-inside:avoid}a{color:inherit}}
"""


def ts_text(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float) -> str:
    s = int(round(seconds))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    parts = [f"{d}d"] if d else []
    parts += [f"{h}h"] if h or d else []
    parts += [f"{m}m", f"{s}s"]
    return " ".join(parts)


class _Page:
    """Collects the sections and the records they link to."""

    def __init__(self, agg: Aggregate) -> None:
        self.agg = agg
        self.parts: list[str] = []
        self.linked: set[Ref] = set()

    def refs(self, refs: Iterable[Ref]) -> str:
        links = []
        for ref in refs:
            self.linked.add(ref)
            line, _, flow_id, pcap_cnt = ref
            what = []
            if flow_id is not None:
                what.append(f"flow {flow_id}")
            if pcap_cnt is not None:
                what.append(f"pkt {pcap_cnt}")
            label = ", ".join(what) or f"line {line}"
            links.append(f'<a href="#rec-{line}" title="eve.json line {line}">{escape(label)}</a>')
        return f'<span class="refs">{" ".join(links)}</span>'

    def table(self, head: list[str], rows: list[list[str]], numeric: set[int] | None = None) -> str:
        if not rows:
            return '<p class="empty">none</p>'
        numeric = numeric or set()
        h = "".join(f"<th>{escape(c)}</th>" for c in head)
        body = []
        for r in rows:
            body.append("<tr>" + "".join(f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>"
                                         for i, c in enumerate(r)) + "</tr>")
        return f"<table><thead><tr>{h}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _top(table: dict[Any, Row], key: Callable[[Row], float], n: int = TOP) -> list[tuple[Any, Row]]:
    """The `n` largest rows (ties in the order first seen): a heap, not a sort of 200k rows."""
    return heapq.nlargest(n, table.items(), key=lambda kv: key(kv[1]))


def _top_traffic(table: dict[Any, Traffic], by: int, n: int = TOP) -> list[tuple[Any, Row]]:
    """Top hosts/pairs/ports by bytes (by=0) or flows (by=1), as Rows."""
    top = heapq.nlargest(n, table.items(), key=lambda kv: kv[1][by])
    return [(k, Row(0, v[0], v[1], [v[2]])) for k, v in top]


def _bins(agg: Aggregate) -> tuple[float, int, list[float], list[float], list[float], list[str]]:
    """The timeline's bins: start, width (s), packets/s, signature and anomaly alerts/min, labels."""
    first = int(agg.first_ts or 0)
    last = int(agg.last_ts or first)
    span = last - first + 1
    width = next((w for w in BIN_WIDTHS if span / w <= MAX_BINS), BIN_WIDTHS[-1])
    start = first - first % width
    nbins = (last - start) // width + 1
    pkts = [0.0] * nbins
    rate = 0.0
    # the per-second rate changes (flows start and end), summed into per-bin packet counts
    deltas = sorted(agg.pkt_rate_delta.items())
    di = 0
    for sec in range(start, start + nbins * width):
        while di < len(deltas) and deltas[di][0] <= sec:
            rate += deltas[di][1]
            di += 1
        if rate > 1e-9:
            pkts[(sec - start) // width] += rate
    rates = [p / width for p in pkts]
    per_min = 60.0 / width
    alerts = [0.0] * nbins
    anomalies = [0.0] * nbins
    for sec, c in agg.alerts_at.items():
        alerts[min(nbins - 1, max(0, (sec - start) // width))] += c * per_min
    for sec, c in agg.anomaly_at.items():
        anomalies[min(nbins - 1, max(0, (sec - start) // width))] += c * per_min
    fmt = "%H:%M:%S" if span < 86400 else "%m-%d %H:%M"
    labels = [datetime.fromtimestamp(start + i * width, tz=timezone.utc).strftime(fmt) for i in range(nbins)]
    return float(start), width, rates, alerts, anomalies, labels


def _timeline_loop_is_bounded(agg: Aggregate) -> bool:
    """The per-second walk in `_bins` is fine for captures up to ~a week of packet time."""
    return agg.first_ts is None or (agg.last_ts or 0) - agg.first_ts < 8 * 86400


def render(agg: Aggregate, title: str = "") -> str:
    """The whole page for `agg`."""
    p = _Page(agg)
    a = agg
    stats = a.stats or {}
    decoder = stats.get("decoder") or {}
    packets = decoder.get("pkts")
    nbytes = decoder.get("bytes")
    span = (a.last_ts or 0) - (a.first_ts or 0)
    alerts = a.by_type.get("alert", 0)
    totals = [
        ("time span", duration(span)),
        ("packets", f"{packets:,}" if packets is not None else f"{a.flow_pkts:,} (in flows)"),
        ("bytes", svg.human(nbytes if nbytes is not None else a.flow_bytes)),
        ("flows", f"{a.by_type.get('flow', 0):,}"),
        ("alerts", f"{alerts - a.anomaly_alerts:,} signature + {a.anomaly_alerts:,} anomaly"),
        ("drops", f"{a.by_type.get('drop', 0):,}"),
        ("decoder events", f"{a.by_type.get('anomaly', 0):,}"),
        ("records", f"{a.records:,}"),
    ]
    p.parts.append(f"<h1>netsentry replay report{': ' + escape(title) if title else ''}</h1>"
                   f'<p class="meta">{escape(str(a.path))} · {ts_text(a.first_ts)} – {ts_text(a.last_ts)} · '
                   f"made by netsentry {__version__} at {ts_text(datetime.now(timezone.utc).timestamp())}</p>")
    if a.truncated_line:
        p.parts.append(f'<p class="note">The file ends with a record cut short (line {a.truncated_line}): '
                       "it was still being written, or damaged. This report covers the complete records before it.</p>")
    p.parts.append('<div class="totals">' + "".join(f"<div>{escape(k)}<b>{escape(v)}</b></div>" for k, v in totals)
                   + "</div>")
    types = ", ".join(f"{t}: {c:,}" for t, c in a.by_type.most_common())
    p.parts.append(f'<p class="meta">Records by type: {escape(types)}</p>')

    # --- timeline
    p.parts.append("<h2 id='timeline'>Timeline</h2>")
    if _timeline_loop_is_bounded(a):
        start, width, rates, al, an, labels = _bins(a)
        p.parts.append(svg.timeline(start, width, rates, al, an, a.marks, labels))
        p.parts.append(f'<p class="legend meta"><span><i style="background:{svg.RATE}"></i>packets/s (flow records, '
                       f"spread over each flow's lifetime; {width}s bins)</span><span><i style=\"background:{svg.ALERT}\"></i>"
                       f'signature alerts/min</span><span><i style="background:{svg.ANOMALY}"></i>anomaly alerts/min '
                       "(▲ each anomaly alert)</span></p>")
    else:
        p.parts.append('<p class="empty">time span over 8 days: timeline left out</p>')

    # --- alerts
    p.parts.append("<h2 id='alerts'>Alerts</h2>")
    sig_rows = _top(a.signatures, lambda r: r.count)
    p.parts.append("<h3>By signature</h3>")
    p.parts.append(svg.bars([(r.info["signature"], r.count, f"{k[0]}:{k[1]}") for k, r in sig_rows[:12]],
                            " alerts", width=900))
    p.parts.append(p.table(["signature", "gid:sid", "category", "sev", "alerts", "records"],
                           [[escape(r.info["signature"]) + (" <b>(anomaly)</b>" if r.info.get("anomaly") else ""),
                             f"{k[0]}:{k[1]}", escape(str(r.info["category"])), str(r.info["severity"]),
                             f"{r.count:,}", p.refs(r.refs)] for k, r in sig_rows], {3, 4}))
    if len(a.signatures) > TOP:
        p.parts.append(f'<p class="meta">{len(a.signatures) - TOP} more signatures not listed.</p>')
    cat_rows = _top(a.categories, lambda r: r.count)
    sev_rows = sorted(a.severities.items())
    p.parts.append("<h3>By category</h3>" + svg.bars([(k, r.count, k) for k, r in cat_rows], " alerts",
                                                        color=svg.PALETTE[3]))
    p.parts.append(p.table(["category", "alerts", "records"],
                           [[escape(k), f"{r.count:,}", p.refs(r.refs)] for k, r in cat_rows], {1}))
    p.parts.append("<h3>By severity</h3>" + svg.bars([(f"severity {k}", r.count, "1 is the most severe")
                                                       for k, r in sev_rows], " alerts", color=svg.PALETTE[6]))
    p.parts.append(p.table(["severity", "alerts", "records"],
                           [[str(k), f"{r.count:,}", p.refs(r.refs)] for k, r in sev_rows], {1}))

    # --- talkers
    p.parts.append("<h2 id='talkers'>Top talkers</h2>")
    hosts = _top_traffic(a.hosts, 0)
    p.parts.append("<h3>Hosts by bytes</h3>" + svg.bars([(k, r.bytes, k) for k, r in hosts[:12]], " bytes",
                                                         color=svg.PALETTE[2]))
    p.parts.append(p.table(["host", "bytes", "flows", "first flow"],
                           [[escape(k), f"{r.bytes:,}", f"{r.flows:,}", p.refs(r.refs)] for k, r in hosts], {1, 2}))
    hosts_f = _top_traffic(a.hosts, 1, 10)
    p.parts.append("<h3>Hosts by flows</h3>")
    p.parts.append(p.table(["host", "flows", "bytes", "first flow"],
                           [[escape(k), f"{r.flows:,}", f"{r.bytes:,}", p.refs(r.refs)] for k, r in hosts_f], {1, 2}))
    for label, by in (("bytes", 0), ("flows", 1)):
        pairs = _top_traffic(a.pairs, by, 10)
        p.parts.append(f"<h3>Pairs (client → server) by {label}</h3>")
        p.parts.append(p.table(["client", "server", "bytes", "flows", "first flow"],
                               [[escape(k[0]), escape(k[1]), f"{r.bytes:,}", f"{r.flows:,}", p.refs(r.refs)]
                                for k, r in pairs], {2, 3}))
    ports = _top_traffic(a.ports, 1)
    p.parts.append("<h3>Destination ports by flows</h3>" +
                   svg.bars([(_port(k), r.flows, "") for k, r in ports[:12]], " flows",
                            color=svg.PALETTE[5]))
    p.parts.append(p.table(["port", "proto", "flows", "bytes", "first flow"],
                           [["-" if k[1] is None else str(k[1]), escape(str(k[0])), f"{r.flows:,}",
                             f"{r.bytes:,}", p.refs(r.refs)]
                            for k, r in ports], {0, 2, 3}))

    # --- assets
    p.parts.append("<h2 id='assets'>Critical assets involved</h2>")
    assets = _top(a.assets, lambda r: r.count)
    rows = []
    for (name, ip), r in assets:
        what = ", ".join(f"{escape(s)} ({c})" for s, c in r.info["signatures"].most_common(5))
        roles = ", ".join(f"{k} {v}" for k, v in r.info["roles"].items())
        rows.append([escape(name), escape(ip), escape(str(r.info["criticality"])), f"{r.count:,}",
                     escape(roles), what, p.refs(r.refs)])
    p.parts.append(p.table(["asset", "ip", "criticality", "alerts", "as", "what hit it", "records"], rows, {3})
                   if rows else '<p class="empty">no alert involved a configured asset (assets: in the configuration)</p>')

    # --- anomalies
    p.parts.append("<h2 id='anomalies'>Anomaly alerts: learned baseline against what was observed</h2>")
    if not a.anomalies:
        p.parts.append('<p class="empty">no anomaly alerts</p>')
    for item in a.anomalies:
        p.parts.append(_anomaly_block(p, item))
    if a.anomaly_alerts > len(a.anomalies):
        p.parts.append(f'<p class="meta">{a.anomaly_alerts - len(a.anomalies):,} more anomaly alerts not listed '
                       "(see the signature table).</p>")

    # --- drops
    p.parts.append("<h2 id='drops'>Drops (IPS mode)</h2>")
    drops = _top(a.drops, lambda r: r.count)
    p.parts.append(p.table(["dropped by", "drop records", "records"],
                           [[escape(k), f"{r.count:,}", p.refs(r.refs)] for k, r in drops], {1})
                   if drops else '<p class="empty">no drop records (not run inline, or nothing dropped)</p>')
    if a.dropped_flows:
        p.parts.append(f'<p class="meta">{a.dropped_flows:,} flows ended with action drop.</p>')

    # --- decoder events
    p.parts.append("<h2 id='decoder'>Decoder events</h2>")
    dec = _top(a.decoder_events, lambda r: r.count, 40)
    counters = _decoder_counters(decoder)
    if dec:
        p.parts.append(p.table(["event", "records", "examples"],
                               [[escape(k), f"{r.count:,}", p.refs(r.refs)] for k, r in dec], {1}))
    if counters:
        p.parts.append("<h3>From the stats record</h3>" +
                       p.table(["counter", "count"], [[escape(k), f"{v:,}"] for k, v in counters], {1}))
    if not dec and not counters:
        p.parts.append('<p class="empty">no decoder events</p>')

    # --- the records linked above
    lines = fetch_lines(a.path, p.linked)
    p.parts.append(f"<h2 id='records'>Records linked above ({len(lines)})</h2>"
                   f'<p class="meta">Each is line N of {escape(a.path.name)}; '
                   "<code>sed -n Np eve.json</code> shows it in the log.</p>")
    for line_no in sorted(lines):
        text = _pretty(lines[line_no])
        p.parts.append(f'<h3 id="rec-{line_no}">line {line_no}</h3><pre>{escape(text)}</pre>')

    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>netsentry report{' - ' + escape(title) if title else ''}</title>"
            f"<style>{CSS}</style></head><body>" + "\n".join(p.parts) + "</body></html>\n")


def _port(key: tuple[str, Any]) -> str:
    proto, port = key
    return str(proto).lower() if port is None else f"{port}/{str(proto).lower()}"


def _pretty(raw: bytes) -> str:
    try:
        return orjson.dumps(orjson.loads(raw), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace")


def _decoder_counters(decoder: dict[str, Any]) -> list[tuple[str, int]]:
    """``decoder.event.*`` counters of the stats record that are non-zero, flattened."""
    out: list[tuple[str, int]] = []

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}.{k}")
        elif isinstance(node, (int, float)) and node:
            out.append((prefix, int(node)))
    walk(decoder.get("event") or {}, "decoder.event")
    if decoder.get("invalid"):
        out.append(("decoder.invalid", int(decoder["invalid"])))
    return sorted(out, key=lambda kv: -kv[1])[:40]


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _anomaly_block(p: _Page, item: dict[str, Any]) -> str:
    ev = item["evidence"]
    unit = str(ev.get("unit", ""))
    observed, threshold = _num(ev.get("observed")), _num(ev.get("threshold"))
    baseline = ev.get("baseline") if isinstance(ev.get("baseline"), dict) else None
    bars: list[tuple[str, float, str]] = []
    if baseline is not None and _num(baseline.get("mean")) is not None:
        mean, sd = float(baseline["mean"]), _num(baseline.get("stddev")) or 0.0
        bars.append(("baseline", mean, f"learned mean {mean:g} ± {sd:g} {unit} over {baseline.get('buckets')} buckets"))
    if threshold is not None:
        bars.append(("threshold", threshold, f"alert threshold {threshold:g} {unit}"))
    if observed is not None:
        bars.append(("observed", observed, f"observed {observed:g} {unit}"))
    facts = [f"<b>{escape(item['signature'])}</b>",
             f"{escape(ts_text(item['ts']))} · {escape(str(item['src'] or '-'))}"
             + (f" → {escape(str(item['dest']))}" if item["dest"] else ""),     # a spike names one host
             f"detector {escape(str(ev.get('detector', '?')))}, key {escape(str(ev.get('key', '?')))}"
             + (f", window {ev['window']:g}s" if _num(ev.get("window")) is not None else "")]
    if baseline is not None:
        facts.append("baseline: " + escape(", ".join(f"{k} {v}" for k, v in baseline.items())))
    else:
        facts.append("fixed threshold (this detector keeps no per-host baseline)")
    facts.append(p.refs([item["ref"]]))
    return (f'<div class="anom"><div>{"<br>".join(facts)}</div>'
            f"<div>{svg.versus(bars, unit)}</div></div>")
