"""SMB and DCERPC: protocol detection only, as Suricata detects them, so a flow's
`app_proto` says smb or dcerpc and rules naming them in the header (`alert smb ...`
with payload contents: ET Open's 36 SMB rules, its DCERPC one) apply to those flows.

Neither protocol's transactions are parsed: the `smb.*` and `dce_*` keywords, SMB
files and the EVE `smb`/`dcerpc` records stay unsupported (rules using them are
reported and skipped).

- SMB (rust/src/smb/): a NetBIOS session service header (RFC 1002: type, 24-bit
  length) whose message starts with the SMB1 (``\\xffSMB``), SMB2 (``\\xfeSMB``) or
  SMB3 transform (``\\xfdSMB``) magic; a first small NetBIOS message (a session
  request) may come before it. At least 36 bytes (NBSS and SMB headers) decide.
- DCERPC (rust/src/dcerpc/): a connection-oriented header, version 5.0, with a
  valid data representation (16 bytes decide).
"""

from __future__ import annotations

from typing import Any

from netsentry.applayer import dcerpc as dce
from netsentry.applayer.files import FILES, File, files_eve
from netsentry.applayer.frames import frames_for, register_stream_frames
from netsentry.applayer.registry import (BOTH, NO_RAW_TRIGGER, TO_SERVER, Protocol, register_buffer,
                                         register_protocol)
from netsentry.applayer.tx import Tx

_MIN_SMB = 36                    # NBSS header (4) + SMB header (32): Suricata's MIN_REC_SIZE
_NBSS_TYPES = frozenset({0x00, 0x81, 0x82, 0x83, 0x84, 0x85})
_SMB_MAGIC = frozenset({b"\xffSMB", b"\xfeSMB", b"\xfdSMB"})
_DCERPC_HEADER = 16


def _is_smb_record(data: bytes) -> bool:
    """A NetBIOS message of a known type carrying the SMB magic."""
    return len(data) >= 8 and data[0] in _NBSS_TYPES and data[4:8] in _SMB_MAGIC


def probe_smb(data: bytes, to_server: bool) -> bool | None:
    """Suricata's two ways in: the SMB magic at offset 4 (its pattern, on any port), then
    36 bytes to confirm; or a first small NetBIOS message (a session request) followed by
    an SMB one (its probing parser)."""
    n = len(data)
    if not n or data[0] not in _NBSS_TYPES:
        return False
    if n < 8:
        return None if data[0] != 0x00 or _magic_prefix(data[4:]) else False
    if data[4:8] in _SMB_MAGIC:
        return True if n >= _MIN_SMB else None
    if data[0] == 0x00:
        return False
    length = int.from_bytes(data[1:4], "big")
    if n - 4 >= length + 8:
        return _is_smb_record(data[4 + length:])
    return None if length < 256 else False


def _magic_prefix(b: bytes) -> bool:
    return any(m.startswith(b) for m in _SMB_MAGIC)


# --- transactions --------------------------------------------------------------------------------

class SmbIface:
    """An interface of the latest DCERPC bind over a pipe (Suricata keeps one list per
    flow, replaced by each bind; the bind ack's results apply by position)."""

    __slots__ = ("uuid", "version", "version_minor", "ctxid", "acked", "result")

    def __init__(self, uuid: bytes, version: int, version_minor: int, ctxid: int) -> None:
        self.uuid = uuid
        self.version = version
        self.version_minor = version_minor
        self.ctxid = ctxid
        self.acked = False
        self.result = 0


class SmbDce:
    """A DCERPC call over a named pipe: what the DCERPC keywords read (the same names as
    applayer/dcerpc.py DceCall) and the `dcerpc` object of the SMB record."""

    __slots__ = ("req_cmd", "req_set", "resp_cmd", "resp_set", "call_id", "opnum", "ctxid", "little",
                 "stub_ts", "stub_tc", "frag_cnt_ts", "frag_cnt_tc", "state")

    def __init__(self, state: SmbState, call_id: int, little: bool) -> None:
        self.req_cmd = 0
        self.req_set = False
        self.resp_cmd = 0
        self.resp_set = False
        self.call_id = call_id
        self.opnum = 0
        self.ctxid = 0
        self.little = little
        self.stub_ts = bytearray()
        self.stub_tc = bytearray()
        self.frag_cnt_ts = 0
        self.frag_cnt_tc = 0
        self.state = state

    @property
    def first_request_seen(self) -> bool:
        return self.req_set and self.req_cmd == dce.REQUEST

    def iface_match(self, uuid: bytes, version_pred: Any, any_frag: bool) -> bool:
        """Suricata's smb_tx_match_dce_iface: a request, and an accepted interface of the
        flow's latest bind with that UUID (the context id is not compared)."""
        if not self.first_request_seen:
            return False
        for i in self.state.ifaces or ():
            if i.acked and i.result == 0 and i.uuid == uuid:
                if version_pred is None or version_pred(i.version):
                    return True
        return False

    def eve(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.req_set:
            out["request"] = dce.type_name(self.req_cmd)
            if self.req_cmd == dce.REQUEST:
                out["req"] = {"frag_cnt": self.frag_cnt_ts, "stub_data_size": len(self.stub_ts)}
                out["opnum"] = self.opnum
                ifs = [i for i in self.state.ifaces or () if i.ctxid == self.ctxid]
                if ifs:
                    out["interfaces"] = [_iface_eve(i, self.opnum) for i in ifs]
            elif self.req_cmd == dce.BIND and self.state.ifaces:
                out["interfaces"] = [_iface_eve(i, None) for i in self.state.ifaces]
        else:
            out["request"] = "REQUEST_LOST"
        if self.resp_set:
            out["response"] = dce.type_name(self.resp_cmd)
            if self.resp_cmd == dce.RESPONSE:
                out["res"] = {"frag_cnt": self.frag_cnt_tc, "stub_data_size": len(self.stub_tc)}
        else:
            out["response"] = "UNREPLIED"
        out["call_id"] = self.call_id
        return out


def _iface_eve(i: SmbIface, opnum: int | None) -> dict[str, Any]:
    text = dce.uuid_text(i.uuid)
    out: dict[str, Any] = {"uuid": text, "version": f"{i.version}.{i.version_minor}"}
    if i.acked:
        out["ack_result"] = i.result
    named = dce.interface_names().get(text)
    if named is not None:
        out["service"] = named[0]
        if opnum is not None and opnum in named[1]:
            out["procedure"] = named[1][opnum]
    return out


class SmbTx(Tx):
    """One SMB command and its response, or a file (all writes or reads of one file id), or
    a DCERPC call over a named pipe (Suricata's SMBTransaction and its type data)."""

    __slots__ = ("version", "command", "kind", "key", "share", "is_pipe", "user", "domain", "host",
                 "filename", "dce", "file", "file_to_server", "fid", "status", "dialects", "dialect")
    proto = "smb"

    def __init__(self, tx_id: int, version: int, command: int, kind: str, key: Any) -> None:
        super().__init__(tx_id)
        self.version = version
        self.command = command
        self.kind = kind
        self.key = key
        self.share: bytes | None = None
        self.is_pipe = False
        self.user: bytes | None = None
        self.domain: bytes | None = None
        self.host: bytes | None = None
        self.filename: bytes | None = None
        self.dce: SmbDce | None = None
        self.file: File | None = None
        self.file_to_server = True
        self.fid: bytes | None = None
        self.status: int | None = None
        self.dialects: list[str] | None = None
        self.dialect: str | None = None

    def eve(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.tx_id + 1}
        if self.dialect is not None:
            out["dialect"] = self.dialect
        if self.version == 1:
            out["command"] = SMB1_NAMES.get(self.command, f"SMB1_COMMAND_UNKNOWN_{self.command:02X}")
        else:
            out["command"] = SMB2_NAMES.get(self.command, f"SMB2_COMMAND_UNKNOWN_{self.command:04X}")
        if self.status is not None:
            name = NTSTATUS.get(self.status)
            if name is not None:
                out["status"] = name
            out["status_code"] = f"0x{self.status:x}"
        if self.kind == "session_setup" and (self.user is not None or self.domain is not None):
            ntlm: dict[str, Any] = {}
            if self.domain is not None:
                ntlm["domain"] = _text(self.domain)
            if self.user is not None:
                ntlm["user"] = _text(self.user)
            if self.host is not None:
                ntlm["host"] = _text(self.host)
            out["ntlmssp"] = ntlm
        if self.kind == "tree_connect" and self.share is not None:
            out["share"] = _text(self.share)
            out["share_type"] = "PIPE" if self.is_pipe else "FILE"
        if self.kind in ("create", "file") and self.filename is not None:
            out["filename"] = _text(self.filename)
        if self.kind == "negotiate" and self.dialects is not None:
            out["client_dialects"] = self.dialects
        if self.dce is not None:
            out["dcerpc"] = self.dce.eve()
        return out

    def alert_objects(self) -> dict[str, Any]:
        out: dict[str, Any] = {"smb": self.eve()}
        if self.file is not None:
            out["files"] = files_eve([self.file], self.tx_id)
        return out


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def _utf16(b: bytes) -> bytes:
    """A UTF-16LE name as UTF-8 bytes (up to a NUL)."""
    if len(b) % 2:
        b = b[:-1]
    s = b.decode("utf-16-le", "replace")
    return s.split("\x00", 1)[0].encode("utf-8")


SMB1_NAMES = {0x04: "SMB1_COMMAND_CLOSE", 0x25: "SMB1_COMMAND_TRANS", 0x2e: "SMB1_COMMAND_READ_ANDX",
              0x2f: "SMB1_COMMAND_WRITE_ANDX", 0x32: "SMB1_COMMAND_TRANS2", 0x72: "SMB1_COMMAND_NEGOTIATE_PROTOCOL",
              0x73: "SMB1_COMMAND_SESSION_SETUP_ANDX", 0x74: "SMB1_COMMAND_LOGOFF_ANDX",
              0x75: "SMB1_COMMAND_TREE_CONNECT_ANDX", 0x71: "SMB1_COMMAND_TREE_DISCONNECT",
              0xa2: "SMB1_COMMAND_NT_CREATE_ANDX", 0xa0: "SMB1_COMMAND_NT_TRANS"}
SMB2_NAMES = {0: "SMB2_COMMAND_NEGOTIATE_PROTOCOL", 1: "SMB2_COMMAND_SESSION_SETUP", 2: "SMB2_COMMAND_SESSION_LOGOFF",
              3: "SMB2_COMMAND_TREE_CONNECT", 4: "SMB2_COMMAND_TREE_DISCONNECT", 5: "SMB2_COMMAND_CREATE",
              6: "SMB2_COMMAND_CLOSE", 7: "SMB2_COMMAND_FLUSH", 8: "SMB2_COMMAND_READ", 9: "SMB2_COMMAND_WRITE",
              10: "SMB2_COMMAND_LOCK", 11: "SMB2_COMMAND_IOCTL", 12: "SMB2_COMMAND_CANCEL",
              13: "SMB2_COMMAND_KEEPALIVE", 14: "SMB2_COMMAND_FIND", 15: "SMB2_COMMAND_CHANGE_NOTIFY",
              16: "SMB2_COMMAND_GET_INFO", 17: "SMB2_COMMAND_SET_INFO", 18: "SMB2_COMMAND_OPLOCK_BREAK"}
NTSTATUS = {0: "STATUS_SUCCESS", 0x80000005: "STATUS_BUFFER_OVERFLOW", 0xC0000016: "STATUS_MORE_PROCESSING_REQUIRED",
            0xC0000022: "STATUS_ACCESS_DENIED", 0xC0000034: "STATUS_OBJECT_NAME_NOT_FOUND",
            0xC0000011: "STATUS_END_OF_FILE", 0xC00000BB: "STATUS_NOT_SUPPORTED"}
_DIALECTS = {0x0202: "2.02", 0x0210: "2.10", 0x0222: "2.22", 0x0224: "2.24", 0x02ff: "2.??", 0x0300: "3.00",
             0x0302: "3.02", 0x0310: "3.10", 0x0311: "3.11"}

_ST_SUCCESS, _ST_OVERFLOW = 0, 0x80000005
# SMB1 commands with an AndX block (the next command of the chain and its offset)
_ANDX = frozenset({0x24, 0x2d, 0x2e, 0x2f, 0x73, 0x74, 0x75, 0xa2})
_FSCTL_PIPE_TRANSCEIVE = 0x0011C017
MAX_RECORD = 16 << 20           # an NBSS message kept whole up to this size
MAX_FILE = 1 << 20              # file data kept per file (file.data), the rest counted
MAX_TX = 4096
# app-layer-event:smb.* raised here, seen by rules of either side
EVENTS: dict[str, int | None] = {"file_overlap": BOTH}


class SmbState:
    """The flow's SMB state: trees, open files and pipes, pending commands, DCERPC binds."""

    def __init__(self) -> None:
        self.ifaces: list[SmbIface] | None = None
        self.trees: dict[Any, tuple[bytes, bool]] = {}          # (session, tree) -> (share, is_pipe)
        self.fid_names: dict[bytes, bytes] = {}                 # file id -> name
        self.fid_pipe: dict[bytes, bool] = {}
        self.reads: dict[Any, tuple[bytes, int]] = {}            # SMB2 read request -> (file id, offset)
        self.pending_names: dict[Any, bytes] = {}               # create request -> its name


class SmbParser:
    """One SMB connection: NetBIOS session messages of each direction, each an SMB1 or
    SMB2/3 message (SMB2 compounds followed), into transactions."""

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        self.txs: list[SmbTx] = []
        self.next_id = 0
        self.state = SmbState()
        self.buf = [b"", b""]
        self.gapped = [False, False]
        self.skip = [0, 0]
        self.stream_frames = frames_for("smb")   # applayer/frames.py: None unless a rule reads SMB frames
        self.framed = [-1, -1]            # stream offset of the last record given its frames

    # --- framing --------------------------------------------------------------------------
    def gap(self, to_server: bool, nbytes: int) -> None:
        d = 1 if to_server else 0
        if self.stream_frames is not None:
            self.stream_frames.gap(to_server, nbytes)
        self.buf[d] = b""
        self.skip[d] = 0
        self.gapped[d] = True

    def parse(self, data: bytes, to_server: bool, pkt: Any = None) -> None:
        d = 1 if to_server else 0
        if not data:
            return
        if self.stream_frames is not None:
            self.stream_frames.stream(to_server, data)
        if self.skip[d]:
            if self.skip[d] >= len(data):
                self.skip[d] -= len(data)
                return
            data = data[self.skip[d]:]
            self.skip[d] = 0
        buf = self.buf[d] + data if self.buf[d] else data
        if self.gapped[d] or not self.txs and not self.buf[d] and not _is_record_start(buf):
            i = _find_record(buf)
            if i < 0:
                self.buf[d] = buf[-7:]
                return
            buf = buf[i:]
            self.gapped[d] = False
        off, n = 0, len(buf)
        while n - off >= 4:
            ntype = buf[off]
            length = int.from_bytes(buf[off + 1:off + 4], "big")
            if ntype not in _NBSS_TYPES:
                # lost framing: look for the next record
                i = _find_record(buf[off + 1:])
                if i < 0:
                    off = n
                    break
                off += 1 + i
                continue
            if length > MAX_RECORD:
                # too big to keep: pass over it
                if n - off - 4 >= length:
                    off += 4 + length
                    continue
                self.skip[d] = length - (n - off - 4)
                off = n
                break
            if self.stream_frames is not None and (n - off - 4 >= length or n - off >= 4 + 64):
                self._frames(to_server, buf, off, length)
            if n - off - 4 < length:
                break
            msg = buf[off + 4:off + 4 + length]
            off += 4 + length
            if ntype == 0x00 and len(msg) >= 4:
                try:
                    self._message(msg, to_server)
                except (IndexError, ValueError):
                    pass                # a malformed message: Suricata's malformed_data event
        self.buf[d] = buf[off:]

    def _frames(self, to_server: bool, buf: bytes, off: int, length: int) -> None:
        """Suricata's SMB frames of the NBSS record at `off` (`length` its data's), once: the
        record's `nbss.pdu`/`hdr`/`data`, then each SMB message's `smbN.pdu`/`hdr`/`data`
        (an SMB2 compound's each). A record still short of bytes is framed from its first
        SMB header on (Suricata frames a partial READ/WRITE so): its frames take the rest of
        the stream as it comes (Frames.stream), a gap included."""
        fr = self.stream_frames
        d = 1 if to_server else 0
        at = fr.total[d] - len(buf) + off
        if at <= self.framed[d]:
            return
        self.framed[d] = at
        rec = buf[off:off + 4 + length]
        fr.add(to_server, "nbss.pdu", at, rec, 4 + length)
        fr.add(to_server, "nbss.hdr", at, rec[:4], 4)
        fr.add(to_server, "nbss.data", at + 4, rec[4:], length)
        msg = rec[4:]
        magic = msg[:4]
        if magic == b"\xffSMB":
            hdr_len, name = 32, "smb1"
        elif magic == b"\xfeSMB":
            hdr_len, name = 64, "smb2"
        elif magic == b"\xfdSMB":
            hdr_len, name = 52, "smb3"
        else:
            return
        pos = 0
        while True:
            nxt = int.from_bytes(msg[pos + 20:pos + 24], "little") if name == "smb2" and len(msg) >= pos + 24 else 0
            size = nxt if nxt >= 64 and pos + nxt < length else length - pos
            part = msg[pos:pos + size]
            start = at + 4 + pos
            fr.add(to_server, name + ".pdu", start, part, size)
            fr.add(to_server, name + ".hdr", start, part[:hdr_len], hdr_len)
            if size > hdr_len:
                fr.add(to_server, name + ".data", start + hdr_len, part[hdr_len:], size - hdr_len)
            if size == length - pos:
                return
            pos += size

    def _message(self, msg: bytes, to_server: bool) -> None:
        magic = msg[:4]
        if magic == b"\xfeSMB":
            off = 0
            while True:
                hdr = msg[off:]
                if len(hdr) < 64:
                    return
                nxt = int.from_bytes(hdr[20:24], "little")
                rec = hdr[:nxt] if nxt else hdr
                self._smb2(rec, to_server)
                if not nxt or nxt < 64:
                    return
                off += nxt
        elif magic == b"\xffSMB":
            if len(msg) >= 33:
                self._smb1(msg, to_server)

    # --- transactions -----------------------------------------------------------------------
    def _new(self, version: int, command: int, kind: str, key: Any) -> SmbTx:
        tx = SmbTx(self.next_id, version, command, kind, key)
        self.next_id += 1
        self.txs.append(tx)
        return tx

    def _create_answered(self, tx: SmbTx, status: int, fid: bytes | None, tree_key: tuple[int, int]) -> None:
        """A create's answer (SMB1 and SMB2 alike): a new file id names the file, and the
        pipe when the tree is a named pipe's; the transaction is complete."""
        if fid is not None:
            st = self.state
            st.fid_names[fid] = tx.filename or b""
            tree_ = st.trees.get(tree_key)
            if tree_ is not None:
                st.fid_pipe[fid] = tree_[1]
        tx.done[1] = tx.done[0] = True
        tx.status = status
        self._touch(tx)

    def _find(self, kind: str, key: Any, open_side: int | None = None) -> SmbTx | None:
        for tx in reversed(self.txs):
            if tx.kind == kind and tx.key == key and (open_side is None or not tx.done[open_side]):
                return tx
        return None

    @staticmethod
    def _touch(tx: SmbTx) -> None:
        tx.touch(True)
        tx.touch(False)

    def _generic(self, version: int, command: int, key: Any, to_server: bool, status: int | None = None) -> SmbTx:
        """Suricata's generic transaction of a command: made by the request, completed by
        its response (made by the response when the request was not seen)."""
        tx = None if to_server else self._find("generic", (version, command, key), 0)
        if tx is None:
            tx = self._new(version, command, "generic", (version, command, key))
        if to_server:
            tx.done[1] = True
        else:
            tx.done[1] = tx.done[0] = True
            tx.status = status
        self._touch(tx)
        return tx

    def _request_response(self, kind: str, version: int, command: int, key: Any, to_server: bool,
                          status: int | None) -> SmbTx:
        if to_server:
            tx = self._new(version, command, kind, key)
            tx.done[1] = True
        else:
            tx = self._find(kind, key, 0)
            if tx is None:
                tx = self._new(version, command, kind, key)
            tx.done[1] = tx.done[0] = True
            tx.status = status
        self._touch(tx)
        return tx

    # --- SMB2 -------------------------------------------------------------------------------
    def _smb2(self, h: bytes, to_server: bool) -> None:
        status = int.from_bytes(h[8:12], "little")
        cmd = int.from_bytes(h[12:14], "little")
        flags = int.from_bytes(h[16:20], "little")
        msg_id = int.from_bytes(h[24:32], "little")
        is_async = bool(flags & 0x2)
        tree = 0 if is_async else int.from_bytes(h[36:40], "little")
        ssn = int.from_bytes(h[40:48], "little")
        response = bool(flags & 0x1)
        body = h[64:]
        if response == to_server:
            return                      # a response sent by the client: not this parser's view
        key = (ssn, msg_id)
        st = self.state
        if cmd == 0:                                    # NEGOTIATE
            tx = self._find("negotiate", 2)
            if to_server:
                if tx is None:
                    tx = self._new(2, cmd, "negotiate", 2)
                    n = int.from_bytes(body[2:4], "little")
                    tx.dialects = [_DIALECTS.get(int.from_bytes(body[36 + 2 * i:38 + 2 * i], "little"), "unknown")
                                   for i in range(n) if 38 + 2 * i <= len(body)]
                    tx.done[1] = True
            else:
                # Suricata: the SMB2 negotiation's, else the SMB1 one's (a client that
                # offered SMB2 dialects in SMB1); a response to neither makes no transaction
                tx = self._find("negotiate", 2) or self._find("negotiate", 1)
                if tx is None:
                    return
                if len(body) >= 6:
                    tx.dialect = _DIALECTS.get(int.from_bytes(body[4:6], "little"), "unknown")
                tx.done[1] = tx.done[0] = True
                tx.status = status
            self._touch(tx)
        elif cmd == 1:                                  # SESSION_SETUP
            tx = self._request_response("session_setup", 2, cmd, msg_id, to_server, status)
            if to_server and len(body) >= 16:
                o = int.from_bytes(body[12:14], "little") - 64
                ln = int.from_bytes(body[14:16], "little")
                _ntlmssp(tx, body[o:o + ln] if o >= 0 else b"")
        elif cmd == 3:                                  # TREE_CONNECT
            if to_server:
                # as Suricata: every non-NUL byte from the path length's on (the length's
                # low byte, then the path), less the first
                name = bytes(c for c in body[6:] if c)
                if len(name) > 1:
                    name = name[1:]
                tx = self._request_response("tree_connect", 2, cmd, key, True, None)
                tx.share = name
            else:
                tx = self._find("tree_connect", key, 0)
                if tx is None:
                    tx = self._new(2, cmd, "tree_connect", key)
                if status == _ST_SUCCESS and len(body) >= 3:
                    tx.is_pipe = body[2] == 2
                    st.trees[(ssn, tree)] = (tx.share or b"", tx.is_pipe)
                tx.done[1] = tx.done[0] = True
                tx.status = status
                self._touch(tx)
        elif cmd == 4:                                  # TREE_DISCONNECT
            st.trees.pop((ssn, tree), None)
        elif cmd == 5:                                  # CREATE
            if to_server:
                if len(body) < 48:
                    return
                o = int.from_bytes(body[44:46], "little") - 64
                ln = int.from_bytes(body[46:48], "little")
                name = _utf16(body[o:o + ln]) if o >= 0 else b""
                tx = self._request_response("create", 2, cmd, key, True, None)
                tx.filename = name
            else:
                tx = self._find("create", key, 0)
                if tx is None:
                    tx = self._new(2, cmd, "create", key)
                fid = bytes(body[64:80]) if status == _ST_SUCCESS and len(body) >= 80 else None
                self._create_answered(tx, status, fid, (ssn, tree))
        elif cmd == 6:                                  # CLOSE
            if to_server and len(body) >= 24:
                fid = bytes(body[8:24])
                for ftx in self.txs:
                    if ftx.kind == "file" and ftx.fid == fid and not ftx.complete():
                        ftx.file.complete = True            # type: ignore[union-attr]
                        ftx.done[0] = ftx.done[1] = True
                        self._touch(ftx)
        elif cmd == 9:                                  # WRITE
            if to_server:
                self._generic(2, cmd, key, True)
                if len(body) < 32:
                    return
                o = int.from_bytes(body[2:4], "little") - 64
                ln = int.from_bytes(body[4:8], "little")
                offset = int.from_bytes(body[8:16], "little")
                fid = bytes(body[16:32])
                data = body[o:o + ln] if o >= 0 else b""
                if self._is_pipe(fid, ssn, tree, data):
                    self._dce_write(data, (ssn, 0), 2, cmd)
                else:
                    self._file_data(fid, data, offset, True, 2)
            else:
                self._generic(2, cmd, key, False, status)
        elif cmd == 8:                                  # READ
            if to_server:
                self._generic(2, cmd, key, True)
                if len(body) >= 32:
                    st.reads[key] = (bytes(body[16:32]), int.from_bytes(body[8:16], "little"))
            else:
                self._generic(2, cmd, key, False, status)
                fid, offset = st.reads.pop(key, (b"", 0))
                if status not in (_ST_SUCCESS, _ST_OVERFLOW) or len(body) < 8:
                    return
                o = body[2] - 64
                ln = int.from_bytes(body[4:8], "little")
                data = body[o:o + ln] if o >= 0 else b""
                if self._is_pipe(fid, ssn, tree, data):
                    self._dce_read(data, (ssn, 0), 2, cmd)
                elif fid:
                    self._file_data(fid, data, offset, False, 2)
        elif cmd == 11:                                 # IOCTL
            if len(body) < 40:
                return
            ctl = int.from_bytes(body[4:8], "little")
            fid = bytes(body[8:24])
            if ctl != _FSCTL_PIPE_TRANSCEIVE:
                self._generic(2, cmd, key, to_server, status)
                return
            if to_server:
                o = int.from_bytes(body[24:28], "little") - 64
                ln = int.from_bytes(body[28:32], "little")
                self._dce_write(body[o:o + ln] if o >= 0 else b"", (ssn, msg_id), 2, cmd)
            else:
                o = int.from_bytes(body[32:36], "little") - 64
                ln = int.from_bytes(body[36:40], "little")
                if status in (_ST_SUCCESS, _ST_OVERFLOW):
                    self._dce_read(body[o:o + ln] if o >= 0 else b"", (ssn, msg_id), 2, cmd)
        elif cmd in (16, 17):                           # GET_INFO, SET_INFO
            self._generic(2, cmd, key, to_server, status)

    def _is_pipe(self, fid: bytes, ssn: int, tree: int, data: bytes) -> bool:
        """Is this file id a named pipe: its tree's type, else what its open said, else (the
        tree connect was not seen: midstream) whether the data is a DCERPC record, which
        then marks the tree a pipe (Suricata's "suricata::dcerpc" tree)."""
        st = self.state
        t = st.trees.get((ssn, tree))
        if t is not None and (t[1] or t[0]):
            return t[1]
        pipe = st.fid_pipe.get(fid)
        if pipe is not None:
            return pipe
        if _dcerpc_probe(data):
            st.trees[(ssn, tree)] = (b"suricata::dcerpc", True)
            return True
        return False

    # --- files ------------------------------------------------------------------------------
    def _file_data(self, fid: bytes, data: bytes, offset: int, to_server: bool, version: int) -> None:
        tx = None
        for t in reversed(self.txs):
            if t.kind == "file" and t.fid == fid and t.file_to_server == to_server and not t.complete():
                tx = t
                break
        if tx is None:
            tx = self._new(version, 9 if version == 2 else 0x2f, "file", fid)
            tx.fid = fid
            tx.file_to_server = to_server
            tx.filename = self.state.fid_names.get(fid, b"")
            tx.file = File(tx.filename, bytearray(), 0, False, False)
            fresh = True
        else:
            fresh = False
        f = tx.file
        assert f is not None
        overlap = not fresh and offset < f.size
        if overlap:
            data = data[f.size - offset:]         # what is already there stays (Suricata's tracker)
        elif offset > f.size:
            f.cut = True                # a hole: not the whole file
        if data:
            f.append(data, MAX_FILE)
        self._touch(tx)
        if overlap:
            self._event("file_overlap")

    def _event(self, name: str) -> None:
        """A flow-level event goes on the newest transaction (Suricata's SMBState.set_event)."""
        if self.txs:
            tx = self.txs[-1]
            tx.add_event(name)
            self._touch(tx)

    # --- DCERPC over a pipe -----------------------------------------------------------------
    def _dce_tx(self, key: Any, call_id: int) -> SmbTx | None:
        for tx in reversed(self.txs):
            if tx.kind == "dcerpc" and tx.key == key and tx.dce is not None and tx.dce.call_id == call_id:
                return tx
        return None

    def _dce_write(self, data: bytes, key: Any, version: int, command: int) -> None:
        if len(data) < 16 or data[0] != 5:
            return
        hdr = dce.Header(data[:16])
        first = bool(hdr.flags & dce.PFC_FIRST_FRAG)
        last = bool(hdr.flags & dce.PFC_LAST_FRAG)
        order = "little" if hdr.little else "big"
        st = self.state
        if hdr.ptype == dce.REQUEST and not first:
            tx = self._dce_tx(key, hdr.call_id)
            if tx is None or tx.dce is None or len(data) < 24:
                return
            tx.dce.frag_cnt_ts += 1
            _append(tx.dce.stub_ts, data[24:max(hdr.frag_len, 24)])
            if last:
                tx.done[1] = True
            self._touch(tx)
            return
        tx = self._new(version, command, "dcerpc", key)
        c = tx.dce = SmbDce(st, hdr.call_id, hdr.little)
        c.req_cmd = hdr.ptype
        c.req_set = True
        if hdr.ptype == dce.REQUEST:
            if len(data) >= 24 and hdr.frag_len >= 24:
                c.ctxid = int.from_bytes(data[20:22], order)
                c.opnum = int.from_bytes(data[22:24], order)
                c.frag_cnt_ts += 1
                _append(c.stub_ts, data[24:hdr.frag_len])
                tx.done[1] = last
            else:
                tx.done[1] = True
        elif hdr.ptype == dce.BIND:
            body = data[16:]
            if len(body) >= 12:
                n = body[8]
                ifaces = []
                off = 12
                for _ in range(n):
                    item = body[off:off + 44]
                    if len(item) < 44:
                        break
                    off += 44
                    ifaces.append(SmbIface(dce.wire_uuid(item[4:20], hdr.little), int.from_bytes(item[20:22], order),
                                           int.from_bytes(item[22:24], order), int.from_bytes(item[0:2], order)))
                if ifaces:
                    st.ifaces = ifaces
            tx.done[1] = True
        else:
            tx.done[1] = True
        self._touch(tx)

    def _dce_read(self, data: bytes, key: Any, version: int, command: int) -> None:
        if len(data) < 16 or data[0] != 5:
            return
        hdr = dce.Header(data[:16])
        last = bool(hdr.flags & dce.PFC_LAST_FRAG)
        st = self.state
        tx = self._dce_tx(key, hdr.call_id)
        if hdr.ptype == dce.BINDACK:
            if tx is None or tx.dce is None:
                return
            tx.dce.resp_cmd = dce.BINDACK
            tx.dce.resp_set = True
            tx.done[0] = True
            body = data[16:]
            if len(body) >= 10:
                sec = int.from_bytes(body[8:10], "little")
                off = 10 + sec
                if (sec + 2) % 4:
                    off += 4 - (sec + 2) % 4
                if off + 4 <= len(body):
                    n = body[off]
                    off += 4
                    for i in range(n):
                        r = body[off:off + 24]
                        if len(r) < 24 or st.ifaces is None or i >= len(st.ifaces):
                            break
                        off += 24
                        st.ifaces[i].result = int.from_bytes(r[0:2], "little")
                        st.ifaces[i].acked = True
            self._touch(tx)
            return
        if tx is None:
            tx = self._new(version, command, "dcerpc", key)
            tx.dce = SmbDce(st, hdr.call_id, hdr.little)
        c = tx.dce
        assert c is not None
        c.resp_cmd = hdr.ptype
        c.resp_set = True
        if hdr.ptype == dce.RESPONSE:
            if hdr.frag_len >= 24:
                c.frag_cnt_tc += 1
                _append(c.stub_tc, data[24:hdr.frag_len])
                tx.done[0] = last
        else:
            tx.done[0] = True
        self._touch(tx)

    # --- SMB1 -------------------------------------------------------------------------------
    def _smb1(self, m: bytes, to_server: bool) -> None:
        cmd = m[4]
        status = int.from_bytes(m[5:9], "little")
        flags = m[9]
        flags2 = int.from_bytes(m[10:12], "little")
        tid = int.from_bytes(m[24:26], "little")
        pid = int.from_bytes(m[26:28], "little")
        uid = int.from_bytes(m[28:30], "little")
        mid = int.from_bytes(m[30:32], "little")
        response = bool(flags & 0x80)
        if response == to_server:
            return
        unicode = bool(flags2 & 0x8000)
        off = 32
        seen = 0
        while cmd != 0xFF and off < len(m) and seen < 16:
            seen += 1
            nxt, nxt_off = self._smb1_cmd(m, off, cmd, to_server, status, unicode, (uid, tid, pid, mid), tid)
            if nxt is None or nxt_off <= off:
                break
            cmd, off = nxt, nxt_off

    def _smb1_cmd(self, m: bytes, off: int, cmd: int, to_server: bool, status: int, unicode: bool,
                  key: Any, tid: int) -> tuple[int | None, int]:
        """One command of an SMB1 message (an AndX chain's link): the next command and its
        offset, or (None, 0)."""
        wc = m[off]
        words = m[off + 1:off + 1 + 2 * wc]
        bc_at = off + 1 + 2 * wc
        bcount = int.from_bytes(m[bc_at:bc_at + 2], "little")
        data_at = bc_at + 2
        data = m[data_at:data_at + bcount]
        andx = cmd in _ANDX and wc >= 2
        nxt: int | None = None
        nxt_off = 0
        if andx:
            nxt = words[0]
            nxt_off = int.from_bytes(words[2:4], "little")
        st = self.state
        uid, _tid, _pid, mid = key
        if cmd == 0x72:                                 # NEGOTIATE
            tx = self._find("negotiate", 1)
            if tx is None:
                if not to_server:
                    return nxt, nxt_off
                tx = self._new(1, cmd, "negotiate", 1)
            if to_server:
                tx.dialects = [d.decode("ascii", "replace") for d in data.split(b"\x02")[1:]
                               for d in [d.split(b"\x00", 1)[0]]]
                tx.done[1] = True
            else:
                if words[:2] and tx.dialects:
                    idx = int.from_bytes(words[:2], "little")
                    if idx < len(tx.dialects):
                        tx.dialect = tx.dialects[idx]
                tx.done[1] = tx.done[0] = True
                tx.status = status
            self._touch(tx)
        elif cmd == 0x73:                               # SESSION_SETUP_ANDX
            tx = self._request_response("session_setup", 1, cmd, (uid, mid), to_server, status)
            if to_server and wc == 12:
                blen = int.from_bytes(words[14:16], "little")
                _ntlmssp(tx, data[:blen])
        elif cmd == 0x75:                               # TREE_CONNECT_ANDX
            if to_server:
                if wc < 4:
                    return nxt, nxt_off
                pwlen = int.from_bytes(words[6:8], "little")
                rest = data[pwlen:]
                if unicode:
                    if (data_at + pwlen) % 2:
                        rest = rest[1:]
                    end = 0
                    while end + 1 < len(rest) and rest[end:end + 2] != b"\x00\x00":
                        end += 2
                    path = _utf16(rest[:end])
                else:
                    path = rest.split(b"\x00", 1)[0]
                tx = self._request_response("tree_connect", 1, cmd, (uid, mid), True, None)
                tx.share = path
            else:
                tx = self._find("tree_connect", (uid, mid), 0)
                if tx is None:
                    tx = self._new(1, cmd, "tree_connect", (uid, mid))
                if status == _ST_SUCCESS:
                    service = data.split(b"\x00", 1)[0]
                    tx.is_pipe = service == b"IPC"
                    st.trees[(uid, tid)] = (tx.share or b"", tx.is_pipe)
                tx.done[1] = tx.done[0] = True
                tx.status = status
                self._touch(tx)
        elif cmd == 0xa2:                               # NT_CREATE_ANDX
            if to_server:
                if wc < 24:
                    return nxt, nxt_off
                if unicode:
                    raw = data[1:] if data_at % 2 else data
                    name = _utf16(raw)
                else:
                    name = data.split(b"\x00", 1)[0]
                tx = self._request_response("create", 1, cmd, (uid, mid), True, None)
                tx.filename = name
            else:
                tx = self._find("create", (uid, mid), 0)
                if tx is None:
                    tx = self._new(1, cmd, "create", (uid, mid))
                fid = (bytes(words[5:7]) + tid.to_bytes(2, "little")
                       if status == _ST_SUCCESS and len(words) >= 7 else None)
                self._create_answered(tx, status, fid, (uid, tid))
        elif cmd == 0x2f:                               # WRITE_ANDX
            if to_server and wc >= 12:
                fid = bytes(words[4:6]) + tid.to_bytes(2, "little")
                offset = int.from_bytes(words[6:10], "little")
                ln = int.from_bytes(words[20:22], "little") | (int.from_bytes(words[18:20], "little") << 16)
                o = int.from_bytes(words[22:24], "little")
                payload = m[o:o + ln]
                if self._is_pipe(fid, uid, tid, payload):
                    self._dce_write(payload, (uid, 0), 1, cmd)
                else:
                    self._file_data(fid, payload, offset, True, 1)
        elif cmd == 0x2e:                               # READ_ANDX
            if to_server and wc >= 10:
                st.reads[(uid, mid)] = (bytes(words[4:6]) + tid.to_bytes(2, "little"),
                                        int.from_bytes(words[6:10], "little"))
            elif not to_server:
                fid, offset = st.reads.pop((uid, mid), (b"", 0))
                if status == _ST_SUCCESS and wc >= 12:
                    ln = int.from_bytes(words[10:12], "little")
                    o = int.from_bytes(words[12:14], "little")
                    payload = m[o:o + ln]
                    if self._is_pipe(fid, uid, tid, payload):
                        self._dce_read(payload, (uid, 0), 1, cmd)
                    elif fid:
                        self._file_data(fid, payload, offset, False, 1)
        elif cmd == 0x25:                               # TRANS (named pipe transact)
            if to_server and wc >= 16:
                dcount = int.from_bytes(words[22:24], "little")
                doff = int.from_bytes(words[24:26], "little")
                setup = words[28:28 + 2 * words[26]] if len(words) > 26 else b""
                if len(setup) >= 4 and int.from_bytes(setup[0:2], "little") == 0x26:
                    self._dce_write(m[doff:doff + dcount], (uid, 0), 1, cmd)
            elif not to_server and wc >= 10:
                dcount = int.from_bytes(words[12:14], "little")
                doff = int.from_bytes(words[14:16], "little")
                if status in (_ST_SUCCESS, _ST_OVERFLOW):
                    self._dce_read(m[doff:doff + dcount], (uid, 0), 1, cmd)
        elif cmd == 0x04:                               # CLOSE
            if to_server and wc >= 3:
                fid = bytes(words[0:2]) + tid.to_bytes(2, "little")
                for ftx in self.txs:
                    if ftx.kind == "file" and ftx.fid == fid and not ftx.complete():
                        ftx.file.complete = True            # type: ignore[union-attr]
                        ftx.done[0] = ftx.done[1] = True
                        self._touch(ftx)
        return nxt, nxt_off


def _dcerpc_probe(data: bytes) -> bool:
    """Suricata's smb_dcerpc_probe: a DCERPC record header (version 5.0-5.2, a known type)."""
    if len(data) < 16:
        return False
    order = "little" if data[4] & 0x10 else "big"
    return data[0] == 5 and data[1] < 3 and int.from_bytes(data[8:10], order) > 0 and data[2] <= 20


def _append(buf: bytearray, data: bytes) -> None:
    room = dce.MAX_STUB - len(buf)
    if room > 0:
        buf += data[:room]


def _ntlmssp(tx: SmbTx, blob: bytes) -> None:
    """The user, domain and host of an NTLMSSP AUTHENTICATE message inside a session
    setup's security blob (GSS-API/SPNEGO wrapped or bare)."""
    i = blob.find(b"NTLMSSP\x00")
    if i < 0:
        return
    m = blob[i:]
    if len(m) < 64 or int.from_bytes(m[8:12], "little") != 3:
        return
    flags = int.from_bytes(m[60:64], "little")

    def field(at: int) -> bytes:
        ln = int.from_bytes(m[at:at + 2], "little")
        o = int.from_bytes(m[at + 4:at + 8], "little")
        raw = m[o:o + ln]
        return _utf16(raw) if flags & 1 else raw

    tx.domain = field(28)
    tx.user = field(36)
    tx.host = field(44)


def _is_record_start(buf: bytes) -> bool:
    return len(buf) < 8 or (buf[0] in _NBSS_TYPES and (buf[0] != 0 or buf[4:8] in _SMB_MAGIC
                                                        or _magic_prefix(buf[4:8])))


def _find_record(buf: bytes) -> int:
    """Where the next NetBIOS session message carrying SMB starts (after a gap or
    midstream), or -1."""
    best = -1
    for magic in _SMB_MAGIC:
        i = buf.find(magic, 4)
        while i >= 4 and buf[i - 4] != 0:
            i = buf.find(magic, i + 1)
        if i >= 4 and (best < 0 or i - 4 < best):
            best = i - 4
    return best


def _smb_files(tx: Any, to_server: bool) -> list[File]:
    f = getattr(tx, "file", None)
    if f is None or tx.file_to_server != to_server:
        return []
    return [f]


FILES["smb"] = _smb_files


def _buf(kind: str, attr: str, pipe: bool | None = None):
    def get_(tx: SmbTx, ts: bool) -> bytes | None:
        if tx.kind != kind:
            return None
        if pipe is not None and tx.is_pipe != pipe:
            return None
        v = getattr(tx, attr)
        return v if v else None
    return get_


# Suricata's SMB frames (rust/src/smb/smb.rs SMBFrameType), marked by SmbParser._frames
register_stream_frames("smb", tuple(f"{v}.{p}" for v in ("nbss", "smb1", "smb2", "smb3") for p in ("pdu", "hdr", "data")),
                       bare=True)
register_buffer("smb.share", "smb", TO_SERVER, _buf("tree_connect", "share", False), "smb_share")
register_buffer("smb.named_pipe", "smb", TO_SERVER, _buf("tree_connect", "share", True), "smb_named_pipe")
register_buffer("smb.ntlmssp_user", "smb", TO_SERVER, _buf("session_setup", "user"))
register_buffer("smb.ntlmssp_domain", "smb", TO_SERVER, _buf("session_setup", "domain"))
register_buffer("file.data@smb", "smb", BOTH, lambda tx, ts: bytes(tx.file.data) if (
    tx.file is not None and ts == tx.file_to_server and tx.file.data) else None)
register_buffer("file.name@smb", "smb", BOTH, lambda tx, ts: [tx.file.name] if (
    tx.file is not None and ts == tx.file_to_server and tx.file.name) else None, multi=True)


register_protocol(Protocol("smb", (6,), probe_smb, SmbParser, (139, 445), port_decides=()))
NO_RAW_TRIGGER.add("smb")       # Suricata's SMB parser never triggers raw inspection
# DCERPC registers after SMB (the probing order of ports neither names)
dce.register()
probe_dcerpc = dce.probe_dcerpc
