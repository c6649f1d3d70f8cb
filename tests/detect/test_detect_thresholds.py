"""Thresholds, detection_filter (incl. unique_on) and suppress entries, on packet time."""

from __future__ import annotations

import pytest
from detect_helpers import Detect, tcp, udp

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
    frames = timed([pkt()] * 6, [0, 1, 2, 3, 10, 10.5])
    # Suricata 7+: t <= t0 + seconds is inside (t=10 is silent), microseconds count (10.5 restarts)
    assert hits(detect, rule, frames) == [1, 2, 6]


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
    frames = timed([pkt()] * 6, [0, 1, 2, 3, 10.5, 11])
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
    ("rate_filter gen_id 1, sig_id 2, track by_src, count 1, seconds 1, new_action drop", "missing 'timeout'"),
    ("rate_filter gen_id 1, sig_id 2, track by_src, count 1, seconds 1, new_action log, timeout 5",
     "new_action must be one of"),
    ("rate_filter gen_id 1, sig_id 2, track by_either, count 1, seconds 1, new_action drop, timeout 5",
     "track must be one of"),
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


def actions(detect: Detect, rule: str, frames, config, ips: bool = True) -> list[tuple[int, str, str | None]]:
    """(pcap_cnt, alert action, packet verdict) of every sid-1 alert."""
    run = detect.run(rule, frames, config, ips=ips)
    verdicts = {n: p.verdict for n, p in enumerate(run.packets, 1)}
    return [(n, a, verdicts[n]) for n, sid, a in run.alerts if sid == 1]


RATE = "rate_filter gen_id 1, sig_id 1, track by_src, count 2, seconds 10, new_action drop, timeout 5"


def test_rate_filter_drops_a_source_past_the_rate_for_the_timeout(detect: Detect) -> None:
    """Suricata's rate_filter: the 3rd match within 10 s turns the alert into a drop for 5 s;
    every match still alerts. Each packet is its own flow (new source port), so the
    drops are the rate filter's, not a dropped flow's."""
    frames = timed([pkt(sp=1000 + i) for i in range(7)], [0, 1, 2, 3, 7, 9, 20])
    assert actions(detect, RULE.format(opt=""), frames, {"threshold": [RATE]}) == [
        (1, "allowed", None), (2, "allowed", None),
        (3, "blocked", "drop"), (4, "blocked", "drop"), (5, "blocked", "drop"),   # t=2, 3, 7: within 5 s of t=2
        (6, "allowed", None),            # t=9: the timeout is over, this match starts nothing
        (7, "allowed", None),            # t=20: a new window
    ]


def test_rate_filter_tracks_each_source_apart(detect: Detect) -> None:
    frames = timed([pkt("10.0.0.1", sp=1), pkt("10.0.0.1", sp=2), pkt("10.0.0.9", sp=3),
                    pkt("10.0.0.1", sp=4), pkt("10.0.0.9", sp=5)], [0, 1, 2, 3, 4])
    got = actions(detect, RULE.format(opt=""), frames, {"threshold": [RATE]})
    assert [a for _n, a, _v in got] == ["allowed", "allowed", "allowed", "blocked", "allowed"]


def test_rate_filter_in_ids_mode_changes_the_alert_but_drops_nothing(detect: Detect) -> None:
    frames = timed([pkt(sp=1000 + i) for i in range(3)], [0, 1, 2])
    got = actions(detect, RULE.format(opt=""), frames, {"threshold": [RATE]}, ips=False)
    assert got == [(1, "allowed", None), (2, "allowed", None), (3, "allowed", None)]


def test_rate_filter_can_relax_a_drop_rule_to_alert(detect: Detect) -> None:
    rule = 'drop tcp any any -> any any (content:"attack"; sid:1;)\n'
    relax = "rate_filter gen_id 1, sig_id 1, track by_rule, count 1, seconds 60, new_action alert, timeout 60"
    frames = timed([pkt(sp=1000 + i) for i in range(3)], [0, 1, 2])
    assert actions(detect, rule, frames, {"threshold": [relax]}) == [
        (1, "blocked", "drop"), (2, "allowed", None), (3, "allowed", None)]


# --- threshold-file (Suricata's threshold.config) ---------------------------------

def test_threshold_file_entries_apply(detect: Detect, tmp_path) -> None:
    tf = tmp_path / "threshold.config"
    tf.write_text("# site suppressions\n\n"
                  "suppress gen_id 1, sig_id 1, \\\n"
                  "   track by_src, ip 10.0.0.1\n")
    frames = timed([pkt(src="10.0.0.1"), pkt(src="10.0.0.9")], [0, 1])
    assert hits(detect, RULE.format(opt=""), frames, {"threshold-file": str(tf)}) == [2]


def test_threshold_file_adds_to_the_threshold_list(detect: Detect, tmp_path) -> None:
    tf = tmp_path / "threshold.config"
    tf.write_text("suppress gen_id 1, sig_id 1, track by_src, ip 10.0.0.1\n")
    cfg = {"threshold-file": str(tf), "threshold": ["suppress gen_id 1, sig_id 1, track by_src, ip 10.0.0.9"]}
    frames = timed([pkt(src="10.0.0.1"), pkt(src="10.0.0.9"), pkt(src="10.0.0.5")], [0, 1, 2])
    assert hits(detect, RULE.format(opt=""), frames, cfg) == [3]


def test_threshold_file_error_names_file_and_line(detect: Detect, tmp_path) -> None:
    tf = tmp_path / "threshold.config"
    tf.write_text("# ok\nsuppress gen_id 1, sig_id 1\nsuppress gen_id 1, sig_id nope\n")
    with pytest.raises(ThresholdConfigError) as err:
        detect.engine(RULE.format(opt=""), {"threshold-file": str(tf)})
    text = str(err.value)
    assert f"{tf}:3" in text and "'sig_id' must be a number" in text and "threshold-file" in text


def test_missing_threshold_file_is_one_clear_error(detect: Detect, tmp_path) -> None:
    with pytest.raises(ThresholdConfigError) as err:
        detect.engine(RULE.format(opt=""), {"threshold-file": str(tmp_path / "nope.config")})
    assert "threshold-file" in str(err.value) and "nope.config" in str(err.value)


# --- Suricata 7+/8 semantics: inclusive windows, unordered by_both, by_flow, backoff --------

def test_window_end_is_inclusive_and_sub_second(detect: Detect) -> None:
    rule = RULE.format(opt="detection_filter: track by_src, count 1, seconds 2;")
    frames = timed([pkt()] * 4, [0.5, 2.5, 2.6, 5.0])
    # 2.5 <= 0.5 + 2: second match in the window alerts; 2.6 > 2.5: new window, silent; 5.0: new window
    assert hits(detect, rule, frames) == [2]


def test_by_both_is_the_unordered_pair(detect: Detect) -> None:
    rule = RULE.format(opt="threshold: type limit, track by_both, count 1, seconds 60;")
    frames = timed([pkt("10.0.0.1", "10.0.0.2"), pkt("10.0.0.2", "10.0.0.1"), pkt("10.0.0.3", "10.0.0.1")],
                   [0, 1, 2])
    assert hits(detect, rule, frames) == [1, 3]


def test_rate_filter_by_flow_and_by_both(detect: Detect) -> None:
    rule = 'alert tcp any any -> any any (content:"attack"; sid:1;)\n'
    for track in ("by_flow", "by_both"):
        cfg = {"threshold": [f"rate_filter gen_id 1, sig_id 1, track {track}, count 1, seconds 60, "
                             "new_action drop, timeout 10"]}
        frames = timed([pkt("10.0.0.1", "10.0.0.2", 1234, 80), pkt("10.0.0.2", "10.0.0.1", 80, 1234),
                        pkt("10.0.0.1", "10.0.0.2", 1234, 80)], [0, 1, 2])
        got = [a for _n, _s, a in detect.run(rule, frames, cfg, ips=True).alerts]
        # the second match is over the rate: dropped. These packets have no handshake, so
        # they are no TCP session's stream data and the drop is the packet's alone (as
        # Suricata); the third packet is inspected and, within the filter's timeout, the
        # new action drops it too
        assert got == ["allowed", "blocked", "blocked"], track


@pytest.mark.parametrize("count, multiplier, expected", [
    (1, 10, [1, 10]),            # 1st, 10th (100th is beyond the 25 matches)
    (2, 2, [2, 4, 8, 16]),
    (5, 3, [5, 15]),
])
def test_backoff_alerts_on_count_times_powers_of_multiplier(detect: Detect, count: int, multiplier: int,
                                                            expected: list[int]) -> None:
    rule = RULE.format(opt=f"threshold: type backoff, track by_flow, count {count}, multiplier {multiplier};")
    frames = timed([pkt()] * 25, list(range(25)))
    assert hits(detect, rule, frames) == expected


def test_backoff_counts_per_flow(detect: Detect) -> None:
    rule = RULE.format(opt="threshold: type backoff, track by_flow, count 1, multiplier 2;")
    frames = timed([pkt(sp=1), pkt(sp=2), pkt(sp=1), pkt(sp=2)], [0, 1, 2, 3])
    assert hits(detect, rule, frames) == [1, 2, 3, 4]


@pytest.mark.parametrize("opt, reason", [
    ("type backoff, track by_src, count 1, multiplier 2", "only supported with track by_flow"),
    ("type backoff, track by_flow, count 1, multiplier 1", "out of range"),
    ("type backoff, track by_flow, count 0, multiplier 2", "out of range"),
    ("type backoff, track by_flow, count 1, seconds 5, multiplier 2", "takes no 'seconds'"),
    ("type limit, track by_flow, count 1, seconds 5, multiplier 2", "only goes with type backoff"),
])
def test_backoff_option_errors(detect: Detect, tmp_path, opt: str, reason: str) -> None:
    from netsentry.rules import load_rules
    path = tmp_path / "r.rules"
    path.write_text(RULE.format(opt=f"threshold: {opt};"))
    rs = load_rules([path], {})
    assert not rs.signatures and reason in str(rs.errors[0]), rs.errors


def test_unique_on_bitmap_counters_as_suricata_9(detect: Detect) -> None:
    rule = RULE.format(opt="detection_filter: track by_src, count 1, seconds 10, unique_on dst_port;")
    frames = timed([pkt(src="10.0.0.1", dp=1), pkt(src="10.0.0.1", dp=2), pkt(src="10.0.0.7", dp=1)], [0, 1, 2])
    run = detect.run(rule, frames)
    st = run.engine.stats()
    assert st["detect.thresholds.bitmap_memuse"] == 2 * 8192      # one bitmap per tracked source
    assert st["detect.thresholds.bitmap_alloc_fail"] == 0
    run.engine.thresholds.expire(T0 + 60)
    assert run.engine.stats()["detect.thresholds.bitmap_memuse"] == 0


def test_rate_filter_drop_names_its_reason(detect: Detect) -> None:
    """Suricata's drop.reason for a drop a rate_filter made: "threshold detection_filter"."""
    rule = 'alert udp any any -> any any (content:"attack"; sid:1;)\n'
    cfg = {"threshold": ["rate_filter gen_id 1, sig_id 1, track by_src, count 1, seconds 60, "
                         "new_action drop, timeout 10"]}
    frames = timed([udp("10.0.0.1", "10.0.0.2", 5, 6, b"attack")] * 2, [0, 1])
    run = detect.run(rule, frames, cfg, ips=True)
    assert [p.verdict for p in run.packets] == [None, "drop"]
    assert [p.drop_reason for p in run.packets] == [None, "threshold detection_filter"]
