"""The control socket and `netsentry ctl`: a real unix socket, the real sensor, commands drained
in the "main thread" the way the daemon's wake-ups drain them."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import stat
import threading
import time

import pytest
from daemon_helpers import Collect, LiveLike, config_for, frame, write_rules

from netsentry.cli import load_ruleset, main
from netsentry.control import ControlServer, request
from netsentry.operations import Operations
from netsentry.sensor import Sensor

RULE_A = 'alert udp any any -> any any (msg:"A"; content:"aaa"; sid:1; rev:1;)'
RULE_B = 'alert udp any any -> any any (msg:"B"; content:"bbb"; sid:2; rev:1;)'


@pytest.fixture
def ops(tmp_path):
    """An Operations on a real sensor. The daemon calls `tick` from the capture loop in the main
    thread; the tests do the same (`pump`) while the client runs in another thread."""
    from netsentry.log import setup_logging
    setup_logging("info", "json", io.StringIO())       # the daemon's log lines stay out of ctl's stdout
    rules = write_rules(tmp_path / "r.rules", RULE_A)
    path = str(tmp_path / "run" / "ns.sock")
    cfg = config_for(rules, f"unix-command.filename={path}")
    cfg["anomaly"]["ignore-sources"] = ["192.0.2.128/25"]          # the allow list
    sensor = Sensor(cfg, [Collect()], load_ruleset(cfg))
    operations = Operations(sensor, cfg, lambda: config_for(rules, f"unix-command.filename={path}"))
    operations.start()
    operations.rules = rules
    operations.path = path
    try:
        yield operations
    finally:
        operations.stopping()


def pump(ops, client, timeout=30.0):
    """Run `client` in a thread while the main thread does the daemon's wake-ups; its result."""
    box = []
    t = threading.Thread(target=lambda: box.append(client()), daemon=True)
    t.start()
    deadline = time.monotonic() + timeout
    while t.is_alive() and time.monotonic() < deadline:
        ops.tick(time.time())
        time.sleep(0.005)
    t.join(1)
    assert box, "the client did not finish"
    return box[0]


def ctl(capsys, ops, *words):
    rc = pump(ops, lambda: main(["ctl", "--socket", ops.path, *words]))
    out, err = capsys.readouterr()
    return rc, (json.loads(out) if out.strip() else None), err.strip()


def test_socket_is_0600_and_removed_on_close(ops):
    st = os.stat(ops.path)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    ops.control.close()
    assert not os.path.exists(ops.path)


def test_stats(ops, capsys):
    rc, answer, err = ctl(capsys, ops, "stats")
    assert rc == 0, err
    assert answer["detect.alert"] == 0 and "flow.active" in answer
    assert answer["netsentry.control.commands"] == 1
    assert answer["netsentry.blocklist.active"] == 0


def test_blocklist_add_list_del(ops, capsys):
    assert ctl(capsys, ops, "blocklist", "add", "192.0.2.7", "600")[0] == 0
    assert ctl(capsys, ops, "blocklist", "add", "2001:db8::1")[0] == 0
    rc, rows, _ = ctl(capsys, ops, "blocklist", "list")
    assert rc == 0
    # soonest expiry first: the default TTL (anomaly.block-ttl, 300 s) before 600 s
    assert [(r["address"], r["reason"]) for r in rows] == [("2001:db8::1", "manual (ctl)"),
                                                           ("192.0.2.7", "manual (ctl)")]
    assert rows[0]["expires_in"] == pytest.approx(ops.responder.blocklist.ttl, abs=10)
    assert 590 < rows[1]["expires_in"] <= 600
    assert ctl(capsys, ops, "blocklist", "del", "192.0.2.7")[0] == 0
    rc, rows, _ = ctl(capsys, ops, "blocklist", "list")
    assert [r["address"] for r in rows] == ["2001:db8::1"]


def test_blocklist_ttl_expiry(ops, capsys):
    assert ctl(capsys, ops, "blocklist", "add", "192.0.2.8", "0.3")[0] == 0
    assert len(ops.responder.blocklist) == 1
    deadline = time.monotonic() + 5
    while len(ops.responder.blocklist) and time.monotonic() < deadline:
        ops.tick(time.time())
        time.sleep(0.05)
    assert len(ops.responder.blocklist) == 0               # expired by the wake-ups alone
    assert ops.responder.blocklist.stats()["blocklist.expired"] == 1


@pytest.mark.parametrize("words,message", [
    (["blocklist", "del", "192.0.2.99"], "192.0.2.99 is not in the block list"),
    (["blocklist", "add", "192.0.2.200"], "192.0.2.200 is in the allow list"),
])
def test_refused_commands_change_nothing(ops, capsys, words, message):
    ops.responder.blocklist.add(bytes([198, 51, 100, 1]), "keep")
    before = ops.responder.blocklist.listing(now=0)
    rc, out, err = ctl(capsys, ops, *words)
    assert rc == 1 and out is None
    assert message in err and "\n" not in err
    assert ops.responder.blocklist.listing(now=0) == before


@pytest.mark.parametrize("words", [["bogus"], ["blocklist", "add", "1.2.3"], ["blocklist", "add", "1.2.3.4", "-5"],
                                   ["blocklist"], ["stats", "extra"], ["blocklist", "add", "1.2.3.4", "x"]])
def test_bad_command_lines_are_usage_errors(capsys, words, tmp_path):
    rc = main(["ctl", "--socket", str(tmp_path / "none.sock"), *words])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("netsentry ctl: ")


@pytest.mark.parametrize("raw,message", [
    (b"not json\n", "request is not JSON"),
    (b'{"command": "rm -rf"}\n', "unknown command 'rm -rf'"),
    (b'{"cmd": "stats"}\n', 'expected {"command"'),
    (b'{"command": "blocklist-add", "arguments": {"address": "x"}}\n', "blocklist-add: not an IP address"),
    (b'{"command": "blocklist-add", "arguments": {"address": "192.0.2.1", "ttl": "soon"}}\n', "ttl must be"),
    (b'{"command": "blocklist-del", "arguments": {"address": "192.0.2.1", "force": true}}\n', "unknown argument"),
    (b'{"command": "stats", "arguments": [1]}\n', "arguments must be an object"),
])
def test_bad_requests_on_the_socket_get_nok(ops, raw, message):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(ops.path)
        s.sendall(raw)
        answer = json.loads(s.makefile().readline())
    assert answer["return"] == "NOK" and message in answer["message"]
    assert len(ops.responder.blocklist) == 0
    assert pump(ops, lambda: request(ops.path, "stats"))["return"] == "OK"     # still serving


def test_reload_valid_and_invalid(ops, capsys):
    write_rules(ops.rules, RULE_B)
    rc, answer, err = ctl(capsys, ops, "reload")
    assert rc == 0, err
    assert answer["ok"] and answer["signatures"] == 1
    assert [s.sid for s in ops.sensor.ruleset.signatures] == [2]
    write_rules(ops.rules, RULE_A, 'alert udp any any -> any any (msg:"x"; depth:5; sid:9;)')
    rc, answer, err = ctl(capsys, ops, "reload")
    assert rc == 1 and "reload failed, the running rules stay" in err and "r.rules:2 sid 9" in err
    assert [s.sid for s in ops.sensor.ruleset.signatures] == [2]
    stats = pump(ops, lambda: request(ops.path, "stats"))["message"]
    assert stats["netsentry.reload.success"] == 1 and stats["netsentry.reload.failed"] == 1


def test_shutdown_sends_sigterm_to_the_sensor(ops, capsys):
    got = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: got.append(signum))
    try:
        rc, answer, _ = ctl(capsys, ops, "shutdown")
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert rc == 0 and answer == "shutting down" and got == [signal.SIGTERM]


def test_nobody_listening(capsys, tmp_path):
    rc = main(["ctl", "--socket", str(tmp_path / "none.sock"), "stats"])
    err = capsys.readouterr().err
    assert rc == 1 and "cannot reach the sensor at" in err and err.count("\n") == 1


def test_a_second_daemon_does_not_steal_a_live_socket_but_a_stale_one_is_replaced(ops, tmp_path):
    other = ControlServer(ops.path, {})
    with pytest.raises(OSError, match="another netsentry is listening"):
        other.start()
    stale = str(tmp_path / "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(stale)
    s.close()                                   # a socket file nobody listens on (a crashed daemon)
    server = ControlServer(stale, {})
    server.start()
    server.close()
    not_a_socket = tmp_path / "file"
    not_a_socket.write_text("x")
    with pytest.raises(OSError, match="not a socket"):
        ControlServer(str(not_a_socket), {}).start()


def test_commands_run_in_the_wakeup_thread_between_packets(tmp_path):
    """Without a wake-up nothing runs: the sensor's state is only touched from the capture loop."""
    rules = write_rules(tmp_path / "r.rules", RULE_A)
    path = str(tmp_path / "ns.sock")
    cfg = config_for(rules, f"unix-command.filename={path}")
    sensor = Sensor(cfg, [Collect()], load_ruleset(cfg))
    operations = Operations(sensor, cfg, lambda: cfg)
    operations.start()
    try:
        answers = []
        t = threading.Thread(target=lambda: answers.append(request(path, "blocklist-add",
                                                                   {"address": "10.0.0.1"})))
        t.start()
        time.sleep(0.2)
        assert not answers and len(operations.responder.blocklist) == 0
        # the live loop: packets from 10.0.0.1, the wake-up drains the command between two of them
        seen = []

        def between(i: int) -> None:
            if i == 3:
                while not operations.control.drain():
                    time.sleep(0.01)
            seen.append(len(operations.responder.blocklist))
        res = sensor.run(LiveLike([frame(b"x")] * 6, between))
        t.join(5)
        assert answers[0]["return"] == "OK"
        assert seen == [0, 0, 0, 1, 1, 1]
        # IDS: nothing dropped, but the would-be drop logged once for the flow direction
        assert res.drops == 0
        assert operations.responder.blocklist.listing()[0]["hits"] == 3
    finally:
        operations.stopping()


def test_a_socket_that_cannot_open_is_logged_and_the_sensor_runs_without_it(ops, tmp_path):
    from netsentry.log import setup_logging
    buf = io.StringIO()
    setup_logging("info", "json", buf)
    cfg = dict(ops.config)
    second = Operations(ops.sensor, {**cfg, "unix-command": {"enabled": True, "filename": ops.path}}, lambda: cfg)
    second.start()                              # the path is held by the first one
    assert second.control is None
    [line] = [json.loads(x) for x in buf.getvalue().splitlines() if "control socket" in x]
    assert line["event"] == "control socket unavailable; running without it"
    assert "another netsentry is listening" in line["error"]
    second.tick(time.time())                    # runs fine without it
    second.stopping()


def test_the_directory_it_made_is_removed_on_close(tmp_path):
    path = tmp_path / "made" / "deeper" / "ns.sock"
    server = ControlServer(str(path), {})
    server.start()
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o750
    server.close()
    assert not (tmp_path / "made").exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    server = ControlServer(str(kept / "ns.sock"), {})
    server.start()
    server.close()
    assert kept.is_dir()                         # not ours: left alone
