"""Rule reload: the new ruleset is built beside the running one and swapped in between packets.

Triggered by SIGUSR2 (the lifecycle's ``on_reload``) or ``netsentry ctl
reload``. What is re-read: the configuration file, of which the rule-related
parts count (``vars``, ``default-rule-path``, ``rule-files``,
``classification-file``, ``reference-config-file``, ``threshold``,
``rule-management``, ``detect``), the rule files and the disable/enable/modify
files. Everything else (outputs, flow table, capture) keeps running as it is.

Why a thread: loading ET Open takes seconds; loaded in the main thread, the
capture would stand still that long (packets pile up in the kernel ring or
the queue). The rule files are parsed and the engine (prefilter databases) is
built beside the capture loop; the pcre time limit's signal handler, the one
part only the main thread may set, is applied by the main thread itself
(rules/pcre_limit.py). The swap, a few assignments, happens in the main thread
between two packets (`Sensor.swap_ruleset`).

A reload is refused, and the running set stays, when the configuration is
invalid, a rule file or management file cannot be read, or any rule is wrong
(the errors for which ``netsentry rules check`` exits 1: syntax, bad value,
unknown keyword, duplicate sid). Rules that are merely unsupported are skipped
as at start-up. The first error is reported with its file:line; the outcome
is logged and counted (``stats.netsentry.reload``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from netsentry import notify
from netsentry.config import ConfigError
from netsentry.log import get_logger

Reply = Callable[[dict[str, Any]], None]


class ReloadError(Exception):
    """Why a new ruleset was not taken; the message is one line with file:line where known."""


@dataclass
class Built:
    ruleset: Any
    config: Mapping[str, Any]
    seconds: float


def load_new_ruleset(config: Mapping[str, Any]) -> Built:
    """Load the ruleset `config` names (any thread), or raise ReloadError. Touches no running state."""
    from netsentry.rules import UnsupportedError
    from netsentry.sensor import rule_paths
    t0 = time.perf_counter()
    paths = rule_paths(config)
    for path in paths:
        if not os.path.exists(path):
            raise ReloadError(f"{path}: cannot read rule file: No such file or directory")
    from netsentry.rules.cache import load_ruleset as load_rules_cached
    # detect.rule-cache; a miss is stored by a forked process: the swap must not wait for it
    ruleset = load_rules_cached(paths, config, background_write=True) if paths else None
    if ruleset is not None:
        wrong = [e for e in ruleset.errors if not isinstance(e, UnsupportedError)]
        if wrong:
            more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
            raise ReloadError(f"{wrong[0]}{more}")
    return Built(ruleset, config, time.perf_counter() - t0)


def build_engine(built: Built) -> Any:
    """The signature engine of a loaded ruleset (None: no rules). Any thread."""
    from netsentry.sensor import Sensor
    try:
        return Sensor._build_signature_engine(built.config, built.ruleset)
    except (ConfigError, ValueError) as exc:
        raise ReloadError(str(exc)) from None


def build_ruleset(config: Mapping[str, Any]) -> tuple[Built, Any]:
    """Both steps at once (tests, and callers already in the main thread)."""
    built = load_new_ruleset(config)
    return built, build_engine(built)


Outcome = tuple[Built | None, Any, str | None]      # (built, engine or None, error or None)


def build_reload(load_config: Callable[[], Mapping[str, Any]], with_engine: bool = True) -> Outcome:
    """One reload build (any thread): read the configuration, load and check its rules,
    and build their engine when `with_engine`. Never raises for a bad reload: the error
    is the outcome's third field, one line. The one build both the single-process
    reloader and the workers' supervisor run (workers_live.Supervisor checks the engine
    in its main thread instead, and each worker builds its own)."""
    try:
        built = load_new_ruleset(load_config())
        engine = None
        if with_engine:
            t0 = time.perf_counter()
            engine = build_engine(built)
            built.seconds += time.perf_counter() - t0
        return built, engine, None
    except (ReloadError, ConfigError) as exc:
        return None, None, str(exc)
    except OSError as exc:
        return None, None, f"cannot reload: {exc}"


class BackgroundBuilds:
    """One reload build at a time, in a thread; its outcome taken in the main thread.

    A request during a build is not lost and not run at once: it is kept, and
    `take` hands it back so the caller starts one more build after this one (the
    rules may have changed again since the running build read them). Shared by
    `RuleReloader` and workers_live.Supervisor, which differ only in what they do
    with an outcome."""

    def __init__(self, build: Callable[[], Outcome], wakeup: Callable[[], None]) -> None:
        self.build = build
        self.wakeup = wakeup                    # any thread: "poll soon"
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.done: Outcome | None = None        # set by the build thread
        self.replies: list[Reply] = []          # waiting for the build in progress
        self.again: list[Reply] | None = None   # requests that came during a build

    def request(self, reply: Reply | None, started: Callable[[], None], background: bool = True) -> bool:
        """Start a build (True), or queue `reply` behind the one running (False).
        `started` runs before the build does (the caller's log line and notify)."""
        with self.lock:
            if self.thread is not None:
                if self.again is None:
                    self.again = []
                if reply is not None:
                    self.again.append(reply)
                return False
            if reply is not None:
                self.replies.append(reply)
            self.thread = threading.current_thread() if not background else threading.Thread(
                target=self._run, name="netsentry-reload", daemon=True)
        started()
        if background:
            self.thread.start()
        else:
            self._run()
        return True

    def _run(self) -> None:
        done = self.build()
        with self.lock:
            self.done = done
        self.wakeup()

    def take(self) -> tuple[Outcome, list[Reply], list[Reply] | None] | None:
        """Main thread: the finished build's outcome, who waits for it, and the requests
        that came meanwhile (None: none); None while no build has finished."""
        with self.lock:
            done, self.done = self.done, None
            if done is None:
                return None
            replies, self.replies = self.replies, []
            again, self.again = self.again, None
            self.thread = None
        return done, replies, again

    def request_again(self, again: list[Reply] | None, request: Callable[[Reply | None], None]) -> None:
        """After handling an outcome: one more build for the requests that came during it."""
        if again is None:
            return
        request(again[0] if again else None)
        with self.lock:
            self.replies.extend(again[1:])


class RuleReloader:
    """Runs reloads for one sensor: one build at a time, the swap in the main thread.

    `load_config` returns the configuration as start-up built it (file,
    ``--set`` overrides and command-line rule files), read afresh."""

    def __init__(self, sensor: Any, load_config: Callable[[], Mapping[str, Any]]) -> None:
        self.sensor = sensor
        self.load_config = load_config
        self.counters = {"netsentry.reload.success": 0, "netsentry.reload.failed": 0}
        self.last_error: str | None = None
        self._builds = BackgroundBuilds(lambda: build_reload(self.load_config), lambda: self.wakeup())
        self.wakeup: Callable[[], None] = lambda: None   # the daemon's "poll soon" hook
        self.on_swap: list[Callable[[Any], None]] = []   # after a swap, with the new ruleset

    @property
    def busy(self) -> bool:
        return self._builds.thread is not None

    def request(self, reply: Reply | None = None, background: bool = True) -> None:
        """Start a reload (SIGUSR2, ctl reload). `reply` gets the outcome as a dict."""
        if self._builds.request(reply, self._started, background) and not background:
            self.poll()

    @staticmethod
    def _started() -> None:
        notify.notify("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}",
                      "STATUS=reloading rules")
        get_logger().info("rule reload started")

    def poll(self) -> None:
        """Main thread, between packets: swap in a finished build and answer who asked."""
        taken = self._builds.take()
        if taken is None:
            return
        (built, engine, error), replies, again = taken
        log = get_logger()
        if built is not None:
            self.sensor.swap_ruleset(built.ruleset, engine)
            for callback in self.on_swap:
                callback(built.ruleset)
            self.counters["netsentry.reload.success"] += 1
            self.last_error = None
            n = len(built.ruleset.signatures) if built.ruleset is not None else 0
            skipped = len(built.ruleset.errors) if built.ruleset is not None else 0
            log.info("rules reloaded", signatures=n, skipped=skipped, seconds=round(built.seconds, 3))
            answer: dict[str, Any] = {"ok": True, "signatures": n, "skipped": skipped,
                                      "seconds": round(built.seconds, 3)}
        else:
            self.counters["netsentry.reload.failed"] += 1
            self.last_error = error
            log.error("rule reload failed; the running rules stay", error=error)
            answer = {"ok": False, "error": f"reload failed, the running rules stay: {error}"}
        notify.notify("READY=1", "STATUS=running")
        for reply in replies:
            reply(answer)
        self._builds.request_again(again, self.request)   # asked again during that build: build once more

    def stats(self) -> Mapping[str, int]:
        return dict(self.counters)
