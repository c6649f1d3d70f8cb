"""``netsentry run``: the long-lived sensor on live traffic (AF_PACKET IDS or NFQUEUE IPS).

The same pipeline as replay (sensor.py), with three differences:

- the packet source is live (capture/afpacket.py, capture/nfqueue.py): wall-
  clock timestamps, and a wake-up at least once a second so that timers
  advance on a quiet link: `Sensor.tick(now)` times out flows and closes the
  anomaly engine's seconds, a stats record is written every
  ``stats.interval`` seconds and the outputs are flushed;
- inline (``-q``), every packet gets a verdict: drop/reject verdicts go to
  respond/verdict.py, the source accepts the rest;
- file outputs append (a restart never truncates eve.json).

Start-up order matters to an admin: the configuration, the BPF filters, the
rules and the outputs are all validated and built before any socket or queue
is opened, so a mistake is one line and exit 2 (1 for unreadable input) and
never a half-started sensor holding a queue. SIGINT/SIGTERM stop it cleanly
(the loop ends, flows and outputs are flushed, the final stats record and
the anomaly state file are written) with exit 0; signals belong to
lifecycle.py.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from netsentry.config import Config, ConfigError, get

# Suricata's default stats interval (seconds)
DEFAULT_STATS_INTERVAL = 8
# nfq.batchcount: see docs/daemon.md for the measurement behind it
DEFAULT_BATCHCOUNT = 20


def add_parser(sub: Any) -> None:
    """Register ``run`` on the CLI's subcommand parser (cli.py calls this)."""
    run = sub.add_parser("run", help="run the sensor on live traffic (AF_PACKET IDS or NFQUEUE IPS)",
                         description="Capture live traffic: -i IFACE (passive IDS, AF_PACKET) or "
                                     "-q QUEUE / -q A:B (inline IPS, NFQUEUE). Runs until SIGINT/SIGTERM; "
                                     "appends to LOGDIR/eve.json.")
    run.add_argument("-i", dest="interfaces", action="append", default=[], metavar="IFACE",
                     help="capture on this interface (AF_PACKET; may repeat)")
    run.add_argument("-q", dest="queues", action="append", default=[], metavar="QUEUE",
                     help="inline on this NFQUEUE number or range A:B (may repeat)")
    from netsentry.cli import pipeline_flags
    pipeline_flags(run, bpf_help="read the capture filter (tcpdump syntax) from this file (AF_PACKET)")
    from netsentry.workers import add_worker_flags
    add_worker_flags(run)
    run.add_argument("--user", metavar="USER", help="run as this user once the sockets are open (run-as.user)")
    run.add_argument("--group", metavar="GROUP", help="run as this group (run-as.group; default: the user's)")


def apply_run_flags(config: Config, args: argparse.Namespace) -> None:
    """Fold the command line into the configuration, so that -i/-q/-F and the config keys are one thing."""
    from netsentry.cli import apply_replay_flags
    args.simulate_ips = False
    apply_replay_flags(config, args)
    if args.interfaces:
        config["af-packet"]["interfaces"] = list(config["af-packet"].get("interfaces") or []) + list(args.interfaces)
    if args.queues:
        config["nfq"]["queues"] = ",".join(args.queues)
    if args.bpf_file:
        from netsentry.capture.bpf import BpfError, read_filter_file
        try:
            config["af-packet"]["bpf-filter"] = read_filter_file(args.bpf_file)
        except BpfError as exc:
            raise ConfigError(str(exc)) from None


def batchcount(config: Config) -> int:
    """``nfq.batchcount`` (Suricata's key): accepted packets told to the kernel in one message."""
    value = get(config, "nfq.batchcount", DEFAULT_BATCHCOUNT)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise ConfigError(f"expected a number of packets from 1 (no batching) to 1000, got {value!r}",
                          "nfq.batchcount")
    return value


def stats_interval(config: Config) -> int:
    value = get(config, "stats.interval", DEFAULT_STATS_INTERVAL)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"expected a whole number of seconds >= 1, got {value!r}", "stats.interval")
    return value


def cmd_run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``netsentry run``. Signals are lifecycle.py's from start-up on: a stop signal before the
    capture runs ends start-up at once (nothing is open yet); after, it drains."""
    from netsentry.lifecycle import Lifecycle, StopRequested
    lc = Lifecycle("daemon")
    try:
        with lc:
            return _start(args, lc)
    except StopRequested:
        return lc.exit_code(lc.stopped_by, ok=True)


def _start(args: argparse.Namespace, lc: Any) -> int:
    from netsentry.capture.afpacket import check_filters, interface_exists, interfaces_from_config
    from netsentry.capture.nfqueue import queues_from_config
    from netsentry.cli import InputError, UsageError, _setup_logging, load_ruleset, rule_profiler
    from netsentry.lifecycle import signal_name
    from netsentry.config import load_config

    config = load_config(args.config, args.overrides, args.suricata_config)
    apply_run_flags(config, args)
    _setup_logging(config)
    interfaces = interfaces_from_config(config)
    queues = queues_from_config(config)
    if interfaces and queues:
        raise UsageError("netsentry run: capture with -i IFACE (IDS) or -q QUEUE (IPS), not both")
    if not interfaces and not queues:
        raise UsageError("netsentry run: give -i IFACE or -q QUEUE (or af-packet.interfaces / nfq.queues "
                         "in the configuration)")
    if queues:
        config["stream"]["inline"] = True
    for i, iface in enumerate(interfaces):
        if not interface_exists(iface.name):
            raise ConfigError(f"no such network interface: {iface.name}", f"af-packet.interfaces[{i}]")
    programs = check_filters(interfaces)
    interval = stats_interval(config)
    batchcount(config)          # checked before anything opens
    maxlen = get(config, "nfq.queue-maxlen", 4096)
    if isinstance(maxlen, bool) or not isinstance(maxlen, int) or not 1 <= maxlen <= 1 << 24:
        raise ConfigError(f"expected a number of packets from 1 to {1 << 24}, got {maxlen!r}", "nfq.queue-maxlen")
    # run appends: a restart (or a crash and restart by systemd) must not truncate eve.json
    for section in (config.get("outputs") or {}).values():
        if isinstance(section, dict) and "append" in section:
            section["append"] = True

    from netsentry import privileges
    from netsentry.operations import Operations
    try:
        privileges.from_config(config, args.user, args.group)     # an unknown user stops start-up here
    except privileges.PrivilegeError as exc:
        raise ConfigError(str(exc)) from None
    ruleset = load_ruleset(config)
    from netsentry.output import OutputContext, open_outputs
    from netsentry.sensor import Sensor
    sensor = Sensor(config, [], ruleset)     # every stage's settings checked before anything opens
    from netsentry.workers_live import plan_workers, run_workers
    plan = plan_workers(config, args, interfaces, queues)
    if plan.count > 1:                       # N worker processes (workers_live.py)
        if getattr(args, "profile_rules", False):
            raise UsageError("--profile-rules runs in one process: use --workers 1")
        del sensor
        return run_workers(args, config, lc, plan, programs, ruleset, interval, maxlen)
    profiler = rule_profiler(args, sensor)   # --profile-rules (the engine of start-up; not after a reload)
    # reload (SIGUSR2, ctl reload) re-reads the configuration as start-up built it
    ops = Operations(sensor, config, lambda: _reload_config(args, bool(queues)))
    lc.running()                # outputs open next: from here a stop signal drains instead
    try:
        outputs = open_outputs(config.get("outputs") or {}, OutputContext(
            logdir=Path(args.logdir), ips=bool(get(config, "stream.inline", False))))
    except OSError as exc:
        raise InputError(str(exc)) from None
    sensor.attach_outputs(outputs)

    from netsentry.log import get_logger
    log = get_logger()
    try:
        source, verdicts = _open_source(config, interfaces, programs, queues, ruleset, maxlen)
    except OSError as exc:
        for out in outputs:
            out.close()
        raise InputError(str(exc)) from None
    if verdicts is not None:
        sensor.verdict_sink = verdicts.on_verdict
        sensor.counter_sources.append(verdicts.stats)
        ops.reloader.on_swap.append(lambda rs: setattr(verdicts, "actions", _rule_actions(rs)))
    try:
        ops.start()                          # the control socket, as root
        privileges.apply(config, args.user, args.group, chown=ops.owned_paths() + _output_paths(outputs))
    except (OSError, privileges.PrivilegeError) as exc:
        ops.stopping()
        source.close()
        for out in outputs:
            out.close()
        raise InputError(str(exc)) from None
    mode = "ips" if queues else "ids"
    log.info("capture started", mode=mode, interfaces=interfaces and [i.name for i in interfaces],
             queues=queues or None, fail_open=bool(get(config, "nfq.fail-open", True)) if queues else None,
             logdir=str(args.logdir), pid=os.getpid())
    try:
        try:
            _run(sensor, source, outputs, interval, lc, ops)
        finally:
            ops.stopping()                   # systemd: STOPPING=1; the control socket closes
        result = sensor.finish(lc)
        if profiler is not None:
            profiler.report(args.logdir)
    except OSError as exc:
        raise InputError(f"cannot write output: {exc}") from None
    except ImportError as exc:      # privileges.py: nothing may be loaded after the drop
        raise InputError(str(exc)) from None
    finally:
        source.close()
        if verdicts is not None and verdicts.rejecter is not None:
            verdicts.rejecter.close()
    log.info("capture stopped", signal=signal_name(lc.stopped_by), packets=result.packets,
             alerts=result.alerts, drops=result.drops, flows=result.flows, interrupted=lc.interrupted)
    return lc.exit_code(lc.stopped_by, ok=True)     # the daemon exits 0 after a clean drain


def _open_source(config: Config, interfaces: list[Any], programs: dict[str, Any], queues: list[int],
                 ruleset: Any, maxlen: int) -> tuple[Any, Any]:
    """Open the sockets or queues (the first thing that needs root)."""
    if interfaces:
        from netsentry.capture.afpacket import AfPacketSource
        return AfPacketSource(interfaces, programs), None
    from netsentry.capture.nfqueue import NfqueueSource
    from netsentry.respond.reject import Rejecter
    from netsentry.respond.verdict import InlineVerdicts
    rejecter = Rejecter()
    try:
        source = NfqueueSource(queues, fail_open=bool(get(config, "nfq.fail-open", True)), maxlen=maxlen,
                               batchcount=batchcount(config))
    except BaseException:
        rejecter.close()
        raise
    return source, InlineVerdicts(source, rejecter, _rule_actions(ruleset))


def _output_paths(outputs: list[Any]) -> list[str]:
    """The files the outputs opened as root: the run-as user must own them to reopen them
    (SIGHUP after logrotate) and, for a new file, so that the log belongs to the daemon."""
    paths = []
    for out in outputs:
        for holder in (out, getattr(out, "chain", None)):
            path = getattr(holder, "path", None)
            if path is not None and os.path.exists(path):
                paths.append(str(path))
    return paths


def _rule_actions(ruleset: Any) -> dict[tuple[int, int], str]:
    return {(s.gid, s.sid): s.action for s in getattr(ruleset, "signatures", None) or ()}


def _reload_config(args: argparse.Namespace, inline: bool) -> Config:
    """The configuration as start-up built it, read again (rule reload: reload.py)."""
    from netsentry.config import load_config
    config = load_config(args.config, args.overrides, args.suricata_config)
    apply_run_flags(config, args)
    if inline:
        config["stream"]["inline"] = True
    return config


def _run(sensor: Any, source: Any, outputs: list[Any], interval: int, lc: Any, ops: Any = None) -> None:
    """The capture loop, until a stop signal (the source sees lifecycle.stop_requested)."""
    source.should_stop = lambda: lc.stop_requested
    source.on_tick = _ticker(sensor, outputs, interval, lc.poll, ops)
    lc.on_reopen(lambda: _reopen(outputs))
    wake = None
    if ops is not None:
        lc.on_reload(ops.on_reload)          # SIGUSR2: rule reload (reload.py)
        wake = _prompt(source, ops)
        ops.ready()                          # systemd: READY=1
    try:
        sensor.run(source)
    finally:
        if wake is not None:
            wake.close()


def _prompt(source: Any, ops: Any) -> Any:
    """ctl commands and a finished reload wake the source at once (capture/live.py `Wake`):
    answered within a batch, not at the next once-a-second tick."""
    from netsentry.capture.live import Wake
    wake = Wake()
    source.wake = wake
    if ops.control is not None:
        ops.control.wakeup = wake.set
    ops.reloader.wakeup = wake.set
    return wake


def _reopen(outputs: list[Any]) -> None:
    """SIGHUP: outputs that can reopen their files (logrotate) do; the others carry on."""
    for out in outputs:
        reopen = getattr(out, "reopen", None)
        if reopen is not None:
            reopen()


def _ticker(sensor: Any, outputs: list[Any], interval: int,
            poll: Callable[[], Any] | None, ops: Any = None) -> Callable[[float], None]:
    """The source's once-a-second wake-up: timers, periodic stats, output flush, pending signals."""
    import time
    next_stats = [time.time() + interval]
    enabled = bool(get(sensor.config, "stats.enabled", True))

    def on_tick(now: float) -> None:
        if poll is not None:
            poll()
        sensor.tick(now)
        if ops is not None:
            ops.tick(now)           # control commands, a finished reload, block list expiry, watchdog
        if enabled and now >= next_stats[0]:
            next_stats[0] = now + interval
            sensor.write_stats(now)
        for out in outputs:
            out.flush()
    return on_tick
