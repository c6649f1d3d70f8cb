"""Signals and exit codes: the one place that installs signal handlers (replay and run).

Why one module: a replay stopped by SIGTERM must still write every flow record
and the stats record, and the daemon must drain, reopen its logs on SIGHUP and
reload on SIGUSR2; scattered `signal.signal` calls (restored to the default
just before the final flush, as the replay once did) lose exactly that output.

Phases of a run, and what a SIGINT/SIGTERM does in each:

- ``startup`` (config, rules, nothing written yet): `StopRequested` is raised
  at once; there is no output to keep.
- ``running`` (outputs open, packets flowing): the handler only sets
  `stop_requested`; `guard(source)` ends the iteration before the next
  packet, so the current packet is finished and the flush then runs.
- ``flushing`` (inside `flushing()`): the first signal is noted and the flush
  goes on; a second one within `HARD_STOP_WINDOW` seconds of the previous
  raises `FlushInterrupted` out of the flush. The caller then still writes
  the stats record, marked ``netsentry.interrupted: true``.
- ``final`` (writing the stats record, closing outputs): signals are noted only.

SIGHUP and SIGUSR2 only set a flag; `poll()` runs the registered `on_reopen` /
`on_reload` callbacks in the main thread between packets (`guard` calls it).
Replay ignores SIGUSR2.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Any, Literal

EXIT_OK = 0
EXIT_BAD_INPUT = 1          # unreadable/damaged capture, unwritable log directory
EXIT_USAGE = 2              # bad command line or configuration
EXIT_WORKER_FAILED = 3      # a worker process died or failed; the others finished (workers.py)
EXIT_SIGINT = 130           # 128 + SIGINT
EXIT_SIGTERM = 143          # 128 + SIGTERM

# A second stop signal this soon after the previous one cuts the flush short.
HARD_STOP_WINDOW = 2.0

Mode = Literal["replay", "daemon"]
Callback = Callable[[], None]

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_SIGNAL_NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


class StopRequested(BaseException):
    """A stop signal arrived where nothing needs flushing (start-up). BaseException
    so that no `except Exception` in a stage swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal_name(signum))
        self.signum = signum


class FlushInterrupted(BaseException):
    """A second stop signal within HARD_STOP_WINDOW cut the end-of-run flush short."""


def signal_name(signum: int | None) -> str:
    """SIGINT / SIGTERM / ... for messages."""
    if signum is None:
        return "none"
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Lifecycle:
    """Signal handling for one run; a context manager (handlers installed on enter,
    the previous ones restored on exit)."""

    def __init__(self, mode: Mode = "replay") -> None:
        if mode not in ("replay", "daemon"):
            raise ValueError(f"lifecycle mode must be 'replay' or 'daemon', got {mode!r}")
        self.mode: Mode = mode
        self.phase = "startup"
        self.stop_requested = False
        self.stopped_by: int | None = None      # the first stop signal's number
        self.interrupted = False                # the flush was cut short
        self._last_stop = float("-inf")          # monotonic time of the latest stop signal
        self._reopen: list[Callback] = []
        self._reload: list[Callback] = []
        self._reopen_pending = False
        self._reload_pending = False
        self.attention = False                  # anything for poll() or guard() to look at
        self._previous: dict[int, Any] = {}

    # --- context manager ---------------------------------------------------------

    def __enter__(self) -> Lifecycle:
        if threading.current_thread() is not threading.main_thread():
            return self         # signal handlers can only be set from the main thread
        handlers: dict[int, Callable[[int, FrameType | None], None]] = {
            signal.SIGINT: self._on_stop, signal.SIGTERM: self._on_stop, signal.SIGHUP: self._on_hup,
        }
        handlers[signal.SIGUSR2] = self._on_usr2 if self.mode == "daemon" else _ignore
        for signum, handler in handlers.items():
            self._previous[signum] = signal.signal(signum, handler)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()

    # --- registration and polling --------------------------------------------------

    def on_reopen(self, callback: Callback) -> None:
        """Run `callback` (e.g. an output's reopen) after a SIGHUP, from `poll()`."""
        self._reopen.append(callback)

    def on_reload(self, callback: Callback) -> None:
        """Run `callback` after a SIGUSR2 (daemon only), from `poll()`."""
        self._reload.append(callback)

    def poll(self) -> None:
        """Run the callbacks of the signals received since the last call (main thread)."""
        if not self.attention:
            return
        self.attention = self.stop_requested
        if self._reopen_pending:
            self._reopen_pending = False
            for cb in self._reopen:
                cb()
        if self._reload_pending:
            self._reload_pending = False
            for cb in self._reload:
                cb()

    def guard(self, source: Iterable[Any]) -> Guarded:
        """`source` that ends before its next record once a stop was requested, and
        polls the pending callbacks between records. Attributes are the source's."""
        return Guarded(source, self)

    def running(self) -> None:
        """Outputs are about to open: from now on a stop signal asks for a clean stop."""
        self.phase = "running"

    @contextmanager
    def flushing(self) -> Iterator[None]:
        """The end-of-run flush; a second stop signal raises FlushInterrupted inside it.
        On leaving (normally or not) the phase is ``final``: signals are noted only."""
        self.phase = "flushing"
        try:
            yield
        except FlushInterrupted:
            self.interrupted = True
        finally:
            self.phase = "final"

    # --- exit status ---------------------------------------------------------------

    def exit_code(self, stopped_by: int | None, ok: bool) -> int:
        """Replay stopped by a signal: 128 + signal; the daemon after a clean drain: 0.
        Otherwise 0, or EXIT_BAD_INPUT when the run hit bad input."""
        if stopped_by is not None and self.mode == "replay":
            return EXIT_SIGINT if stopped_by == signal.SIGINT else EXIT_SIGTERM
        return EXIT_OK if ok else EXIT_BAD_INPUT

    # --- handlers (they run between two bytecodes of the main thread) ----------------

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        previous, self._last_stop = self._last_stop, now
        if not self.stop_requested:
            self.stop_requested = True
            self.stopped_by = signum
            self.attention = True
        if self.phase == "startup":
            raise StopRequested(signum)
        if self.phase == "flushing" and now - previous <= HARD_STOP_WINDOW:
            self.phase = "final"             # raised once; the stats record is written next
            raise FlushInterrupted()

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self._reopen_pending = True
        self.attention = True

    def _on_usr2(self, signum: int, frame: FrameType | None) -> None:
        self._reload_pending = True
        self.attention = True


def _ignore(signum: int, frame: FrameType | None) -> None:
    """Replay has nothing to reload: SIGUSR2 must not kill it (its default action)."""


class Guarded:
    """A packet source that stops when the lifecycle says so; everything else is the source's."""

    def __init__(self, source: Iterable[Any], lifecycle: Lifecycle) -> None:
        self._source = source
        self._lc = lifecycle

    def __iter__(self) -> Iterator[Any]:
        lc = self._lc
        for record in self._source:
            if lc.attention:        # one attribute test per packet
                if lc.stop_requested:
                    return
                lc.poll()
            yield record

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)


def unguard(source: Any) -> tuple[Any, Lifecycle | None]:
    """(the source inside a `Guarded`, its lifecycle), or (`source`, None). The capture
    loop tests the lifecycle itself between records as `Guarded.__iter__` does (the same
    two tests), which spares a generator step per packet (netsentry/capture_loop.py)."""
    if type(source) is Guarded:
        return source._source, source._lc
    return source, None
