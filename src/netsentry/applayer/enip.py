"""EtherNet/IP (ENIP) and the CIP it carries, over TCP and UDP on port 44818, as Suricata's
enip parser (rust/src/enip/): transactions, the `enip.*`/`cip_*` keywords' values, the EVE
`enip` record and events.

- Detection by port only (Protocol.ports_only), the probe as Suricata's: a 24-byte
  encapsulation header with a known command and status, and the command's constraints.
- A PDU is the header and its data (little-endian). A response joins the oldest request
  without a response (of the same command and session, or sequence number of connected
  data); every request passed over meanwhile is finished. Anything else is a transaction
  of its own.
- What is read: RegisterSession (protocol version, options), ListIdentity items (the
  identity of the device), ListServices items (capabilities, name), the common packet
  format of SendRRData/SendUnitData and its first data item's CIP message: service,
  request path (logical segments: class, instance, attribute), Get/SetAttributeList
  attributes, Multiple Service Packet members, response status and extended status.
- Events (`app-layer-event:enip.NAME`): invalid_pdu (a command's data that does not
  parse), too_many_transactions.
"""

from __future__ import annotations

from typing import Any

from netsentry.applayer.frames import frames_for, register_stream_frames
from netsentry.applayer.registry import BOTH, TO_CLIENT, ParserError, Protocol, register_buffer, register_protocol
from netsentry.applayer.tx import Tx

EVENTS: dict[str, int | None] = {"too_many_transactions": BOTH, "invalid_pdu": BOTH}
MAX_TX = 1024
MAX_PDU = 0xFFFF + 24

COMMANDS = {0: "nop", 4: "list_services", 0x63: "list_identity", 0x64: "list_interfaces",
            0x65: "register_session", 0x66: "unregister_session", 0x6F: "send_r_r_data",
            0x70: "send_unit_data", 0x72: "indicate_status", 0x73: "cancel"}
COMMAND_CODES = {v: k for k, v in COMMANDS.items()}
STATUSES = {0: "success", 1: "invalid_cmd", 2: "no_resources", 3: "incorrect_data", 0x64: "invalid_session",
            0x65: "invalid_length", 0x69: "unsupported_prot_rev", 0x6A: "encap_header_error"}
STATUS_CODES = {v: k for k, v in STATUSES.items()}
SEGMENT_TYPES = {8: "class", 9: "instance", 12: "attribute"}
ITEM_CONNECTED_DATA = 0xB1
ITEM_UNCONNECTED_DATA = 0xB2
ITEM_IDENTITY = 0x0C
ITEM_SERVICES = 0x100
CIP_GET_ATTR_LIST, CIP_SET_ATTR_LIST, CIP_MULTIPLE = 3, 4, 0x0A


class _Bad(Exception):
    pass


def _u16(b: bytes, o: int) -> int:
    if o + 2 > len(b):
        raise _Bad()
    return b[o] | b[o + 1] << 8


def _u32(b: bytes, o: int) -> int:
    if o + 4 > len(b):
        raise _Bad()
    return int.from_bytes(b[o:o + 4], "little")


class Cip:
    """One CIP message: service (without the response bit), and for a request its path
    [(segment type, value)], attributes from Get/SetAttributeList; for a response its
    status and extended status; Multiple Service Packet members."""

    __slots__ = ("service", "request", "path", "attrs", "status", "ext", "multi")

    def __init__(self) -> None:
        self.service = 0
        self.request = True
        self.path: list[tuple[int, int]] = []
        self.attrs: list[int] = []
        self.status = 0
        self.ext = b""
        self.multi: list[Cip] = []


def parse_cip(b: bytes, allow_multi: bool = True) -> Cip:
    c = Cip()
    if not b:
        raise _Bad()
    service = b[0]
    c.service = service & 0x7F
    if service & 0x80 == 0:
        if len(b) < 2:
            raise _Bad()
        words = b[1]
        path = b[2:2 + 2 * words]
        if len(path) < 2 * words:
            raise _Bad()
        p = 0
        while p < len(path):
            st = path[p]
            if st >> 5 != 1:
                raise _Bad()                # logical segments only
            fmt = st & 3
            if fmt == 0:
                if p + 2 > len(path):
                    raise _Bad()
                v = path[p + 1]
                p += 2
            elif fmt == 1:
                v = _u16(path, p + 2)
                p += 4
            elif fmt == 2:
                v = _u32(path, p + 2)
                p += 6
            else:
                raise _Bad()
            c.path.append((st, v))
        rest = b[2 + 2 * words:]
        if c.service == CIP_GET_ATTR_LIST:
            n = _u16(rest, 0)
            c.attrs = [_u16(rest, 2 + 2 * i) for i in range(n)]
        elif c.service == CIP_SET_ATTR_LIST:
            if _u16(rest, 0) > 0:
                c.attrs = [_u16(rest, 2)]
        elif c.service == CIP_MULTIPLE and allow_multi:
            c.multi = _multiple(rest)
        return c
    c.request = False
    if len(b) < 4:
        raise _Bad()
    c.status = b[2]
    n = b[3]
    c.ext = b[4:4 + n]
    if len(c.ext) < n:
        raise _Bad()
    if c.service == CIP_MULTIPLE and allow_multi:
        c.multi = _multiple(b[4 + n:])
    return c


def _multiple(b: bytes) -> list[Cip]:
    n = _u16(b, 0)
    offs = [_u16(b, 2 + 2 * i) for i in range(n)]
    out = []
    for o in offs:
        if o >= len(b):
            raise _Bad()
        out.append(parse_cip(b[o:], False))
    return out


class Pdu:
    __slots__ = ("cmd", "session", "status", "options", "payload", "invalid", "cip", "seq", "items")

    def __init__(self, cmd: int, session: int, status: int, options: int) -> None:
        self.cmd = cmd
        self.session = session
        self.status = status
        self.options = options
        self.payload: dict[str, Any] = {}
        self.invalid = False
        self.cip: Cip | None = None
        self.seq: int | None = None
        self.items: list[int] = []


def _items(data: bytes, off: int) -> list[tuple[int, bytes]]:
    n = _u16(data, off)
    p = off + 2
    out = []
    for _ in range(n):
        t = _u16(data, p)
        ln = _u16(data, p + 2)
        body = data[p + 4:p + 4 + ln]
        if len(body) < ln:
            raise _Bad()
        out.append((t, body))
        p += 4 + ln
    return out


def _identity(body: bytes) -> dict[str, Any]:
    if len(body) < 33:
        raise _Bad()
    f = {"protocol_version": _u16(body, 0),
         "sin_family": int.from_bytes(body[2:4], "big"), "sin_port": int.from_bytes(body[4:6], "big"),
         "sin_addr": ".".join(str(x) for x in body[6:10]),
         "vendor_id": _u16(body, 18), "device_type": _u16(body, 20), "product_code": _u16(body, 22),
         "revision_major": body[24], "revision_minor": body[25], "status": _u16(body, 26),
         "serial": _u32(body, 28)}
    n = body[32]
    name = body[33:33 + n]
    if len(name) < n or len(body) < 34 + n:
        raise _Bad()
    f["product_name"] = name
    f["state"] = body[33 + n]
    return f


def parse_pdu(buf: bytes, off: int) -> tuple[Pdu, int] | None:
    """The PDU at `off` and its end; None: not whole yet."""
    if len(buf) - off < 24:
        return None
    cmd = _u16(buf, off)
    length = _u16(buf, off + 2)
    end = off + 24 + length
    if end > len(buf):
        return None
    pdu = Pdu(cmd, _u32(buf, off + 4), _u32(buf, off + 8), _u32(buf, off + 20))
    data = buf[off + 24:end]
    try:
        if cmd == 0x65:
            if len(data) < 4:
                raise _Bad()
            pdu.payload = {"protocol_version": _u16(data, 0), "options": _u16(data, 2)}
        elif cmd == 0x63 and length:
            pdu.payload = {"identity": [_identity(body) for t, body in _items(data, 0) if t == ITEM_IDENTITY]}
        elif cmd == 4 and length:
            services = []
            for t, body in _items(data, 0):
                if len(body) < 20:
                    raise _Bad()
                services.append({"protocol_version": _u16(body, 0), "capabilities": _u16(body, 2),
                                 "service_name": body[4:20].split(b"\x00", 1)[0]})
            pdu.payload = {"services": services}
        elif cmd == 0x64 and length:
            _items(data, 0)
        elif cmd in (0x6F, 0x70):
            items = _items(data, 6)
            pdu.items = [t for t, _ in items]
            for t, body in items:
                if t == ITEM_UNCONNECTED_DATA:
                    pdu.cip = parse_cip(body)
                    break
                if t == ITEM_CONNECTED_DATA:
                    pdu.seq = _u16(body, 0)
                    pdu.cip = parse_cip(body[2:])
                    break
    except (_Bad, IndexError):
        pdu.invalid = True
    return pdu, end


def _header_ok(data: bytes) -> bool | None:
    if len(data) < 24:
        return None
    cmd = _u16(data, 0)
    length = _u16(data, 2)
    status = _u32(data, 8)
    options = _u32(data, 20)
    if status not in STATUSES or cmd not in COMMANDS:
        return False
    if cmd == 0 and options != 0:
        return False
    if cmd == 0x65 and length != 4:
        return False
    if cmd == 0x66 and length not in (0, 4):
        return False
    return True


class EnipTx(Tx):
    __slots__ = ("request", "response")
    proto = "enip"

    def __init__(self, tx_id: int) -> None:
        super().__init__(tx_id)
        self.request: Pdu | None = None
        self.response: Pdu | None = None

    def pdu(self, to_server: bool) -> Pdu | None:
        return self.request if to_server else self.response

    def eve(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.request is not None:
            out["request"] = _pdu_eve(self.request)
        if self.response is not None:
            out["response"] = _pdu_eve(self.response)
        return out


def _cip_eve(c: Cip) -> dict[str, Any]:
    o: dict[str, Any] = {"service": CIP_SERVICES.get(c.service, f"unknown-{c.service}")}
    if c.request:
        if c.path:
            o["path"] = [{"segment_type": SEGMENT_TYPES.get(st >> 2, f"unknown-{st}"), "value": v}
                         for st, v in c.path]
            for st, v in reversed(c.path):
                if st & 0xFC == 0x20:
                    o["class_name"] = CIP_CLASSES.get(v, f"unknown-{v}")
                    break
    else:
        o["status"] = CIP_STATUS.get(c.status, f"unknown-{c.status}")
        if c.ext:
            o["status_extended"] = c.ext.hex()
    if c.multi:
        o["multiple"] = [_cip_eve(m) for m in c.multi]
    return o


def _pdu_eve(p: Pdu) -> dict[str, Any]:
    o: dict[str, Any] = {"command": COMMANDS.get(p.cmd, f"unknown-{p.cmd}"),
                         "status": STATUSES.get(p.status, f"unknown-{p.status}")}
    if p.options:
        o["options"] = p.options
    if p.cip is not None:
        o["cip"] = _cip_eve(p.cip)
    elif "protocol_version" in p.payload:
        o["register_session"] = dict(p.payload)
    elif p.payload.get("identity"):
        f = p.payload["identity"][0]
        o["identity"] = {"protocol_version": f["protocol_version"],
                         "revision": f"{f['revision_major']}.{f['revision_minor']}",
                         "vendor_id": VENDORS.get(f["vendor_id"], f"unknown-{f['vendor_id']}"),
                         "device_type": DEVICE_TYPES.get(f["device_type"], f"unknown-{f['device_type']}"),
                         "product_code": f["product_code"], "status": f["status"], "serial": f["serial"],
                         "product_name": f["product_name"].decode("utf-8", "replace"), "state": f["state"]}
    elif p.payload.get("services"):
        s = p.payload["services"][0]
        o["list_services"] = {"protocol_version": s["protocol_version"], "capabilities": s["capabilities"],
                              "service_name": s["service_name"].decode("utf-8", "replace")}
    return o


CIP_SERVICES = {1: "get_attribute_all", 2: "set_attribute_all", 3: "get_attribute_list", 4: "set_attribute_list",
                5: "reset", 6: "start", 7: "stop", 8: "create", 9: "delete", 10: "multiple_service_packet",
                13: "apply_attributes", 14: "get_attribute_single", 16: "set_attribute_single",
                17: "find_next_object_instance", 20: "error_response", 21: "restore", 22: "save", 23: "nop",
                24: "get_member", 25: "set_member", 26: "insert_member", 27: "remove_member", 28: "group_sync"}
CIP_STATUS = {0: "success"}
VENDORS = {1: "Rockwell Automation/Allen-Bradley"}       # Suricata logs ODVA's names: a few here
DEVICE_TYPES = {0: "Generic Device (deprecated)", 2: "AC Drive", 12: "Communications Adapter",
                14: "Programmable Logic Controller", 43: "Generic Device (keyable)"}
CIP_CLASSES: dict[int, str] = {}


class EnipParser:
    def __init__(self, settings: Any = None) -> None:
        self.txs: list[EnipTx] = []
        self.buf = [b"", b""]
        self.lost = [False, False]
        self.gap_ = [False, False]
        self.udp: bool | None = None
        self.open_from = 0          # the transactions before it are all answered or finished
        self.stream_frames = frames_for("enip")    # applayer/frames.py: None unless a rule reads ENIP frames

    def gap(self, to_server: bool, nbytes: int) -> None:
        d = int(to_server)
        if self.stream_frames is not None:
            self.stream_frames.gap(to_server, nbytes)
        self.buf[d] = b""
        self.gap_[d] = True

    def parse(self, data: bytes, to_server: bool, pkt: Any = None) -> None:
        d = int(to_server)
        if self.lost[d] or not data:
            return
        if self.udp is None:
            self.udp = pkt is not None and getattr(pkt, "proto", 6) == 17
        if self.udp:
            r = parse_pdu(data, 0)
            if r is None:
                raise ParserError("enip: datagram cut short")
            self._pdu(r[0], to_server)
            if self.stream_frames is not None:
                self._frames(data, 0, r[1], 0, to_server, r[0])
            return
        if self.stream_frames is not None:
            self.stream_frames.stream(to_server, data)
        buf = self.buf[d] + data if self.buf[d] else data
        if self.gap_[d]:
            if not _header_ok(buf):
                self.buf[d] = b""
                return
            self.gap_[d] = False
        off = 0
        while off < len(buf):
            r = parse_pdu(buf, off)
            if r is None:
                break
            pdu, end = r
            self._pdu(pdu, to_server)
            if self.stream_frames is not None:
                self._frames(buf, off, end, self.stream_frames.total[d] - len(buf), to_server, pdu)
            off = end
        self.buf[d] = buf[off:]

    def _frames(self, buf: bytes, off: int, end: int, base: int, to_server: bool, pdu: Pdu) -> None:
        """Suricata's ENIP frames of the PDU at buf[off:end] (rust/src/enip/enip.rs
        process_frames): `hdr`, `data`, `pdu`, each `enip.item` of a list or CIP command,
        and each CIP message (`cip`: a data item's, then each member of a Multiple Service
        Packet, as long as Suricata's parser reads of it). `base`: buf[0]'s stream offset."""
        fr = self.stream_frames
        tx_id = next((tx.tx_id for tx in reversed(self.txs[-4:]) if tx.request is pdu or tx.response is pdu), None)
        at = base + off
        p = buf[off:end]
        fr.add(to_server, "hdr", at, p[:24], 24, tx_id)
        fr.add(to_server, "data", at + 24, p[24:], len(p) - 24, tx_id)
        fr.add(to_server, "pdu", at, p, len(p), tx_id)
        if pdu.cmd in (0x63, 0x64, 0x04):
            pos = 26
        elif pdu.cmd in (0x6F, 0x70):
            pos = 32
        else:
            return
        try:
            n = _u16(p, pos - 2) if len(p) >= pos else 0
            items = []
            for _ in range(n):
                t, ln = _u16(p, pos), _u16(p, pos + 2)
                if pos + 4 + ln > len(p):
                    break
                items.append((pos, t, ln))
                pos += 4 + ln
            for start, _t, ln in items:
                fr.add(to_server, "enip.item", at + start, p[start:start + 4 + ln], 4 + ln, tx_id)
            if pdu.cmd not in (0x6F, 0x70):
                return
            for start, t, ln in items:
                if t not in (ITEM_UNCONNECTED_DATA, ITEM_CONNECTED_DATA):
                    continue
                cip = start + 4 + (2 if t == ITEM_CONNECTED_DATA else 0)
                fr.add(to_server, "cip", at + cip, p[cip:cip + ln], ln, tx_id)
                for moff, size in _multi_members(p[cip:start + 4 + ln]):
                    fr.add(to_server, "cip", at + cip + moff, p[cip + moff:cip + moff + size], size, tx_id)
        except (_Bad, IndexError):
            return

    def _pdu(self, pdu: Pdu, to_server: bool) -> None:
        txs = self.txs
        i = self.open_from
        while i < len(txs) and txs[i].done[0]:
            i += 1
        self.open_from = i
        if not to_server:
            for tx in txs[i:]:
                req = tx.request
                if req is not None and tx.response is None and not tx.done[0]:
                    tx.done[0] = True      # a request passed over by a response is finished
                    tx.touch(False)
                    if _matches(req, pdu):
                        tx.response = pdu
                        if pdu.invalid:
                            tx.add_event("invalid_pdu")
                        return
            # (a response with no request: a transaction of its own, below)
        if len(txs) - self.open_from >= MAX_TX:
            first = True
            for tx in txs[self.open_from:]:
                if not tx.done[0] or not tx.done[1]:
                    tx.done[0] = tx.done[1] = True
                    if first:
                        tx.add_event("too_many_transactions")
                        first = False
                    tx.touch(True)
                    tx.touch(False)
            return
        tx = EnipTx(len(self.txs))
        self.txs.append(tx)
        if pdu.invalid:
            tx.add_event("invalid_pdu")
        if to_server:
            tx.request = pdu
            tx.done[1] = True
            tx.touch(True)
        else:
            tx.response = pdu
            tx.done[0] = tx.done[1] = True
            tx.touch(False)


def _cip_head(b: bytes, multi: bool) -> int:
    """How many bytes of the CIP message `b` Suricata's parser reads (service, path or
    status, a Get/SetAttributeList's list): a Multiple Service Packet member's frame length."""
    if b[0] & 0x80 == 0:
        n = 2 + 2 * b[1]
        if len(b) < n:
            raise _Bad()
        if b[0] == CIP_GET_ATTR_LIST:
            n += 2 + 2 * _u16(b, n)
        elif b[0] == CIP_SET_ATTR_LIST:
            n += 2 + (4 if _u16(b, n) else 0)
        return n
    if len(b) < 4:
        raise _Bad()
    return 4 + b[3]


def _multi_members(b: bytes) -> list[tuple[int, int]]:
    """(offset, length) in CIP message `b` of each member of a Multiple Service Packet."""
    if not b or b[0] & 0x7F != CIP_MULTIPLE:
        return []
    head = _cip_head(b, False) if b[0] & 0x80 else 2 + 2 * b[1]
    out = []
    n = _u16(b, head)
    for i in range(n):
        o = _u16(b, head + 2 + 2 * i)
        if head + o >= len(b):
            raise _Bad()
        out.append((head + o, min(_cip_head(b[head + o:], False), len(b) - head - o)))
    return out


def _matches(req: Pdu, resp: Pdu) -> bool:
    if req.cmd != resp.cmd:
        return False
    if req.session != resp.session and req.cmd != 0x65:
        return False
    if (len(req.items) >= 2 and len(resp.items) >= 2 and req.items[1] == ITEM_CONNECTED_DATA
            and resp.items[1] == ITEM_CONNECTED_DATA):
        return req.seq is not None and req.seq == resp.seq
    return True


def probe(data: bytes, to_server: bool) -> bool | None:
    try:
        r = _header_ok(data)
    except _Bad:
        return False
    return r


def _product_name(tx: EnipTx, to_server: bool) -> bytes | None:
    r = tx.response
    if r is None or not r.payload.get("identity"):
        return None
    return r.payload["identity"][0]["product_name"]


def _service_name(tx: EnipTx, to_server: bool) -> bytes | None:
    r = tx.response
    if r is None or not r.payload.get("services"):
        return None
    return r.payload["services"][0]["service_name"]


# Suricata's ENIP frames (rust/src/enip/enip.rs EnipFrameType), marked by EnipParser._frames
register_stream_frames("enip", ("hdr", "data", "pdu", "cip", "enip.item"))
register_buffer("enip.product_name", "enip", TO_CLIENT, _product_name)
register_buffer("enip.service_name", "enip", TO_CLIENT, _service_name)
register_protocol(Protocol("enip", (6, 17), probe, EnipParser, (44818,), port_decides=(), ports_only=True))
