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
