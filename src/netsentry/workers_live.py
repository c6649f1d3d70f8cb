"""``netsentry run`` with N worker processes: the kernel shares the traffic, the parent runs the daemon.

Why processes, and why this shape: the pipeline is Python, so one process
uses one core. Each worker is a whole `Sensor` (decode, flow, both engines,
outputs) that opens its *own* packet source after the fork, and the kernel
does the sharding, so no packet crosses a process boundary:

- AF_PACKET: every worker's socket joins the interface's ``PACKET_FANOUT``
  group (capture/afpacket.py; ``cluster_flow`` is the kernel's symmetric flow
  hash, so both directions of a flow reach one worker). An interface's
  ``threads`` sets how many workers capture on it (default: the worker count).
- NFQUEUE: each worker binds its own queues of ``-q A:B`` (one queue per
  worker by default; the iptables rule's ``--queue-balance A:B`` hashes the
  flow). A queue whose worker is down is bypassed by ``--queue-bypass``.

The parent validates the configuration and the rules before any worker
starts, and then owns everything that is about the daemon rather than about
packets: signals (lifecycle.py), the control socket (control.py), rule reload
(built and checked here once, then handed to every worker), the periodic
stats record (the workers' counters merged, `workers.merge_counters`),
systemd's READY/WATCHDOG, and restarting a worker that dies (with back-off).

Parent and worker talk over one duplex pipe per worker, in tuples whose
first item is the kind, dispatched through tables (`WORKER_CALLS` in the
worker, `PARENT_MESSAGES` in the parent):

- parent -> worker: ``("call", seq, name, args)``; the worker answers
  ``("reply", seq, payload)``. Names: ``counters``, ``reload``, ``bl-add``,
  ``bl-del``, ``bl-list``, ``reopen``.
- worker -> parent, unasked: ``("blocked", info)`` when it blocked a source by
  itself (the parent blocks it in the others), ``("ready", info)`` once its source is open,
  ``("alive", now)`` at every wake-up (the watchdog), ``("final", info)``
  after its end-of-run flush, and host-keyed state for the parent's host
  judge: hoststate.py's own messages ``("tick", ...)``/``("end", ...)``,
  pickled once by the worker's `WorkerLink` and sent without an envelope
  (``HostJudge.feed(msg)``; the parent calls ``HostJudge.tick(now)`` once a
  second), or ``("host", msg)`` from a stage through ``sensor.host_sink`` (a
  callable set on each worker's sensor; absent with one worker, so stages
  look it up with ``getattr(sensor, "host_sink", None)``). A ``reload``
  answer carries ``host_seq``: the worker's first message under the new set.

The host judge (`Supervisor.start_host_judge`, when hoststate.needed): the
anomaly engine runs once, in the parent, and rules decided by host state
are counted there; its anomaly alerts block their source in every worker
(``respond.blocklist.on-anomaly``). docs/architecture.md "Host-keyed state".

A worker handles the parent's calls between packets: the parent sets a byte
of shared memory after each send (`ParentWake`), which the packet source
reads between batches and whose pipe wakes its poll on an idle link, so a
``ctl`` answer takes one batch, not one tick.

EVE: every worker appends to the one eve.json (opened ``O_APPEND``; the EVE
writer's buffer holds whole lines and writes them in one ``write()``, so
lines of different workers never interleave), or with
``outputs.eve-log.threaded: true`` to its own ``eve.<i>.json`` (Suricata's
threaded eve-log). The parent appends the stats records to eve.json.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import sys
import time
from collections.abc import Callable, Mapping
from copy import deepcopy
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from netsentry.config import ConfigError, get

# restart back-off: first restart after this many seconds, doubled per quick death, capped
RESTART_FIRST = 0.5
RESTART_MAX = 10.0
RESTART_STABLE = 60.0        # a worker that lived this long restarts quickly again
# a broadcast call not answered by every worker within this long is answered with what came
CALL_TIMEOUT = 5.0
RELOAD_TIMEOUT = 300.0       # each worker builds the new engine (seconds for ET Open)
# a worker that has sent nothing for this long counts as hung (no WATCHDOG keep-alive)
ALIVE_TIMEOUT = 5.0
# the parent's longest sleep (seconds) when nothing happens
PARENT_TICK = 1.0

# the rule-related parts of the configuration a reload re-reads (reload.py)
RULE_KEYS = ("vars", "default-rule-path", "rule-files", "classification-file", "reference-config-file",
             "threshold", "rule-management", "detect")


# --- how many workers, and what each one captures ------------------------------------------


@dataclass
class WorkerPlan:
    """Worker i captures on `interfaces[i]` (AF_PACKET) or binds `queues[i]` (NFQUEUE)."""

    count: int
    interfaces: list[list[Any]] = field(default_factory=list)
    queues: list[list[int]] = field(default_factory=list)


def plan_workers(config: Mapping[str, Any], args: Any, interfaces: list[Any], queues: list[int]) -> WorkerPlan:
    """The worker count and each worker's share of the sources.

    ``--runmode single`` is one worker; else ``--workers``; else, for NFQUEUE,
    one worker per queue unless ``runtime.workers`` says otherwise; for
    AF_PACKET, ``runtime.workers``, overridden per interface by its
    ``threads`` (the workers then number the largest ``threads``; worker i
    captures on the interfaces whose ``threads`` exceed i)."""
    from netsentry.workers import resolve_workers, workers_for_replay
    flag = getattr(args, "workers", None)
    runmode = getattr(args, "runmode", None)
    setting = workers_for_replay(config, args)          # --runmode single / --workers / runtime.workers
    if queues:
        if runmode == "single":
            return WorkerPlan(1, queues=[list(queues)])
        n = setting if (flag is not None or setting != 1) else len(queues)
        if n > len(queues):
            where = "--workers" if flag is not None else "runtime.workers"
            raise ConfigError(f"{n} workers need at least {n} NFQUEUE queues (-q A:B), got {len(queues)}", where)
        return WorkerPlan(n, queues=[queues[i::n] for i in range(n)])
    threads = []
    for i, iface in enumerate(interfaces):
        t = getattr(iface, "threads", None)
        threads.append(setting if t is None or runmode == "single" else
                       resolve_workers(t, f"af-packet.interfaces[{i}].threads"))
    n = max(threads) if threads else 1
    return WorkerPlan(n, interfaces=[[iface for iface, t in zip(interfaces, threads) if t > i]
                                     for i in range(n)])


def live_worker_config(config: Mapping[str, Any], index: int, workers: int) -> dict[str, Any]:
    """A worker's configuration: no stats record (the parent writes the merged one), EVE appended
    to the shared file (or its own with ``threaded: true``), no anomaly state file (the parent's
    host judge runs the one engine and owns the file; a worker only observes, hoststate.py)."""
    from netsentry.workers import part_path, without_stats
    cfg = without_stats(config)
    for section in (cfg.get("outputs") or {}).values():
        if isinstance(section, dict) and "append" in section:
            section["append"] = True
    eve = (cfg.get("outputs") or {}).get("eve-log")
    if isinstance(eve, dict) and eve.get("threaded"):
        eve["filename"] = part_path(str(eve.get("filename") or "eve.json"), index)
    anomaly = cfg.get("anomaly")
    if isinstance(anomaly, dict) and anomaly.get("state-file"):
        anomaly["state-file"] = ""
    return cfg


def check_outputs(config: Mapping[str, Any]) -> None:
    """What N writers cannot share: an integrity chain needs one writer per file."""
    eve = (config.get("outputs") or {}).get("eve-log") or {}
    if (isinstance(eve, Mapping) and eve.get("enabled") and not eve.get("threaded")
            and str(eve.get("integrity") or "none") != "none"):
        raise ConfigError("an integrity chain needs one writer per file: with several workers set "
                          "outputs.eve-log.threaded: true (one eve.<i>.json each)", "outputs.eve-log.integrity")


# --- the worker side --------------------------------------------------------------------------


class ParentWake:
    """The worker's `capture.live.Wake`: the flag is a byte the parent sets after each send, the
    descriptor is the pipe from the parent itself (readable when a message waits)."""

    def __init__(self, flag: Any, conn: Any) -> None:
        self._flag = flag
        self.fd = conn.fileno()

    @property
    def pending(self) -> bool:
        return bool(self._flag.value)

    def clear(self) -> None:
        self._flag.value = 0         # before the pipe is read: a later send sets it again

    def close(self) -> None:
        return None


@dataclass
class WorkerSpec:
    """What one worker needs; handed over by fork (the ruleset is never pickled at start)."""

    index: int
    workers: int
    config: dict[str, Any]
    ruleset: Any
    logdir: Path
    interfaces: list[Any]
    programs: dict[str, Any]
    queues: list[int]
    maxlen: int
    user: str | None
    group: str | None
    close_fds: list[int]
    host: bool = False          # host-keyed state goes to the parent's judge (hoststate.py)


class WorkerContext:
    """A running worker: its sensor, source and the parent's pipe."""

    def __init__(self, spec: WorkerSpec, conn: Any, lifecycle: Any) -> None:
        self.spec = spec
        self.conn = conn
        self.lc = lifecycle
        self.sensor: Any = None
        self.source: Any = None
        self.verdicts: Any = None
        self.outputs: list[Any] = []
        self.link: Any = None          # hoststate.WorkerLink when the parent judges host state

    def send_host(self, data: bytes) -> None:
        """A pickled hoststate message, sent as is (the parent's recv unpickles it once)."""
        try:
            self.conn.send_bytes(data)
        except (OSError, ValueError):
            pass

    def send(self, message: tuple[Any, ...]) -> None:
        try:
            self.conn.send(message)
        except (OSError, ValueError):
            pass                # the parent is gone: the worker ends at its next stop check

    def drain(self) -> None:
        """Run every call the parent sent (between packets)."""
        conn = self.conn
        while True:
            try:
                if not conn.poll():
                    return
                message = conn.recv()
            except (EOFError, OSError):
                # the parent died: stop (systemd restarts the whole service)
                self.lc.stop_requested = True
                return
            if message[0] != "call":
                continue
            _, seq, name, args = message
            handler = WORKER_CALLS.get(name)
            try:
                payload = handler(self, args) if handler is not None else {"ok": False,
                                                                           "error": f"unknown call {name}"}
            except Exception as exc:          # noqa: BLE001 - one call's failure must not stop capture
                payload = {"ok": False, "error": f"{name} failed: {exc}"}
            self.send(("reply", seq, payload))


def _call_counters(ctx: WorkerContext, args: Any) -> dict[str, Any]:
    return {"ok": True, "counters": ctx.sensor.counters()}


def _call_reload(ctx: WorkerContext, args: Any) -> dict[str, Any]:
    """The parent built and checked this set; build its engine here and swap between packets."""
    from netsentry.reload import Built, build_engine
    ruleset, rule_config = pickle.loads(take_over(ctx.conn))   # noqa: S301 - our parent's, sealed
    config = dict(ctx.sensor.config)
    config.update({k: v for k, v in rule_config.items() if k in RULE_KEYS})
    if args.get("load"):
        # the set could not be pickled (keyword tests are closures): read the same files
        from netsentry.reload import load_new_ruleset
        ruleset = load_new_ruleset(config).ruleset
    engine = build_engine(Built(ruleset, config, 0.0))
    link = ctx.link
    if link is not None:
        from netsentry.hoststate import defer_engine_rules
        # the old set's candidates leave before this answer, which names the first
        # message of the new set's (the capture loop takes the swap before its next packet)
        link.advance(time.time(), 0)
        defer_engine_rules(ctx.sensor, engine, link)
    ctx.sensor.swap_ruleset(ruleset, engine)
    if ctx.verdicts is not None:
        from netsentry.daemon import _rule_actions
        ctx.verdicts.actions = _rule_actions(ruleset)
    answer = {"ok": True, "signatures": len(ruleset.signatures) if ruleset is not None else 0}
    if link is not None:
        answer["host_seq"] = link.seq       # this worker's first message under the new set
    return answer


def hand_over(conn: Any, data: bytes) -> None:
    """Send `data` (a reload's pickled ruleset) to the worker at the other end of `conn`, right
    after the call that asks for it: written once into an anonymous memory file (memfd: no
    path, gone when the last descriptor closes), sealed, and its descriptor passed over the
    worker's own pipe (SCM_RIGHTS). Why not the bytes on the pipe itself: a ruleset is tens
    of megabytes, and a blocking send of that size to a worker busy with packets (it reads
    the pipe between batches, and may itself be blocked sending host-state batches the parent
    is not reading while it sends) could stall both; a descriptor is one small message."""
    import fcntl
    from multiprocessing import reduction
    fd = os.memfd_create("netsentry-rules", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS,
                    fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
        reduction.send_handle(conn, fd, 0)
    finally:
        os.close(fd)


def take_over(conn: Any) -> bytes:
    """The worker's end of `hand_over`: the descriptor that follows the call on the pipe, read
    whole from offset 0 (the open file is shared with the parent and the other workers, so
    its offset is not ours to move)."""
    from multiprocessing import reduction
    fd = reduction.recv_handle(conn)
    try:
        size = os.fstat(fd).st_size
        chunks = []
        off = 0
        while off < size:
            chunk = os.pread(fd, size - off, off)
            if not chunk:
                break
            chunks.append(chunk)
            off += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _blocklist(ctx: WorkerContext) -> Any:
    responder = ctx.sensor.responder
    if responder is None:
        raise ValueError("the block list is off (respond.blocklist.enabled: false)")
    return responder.blocklist


def _call_bl_add(ctx: WorkerContext, args: Any) -> dict[str, Any]:
    blocklist = _blocklist(ctx)
    add = getattr(blocklist, "local_add", blocklist.add)      # not reported back to the parent
    added = add(args["packed"], args.get("reason", "manual (ctl)"), ttl=args.get("ttl"))
    return {"ok": bool(added)}


def share_blocks(ctx: WorkerContext, blocklist: Any) -> None:
    """A source this worker blocks by itself (anomaly or rule triggered) is reported to the
    parent, which blocks it in every other worker too: one host's flows land in several."""
    local_add = blocklist.add

    def add(packed: bytes, reason: str, ttl: float | None = None, now: float | None = None) -> bool:
        new = packed not in blocklist.entries
        added = local_add(packed, reason, ttl=ttl, now=now)
        if added and new:
            ctx.send(("blocked", {"packed": packed, "reason": reason, "ttl": ttl}))
        return bool(added)
    blocklist.local_add = local_add
    blocklist.add = add


def _call_bl_del(ctx: WorkerContext, args: Any) -> dict[str, Any]:
    return {"ok": bool(_blocklist(ctx).remove(args["packed"]))}


def _call_bl_list(ctx: WorkerContext, args: Any) -> dict[str, Any]:
    return {"ok": True, "entries": _blocklist(ctx).listing()}


def _call_reopen(ctx: WorkerContext, args: Any) -> dict[str, Any]:
    for out in ctx.outputs:
        reopen = getattr(out, "reopen", None)
        if reopen is not None:
            reopen()
    return {"ok": True}


# the calls a worker answers: name -> handler(context, args) -> payload (a dict with "ok")
WORKER_CALLS: dict[str, Callable[[WorkerContext, Any], dict[str, Any]]] = {
    "counters": _call_counters,
    "reload": _call_reload,
    "bl-add": _call_bl_add,
    "bl-del": _call_bl_del,
    "bl-list": _call_bl_list,
    "reopen": _call_reopen,
}


def _worker_main(spec: WorkerSpec, conn: Any, flag: Any) -> None:
    """One worker: open the source, capture until SIGTERM, flush, report (child process)."""
    signal.set_wakeup_fd(-1)             # the parent's (a restarted worker inherits it)
    for fd in spec.close_fds:            # the parent's other pipes, control socket, wake pipe
        try:
            os.close(fd)
        except OSError:
            pass
    os.environ.pop("NOTIFY_SOCKET", None)    # systemd hears the parent only
    from netsentry.lifecycle import Lifecycle
    lc = Lifecycle("daemon")
    with lc:
        # Ctrl-C reaches the whole group and SIGUSR2 is the parent's: the parent decides
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
        lc.running()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, (signal.SIGINT, signal.SIGTERM, signal.SIGHUP))
        ctx = WorkerContext(spec, conn, lc)
        try:
            status = _worker_run(ctx, flag)
        except Exception as exc:       # noqa: BLE001 - one line to the parent, which logs and restarts
            ctx.send(("final", {"error": f"{type(exc).__name__}: {exc}" if not isinstance(exc, OSError)
                                else str(exc)}))
            status = 1
    conn.close()
    sys.stdout.flush()
    os._exit(status)


def _worker_run(ctx: WorkerContext, flag: Any) -> int:
    from netsentry import privileges
    from netsentry.daemon import _open_source, _reopen, _ticker
    from netsentry.operations import build_responder
    from netsentry.output import OutputContext, open_outputs
    from netsentry.sensor import Sensor

    spec = ctx.spec
    config = live_worker_config(spec.config, spec.index, spec.workers)
    sensor = Sensor(config, [], spec.ruleset)
    sensor.live = True
    sensor.host_sink = lambda msg: ctx.send(("host", msg))     # the host judge's seam (hoststate.py)
    ctx.sensor = sensor
    if get(config, "respond.blocklist.enabled", True):
        share_blocks(ctx, build_responder(sensor, config).blocklist)
    outputs = open_outputs(config.get("outputs") or {}, OutputContext(
        logdir=spec.logdir, ips=bool(get(config, "stream.inline", False))))
    ctx.outputs = outputs
    sensor.attach_outputs(outputs)
    try:
        source, verdicts = _open_source(config, spec.interfaces, spec.programs, spec.queues,
                                        spec.ruleset, spec.maxlen)
    except OSError:
        for out in outputs:
            out.close()
        raise
    ctx.source, ctx.verdicts = source, verdicts
    if verdicts is not None:
        sensor.verdict_sink = verdicts.on_verdict
        sensor.counter_sources.append(verdicts.stats)
    link = None
    if spec.host:
        from netsentry.hoststate import attach_worker
        # the anomaly stage observes, deferred rules forward; each worker numbers only its own
        # packets, so the judge (HostJudge.live) merges by second and packet time
        link = ctx.link = attach_worker(sensor, config, spec.ruleset, spec.index, source, ctx.send_host)
        link.advance(time.time(), 0)        # the clock starts now: idle seconds are sent too
    if os.geteuid() == 0 and spec.user is not None:
        # as the one-process daemon does (the parent says once that it stays root otherwise)
        privileges.drop(privileges.resolve(spec.user, spec.group or ""))
    lc = ctx.lc
    tick = _ticker(sensor, outputs, 1 << 30, None)           # flows, anomaly, flush; no stats record
    responder = sensor.responder

    def on_tick(now: float) -> None:
        lc.poll()
        ctx.drain()
        tick(now)
        if link is not None:
            link.tick(now)          # (the observer did it in tick when the anomaly stage is on)
        if responder is not None:
            responder.tick(now)
        ctx.send(("alive", now))

    source.on_tick = on_tick
    source.should_stop = lambda: lc.stop_requested
    source.wake = ParentWake(flag, ctx.conn)
    lc.on_reopen(lambda: _reopen(outputs))
    ctx.send(("ready", {"pid": os.getpid(), "interfaces": [i.name for i in spec.interfaces],
                        "queues": spec.queues}))
    try:
        try:
            sensor.run(source)
        finally:
            result = sensor.finish(lc)
            if link is not None:
                link.close()        # after the shutdown flush (the observer's close did it already)
    finally:
        source.close()
        if verdicts is not None and verdicts.rejecter is not None:
            verdicts.rejecter.close()
    ctx.send(("final", {"counters": result.counters, "packets": result.packets, "alerts": result.alerts,
                        "drops": result.drops, "flows": result.flows, "interrupted": lc.interrupted}))
    return 0


# --- the parent side ------------------------------------------------------------------------


class LineFile:
    """The host judge's deferred-rule alert lines, appended to a file the workers also append to.

    Opened ``O_APPEND`` and written one whole line per ``write()`` (unbuffered), so
    a line never tears against a worker's and is on disk as soon as it is decided."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = self._open()
        self.lines = 0

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)

    def write(self, line: bytes) -> None:
        view = memoryview(line)
        while view:                     # a regular file takes it whole; a short write goes on
            view = view[os.write(self.fd, view):]
        self.lines += 1

    def reopen(self) -> None:
        """SIGHUP (logrotate moved the file): the same name, a new file."""
        fd = self._open()
        os.close(self.fd)
        self.fd = fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


@dataclass
class HostParts:
    """The parent's host judge and what it writes through (Supervisor.start_host_judge)."""

    judge: Any                      # hoststate.HostJudge
    sink: Any                       # hoststate.EventSink: the anomaly engine's alerts, to `outputs`
    outputs: list[Any]
    lines: LineFile | None          # deferred rules' alert lines (None: no eve-log)

    def flush(self) -> None:
        for out in self.outputs:
            out.flush()

    def reopen(self) -> None:
        for out in self.outputs:
            reopen = getattr(out, "reopen", None)
            if reopen is not None:
                reopen()
        if self.lines is not None:
            self.lines.reopen()

    def close(self) -> None:
        for out in self.outputs:
            out.close()
        if self.lines is not None:
            self.lines.close()


@dataclass
class Slot:
    """One worker position (its share of the sources); its process changes on restart."""

    index: int
    proc: Any = None
    conn: Any = None
    flag: Any = None
    started: float = 0.0
    ready: bool = False
    last_seen: float = 0.0
    restart_at: float | None = None
    backoff: float = RESTART_FIRST
    restarts: int = 0
    final: dict[str, Any] | None = None
    last_counters: dict[str, int | float] = field(default_factory=dict)
    retired: dict[str, int | float] = field(default_factory=dict)   # earlier lives' counts (restarts)


@dataclass
class Gather:
    """A call sent to several workers; `done` runs once all answered (or on timeout)."""

    waiting: set[int]
    done: Callable[[dict[int, dict[str, Any]]], None]
    deadline: float
    answers: dict[int, dict[str, Any]] = field(default_factory=dict)


class Supervisor:
    """The parent: starts, watches and restarts workers, and runs the daemon around them."""

    def __init__(self, args: Any, config: dict[str, Any], lc: Any, plan: WorkerPlan, programs: dict[str, Any],
                 ruleset: Any, interval: int, maxlen: int) -> None:
        from netsentry import notify
        from netsentry.control import ControlServer
        from netsentry.operations import socket_path
        self.args = args
        self.config = config
        self.lc = lc
        self.plan = plan
        self.programs = programs
        self.ruleset = ruleset
        self.interval = interval
        self.maxlen = maxlen
        self.logdir = Path(args.logdir)
        self.slots = [Slot(i) for i in range(plan.count)]
        self.ctx = multiprocessing.get_context("fork")
        self.seq = 0
        self.gathers: dict[int, Gather] = {}
        self.counters = {"netsentry.worker.restarts": 0, "netsentry.reload.success": 0,
                         "netsentry.reload.failed": 0, "netsentry.blocklist.judge_added": 0,
                         "netsentry.blocklist.judge_refused_allowed": 0}
        self.watchdog = notify.Watchdog()
        self.notified_ready = False
        self.started = time.monotonic()
        self.stats_enabled = bool(get(config, "stats.enabled", True))
        self.next_stats = time.time() + interval
        self.stats_outputs: list[Any] = []
        self.manual_blocks: dict[bytes, tuple[str, float | None]] = {}   # packed -> (reason, expiry)
        self.allow = None            # a block list used only for its allow list (ctl add checks it)
        self.host_judge: Any = None  # hoststate.HostJudge when host state is kept: feed(msg), tick(now)
        self.host: HostParts | None = None
        self.block_on_anomaly = False  # respond.blocklist.on-anomaly: the judge's flagged sources, everywhere
        self.fatal: str | None = None  # why start-up failed (a worker could not open its source)
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        # reload: one build at a time; a request during a build runs once more after it
        from netsentry.reload import BackgroundBuilds
        self._reloads = BackgroundBuilds(self._reload_build, self.wake)
        self.control: Any = None
        path = socket_path(config)
        if path is not None:
            self.control = ControlServer(path, self.commands())
            self.control.wakeup = self.wake

    # --- plumbing -------------------------------------------------------------------------

    def wake(self) -> None:
        """Any thread: the main loop's wait ends now (control socket, reload build)."""
        try:
            os.write(self._wake_w, b"!")
        except OSError:
            pass

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _parent_fds(self) -> list[int]:
        fds = [self._wake_r, self._wake_w]
        for slot in self.slots:
            if slot.conn is not None:
                fds.append(slot.conn.fileno())
        sock = getattr(self.control, "_sock", None) if self.control is not None else None
        if sock is not None:
            fds.append(sock.fileno())
        return fds

    def start_worker(self, slot: Slot) -> None:
        """Fork the worker of `slot`; it opens its own source (fanout member / its queues)."""
        from netsentry import privileges
        for out in self.stats_outputs:
            out.flush()                 # nothing buffered is copied into the child
        run_as = privileges.from_config(self.config, self.args.user, self.args.group)
        if self.host is not None:
            self.host.flush()
            self.host_judge.worker_started(slot.index)
        spec = WorkerSpec(slot.index, self.plan.count, self.config, self.ruleset, self.logdir,
                          self.plan.interfaces[slot.index] if self.plan.interfaces else [],
                          self.programs, self.plan.queues[slot.index] if self.plan.queues else [],
                          self.maxlen, run_as.user if run_as else None, run_as.group if run_as else None,
                          self._parent_fds(), host=self.host_judge is not None)
        parent_end, child_end = self.ctx.Pipe(duplex=True)
        flag = self.ctx.RawValue("B", 0)
        stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        # the child gets its own handlers before a forwarded signal can reach it
        signal.pthread_sigmask(signal.SIG_BLOCK, stops)
        try:
            proc = self.ctx.Process(target=_worker_main, args=(spec, child_end, flag),
                                    name=f"netsentry-worker-{slot.index}", daemon=False)
            proc.start()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
        child_end.close()
        slot.proc, slot.conn, slot.flag = proc, parent_end, flag
        slot.started = slot.last_seen = time.monotonic()
        slot.ready = False
        slot.final = None
        slot.restart_at = None

    def send(self, slot: Slot, message: tuple[Any, ...], payload: bytes | None = None) -> bool:
        if slot.conn is None:
            return False
        try:
            slot.conn.send(message)
            if payload is not None:
                hand_over(slot.conn, payload)      # right after its call: the handler takes it
        except (OSError, ValueError):
            return False
        slot.flag.value = 1             # after the send: the worker clears it, then reads the pipe
        return True

    def call_all(self, name: str, args: Any, done: Callable[[dict[int, dict[str, Any]]], None],
                 timeout: float = CALL_TIMEOUT, payload: bytes | None = None) -> None:
        """Send one call to every live worker; `done(answers by worker)` when all answered.
        `payload`: bytes the call's handler takes with `take_over` (see `hand_over`)."""
        self.seq += 1
        seq = self.seq
        waiting = set()
        for slot in self.slots:
            if slot.ready and self.send(slot, ("call", seq, name, args), payload):
                waiting.add(slot.index)
        gather = Gather(waiting, done, time.monotonic() + timeout)
        self.gathers[seq] = gather
        if not waiting:
            self._finish_gather(seq)

    def _finish_gather(self, seq: int) -> None:
        gather = self.gathers.pop(seq, None)
        if gather is not None:
            gather.done(gather.answers)

    # --- messages from workers --------------------------------------------------------------

    def on_message(self, slot: Slot, message: tuple[Any, ...]) -> None:
        slot.last_seen = time.monotonic()
        handler = PARENT_MESSAGES.get(message[0])
        if handler is not None:
            handler(self, slot, message)

    def _on_ready(self, slot: Slot, message: tuple[Any, ...]) -> None:
        from netsentry.log import get_logger
        slot.ready = True
        info = message[1]
        get_logger().info("worker started", worker=slot.index, pid=info.get("pid"),
                          interfaces=info.get("interfaces") or None, queues=info.get("queues") or None,
                          restart=slot.restarts or None)
        now = time.time()
        for packed, (reason, expiry) in list(self.manual_blocks.items()):   # a restarted worker's list
            if expiry is not None and expiry <= now:
                del self.manual_blocks[packed]
                continue
            ttl = None if expiry is None else expiry - now
            self.send(slot, ("call", 0, "bl-add", {"packed": packed, "reason": reason, "ttl": ttl}))

    def _on_reply(self, slot: Slot, message: tuple[Any, ...]) -> None:
        _, seq, payload = message
        if "host_seq" in payload and self.host_judge is not None:
            self.host_judge.switched(slot.index, payload["host_seq"])     # a reload's answer
        gather = self.gathers.get(seq)
        if gather is None:
            return
        gather.answers[slot.index] = payload
        gather.waiting.discard(slot.index)
        if not gather.waiting:
            self._finish_gather(seq)

    def _on_alive(self, slot: Slot, message: tuple[Any, ...]) -> None:
        return None                     # last_seen is set for every message

    def _on_final(self, slot: Slot, message: tuple[Any, ...]) -> None:
        slot.final = message[1]
        if "counters" in message[1]:
            slot.last_counters = message[1]["counters"]

    def _on_blocked(self, slot: Slot, message: tuple[Any, ...]) -> None:
        """A worker blocked a source by itself: every other worker blocks it too."""
        from netsentry.log import get_logger
        from netsentry.respond.blocklist import address_text
        info = message[1]
        ttl = info.get("ttl")
        ttl_used = ttl if ttl is not None else (self.allow.ttl if self.allow is not None else None)
        self.manual_blocks[info["packed"]] = (info["reason"], time.time() + float(ttl_used) if ttl_used else None)
        for other in self.slots:
            if other is not slot and other.ready:
                self.send(other, ("call", 0, "bl-add", info))
        get_logger().info("blocklist add from a worker, shared", address=address_text(info["packed"]),
                          reason=info["reason"], worker=slot.index)

    def _on_host(self, slot: Slot, message: tuple[Any, ...]) -> None:
        if self.host_judge is not None:
            self.host_judge.feed(message[1])

    def _on_host_msg(self, slot: Slot, message: tuple[Any, ...]) -> None:
        """A hoststate message as the worker's link sent it (pickled once, no envelope)."""
        if self.host_judge is not None:
            self.host_judge.feed(message)

    # --- host-keyed state: the judge -----------------------------------------------------------

    def start_host_judge(self) -> None:
        """The parent's HostJudge, when this configuration and ruleset keep host-keyed state
        (hoststate.needed: the anomaly engine is on, or a rule is host-tracked or uses bits).

        It writes where a worker would: the anomaly engine's alerts through the
        configured outputs, deferred rules' alert lines whole into the eve-log file
        (the shared eve.json; with ``threaded: true`` the parent's own
        ``eve.<N>.json``, N the worker count, next to the workers' ``eve.<i>.json``)."""
        from netsentry import hoststate
        from netsentry.output import OutputContext, open_outputs
        if not hoststate.needed(self.config, self.ruleset):
            return
        n = self.plan.count
        cfg = live_worker_config(self.config, n, n)
        anomaly = cfg.get("anomaly")
        if isinstance(anomaly, dict):
            anomaly["state-file"] = (self.config.get("anomaly") or {}).get("state-file", "")  # the one file
        for section in (cfg.get("outputs") or {}).values():
            if isinstance(section, dict):
                section["append"] = True        # files the workers write too
        outputs = open_outputs(cfg.get("outputs") or {}, OutputContext(
            logdir=self.logdir, ips=bool(get(cfg, "stream.inline", False))))
        eve = (cfg.get("outputs") or {}).get("eve-log")
        lines = None
        try:
            if isinstance(eve, dict) and eve.get("enabled"):
                lines = LineFile(self.logdir / str(eve.get("filename") or "eve.json"))
            sink = hoststate.EventSink(cfg, outputs)
            self.host = HostParts(None, sink, outputs, lines)
            self.host_judge = hoststate.HostJudge(cfg, self.ruleset, n, self._judge_emit,
                                                  lines.write if lines is not None else _no_line)
            self.host.judge = self.host_judge
            self.host_judge.live = True
        except BaseException:
            for out in outputs:
                out.close()
            if lines is not None:
                lines.close()
            self.host = self.host_judge = None
            raise

    def _judge_emit(self, events: list[Any]) -> None:
        """The judge's anomaly alerts: written, and (respond.blocklist.on-anomaly) their
        misbehaving sources blocked in every worker, as one process's responder does."""
        self.host.sink(events)
        if not self.block_on_anomaly:
            return
        for event in events:
            if event.event_type == "alert" and event.alert is not None:
                for src in self.host_judge.misbehaving_sources(event.ts):
                    self.block_everywhere(src, f"anomaly: {event.alert.signature}")

    def block_everywhere(self, packed: bytes, reason: str) -> bool:
        """Block `packed` in every worker (and in a restarted one) unless it is allow-listed
        or already blocked; the TTL is the workers' (respond.blocklist.ttl)."""
        from netsentry.log import get_logger
        from netsentry.respond.blocklist import address_text
        if self.allow is not None and packed in self.allow.allow:
            self.counters["netsentry.blocklist.judge_refused_allowed"] += 1
            return False
        now = time.time()
        have = self.manual_blocks.get(packed)
        if have is not None and (have[1] is None or have[1] > now):
            return False
        ttl = self.allow.ttl if self.allow is not None else None
        self.manual_blocks[packed] = (reason, now + float(ttl) if ttl else None)
        for slot in self.slots:
            if slot.ready:
                self.send(slot, ("call", 0, "bl-add", {"packed": packed, "reason": reason, "ttl": None}))
        self.counters["netsentry.blocklist.judge_added"] += 1
        get_logger().info("blocklist add from the host judge, shared", address=address_text(packed),
                          reason=reason)
        return True

    # --- worker death and restart -------------------------------------------------------------

    def _reap(self, slot: Slot, now: float) -> None:
        """The worker of `slot` is gone: log how, forget its calls, schedule its restart."""
        from netsentry.lifecycle import signal_name
        from netsentry.log import get_logger
        proc = slot.proc
        proc.join(5)
        code = proc.exitcode
        how = (f"killed by {signal_name(-code)}" if code is not None and code < 0
               else f"exited with status {code}")
        error = (slot.final or {}).get("error")
        try:
            slot.conn.close()
        except OSError:
            pass
        slot.proc = slot.conn = None
        slot.ready = False
        # what it counted up to its last report stays in the stats record (restarted or not)
        from netsentry.workers import retire_counters
        retire_counters(slot.retired, (slot.final or {}).get("counters") or slot.last_counters)
        slot.last_counters = {}
        slot.final = None
        if self.host_judge is not None:
            self.host_judge.worker_gone(slot.index)     # its seconds are judged without it
        for seq, gather in list(self.gathers.items()):
            if slot.index in gather.waiting:
                gather.waiting.discard(slot.index)
                if not gather.waiting:
                    self._finish_gather(seq)
        if self.lc.stop_requested:
            return
        if not self.notified_ready and not slot.restarts:
            # the first start failed (a queue bound by another process, ...): as the one-process
            # daemon, stop with the reason instead of retrying what cannot work
            self.fatal = f"worker {slot.index} could not start: {error or how}"
            return
        if now - slot.started >= RESTART_STABLE:
            slot.backoff = RESTART_FIRST
        slot.restart_at = now + slot.backoff
        get_logger().error("worker died; restarting", worker=slot.index, how=how, error=error,
                           restart_in=round(slot.backoff, 2))
        slot.backoff = min(RESTART_MAX, slot.backoff * 2)

    def _restart_due(self, now: float) -> None:
        for slot in self.slots:
            if slot.proc is None and slot.restart_at is not None and now >= slot.restart_at:
                slot.restarts += 1
                self.counters["netsentry.worker.restarts"] += 1
                self.start_worker(slot)

    # --- control commands ------------------------------------------------------------------------

    def commands(self) -> dict[str, Any]:
        from netsentry.control import Command
        from netsentry.operations import _validate_add, _validate_del
        table = [
            Command("stats", "every counter of the stats record, now (all workers merged)", self._ctl_stats),
            Command("reload", "reload the rules in every worker (as SIGUSR2); answers when done",
                    self._ctl_reload),
            Command("blocklist-list", "the blocked sources with reason, hits and time left", self._ctl_bl_list),
            Command("blocklist-add", "block ADDRESS for TTL seconds in every worker (default anomaly.block-ttl)",
                    self._ctl_bl_add, _validate_add),
            Command("blocklist-del", "unblock ADDRESS in every worker", self._ctl_bl_del, _validate_del),
            Command("shutdown", "stop the sensor cleanly (as SIGTERM)", self._ctl_shutdown),
        ]
        return {c.name: c for c in table}

    def _ctl_stats(self, args: dict[str, Any], reply: Any) -> None:
        from netsentry.control import ok
        self.call_all("counters", None, lambda answers: reply(ok(self.merged(answers))))

    def _ctl_reload(self, args: dict[str, Any], reply: Any) -> None:
        from netsentry.control import nok, ok
        self.request_reload(lambda r: reply(ok(r) if r["ok"] else nok(r["error"])))

    def _ctl_bl_list(self, args: dict[str, Any], reply: Any) -> None:
        from netsentry.control import nok, ok

        def done(answers: dict[int, dict[str, Any]]) -> None:
            bad = [a["error"] for a in answers.values() if not a.get("ok")]
            if bad:
                reply(nok(bad[0]))
                return
            merged: dict[str, dict[str, Any]] = {}
            for answer in answers.values():
                for entry in answer["entries"]:
                    have = merged.get(entry["address"])
                    if have is None:
                        merged[entry["address"]] = dict(entry)
                    else:       # the same source in several workers: one entry, hits summed
                        have["hits"] = have.get("hits", 0) + entry.get("hits", 0)
            reply(ok(sorted(merged.values(), key=lambda e: e["address"])))
        self.call_all("bl-list", None, done)

    def _ctl_bl_add(self, args: dict[str, Any], reply: Any) -> None:
        from netsentry.control import CommandError, nok, ok
        from netsentry.log import get_logger
        if not get(self.config, "respond.blocklist.enabled", True):
            raise CommandError("the block list is off (respond.blocklist.enabled: false)")
        if self.allow is not None and args["packed"] in self.allow.allow:
            raise CommandError(f"{args['address']} is in the allow list (anomaly.ignore-sources or "
                               f"this host's own address): not blocked")
        ttl = args.get("ttl")
        ttl_used = ttl if ttl is not None else (self.allow.ttl if self.allow is not None else None)
        expiry = None if not ttl_used else time.time() + float(ttl_used)
        self.manual_blocks[args["packed"]] = ("manual (ctl)", expiry)

        def done(answers: dict[int, dict[str, Any]]) -> None:
            bad = [a.get("error", "refused") for a in answers.values() if not a.get("ok")]
            if bad:
                reply(nok(f"{args['address']}: {bad[0]}"))
                return
            get_logger().info("blocklist add", address=args["address"], ttl=ttl_used, workers=len(answers))
            reply(ok(f"blocked {args['address']} in {len(answers)} workers"))
        self.call_all("bl-add", {"packed": args["packed"], "ttl": ttl}, done)

    def _ctl_bl_del(self, args: dict[str, Any], reply: Any) -> None:
        from netsentry.control import nok, ok
        from netsentry.log import get_logger
        listed = self.manual_blocks.pop(args["packed"], None) is not None

        def done(answers: dict[int, dict[str, Any]]) -> None:
            if not listed and not any(a.get("ok") for a in answers.values()):
                reply(nok(f"blocklist-del: {args['address']} is not in the block list"))
                return
            get_logger().info("blocklist del", address=args["address"])
            reply(ok(f"unblocked {args['address']}"))
        self.call_all("bl-del", {"packed": args["packed"]}, done)

    def _ctl_shutdown(self, args: dict[str, Any], reply: Any) -> None:
        from netsentry.control import ok
        reply(ok("shutting down"))
        os.kill(os.getpid(), signal.SIGTERM)

    # --- reload: built and checked here once, then every worker swaps -------------------------

    def request_reload(self, reply: Callable[[dict[str, Any]], None] | None = None) -> None:
        self._reloads.request(reply, self._reload_started)

    def _reload_started(self) -> None:
        from netsentry import notify
        from netsentry.log import get_logger
        notify.notify("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}",
                      "STATUS=reloading rules")
        get_logger().info("rule reload started", workers=self.plan.count)

    def _reload_build(self) -> Any:
        """The build thread: the rules loaded and checked (reload.build_reload); the engine
        is checked in the main thread (`_reload_poll`) and each worker builds its own."""
        from netsentry.daemon import _reload_config
        from netsentry.reload import build_reload
        return build_reload(lambda: _reload_config(self.args, bool(self.plan.queues)), with_engine=False)

    def _reload_poll(self) -> None:
        """Main thread: check the new set's engine builds, then hand it to every worker."""
        from netsentry.reload import ReloadError, build_engine
        taken = self._reloads.take()
        if taken is None:
            return
        (built, _engine, error), replies, again = taken
        if built is not None:
            try:
                engine = build_engine(built)        # the check; each worker builds its own
                del engine
            except ReloadError as exc:
                built, error = None, str(exc)
        if built is None:
            self._reload_finished(replies, {"ok": False, "error": f"reload failed, the running rules stay: {error}"},
                                  error)
        else:
            self._reload_broadcast(built, replies)
        self._reloads.request_again(again, self.request_reload)

    def _reload_broadcast(self, built: Any, replies: list[Callable[[dict[str, Any]], None]]) -> None:
        rule_config = {k: v for k, v in built.config.items() if k in RULE_KEYS}
        try:
            data = pickle.dumps((built.ruleset, rule_config), protocol=pickle.HIGHEST_PROTOCOL)
            load = False
        except (pickle.PicklingError, AttributeError, TypeError):
            # flags:, flow:, ... compile to closures: each worker reads the files the parent
            # just checked (ReloadError there fails the reload like any worker's error)
            data = pickle.dumps((None, rule_config), protocol=pickle.HIGHEST_PROTOCOL)
            load = True
        # a worker started (or restarted) from now on gets the new set by fork
        self.ruleset = built.ruleset
        self.config.update(deepcopy(rule_config))
        if self.host_judge is not None:
            # each worker's candidates go to the new set's rules from the message its
            # answer names (_on_reply: host_seq), the earlier ones to the old set's
            self.host_judge.prepare_rules(self.config, built.ruleset)
        n = len(built.ruleset.signatures) if built.ruleset is not None else 0
        skipped = len(built.ruleset.errors) if built.ruleset is not None else 0

        expected = {slot.index for slot in self.slots if slot.ready}

        def done(answers: dict[int, dict[str, Any]]) -> None:
            bad = {i: a.get("error") for i, a in answers.items() if not a.get("ok")}
            for i in expected - set(answers):
                bad[i] = "no answer (the worker died or is stuck); a restarted worker gets the new set"
            if bad:
                error = "; ".join(f"worker {i}: {e}" for i, e in sorted(bad.items()))
                self._reload_finished(replies, {"ok": False, "error": f"reload failed in a worker: {error}"},
                                      error)
                return
            self._reload_finished(replies, {"ok": True, "signatures": n, "skipped": skipped,
                                            "seconds": round(built.seconds, 3), "workers": len(answers)}, None)
        self.call_all("reload", {"load": load}, done, timeout=RELOAD_TIMEOUT, payload=data)

    def _reload_finished(self, replies: list[Callable[[dict[str, Any]], None]], answer: dict[str, Any],
                         error: str | None) -> None:
        from netsentry import notify
        from netsentry.log import get_logger
        log = get_logger()
        if error is None:
            self.counters["netsentry.reload.success"] += 1
            log.info("rules reloaded", signatures=answer["signatures"], skipped=answer["skipped"],
                     seconds=answer["seconds"], workers=answer["workers"])
        else:
            self.counters["netsentry.reload.failed"] += 1
            log.error("rule reload failed; the running rules stay", error=error)
        notify.notify("READY=1", "STATUS=running")
        for reply in replies:
            reply(answer)

    # --- stats ---------------------------------------------------------------------------------------

    def merged(self, answers: dict[int, dict[str, Any]]) -> dict[str, int | float]:
        from netsentry.workers import merge_counters
        per_worker = []
        for index, answer in answers.items():
            if answer.get("ok"):
                self.slots[index].last_counters = answer["counters"]
                per_worker.append(answer["counters"])
        per_worker += [slot.retired for slot in self.slots if slot.retired]   # dead workers' counts
        if self.host_judge is not None:
            per_worker.append(self.host_judge.counters())   # summed in like a worker's
        counters = merge_counters(per_worker)
        counters.update(self.counters)
        for index, answer in answers.items():     # the fanout's / queue-balance's spread, per worker
            if answer.get("ok"):
                counters[f"netsentry.worker.pkts.{index}"] = (answer["counters"].get("decoder.pkts", 0)
                                                              + self.slots[index].retired.get("decoder.pkts", 0))
        if self.control is not None:
            counters.update(self.control.stats())
        counters["netsentry.workers"] = self.plan.count
        counters["netsentry.worker.running"] = sum(1 for s in self.slots if s.ready)
        return counters

    def write_stats(self, counters: Mapping[str, int | float], interrupted: bool = False) -> None:
        from netsentry.output.stats import stats_event
        if not self.stats_outputs:
            return
        event = stats_event(time.time(), time.monotonic() - self.started, counters)
        if interrupted:
            event.extra["netsentry"] = {"interrupted": True}     # type: ignore[index]
        for out in self.stats_outputs:
            if out.wants("stats"):
                out.emit(event)
            out.flush()

    def open_stats_outputs(self) -> None:
        """The outputs that take stats records, for the parent's merged record (appending)."""
        from netsentry.output import OutputContext, open_outputs
        from netsentry.workers import stats_sections
        wanted = stats_sections(self.config, skip_chained=True)
        if self.stats_enabled:
            self.stats_outputs = open_outputs(wanted, OutputContext(logdir=self.logdir))

    # --- the main loop ---------------------------------------------------------------------------

    def run(self) -> int:
        from netsentry import notify, privileges
        from netsentry.log import get_logger
        from netsentry.respond.blocklist import build_blocklist
        log = get_logger()
        lc = self.lc
        if get(self.config, "respond.blocklist.enabled", True):
            self.allow, policy = build_blocklist(self.config)
            self.block_on_anomaly = policy.on_anomaly
        lc.running()
        self.open_stats_outputs()
        self.start_host_judge()
        lc.on_reload(self.request_reload)
        lc.on_reopen(self._reopen)
        if privileges.from_config(self.config, self.args.user, self.args.group) is not None:
            privileges.preload()    # before the fork: workers drop to the user right after opening
        for slot in self.slots:
            self.start_worker(slot)
        if self.control is not None:
            try:
                self.control.start()
            except OSError as exc:
                log.error("control socket unavailable; running without it", error=str(exc))
                self.control = None
        owned = []
        if self.control is not None and os.path.exists(self.control.path):
            owned = [os.path.dirname(self.control.path) or ".", self.control.path]
        eve = self.logdir / str(get(self.config, "outputs.eve-log.filename", "eve.json"))
        if eve.exists() and privileges.from_config(self.config, self.args.user, self.args.group) is not None:
            owned.append(str(eve))      # a restarted worker, forked as the user, reopens it
        privileges.apply(self.config, self.args.user, self.args.group, chown=owned)
        old_wakeup = signal.set_wakeup_fd(self._wake_w)     # a signal ends the wait at once
        log.info("capture started", mode="ips" if self.plan.queues else "ids", workers=self.plan.count,
                 interfaces=[i.name for i in self.plan.interfaces[0]] if self.plan.interfaces else None,
                 queues=[q for qs in self.plan.queues for q in qs] or None, logdir=str(self.logdir),
                 pid=os.getpid())
        try:
            self._loop()
        finally:
            notify.notify("STOPPING=1", "STATUS=stopping")
            if self.control is not None:
                self.control.close()
            final = self._stop_workers()
            signal.set_wakeup_fd(old_wakeup)
            self.write_stats(final, interrupted=lc.interrupted)
            for out in self.stats_outputs:
                out.close()
            if self.host is not None:
                self.host.close()
        from netsentry.lifecycle import signal_name
        if self.fatal is not None:
            from netsentry.cli import InputError
            raise InputError(self.fatal)
        log.info("capture stopped", signal=signal_name(lc.stopped_by), workers=self.plan.count,
                 packets=int(final.get("decoder.pkts", 0)), alerts=int(final.get("detect.alert", 0)),
                 restarts=self.counters["netsentry.worker.restarts"], interrupted=lc.interrupted)
        return lc.exit_code(lc.stopped_by, ok=True)

    def _reopen(self) -> None:
        """SIGHUP: the parent's stats outputs and every worker's outputs reopen (logrotate)."""
        for out in self.stats_outputs:
            out.reopen()
        if self.host is not None:
            self.host.reopen()
        self.call_all("reopen", None, lambda answers: None)

    def _loop(self) -> None:
        from netsentry import notify
        lc = self.lc
        while not lc.stop_requested and self.fatal is None:
            now_m = time.monotonic()
            objects: list[Any] = [self._wake_r]
            for slot in self.slots:
                if slot.proc is not None:
                    objects.append(slot.conn)
                    objects.append(slot.proc.sentinel)
            timeout = PARENT_TICK
            for slot in self.slots:
                if slot.restart_at is not None:
                    timeout = max(0.0, min(timeout, slot.restart_at - now_m))
            # the keep-alive is due every half WatchdogSec: a wait of PARENT_TICK (or until the
            # workers' once-a-second "alive") sent it up to a second late, which with a short
            # WatchdogSec is past systemd's limit. Only while it would be sent (a hung worker
            # holds it back, and a due time in the past must not turn the wait into a spin)
            due = self.watchdog.due_in(now_m)
            if due is not None and self._all_alive(now_m):
                timeout = min(timeout, due)
            ready = wait(objects, timeout)
            lc.poll()                   # SIGHUP / SIGUSR2 callbacks (the signal woke the wait)
            if self._wake_r in ready:
                self._drain_wake()
            now_m = time.monotonic()
            for slot in self.slots:
                if slot.proc is None:
                    continue
                if slot.conn in ready or slot.proc.sentinel in ready:
                    if not self._read(slot) or not slot.proc.is_alive():
                        self._reap(slot, now_m)
            if self.control is not None:
                self.control.drain()
            self._reload_poll()
            self._restart_due(now_m)
            for seq, gather in list(self.gathers.items()):
                if now_m >= gather.deadline:
                    self._finish_gather(seq)
            if not self.notified_ready and all(s.ready for s in self.slots):
                self.notified_ready = True
                notify.notify("READY=1", "STATUS=running", f"MAINPID={os.getpid()}")
            if self._all_alive(now_m):
                self.watchdog.tick()    # systemd's keep-alive only while every worker lives
            now = time.time()
            if self.host_judge is not None:
                self.host_judge.tick(now)
                self.host.flush()
            if self.stats_enabled and now >= self.next_stats:
                self.next_stats = now + self.interval
                self.call_all("counters", None, lambda answers: self.write_stats(self.merged(answers)),
                              timeout=max(1.0, self.interval / 2))

    def _all_alive(self, now_m: float) -> bool:
        """Every worker is up and has sent something within ALIVE_TIMEOUT (the watchdog's test)."""
        return all(s.ready and now_m - s.last_seen < ALIVE_TIMEOUT for s in self.slots)

    def _read(self, slot: Slot) -> bool:
        """Every message waiting from `slot`'s worker; False when its pipe closed."""
        conn = slot.conn
        try:
            while conn.poll():
                self.on_message(slot, conn.recv())
        except (EOFError, OSError):
            return False
        return True

    def _stop_workers(self) -> dict[str, int | float]:
        """SIGTERM to every worker; wait for their final counters (a second signal is forwarded)."""
        from netsentry.lifecycle import FlushInterrupted
        from netsentry.workers import merge_counters

        def forward() -> None:
            for slot in self.slots:
                if slot.proc is not None and slot.proc.is_alive():
                    try:
                        os.kill(slot.proc.pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
        forward()
        try:
            with self.lc.flushing():
                self._wait_finals()
        except FlushInterrupted:        # pragma: no cover - flushing() handles it
            pass
        if self.lc.interrupted:
            forward()
            self._wait_finals()
        per_worker = [(s.final or {}).get("counters") or s.last_counters for s in self.slots]
        per_worker += [s.retired for s in self.slots]          # earlier lives of restarted workers
        judged = []
        if self.host_judge is not None:
            # every worker's last batch is in: the rest is judged, the engine's last
            # second too, and its state file saved, before the final stats record
            self.host_judge.close()
            self.host.flush()
            judged.append(self.host_judge.counters())
        counters = merge_counters([c for c in per_worker if c] + judged)
        counters.update(self.counters)
        for index, c in enumerate(per_worker):
            counters[f"netsentry.worker.pkts.{index}"] = (c or {}).get("decoder.pkts", 0)
        counters["netsentry.workers"] = self.plan.count
        return counters

    def _wait_finals(self) -> None:
        while any(s.proc is not None for s in self.slots):
            live = [s for s in self.slots if s.proc is not None]
            ready = wait([s.conn for s in live] + [s.proc.sentinel for s in live], 1.0)
            for slot in live:
                if slot.conn in ready or slot.proc.sentinel in ready:
                    alive = self._read(slot)
                    if not alive or not slot.proc.is_alive():
                        self._read_rest(slot)
                        if self.host_judge is not None:
                            self.host_judge.worker_gone(slot.index)
                        slot.proc.join(5)
                        slot.conn.close()
                        slot.proc = slot.conn = None

    def _read_rest(self, slot: Slot) -> None:
        """What a finished worker left in its pipe (its last host-state batch, its final)."""
        try:
            while slot.conn.poll():
                self.on_message(slot, slot.conn.recv())
        except (EOFError, OSError):
            pass


def _no_line(line: bytes) -> None:
    return None              # no eve-log: a deferred rule's alert has nowhere to go, as in a worker


# what the parent does with each kind of message from a worker
PARENT_MESSAGES: dict[str, Callable[[Supervisor, Slot, tuple[Any, ...]], None]] = {
    "ready": Supervisor._on_ready,
    "reply": Supervisor._on_reply,
    "alive": Supervisor._on_alive,
    "final": Supervisor._on_final,
    "host": Supervisor._on_host,
    # hoststate.WorkerLink's messages (HostMsg), sent pickled without an envelope
    "tick": Supervisor._on_host_msg,
    "end": Supervisor._on_host_msg,
    "blocked": Supervisor._on_blocked,
}


def run_workers(args: Any, config: dict[str, Any], lc: Any, plan: WorkerPlan, programs: dict[str, Any],
                ruleset: Any, interval: int, maxlen: int) -> int:
    """``netsentry run`` with `plan.count` > 1 workers (daemon.py branches here after validating)."""
    check_outputs(config)
    return Supervisor(args, config, lc, plan, programs, ruleset, interval, maxlen).run()
