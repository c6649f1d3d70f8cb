"""The replay summary text and the progress bar's terminal-only, after-a-delay behaviour."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

from netsentry.sensor import RunResult
from netsentry.summary import ReplayProgress, format_summary


class Terminal(io.StringIO):
    """A text stream that says it is a terminal (what tqdm and we check)."""

    def isatty(self) -> bool:
        return True


def result(**kw) -> RunResult:
    res = RunResult(packets=1000, elapsed=2.0, flows=12, **kw)
    res.counters = {"decoder.pkts": 1000, "decoder.bytes": 2_500_000,
                    "decoder.event.ipv4.trunc_pkt": 3, "decoder.event.tcp.hlen_too_small": 5,
                    "decoder.event.udp.hlen_invalid": 0}
    return res


def test_summary_lists_the_figures():
    res = result(alerts=4, alerts_by_signature={(1, 10): ["first rule", 3], (1, 20): ["second rule", 1]},
                 anomaly_alerts=Counter({"syn flood": 2}))
    text = format_summary(res, Path("/logs/eve.json"))
    lines = text.splitlines()
    assert lines[0] == "packets        1,000  (2.4 MiB)"
    assert "flows          12" in lines
    assert "alerts         4  (2 signatures)" in lines
    assert "anomaly alerts 2" in lines
    assert "decoder events 8" in lines
    # decoder events by name, most frequent first; zero counters are left out
    i = lines.index("decoder events 8")
    assert lines[i + 1].split() == ["5", "tcp.hlen_too_small"]
    assert lines[i + 2].split() == ["3", "ipv4.trunc_pkt"]
    assert "udp.hlen_invalid" not in text
    j = lines.index("top signatures")
    assert lines[j + 1].split() == ["3", "[1:10]", "first", "rule"]
    assert lines[j + 2].split() == ["1", "[1:20]", "second", "rule"]
    assert "elapsed        2.00 s  (500 packets/s)" in lines
    assert lines[-1] == "eve.json       /logs/eve.json"
    assert "drops" not in text                      # IDS mode: no drop line


def test_summary_shows_drops_in_ips_mode():
    assert "drops          7" in format_summary(result(drops=7), None, inline=True).splitlines()


def test_summary_keeps_the_top_20_signatures():
    sigs = {(1, sid): [f"rule {sid}", 100 - sid] for sid in range(30)}
    text = format_summary(result(alerts=1, alerts_by_signature=sigs), None)
    assert "[1:19] rule 19" in text and "[1:20] rule 20" not in text
    assert "... and 10 more signatures" in text


def test_progress_bar_only_on_a_terminal():
    plain = io.StringIO()
    bar = ReplayProgress(1000, stream=plain, delay=0)
    bar(500)
    bar.close()
    assert plain.getvalue() == ""


def test_progress_bar_waits_for_the_delay_then_draws():
    term = Terminal()
    waiting = ReplayProgress(1000, stream=term, delay=3600)
    waiting(500)
    waiting.close()
    assert term.getvalue() == ""                    # a short replay never shows a bar
    term = Terminal()
    bar = ReplayProgress(1000, stream=term, delay=0)
    bar(500)
    bar(1000)
    bar.close()
    assert "replay" in term.getvalue() and "%" in term.getvalue()
