"""DCERPC over TCP (connection-oriented, version 5.0/5.1), as Suricata's DCERPC parser
(rust/src/dcerpc/) reads it: PDUs, the interfaces bound, one transaction per call.

- PDUs: the 16-byte common header (version, type, flags, data representation, fragment
  length, auth length, call id; the data representation's first byte says the byte order
  of the rest) and its body, whole PDUs only (`frag_length`); a PDU of a bad version is an
  error (the direction is given up). After a gap the bytes up to the next ``05 00`` are
  passed over.
- BIND / ALTER_CONTEXT: each presentation context item (context id, interface UUID and
  version, one transfer syntax) becomes an interface of the connection (one per context
  id, the newest wins; at most 64); the PDU's "first fragment" flag is kept with it
  (`dcerpc.iface` without ``any_frag`` looks only at those). BIND_ACK /
  ALTER_CONTEXT_RESP: each result, in order, is the answer to the context item of the
  same index of the bind with that call id (accepted: result 0).
- REQUEST / RESPONSE: the transaction of its call id (a new one otherwise): context id
  and operation number from the request header, the stub data of each fragment appended
  (up to ``app-layer.protocols.dcerpc.max-stub-size``, 1 MiB); a side is done with the
  fragment that has the "last fragment" flag, or neither flag. As Suricata, the request's
  stub data starts after its 8-byte request header, the response's after the common
  header (its own 8-byte header is in it).
- A transaction: its request (REQUEST, BIND, ALTER_CONTEXT) and its response; logged
  once both are done, as the EVE `dcerpc` object (request/response types, `req`/`res`
  fragment counts and stub sizes, the interfaces of its context id or, for a bind, of its
  call id, with `service`/`procedure` names from Zeek's table).

`DceState` is the part DCERPC over SMB named pipes shares (applayer/smb.py).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from netsentry.applayer.registry import (BOTH, PROTOCOLS, ParserError, Protocol, register_buffer,
                                         register_protocol, register_states)
from netsentry.applayer.tx import Tx
from netsentry.config import get

HDR_LEN = 16
REQUEST, RESPONSE, FAULT = 0, 2, 3
BIND, BINDACK, BINDNAK, ALTER_CONTEXT, ALTER_CONTEXT_RESP = 11, 12, 13, 14, 15
UNKNOWN = 99
PFC_FIRST_FRAG, PFC_LAST_FRAG = 0x01, 0x02
MAX_IFACES = 64
MAX_TX = 1024
MAX_STUB = 1 << 20

TYPE_NAMES = {0: "REQUEST", 1: "PING", 2: "RESPONSE", 3: "FAULT", 4: "WORKING", 5: "NOCALL", 6: "REJECT",
              7: "ACK", 8: "CL_CANCEL", 9: "FACK", 10: "CANCEL_ACK", 11: "BIND", 12: "BINDACK",
              13: "BINDNAK", 14: "ALTER_CONTEXT", 15: "ALTER_CONTEXT_RESP", 16: "AUTH3", 17: "SHUTDOWN",
              18: "CO_CANCEL", 19: "ORPHANED", 20: "RTS", 99: "UNKNOWN"}
_RESP_FOR = {REQUEST: RESPONSE, BIND: BINDACK, ALTER_CONTEXT: ALTER_CONTEXT_RESP}
_REQ_FOR = {RESPONSE: REQUEST, BINDACK: BIND, ALTER_CONTEXT_RESP: ALTER_CONTEXT}


def type_name(t: int) -> str:
    return TYPE_NAMES.get(t, str(t))


def uuid_text(u: bytes) -> str:
    h = u.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def wire_uuid(raw: bytes, little: bool) -> bytes:
    """A UUID as written on the wire in the PDU's byte order -> its canonical (RFC 4122,
    big-endian fields) 16 bytes."""
    if not little:
        return bytes(raw)
    return raw[3::-1] + raw[5:3:-1] + raw[7:5:-1] + raw[8:16]


_NAMES: dict[str, tuple[str, dict[int, str]]] | None = None


def interface_names() -> dict[str, tuple[str, dict[int, str]]]:
    """UUID text -> (service, {opnum: procedure}): Zeek's DCE/RPC table, as Suricata 9
    logs it (netsentry/data/dcerpc_interfaces.json, one JSON object a line)."""
    global _NAMES
    if _NAMES is None:
        names: dict[str, tuple[str, dict[int, str]]] = {}
        try:
            text = (resources.files("netsentry") / "data" / "dcerpc_interfaces.json").read_text()
        except (FileNotFoundError, ModuleNotFoundError):
            text = ""
        for line in text.splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                o = json.loads(line)
            except ValueError:
                continue
            ops = {int(k): v for k, v in (o.get("opcodes") or {}).items() if str(k).isdigit()}
            names[str(o.get("uuid", "")).lower()] = (str(o.get("service", "")), ops)
        _NAMES = names
    return _NAMES


class Iface:
    """One presentation context of the connection (Suricata's DCERPCUuidEntry)."""

    __slots__ = ("ctxid", "internal_id", "uuid", "version", "version_minor", "first_frag", "call_id",
                 "acked", "result")

    def __init__(self, ctxid: int, internal_id: int, uuid: bytes, version: int, version_minor: int,
                 first_frag: bool, call_id: int) -> None:
        self.ctxid = ctxid
        self.internal_id = internal_id
        self.uuid = uuid
        self.version = version
        self.version_minor = version_minor
        self.first_frag = first_frag
        self.call_id = call_id
        self.acked = False
        self.result = 0

    def eve(self, opnum: int | None) -> dict[str, Any]:
        text = uuid_text(self.uuid)
        out: dict[str, Any] = {"uuid": text, "version": f"{self.version}.{self.version_minor}"}
        if self.acked:
            out["ack_result"] = self.result
        named = interface_names().get(text)
        if named is not None:
            out["service"] = named[0]
            if opnum is not None and opnum in named[1]:
                out["procedure"] = named[1][opnum]
        return out


class DceCall:
    """What DCERPC keywords read of one call: shared by the TCP transaction and an SMB
    transaction carrying DCERPC over a named pipe."""

    __slots__ = ("call_id", "ctxid", "opnum", "first_request_seen", "min_version", "little",
                 "stub_ts", "stub_tc", "frag_cnt_ts", "frag_cnt_tc", "req_done", "resp_done",
                 "req_lost", "resp_lost", "req_cmd", "resp_cmd", "ifaces")

    def __init__(self, call_id: int, little: bool, min_version: int, ifaces: list[Iface]) -> None:
        self.call_id = call_id
        self.ctxid = 0
        self.opnum = 0
        self.first_request_seen = False
        self.min_version = min_version
        self.little = little
        self.stub_ts = bytearray()
        self.stub_tc = bytearray()
        self.frag_cnt_ts = 0
        self.frag_cnt_tc = 0
        self.req_done = False
        self.resp_done = False
        self.req_lost = False
        self.resp_lost = False
        self.req_cmd = REQUEST
        self.resp_cmd = RESPONSE
        self.ifaces = ifaces            # the connection's (the same list object)

    def iface_match(self, uuid: bytes, version_pred: Any, any_frag: bool) -> bool:
        """`dcerpc.iface`: an accepted interface of this call's context id (Suricata's
        match_backuuid)."""
        if not self.first_request_seen or not (self.req_cmd == REQUEST or self.resp_cmd == RESPONSE):
            return False
        for e in self.ifaces:
            if not any_frag and not e.first_frag:
                continue
            if not e.acked or e.result != 0 or e.uuid != uuid or e.ctxid != self.ctxid:
                continue
            if version_pred is not None and not version_pred(e.version):
                continue
            return True
        return False

    def eve_tcp(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.req_done and not self.req_lost:
            out["request"] = type_name(self.req_cmd)
            if self.req_cmd == REQUEST:
                out["req"] = {"opnum": self.opnum, "frag_cnt": self.frag_cnt_ts,
                              "stub_data_size": len(self.stub_ts)}
                ifs = [e.eve(self.opnum) for e in self.ifaces if e.ctxid == self.ctxid]
                if ifs:
                    out["interfaces"] = ifs
            elif self.req_cmd == BIND:
                ifs = [e.eve(None) for e in self.ifaces if e.call_id == self.call_id]
                if ifs:
                    out["interfaces"] = ifs
        else:
            out["request"] = "REQUEST_LOST"
        if self.resp_done and not self.resp_lost:
            out["response"] = type_name(self.resp_cmd)
            if self.resp_cmd == RESPONSE:
                out["res"] = {"frag_cnt": self.frag_cnt_tc, "stub_data_size": len(self.stub_tc)}
        else:
            out["response"] = "UNREPLIED"
        out["call_id"] = self.call_id
        out["rpc_version"] = f"5.{self.min_version}"
        return out


class DcerpcTx(Tx):
    __slots__ = ("dce", "pdus")
    proto = "dcerpc"

    def __init__(self, tx_id: int, dce: DceCall) -> None:
        super().__init__(tx_id)
        self.dce = dce
        self.pdus: tuple[list[bytes], list[bytes]] | None = None    # its PDUs by side, for frame rules

    def eve(self) -> dict[str, Any]:
        return self.dce.eve_tcp()


class Header:
    __slots__ = ("vers", "minor", "ptype", "flags", "little", "frag_len", "auth_len", "call_id")

    def __init__(self, b: bytes) -> None:
        self.vers = b[0]
        self.minor = b[1]
        self.ptype = b[2]
        self.flags = b[3]
        self.little = bool(b[4] & 0x10)
        order = "little" if self.little else "big"
        self.frag_len = int.from_bytes(b[8:10], order)
        self.auth_len = int.from_bytes(b[10:12], order)
        self.call_id = int.from_bytes(b[12:16], order)


class DceState:
    """The connection's interfaces and calls; `pdu(hdr, body, to_server)` handles one whole
    PDU (`body`: the bytes after the common header, up to the fragment length) and returns
    the call it touched, or None. `new_call(call)` is told of each call made."""

    def __init__(self, max_stub: int = MAX_STUB) -> None:
        self.ifaces: list[Iface] = []
        self.calls: list[DceCall] = []
        self.max_stub = max_stub

    def new_call(self, call: DceCall) -> None:
        self.calls.append(call)

    def _make(self, hdr: Header) -> DceCall:
        calls = self.calls
        if len(calls) > MAX_TX:
            for c in calls:
                if not c.req_done or not c.resp_done:
                    c.req_done = c.resp_done = True
                    break
        call = DceCall(hdr.call_id, hdr.little, hdr.minor, self.ifaces)
        self.new_call(call)
        return call

    def by_call_id(self, call_id: int, to_server: bool, ptype: int) -> DceCall | None:
        for c in self.calls:
            if c.call_id != call_id:
                continue
            if to_server:
                if c.req_done or c.req_lost or _RESP_FOR.get(ptype, UNKNOWN) != c.resp_cmd:
                    continue
            else:
                if c.resp_done or c.resp_lost or _REQ_FOR.get(ptype, UNKNOWN) != c.req_cmd:
                    continue
            return c
        return None

    def pdu(self, hdr: Header, body: bytes, to_server: bool) -> DceCall | None:
        t = hdr.ptype
        if t == BIND or t == ALTER_CONTEXT:
            return self._bind(hdr, body)
        if t == BINDACK or t == ALTER_CONTEXT_RESP:
            return self._bindack(hdr, body)
        if t == REQUEST:
            return self._request(hdr, body)
        if t == RESPONSE:
            call = self.by_call_id(hdr.call_id, False, t)
            if call is None:
                call = self._make(hdr)
            call.resp_cmd = t
            self._stub(call, body, False, hdr)
            return call
        return None

    def _bind(self, hdr: Header, body: bytes) -> DceCall:
        if len(body) < 12:
            raise ValueError("bind: short")
        n = body[8]
        order = "little" if hdr.little else "big"
        off = 12
        for i in range(n):
            item = body[off:off + 44]
            if len(item) < 44:
                raise ValueError("bind: short context item")
            off += 44
            e = Iface(int.from_bytes(item[0:2], order), i, wire_uuid(item[4:20], hdr.little),
                      int.from_bytes(item[20:22], order), int.from_bytes(item[22:24], order),
                      bool(hdr.flags & PFC_FIRST_FRAG), hdr.call_id)
            for j, old in enumerate(self.ifaces):
                if old.ctxid == e.ctxid:
                    self.ifaces[j] = e
                    break
            else:
                if len(self.ifaces) < MAX_IFACES:
                    self.ifaces.append(e)
        call = self._make(hdr)
        call.req_cmd = hdr.ptype
        call.req_done = True
        call.frag_cnt_ts = 1
        return call

    def _bindack(self, hdr: Header, body: bytes) -> DceCall:
        if len(body) < 10:
            raise ValueError("bind_ack: short")
        sec = int.from_bytes(body[8:10], "little")
        off = 10 + sec
        pad = (sec + 2) % 4
        if pad:
            off += 4 - pad
        if off + 4 > len(body):
            raise ValueError("bind_ack: short")
        n = body[off]
        off += 4
        for i in range(n):
            r = body[off:off + 24]
            if len(r) < 24:
                raise ValueError("bind_ack: short result")
            off += 24
            result = int.from_bytes(r[0:2], "little")
            for e in reversed(self.ifaces):
                if e.internal_id == i and e.call_id == hdr.call_id:
                    e.result = result
                    e.acked = True
        call = self.by_call_id(hdr.call_id, False, hdr.ptype)
        if call is None:
            call = self._make(hdr)
        call.resp_cmd = hdr.ptype
        call.resp_done = True
        call.frag_cnt_tc = 1
        return call

    def _request(self, hdr: Header, body: bytes) -> DceCall:
        if len(body) < 8:
            raise ValueError("request: short")
        order = "little" if hdr.little else "big"
        call = self.by_call_id(hdr.call_id, True, REQUEST)
        if call is None:
            call = self._make(hdr)
        call.req_cmd = REQUEST
        call.ctxid = int.from_bytes(body[4:6], order)
        call.opnum = int.from_bytes(body[6:8], order)
        call.first_request_seen = True
        self._stub(call, body[8:], True, hdr)
        return call

    def _stub(self, call: DceCall, stub: bytes, to_server: bool, hdr: Header) -> None:
        if not stub:
            return
        last = not (hdr.flags & (PFC_FIRST_FRAG | PFC_LAST_FRAG)) or bool(hdr.flags & PFC_LAST_FRAG)
        buf = call.stub_ts if to_server else call.stub_tc
        room = self.max_stub - len(buf)
        if room > 0:
            buf += stub[:room] if len(stub) > room else stub
        if to_server:
            call.req_done = last
            call.frag_cnt_ts += 1
        else:
            call.resp_done = last
            call.frag_cnt_tc += 1

    def lost(self, to_server: bool) -> None:
        """A gap in a direction: what that side of the open calls said is lost (Suricata's
        post_gap_housekeeping)."""
        for c in self.calls:
            if not c.req_done:
                c.req_lost = True
            c.req_done = True
            if not to_server:
                if not c.resp_done:
                    c.resp_lost = True
                c.resp_done = True


class _TcpState(DceState):
    def __init__(self, parser: DcerpcParser, max_stub: int) -> None:
        super().__init__(max_stub)
        self.parser = parser

    def new_call(self, call: DceCall) -> None:
        super().new_call(call)
        p = self.parser
        tx = DcerpcTx(p.next_id, call)
        p.next_id += 1
        p.txs.append(tx)
        p.by_call[id(call)] = tx


class DcerpcParser:
    """One DCERPC/TCP connection: whole PDUs of each direction into `DceState`."""

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        settings = settings or {}
        self.txs: list[DcerpcTx] = []
        self.next_id = 0
        self.by_call: dict[int, DcerpcTx] = {}
        self.state = _TcpState(self, int(settings.get("max-stub-size", MAX_STUB)))
        self.buf = [b"", b""]
        self.gapped = [False, False]
        self.lost = [False, False]
        self.frames = bool(settings.get("frames", False))

    def gap(self, to_server: bool, nbytes: int) -> None:
        d = 1 if to_server else 0
        self.buf[d] = b""
        self.gapped[d] = True
        self.state.lost(to_server)
        for tx in self.txs:
            self._sync(tx, None)

    def parse(self, data: bytes, to_server: bool, pkt: Any = None) -> None:
        d = 1 if to_server else 0
        if self.lost[d] or not data:
            return
        buf = self.buf[d] + data if self.buf[d] else data
        if self.gapped[d]:
            i = buf.find(b"\x05\x00")
            if i < 0:
                self.buf[d] = buf[-1:] if buf[-1:] == b"\x05" else b""
                return
            buf = buf[i:]
            self.gapped[d] = False
        off, n = 0, len(buf)
        try:
            while n - off >= HDR_LEN:
                hdr = Header(buf[off:off + HDR_LEN])
                if hdr.vers != 5 or hdr.minor not in (0, 1):
                    self._fail(d, "dcerpc: bad header version")
                if hdr.frag_len < HDR_LEN:
                    self._fail(d, "dcerpc: fragment length below the header")
                if hdr.frag_len == HDR_LEN:
                    off += HDR_LEN
                    continue
                if n - off < hdr.frag_len:
                    break
                pdu = buf[off:off + hdr.frag_len]
                off += hdr.frag_len
                try:
                    call = self.state.pdu(hdr, pdu[HDR_LEN:], to_server)
                except ValueError:
                    self._fail(d, "dcerpc: malformed PDU")
                tx = self.by_call.get(id(call)) if call is not None else None
                if tx is not None:
                    if self.frames:
                        if tx.pdus is None:
                            tx.pdus = ([], [])
                        tx.pdus[d].append(pdu)
                    self._sync(tx, to_server)
        finally:
            if not self.lost[d]:
                self.buf[d] = buf[off:]

    def _fail(self, d: int, why: str) -> None:
        self.lost[d] = True
        self.buf[d] = b""
        raise ParserError(why)

    @staticmethod
    def _sync(tx: DcerpcTx, to_server: bool | None) -> None:
        c = tx.dce
        tx.done[1] = c.req_done
        tx.done[0] = c.resp_done
        if to_server is None:
            tx.touch(True)
            tx.touch(False)
        else:
            # a response may complete what the request side waits for (its buffers do not
            # change, but rules of both sides read the interfaces): both sides move
            tx.touch(to_server)
            tx.touch(not to_server)


def configure(config: Any) -> dict[str, Any]:
    value = get(config, "app-layer.protocols.dcerpc.max-stub-size", MAX_STUB)
    try:
        size = int(str(value).lower().replace("kb", "000").replace("mb", "000000"))
    except ValueError:
        size = MAX_STUB
    return {"max-stub-size": size, "frames": False}


FRAME_BUFFERS = frozenset({"frame:dcerpc.pdu", "frame:dcerpc.hdr", "frame:dcerpc.data"})


def rules_known(settings: dict[str, Any], names: frozenset[str]) -> None:
    settings["frames"] = bool(names & FRAME_BUFFERS)


# --- buffers ---------------------------------------------------------------------------------
# Duck-typed on `tx.dce` (a DceCall): an SMB transaction carrying DCERPC has one too, so
# a DCERPC rule reads DCERPC over SMB alike (Suricata's AppProtoEquals).

# The byte order of the stub buffers handed to detection, by the buffer object's id and
# length (Suricata's inspection-buffer DCE flags): byte_* keywords with `dce` read numbers
# in it (rules/keywords/byte.py `dce_little`). Buffers are exact bytes (the compiled engine
# takes no subclass), so the order is kept beside them; no reference is held (a stub may be
# 1 MiB), a buffer lives in its transaction's buffer cache while detection reads it.
# Bounded: the newest STUB_ORDERS_MAX.
STUB_ORDERS: dict[int, tuple[int, bool]] = {}
STUB_ORDERS_MAX = 4096


def dce_little(buf: bytes) -> bool:
    """The byte order `dce` reads `buf` in: its call's for a stub buffer, else big-endian."""
    hit = STUB_ORDERS.get(id(buf))
    return hit is not None and hit[0] == len(buf) and hit[1]


def stub_data(tx: Any, to_server: bool) -> bytes | None:
    c = getattr(tx, "dce", None)
    if c is None:
        return None
    b = c.stub_ts if to_server else c.stub_tc
    if not b:
        return None
    out = bytes(b)
    if len(STUB_ORDERS) >= STUB_ORDERS_MAX:
        del STUB_ORDERS[next(iter(STUB_ORDERS))]
    STUB_ORDERS[id(out)] = (len(out), c.little)
    return out


register_buffer("dcerpc.stub_data", "dcerpc", BOTH, stub_data, "dce_stub_data")


def _frames(fn):
    def get_(tx: Any, to_server: bool) -> list[bytes] | None:
        pdus = getattr(tx, "pdus", None)
        if pdus is None:
            return None
        out = [fn(p) for p in pdus[to_server]]
        return out or None
    return get_


register_buffer("frame:dcerpc.pdu", "dcerpc", BOTH, _frames(lambda p: p), multi=True)
register_buffer("frame:dcerpc.hdr", "dcerpc", BOTH, _frames(lambda p: p[:HDR_LEN]), multi=True)
register_buffer("frame:dcerpc.data", "dcerpc", BOTH, _frames(lambda p: p[HDR_LEN:]), multi=True)


def probe_dcerpc(data: bytes, to_server: bool) -> bool | None:
    if len(data) < HDR_LEN:
        return None if b"\x05\x00"[:len(data)] == data[:2] else False
    return data[0] == 5 and data[1] == 0 and data[4] & 0xEE == 0 and data[5] <= 3


def register() -> None:
    """Register the protocol (applayer/smb.py calls it after SMB's own: the probing order)."""
    if "dcerpc" in PROTOCOLS:
        return
    register_protocol(Protocol("dcerpc", (6,), probe_dcerpc, DcerpcParser, (135,), port_decides=(),
                               configure=configure, rules_known=rules_known))
    register_states("dcerpc", ("request_started", "request_complete"),
                    ("response_started", "response_complete"), lambda tx, to_server: int(tx.done[1 if to_server else 0]))
