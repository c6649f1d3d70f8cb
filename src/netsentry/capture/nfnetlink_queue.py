"""The few nfnetlink_queue messages the netfilterqueue binding does not send, and its /proc counters.

Why: the binding (libnetfilter_queue underneath) binds a queue and gives
verdicts, but has no call for the queue's config flags. The one that matters
is ``NFQA_CFG_F_FAIL_OPEN``: without it, packets that arrive while the
queue is full (the sensor is slower than the link) are dropped by the
kernel; with it they are accepted uninspected, which is what an IPS that
must never become the outage wants (Suricata sets it for ``fail-open: yes``).
The flag is per queue and the kernel only takes it from the netlink socket
that bound the queue (it checks the sender's port id), so
`set_queue_flags` writes to that socket, given its file descriptor
(``NetfilterQueue.get_fd()``).

Messages are built with struct (netlink header, nfgenmsg, attributes), as
the kernel's ``include/uapi/linux/netfilter/nfnetlink_queue.h`` lays them out.
The batch verdict (``NFQNL_MSG_VERDICT_BATCH``, which the binding lacks too)
accepts every waiting packet up to an id with one message (capture/nfqueue.py's
``nfq.batchcount``).
`QueueSocket` is a bare netlink socket that can bind a queue itself; the
tests use it to check the kernel's answers, and `netsentry ips` could use it
where the binding is not installed.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from dataclasses import dataclass

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_CONFIG = 2
NFQNL_MSG_VERDICT_BATCH = 3
NFQA_VERDICT_HDR = 2
NF_DROP, NF_ACCEPT = 0, 1
NFNETLINK_V0 = 0
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLMSG_ERROR = 0x2

# NFQA_CFG_* attributes
NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQA_CFG_MASK = 4
NFQA_CFG_FLAGS = 5
# nfqnl_msg_config_cmds
NFQNL_CFG_CMD_BIND = 1
NFQNL_CFG_CMD_UNBIND = 2
NFQNL_COPY_PACKET = 2
# NFQA_CFG_F_* flags
NFQA_CFG_F_FAIL_OPEN = 0x1
NFQA_CFG_F_CONNTRACK = 0x2
NFQA_CFG_F_GSO = 0x4

PROC_PATH = "/proc/net/netfilter/nfnetlink_queue"

_NLMSGHDR = struct.Struct("=IHHII")     # len, type, flags, seq, pid
_NFGENMSG = struct.Struct("!BBH")       # family, version, res_id (queue number, network order)
_NLATTR = struct.Struct("=HH")          # len, type


class NfqueueError(OSError):
    """The kernel refused a queue config message; ``errno`` is its answer."""


def _attr(atype: int, payload: bytes) -> bytes:
    length = _NLATTR.size + len(payload)
    pad = (-length) % 4
    return _NLATTR.pack(length, atype) + payload + b"\0" * pad


def config_message(queue: int, attrs: bytes, seq: int = 1, ack: bool = True) -> bytes:
    """An NFQNL_MSG_CONFIG message for `queue` carrying the packed attributes `attrs`."""
    body = _NFGENMSG.pack(socket.AF_UNSPEC, NFNETLINK_V0, queue) + attrs
    flags = NLM_F_REQUEST | (NLM_F_ACK if ack else 0)
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_CONFIG,
                          flags, seq, 0) + body


def flags_message(queue: int, flags: int, mask: int, seq: int = 1, ack: bool = True) -> bytes:
    """Set the bits of `mask` in the queue's flags to those of `flags` (NFQA_CFG_MASK/FLAGS, big-endian u32)."""
    attrs = _attr(NFQA_CFG_FLAGS, struct.pack("!I", flags)) + _attr(NFQA_CFG_MASK, struct.pack("!I", mask))
    return config_message(queue, attrs, seq, ack)


def fail_open_message(queue: int, fail_open: bool, seq: int = 1, ack: bool = True) -> bytes:
    return flags_message(queue, NFQA_CFG_F_FAIL_OPEN if fail_open else 0, NFQA_CFG_F_FAIL_OPEN, seq, ack)


def set_queue_flags(fd: int, queue: int, fail_open: bool) -> None:
    """Send the fail-open setting of `queue` on the netlink socket `fd` that bound it.

    No acknowledgement is asked for: the socket belongs to libnetfilter_queue,
    whose receive loop reads everything that arrives on it; an error answer
    would be read (and ignored) there, not here. `QueueSocket` checks the
    kernel's answer to the same message in the tests."""
    os.write(fd, fail_open_message(queue, fail_open, seq=0, ack=False))


def verdict_batch_message(queue: int, verdict: int, packet_id: int) -> bytes:
    """NFQNL_MSG_VERDICT_BATCH: `verdict` for every packet of `queue` still waiting with an id
    up to `packet_id` (the kernel walks its queue; packets given a verdict on their own are
    gone from it already). No acknowledgement: it is sent on the binding's socket."""
    body = (_NFGENMSG.pack(socket.AF_UNSPEC, NFNETLINK_V0, queue)
            + _attr(NFQA_VERDICT_HDR, struct.pack("!II", verdict, packet_id)))
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_VERDICT_BATCH,
                          NLM_F_REQUEST, 0, 0) + body


def send_verdict_batch(fd: int, queue: int, verdict: int, packet_id: int) -> None:
    """One batch verdict on the netlink socket `fd` that bound `queue` (the kernel takes
    verdicts only from it)."""
    os.write(fd, verdict_batch_message(queue, verdict, packet_id))


def parse_ack(data: bytes) -> int:
    """The errno of the first NLMSG_ERROR message in `data` (0: success), -1 if there is none."""
    off = 0
    while off + _NLMSGHDR.size <= len(data):
        length, mtype, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, off)
        if length < _NLMSGHDR.size:
            break
        if mtype == NLMSG_ERROR and off + _NLMSGHDR.size + 4 <= len(data):
            (err,) = struct.unpack_from("=i", data, off + _NLMSGHDR.size)
            return -err
        off += (length + 3) & ~3
    return -1


class QueueSocket:
    """A raw nfnetlink_queue socket: bind a queue, change its config, read the kernel's answers."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.bind((0, 0))
        self.sock.settimeout(2.0)
        self._seq = 0

    def request(self, message_for_seq: bytes) -> None:
        """Send one config message (built with ack=True) and raise NfqueueError if the kernel refuses it."""
        self.sock.send(message_for_seq)
        while True:
            err = parse_ack(self.sock.recv(65536))
            if err >= 0:
                break
        if err:
            raise NfqueueError(err, os.strerror(err))

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def bind(self, queue: int, copy_range: int = 0xFFFF) -> None:
        cmd = _attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, 0))
        self.request(config_message(queue, cmd, self._next_seq()))
        params = _attr(NFQA_CFG_PARAMS, struct.pack("!IB", copy_range, NFQNL_COPY_PACKET))
        self.request(config_message(queue, params, self._next_seq()))

    def set_fail_open(self, queue: int, fail_open: bool) -> None:
        self.request(fail_open_message(queue, fail_open, self._next_seq()))

    def set_maxlen(self, queue: int, maxlen: int) -> None:
        self.request(config_message(queue, _attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", maxlen)),
                                    self._next_seq()))

    def unbind(self, queue: int) -> None:
        cmd = _attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_UNBIND, 0))
        try:
            self.request(config_message(queue, cmd, self._next_seq()))
        except NfqueueError as exc:
            if exc.errno != errno.ENODEV:
                raise

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> QueueSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class QueueCounters:
    """One line of /proc/net/netfilter/nfnetlink_queue."""

    queue: int
    portid: int
    waiting: int          # packets queued now, waiting for a verdict
    queue_dropped: int    # dropped (or, fail-open, accepted) because the queue was full
    user_dropped: int     # lost because the netlink socket's buffer was full
    id_sequence: int      # the last packet id given out: every packet offered to the queue


def read_queue_counters(path: str = PROC_PATH) -> dict[int, QueueCounters]:
    """The kernel's counters of every bound queue (of this network namespace)."""
    counters: dict[int, QueueCounters] = {}
    try:
        with open(path, encoding="ascii") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return counters
    for line in lines:
        f = line.split()
        if len(f) < 8 or not f[0].isdigit():
            continue
        # queue_number peer_portid queue_total copy_mode copy_range queue_dropped user_dropped id_sequence 1
        q = QueueCounters(int(f[0]), int(f[1]), int(f[2]), int(f[5]), int(f[6]), int(f[7]))
        counters[q.queue] = q
    return counters
