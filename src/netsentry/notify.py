"""systemd's sd_notify protocol, without libsystemd: one datagram to ``$NOTIFY_SOCKET``.

With ``Type=notify`` systemd waits for ``READY=1`` before it counts the
service as started, expects ``WATCHDOG=1`` at least every ``WatchdogSec``
(``$WATCHDOG_USEC``; we send at half of it, as sd_watchdog_enabled(3)
advises) and shows ``RELOADING=1`` … ``READY=1`` around a reload and
``STOPPING=1`` during shutdown. Outside systemd ($NOTIFY_SOCKET unset) every
call is a no-op, so the daemon needs no mode switch.
"""

from __future__ import annotations

import os
import socket
import time


def _address() -> str | None:
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr or addr[0] not in "/@":
        return None
    return "\0" + addr[1:] if addr[0] == "@" else addr     # '@': Linux abstract namespace


def notify(*fields: str) -> bool:
    """Send ``KEY=VALUE`` fields as one message; False when there is no one to tell or it failed."""
    addr = _address()
    if addr is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            # never wait: a reader that has stopped reading (its queue full) must not stall
            # the capture loop, which sends the keep-alives
            sock.sendto("\n".join(fields).encode(), socket.MSG_DONTWAIT, addr)
    except OSError:
        return False        # systemd gone, restarting or not reading: the daemon carries on regardless
    return True


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 keep-alives (half of WatchdogSec), or None when not asked for."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) <= 0:
        return None
    if pid.isdigit() and int(pid) != os.getpid():
        return None          # meant for another process (e.g. our parent)
    return int(usec) / 2e6


class Watchdog:
    """WATCHDOG=1 every half WatchdogSec, sent from the daemon's wake-ups (`tick`).

    Sent from the main loop, not a timer thread, on purpose: a wedged capture
    loop must stop the keep-alives so that systemd restarts the sensor."""

    def __init__(self, interval: float | None = None) -> None:
        self.interval = watchdog_interval() if interval is None else interval
        self._next = 0.0

    def tick(self) -> None:
        now = time.monotonic()          # not the wall clock: a clock step must not skip a keep-alive
        if self.interval is not None and now >= self._next:
            self._next = now + self.interval
            notify("WATCHDOG=1")

    def due_in(self, now: float) -> float | None:
        """Seconds (monotonic `now`) until the next keep-alive is due; None without a watchdog.
        A loop that sleeps longer than this sends it late: it waits at most this long."""
        if self.interval is None:
            return None
        return max(0.0, self._next - now)
