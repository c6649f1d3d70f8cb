"""workers_live.py without namespaces: how many workers, what each captures, what N writers cannot share.

The processes themselves run in tests/capture/test_live_workers.py (root, namespaces)."""

from __future__ import annotations

import argparse

import pytest

from netsentry.capture.afpacket import interfaces_from_config
from netsentry.config import ConfigError, load_config
from netsentry.workers_live import WORKER_CALLS, PARENT_MESSAGES, check_outputs, live_worker_config, plan_workers


def args(workers: str | None = None, runmode: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(workers=workers, runmode=runmode)


def config(*overrides: str) -> dict:
    return load_config(None, list(overrides))


def ifaces(cfg: dict, *items: object) -> list:
    cfg["af-packet"]["interfaces"] = list(items)
    return interfaces_from_config(cfg)


def test_queues_one_worker_each_by_default():
    plan = plan_workers(config(), args(), [], [4, 5, 6])
    assert plan.count == 3 and plan.queues == [[4], [5], [6]]


def test_fewer_workers_than_queues_share_them_round_robin():
    plan = plan_workers(config(), args("2"), [], [0, 1, 2, 3, 4])
    assert plan.queues == [[0, 2, 4], [1, 3]]
    plan = plan_workers(config("runtime.workers=2"), args(), [], [0, 1, 2])
    assert plan.queues == [[0, 2], [1]]


def test_runmode_single_binds_every_queue_in_one_process():
    plan = plan_workers(config(), args(runmode="single"), [], [0, 1])
    assert plan.count == 1 and plan.queues == [[0, 1]]


def test_more_workers_than_queues_is_a_config_error():
    with pytest.raises(ConfigError, match="3 workers need at least 3 NFQUEUE queues"):
        plan_workers(config(), args("3"), [], [0, 1])


def test_interfaces_follow_runtime_workers():
    cfg = config("runtime.workers=2")
    plan = plan_workers(cfg, args(), ifaces(cfg, "eth0", "eth1"), [])
    assert plan.count == 2
    assert [[i.name for i in share] for share in plan.interfaces] == [["eth0", "eth1"], ["eth0", "eth1"]]


def test_an_interface_threads_overrides_workers_for_it():
    cfg = config("runtime.workers=2")
    plan = plan_workers(cfg, args(), ifaces(cfg, {"interface": "eth0", "threads": 3}, "eth1"), [])
    assert plan.count == 3
    assert [[i.name for i in share] for share in plan.interfaces] == [["eth0", "eth1"], ["eth0", "eth1"], ["eth0"]]
    assert plan_workers(cfg, args(runmode="single"), ifaces(cfg, {"interface": "eth0", "threads": 3}), []).count == 1


def test_bad_threads_names_the_interface():
    cfg = config()
    with pytest.raises(ConfigError, match=r"af-packet.interfaces\[0\].threads"):
        ifaces(cfg, {"interface": "eth0", "threads": "many"})


def test_worker_config_appends_to_the_shared_eve_and_writes_no_stats():
    cfg = config("outputs.eve-log.types=[alert, flow, stats]", "anomaly.state-file=/var/lib/ns/state.json")
    w = live_worker_config(cfg, 1, 2)
    assert w["outputs"]["eve-log"]["append"] is True
    assert w["outputs"]["eve-log"]["filename"] == cfg["outputs"]["eve-log"]["filename"]
    assert "stats" not in w["outputs"]["eve-log"]["types"]
    assert w["anomaly"]["state-file"] == ""        # the parent's host judge owns the one file
    cfg["outputs"]["eve-log"]["threaded"] = True
    assert live_worker_config(cfg, 1, 2)["outputs"]["eve-log"]["filename"] == "eve.1.json"


def test_an_integrity_chain_needs_threaded_eve():
    cfg = config("outputs.eve-log.integrity=sha256-chain")
    with pytest.raises(ConfigError, match="threaded: true"):
        check_outputs(cfg)
    cfg["outputs"]["eve-log"]["threaded"] = True
    check_outputs(cfg)


def test_message_tables_name_every_kind():
    assert set(WORKER_CALLS) == {"counters", "reload", "bl-add", "bl-del", "bl-list", "reopen"}
    assert set(PARENT_MESSAGES) == {"ready", "reply", "alive", "final", "host", "blocked", "tick", "end"}


# --- a reload's ruleset over the worker's pipe; a dead worker's counts --------------------------


def test_a_reload_payload_crosses_the_pipe_after_its_call_and_leaves_no_file(tmp_path, monkeypatch):
    """The parent's call, then the pickled set as a sealed memfd on the same pipe: the worker
    reads the call, takes the payload whole, and the next message is still framed right.
    No file is made anywhere (TMPDIR stays empty; the old hand-over was a mkstemp file)."""
    import multiprocessing
    import os
    import pickle

    from netsentry.workers_live import hand_over, take_over
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    parent, worker = multiprocessing.Pipe(duplex=True)
    payload = pickle.dumps(("ruleset", {"k": b"x" * 3_000_000}))      # larger than a socket buffer
    pid = os.fork()
    if pid == 0:                                  # the parent's side runs in a child: it blocks on the sends
        try:
            parent.send(("call", 7, "reload", {"load": False}))
            hand_over(parent, payload)
            parent.send(("call", 8, "counters", None))
        finally:
            os._exit(0)
    try:
        assert worker.recv() == ("call", 7, "reload", {"load": False})
        fds_before = set(os.listdir("/proc/self/fd"))
        assert take_over(worker) == payload
        assert worker.recv() == ("call", 8, "counters", None), "the stream stays framed after the payload"
        assert set(os.listdir("/proc/self/fd")) <= fds_before, "the payload's descriptor is closed"
    finally:
        os.waitpid(pid, 0)
    assert list(tmp_path.iterdir()) == []


def test_a_memfd_payload_is_sealed_so_a_worker_cannot_change_what_the_others_read():
    import fcntl
    import multiprocessing
    import os
    from multiprocessing import reduction

    from netsentry.workers_live import hand_over
    parent, worker = multiprocessing.Pipe(duplex=True)
    hand_over(parent, b"rules")
    fd = reduction.recv_handle(worker)
    try:
        with pytest.raises(PermissionError):
            os.pwrite(fd, b"RULES", 0)
        assert fcntl.fcntl(fd, fcntl.F_GET_SEALS) & fcntl.F_SEAL_WRITE
        assert os.pread(fd, 100, 0) == b"rules"
    finally:
        os.close(fd)


def test_a_dead_workers_counts_are_kept_but_not_its_gauges():
    from netsentry.workers import merge_counters, retire_counters
    retired: dict = {}
    retire_counters(retired, {"decoder.pkts": 100, "detect.alert": 3, "flow.active": 40, "flow.memuse": 9999,
                              "flow.max_flows": 65536, "decoder.avg_pkt_size": 80})
    retire_counters(retired, {"decoder.pkts": 5, "flow.active": 2})      # a second death of the same slot
    assert retired == {"decoder.pkts": 105, "detect.alert": 3}
    live = {"decoder.pkts": 50, "detect.alert": 1, "flow.active": 7, "flow.max_flows": 65536,
            "decoder.bytes": 5000}
    merged = merge_counters([live, retired])
    assert merged["decoder.pkts"] == 155 and merged["detect.alert"] == 4
    assert merged["flow.active"] == 7 and merged["flow.max_flows"] == 65536
