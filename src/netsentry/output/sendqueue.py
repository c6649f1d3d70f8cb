"""The bounded queue and sender thread between the capture loop and a network receiver.

A SIEM that is slow or down must never slow or stop the sensor (issue #10):
the capture loop only appends an already-encoded record to a bounded queue
(`SendQueue.put`, no I/O, no waiting), and one sender thread per receiver
drains it, reconnecting with exponential backoff while the receiver is away.

When the queue is full, the oldest record of the *least severe* class queued
(flows and stats before alerts, a severity-3 alert before a severity-1 one)
is dropped to make room, so a flood of minor records cannot push out the
alert that matters; a new record less severe than everything queued is
dropped itself. Every loss is counted (`dropped`), and logged once per
`LOG_EVERY` seconds, so ``sent + dropped == produced`` always holds once the
queue is closed (records still queued when the drain time runs out at
shutdown are counted as dropped too). Over TCP, what the kernel had already
accepted when a receiver dies is out of reach: it counts as sent.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from netsentry.log import get_logger

LEVELS = 8                  # syslog severities 0 (emergency) .. 7 (debug): the queue's classes
LOG_EVERY = 10.0            # seconds between two log lines about losses or a receiver that is down
BACKOFF_FIRST = 0.2         # seconds before the first reconnect attempt
BACKOFF_MAX = 10.0          # longest wait between two attempts
BATCH = 256                 # records handed to the transport at once
LINGER = 0.005              # seconds a woken sender waits for a fuller batch (one send per batch)


class SendError(Exception):
    """The transport lost its receiver (or never reached it); the batch was not sent."""


class Transport:
    """What a sender thread drives: connect, send a batch of records, close."""

    name = "receiver"

    def connect(self) -> None:       # pragma: no cover - interface
        raise NotImplementedError

    def send(self, records: list[bytes], stop: Callable[[], bool]) -> None:  # pragma: no cover
        """Send every record, or raise SendError (OSError) when the receiver is lost.

        A receiver that is merely slow (a full socket buffer) is waited for on
        the same connection, so no byte is sent twice; `stop()` turning true
        (shutdown gave up) ends the wait with SendError."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class SendQueue:
    """A bounded, severity-aware queue drained by one sender thread into a `Transport`."""

    def __init__(self, transport: Transport, size: int, label: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.transport = transport
        self.size = size
        self.label = label              # e.g. "syslog tcp://127.0.0.1:514", for logs
        self._queues: list[deque[bytes]] = [deque() for _ in range(LEVELS)]
        self._seqs: list[deque[int]] = [deque() for _ in range(LEVELS)]
        self._seq = 0
        self.depth = 0
        self.produced = 0
        self.sent = 0
        self.dropped = 0
        self.reconnects = 0
        self.connected = False
        self._cond = threading.Condition()
        self._closing = False
        self._clock = clock
        self._log = get_logger()
        self._last_loss_log = float("-inf")
        self._dropped_logged = 0
        self._thread = threading.Thread(target=self._run, name=f"netsentry-{label}", daemon=True)
        self._thread.start()

    # --- producer side (the capture loop) ----------------------------------------

    def put(self, record: bytes, level: int) -> None:
        """Queue `record` of syslog severity `level` (0 most severe); never blocks on I/O."""
        with self._cond:
            self.produced += 1
            if self.depth >= self.size and not self._make_room(level):
                self.dropped += 1
                self._note_loss()
                return
            self._seq += 1
            self._queues[level].append(record)
            self._seqs[level].append(self._seq)
            self.depth += 1
            if self._idle:
                self._cond.notify()

    def _make_room(self, level: int) -> bool:
        """Drop the oldest record of the least severe non-empty class, if it is no more
        severe than `level`; False when the new record is the least severe (drop it)."""
        for worst in range(LEVELS - 1, level - 1, -1):
            if self._queues[worst]:
                self._queues[worst].popleft()
                self._seqs[worst].popleft()
                self.depth -= 1
                self.dropped += 1
                self._note_loss()
                return True
        return False

    def _note_loss(self) -> None:
        now = self._clock()
        if now - self._last_loss_log >= LOG_EVERY:
            self._log.warning("output queue full, records dropped", output=self.label,
                              dropped=self.dropped - self._dropped_logged, dropped_total=self.dropped,
                              queue_size=self.size)
            self._last_loss_log = now
            self._dropped_logged = self.dropped

    # --- consumer side (the sender thread) ---------------------------------------

    def _take(self) -> list[bytes]:
        """Up to BATCH records in the order they were queued (across the classes)."""
        out: list[bytes] = []
        queues, seqs = self._queues, self._seqs
        busy = [lvl for lvl in range(LEVELS) if queues[lvl]]
        if len(busy) == 1:                  # the usual case: one class queued, no merging
            q, s = queues[busy[0]], seqs[busy[0]]
            n = min(BATCH, len(q))
            out = [q.popleft() for _ in range(n)]
            for _ in range(n):
                s.popleft()
            self.depth -= n
            return out
        while len(out) < BATCH and self.depth:
            best = -1
            best_seq = 0
            for lvl in range(LEVELS):
                if seqs[lvl] and (best < 0 or seqs[lvl][0] < best_seq):
                    best, best_seq = lvl, seqs[lvl][0]
            seqs[best].popleft()
            out.append(queues[best].popleft())
            self.depth -= 1
        return out

    def _run(self) -> None:
        backoff = BACKOFF_FIRST
        last_down_log = float("-inf")
        was_down = False
        batch: list[bytes] = []
        while True:
            with self._cond:
                if self._give_up or (self._closing and not batch and not self.depth):
                    break
            if not self.connected:
                # connect at start-up too, so a receiver that is down is reported at once
                try:
                    self.transport.connect()
                except Exception as exc:    # noqa: BLE001 - whatever the client library raises, the thread retries
                    now = self._clock()
                    if now - last_down_log >= LOG_EVERY:
                        self._log.warning("output receiver unreachable, retrying", output=self.label,
                                          error=str(exc), retry_in=round(backoff, 2), queued=self.depth)
                        last_down_log = now
                    was_down = True
                    self._sleep(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX)
                    continue
                if was_down:
                    self._log.info("output receiver connected", output=self.label)
                    was_down = False
                self.connected = True
                backoff = BACKOFF_FIRST
            if not batch:
                with self._cond:
                    while not self.depth and not self._closing:
                        self._idle = True
                        self._cond.wait()
                        self._idle = False
                    if self.depth < BATCH and not self._closing:
                        # a record just arrived: give the capture loop a moment to queue
                        # more, so the receiver gets one write per batch, not per record
                        self._cond.wait(LINGER)
                    batch = self._take()
                if not batch:
                    continue
            self._inflight = len(batch)
            try:
                self.transport.send(batch, self._stopping)
            except Exception as exc:        # noqa: BLE001 - the sender thread must outlive any receiver
                if self._give_up:
                    break
                self.connected = False
                self.reconnects += 1
                was_down = True
                self.transport.close()
                now = self._clock()
                if now - last_down_log >= LOG_EVERY:
                    self._log.warning("output receiver lost, reconnecting", output=self.label, error=str(exc))
                    last_down_log = now
                continue        # the same batch again once reconnected: nothing lost here
            with self._cond:
                self.sent += len(batch)
                self._inflight = 0
                self._cond.notify_all()
            batch = []
        with self._cond:
            # shutdown with records never sent: they are losses, counted
            self.dropped += len(batch) + self.depth
            for q in self._queues:
                q.clear()
            for s in self._seqs:
                s.clear()
            self.depth = 0
            self._inflight = 0
            self._cond.notify_all()
        self.transport.close()

    _give_up = False
    _inflight = 0
    _idle = False

    def _stopping(self) -> bool:
        return self._give_up

    def _sleep(self, seconds: float) -> None:
        with self._cond:
            if not self._give_up:
                self._cond.wait(seconds)

    # --- life cycle -----------------------------------------------------------------

    def flush(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the queue to empty; True if it did."""
        deadline = self._clock() + timeout
        with self._cond:
            while self.depth and self._thread.is_alive():
                left = deadline - self._clock()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    def close(self, drain: float) -> None:
        """Send what is queued for up to `drain` seconds, then stop; what is left is dropped."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(drain)
        if self._thread.is_alive():
            with self._cond:
                self._give_up = True
                self._cond.notify_all()
            self._thread.join(5.0)
        if self._thread.is_alive():
            # the sender is stuck in a transport that cannot time out (a frozen receiver):
            # what it holds and what is queued are losses
            with self._cond:
                self.dropped += self._inflight + self.depth
                self._inflight = self.depth = 0
        self._log.info("output closed", output=self.label, produced=self.produced, sent=self.sent,
                       dropped=self.dropped, reconnects=self.reconnects)

    def stats(self) -> dict[str, int]:
        return {"queue_depth": self.depth, "sent": self.sent, "dropped": self.dropped,
                "reconnects": self.reconnects, "produced": self.produced}

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"SendQueue({self.label}, depth={self.depth}, sent={self.sent}, dropped={self.dropped})"

