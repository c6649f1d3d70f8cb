"""A small inline SVG writer: the report's charts as text, no library, no script.

Why not a charting library (docs/report.md has the longer answer): the
report must open offline, print, and stay small; the charts it needs are
two shapes (a timeline and horizontal bars). A JavaScript library would
have to be inlined (hundreds of kB) and would draw only when scripts run;
matplotlib would add a large dependency and embed raster or verbose SVG.
Static SVG renders in every browser, prints sharply, and carries its own
tooltips (``<title>``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

PALETTE = ("#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b7791f", "#2c7a7b", "#9b2c2c", "#4a5568")
ALERT = "#dd6b20"
ANOMALY = "#c53030"
RATE = "#3182ce"


def nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 x 10^k at or above `value` (axis tops that read well)."""
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return step * exp
    return 10 * exp  # pragma: no cover


def human(value: float) -> str:
    """12,345 -> 12.3k; for axis labels and bar ends."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:.3g}" if value != int(value) else str(int(value))


def bars(items: Sequence[tuple[str, float, str]], unit: str = "", width: int = 640,
         color: str = PALETTE[0]) -> str:
    """Horizontal bars: (label, value, tooltip) per row, largest first as given."""
    if not items:
        return '<p class="empty">nothing to chart</p>'
    row, label_w, pad = 22, 260, 60
    top = max(v for _, v, _ in items) or 1
    scale = (width - label_w - pad) / top
    height = row * len(items) + 4
    out = [f'<svg class="chart bars" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img">']
    for i, (label, value, tip) in enumerate(items):
        y = i * row + 2
        w = max(1.0, value * scale) if value > 0 else 0
        text = label if len(label) <= 36 else label[:35] + "…"
        out.append(f'<g><title>{escape(tip or label)}: {value:,.0f}{escape(unit)}</title>'
                   f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{escape(text)}</text>'
                   f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="{color}"/>'
                   f'<text x="{label_w + w + 4:.1f}" y="{y + 15}">{human(value)}</text></g>')
    out.append("</svg>")
    return "".join(out)


def timeline(start: float, width_s: float, rates: Sequence[float], alerts: Sequence[float],
             anomalies: Sequence[float], marks: Sequence[tuple[float, str]],
             labels: Sequence[str], width: int = 900, height: int = 260) -> str:
    """Packets/s as an area (left axis), alerts/min as bars (right axis), anomaly alerts
    as red bars on top of them and red triangles at their exact times."""
    left, right, top, bottom = 60, 60, 12, 36
    pw, ph = width - left - right, height - top - bottom
    n = max(1, len(rates))
    step = pw / n
    rmax = nice_max(max(rates, default=0))
    amax = nice_max(max((a + b for a, b in zip(alerts, anomalies, strict=False)), default=0))
    out = [f'<svg class="chart timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img">']
    for k in range(5):           # grid and both axes' labels
        y = top + ph - ph * k / 4
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                   f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" fill="{RATE}">{human(rmax * k / 4)}</text>'
                   f'<text x="{left + pw + 4}" y="{y + 4:.1f}" fill="{ALERT}">{human(amax * k / 4)}</text>')
    for i, (a, b) in enumerate(zip(alerts, anomalies, strict=False)):
        x = left + i * step
        bw = max(1.0, step * 0.8)
        ha, hb = ph * a / amax, ph * b / amax
        tip = f"{labels[i] if i < len(labels) else ''}: {a:g} signature + {b:g} anomaly alerts/min"
        if a or b:
            out.append(f'<g><title>{escape(tip)}</title>'
                       f'<rect x="{x:.1f}" y="{top + ph - ha:.1f}" width="{bw:.1f}" height="{ha:.1f}" fill="{ALERT}" opacity="0.75"/>'
                       f'<rect x="{x:.1f}" y="{top + ph - ha - hb:.1f}" width="{bw:.1f}" height="{hb:.1f}" fill="{ANOMALY}"/></g>')
    pts = [f"{left:.1f},{top + ph:.1f}"]
    for i, r in enumerate(rates):
        x = left + (i + 0.5) * step
        pts.append(f"{x:.1f},{top + ph - ph * r / rmax:.1f}")
    pts.append(f"{left + pw:.1f},{top + ph:.1f}")
    out.append(f'<polygon points="{" ".join(pts)}" fill="{RATE}" fill-opacity="0.25" stroke="{RATE}" '
               f'stroke-width="1.5"><title>packets/s (from flow records)</title></polygon>')
    span = width_s * n
    for ts, sig in marks:
        x = left + pw * (ts - start) / span if span else left
        out.append(f'<path d="M{x:.1f},{top + ph + 2} l-4,8 h8 z" fill="{ANOMALY}">'
                   f'<title>{escape(sig)}</title></path>')
    for i in range(0, n, max(1, n // 6)):     # a few time labels
        out.append(f'<text x="{left + i * step:.1f}" y="{height - 6}" class="tick">{escape(labels[i])}</text>')
    out.append(f'<text x="{left}" y="{top - 2}" fill="{RATE}" class="axis">packets/s</text>'
               f'<text x="{left + pw}" y="{top - 2}" fill="{ALERT}" text-anchor="end" class="axis">alerts/min</text>')
    out.append("</svg>")
    return "".join(out)


def versus(items: Sequence[tuple[str, float, str]], unit: str, width: int = 420) -> str:
    """A few labelled bars on one scale: baseline vs threshold vs observed for one anomaly."""
    colors = {"baseline": "#718096", "threshold": ALERT, "observed": ANOMALY}
    if not items:
        return '<p class="empty">nothing to chart</p>'
    return _versus(items, unit, width, colors)


def _versus(items: Sequence[tuple[str, float, str]], unit: str, width: int, colors: dict[str, str]) -> str:
    row, label_w, pad = 20, 80, 150      # pad: room for "1.23k distinct ports" after the longest bar
    top = max(v for _, v, _ in items) or 1
    scale = (width - label_w - pad) / top
    height = row * len(items) + 4
    out = [f'<svg class="chart versus" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img">']
    for i, (label, value, tip) in enumerate(items):
        y = i * row + 2
        w = max(1.0, value * scale)
        out.append(f'<g><title>{escape(tip)}</title><text x="{label_w - 6}" y="{y + 14}" text-anchor="end">'
                   f'{escape(label)}</text><rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" '
                   f'fill="{colors.get(label, PALETTE[0])}"/><text x="{label_w + w + 4:.1f}" y="{y + 14}">'
                   f'{human(value)} {escape(unit)}</text></g>')
    out.append("</svg>")
    return "".join(out)
