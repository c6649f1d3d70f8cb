"""nfnetlink_queue config messages: their layout, and the kernel's answers to them.

The daemon sends the fail-open flag on the binding's socket without waiting
for an answer; these tests send the very same message on a socket of their
own (in a namespace they create) and check that the kernel accepts it for a
bound queue and refuses it for a queue nobody bound.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import sys
import textwrap

import pytest

from netsentry.capture import nfnetlink_queue as nfq


def test_fail_open_message_layout() -> None:
    msg = nfq.fail_open_message(7, True, seq=5)
    length, mtype, flags, seq, pid = struct.unpack_from("=IHHII", msg)
    assert length == len(msg) == 16 + 4 + 8 + 8
    assert mtype == (3 << 8) | 2                       # NFNL_SUBSYS_QUEUE, NFQNL_MSG_CONFIG
    assert flags == nfq.NLM_F_REQUEST | nfq.NLM_F_ACK and seq == 5 and pid == 0
    family, version, res_id = struct.unpack_from("!BBH", msg, 16)
    assert (family, version, res_id) == (socket.AF_UNSPEC, 0, 7)
    # NFQA_CFG_FLAGS then NFQA_CFG_MASK, big-endian u32 each
    assert struct.unpack_from("=HH", msg, 20) == (8, nfq.NFQA_CFG_FLAGS)
    assert struct.unpack_from("!I", msg, 24)[0] == nfq.NFQA_CFG_F_FAIL_OPEN
    assert struct.unpack_from("=HH", msg, 28) == (8, nfq.NFQA_CFG_MASK)
    assert struct.unpack_from("!I", msg, 32)[0] == nfq.NFQA_CFG_F_FAIL_OPEN
    closed = nfq.fail_open_message(7, False, ack=False)
    assert struct.unpack_from("!I", closed, 24)[0] == 0            # flag cleared...
    assert struct.unpack_from("!I", closed, 32)[0] == nfq.NFQA_CFG_F_FAIL_OPEN   # ...under the same mask
    assert struct.unpack_from("=H", closed, 6)[0] == nfq.NLM_F_REQUEST


def test_parse_ack() -> None:
    ok = struct.pack("=IHHII", 36, nfq.NLMSG_ERROR, 0, 1, 0) + struct.pack("=i", 0) + b"\0" * 16
    bad = struct.pack("=IHHII", 36, nfq.NLMSG_ERROR, 0, 1, 0) + struct.pack("=i", -errno.ENODEV) + b"\0" * 16
    assert nfq.parse_ack(ok) == 0
    assert nfq.parse_ack(bad) == errno.ENODEV
    assert nfq.parse_ack(b"") == -1
    assert nfq.parse_ack(b"\x01\x00\x00") == -1                    # truncated: no answer, no crash


def test_read_queue_counters(tmp_path) -> None:
    proc = tmp_path / "nfnetlink_queue"
    proc.write_text("    3  12345     2 2 65535     7     1       99  1\n"
                    "   10  99         0 2 65535     0     0        0  1\n"
                    "garbage line\n")
    counters = nfq.read_queue_counters(str(proc))
    assert counters[3] == nfq.QueueCounters(3, 12345, 2, 7, 1, 99)
    assert counters[10].id_sequence == 0
    assert nfq.read_queue_counters(str(tmp_path / "absent")) == {}


_KERNEL_CHECK = textwrap.dedent("""
    import errno, json
    from netsentry.capture.nfnetlink_queue import NfqueueError, QueueSocket, read_queue_counters
    out = {}
    with QueueSocket() as q:
        q.bind(41)
        q.set_fail_open(41, True)       # the daemon's message, acknowledged here
        q.set_fail_open(41, False)
        q.set_maxlen(41, 16)
        out["bound"] = 41 in read_queue_counters()
        try:
            q.set_fail_open(42, True)   # nobody bound 42
            out["unbound"] = 0
        except NfqueueError as exc:
            out["unbound"] = exc.errno
        q.unbind(41)
    out["after"] = 41 in read_queue_counters()
    print(json.dumps(out))
""")


def test_kernel_accepts_flags_for_a_bound_queue_only() -> None:
    from netns_lab import Lab, unavailable_reason
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    if not os.path.exists("/proc/net/netfilter/nfnetlink_queue"):
        pytest.skip("needs the nfnetlink_queue kernel module")
    lab = Lab()
    try:
        ns = lab.ns("q")
        done = lab.run(ns, sys.executable, "-c", _KERNEL_CHECK)
    finally:
        lab.close()
    import json
    assert json.loads(done.stdout) == {"bound": True, "unbound": errno.ENODEV, "after": False}


def test_verdict_batch_message_layout() -> None:
    """NFQNL_MSG_VERDICT_BATCH as nfnetlink_queue.h lays it out: nlmsghdr, nfgenmsg with the
    queue number (network order), one NFQA_VERDICT_HDR {be32 verdict, be32 id}."""
    import struct

    from netsentry.capture.nfnetlink_queue import NF_ACCEPT, verdict_batch_message
    msg = verdict_batch_message(7, NF_ACCEPT, 0x01020304)
    length, mtype, flags, _seq, _pid = struct.unpack_from("=IHHII", msg)
    assert length == len(msg) == 16 + 4 + 4 + 8
    assert mtype == (3 << 8) | 3 and flags == 0x1          # NFNL_SUBSYS_QUEUE, VERDICT_BATCH; request, no ack
    assert struct.unpack_from("!BBH", msg, 16) == (0, 0, 7)
    assert struct.unpack_from("=HH", msg, 20) == (12, 2)     # NFQA_VERDICT_HDR
    assert struct.unpack_from("!II", msg, 24) == (1, 0x01020304)


def test_batchcount_is_checked_with_its_key() -> None:
    from netsentry.config import ConfigError, load_config
    from netsentry.daemon import batchcount
    assert batchcount(load_config(None, [])) == 20
    assert batchcount(load_config(None, ["nfq.batchcount=1"])) == 1
    for bad in ("0", "5000"):
        with pytest.raises(ConfigError, match="nfq.batchcount: expected a number of packets"):
            batchcount(load_config(None, [f"nfq.batchcount={bad}"]))
    with pytest.raises(ConfigError, match="nfq.batchcount: expected an integer"):     # the typed --set
        load_config(None, ["nfq.batchcount=many"])
