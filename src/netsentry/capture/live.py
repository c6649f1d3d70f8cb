"""What every live packet source shares: wall-clock wake-ups and the stop request.

A live source is iterated by the sensor's capture loop like a capture file
(``(ts, data, wirelen, linktype)`` tuples) but never ends by itself. Two
things must still happen when no packet comes (docs/architecture.md,
"Packet sources and verdicts"):

- time must advance: flow timeouts, anomaly windows and the periodic stats
  record are driven by time, and on a quiet link no packet brings it. The
  source calls ``on_tick(now)`` at least once a second, from its poll
  time-out, and also between batches while traffic flows (a busy link must
  not starve the stats record either);
- it must stop when asked: ``should_stop()`` (the lifecycle's stop flag) is
  checked on every wake-up and between batches, and the iteration ends.

Both are plain attributes the daemon sets before iterating, so a source has
no dependency on the sensor or the lifecycle module.

A third, optional attribute, ``wake`` (a `Wake`), lets another thread or
process ask for the next wake-up *now*: a control command (``netsentry ctl``)
or a message from the worker parent is then handled within a batch under
load (``wake.pending`` is looked at between batches) and at once on an idle
link (its file descriptor is in the source's poll set), instead of at the
next once-a-second tick.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable

TICK_INTERVAL = 1.0       # seconds: the longest a source sleeps without calling on_tick
BATCH = 64                # packets read from one socket before the clock and the stop flag are looked at again


def _never() -> bool:
    return False


def _no_tick(now: float) -> None:
    return None


class Wake:
    """A self-pipe and a flag: `set()` (any thread) makes the source call on_tick soon.

    The flag is what the source reads between batches (an attribute test); the
    pipe wakes its poll on an idle link. Subclasses may read the flag from
    elsewhere (workers_live.py: shared memory the worker parent writes)."""

    def __init__(self) -> None:
        self.pending = False
        self.fd, self._w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def set(self) -> None:
        self.pending = True
        try:
            os.write(self._w, b"!")
        except (BlockingIOError, OSError):
            pass            # already readable (or closing): the source wakes either way

    def clear(self) -> None:
        """The source is about to call on_tick: forget the request and empty the pipe."""
        self.pending = False
        try:
            while os.read(self.fd, 4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def close(self) -> None:
        for fd in (self.fd, self._w):
            try:
                os.close(fd)
            except OSError:
                pass


class LiveSource:
    """Base of AF_PACKET and NFQUEUE sources: the tick schedule and the stop check."""

    linktype: int = 1

    def __init__(self) -> None:
        self.on_tick: Callable[[float], None] = _no_tick
        self.should_stop: Callable[[], bool] = _never
        self.wake: Wake | None = None
        self._next_tick = time.time() + TICK_INTERVAL

    def _maybe_tick(self, now: float) -> None:
        """Call on_tick if a second has passed since the last call, or a wake-up was asked for."""
        wake = self.wake
        if now >= self._next_tick or (wake is not None and wake.pending):
            if wake is not None:
                wake.clear()
            self._next_tick = now + TICK_INTERVAL
            self.on_tick(now)

    def _new_poller(self) -> select.poll:
        """A poll set holding the wake-up's descriptor (when there is one); the caller adds its own."""
        poller = select.poll()
        if self.wake is not None:
            poller.register(self.wake.fd, select.POLLIN)
        return poller

    def _poll(self, poller: select.poll, now: float) -> list[tuple[int, int]]:
        """Wait for traffic until the next tick is due; the wake-up's own event is left out."""
        events = poller.poll(self._poll_timeout_ms(now))
        wake = self.wake
        if wake is not None and events:
            fd = wake.fd
            events = [e for e in events if e[0] != fd]
        return events

    def _poll_timeout_ms(self, now: float) -> int:
        return max(0, min(int((self._next_tick - now) * 1000) + 1, int(TICK_INTERVAL * 1000)))
