"""NFS (v2 RFC 1094, v3 RFC 1813, v4 RFC 7530) over ONC-RPC (applayer/rpc.py), on UDP and
TCP, as Suricata's parser (rust/src/nfs/) reads it: transactions, file transfers, the
`nfs` EVE record, `nfs_procedure` and `nfs.version`.

- Detection on port 2049 (`app-layer.protocols.nfs.{tcp,udp}.detection-ports` moves it),
  by the RPC header: a call to program 100003 (versions 2-4 on UDP, 3-4 on TCP) with a
  known credential flavor, or an accepted and successful reply.
- Every call is matched to its reply by xid. A call is a transaction (request side done
  at once; the reply completes it with the RPC reply state and the NFS status), except:
  v3 WRITE and v4 WRITE (a file transaction per file handle and direction: every write
  to it adds a chunk, a FILE_SYNC write, COMMIT or v4 CLOSE ends it), READ (a to-client
  file transaction, filled by the replies' data, ended by eof or, v2, by the file's size),
  v3 COMMIT. NFSv4 COMPOUNDs make a transaction only for CREATE and REMOVE (besides READ
  and WRITE's file transactions), as Suricata.
- Names: LOOKUP, CREATE, READDIRPLUS (v3) and OPEN+GETFH (v4) replies map handles to
  names, so a later READ/WRITE/GETATTR on the handle names its file.
- Files: a file transaction's data is a `File` (applayer/files.py): `filename`,
  `filemagic`, `filemd5`, `filestore`, `file.data` see it.
- EVE `nfs` (logged as a transaction completes, or at the flow's end, on the packet of
  the moment: `src_ip` is that packet's sender): `rpc` {xid, status, auth_type, creds
  {machine_name, uid, gid} for AUTH_UNIX} and `nfs` {version, procedure, filename, hhash
  (crc32 of the file handle), id, file_tx, type, status, read/write {first, last,
  last_xid, chunks}, rename {from, to}}. GETATTR of v2/v3 is not logged (Suricata's filter).
- Events (`app-layer-event:nfs.*`): malformed_data, non_existing_version,
  unsupported_version, too_many_transactions.
"""

from __future__ import annotations

import zlib
from typing import Any

from netsentry.applayer import enabled
from netsentry.applayer import rpc
from netsentry.applayer.files import FILES, File, files_eve
from netsentry.applayer.registry import BOTH, ParserError, Protocol, register_buffer, register_protocol, \
    register_states
from netsentry.applayer.rpc import Truncated, opaque, u32, u64
from netsentry.applayer.tx import Tx, event_on_newest

PROGRAM = 100003
_PROGS = frozenset((PROGRAM,))
EVENTS: dict[str, int | None] = {"malformed_data": BOTH, "non_existing_version": BOTH,
                                 "unsupported_version": BOTH, "too_many_transactions": BOTH}
MAX_TX = 1024               # Suricata's NFS_MAX_TX
MAX_REQUESTS = 65536        # calls waiting for their reply (app-layer.protocols.nfs.max-requests)
MAX_NAMES = 65536           # handle -> name map (max-names)
MAX_FILE = 1 << 20          # file data kept per file (file.data, hashes); the rest counted

PROC2 = ("NULL", "GETATTR", "SETATTR", "ROOT", "LOOKUP", "READLINK", "READ", "WRITECACHE", "WRITE",
         "CREATE", "REMOVE", "RENAME", "LINK", "SYMLINK", "MKDIR", "RMDIR", "READDIR", "STATFS")
PROC3 = ("NULL", "GETATTR", "SETATTR", "LOOKUP", "ACCESS", "READLINK", "READ", "WRITE", "CREATE", "MKDIR",
         "SYMLINK", "MKNOD", "REMOVE", "RMDIR", "RENAME", "LINK", "READDIR", "READDIRPLUS", "FSSTAT",
         "FSINFO", "PATHCONF", "COMMIT")
PROC4 = {0: "NULL", 1: "COMPOUND", 3: "ACCESS", 4: "CLOSE", 5: "COMMIT", 6: "CREATE", 7: "DELEGPURGE",
         8: "DELEGRETURN", 9: "GETATTR", 10: "GETFH", 11: "LINK", 12: "LOCK", 13: "LOCKT", 14: "LOCKU",
         15: "LOOKUP", 16: "LOOKUPP", 17: "NVERIFY", 18: "OPEN", 19: "OPENATTR", 20: "OPEN_CONFIRM",
         21: "OPEN_DOWNGRADE", 22: "PUTFH", 23: "PUTPUBFH", 24: "PUTROOTFH", 25: "READ", 26: "READDIR",
         27: "READLINK", 28: "REMOVE", 29: "RENAME", 30: "RENEW", 31: "RESTOREFH", 32: "SAVEFH",
         33: "SECINFO", 34: "SETATTR", 35: "SETCLIENTID", 36: "SETCLIENTID_CONFIRM", 37: "VERIFY",
         38: "WRITE", 39: "RELEASE_LOCKOWNER", 42: "EXCHANGE_ID", 43: "CREATE_SESSION",
         44: "DESTROY_SESSION", 47: "GETDEVINFO", 50: "LAYOUTGET", 51: "LAYOUTRETURN",
         52: "SECINFO_NO_NAME", 53: "SEQUENCE", 57: "DESTROY_CLIENTID", 58: "RECLAIM_COMPLETE",
         10044: "ILLEGAL"}
# name -> number per version, for nfs_procedure's names
NAMES2 = {n.lower(): i for i, n in enumerate(PROC2)}
NAMES3 = {n.lower(): i for i, n in enumerate(PROC3)}
NAMES4 = {n.lower(): i for i, n in PROC4.items()}
STATUS3 = {0: "OK", 1: "ERR_PERM", 2: "ERR_NOENT", 5: "ERR_IO", 6: "ERR_NXIO", 13: "ERR_ACCES",
           17: "ERR_EXIST", 18: "ERR_XDEV", 19: "ERR_NODEV", 20: "ERR_NOTDIR", 21: "ERR_ISDIR",
           22: "ERR_INVAL", 27: "ERR_FBIG", 28: "ERR_NOSPC", 30: "ERR_ROFS", 31: "ERR_MLINK",
           63: "ERR_NAMETOOLONG", 66: "ERR_NOTEMPTY", 69: "ERR_DQUOT", 70: "ERR_STALE", 71: "ERR_REMOTE",
           10001: "ERR_BADHANDLE", 10002: "ERR_NOT_SYNC", 10003: "ERR_BAD_COOKIE", 10004: "ERR_NOTSUPP",
           10005: "ERR_TOOSMALL", 10006: "ERR_SERVERFAULT", 10007: "ERR_BADTYPE", 10008: "ERR_JUKEBOX"}

# procedure numbers the parser acts on (v3; v2 READ is 6 as well)
READ, WRITE3, COMMIT3 = 6, 7, 21
LOOKUP3, CREATE3, MKDIR3, REMOVE3, RMDIR3, RENAME3, READDIRPLUS3 = 3, 8, 9, 12, 13, 14, 17
_FH_FIRST3 = frozenset((1, 4, 17))     # GETATTR, ACCESS, READDIRPLUS: the handle named (as Suricata)
_DIROP3 = frozenset((CREATE3, MKDIR3, REMOVE3, RMDIR3))
OP4_PUTFH, OP4_READ, OP4_WRITE, OP4_CREATE, OP4_REMOVE = 22, 25, 38, 6, 28


def proc_name(version: int, proc: int) -> str:
    if version <= 2:
        return PROC2[proc] if proc < len(PROC2) else str(proc)
    if version == 3:
        return PROC3[proc] if proc < len(PROC3) else str(proc)
    return PROC4.get(proc, str(proc))


def _is_read(version: int, proc: int) -> bool:
    return proc == (25 if version >= 4 else 6)


def _is_write(version: int, proc: int) -> bool:
    return proc == (38 if version >= 4 else 8 if version == 2 else 7)


def _is_rename(version: int, proc: int) -> bool:
    return proc == (29 if version >= 4 else 11 if version == 2 else 14)


# --- detection --------------------------------------------------------------------------------

def probe_udp(data: bytes, to_server: bool) -> bool | None:
    if rpc.looks_like_call(data, _PROGS):
        return 2 <= int.from_bytes(data[16:20], "big") <= 4 and _known_flavor(data)
    return _accepted_reply(data, 0)


def probe_tcp(data: bytes, to_server: bool) -> bool | None:
    if len(data) < 4:
        return None
    if not 24 <= int.from_bytes(data[:4], "big") & 0x7FFFFFFF <= rpc.MAX_RECORD:
        return False                            # the record marker's fragment length
    msg = data[4:]
    if len(msg) < 28:
        return None if b"\x00\x00\x00\x00\x00\x00\x00\x02".startswith(msg[4:12]) or \
            b"\x00\x00\x00\x01\x00\x00\x00".startswith(msg[4:11]) else False
    if rpc.looks_like_call(msg, _PROGS):
        return 3 <= int.from_bytes(msg[16:20], "big") <= 4 and _known_flavor(msg)
    return _accepted_reply(msg, 0)


def _known_flavor(msg: bytes) -> bool:
    return len(msg) >= 28 and int.from_bytes(msg[24:28], "big") in rpc.AUTH_TYPES


def _accepted_reply(msg: bytes, _: int) -> bool:
    if not rpc.looks_like_reply(msg) or msg[11] != 0:
        return False
    try:
        _, off = opaque(msg, 16, 400)
        return u32(msg, off) == 0
    except Truncated:
        return False


# --- transactions -----------------------------------------------------------------------------

class NfsTx(Tx):
    __slots__ = ("xid", "version", "procedure", "file_name", "file_handle", "auth_type", "machine", "uid",
                 "gid", "rpc_status", "nfs_status", "is_file_tx", "file", "file_to_server", "is_first",
                 "is_last", "chunks", "last_xid", "rename_to", "extra_procs", "closed", "state_version",
                 "has_creds")
    proto = "nfs"

    def __init__(self, tx_id: int, state_version: list[int]) -> None:
        super().__init__(tx_id)
        self.xid = 0
        self.version = 0
        self.procedure = 0
        self.file_name = b""
        self.file_handle = b""
        self.auth_type = 0
        self.machine = b""
        self.uid = self.gid = 0
        self.has_creds = False
        self.rpc_status = 0
        self.nfs_status = 0
        self.is_file_tx = False
        self.file: File | None = None
        self.file_to_server = True
        self.is_first = False
        self.is_last = False
        self.chunks = 0
        self.last_xid = 0
        self.rename_to: bytes | None = None
        self.extra_procs: list[int] = []
        self.closed = False
        self.state_version = state_version      # the flow's NFS version (Suricata logs the state's)

    def creds(self, call: rpc.Call) -> None:
        self.auth_type = call.flavor
        if call.flavor == rpc.AUTH_UNIX:
            self.machine, self.uid, self.gid = call.machine, call.uid, call.gid

    def rpc_eve(self) -> dict[str, Any]:
        out: dict[str, Any] = {"xid": self.xid,
                               "status": rpc.REPLY_STATES.get(self.rpc_status, str(self.rpc_status)),
                               "auth_type": rpc.AUTH_TYPES.get(self.auth_type, str(self.auth_type))}
        if self.auth_type == rpc.AUTH_UNIX:
            out["creds"] = {"machine_name": self.machine.decode("utf-8", "replace"), "uid": self.uid,
                            "gid": self.gid}
        return out

    def eve(self) -> dict[str, Any]:
        version = self.state_version[0]
        out: dict[str, Any] = {"version": version, "procedure": proc_name(version, self.procedure),
                               "filename": self.file_name.decode("utf-8", "replace")}
        if self.file_handle:
            out["hhash"] = f"{zlib.crc32(self.file_handle):x}"
        out["id"] = self.tx_id + 1
        out["file_tx"] = self.is_file_tx
        out["type"] = "response"
        out["status"] = STATUS3.get(self.nfs_status, str(self.nfs_status))
        kind = "read" if _is_read(version, self.procedure) else "write" if _is_write(version, self.procedure) \
            else "rename" if _is_rename(version, self.procedure) else None
        if kind == "rename":
            out["rename"] = {"from": out["filename"], "to": (self.rename_to or b"").decode("utf-8", "replace")}
        elif kind is not None:
            f: dict[str, Any] = {"first": self.is_first, "last": self.is_last}
            if self.is_file_tx:
                f["last_xid"] = self.last_xid
                f["chunks"] = self.chunks
            out[kind] = f
        return out

    def objects(self) -> dict[str, Any]:
        return {"rpc": self.rpc_eve(), "nfs": self.eve()}

    def alert_objects(self) -> dict[str, Any]:
        out = self.objects()
        if self.file is not None:
            out["files"] = files_eve([self.file], self.tx_id)
        return out

    def message_records(self, final: bool) -> list[dict[str, Any]]:
        """Logged once complete (or at the flow's end) on the packet of the moment, as
        Suricata's NFS logger (its packet's direction); v2/v3 GETATTR is never logged."""
        if self.logged or not (final or self.complete()):
            return []
        self.logged = True
        if self.state_version[0] <= 3 and self.procedure == 1:
            return []
        return [self.objects()]


NfsTx.message_objects = True        # type: ignore[attr-defined]  # records carry `rpc` and `nfs`


# --- the parser -------------------------------------------------------------------------------

class _Pending:
    """A call waiting for its reply (Suricata's NFSRequestXidMap)."""
    __slots__ = ("version", "procedure", "handle", "name", "offset", "gss")

    def __init__(self, version: int, procedure: int) -> None:
        self.version, self.procedure = version, procedure
        self.handle = b""
        self.name = b""
        self.offset = 0
        self.gss = False


class NfsParser:
    def __init__(self, settings: Any = None) -> None:
        self.off = settings is not None and not settings["parse"]
        self.txs: list[NfsTx] = []
        self.version = [0]
        self.requests: dict[int, _Pending] = {}
        self.names: dict[bytes, bytes] = {}
        self.tcp: bool | None = None
        self.streams = (rpc.Records(), rpc.Records())
        self.synced = [False, False]
        self.open_from = 0              # txs before this index are complete (_new)

    # --- bytes in ---------------------------------------------------------------------------
    def parse(self, data: bytes, to_server: bool, pkt: Any = None) -> None:
        if self.off or not data:
            return
        if self.tcp is None:
            self.tcp = pkt is not None and getattr(pkt, "proto", 17) == 6
        if not self.tcp:
            self._message(data, to_server)
            return
        d = int(to_server)
        if not self.synced[d]:
            start = 0 if probe_tcp(data, to_server) else rpc.find_record(data, _PROGS)
            if start < 0:
                return              # midstream: wait for a record start
            self.synced[d] = True
            data = data[start:]
        try:
            records = self.streams[d].feed(data)
        except Truncated:
            self.synced[d] = False
            self._event("malformed_data")
            raise ParserError("nfs: bad record marker") from None
        for rec in records:
            self._message(rec, to_server)

    def gap(self, to_server: bool, nbytes: int = 0) -> None:
        d = int(to_server)
        self.synced[d] = False
        self.streams[d].reset()

    def _message(self, msg: bytes, to_server: bool) -> None:
        try:
            m = rpc.parse(msg)
        except Truncated:
            self._event("malformed_data")
            raise ParserError("nfs: not an RPC message") from None
        try:
            if isinstance(m, rpc.Call):
                if m.prog != PROGRAM:
                    return
                self._call(m)
            else:
                self._reply(m)
        except Truncated:
            self._event("malformed_data")

    def _event(self, name: str) -> None:
        event_on_newest(self.txs, name)

    def _new(self) -> NfsTx:
        """A new transaction; past MAX_TX live ones (those from the oldest still open on:
        an upper bound, kept in O(1) a call) the oldest open one is closed with
        too_many_transactions, as Suricata's new_tx."""
        txs = self.txs
        i = self.open_from
        while i < len(txs) and txs[i].complete():
            i += 1
        self.open_from = i
        if len(txs) - i > MAX_TX:
            old = txs[i]
            old.done = [True, True]
            old.closed = True
            old.add_event("too_many_transactions")
            old.touch(True)
            old.touch(False)
        tx = NfsTx(len(txs), self.version)
        txs.append(tx)
        return tx

    def _name_of(self, handle: bytes) -> bytes:
        return self.names.get(handle, b"")

    def _remember(self, handle: bytes, name: bytes) -> None:
        if len(self.names) >= MAX_NAMES:
            self.names.pop(next(iter(self.names)))
        self.names[handle] = name

    # --- calls ------------------------------------------------------------------------------
    def _call(self, c: rpc.Call) -> None:
        if self.version[0] == 0:
            self.version[0] = c.vers
        p = _Pending(c.vers, c.proc)
        if c.vers == 3:
            self._call3(c, p)
        elif c.vers == 2:
            self._call2(c, p)
        elif c.vers == 4:
            self._call4(c, p)
        else:
            self._event("non_existing_version")
        if len(self.requests) >= MAX_REQUESTS:
            self.requests.pop(next(iter(self.requests)))
        self.requests[c.xid] = p

    def _plain_tx(self, c: rpc.Call, p: _Pending, procedure: int) -> NfsTx:
        tx = self._new()
        tx.xid = c.xid
        tx.procedure = procedure
        tx.version = c.vers
        tx.file_name = p.name
        tx.file_handle = p.handle
        tx.creds(c)
        tx.done[1] = True
        tx.touch(True)
        return tx

    def _call2(self, c: rpc.Call, p: _Pending) -> None:
        b = c.body
        if c.proc == READ:
            if len(b) < 40:
                raise Truncated("v2 read")
            p.handle = b[:32]
            p.offset = u32(b, 32)
            p.name = self._name_of(p.handle)
            return                      # the file transaction comes with the reply's data
        self._plain_tx(c, p, c.proc)

    def _call3(self, c: rpc.Call, p: _Pending) -> None:
        b, proc = c.body, c.proc
        rename_to = None
        if proc == LOOKUP3:
            _, off = opaque(b, 0, 64)
            p.name, _ = opaque(b, off, 4096)
        elif proc in _FH_FIRST3:
            p.handle, _ = opaque(b, 0, 64)
            p.name = self._name_of(p.handle)
        elif proc == READ:
            p.handle, off = opaque(b, 0, 64)
            p.offset = u64(b, off)
            p.name = self._name_of(p.handle)
            if self._file_tx(p.handle, False) is None:
                tx = self._new_file_tx(p.handle, p.name, False)
                tx.procedure, tx.xid, tx.is_first, tx.version = READ, c.xid, True, 3
                tx.creds(c)
                tx.touch(True)
            return
        elif proc == WRITE3:
            handle, off = opaque(b, 0, 64)
            offset, count, stable = u64(b, off), u32(b, off + 8), u32(b, off + 12)
            data, _ = opaque(b, off + 16)
            p.handle = handle
            self._write(c, handle, offset, count, stable == 2, data, WRITE3)
            return
        elif proc == COMMIT3:
            handle, _ = opaque(b, 0, 64)
            tx = self._file_tx(handle, True)
            if tx is not None:
                tx.chunks += 1
                if not tx.extra_procs:
                    tx.extra_procs.append(COMMIT3)
                self._close(tx, c.xid, True, both=False)
            return
        elif proc in _DIROP3:
            p.handle, off = opaque(b, 0, 64)
            p.name, _ = opaque(b, off, 4096)
        elif proc == RENAME3:
            p.handle, off = opaque(b, 0, 64)
            p.name, off = opaque(b, off, 4096)
            _, off = opaque(b, off, 64)
            rename_to, _ = opaque(b, off, 4096)
        tx = self._plain_tx(c, p, proc)
        tx.rename_to = rename_to

    def _call4(self, c: rpc.Call, p: _Pending) -> None:
        if c.proc != 1:
            return                      # NULL (a GSS context setup): no transaction
        b = c.body
        if c.flavor == rpc.AUTH_GSS and c.gss_proc == 0 and c.gss_service == 2:
            b, _ = opaque(b, 0)         # integrity: the arguments inside a length (seq num first)
            b = b[4:]
            p.gss = True
        _, off = opaque(b, 0, 1024)     # tag
        off += 4                        # minor version
        nops = u32(b, off)
        off += 4
        fh = None
        main = 0
        try:
            for _ in range(min(nops, 256)):
                op = u32(b, off)
                off += 4
                if op == OP4_PUTFH:
                    fh, off = opaque(b, off, 128)
                elif op == OP4_READ:
                    offset = u64(b, off + 16)
                    off += 28
                    if fh is not None:
                        p.offset, p.handle = offset, fh
                        p.name = self._name_of(fh)
                elif op == OP4_WRITE:
                    offset, stable = u64(b, off + 16), u32(b, off + 24)
                    data, off = opaque(b, off + 28)
                    if fh is not None:
                        self._write(c, fh, offset, len(data), stable == 2, data, OP4_WRITE)
                elif op in (5, 4):          # COMMIT, CLOSE
                    off += 12 if op == 5 else 20
                    if fh is not None:
                        tx = self._file_tx(fh, True)
                        if tx is not None:
                            self._close(tx, c.xid, True, both=False)
                elif op == 18:              # OPEN
                    p.name, off = _open4_args(b, off)
                elif op == 15:              # LOOKUP
                    p.name, off = opaque(b, off, 4096)
                elif op == OP4_CREATE:
                    ctype = u32(b, off)
                    off += 4
                    if ctype == 5:
                        _, off = opaque(b, off)
                    elif ctype in (3, 4):
                        off += 8
                    p.name, off = opaque(b, off, 4096)
                    off = _skip_fattr4(b, off)
                    if fh is not None:
                        p.handle = fh
                    main = OP4_CREATE
                elif op == OP4_REMOVE:
                    p.name, off = opaque(b, off, 4096)
                    main = OP4_REMOVE
                else:
                    off = _skip_op4_args(b, off, op)
        except Truncated:
            self._event("malformed_data")
        if main:
            self._plain_tx(c, p, main)

    # --- files ------------------------------------------------------------------------------
    def _file_tx(self, handle: bytes, to_server: bool) -> NfsTx | None:
        for tx in reversed(self.txs):
            if tx.is_file_tx and not tx.closed and tx.file_to_server == to_server and tx.file_handle == handle:
                return tx
        return None

    def _new_file_tx(self, handle: bytes, name: bytes, to_server: bool) -> NfsTx:
        tx = self._new()
        tx.is_file_tx = True
        tx.file_handle = handle
        tx.file_name = name
        tx.file_to_server = to_server
        tx.file = File(name, bytearray(), 0, False, False)
        return tx

    def _chunk(self, tx: NfsTx, offset: int, data: bytes) -> None:
        f = tx.file
        assert f is not None
        if offset > f.size:
            f.cut = True                # a hole: not the whole file
        elif offset < f.size:
            data = data[f.size - offset:]
        if data:
            f.append(data, MAX_FILE)
        tx.touch(tx.file_to_server)

    def _close(self, tx: NfsTx, xid: int, to_server: bool, both: bool = True) -> None:
        """The file's last chunk (or COMMIT/CLOSE) is in. As Suricata: a read completes
        both sides; a write its request side, and its response side too (`both`) when the
        last chunk was not also the first (a one-write file's transaction waits for the
        flow's end to be logged)."""
        tx.last_xid = xid
        tx.is_last = True
        tx.closed = True
        if tx.file is not None:
            tx.file.complete = True
        tx.done[1] = True
        if both:
            tx.done[0] = True
        tx.touch(to_server)

    def _write(self, c: rpc.Call, handle: bytes, offset: int, count: int, last: bool, data: bytes,
               procedure: int) -> None:
        if count == 0 or count > 16 << 20:
            return
        name = self._name_of(handle)
        tx = self._file_tx(handle, True)
        if tx is None:
            tx = self._new_file_tx(handle, name, True)
            tx.procedure, tx.xid, tx.is_first, tx.version = procedure, c.xid, True, c.vers
            # (a write's file transaction carries no credentials: Suricata's records say NULL)
        else:
            tx.chunks += 1
        self._chunk(tx, offset, data)
        if last:
            self._close(tx, c.xid, True, both=not tx.is_first or tx.chunks > 0)

    def _read(self, r: rpc.Reply, p: _Pending, status: int, count: int, eof: bool, data: bytes,
              size: int | None = None) -> None:
        if count == 0 or count > 16 << 20:
            return
        if size is not None and size == p.offset + len(data):
            eof = True
        tx = self._file_tx(p.handle, False)
        if tx is None:
            tx = self._new_file_tx(p.handle, p.name, False)
            tx.procedure = READ if p.version < 4 else OP4_READ
            tx.xid, tx.is_first, tx.version = r.xid, True, p.version
        else:
            tx.chunks += 1
        self._chunk(tx, p.offset, data)
        if eof:
            tx.rpc_status, tx.nfs_status = r.state, status
            self._close(tx, r.xid, False)

    # --- replies ----------------------------------------------------------------------------
    def _reply(self, r: rpc.Reply) -> None:
        p = self.requests.pop(r.xid, None)
        if p is None:
            return
        if self.version[0] == 0:
            self.version[0] = p.version
        b = r.body
        status, handle = 0, b""
        if r.state != 0 or r.accept != 0:
            pass
        elif p.version == 2:
            if p.procedure == READ:
                status = u32(b, 0)
                if status == 0:
                    data, _ = opaque(b, 72)
                    self._read(r, p, status, len(data), False, data, size=u32(b, 24))
            elif len(b) >= 4:
                status = u32(b, 0)
        elif p.version == 3:
            status, handle = self._reply3(r, p, b)
            if p.procedure == READ:
                return
        elif p.version == 4:
            done, status = self._reply4(r, p, b)
            if not done:
                return
        else:
            self._event("non_existing_version")
            return
        self._respond(r, status, handle)

    def _respond(self, r: rpc.Reply, status: int, handle: bytes) -> None:
        for tx in reversed(self.txs):
            if not tx.is_file_tx and tx.xid == r.xid:
                tx.done[0] = True
                tx.rpc_status = r.state
                tx.nfs_status = status
                if not tx.file_handle and handle:
                    tx.file_handle = handle
                tx.touch(False)
                return

    def _reply3(self, r: rpc.Reply, p: _Pending, b: bytes) -> tuple[int, bytes]:
        if len(b) < 4:
            return 0, b""
        status = u32(b, 0)
        handle = b""
        if status != 0:
            return status, handle
        proc = p.procedure
        if proc == LOOKUP3:
            handle, _ = opaque(b, 4, 64)
            self._remember(handle, p.name)
        elif proc == CREATE3:
            if u32(b, 4):
                handle, _ = opaque(b, 8, 64)
                self._remember(handle, p.name)
        elif proc == READ:
            off = _skip_post_op_attr(b, 4)
            count, eof = u32(b, off), u32(b, off + 4)
            data, _ = opaque(b, off + 8)
            self._read(r, p, status, count, bool(eof), data)
        elif proc == READDIRPLUS3:
            off = _skip_post_op_attr(b, 4) + 8          # dir attributes, cookie verifier
            for _ in range(4096):
                if not u32(b, off):
                    break
                off += 12                               # value follows, fileid
                name, off = opaque(b, off, 4096)
                off = _skip_post_op_attr(b, off + 8)    # cookie, attributes
                if u32(b, off):
                    h, off = opaque(b, off + 4, 64)
                    self._remember(h, name)
                else:
                    off += 4
        return status, handle

    def _reply4(self, r: rpc.Reply, p: _Pending, b: bytes) -> tuple[bool, int]:
        """(a CREATE or REMOVE answered: complete its transaction, its status)."""
        if p.procedure != 1:
            return False, 0
        if p.gss:
            b, _ = opaque(b, 0)
            b = b[4:]
        off = 4
        _, off = opaque(b, off, 1024)
        n = u32(b, off)
        off += 4
        main_status: int | None = None
        opened = False
        try:
            for _ in range(min(n, 256)):
                op, status = u32(b, off), u32(b, off + 4)
                off += 8
                if op in (OP4_CREATE, OP4_REMOVE):
                    main_status = status
                if status != 0 and op != 34:
                    break
                if op == OP4_READ:
                    eof = u32(b, off)
                    data, off = opaque(b, off + 4)
                    self._read(r, p, status, len(data), bool(eof), data)
                elif op == 10:                          # GETFH
                    fh, off = opaque(b, off, 128)
                    if opened:
                        self._remember(fh, p.name)
                elif op == 18:                          # OPEN
                    off = _skip_open4_res(b, off)
                    opened = True
                elif op == 24 and not p.name:          # PUTROOTFH
                    p.name = b"<mount_root>"
                else:
                    off = _skip_op4_res(b, off, op)
        except Truncated:
            self._event("malformed_data")
        return main_status is not None, main_status or 0


# --- XDR helpers for v3 and v4 ----------------------------------------------------------------

def _skip_post_op_attr(b: bytes, off: int) -> int:
    return off + 4 + (84 if u32(b, off) else 0)


def _skip_bitmap(b: bytes, off: int) -> int:
    n = u32(b, off)
    if n > 64:
        raise Truncated("bitmap")
    return off + 4 + 4 * n


def _skip_fattr4(b: bytes, off: int) -> int:
    _, off = opaque(b, _skip_bitmap(b, off))
    return off


def _open4_args(b: bytes, off: int) -> tuple[bytes, int]:
    """OPEN4args: (the name it claims, or b"", offset after)."""
    off += 12                                   # seqid, share access, share deny
    off += 8                                    # owner: client id
    _, off = opaque(b, off, 1024)               # owner
    if u32(b, off):                             # OPEN4_CREATE
        mode = u32(b, off + 4)
        off += 8
        if mode in (0, 1):
            off = _skip_fattr4(b, off)
        elif mode == 2:
            off += 8
        else:
            off = _skip_fattr4(b, off + 8)
    else:
        off += 4
    claim = u32(b, off)
    off += 4
    name = b""
    if claim in (0, 3):
        name, off = opaque(b, off, 4096)
    elif claim == 1:
        off += 4
    elif claim == 2:
        name, off = opaque(b, off + 16, 4096)
    elif claim == 5:
        off += 16
    return name, off


# fixed-size v4 arguments by operation (bytes after the opcode)
_ARGS4_FIXED = {3: 4, 7: 8, 8: 16, 10: 0, 13: 0, 16: 0, 20: 20, 21: 24, 23: 0, 24: 0, 27: 0, 30: 8,
                31: 0, 32: 0, 36: 16, 44: 16, 52: 4, 53: 32, 57: 8, 58: 4, 9: -1}


def _skip_op4_args(b: bytes, off: int, op: int) -> int:
    if op == 9:                                 # GETATTR: a bitmap
        return _skip_bitmap(b, off)
    if op == 34:                                # SETATTR: stateid, fattr4
        return _skip_fattr4(b, off + 16)
    if op in (11, 33):                          # LINK, SECINFO: a name
        return opaque(b, off, 4096)[1]
    if op == 29:                                # RENAME: two names
        return opaque(b, opaque(b, off, 4096)[1], 4096)[1]
    if op == 26:                                # READDIR
        return _skip_bitmap(b, off + 24)
    if op == 35:                                # SETCLIENTID
        _, off = opaque(b, off + 8, 1024)
        _, off = opaque(b, off + 4, 1024)
        _, off = opaque(b, off, 1024)
        return off + 4
    if op == 39:                                # RELEASE_LOCKOWNER
        return opaque(b, off + 8, 1024)[1]
    if op in (17, 37):                          # NVERIFY, VERIFY
        return _skip_fattr4(b, off)
    size = _ARGS4_FIXED.get(op)
    if size is None or size < 0:
        raise Truncated(f"v4 operation {op}")
    return off + size


_RES4_FIXED = {3: 8, 4: 16, 5: 8, 7: 0, 8: 0, 11: 20, 15: 0, 16: 0, 17: 0, 20: 16, 21: 16, 22: 0, 23: 0,
               24: 0, 28: 20, 29: 40, 30: 0, 31: 0, 32: 0, 36: 0, 37: 0, 38: 16, 39: 0, 44: 0, 53: 36,
               57: 0, 58: 0}


def _skip_op4_res(b: bytes, off: int, op: int) -> int:
    if op == 9:                                 # GETATTR
        return _skip_fattr4(b, off)
    if op == 6:                                 # CREATE: change info, attrset
        return _skip_bitmap(b, off + 20)
    if op == 34:                                # SETATTR: attrsset
        return _skip_bitmap(b, off)
    if op == 27:                                # READLINK
        return opaque(b, off)[1]
    if op == 35:                                # SETCLIENTID (OK)
        return off + 16
    if op == 26:                                # READDIR
        off += 8
        for _ in range(65536):
            if not u32(b, off):
                return off + 8
            _, off = opaque(b, off + 12, 4096)
            off = _skip_fattr4(b, off)
        raise Truncated("readdir")
    if op in (33, 52):                          # SECINFO(_NO_NAME)
        n = u32(b, off)
        off += 4
        for _ in range(min(n, 64)):
            flavor = u32(b, off)
            off += 4
            if flavor == rpc.AUTH_GSS:
                _, off = opaque(b, off, 128)
                off += 8
        return off
    size = _RES4_FIXED.get(op)
    if size is None:
        raise Truncated(f"v4 result {op}")
    return off + size


def _skip_open4_res(b: bytes, off: int) -> int:
    off += 16 + 20 + 4                          # stateid, change info, rflags
    off = _skip_bitmap(b, off)
    kind = u32(b, off)
    off += 4
    if kind in (1, 2):
        off += 16 + 4                           # stateid, recall
        if kind == 2:
            off += 12                           # space limit
        off += 12                               # ace type, flag, mask
        _, off = opaque(b, off, 1024)
    elif kind == 3:
        why = u32(b, off)
        off += 4 + (4 if why in (1, 2) else 0)
    return off


# --- files, buffers, registration -------------------------------------------------------------

def _files(tx: Any, to_server: bool) -> list[File]:
    f = tx.file
    if f is None or tx.file_to_server != to_server:
        return []
    return [f]


FILES["nfs"] = _files
register_buffer("file.data@nfs", "nfs", BOTH, lambda tx, ts: bytes(tx.file.data) if (
    tx.file is not None and ts == tx.file_to_server and tx.file.data) else None)
register_buffer("file.name@nfs", "nfs", BOTH, lambda tx, ts: [tx.file.name] if (
    tx.file is not None and ts == tx.file_to_server and tx.file.name) else None, multi=True)
register_states("nfs", ("request_started", "request_complete"), ("response_started", "response_complete"),
                lambda tx, ts: int(tx.done[int(ts)]))
register_protocol(Protocol("nfs", (17, 6), probe_udp, NfsParser, (2049,), tcp_probe=probe_tcp,
                           ports_only=True, port_decides=(),
                           configure=lambda config: enabled.settings(config, "nfs")))
