"""lifecycle.py: real signals at every phase of a run, in-process and against `netsentry replay`.

In-process tests send signals to this process (os.kill): the handlers run in
the main thread between bytecodes, exactly as they do in the sensor.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from netsentry.lifecycle import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    HARD_STOP_WINDOW,
    FlushInterrupted,
    Lifecycle,
    StopRequested,
)


def _kill(signum: int) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(0.01)            # the handler runs at the next bytecode boundary; give it one


def test_handlers_installed_on_enter_and_restored_on_exit():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR2)}
    with Lifecycle("replay"):
        for s in before:
            assert signal.getsignal(s) is not before[s]
    assert {s: signal.getsignal(s) for s in before} == before


def test_stop_during_startup_raises_at_once():
    lc = Lifecycle("replay")
    with pytest.raises(StopRequested) as info, lc:
        _kill(signal.SIGTERM)
        pytest.fail("the start-up phase must not continue after a stop signal")
    assert info.value.signum == signal.SIGTERM
    assert lc.exit_code(lc.stopped_by, ok=True) == EXIT_SIGTERM


def test_stop_while_running_finishes_the_current_packet_then_ends_the_source():
    seen = []
    with Lifecycle("replay") as lc:
        lc.running()
        for rec in lc.guard(range(100)):
            seen.append(rec)            # the whole packet is processed even though the signal
            if rec == 3:                # arrives in the middle of it
                _kill(signal.SIGINT)
                seen.append("end of packet 3")
    assert seen == [0, 1, 2, 3, "end of packet 3"]
    assert lc.stopped_by == signal.SIGINT and not lc.interrupted
    assert lc.exit_code(lc.stopped_by, ok=True) == EXIT_SIGINT


def test_guard_keeps_the_source_attributes():
    class Source(list):
        bytes_read = 42
    with Lifecycle("replay") as lc:
        guarded = lc.guard(Source([1, 2]))
        assert guarded.bytes_read == 42 and list(guarded) == [1, 2]


def test_first_signal_during_flush_does_not_cut_it():
    done = []
    with Lifecycle("replay") as lc:
        lc.running()
        with lc.flushing():
            _kill(signal.SIGTERM)
            done.append("flushed")
    assert done == ["flushed"] and not lc.interrupted and lc.stopped_by == signal.SIGTERM


def test_second_signal_within_the_window_cuts_the_flush():
    done = []
    with Lifecycle("replay") as lc:
        lc.running()
        _kill(signal.SIGTERM)                   # the clean stop
        with lc.flushing():
            _kill(signal.SIGTERM)               # impatient: cut the flush
            done.append("not reached")
        _kill(signal.SIGTERM)                   # the stats record is being written: noted only
        done.append("stats written")
    assert done == ["stats written"]
    assert lc.interrupted and lc.stopped_by == signal.SIGTERM


def test_a_late_second_signal_is_a_new_first(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("netsentry.lifecycle.time.monotonic", lambda: clock[0])
    with Lifecycle("replay") as lc:
        lc.running()
        _kill(signal.SIGINT)
        clock[0] += HARD_STOP_WINDOW + 1
        with lc.flushing():
            _kill(signal.SIGINT)
    assert not lc.interrupted


def test_flush_interrupted_is_a_base_exception():
    # stages catch Exception here and there; a cut flush must not be swallowed by one
    assert not issubclass(FlushInterrupted, Exception) and not issubclass(StopRequested, Exception)


def test_sighup_reopens_and_sigusr2_reloads_only_in_daemon_mode():
    calls = []
    with Lifecycle("daemon") as lc:
        lc.running()
        lc.on_reopen(lambda: calls.append("reopen"))
        lc.on_reload(lambda: calls.append("reload"))
        _kill(signal.SIGHUP)
        _kill(signal.SIGUSR2)
        assert calls == []                      # handlers only set flags ...
        lc.poll()                               # ... the main loop runs the callbacks
        lc.poll()
    assert calls == ["reopen", "reload"]
    assert lc.exit_code(None, ok=True) == EXIT_OK
    assert lc.exit_code(signal.SIGTERM, ok=True) == EXIT_OK       # the daemon drained cleanly
    with Lifecycle("replay") as lc:
        lc.running()
        lc.on_reload(lambda: calls.append("reload in replay"))
        _kill(signal.SIGUSR2)                   # default action would kill the process
        assert list(lc.guard([1, 2])) == [1, 2]
    assert "reload in replay" not in calls
    assert lc.exit_code(None, ok=False) == EXIT_BAD_INPUT


# --- `netsentry replay` under signals --------------------------------------------------------

FLOWS = 60_000


def _many_flows_pcap(path: Path, flows: int = FLOWS) -> None:
    """`flows` one-packet UDP flows within one second: no flow times out during the run,
    so every flow record is written by the end-of-run flush."""
    hdr = struct.pack("!6s6sH", b"\x02" * 6, b"\x04" * 6, 0x0800)
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i in range(flows):
        udp = struct.pack("!HHHH", 1024 + i % 60000, 53, 8 + 4, 0) + b"ping"
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xFFFF, 0, 64, 17, 0,
                         bytes((10, 1, (i >> 8) & 0xFF, i & 0xFF)), b"\x0a\x02\x00\x01") + udp
        frame = hdr + ip
        out.append(struct.pack("<IIII", 1_700_000_000, i, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))


@pytest.fixture(scope="module")
def many_flows(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("lifecycle") / "flows.pcap"
    _many_flows_pcap(p)
    return p


def _replay(pcap: Path, logdir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "netsentry", "replay", str(pcap), "-l", str(logdir), "-q"],
                            stderr=subprocess.PIPE, text=True)


def _wait_for_flow_records(logdir: Path, proc: subprocess.Popen[str]) -> None:
    eve = logdir / "eve.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if eve.exists() and b'"event_type":"flow"' in eve.read_bytes()[:4096]:
            return
        time.sleep(0.005)
    pytest.fail("the flush never started")


def _records(logdir: Path) -> list[dict]:
    return [orjson.loads(line) for line in (logdir / "eve.json").read_bytes().splitlines()]


@pytest.mark.slow
def test_sigterm_during_the_end_of_run_flush_still_writes_every_flow_and_the_stats(tmp_path, many_flows):
    proc = _replay(many_flows, tmp_path)
    _wait_for_flow_records(tmp_path, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err
    assert proc.returncode in (EXIT_SIGTERM, EXIT_OK), err      # EXIT_OK: the run ended first
    records = _records(tmp_path)
    assert sum(r["event_type"] == "flow" for r in records) == FLOWS
    assert records[-1]["event_type"] == "stats"
    assert "netsentry" not in records[-1]


@pytest.mark.slow
def test_two_quick_sigterms_during_the_flush_cut_it_but_write_an_interrupted_stats(tmp_path, many_flows):
    proc = _replay(many_flows, tmp_path)
    _wait_for_flow_records(tmp_path, proc)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err
    records = _records(tmp_path)        # every line whole JSON
    assert records[-1]["event_type"] == "stats"
    if proc.returncode == EXIT_SIGTERM and "cut short" in err:
        assert records[-1]["netsentry"] == {"interrupted": True}
        assert sum(r["event_type"] == "flow" for r in records) < FLOWS
    else:       # the machine was fast enough to finish the flush between the two signals
        assert proc.returncode in (EXIT_SIGTERM, EXIT_OK), err


def _wchan(pid: int) -> str:
    """Where in the kernel the process sleeps (`anon_pipe_read`: blocked reading a FIFO)."""
    try:
        return Path(f"/proc/{pid}/wchan").read_text().strip()
    except OSError:
        return ""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_startup_is_one_line_and_writes_nothing(tmp_path, signum):
    rules = tmp_path / "rules.fifo"     # the rules load blocks on this FIFO: start-up, for certain
    os.mkfifo(rules)
    pcap = tmp_path / "one.pcap"
    _many_flows_pcap(pcap, 1)
    proc = subprocess.Popen([sys.executable, "-m", "netsentry", "replay", str(pcap), "-S", str(rules),
                             "-l", str(tmp_path / "out"), "-q"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while True:         # a non-blocking open for writing succeeds once the reader has it open
        try:
            fd = os.open(rules, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:
            assert time.monotonic() < deadline and proc.poll() is None, "the replay never read its rules"
            time.sleep(0.01)
    # Signal only once the reader sleeps in read(): a signal that lands between the open and the
    # read is flagged in C, and CPython runs its handler at the next bytecode, which a read()
    # that blocks for good never reaches (the same race hangs `suricata -S fifo` style input)
    while _wchan(proc.pid) not in ("pipe_read", "anon_pipe_read", "fifo_pipe_read"):
        if _wchan(proc.pid) == "0":         # a kernel that hides wchan: give the read time to start
            time.sleep(0.5)
            break
        assert time.monotonic() < deadline and proc.poll() is None, f"the replay never blocked: {_wchan(proc.pid)}"
        time.sleep(0.01)
    try:
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        os.close(fd)
    assert "Traceback" not in err
    assert proc.returncode == (EXIT_SIGINT if signum == signal.SIGINT else EXIT_SIGTERM), err
    assert err.strip().splitlines()[-1] == (
        f"netsentry: interrupted by {signal.Signals(signum).name} during start-up; nothing written")
    assert not (tmp_path / "out" / "eve.json").exists()


@pytest.mark.slow
def test_sigusr2_and_sighup_do_not_kill_a_replay(tmp_path, many_flows):
    proc = _replay(many_flows, tmp_path)
    _wait_for_flow_records(tmp_path, proc)
    proc.send_signal(signal.SIGUSR2)
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_OK, err
    assert sum(r["event_type"] == "flow" for r in _records(tmp_path)) == FLOWS
