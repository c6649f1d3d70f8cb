"""SIGHUP -> reopen every output, between packets (logrotate's postrotate signal).

A stand-in until ``netsentry/lifecycle.py`` (issue #14, which owns every
signal handler: docs/architecture.md, "Seams") lands on main; there this
module is replaced by one line, ``lifecycle.on_reopen(sensor.reopen_outputs)``,
and `Lifecycle.guard` does what `Hangup.guard` does here.

Why the handler only sets a flag: a signal handler may run inside a
buffered file write (CPython runs handlers when a system call returns
EINTR), and closing that very file there would corrupt the buffer. The
reopen runs when the capture loop asks for the next packet instead.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from types import FrameType, TracebackType
from typing import Any


class Hangup:
    """Context manager: while inside, SIGHUP calls `reopen` before the next packet."""

    def __init__(self, reopen: Callable[[], None]) -> None:
        self._reopen = reopen
        self.pending = False
        self.count = 0
        self._previous: Any = None
        self._installed = False

    def install(self) -> Hangup:
        """Handle SIGHUP from now on (until `restore`): its default action kills the
        process, so it must be caught for as long as outputs are open."""
        if not self._installed and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGHUP, self._on_hup)
            self._installed = True
        return self

    def restore(self) -> None:
        if self._installed:
            signal.signal(signal.SIGHUP, self._previous if self._previous is not None else signal.SIG_DFL)
            self._installed = False

    def __enter__(self) -> Hangup:
        return self.install()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.restore()

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self.pending = True

    def poll(self) -> None:
        """Run the pending reopen (main thread, between packets)."""
        if self.pending:
            self.pending = False
            self.count += 1
            self._reopen()

    def guard(self, source: Iterable[Any]) -> Guarded:
        """`source`, polling before each record; other attributes are the source's."""
        return Guarded(source, self)


class Guarded:
    def __init__(self, source: Iterable[Any], hangup: Hangup) -> None:
        self._source = source
        self._hangup = hangup

    def __iter__(self) -> Iterator[Any]:
        hangup = self._hangup
        for record in self._source:
            if hangup.pending:
                hangup.poll()
            yield record

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)
