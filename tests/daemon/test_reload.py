"""Rule reload: built beside the running set, swapped between two packets, bad sets refused."""

from __future__ import annotations

import gc
import threading
import time
import weakref

import pytest
from daemon_helpers import Collect, LiveLike, config_for, frame, write_rules

from netsentry.cli import load_ruleset
from netsentry.reload import RuleReloader, build_ruleset
from netsentry.sensor import Sensor

RULE_A = 'alert udp any any -> any any (msg:"A"; content:"aaa"; sid:1; rev:1;)'
RULE_B = 'alert udp any any -> any any (msg:"B"; content:"bbb"; sid:2; rev:1;)'
BAD = 'alert udp any any -> any any (msg:"bad"; content:"x"; depth:nope; sid:3;)'


def running_sensor(tmp_path, rules):
    cfg = config_for(rules)
    out = Collect()
    sensor = Sensor(cfg, [out], load_ruleset(cfg))
    sensor.live = True
    return sensor, out, cfg


def test_valid_reload_takes_effect_between_packets_without_losing_any(tmp_path):
    rules = write_rules(tmp_path / "r.rules", RULE_A)
    sensor, out, cfg = running_sensor(tmp_path, rules)
    reloader = RuleReloader(sensor, lambda: config_for(rules))
    frames = [frame(b"aaa bbb")] * 10

    def between(i: int) -> None:
        if i == 5:
            write_rules(rules, RULE_B)      # the admin edits the file, then reloads
            reloader.request(background=False)
    source = LiveLike(frames, between)
    result = sensor.run(source)
    assert result.packets == 10
    assert source.iterations == 1                           # one generator: nothing re-read, nothing skipped
    # the source polls (and the reload is asked for) before handing over packet 6: the new
    # rules take it, carried over into the new loop, and every later one
    assert out.alert_sids() == [(n, 1) for n in range(1, 6)] + [(n, 2) for n in range(6, 11)]
    assert reloader.counters == {"netsentry.reload.success": 1, "netsentry.reload.failed": 0}
    sensor.counter_sources.append(reloader.stats)
    assert sensor.counters()["netsentry.reload.success"] == 1


def test_background_build_swaps_when_done(tmp_path):
    rules = write_rules(tmp_path / "r.rules", RULE_A)
    sensor, out, cfg = running_sensor(tmp_path, rules)
    reloader = RuleReloader(sensor, lambda: config_for(rules))
    done = threading.Event()
    reloader.wakeup = done.set

    def between(i: int) -> None:
        if i == 2:
            write_rules(rules, RULE_B)
            reloader.request()                # the build thread starts
            assert done.wait(30)
        reloader.poll()
    sensor.run(LiveLike([frame(b"aaa bbb")] * 6, between))
    assert out.alert_sids() == [(1, 1), (2, 1), (3, 2), (4, 2), (5, 2), (6, 2)]


@pytest.mark.parametrize("damage,expect", [
    (lambda rules, tmp: write_rules(rules, RULE_B, BAD), "r.rules:2 sid 3: "),
    (lambda rules, tmp: rules.unlink(), "r.rules: cannot read rule file"),
    (lambda rules, tmp: (tmp / "disable.conf").write_text("re:(\n"), "disable.conf:1: disable-conf: bad regular"),
])
def test_bad_reload_is_reported_and_the_running_rules_keep_alerting(tmp_path, damage, expect):
    rules = write_rules(tmp_path / "r.rules", RULE_A)
    sensor, out, _ = running_sensor(tmp_path, rules)

    def new_config():
        cfg = config_for(rules)
        if (tmp_path / "disable.conf").exists():
            cfg["rule-management"]["disable-conf"] = str(tmp_path / "disable.conf")
        return cfg
    reloader = RuleReloader(sensor, new_config)
    answers = []

    def between(i: int) -> None:
        if i == 3:
            damage(rules, tmp_path)
            reloader.request(answers.append, background=False)
    sensor.run(LiveLike([frame(b"aaa bbb")] * 6, between))
    assert out.alert_sids() == [(n, 1) for n in range(1, 7)]
    assert len(answers) == 1 and answers[0]["ok"] is False
    assert expect in answers[0]["error"]
    assert "\n" not in answers[0]["error"]
    assert reloader.counters["netsentry.reload.failed"] == 1
    assert reloader.last_error is not None


def test_a_bad_config_file_on_reload_is_refused(tmp_path):
    rules = write_rules(tmp_path / "r.rules", RULE_A)
    sensor, out, _ = running_sensor(tmp_path, rules)
    from netsentry.config import load_config
    bad = tmp_path / "bad.yaml"
    bad.write_text("detect:\n  prefilter: nonsense\n")
    answers = []
    reloader = RuleReloader(sensor, lambda: {**load_config(bad), "rule-files": [str(rules)]})
    reloader.request(answers.append, background=False)
    assert answers[0]["ok"] is False and "detect.prefilter" in answers[0]["error"]
    assert [s.sid for s in sensor.ruleset.signatures] == [1]


def test_unsupported_rules_do_not_block_a_reload(tmp_path):
    rules = write_rules(tmp_path / "r.rules", RULE_A)
    unsupported = 'alert tcp any any -> any any (msg:"app"; pop3.command; content:"x"; sid:9;)'
    write_rules(rules, RULE_B, unsupported)
    built, engine = build_ruleset(config_for(rules))
    assert engine is not None
    assert [s.sid for s in built.ruleset.signatures] == [2]


def test_reload_applies_vars_and_threshold_from_the_new_config(tmp_path):
    rules = write_rules(tmp_path / "r.rules", 'alert udp $HOME_NET any -> any any (msg:"h"; content:"aaa"; sid:5;)')
    sensor, out, _ = running_sensor(tmp_path, rules)

    def narrower():
        cfg = config_for(rules)
        cfg["vars"]["address-groups"]["HOME_NET"] = "[192.168.7.0/24]"    # 10.0.0.1 is no longer home
        return cfg
    reloader = RuleReloader(sensor, narrower)
    sensor.run(LiveLike([frame(b"aaa")] * 4, lambda i: reloader.request(background=False) if i == 2 else None))
    assert out.alert_sids() == [(1, 5), (2, 5)]


def test_memory_returns_to_one_ruleset_after_reloads(tmp_path):
    many = [f'alert udp any any -> any {1000 + i} (msg:"r{i}"; content:"pattern-{i:05d}"; sid:{100 + i};)'
            for i in range(400)]
    rules = write_rules(tmp_path / "r.rules", *many)
    sensor, out, _ = running_sensor(tmp_path, rules)
    reloader = RuleReloader(sensor, lambda: config_for(rules))
    # a flow inspected by the first engine, so flow.detect refers to it
    sensor.run(LiveLike([frame(b"zzz", sport=1000 + i) for i in range(50)]))
    first_ruleset = weakref.ref(sensor.ruleset)
    first_engine = weakref.ref(sensor.signatures)

    import tracemalloc
    tracemalloc.start()
    try:
        reloader.request(background=False)
        gc.collect()
        after_one = tracemalloc.get_traced_memory()[0]
        for _ in range(4):
            reloader.request(background=False)
        gc.collect()
        after_five = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert first_ruleset() is None and first_engine() is None
    assert reloader.counters["netsentry.reload.success"] == 5
    # four more reloads left no ruleset behind (one ruleset here is well over 1 MB)
    assert after_five - after_one < 300_000, (after_one, after_five)


def test_a_request_during_a_build_is_answered_by_a_second_build(tmp_path):
    rules = write_rules(tmp_path / "r.rules", RULE_A)
    sensor, out, _ = running_sensor(tmp_path, rules)
    release = threading.Event()

    def slow_config():
        release.wait(10)
        return config_for(rules)
    reloader = RuleReloader(sensor, slow_config)
    first, second = [], []
    reloader.request(first.append)
    reloader.request(second.append)          # while the first build is still running
    release.set()
    deadline = time.monotonic() + 30
    while not (first and second) and time.monotonic() < deadline:
        reloader.poll()
        time.sleep(0.01)
    assert first[0]["ok"] and second[0]["ok"]
    assert reloader.counters["netsentry.reload.success"] == 2
