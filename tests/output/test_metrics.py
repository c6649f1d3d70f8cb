"""The Prometheus endpoint serves the latest stats record's counters, on loopback."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from netsentry.config import ConfigError
from netsentry.output import OutputContext, open_outputs
from netsentry.output.stats import stats_event


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_scrape_shows_the_latest_stats_record(tmp_path: Path):
    (out,) = open_outputs({"metrics": {"enabled": True, "listen": "127.0.0.1", "port": 0}},
                          OutputContext(logdir=tmp_path))
    try:
        assert out.wants("stats") and not out.wants("alert")
        assert not any(k.startswith("netsentry_decoder") for k in scrape(out.port))
        out.emit(stats_event(1.0, 3, {"decoder.pkts": 7, "detect.rules_loaded": 83,
                                      "outputs.syslog.0.dropped": 2}))
        got = scrape(out.port)
        assert got["netsentry_decoder_pkts"] == 7 and got["netsentry_uptime"] == 3
        assert got["netsentry_detect_rules_loaded"] == 83           # the running ruleset's size
        assert got["netsentry_outputs_syslog_0_dropped"] == 2
        out.emit(stats_event(2.0, 4, {"decoder.pkts": 9}))
        assert scrape(out.port)["netsentry_decoder_pkts"] == 9
    finally:
        out.close()


def test_bad_port_names_the_key(tmp_path: Path):
    with pytest.raises(ConfigError, match="outputs.metrics.port"):
        open_outputs({"metrics": {"enabled": True, "port": 70000}}, OutputContext(logdir=tmp_path))
