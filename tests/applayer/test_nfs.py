"""NFS over ONC-RPC (applayer/rpc.py, applayer/nfs.py): v3 over UDP (names learnt from a
LOOKUP, a one-write file, GETATTR not logged), v4 COMPOUND over TCP (a record split in two
fragments and across segments), v2 READ into a to-client file, the keywords
(`nfs_procedure` names per version, inclusive ranges, `nfs.version`), and hostile input:
every truncation of every message is an event or a ParserError, never another exception."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from applayer_helpers import alerts, replay, tcp_session, udp_exchange

from netsentry.applayer import nfs, rpc
from netsentry.applayer.registry import ParserError


def xdr_opaque(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b + b"\x00" * (-len(b) & 3)


def auth_unix(machine: bytes, uid: int, gid: int) -> bytes:
    body = struct.pack(">I", 7) + xdr_opaque(machine) + struct.pack(">III", uid, gid, 0)
    return struct.pack(">I", rpc.AUTH_UNIX) + xdr_opaque(body)


def call(xid: int, vers: int, proc: int, args: bytes, cred: bytes | None = None) -> bytes:
    cred = cred if cred is not None else struct.pack(">II", 0, 0)
    return struct.pack(">IIIIII", xid, 0, 2, nfs.PROGRAM, vers, proc) + cred + struct.pack(">II", 0, 0) + args


def reply(xid: int, results: bytes) -> bytes:
    return struct.pack(">IIIIII", xid, 1, 0, 0, 0, 0) + results


def marked(msg: bytes, split: int = 0) -> bytes:
    """TCP record marking: one fragment, or two when `split` cuts the message."""
    if not split:
        return struct.pack(">I", 0x80000000 | len(msg)) + msg
    return (struct.pack(">I", split) + msg[:split]
            + struct.pack(">I", 0x80000000 | (len(msg) - split)) + msg[split:])


DIR_FH = b"D" * 32
FILE_FH = b"F" * 28
CRED = auth_unix(b"hostname", 1000, 100)

V3 = [
    (True, call(1, 3, 3, xdr_opaque(DIR_FH) + xdr_opaque(b"hello.txt"), CRED)),        # LOOKUP
    (False, reply(1, struct.pack(">I", 0) + xdr_opaque(FILE_FH) + struct.pack(">II", 0, 0))),
    (True, call(2, 3, 1, xdr_opaque(FILE_FH), CRED)),                                  # GETATTR
    (False, reply(2, struct.pack(">I", 0) + b"\x00" * 84)),
    (True, call(3, 3, 7, xdr_opaque(FILE_FH) + struct.pack(">QII", 0, 5, 2) + xdr_opaque(b"hello"), CRED)),
    (False, reply(3, struct.pack(">I", 0) + b"\x00" * 24)),
    (True, call(4, 3, 12, xdr_opaque(DIR_FH) + xdr_opaque(b"old.txt"), CRED)),          # REMOVE
    (False, reply(4, struct.pack(">I", 2))),                                           # ERR_NOENT
]

RULES = "\n".join((
    "alert nfs any any -> any any (nfs_procedure:WRITE; sid:1;)",
    "alert nfs any any -> any any (nfs_procedure:3; nfs.version:3; sid:2;)",
    "alert nfs any any -> any any (nfs_procedure:1<>3; sid:3;)",        # inclusive: 1, 2, 3
    'alert nfs any any -> any any (filename:"hello.txt"; filestore; sid:4;)',
    "alert nfs any any -> any any (nfs_version:4; sid:5;)",
    'alert nfs any any -> any any (file.data; content:"hello"; sid:6;)',
)) + "\n"


def test_udp_v3_records_and_file(tmp_path: Path):
    pcap = udp_exchange(tmp_path / "n.pcap", V3, dport=2049, sport=800)
    recs = replay(tmp_path, pcap, RULES, "outputs.eve-log.types=[alert, nfs]")
    assert {sid: len(alerts(recs, sid)) for sid in range(1, 7)} == {1: 1, 2: 1, 3: 2, 4: 1, 5: 0, 6: 1}
    assert all(r["app_proto"] == "nfs" for r in alerts(recs))
    write = alerts(recs, 1)[0]
    assert write["nfs"]["file_tx"] is True and write["nfs"]["filename"] == "hello.txt"
    assert write["files"][0]["filename"] == "hello.txt" and write["files"][0]["size"] == 5
    got = {r["nfs"]["procedure"]: r for r in recs if r["event_type"] == "nfs"}
    assert "GETATTR" not in got                     # v2/v3 GETATTR is not logged (Suricata)
    look = got["LOOKUP"]
    assert look["nfs"]["filename"] == "hello.txt" and look["nfs"]["status"] == "OK"
    assert look["nfs"]["hhash"] == f"{zlib.crc32(FILE_FH):x}"
    assert look["rpc"] == {"xid": 1, "status": "ACCEPTED", "auth_type": "UNIX",
                           "creds": {"machine_name": "hostname", "uid": 1000, "gid": 100}}
    assert look["src_port"] == 2049                 # logged on the reply: its packet's direction
    assert got["REMOVE"]["nfs"]["status"] == "ERR_NOENT" and got["REMOVE"]["nfs"]["filename"] == "old.txt"
    w = got["WRITE"]["nfs"]
    assert w["write"] == {"first": True, "last": True, "last_xid": 3, "chunks": 0}


def compound(xid: int, ops: bytes, nops: int) -> bytes:
    return call(xid, 4, 1, xdr_opaque(b"") + struct.pack(">II", 0, nops) + ops)


def test_tcp_v4_compound_fragments(tmp_path: Path):
    putfh = struct.pack(">I", 22) + xdr_opaque(FILE_FH)
    write = struct.pack(">I", 38) + b"\x00" * 16 + struct.pack(">QI", 0, 2) + xdr_opaque(b"abcdefgh")
    req = compound(7, putfh + write, 2)
    resp = reply(7, struct.pack(">I", 0) + xdr_opaque(b"") + struct.pack(">I", 2)
                 + struct.pack(">II", 22, 0) + struct.pack(">II", 38, 0) + struct.pack(">II", 8, 2) + b"\x00" * 8)
    pcap = tcp_session(tmp_path / "n4.pcap", [(True, marked(req, split=40)), (False, marked(resp))],
                       dport=2049, sport=900, segment=17)
    rules = ("alert nfs any any -> any any (nfs_procedure:38; nfs.version:4; sid:1;)\n"
             "alert nfs any any -> any any (nfs_procedure:WRITE; sid:2;)\n"
             'alert nfs any any -> any any (file.data; content:"cdef"; sid:3;)\n')
    recs = replay(tmp_path, pcap, rules, "outputs.eve-log.types=[alert, nfs]")
    assert {sid: len(alerts(recs, sid)) for sid in (1, 2, 3)} == {1: 1, 2: 1, 3: 1}
    rec = [r for r in recs if r["event_type"] == "nfs"]
    assert len(rec) == 1 and rec[0]["nfs"]["procedure"] == "WRITE" and rec[0]["nfs"]["version"] == 4
    assert rec[0]["rpc"]["auth_type"] == "NULL"


def test_v2_read_file_to_client(tmp_path: Path):
    fh = b"2" * 32
    attrs = struct.pack(">I", 1) + b"\x00" * 16 + struct.pack(">I", 6) + b"\x00" * 44      # size 6
    pcap = udp_exchange(tmp_path / "n2.pcap", [
        (True, call(9, 2, 6, fh + struct.pack(">III", 0, 8192, 0))),
        (False, reply(9, struct.pack(">I", 0) + attrs + xdr_opaque(b"secret"))),
    ], dport=2049, sport=700)
    recs = replay(tmp_path, pcap, "alert nfs any any -> any any (filestore; sid:1;)\n"
                  'alert nfs any any -> any any (file.data; content:"secret"; sid:2;)\n',
                  "outputs.eve-log.types=[alert, nfs]")
    assert len(alerts(recs, 1)) == 1 and len(alerts(recs, 2)) == 1
    rec = [r["nfs"] for r in recs if r["event_type"] == "nfs"]
    assert rec[0]["procedure"] == "READ" and rec[0]["read"]["last"] is True and rec[0]["file_tx"] is True


def test_creds_read_as_suricata_reads_them():
    """Suricata reads uid and gid right after the machine name's bytes, its XDR padding not
    skipped: a name whose length is not a multiple of 4 shifts them (its records say so)."""
    c = rpc.parse(call(1, 3, 0, b"", auth_unix(b"hostname", 1000, 100)))
    assert (c.machine, c.uid, c.gid) == (b"hostname", 1000, 100)
    c = rpc.parse(call(1, 3, 0, b"", auth_unix(b"host1", 1000, 100)))
    assert (c.machine, c.uid, c.gid) == (b"host1", 0, 1000 << 8)


def test_probes_and_bad_rules():
    msg = call(1, 3, 0, b"")
    assert nfs.probe_udp(msg, True) is True
    assert nfs.probe_udp(call(1, 5, 0, b""), True) is False                   # no such version
    assert nfs.probe_udp(reply(1, b""), False) is True
    assert nfs.probe_udp(b"\x00" * 40, True) is False
    assert nfs.probe_tcp(marked(msg), True) is True
    assert nfs.probe_tcp(marked(msg)[:10], True) is None                      # too short to say
    assert nfs.probe_tcp(b"GET / HTTP/1.1\r\n\r\n" + b"x" * 30, True) is False
    from netsentry.rules.errors import RuleError
    from netsentry.rules.keywords.nfs import _procedure_pred
    with pytest.raises(RuleError):
        _procedure_pred("NOT_A_PROCEDURE")
    p = _procedure_pred("WRITE")
    assert p(8, 2) and p(7, 3) and p(38, 4) and not p(7, 4)


MESSAGES = [m for _, m in V3] + [compound(7, struct.pack(">I", 22) + xdr_opaque(FILE_FH), 1)]


@pytest.mark.parametrize("tcp", [False, True])
def test_truncations_are_events_not_crashes(tcp: bool):
    """Every prefix of every message, alone after a valid start: an event or ParserError."""
    class Pkt:
        proto = 6 if tcp else 17
    for m in MESSAGES:
        for cut in range(0, len(m), 3):
            p = nfs.NfsParser()
            p.parse(marked(MESSAGES[0]) if tcp else MESSAGES[0], True, Pkt())
            data = m[:cut]
            if tcp:
                data = struct.pack(">I", 0x80000000 | len(data)) + data
            try:
                p.parse(data, cut % 2 == 0, Pkt())
            except ParserError:
                pass
            assert all(e in nfs.EVENTS for tx in p.txs for e in (tx.events or ()))


def test_too_many_transactions_closes_the_oldest():
    p = nfs.NfsParser()
    for xid in range(nfs.MAX_TX + 5):
        p.parse(call(xid, 3, 4, xdr_opaque(DIR_FH)), True)          # ACCESS, never answered
    assert sum(1 for tx in p.txs if tx.events and "too_many_transactions" in tx.events) == 4
    assert p.txs[0].complete() and "too_many_transactions" in p.txs[0].events
