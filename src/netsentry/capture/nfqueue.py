"""NFQUEUE inline source (IPS): packets from netfilter queues, each one given a verdict.

The kernel hands every packet an iptables ``NFQUEUE`` rule selects to the
process bound to the queue and holds it until a verdict comes back. This
source yields those packets to the capture loop as raw IP
(``LINKTYPE_RAW``) and gives every one a verdict:

- the sensor calls `verdict(pkt)` for a packet whose ``pkt.verdict`` is
  drop or reject (respond/verdict.py does the reject packets);
- every other packet is accepted when the loop asks for the next one, that
  is right after the sensor is done with it. With ``nfq.batchcount`` N > 1
  (Suricata's key) accepted packets are told to the kernel in runs: one
  NFQNL_MSG_VERDICT_BATCH for up to N consecutive accepted packets of a queue,
  sent when N are pending or as soon as no packet is left in hand, so on a
  quiet link a packet still waits for nothing but its own inspection; drops
  are given per packet, at once, before any batch could cover them.

Several queues (``--queue-balance A:B``) can be bound by one source: one
per worker once workers exist, all of them while the sensor runs as one
worker (a queue nobody binds is bypassed by ``--queue-bypass``, uninspected).

Fail-open: the queue's ``NFQA_CFG_F_FAIL_OPEN`` flag is set (or cleared for
``nfq.fail-open: false``) on the binding's own netlink socket
(nfnetlink_queue.py). With the flag, the kernel accepts packets that find
the queue full instead of dropping them. It counts them nowhere (not in
``queue_dropped``, and they get no packet id): the NFQUEUE rule's own
iptables counter minus ``capture.kernel_packets`` is what went through
uninspected (docs/daemon.md). Failing closed, the overflow is counted in
``queue_dropped`` / ``user_dropped``, reported as ``capture.kernel_drops``.
"""

from __future__ import annotations

import select
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from netsentry.capture.live import BATCH, LiveSource
from netsentry.capture.nfnetlink_queue import NF_ACCEPT, read_queue_counters, send_verdict_batch, set_queue_flags
from netsentry.config import ConfigError

LINKTYPE_RAW = 101
# The binding copies at most this much of a packet (its buffer is 4 KiB); longer
# packets are inspected truncated, their verdict covers the whole packet.
COPY_RANGE = 0xFFFF


def parse_queues(value: Any, key: str = "nfq.queues") -> list[int]:
    """``0``, ``"0:3"`` (as iptables --queue-balance), ``"0,2"`` or ``[0, 2]`` -> queue numbers."""
    items: list[Any]
    if value is None or value == "":
        return []
    if isinstance(value, bool):
        raise ConfigError(f"expected a queue number or a range A:B, got {value!r}", key)
    if isinstance(value, int):
        items = [value]
    elif isinstance(value, str):
        items = [p.strip() for p in value.split(",") if p.strip()]
    elif isinstance(value, list):
        items = value
    else:
        raise ConfigError(f"expected a queue number or a range A:B, got {value!r}", key)
    queues: list[int] = []
    for item in items:
        lo = hi = None
        if isinstance(item, int) and not isinstance(item, bool):
            lo = hi = item
        elif isinstance(item, str):
            a, sep, b = item.partition(":")
            if a.strip().isdigit() and (not sep or b.strip().isdigit()):
                lo = int(a)
                hi = int(b) if sep else lo
        if lo is None or hi is None or not 0 <= lo <= hi <= 65535:
            raise ConfigError(f"expected a queue number (0-65535) or a range A:B, got {item!r}", key)
        for q in range(lo, hi + 1):
            if q not in queues:
                queues.append(q)
    return queues


class _Queue:
    __slots__ = ("number", "nfq", "fd", "base_ids", "base_qdrop", "base_udrop", "pending_id", "npending")

    def __init__(self, number: int, nfq: Any) -> None:
        self.number = number
        self.nfq = nfq
        self.fd = nfq.get_fd()
        self.base_ids = self.base_qdrop = self.base_udrop = 0
        self.pending_id = 0         # batching: the last accepted packet not yet told to the kernel
        self.npending = 0


class NfqueueSource(LiveSource):
    """Packets of NFQUEUE `queues` as ``(ts, data, wirelen, LINKTYPE_RAW)``; a verdict for each."""

    linktype = LINKTYPE_RAW

    def __init__(self, queues: Sequence[int], fail_open: bool = True, maxlen: int = 4096,
                 batchcount: int = 1) -> None:
        super().__init__()
        self.batchcount = batchcount
        self.batches = 0
        try:
            from netfilterqueue import NetfilterQueue
        except ImportError:
            raise OSError("nfq: the netfilterqueue module is not installed (pip install 'netsentry[ips]')") from None
        self._ready: deque[Any] = deque()
        self._current: Any = None
        self.received = 0
        self.accepted = 0
        self.dropped = 0
        self.rewritten = 0          # accepted with the bytes the stream stage normalised
        self.fail_open = fail_open
        self._queues: list[_Queue] = []
        try:
            for number in queues:
                nfq = NetfilterQueue()
                q = _Queue(number, nfq)
                try:
                    nfq.bind(number, self._taker(q), max_len=maxlen, range=COPY_RANGE)
                except OSError as exc:
                    raise OSError(f"nfq: cannot bind queue {number} ({exc}); is another process bound to it?") from None
                q.fd = nfq.get_fd()
                self._queues.append(q)
                set_queue_flags(q.fd, number, fail_open)
            base = read_queue_counters()
            for q in self._queues:
                c = base.get(q.number)
                if c is not None:
                    q.base_qdrop, q.base_udrop, q.base_ids = c.queue_dropped, c.user_dropped, c.id_sequence
        except BaseException:
            self.close()
            raise
        self.queues = [q.number for q in self._queues]

    def _taker(self, q: _Queue) -> Any:
        """The binding's callback for queue `q`: the payload must be copied now (its buffer
        is reused after); the queue goes along for the batch verdict."""
        append = self._ready.append

        def take(p: Any) -> None:
            append((p.get_payload(), p, q))
        return take

    def _flush(self) -> None:
        """Batching: tell the kernel about every accepted packet not yet told, one message a queue."""
        for q in self._queues:
            if q.npending:
                send_verdict_batch(q.fd, q.number, NF_ACCEPT, q.pending_id)
                q.npending = 0
                self.batches += 1

    def __iter__(self) -> Iterator[tuple[float, bytes, int, int]]:
        poller = self._new_poller()
        by_fd = {}
        for q in self._queues:
            poller.register(q.fd, select.POLLIN)
            by_fd[q.fd] = q.nfq
        ready = self._ready
        clock = time.time
        should_stop = self.should_stop
        batchcount = self.batchcount
        flush = self._flush
        try:
            while not should_stop():
                if not ready:
                    if batchcount > 1:
                        flush()         # nothing more in hand: accepted packets wait for no one
                    for fd, _ev in self._poll(poller, clock()):
                        by_fd[fd].run(False)        # the binding's callback appends to `ready`
                n = 0
                while ready and n < BATCH:
                    data, p, q = ready.popleft()
                    n += 1
                    self._current = p
                    yield clock(), data, len(data), LINKTYPE_RAW
                    if self._current is not None:   # no drop/reject came: accept
                        self._current = None
                        self.accepted += 1
                        if batchcount > 1:
                            # one message for a run of accepted packets; a drop went out on its
                            # own already, so the batch (ids up to this one) cannot reach it
                            q.pending_id = p.id
                            q.npending += 1
                            if q.npending >= batchcount:
                                send_verdict_batch(q.fd, q.number, NF_ACCEPT, q.pending_id)
                                q.npending = 0
                                self.batches += 1
                        else:
                            p.accept()
                self.received += n
                self._maybe_tick(clock())
        finally:
            self._accept_rest()

    def _accept_rest(self) -> None:
        """Stopping: the packet in hand and those already read go on uninspected (fail-open)."""
        try:
            self._flush()
        except OSError:
            pass            # the queue is gone: the kernel decides (bypass) for what it held
        if self._current is not None:
            self._current.accept()
            self._current = None
            self.accepted += 1
        while self._ready:
            self._ready.popleft()[1].accept()
            self.received += 1
            self.accepted += 1

    def verdict(self, pkt: Any) -> None:
        """The sensor's verdict for the packet last yielded: drop it (reject = drop + respond/),
        or, with no verdict, accept it with the bytes the sensor left in `pkt.data`."""
        p = self._current
        if p is None:
            return
        self._current = None
        if pkt.verdict is None:
            # accepted with new bytes: the stream stage replaced re-sent bytes that differed
            # from those inspected (Suricata's inline normalisation), so the receiver gets
            # what detection saw, not the sender's second version
            p.set_payload(pkt.data)
            p.accept()
            self.accepted += 1
            self.rewritten += 1
            return
        p.drop()
        self.dropped += 1

    def stats(self) -> dict[str, int]:
        """capture.kernel_packets (packets the kernel queued to us: it numbers each one) and
        capture.kernel_drops (queue and socket overflows while failing closed)."""
        counters = read_queue_counters()
        queued = qdrop = udrop = 0
        for q in self._queues:
            c = counters.get(q.number)
            if c is None:
                continue
            queued += c.id_sequence - q.base_ids
            qdrop += c.queue_dropped - q.base_qdrop
            udrop += c.user_dropped - q.base_udrop
        return {
            "capture.kernel_packets": queued,
            "capture.kernel_drops": qdrop + udrop,
            "netsentry.nfq.received": self.received,
            "netsentry.nfq.accepted": self.accepted,
            "netsentry.nfq.dropped": self.dropped,
            "netsentry.nfq.rewritten": self.rewritten,
            "netsentry.nfq.verdict_batches": self.batches,
            "netsentry.nfq.queue_dropped": qdrop,
            "netsentry.nfq.user_dropped": udrop,
        }

    def close(self) -> None:
        self._accept_rest()
        for q in self._queues:
            try:
                q.nfq.unbind()
            except OSError:
                pass
        self._queues = []


def queues_from_config(config: Mapping[str, Any]) -> list[int]:
    return parse_queues((config.get("nfq") or {}).get("queues"))
