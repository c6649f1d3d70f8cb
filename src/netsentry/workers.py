"""The worker runtime: N processes, each the whole pipeline on its share of the traffic.

Why processes: the pipeline is Python, so one process uses one core whatever
the threads do. Each worker is a complete `Sensor` (decode, flow, both
engines, outputs) on the packets of the host pairs it owns; this module only
decides who owns what, starts the workers, watches them, and folds what they
wrote into one eve.json and one stats record. See docs/workers.md for the
design, the worker-local fields and what is not exact yet.

Sharding is by IP pair (Suricata's autofp ``ippair`` scheduler): the XOR of
source and destination address, so both directions of a flow, every fragment
of a datagram, and every flow between two hosts meet in one worker. Host-pair
state (a port scan of one target, a SYN flood or a ``threshold by_src`` from
one source to one destination) is then exact; state keyed by one host across
many peers (sweeps, distributed floods, host-tracked thresholds, hostbits) is
judged in the parent by hoststate.HostJudge from what the workers send it once
per second of packet time (docs/architecture.md, "Host-keyed state").

In replay every worker reads the whole capture and keeps its share (one
header read per record and a few bytes hashed; measured in bench/README.md);
live sources get their share from the kernel (PACKET_FANOUT, --queue-balance).
"""

from __future__ import annotations

import fcntl
import gc
import multiprocessing
import os
import resource
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from copy import deepcopy
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from netsentry.config import ConfigError, get
# who owns a packet (the IP-pair hash per link type) and a worker's share of a capture:
# share.py, compiled when built (every replay worker runs it over every record)
from netsentry.share import PAIR_KEYS, ShareSource, worker_of  # noqa: F401
# the k-way merge of the workers' EVE files (compiled when built: it runs over every line)
from netsentry.evemerge import MERGE_BUFFER, merge_parts

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

# How long the parent sleeps between looks at its workers when nothing happens (seconds).
WATCH_INTERVAL = 0.2

# --- how many workers ---------------------------------------------------------------


def resolve_workers(value: Any, key: str = "runtime.workers") -> int:
    """``auto`` (one per core), or a positive whole number (as an int or its text).

    `key` names the setting in the error (config key path or command-line flag)."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "auto":
            return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                       else (os.cpu_count() or 1))
        if not text.isdigit():
            raise ConfigError(f"expected 'auto' or a number of workers, got {value!r}", key)
        value = int(text)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1024:
        raise ConfigError(f"expected 'auto' or a number of workers from 1 to 1024, got {value!r}", key)
    return value


# --- the worker side ------------------------------------------------------------------


@dataclass
class WorkerSpec:
    """What one worker needs; handed over by fork, never pickled (the ruleset need not be)."""

    index: int
    workers: int
    config: dict[str, Any]
    paths: list[str]
    ruleset: Any
    logdir: Path
    host: bool = False          # host-keyed state goes to the parent's judge (hoststate.py)


def part_path(filename: str, index: int) -> str:
    """A worker's own EVE file: ``eve.json`` -> ``eve.0.json`` (Suricata's threaded eve-log names)."""
    stem, dot, suffix = filename.rpartition(".")
    if not dot or not stem:
        return f"{filename}.{index}"
    return f"{stem}.{index}.{suffix}"


def without_stats(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `config` whose outputs write no stats records: a worker's, since the parent
    writes the one merged record (replay and the live supervisor)."""
    cfg = deepcopy(dict(config))
    for section in (cfg.get("outputs") or {}).values():
        if not isinstance(section, dict):
            continue
        types = section.get("types")
        if isinstance(types, list) and "stats" in types:
            section["types"] = [t for t in types if t != "stats"]
    return cfg


def worker_config(config: Mapping[str, Any], index: int, workers: int, host: bool = False) -> dict[str, Any]:
    """A worker's configuration: its own EVE file, no stats record (the parent writes one
    merged record); no anomaly state file when the parent judges host-keyed state (`host`:
    the parent's engine owns the one file), else its own."""
    cfg = without_stats(config)
    eve = (cfg.get("outputs") or {}).get("eve-log")
    if isinstance(eve, dict):
        eve["filename"] = part_path(str(eve.get("filename") or "eve.json"), index)
        eve["append"] = False
    anomaly = cfg.get("anomaly")
    if workers > 1 and isinstance(anomaly, dict) and anomaly.get("state-file"):
        if host:
            anomaly["state-file"] = ""
        else:
            # without the judge each worker learns and keeps the baselines of the hosts
            # whose pairs it owns
            anomaly["state-file"] = part_path(str(anomaly["state-file"]), index)
    return cfg


def _worker_main(spec: WorkerSpec, conn: Any) -> None:
    """Run one worker to the end and send its result to the parent (child process)."""
    from netsentry.capture import read_captures
    from netsentry.lifecycle import Lifecycle
    from netsentry.output import OutputContext, open_outputs
    from netsentry.sensor import Sensor

    lifecycle = Lifecycle("replay")
    with lifecycle:
        # A terminal's Ctrl-C reaches the whole process group; the parent alone
        # decides to stop and then sends SIGTERM, so every worker sees one stop.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        lifecycle.running()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)     # blocked by the parent around fork
        # the console output of N workers shares one stdout: one write() per line
        # (atomic on a pipe up to PIPE_BUF) so lines never tear across workers
        reconfigure = getattr(sys.stdout, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True)
        reply: dict[str, Any] = {"index": spec.index}
        try:
            config = worker_config(spec.config, spec.index, spec.workers, spec.host)
            sensor = Sensor(config, [], spec.ruleset)
            outputs = open_outputs(config.get("outputs") or {}, OutputContext(
                logdir=spec.logdir, ips=bool(get(config, "stream.inline", False))))
            sensor.attach_outputs(outputs)
            reader = read_captures(spec.paths)
            built_cpu = _cpu_self()
            reader.log_damage = spec.index == 0     # every worker reads every record: one reports damage
            source = ShareSource(reader, spec.index, spec.workers, lambda: lifecycle.stop_requested)
            if spec.host:
                from netsentry.hoststate import attach_worker
                source.link = attach_worker(sensor, config, spec.ruleset, spec.index, source, conn.send_bytes)
            try:
                sensor.run(source)
            finally:
                if source.last_ts is not None and source.last_ts > sensor._now:
                    # flows open at the end close at the capture's end time, as with one worker
                    sensor._now = source.last_ts
                result = sensor.finish(lifecycle)
                if source.link is not None:
                    source.link.close()     # (the anomaly observer closes it in finish, if there is one)
            reply.update(
                packets=result.packets, read=source.pcap_cnt, last_ts=source.last_ts,
                flows=result.flows, alerts=result.alerts, alerts_by_signature=result.alerts_by_signature,
                anomaly_alerts=dict(result.anomaly_alerts), drops=result.drops,
                counters=result.counters, reader_stats=reader.stats(),
                capture_error=str(result.capture_error) if result.capture_error is not None else None,
                stopped_by=lifecycle.stopped_by, interrupted=lifecycle.interrupted,
                cpu_start=built_cpu, cpu=_cpu_self(),
            )
        except Exception as exc:        # noqa: BLE001 - reported to the parent as one line
            reply["error"] = f"{type(exc).__name__}: {exc}" if not isinstance(exc, OSError) else str(exc)
        conn.send(reply)
        conn.close()


def _cpu_self() -> float:
    """CPU seconds (user + system) of this process so far: what the timing log reports."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


# --- the parent side -------------------------------------------------------------------


@dataclass
class WorkerOutcome:
    """How each worker ended, for the exit status and the message."""

    replies: dict[int, dict[str, Any]] = field(default_factory=dict)
    died: dict[int, int] = field(default_factory=dict)        # index -> exit code (<0: -signal)
    errors: dict[int, str] = field(default_factory=dict)      # index -> the worker's own error line

    @property
    def failed(self) -> bool:
        return bool(self.died or self.errors)

    def describe(self) -> str:
        from netsentry.lifecycle import signal_name
        parts = []
        for index, code in sorted(self.died.items()):
            how = f"killed by {signal_name(-code)}" if code < 0 else f"exited with status {code}"
            parts.append(f"worker {index} {how} before finishing; its records up to then are kept")
        for index, message in sorted(self.errors.items()):
            parts.append(f"worker {index} failed: {message}")
        return "; ".join(parts)


def start_workers(config: Mapping[str, Any], paths: list[str], ruleset: Any, logdir: Path,
                  workers: int, host: bool = False) -> list[tuple[Any, Any]]:
    """Fork `workers` processes (each builds its own Sensor); (process, parent end of its pipe)."""
    ctx = multiprocessing.get_context("fork")
    started = []
    # Stop signals wait (blocked) until each child has its own handlers: a Ctrl-C
    # during the fork reaches the parent once they are back, and the forwarded
    # SIGTERM cannot hit a child still running the parent's copied handlers.
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        _fork_workers(ctx, started, config, paths, ruleset, logdir, workers, host)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    return started


def _fork_workers(ctx: Any, started: list[tuple[Any, Any]], config: Mapping[str, Any], paths: list[str],
                  ruleset: Any, logdir: Path, workers: int, host: bool = False) -> None:
    for index in range(workers):
        parent_end, child_end = ctx.Pipe(duplex=False)
        widen_pipe(child_end)
        spec = WorkerSpec(index, workers, dict(config), list(paths), ruleset, logdir, host)
        proc = ctx.Process(target=_worker_main, args=(spec, child_end), name=f"netsentry-worker-{index}",
                           daemon=True)
        proc.start()
        child_end.close()
        started.append((proc, parent_end))


# A worker's pipe holds this much before its writes block: the host-state messages of a
# second of packet time are ~110 KB per worker on the bench capture (bench/README.md), and
# a pipe's default 64 KiB made a worker wait for the parent to read each one (measured:
# 204 blocking writes, ~15 ms each under load, whenever the parent was busy judging).
# 1 MiB is Linux's default /proc/sys/fs/pipe-max-size, so no privilege is needed.
PIPE_SIZE = 1 << 20


def widen_pipe(conn: Any, size: int = PIPE_SIZE) -> None:
    """Let `conn`'s pipe buffer `size` bytes (F_SETPIPE_SZ; Linux), so a worker's message
    does not wait for the parent's next read. Where the system refuses (a lower
    pipe-max-size, another OS) the pipe stays as it was: only speed depends on it."""
    setsz = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setsz is None:
        return
    try:
        fcntl.fcntl(conn.fileno(), setsz, size)
    except OSError:
        try:
            with open("/proc/sys/fs/pipe-max-size", "rb") as fh:
                fcntl.fcntl(conn.fileno(), setsz, min(size, int(fh.read())))
        except (OSError, ValueError):
            pass


def watch_workers(started: list[tuple[Any, Any]], lifecycle: Any, judge: Any = None) -> WorkerOutcome:
    """Wait for every worker, collecting results; forward each stop signal as SIGTERM.

    A worker that dies does not stop the others: they finish their shares
    (their output is independent), and the outcome says who died and how.
    With a `judge` (hoststate.HostJudge) the workers' host-state messages that
    come before their results are fed to it as they arrive."""
    from netsentry.lifecycle import FlushInterrupted
    outcome = WorkerOutcome()
    pending = {conn: (index, proc) for index, (proc, conn) in enumerate(started)}
    forwarded = 0

    def forward() -> None:
        for _, proc in pending.values():
            if proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)

    while pending:
        try:
            if lifecycle is not None and lifecycle.stop_requested and not forwarded:
                forwarded = 1
                forward()
                # from now on a second signal cuts the workers' flush short
                with lifecycle.flushing():
                    _collect(pending, outcome, until_done=True, judge=judge)
                if lifecycle.interrupted:
                    forward()
                continue
            _collect(pending, outcome, until_done=False, judge=judge)
        except FlushInterrupted:        # pragma: no cover - flushing() handles it
            forward()
    for proc, _ in started:
        proc.join()
    return outcome


def _collect(pending: dict[Any, tuple[int, Any]], outcome: WorkerOutcome, until_done: bool,
             judge: Any = None) -> None:
    while pending:
        ready = wait(list(pending), timeout=WATCH_INTERVAL)
        for conn in ready:
            index, proc = pending[conn]
            try:
                reply = conn.recv()
            except (EOFError, OSError):
                del pending[conn]
                conn.close()
                proc.join()
                outcome.died[index] = proc.exitcode if proc.exitcode is not None else -signal.SIGKILL
                if judge is not None:
                    judge.worker_gone(index)
                continue
            if reply.__class__ is tuple:            # hoststate.HostMsg: the worker goes on
                if judge is not None:
                    judge.feed(reply)
                continue
            del pending[conn]
            conn.close()
            if "error" in reply:
                outcome.errors[index] = reply["error"]
                if judge is not None:
                    judge.worker_gone(index)
            else:
                outcome.replies[index] = reply
        if not until_done:
            return


# --- folding the workers' output into one -------------------------------------------------


def merge_eve(logdir: Path, filename: str, workers: int, append: bool, keep_parts: bool, first: int = 0) -> None:
    """The workers' EVE files merged into one, in timestamp order.

    Each worker's file is already in its own processing order, so a k-way merge
    on the record's leading timestamp keeps each worker's order and interleaves
    them by time. A torn last line (a worker killed mid-write) is dropped. The
    merge itself is evemerge.py (compiled: it runs over every line, serially, after
    the workers end)."""
    parts = [logdir / part_path(filename, i) for i in range(first, workers)]
    with open(logdir / filename, "ab" if append else "wb", buffering=MERGE_BUFFER) as out:
        merge_parts(parts, out)
    if not keep_parts:
        for p in parts:
            if p.exists():
                p.unlink()


def _avg_pkt_size(merged: Mapping[str, int | float], values: list[int | float]) -> int | float:
    pkts = merged.get("decoder.pkts", 0)
    return int(merged.get("decoder.bytes", 0)) // int(pkts) if pkts else 0


# Counters that are not sums of the workers' counters: name -> how to merge them
# (from the summed counters and the workers' values). Everything else is summed:
# packets, flows, alerts and gauges such as flow.active add up across workers.
COUNTER_MERGE: dict[str, Callable[[Mapping[str, int | float], list[int | float]], int | float]] = {
    "decoder.avg_pkt_size": _avg_pkt_size,
    # the same in every worker (configuration, not traffic): reported once
    "flow.max_flows": lambda merged, values: max(values),     # each worker's table holds this many
    "detect.rules_loaded": lambda merged, values: max(values),
    "detect.rule_groups": lambda merged, values: max(values),
}


# Gauges: what a worker holds now (live flows, memory, table sizes), not what it counted. A
# worker that dies takes these with it; its counts stay (`retire_counters`).
GAUGES = frozenset(("flow.active", "flow.memuse", "flow.spare", "tcp.memuse", "tcp.reassembly_memuse",
                    "defrag.memuse", "blocklist.active", "anomaly.tracked_keys", "anomaly.baseline_keys",
                    "decoder.max_pkt_size"))


def retire_counters(retired: dict[str, int | float], last: Mapping[str, int | float]) -> None:
    """Fold a dead worker's last reported counters into `retired` (its slot's earlier lives), so
    the stats record after a restart still counts what it counted: every counter except the
    gauges (GAUGES: gone with the process) and the merged-once ones (COUNTER_MERGE, which the
    live workers report). What it counted after its last report is lost (docs/workers.md)."""
    for name, value in last.items():
        if name not in GAUGES and name not in COUNTER_MERGE:
            retired[name] = retired.get(name, 0) + value


def merge_counters(per_worker: list[Mapping[str, int | float]]) -> dict[str, int | float]:
    """The workers' flat counters as one set (see COUNTER_MERGE for the exceptions to summing)."""
    merged: dict[str, int | float] = {}
    for counters in per_worker:
        for name, value in counters.items():
            merged[name] = merged.get(name, 0) + value
    for name, rule in COUNTER_MERGE.items():
        values = [c[name] for c in per_worker if name in c]
        if values:
            merged[name] = rule(merged, values)
    return merged


def merge_replies(outcome: WorkerOutcome, judged: Mapping[str, int | float] | None = None
                  ) -> tuple[Any, dict[str, int | float]]:
    """One RunResult (what the summary prints) and one flat counter set from every worker
    (and the host-state judge's counters, `judged`, summed in like a worker's)."""
    from netsentry.sensor import RunResult
    res = RunResult()
    reader_stats: dict[str, int] = {}
    for reply in outcome.replies.values():
        res.packets = max(res.packets, int(reply["read"]))
        if reply["last_ts"] is not None:
            res.last_ts = max(res.last_ts or reply["last_ts"], reply["last_ts"])
        res.flows += reply["flows"]
        res.alerts += reply["alerts"]
        res.drops += reply["drops"]
        res.anomaly_alerts.update(Counter(reply["anomaly_alerts"]))
        for key, (signature, count) in reply["alerts_by_signature"].items():
            entry = res.alerts_by_signature.setdefault(key, [signature, 0])
            entry[1] += count
        if not reader_stats or sum(reply["reader_stats"].values()) > sum(reader_stats.values()):
            reader_stats = reply["reader_stats"]   # every worker read the same capture: count it once
    counters = merge_counters([r["counters"] for r in outcome.replies.values()]
                              + ([judged] if judged is not None else []))
    counters.update(reader_stats)
    counters["netsentry.workers"] = len(outcome.replies) + len(outcome.died) + len(outcome.errors)
    res.counters = counters
    return res, counters


def stats_sections(config: Mapping[str, Any], skip_chained: bool = False) -> dict[str, dict[str, Any]]:
    """The enabled output sections that take stats records, narrowed to stats and set to append:
    what the parent opens for the one merged record. `skip_chained`: leave out an eve-log with an
    integrity chain (a chain has one writer per file; the live workers are writing it)."""
    wanted = {}
    for name, section in deepcopy(dict(config.get("outputs") or {})).items():
        if not isinstance(section, dict) or not section.get("enabled"):
            continue
        types = section.get("types")
        if isinstance(types, list) and "stats" not in types:
            continue
        if skip_chained and name == "eve-log" and str(section.get("integrity") or "none") != "none":
            continue
        section["append"] = True
        if isinstance(types, list):
            section["types"] = ["stats"]
        wanted[name] = section
    return wanted


def write_stats(config: Mapping[str, Any], logdir: Path, ts: float, uptime: float,
                counters: Mapping[str, int | float], interrupted: bool) -> None:
    """The one merged stats record, appended to the main eve.json (and any other stats output)."""
    from netsentry.output import OutputContext, open_outputs
    from netsentry.output.stats import stats_event
    wanted = stats_sections(config)
    if not wanted:
        return
    event = stats_event(ts, uptime, counters)       # stats.netsentry.workers says how many
    if interrupted:
        event.extra["netsentry"] = {"interrupted": True}     # type: ignore[index]
    outputs = open_outputs(wanted, OutputContext(logdir=logdir))
    try:
        for out in outputs:
            if out.wants("stats"):
                out.emit(event)
    finally:
        for out in outputs:
            out.close()


@dataclass
class ReplayOutcome:
    result: Any
    workers: WorkerOutcome
    capture_error: str | None
    interrupted: bool


def replay(config: Mapping[str, Any], paths: list[str], ruleset: Any, logdir: Path, workers: int,
           lifecycle: Any) -> ReplayOutcome:
    """Replay `paths` with `workers` processes; one eve.json, one stats record."""
    started_at = time.monotonic()
    eve = (config.get("outputs") or {}).get("eve-log") or {}
    eve_on = isinstance(eve, Mapping) and bool(eve.get("enabled"))
    filename = str(eve.get("filename") or "eve.json") if eve_on else ""
    threaded = bool(eve.get("threaded", False)) if eve_on else False
    append = bool(eve.get("append", False)) if eve_on else False
    logdir.mkdir(parents=True, exist_ok=True)
    clock = PhaseClock()
    judge = _start_judge(config, ruleset, logdir, workers, filename) if workers > 1 else None
    started = start_workers(config, paths, ruleset, logdir, workers, host=judge is not None)
    clock.mark("start")
    # With a judge the parent unpickles and judges every worker's second: tens of thousands
    # of rows, stand-in flows and table entries a second, nearly all acyclic (reference
    # counting frees them). The cyclic collector would walk each second's survivors
    # again at every generation (the judge pauses it while it judges, so it ran right
    # after instead: ~10% of the parent's CPU on bench-1m, py-spy); a replay ends, so it
    # stays paused until the judge is closed.
    gc_paused = judge is not None and gc.isenabled()
    if gc_paused:
        gc.disable()
    try:
        outcome = watch_workers(started, lifecycle, judge[0] if judge is not None else None)
        clock.mark("run")
        if judge is not None:
            judge[0].close()
    finally:
        if gc_paused:
            gc.enable()
        if judge is not None:
            judge[2]()
    clock.mark("judge_close")
    parts = workers + 2 if judge is not None else workers   # the judge's two files follow the workers'
    if eve_on and not threaded:
        merge_eve(logdir, filename, parts, append, keep_parts=False)
    elif eve_on and judge is not None:
        # threaded: one file per worker; the judge's records go to the main file (with the stats)
        merge_eve(logdir, filename, parts, append, keep_parts=False, first=workers)
    elif eve_on and not append:
        (logdir / filename).write_bytes(b"")        # the main file holds the merged stats record
    clock.mark("merge")
    result, counters = merge_replies(outcome, judge[0].counters() if judge is not None else None)
    if judge is not None:
        from netsentry.hoststate import merge_alert_counts
        merge_alert_counts(result, judge[0], judge[1])
    result.elapsed = time.monotonic() - started_at
    interrupted = bool(lifecycle is not None and lifecycle.interrupted) or any(
        r.get("interrupted") for r in outcome.replies.values())
    write_stats(config, logdir, time.time(), result.elapsed, counters, interrupted)   # wall clock: stats_event
    clock.mark("stats")
    log_timing(clock, outcome, judge[0] if judge is not None else None)
    errors = {r["capture_error"] for r in outcome.replies.values() if r.get("capture_error")}
    return ReplayOutcome(result, outcome, sorted(errors)[0] if errors else None, interrupted)


class PhaseClock:
    """Wall and CPU seconds of the parent's phases of a replay (where the time goes:
    bench/bench_workers.py reads them from the "replay timing" log line)."""

    def __init__(self) -> None:
        self._wall = time.monotonic()
        self._cpu = _cpu_self()
        self.phases: dict[str, tuple[float, float]] = {}

    def mark(self, name: str) -> None:
        """The phase `name` ended now (it began at the previous mark)."""
        wall, cpu = time.monotonic(), _cpu_self()
        self.phases[name] = (round(wall - self._wall, 3), round(cpu - self._cpu, 3))
        self._wall, self._cpu = wall, cpu


def log_timing(clock: PhaseClock, outcome: WorkerOutcome, judge: Any) -> None:
    """One debug-level log line: the parent's phases (wall, CPU), each worker's CPU before
    its first packet and in all, and the host-state judge's CPU. Costs nothing per packet."""
    from netsentry.log import get_logger
    replies = [outcome.replies[i] for i in sorted(outcome.replies)]
    get_logger().debug(
        "replay timing",
        parent={name: {"wall": w, "cpu": c} for name, (w, c) in clock.phases.items()},
        workers=[{"cpu_start": round(r.get("cpu_start", 0.0), 3), "cpu": round(r.get("cpu", 0.0), 3)}
                 for r in replies],
        judge_cpu=round(judge.cpu, 3) if judge is not None else None,
    )


def _start_judge(config: Mapping[str, Any], ruleset: Any, logdir: Path, workers: int,
                 filename: str) -> tuple[Any, Any, Callable[[], None]] | None:
    """The parent's HostJudge when the run keeps host-keyed state (hoststate.py), with its
    outputs: the anomaly engine's alerts through the configured outputs (EVE part
    ``eve.N.json``), deferred rules' alert lines into ``eve.N+1.json``. (judge, sink, close)."""
    from netsentry import hoststate
    from netsentry.output import OutputContext, open_outputs
    if not hoststate.needed(config, ruleset):
        return None
    cfg = worker_config(config, workers, workers, host=False)
    anomaly = cfg.get("anomaly")
    if isinstance(anomaly, dict):
        anomaly["state-file"] = (config.get("anomaly") or {}).get("state-file", "")   # the one file
    outputs = open_outputs(cfg.get("outputs") or {}, OutputContext(
        logdir=logdir, ips=bool(get(cfg, "stream.inline", False))))
    sink = hoststate.EventSink(cfg, outputs)
    if filename:
        write, close_lines = hoststate.raw_lines(logdir / part_path(filename, workers + 1))
    else:
        write, close_lines = (lambda line: None), (lambda: None)
    try:
        judge = hoststate.HostJudge(cfg, ruleset, workers, sink, write)
    except BaseException:
        close_lines()
        for out in outputs:
            out.close()
        raise

    def close() -> None:
        close_lines()
        for out in outputs:
            out.close()
    return judge, sink, close


# --- the command line ---------------------------------------------------------------------


def add_worker_flags(parser: Any) -> None:
    """`replay --workers N|auto` and `--runmode single|workers` (Suricata's spelling)."""
    parser.add_argument("--workers", metavar="N",
                        help="worker processes, each the whole pipeline on its share of the host "
                             "pairs: a number or auto (one per core); default runtime.workers (1)")
    parser.add_argument("--runmode", choices=("single", "autofp", "workers"),
                        help="single: one process (as --workers 1); workers (and Suricata's autofp, "
                             "whose packet hand-off this runtime's sharding replaces): runtime.workers processes")


def workers_for_replay(config: Mapping[str, Any], args: Any) -> int:
    """The worker count of a replay: --runmode single, else --workers, else runtime.workers."""
    if getattr(args, "runmode", None) == "single":
        if getattr(args, "workers", None) not in (None, "1"):
            from netsentry.cli import UsageError
            raise UsageError("netsentry replay: --runmode single runs one worker; drop --workers "
                             f"{args.workers} or use --runmode workers")
        return 1
    flag = getattr(args, "workers", None)
    if flag is not None:
        return resolve_workers(flag, "--workers")
    runtime = config.get("runtime") or {}
    return resolve_workers(runtime.get("workers", 1), "runtime.workers")


def replay_command(args: Any, config: Mapping[str, Any], paths: list[str], ruleset: Any,
                   lifecycle: Any, workers: int) -> int:
    """`netsentry replay` with several workers: the same summary, messages and exit codes as one."""

    from netsentry.cli import InputError
    from netsentry.lifecycle import EXIT_WORKER_FAILED, signal_name
    from netsentry.log import get_logger
    from netsentry.summary import format_summary

    logdir = Path(args.logdir)
    try:
        logdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot write to log directory {logdir}: {exc.strerror or exc}") from None
    if not os.access(logdir, os.W_OK | os.X_OK):
        raise InputError(f"cannot write to log directory {logdir}: Permission denied")
    lifecycle.running()
    get_logger().info("replay started", files=len(paths), logdir=str(logdir), workers=workers)
    try:
        outcome = replay(config, paths, ruleset, logdir, workers, lifecycle)
    except OSError as exc:
        raise InputError(f"cannot write output: {exc}") from None
    result = outcome.result
    if not args.quiet:
        eve = (config.get("outputs") or {}).get("eve-log") or {}
        eve_path = logdir / str(eve.get("filename") or "eve.json") if eve.get("enabled") else None
        print(format_summary(result, eve_path, inline=bool((config.get("stream") or {}).get("inline"))),
              flush=True)
    stopped_by = lifecycle.stopped_by
    if stopped_by is not None:
        how = ("the end-of-run flush was cut short by a second signal" if outcome.interrupted
               else "output is complete up to there")
        print(f"netsentry: interrupted by {signal_name(stopped_by)} after {result.packets:,} packets; {how}",
              file=sys.stderr)
    if outcome.workers.failed:
        print(f"netsentry: {outcome.workers.describe()}", file=sys.stderr)
    if outcome.capture_error is not None:
        print(f"netsentry: {outcome.capture_error}", file=sys.stderr)
    if stopped_by is None and outcome.workers.failed:
        return EXIT_WORKER_FAILED
    return lifecycle.exit_code(stopped_by, ok=outcome.capture_error is None and not outcome.workers.failed)
