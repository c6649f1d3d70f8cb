"""ONC-RPC (RFC 5531) messages as NFS (applayer/nfs.py) reads them: the call and reply
headers, the caller's credentials, and TCP's record marking.

- A call: xid, message type 0, RPC version 2, program, program version, procedure, the
  credentials (flavor and body: AUTH_UNIX's machine name, uid and gid read, RPCSEC_GSS's
  procedure and service) and the verifier; the program's arguments follow.
- A reply: xid, message type 1, reply state (0 accepted, 1 denied); an accepted reply
  carries a verifier and an accept state, and the program's results follow when that
  state is 0 (success).
- Over TCP each message is a record of fragments, each behind a 4-byte marker: the
  top bit says "last fragment", the other 31 bits its length (`Records`).

XDR throughout: big-endian 32-bit words, opaque data padded to a multiple of 4. A
message cut short raises `Truncated` (a `ValueError`), the caller's malformed-data event.
"""

from __future__ import annotations

from struct import unpack_from

CALL, REPLY = 0, 1
AUTH_NULL, AUTH_UNIX, AUTH_GSS = 0, 1, 6
MAX_RECORD = 16 << 20           # a TCP record kept whole up to this size (Linux: 1 MB writes)
AUTH_TYPES = {0: "NULL", 1: "UNIX", 2: "SHORT", 3: "DH", 4: "KERB", 5: "RSA", 6: "GSS"}
REPLY_STATES = {0: "ACCEPTED", 1: "DENIED"}


class Truncated(ValueError):
    """An RPC message or its program data ends before a field it announces."""


def u32(b: bytes, off: int) -> int:
    if off + 4 > len(b):
        raise Truncated(off)
    return unpack_from(">I", b, off)[0]


def u64(b: bytes, off: int) -> int:
    if off + 8 > len(b):
        raise Truncated(off)
    return unpack_from(">Q", b, off)[0]


def opaque(b: bytes, off: int, limit: int = MAX_RECORD) -> tuple[bytes, int]:
    """A variable-length opaque (length word, data, padding): (data, offset after)."""
    n = u32(b, off)
    if n > limit or off + 4 + n > len(b):
        raise Truncated(off)
    end = off + 4 + n
    return b[off + 4:end], end + (-n & 3)


class Call:
    __slots__ = ("xid", "prog", "vers", "proc", "flavor", "machine", "uid", "gid",
                 "gss_proc", "gss_service", "body")

    def __init__(self) -> None:
        self.machine = b""
        self.uid = self.gid = 0
        self.gss_proc = self.gss_service = -1


class Reply:
    __slots__ = ("xid", "state", "accept", "body")


def parse(msg: bytes) -> Call | Reply:
    """One RPC message (a UDP datagram, a TCP record's data)."""
    xid, mtype = u32(msg, 0), u32(msg, 4)
    if mtype == CALL:
        c = Call()
        c.xid = xid
        if u32(msg, 8) != 2:
            raise Truncated("rpc version")
        c.prog, c.vers, c.proc = u32(msg, 12), u32(msg, 16), u32(msg, 20)
        c.flavor = u32(msg, 24)
        cred, off = opaque(msg, 28, 400)
        if c.flavor == AUTH_UNIX:
            n = u32(cred, 4)
            if n > 255 or 8 + n > len(cred):
                raise Truncated("machine name")
            c.machine = cred[8:8 + n]
            # uid and gid read right after the name's bytes, its XDR padding not skipped: what
            # Suricata's parser (and so its `rpc.creds` records) reads
            c.uid, c.gid = u32(cred, 8 + n), u32(cred, 12 + n)
        elif c.flavor == AUTH_GSS and len(cred) >= 16:
            c.gss_proc, c.gss_service = u32(cred, 4), u32(cred, 12)
        u32(msg, off)                               # verifier flavor
        _, off = opaque(msg, off + 4, 400)
        c.body = msg[off:]
        return c
    if mtype == REPLY:
        r = Reply()
        r.xid = xid
        r.state = u32(msg, 8)
        r.accept = 0
        r.body = b""
        if r.state == 0:
            _, off = opaque(msg, 16, 400)           # verifier (flavor at 12)
            r.accept = u32(msg, off)
            r.body = msg[off + 4:]
        return r
    raise Truncated("message type")


def looks_like_call(data: bytes, progs: frozenset[int]) -> bool:
    """An RPC call to one of `progs` at the start of `data` (no record marker)."""
    return (len(data) >= 28 and data[4:8] == b"\x00\x00\x00\x00" and data[8:12] == b"\x00\x00\x00\x02"
            and unpack_from(">I", data, 12)[0] in progs)


def looks_like_reply(data: bytes) -> bool:
    """An accepted or denied RPC reply at the start of `data` (no record marker)."""
    return len(data) >= 24 and data[4:8] == b"\x00\x00\x00\x01" and data[8:11] == b"\x00\x00\x00" \
        and data[11] <= 1


class Records:
    """One direction of a TCP RPC stream: bytes in, whole records (fragments joined) out.
    A fragment's bytes wait in a bytearray until the fragment is whole (`need`): a 1 MB
    WRITE in 1,448-byte segments is appended to, not copied again on every segment."""

    __slots__ = ("buf", "need", "frags", "lost")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.need = 4                   # bytes `buf` must hold before anything can be cut
        self.frags: list[bytes] = []
        self.lost = False

    def reset(self) -> None:
        self.buf = bytearray()
        self.need = 4
        self.frags = []

    def feed(self, data: bytes) -> list[bytes]:
        if self.buf:
            self.buf += data
            if len(self.buf) < self.need:
                return []
            buf = bytes(self.buf)
            self.buf = bytearray()
        else:
            buf = data
        out: list[bytes] = []
        off, n = 0, len(buf)
        need = 4
        while n - off >= 4:
            mark = unpack_from(">I", buf, off)[0]
            size = mark & 0x7FFFFFFF
            if size > MAX_RECORD:
                self.reset()
                raise Truncated("record size")
            end = off + 4 + size
            if end > n:
                need = 4 + size
                break
            self.frags.append(buf[off + 4:end])
            off = end
            if mark & 0x80000000:
                out.append(b"".join(self.frags) if len(self.frags) > 1 else self.frags[0])
                self.frags = []
        if off < n:
            self.buf = bytearray(buf[off:])
            self.need = need
        return out


def find_record(data: bytes, progs: frozenset[int], limit: int = 65536) -> int:
    """Where a record marker followed by an RPC call to `progs` or a reply starts in the
    first `limit` bytes of `data` (a stream picked up midstream or after a gap), or -1."""
    best = -1
    for pattern, check in ((b"\x00\x00\x00\x00\x00\x00\x00\x02", True), (b"\x00\x00\x00\x01\x00\x00\x00", False)):
        i = data.find(pattern, 8, limit)
        while i >= 8:
            start = i - 8
            if best >= 0 and start >= best:
                break
            if data[start] & 0x7F == 0 and (looks_like_call(data[start + 4:], progs) if check
                                       else looks_like_reply(data[start + 4:])):
                best = start
                break
            i = data.find(pattern, i + 1, limit)
    return best
