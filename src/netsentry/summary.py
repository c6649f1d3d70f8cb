"""What a replay prints for a person: the end-of-run summary and the progress bar.

The summary goes to stdout (it is the replay's answer; errors and the
daemon's log lines go to stderr), the progress bar to stderr and only on a
terminal, only once a replay has run for a couple of seconds: short replays
should not flash a bar.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from netsentry.sensor import RunResult

TOP_SIGNATURES = 20
PROGRESS_DELAY = 2.0     # seconds before a bar appears


def decoder_events(counters: dict[str, int | float]) -> dict[str, int | float]:
    """``decoder.event.<name>`` counters that fired, by name."""
    prefix = "decoder.event."
    return {k[len(prefix):]: v for k, v in counters.items() if k.startswith(prefix) and v}


def format_summary(res: RunResult, eve_path: Path | None, inline: bool = False) -> str:
    """The replay summary as text (several lines, no trailing newline)."""
    c = res.counters
    pkts = int(c.get("decoder.pkts", res.packets))
    nbytes = int(c.get("decoder.bytes", 0))
    rate = pkts / res.elapsed if res.elapsed > 0 else 0.0
    lines = [
        f"packets        {pkts:,}  ({_size(nbytes)})",
        f"flows          {res.flows:,}",
        f"alerts         {res.alerts:,}"
        + (f"  ({len(res.alerts_by_signature)} signatures)" if res.alerts_by_signature else ""),
    ]
    if inline:
        lines.append(f"drops          {res.drops:,}")
    anomalies = sum(res.anomaly_alerts.values())
    lines.append(f"anomaly alerts {anomalies:,}")
    events = decoder_events(c)
    lines.append(f"decoder events {int(sum(events.values())):,}")
    for name, count in sorted(events.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {int(count):>8,}  {name}")
    if res.alerts_by_signature:
        lines.append("top signatures")
        ranked = sorted(res.alerts_by_signature.items(), key=lambda kv: (-kv[1][1], kv[0]))
        for (gid, sid), (msg, count) in ranked[:TOP_SIGNATURES]:
            lines.append(f"  {count:>8,}  [{gid}:{sid}] {msg}")
        if len(ranked) > TOP_SIGNATURES:
            lines.append(f"  ... and {len(ranked) - TOP_SIGNATURES} more signatures")
    if res.anomaly_alerts:
        lines.append("anomalies")
        for name, count in res.anomaly_alerts.most_common(TOP_SIGNATURES):
            lines.append(f"  {count:>8,}  {name}")
    lines.append(f"elapsed        {res.elapsed:.2f} s  ({rate:,.0f} packets/s)")
    if eve_path is not None:
        lines.append(f"eve.json       {eve_path}")
    return "\n".join(lines)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)  # pragma: no cover


class ReplayProgress:
    """Progress callback for `Sensor.run`, fed the bytes read so far.

    The bar is created lazily, once the replay has run `PROGRESS_DELAY`
    seconds, and only when `stream` is a terminal.
    """

    def __init__(self, total: int, stream: TextIO | None = None, delay: float = PROGRESS_DELAY) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _isatty(self.stream)
        self._start = time.monotonic()
        self._delay = delay
        self._bar: Any = None

    def __call__(self, bytes_read: int) -> None:
        if not self.enabled:
            return
        bar = self._bar
        if bar is None:
            if time.monotonic() - self._start < self._delay:
                return
            from tqdm import tqdm
            # shutil falls back to 80 columns where the terminal reports a width of 0
            # (`script` without a controlling tty), which would make tqdm draw nothing.
            # `initial` keeps the rate honest: the bytes before the bar appeared are not "1 s" of work.
            bar = self._bar = tqdm(total=self.total, initial=bytes_read, unit="B", unit_scale=True,
                                   unit_divisor=1024, file=self.stream, desc="replay", leave=False,
                                   ncols=shutil.get_terminal_size().columns)
            return
        bar.update(bytes_read - bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
