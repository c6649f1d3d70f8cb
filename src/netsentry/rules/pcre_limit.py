"""A CPU-time limit on every pcre evaluation: a hostile payload must not stall the sensor.

Why: Python's `re` backtracks without bound, and real rules carry patterns
that explode on the right input. ET Open's sid 2022542 (CVE-2015-7547)
checks ``^(?:.[a-z0-9-]{2,}){2,}\\x00\\x00(?:\\x01|\\x1c)`` after a DNS
header; 56 letters where the name should end take 19 s in `re`, 64 take
minutes, and anyone who can send a UDP packet from port 53 decides what
follows the header. Suricata bounds PCRE with ``pcre.match-limit``
(backtracking steps); `re` has no such counter, so the limit here is CPU
time: ``detect.pcre-time-limit`` seconds (default 0.05) per evaluation.

How: a one-shot ``ITIMER_VIRTUAL`` timer (process CPU time, so a loaded
machine does not cause false timeouts) is armed around the search; when it
expires, SIGVTALRM's handler raises `PcreTimeout` inside the search (`re`
checks for signals while it backtracks). The rule then does not match, as
Suricata treats a match-limit error, and `timeouts` counts it. Signals can
only be handled on the main thread: elsewhere, or with the limit set to 0,
searches run unguarded. Arming costs two system calls (~0.9 us) per
evaluation, paid only by rules whose content checks already passed.
`install` may be called from any thread (a reload builds its engine off the
main thread); the handler itself is set by the main thread, at once or at its
next search.
"""

from __future__ import annotations

import re
import signal
import threading
from typing import Any

DEFAULT_SECONDS = 0.05


class PcreTimeout(Exception):
    """A pcre evaluation used up its CPU-time budget."""


class MatchTimeLimit:
    """Process-wide (signals are): one instance, `LIMIT`, shared by every pcre item."""

    __slots__ = ("seconds", "installed", "timeouts", "flows_disabled", "_armed", "_previous", "_wanted")

    def __init__(self) -> None:
        self.seconds = DEFAULT_SECONDS
        self.installed = False
        self.timeouts = 0           # evaluations cut off since the process started
        self.flows_disabled = 0     # (pcre, flow) pairs given up after repeated timeouts (payload.py)
        self._armed = False
        self._previous: Any = None
        self._wanted: float | None = None   # an install() request the main thread has yet to apply

    def install(self, seconds: float = DEFAULT_SECONDS) -> bool:
        """Guard searches with a `seconds` budget from now on (0: no limit); False with 0.

        Any thread may call this (a rule reload builds its engine beside the capture
        loop), but only the main thread may touch signal handlers: off it the wish is
        kept and the main thread's next `search` applies it (`_settle`)."""
        self._wanted = float(seconds)
        if threading.current_thread() is threading.main_thread():
            self._settle()
        return seconds > 0

    def _settle(self) -> None:
        """Main thread: make the handler match the latest `install` request."""
        seconds = self._wanted
        self._wanted = None
        if seconds is None:
            return
        if seconds <= 0:
            self.uninstall()
            return
        if not self.installed:
            self._previous = signal.signal(signal.SIGVTALRM, self._expired)
            self.installed = True
        self.seconds = seconds

    def uninstall(self) -> None:
        if self.installed:
            signal.setitimer(signal.ITIMER_VIRTUAL, 0)
            signal.signal(signal.SIGVTALRM, self._previous if self._previous is not None else signal.SIG_DFL)
            self.installed = False

    def _expired(self, signum: int, frame: Any) -> None:
        if self._armed:             # a late signal after the search ended is ignored
            self._armed = False
            raise PcreTimeout

    def search(self, find: Any, subject: Any, start: int) -> re.Match[bytes] | None:
        """``find(subject, start)`` within the budget; raises PcreTimeout when it runs out."""
        if self._wanted is not None and threading.current_thread() is threading.main_thread():
            self._settle()          # an engine built off the main thread asked for a change
        if not self.installed:
            return find(subject, start)
        self._armed = True
        signal.setitimer(signal.ITIMER_VIRTUAL, self.seconds)
        try:
            return find(subject, start)
        except PcreTimeout:
            self.timeouts += 1
            raise
        finally:
            self._armed = False
            signal.setitimer(signal.ITIMER_VIRTUAL, 0)


LIMIT = MatchTimeLimit()
