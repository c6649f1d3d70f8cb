"""Redis output against a real redis-server started by the test on a loopback port."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from receivers import REDIS, RedisServer, free_port, thaw_after_the_capture_loop
from test_syslog import CAPTURE, RULES, closed_counts

pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server not installed (setup.sh installs it)")


def run(tmp: Path, *sets: str, capture: Path = CAPTURE, rules: Path = RULES) -> subprocess.Popen:
    args = [sys.executable, "-m", "netsentry", "replay", str(capture), "-S", str(rules), "-l", str(tmp / "log"),
            "-q", "--set", "outputs.eve-log.types=[alert, stats]", "--set", "outputs.redis.enabled=true",
            "--set", "outputs.redis.types=[alert]"]
    for item in sets:
        args += ["--set", item]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def eve_alerts(tmp: Path) -> list[dict]:
    lines = (tmp / "log" / "eve.json").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["event_type"] == "alert"]


def test_list_mode_holds_every_alert(tmp_path: Path):
    with RedisServer(tmp_path / "redis") as server:
        proc = run(tmp_path, f"outputs.redis.port={server.port}", "outputs.redis.mode=rpush",
                   "outputs.redis.key=ids")
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        client = redis.Redis(port=server.port)
        got = [json.loads(v) for v in client.lrange("ids", 0, -1)]
        client.close()
    records = eve_alerts(tmp_path)
    assert records and got == records
    counts = closed_counts(err)
    assert counts["produced"] == counts["sent"] == len(records) and counts["dropped"] == 0


def test_channel_mode_publishes_every_alert(tmp_path: Path):
    with RedisServer(tmp_path / "redis") as server:
        client = redis.Redis(port=server.port)
        sub = client.pubsub()
        sub.subscribe("alerts")
        # the server has the subscription once it confirms it (a message published before that
        # is lost): wait for the confirmation itself, not for 2 s of it
        confirmed = None
        deadline = time.monotonic() + 60
        while confirmed is None and time.monotonic() < deadline:
            confirmed = sub.get_message(timeout=1)
        assert confirmed is not None and confirmed["type"] == "subscribe", confirmed
        got: list[dict] = []

        def listen() -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                msg = sub.get_message(timeout=0.2)
                if msg and msg["type"] == "message":
                    got.append(json.loads(msg["data"]))
                if stop.is_set() and msg is None:
                    return

        stop = threading.Event()
        listener = threading.Thread(target=listen)
        listener.start()
        proc = run(tmp_path, f"outputs.redis.port={server.port}", "outputs.redis.mode=channel",
                   "outputs.redis.key=alerts")
        _, err = proc.communicate(timeout=120)
        stop.set()
        listener.join(70)
        sub.close()
        client.close()
    assert proc.returncode == 0, err
    records = eve_alerts(tmp_path)
    assert records and got == records


def test_outage_redis_frozen_during_a_replay(tmp_path: Path):
    from test_logrotate import udp_pcap

    capture = tmp_path / "many.pcap"
    udp_pcap(capture, 20_000)
    rules = tmp_path / "every.rules"
    rules.write_text('alert udp any any -> any any (msg:"every packet"; sid:1; classtype:bad-unknown;)\n')
    with RedisServer(tmp_path / "redis") as server:
        server.freeze()
        proc = run(tmp_path, f"outputs.redis.port={server.port}", "outputs.redis.queue-size=2000",
                   "outputs.redis.drain-timeout=60.0", "anomaly.enabled=false", capture=capture, rules=rules)
        err = thaw_after_the_capture_loop(proc, tmp_path / "log" / "eve.json", server)
        assert proc.returncode == 0, err
        client = redis.Redis(port=server.port)
        stored = [json.loads(v)["pcap_cnt"] for v in client.lrange("netsentry", 0, -1)]
        client.close()
    counts = closed_counts(err)
    assert counts["produced"] == len(eve_alerts(tmp_path)) == 20_000
    assert counts["sent"] + counts["dropped"] == counts["produced"] and counts["dropped"] > 0
    assert len(stored) == len(set(stored)) == counts["sent"]


def test_redis_down_at_start_is_a_logged_retry_and_bad_mode_a_config_error(tmp_path: Path):
    proc = run(tmp_path, f"outputs.redis.port={free_port()}", "outputs.redis.drain-timeout=0.5")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "output receiver unreachable, retrying" in err and "Traceback" not in err
    counts = closed_counts(err)
    assert counts["sent"] == 0 and counts["dropped"] == counts["produced"] > 0
    proc = run(tmp_path, "outputs.redis.mode=stream")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert [ln for ln in err.splitlines() if ln.startswith("config error")] == [
        "config error: outputs.redis.mode: unknown value 'stream' (known: list, lpush, rpush, channel, publish)"]
