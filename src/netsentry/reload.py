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


class RuleReloader:
    """Runs reloads for one sensor: one build at a time, the swap in the main thread.

    `load_config` returns the configuration as start-up built it (file,
    ``--set`` overrides and command-line rule files), read afresh."""

    def __init__(self, sensor: Any, load_config: Callable[[], Mapping[str, Any]]) -> None:
        self.sensor = sensor
        self.load_config = load_config
        self.counters = {"netsentry.reload.success": 0, "netsentry.reload.failed": 0}
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._done: tuple[Built | None, Any, str | None] | None = None    # set by the build thread
        self._replies: list[Reply] = []       # waiting for the build in progress
        self._again: list[Reply] | None = None   # a request that came during a build
        self.wakeup: Callable[[], None] = lambda: None   # the daemon's "poll soon" hook
        self.on_swap: list[Callable[[Any], None]] = []   # after a swap, with the new ruleset

    @property
    def busy(self) -> bool:
        return self._thread is not None

    def request(self, reply: Reply | None = None, background: bool = True) -> None:
        """Start a reload (SIGUSR2, ctl reload). `reply` gets the outcome as a dict."""
        with self._lock:
            if self._thread is not None:        # one build at a time; the next one follows it
                if self._again is None:
                    self._again = []
                if reply is not None:
                    self._again.append(reply)
                return
            if reply is not None:
                self._replies.append(reply)
        notify.notify("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}",
                      "STATUS=reloading rules")
        get_logger().info("rule reload started")
        if background:
            self._thread = threading.Thread(target=self._build, name="netsentry-reload", daemon=True)
            self._thread.start()
        else:
            self._thread = threading.current_thread()
            self._build()
            self.poll()

    def _build(self) -> None:
        engine = None
        try:
            config = self.load_config()
            built: Built | None = load_new_ruleset(config)
            t0 = time.perf_counter()
            engine = build_engine(built)            # type: ignore[arg-type]
            built.seconds += time.perf_counter() - t0   # type: ignore[union-attr]
            error = None
        except (ReloadError, ConfigError) as exc:
            built, error = None, str(exc)
        except OSError as exc:
            built, error = None, f"cannot reload: {exc}"
        with self._lock:
            self._done = (built, engine, error)
        self.wakeup()

    def poll(self) -> None:
        """Main thread, between packets: swap in a finished build and answer who asked."""
        with self._lock:
            done, self._done = self._done, None
            if done is None:
                return
            replies, self._replies = self._replies, []
            again, self._again = self._again, None
            self._thread = None
        built, engine, error = done
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
        if again is not None:                   # asked again during that build: build once more
            self.request(again[0] if again else None)
            with self._lock:
                self._replies.extend(again[1:])

    def stats(self) -> Mapping[str, int]:
        return dict(self.counters)
