"""Thresholds, detection_filter (incl. unique_on) and suppress entries, on packet time."""

from __future__ import annotations

import pytest
from detect_helpers import Detect, tcp

from netsentry.detect.threshold import ThresholdConfigError, parse_config

T0 = 1_700_000_000.0


def hits(detect: Detect, rule: str, frames, config=None) -> list[int]:
    """pcap_cnt of every alert of sid 1."""
    run = detect.run(rule, frames, config)
    return [n for n, sid, _a in run.alerts if sid == 1]


def pkt(src: str = "10.0.0.1", dst: str = "10.0.0.2", sp: int = 1234, dp: int = 80) -> bytes:
    return tcp(src, dst, sp, dp, b"attack")


def timed(frames: list[bytes], times: list[float]) -> list[tuple[float, bytes]]:
    return [(T0 + t, f) for t, f in zip(times, frames)]


RULE = 'alert tcp any any -> any any (content:"attack"; {opt} sid:1;)\n'


def test_limit_alerts_first_count_per_window(detect: Detect) -> None:
    rule = RULE.format(opt="threshold: type limit, track by_src, count 2, seconds 10;")
    frames = timed([pkt()] * 6, [0, 1, 2, 3, 10, 11])
    assert hits(detect, rule, frames) == [1, 2, 5, 6]   # window restarts at t=10


def test_threshold_alerts_every_countth(detect: Detect) -> None:
    rule = RULE.format(opt="threshold: type threshold, track by_src, count 3, seconds 60;")
    frames = timed([pkt()] * 7, [0, 1, 2, 3, 4, 5, 6])
    assert hits(detect, rule, frames) == [3, 6]


def test_threshold_window_expiry_restarts_count(detect: Detect) -> None:
    rule = RULE.format(opt="threshold: type threshold, track by_src, count 2, seconds 5;")
    frames = timed([pkt()] * 4, [0, 6, 7, 8])
    # t=0 starts, t=6 expired -> restart at 1, t=7 -> 2: alert, t=8 -> 1 (count reset after alert)
    assert hits(detect, rule, frames) == [3]


def test_both_alerts_once_per_window_after_count(detect: Detect) -> None:
    rule = RULE.format(opt="threshold: type both, track by_src, count 2, seconds 10;")
    frames = timed([pkt()] * 6, [0, 1, 2, 3, 10, 11])
    assert hits(detect, rule, frames) == [2, 6]


@pytest.mark.parametrize("track, expected", [
    ("by_src", [1, 3]),        # sources A, A, B, B -> first of each source
    ("by_dst", [1, 2]),        # destinations X, Y, X, Y
    ("by_rule", [1]),          # one counter for the rule
    ("by_both", [1, 2, 3, 4]),  # (A,X) (A,Y) (B,X) (B,Y) all distinct
])
def test_tracks(detect: Detect, track: str, expected: list[int]) -> None:
    rule = RULE.format(opt=f"threshold: type limit, track {track}, count 1, seconds 60;")
    frames = [pkt("10.0.0.1", "10.9.0.1"), pkt("10.0.0.1", "10.9.0.2"),
              pkt("10.0.0.2", "10.9.0.1"), pkt("10.0.0.2", "10.9.0.2")]
    assert hits(detect, rule, frames) == expected


def test_detection_filter_alerts_after_count(detect: Detect) -> None:
    rule = RULE.format(opt="detection_filter: track by_src, count 2, seconds 10;")
    frames = timed([pkt()] * 6, [0, 1, 2, 3, 11, 12])
    assert hits(detect, rule, frames) == [3, 4]    # 3rd and 4th in the window; t=11 starts a new one


def test_detection_filter_unique_on_counts_distinct_ports(detect: Detect) -> None:
    rule = RULE.format(opt="detection_filter: track by_src, count 2, seconds 60, unique_on src_port;")
    frames = [pkt(sp=1000), pkt(sp=1000), pkt(sp=1001), pkt(sp=1001), pkt(sp=1002), pkt(sp=1002),
              pkt(sp=1003)]
    assert hits(detect, rule, frames) == [5, 7]    # 3rd and 4th distinct port; repeats never count


def test_detection_filter_unique_on_dst_port(detect: Detect) -> None:
    rule = RULE.format(opt="detection_filter: track by_src, count 1, seconds 60, unique_on dst_port;")
    frames = [pkt(dp=80), pkt(dp=80), pkt(dp=81)]
    assert hits(detect, rule, frames) == [3]


def test_suppress_entries(detect: Detect) -> None:
    rule = RULE.format(opt="")
    frames = [pkt("10.0.0.1", "10.9.0.1"), pkt("10.0.0.2", "10.9.0.1"), pkt("10.0.0.3", "10.1.2.3")]
    cfg = {"threshold": ["suppress gen_id 1, sig_id 1, track by_src, ip 10.0.0.1"]}
    assert hits(detect, rule, frames, cfg) == [2, 3]
    cfg = {"threshold": ["suppress gen_id 1, sig_id 1, track by_dst, ip [10.1.0.0/16]"]}
    assert hits(detect, rule, frames, cfg) == [1, 2]
    cfg = {"threshold": ["suppress gen_id 1, sig_id 1, track by_either, ip 10.0.0.2"]}
    assert hits(detect, rule, frames, cfg) == [1, 3]
    cfg = {"threshold": ["suppress gen_id 1, sig_id 1"]}
    assert hits(detect, rule, frames, cfg) == []
    cfg = {"threshold": ["suppress gen_id 1, sig_id 2"]}
    assert hits(detect, rule, frames, cfg) == [1, 2, 3]


def test_config_threshold_overrides_rule_threshold(detect: Detect) -> None:
    rule = RULE.format(opt="threshold: type limit, track by_rule, count 1, seconds 60;")
    frames = [pkt()] * 4
    assert hits(detect, rule, frames) == [1]
    cfg = {"threshold": ["threshold gen_id 1, sig_id 1, type limit, track by_src, count 3, seconds 60"]}
    assert hits(detect, rule, frames, cfg) == [1, 2, 3]


def test_suppressed_alerts_are_counted(detect: Detect) -> None:
    rule = RULE.format(opt="threshold: type limit, track by_src, count 1, seconds 60;")
    run = detect.run(rule, [pkt()] * 3)
    st = run.engine.stats()
    assert st["detect.alert"] == 1
    assert st["detect.alerts_suppressed"] == 2


@pytest.mark.parametrize("entry, message", [
    ("suppress gen_id 1", "missing 'sig_id'"),
    ("suppress gen_id 1, sig_id x", "'sig_id' must be a number"),
    ("suppress gen_id 1, sig_id 2, track by_src", "'track' needs 'ip'"),
    ("threshold gen_id 1, sig_id 2, type often, track by_src, count 1, seconds 1", "type must be one of"),
    ("rate_filter gen_id 1, sig_id 2, track by_src, count 1, seconds 1", "rate_filter is not supported"),
    ("frobnicate gen_id 1, sig_id 2", "unknown entry kind"),
])
def test_bad_entries_name_index_and_reason(entry: str, message: str) -> None:
    with pytest.raises(ThresholdConfigError, match=r"threshold\[1\].*" + message):
        parse_config(["suppress gen_id 1, sig_id 1", entry])


def test_closed_windows_are_forgotten_without_changing_verdicts(detect: Detect) -> None:
    rule = RULE.format(opt="threshold: type limit, track by_src, count 1, seconds 10;")
    eng = detect.engine(rule)
    from netsentry.decode import Decoder
    dec = Decoder()
    frames = [(T0, pkt("10.0.0.1")), (T0, pkt("10.0.0.2")), (T0 + 11, pkt("10.0.0.3"))]
    alerted = []
    for ts, data in frames:
        p = dec.decode(data, 1)
        p.ts = ts
        alerted.append(bool(eng.inspect(p, None)))
    assert alerted == [True, True, True]
    assert len(eng.thresholds) == 3
    eng.thresholds.expire(T0 + 11)
    assert len(eng.thresholds) == 1          # only 10.0.0.3's window is still open
