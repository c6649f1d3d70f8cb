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
"""

from __future__ import annotations

import time
from collections.abc import Callable

TICK_INTERVAL = 1.0       # seconds: the longest a source sleeps without calling on_tick
BATCH = 64                # packets read from one socket before the clock and the stop flag are looked at again


def _never() -> bool:
    return False


def _no_tick(now: float) -> None:
    return None


class LiveSource:
    """Base of AF_PACKET and NFQUEUE sources: the tick schedule and the stop check."""

    linktype: int = 1

    def __init__(self) -> None:
        self.on_tick: Callable[[float], None] = _no_tick
        self.should_stop: Callable[[], bool] = _never
        self._next_tick = time.time() + TICK_INTERVAL

    def _maybe_tick(self, now: float) -> None:
        """Call on_tick if a second has passed since the last call."""
        if now >= self._next_tick:
            self._next_tick = now + TICK_INTERVAL
            self.on_tick(now)

    def _poll_timeout_ms(self, now: float) -> int:
        return max(0, min(int((self._next_tick - now) * 1000) + 1, int(TICK_INTERVAL * 1000)))
