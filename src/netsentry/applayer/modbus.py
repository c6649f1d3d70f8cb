"""Modbus/TCP on port 502, as Suricata's modbus parser (rust/src/modbus/, which reads
messages with the sawp-modbus crate): transactions, the `modbus:` keyword's values, the EVE
`modbus` record and events.

- Detection by port only (Protocol.ports_only): an MBAP header with protocol id 0 and a
  length of at least 2.
- A message: MBAP header (transaction id, protocol id, length, unit id), function code
  (bit 7: an exception response), then data read as the function and direction say: read
  requests (address, quantity), read responses (byte count, data), single/multiple/mask
  writes, diagnostics (sub-function), MEI (type), exceptions. What does not fit is kept
  as bytes.
- Each message is classified as sawp does: its access type (READ, WRITE, COILS, HOLDING,
  ...; written as sawp's flag names joined by " | ") and its function code category
  (PUBLIC_ASSIGNED, PUBLIC_UNASSIGNED, USER_DEFINED, RESERVED, NONE); checks raise error
  flags (DATA_VALUE, DATA_LENGTH, EXC_CODE) that become events.
- A response joins the request with the same transaction id, unit id, function and
  access type; a response without one is a transaction of its own
  (unsolicited_response). 500 unanswered requests: flooded, and the parser gives up.
- Events (`app-layer-event:modbus.NAME`): unsolicited_response, invalid_function_code,
  invalid_length, invalid_value, invalid_exception_code, value_mismatch, flooded,
  invalid_protocol_id.
"""

from __future__ import annotations

from typing import Any

from netsentry.applayer.registry import BOTH, ParserError, Protocol, register_protocol
from netsentry.applayer.tx import Tx

EVENTS: dict[str, int | None] = {n: BOTH for n in (
    "unsolicited_response", "invalid_function_code", "invalid_length", "invalid_value",
    "invalid_exception_code", "value_mismatch", "flooded", "invalid_protocol_id")}
REQUEST_FLOOD = 500

# access type flags (sawp-modbus AccessType), in the order sawp writes them
READ, WRITE, DISCRETES, COILS, INPUT, HOLDING, SINGLE, MULTIPLE = 1, 2, 4, 8, 16, 32, 64, 128
_ACCESS_NAMES = (("READ", READ), ("WRITE", WRITE), ("DISCRETES", DISCRETES), ("COILS", COILS),
                 ("INPUT", INPUT), ("HOLDING", HOLDING), ("SINGLE", SINGLE), ("MULTIPLE", MULTIPLE),
                 ("BIT_ACCESS_MASK", DISCRETES | COILS), ("FUNC_MASK", DISCRETES | COILS | INPUT | HOLDING),
                 ("WRITE_SINGLE", WRITE | SINGLE), ("WRITE_MULTIPLE", WRITE | MULTIPLE))
BIT_ACCESS = DISCRETES | COILS
FUNC_MASK = DISCRETES | COILS | INPUT | HOLDING
ACCESS_WORDS = {"read": READ, "write": WRITE, "discretes": DISCRETES, "coils": COILS, "input": INPUT,
                "holding": HOLDING}
# categories
ASSIGNED, UNASSIGNED, USER, RESERVED = 1, 2, 4, 8
_CATEGORY_NAMES = (("PUBLIC_ASSIGNED", ASSIGNED), ("PUBLIC_UNASSIGNED", UNASSIGNED), ("USER_DEFINED", USER),
                   ("RESERVED", RESERVED))
# error flags
DATA_VALUE, DATA_LENGTH, EXC_CODE = 1, 2, 4
_ERROR_NAMES = (("DATA_VALUE", DATA_VALUE), ("DATA_LENGTH", DATA_LENGTH), ("EXC_CODE", EXC_CODE))

FUNCTIONS = {1: "RdCoils", 2: "RdDiscreteInputs", 3: "RdHoldRegs", 4: "RdInputRegs", 5: "WrSingleCoil",
             6: "WrSingleReg", 7: "RdExcStatus", 8: "Diagnostic", 9: "Program484", 10: "Poll484",
             11: "GetCommEventCtr", 12: "GetCommEventLog", 13: "ProgramController", 14: "PollController",
             15: "WrMultCoils", 16: "WrMultRegs", 17: "ReportServerID", 18: "Program884", 19: "ResetCommLink",
             20: "RdFileRec", 21: "WrFileRec", 22: "MaskWrReg", 23: "RdWrMultRegs", 24: "RdFIFOQueue",
             0x2B: "MEI"}
ACCESS = {1: COILS | READ, 2: DISCRETES | READ, 3: HOLDING | READ, 4: INPUT | READ,
          5: COILS | WRITE | SINGLE, 6: HOLDING | WRITE | SINGLE, 15: COILS | WRITE | MULTIPLE,
          16: HOLDING | WRITE | MULTIPLE, 22: HOLDING | WRITE, 23: HOLDING | READ | WRITE | MULTIPLE}
DIAGNOSTICS = {0: "RetQueryData", 1: "RestartCommOpt", 2: "RetDiagReg", 3: "ChangeInputDelimiter",
               4: "ForceListenOnlyMode", 10: "ClearCtrDiagReg", 11: "RetBusMsgCount", 12: "RetBusCommErrCount",
               13: "RetBusExcErrCount", 14: "RetServerMsgCount", 15: "RetServerNoRespCount",
               16: "RetServerNAKCount", 17: "RetServerBusyCount", 18: "RetBusCharOverrunCount",
               19: "RetOverrunErrCount", 20: "ClearOverrunCounterFlag", 21: "GetClearPlusStats"}
MEI_TYPES = {13: "CANOpenGenRefReqResp", 14: "RdDevId"}
EXCEPTIONS = {1: "IllegalFunction", 2: "IllegalDataAddr", 3: "IllegalDataValue", 4: "ServerDeviceFail",
              5: "Ack", 6: "ServerDeviceBusy", 7: "NegAck", 8: "MemParityErr", 10: "GatewayPathUnavailable",
              11: "GatewayTargetFailToResp"}


def flag_names(value: int, names: tuple[tuple[str, int], ...]) -> str:
    """bitflags' Debug form: every named flag the value holds, " | " between; NONE for none."""
    if not value:
        return "NONE"
    return " | ".join(n for n, bit in names if value & bit == bit)


def _category_of(raw: int) -> int:
    for bound, cat in ((1, 0), (9, UNASSIGNED), (15, RESERVED), (41, UNASSIGNED), (43, RESERVED),
                       (65, UNASSIGNED), (73, USER), (90, UNASSIGNED), (92, RESERVED), (100, UNASSIGNED),
                       (111, USER), (125, UNASSIGNED), (128, RESERVED)):
        if raw < bound:
            return cat
    return 0


class _Short(Exception):
    pass


class _Bad(Exception):
    pass


class Message:
    __slots__ = ("transaction_id", "protocol_id", "length", "unit_id", "raw", "code", "access", "category",
                 "flags", "kind", "data")

    def data_length(self) -> int:
        return self.length - 2

    def address_range(self) -> tuple[int, int] | None:
        k, d = self.kind, self.data
        if k in ("write_other", "write_mask"):
            return d["address"] + 1, d["address"] + 1
        if k in ("read_request", "write_mult", "read_write"):
            q = d["quantity"]
            if q > 0:
                return d["address"] + 1, d["address"] + q
        return None

    def write_value_at(self, address: int) -> int | None:
        rng = self.address_range()
        if rng is not None and not rng[0] <= address <= rng[1]:
            return None
        if self.access & SINGLE:
            if self.kind != "write_other":
                return None
            v = self.data["data"]
            return int(v != 0) if self.access & COILS else v
        if self.access & MULTIPLE:
            if self.kind not in ("write_mult", "read_write"):
                return None
            start = self.data["address"]
            data = self.data["values"]
            if start == 0xFFFF or start >= address:
                return None
            off = (address - (start + 1)) * 2
            if self.access & COILS:
                off >>= 3
            if off + 1 >= len(data):
                return None
            v = data[off] << 8 | data[off + 1]
            if self.access & COILS:
                v = (v >> ((address - (start + 1)) & 7)) & 1
            return v
        return None


def parse_message(b: bytes, off: int, to_server: bool | None) -> tuple[Message, int]:
    """The message at `off`: (message, end). _Short: cut short; _Bad: not Modbus."""
    if len(b) - off < 6:
        raise _Short()
    m = Message()
    m.transaction_id = b[off] << 8 | b[off + 1]
    m.protocol_id = b[off + 2] << 8 | b[off + 3]
    if m.protocol_id != 0:
        raise _Bad()
    m.length = b[off + 4] << 8 | b[off + 5]
    if m.length < 2:
        raise _Bad()
    end = off + 6 + m.length
    if end > len(b):
        raise _Short()
    m.unit_id = b[off + 6]
    m.raw = b[off + 7]
    base = m.raw & 0x7F if m.raw >= 0x80 else m.raw
    m.code = FUNCTIONS.get(base, "Unknown")
    m.access = ACCESS.get(base, 0) if m.code != "Unknown" else 0
    m.flags = 0
    m.kind, m.data = "empty", None
    body = b[off + 8:end]
    if to_server is True:
        _request(m, body)
    elif to_server is False:
        _response(m, body)
    else:
        _unknown(m, body)
    m.category = _category(m)
    return m, end


def _u16(b: bytes, o: int) -> int:
    if o + 2 > len(b):
        raise _Bad()
    return b[o] << 8 | b[o + 1]


def _category(m: Message) -> int:
    if m.code == "Diagnostic":
        if m.kind != "diagnostic":
            return 0
        return RESERVED if m.data["code"] == "Reserved" else ASSIGNED
    if m.code == "MEI":
        if m.kind != "mei":
            return 0
        return RESERVED if m.data["code"] == "Unknown" else ASSIGNED
    if m.code == "Unknown":
        return _category_of(m.raw)
    return ASSIGNED


def _exception(m: Message, body: bytes) -> None:
    if not body:
        raise _Bad()
    raw = body[0]
    code = EXCEPTIONS.get(raw, "Unknown")
    if code == "IllegalDataValue" and m.code == "Diagnostic":
        m.flags |= EXC_CODE
    elif code == "IllegalDataAddr" and (6 < (m.raw & 0x7F) < 15 or 16 < (m.raw & 0x7F) < 22):
        m.flags |= EXC_CODE
    elif code == "MemParityErr" and m.code not in ("RdFileRec", "WrFileRec"):
        m.flags |= EXC_CODE
    m.kind, m.data = "exception", {"raw": raw, "code": code}


def _diagnostic(m: Message, body: bytes) -> None:
    if m.data_length() < 2:
        raise _Bad()
    raw = _u16(body, 0)
    m.kind, m.data = "diagnostic", {"raw": raw, "code": DIAGNOSTICS.get(raw, "Reserved"), "data": body[2:]}


def _mei(m: Message, body: bytes) -> None:
    if m.data_length() < 1:
        raise _Bad()
    m.kind, m.data = "mei", {"raw": body[0], "code": MEI_TYPES.get(body[0], "Unknown"), "data": body[1:]}


def _bytes(m: Message, body: bytes) -> None:
    m.kind, m.data = "bytes", body


def _read_request(m: Message, body: bytes) -> int:
    address, quantity = _u16(body, 0), _u16(body, 2)
    if quantity == 0:
        m.flags |= DATA_VALUE
    if m.code != "RdWrMultRegs" and m.data_length() > 4:
        m.flags |= DATA_LENGTH
    if quantity > (2000 if m.access & BIT_ACCESS else 125):
        m.flags |= DATA_VALUE
    m.kind, m.data = "read_request", {"address": address, "quantity": quantity}
    return 4


def _write_request(m: Message, body: bytes, p: int) -> None:
    address = _u16(body, p)
    if m.access & SINGLE:
        data = _u16(body, p + 2)
        if m.data_length() > 4:
            m.flags |= DATA_LENGTH
        if m.access & COILS and data not in (0, 0xFF00):
            m.flags |= DATA_VALUE
        m.kind, m.data = "write_other", {"address": address, "data": data}
    elif m.access & MULTIPLE:
        quantity = _u16(body, p + 2)
        if p + 4 >= len(body):
            raise _Bad()
        count = body[p + 4]
        offset = 11 if m.code == "RdWrMultRegs" else 7
        if quantity == 0 or m.length - offset != count:
            m.flags |= DATA_VALUE
        if m.access & BIT_ACCESS:
            if quantity > 2000 or quantity != count // 8 + (count % 8 != 0):
                m.flags |= DATA_VALUE
        elif quantity > 125 or count != 2 * quantity:
            m.flags |= DATA_VALUE
        values = body[p + 5:p + 5 + max(m.length - offset, 0)]
        w = {"address": address, "quantity": quantity, "values": values}
        if m.kind == "read_request":
            m.kind, m.data = "read_write", {"read": m.data, **w}
        else:
            m.kind, m.data = "write_mult", w
    else:
        and_mask, or_mask = _u16(body, p + 2), _u16(body, p + 4)
        if m.data_length() > 6:
            m.flags |= DATA_LENGTH
        m.kind, m.data = "write_mask", {"address": address, "and_mask": and_mask, "or_mask": or_mask}


def _request(m: Message, body: bytes) -> None:
    code, dl = m.code, m.data_length()
    if code == "Diagnostic":
        if dl != 4:
            m.flags |= DATA_LENGTH
        _diagnostic(m, body)
        return
    if code == "MEI":
        _mei(m, body)
        return
    if code in ("RdFileRec", "WrFileRec") and dl == 0:
        m.flags |= DATA_LENGTH
    elif code in ("RdExcStatus", "GetCommEventCtr", "GetCommEventLog", "ReportServerID") and dl > 0:
        m.flags |= DATA_LENGTH
    elif code == "RdFIFOQueue" and dl != 2:
        m.flags |= DATA_LENGTH
    elif m.access & READ:
        p = _read_request(m, body)
        if m.access & WRITE:
            _write_request(m, body, p)
        return
    elif m.access & WRITE:
        _write_request(m, body, 0)
        return
    _bytes(m, body)


def _response(m: Message, body: bytes) -> None:
    code, dl = m.code, m.data_length()
    if m.raw >= 0x80:
        _exception(m, body)
        return
    if code == "Diagnostic":
        _diagnostic(m, body)
        return
    if code == "MEI":
        _mei(m, body)
        return
    if code == "RdExcStatus" and dl != 1:
        m.flags |= DATA_LENGTH
    elif code == "GetCommEventCtr" and dl != 4:
        m.flags |= DATA_LENGTH
    elif m.access & READ:
        if dl < 1:
            raise _Bad()
        count = body[0]
        if not 1 <= count <= 250 or dl - 1 != count:
            m.flags |= DATA_VALUE
        m.kind, m.data = "read_response", body[1:]
        return
    elif m.access & WRITE:
        address = _u16(body, 0)
        if m.access & (SINGLE | MULTIPLE):
            data = _u16(body, 2)
            if dl > 4:
                m.flags |= DATA_LENGTH
            if m.access & MULTIPLE:
                if data == 0 or data > (125 if m.access & BIT_ACCESS else 2000):
                    m.flags |= DATA_VALUE
            m.kind, m.data = "write_other", {"address": address, "data": data}
        else:
            if dl > 6:
                m.flags |= DATA_LENGTH
            m.kind, m.data = "write_mask", {"address": address, "and_mask": _u16(body, 2),
                                            "or_mask": _u16(body, 4)}
        return
    _bytes(m, body)


def _unknown(m: Message, body: bytes) -> None:
    if m.raw >= 0x80:
        _exception(m, body)
    elif m.code == "Diagnostic":
        _diagnostic(m, body)
    elif m.code == "MEI":
        _mei(m, body)
    else:
        _bytes(m, body)


def _matches(resp: Message, req: Message) -> bool:
    """sawp's Message::matches (the response's side): same ids, function, access type; for
    assigned functions the data agrees (a disagreement flags DATA_VALUE)."""
    if (resp.transaction_id != req.transaction_id or resp.unit_id != req.unit_id or resp.code != req.code
            or resp.access != req.access):
        return False
    if resp.category != ASSIGNED or req.kind == "exception" or resp.kind in ("exception", "bytes"):
        return True
    k, o = resp.kind, req.kind
    if k == "read_response":
        if o not in ("read_request", "read_write"):
            return False
        q = req.data["quantity"] if o == "read_request" else req.data["read"]["quantity"]
        n = len(resp.data)
        if resp.code != "RdWrMultRegs":
            if n != q // 8 + (q % 8 != 0):
                resp.flags |= DATA_VALUE
        elif n != 2 * q:
            resp.flags |= DATA_VALUE
        return True
    if k == "write_other":
        if o == "write_other":
            if resp.data != req.data:
                resp.flags |= DATA_VALUE
            return True
        if o == "write_mult":
            if resp.data["address"] != req.data["address"] or resp.data["data"] != req.data["quantity"]:
                resp.flags |= DATA_VALUE
            return True
        return False
    if k == "write_mask":
        if o == "write_mask":
            if resp.data != req.data:
                resp.flags |= DATA_VALUE
            return True
        return False
    if k in ("diagnostic", "mei"):
        return o == k and resp.data["raw"] == req.data["raw"]
    return True


def _message_eve(m: Message) -> dict[str, Any]:
    o: dict[str, Any] = {"transaction_id": m.transaction_id, "protocol_id": m.protocol_id, "unit_id": m.unit_id,
                         "function_raw": m.raw, "function_code": m.code,
                         "access_type": flag_names(m.access, _ACCESS_NAMES),
                         "category": flag_names(m.category, _CATEGORY_NAMES),
                         "error_flags": flag_names(m.flags, _ERROR_NAMES)}
    k, d = m.kind, m.data
    text = (lambda v: v.decode("utf-8", "replace"))
    if k == "exception":
        o["exception"] = {"raw": d["raw"], "code": d["code"]}
    elif k == "diagnostic":
        o["diagnostic"] = {"raw": d["raw"], "code": d["code"], "data": text(d["data"])}
    elif k == "mei":
        o["mei"] = {"raw": d["raw"], "code": d["code"], "data": text(d["data"])}
    elif k == "read_request":
        o["read"] = {"address": d["address"], "quantity": d["quantity"]}
    elif k == "read_response":
        o["read"] = {"data": text(d)}
    elif k == "read_write":
        o["read"] = dict(d["read"])
        o["write"] = {"address": d["address"], "quantity": d["quantity"], "data": text(d["values"])}
    elif k == "write_mult":
        o["write"] = {"address": d["address"], "quantity": d["quantity"], "data": text(d["values"])}
    elif k in ("write_other", "write_mask"):
        o["write"] = dict(d)
    elif k == "bytes":
        o["data"] = text(d)
    return o


class ModbusTx(Tx):
    __slots__ = ("request", "response")
    proto = "modbus"

    def __init__(self, tx_id: int) -> None:
        super().__init__(tx_id)
        self.request: Message | None = None
        self.response: Message | None = None

    def eve(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.tx_id + 1}
        if self.request is not None:
            out["request"] = _message_eve(self.request)
        if self.response is not None:
            out["response"] = _message_eve(self.response)
        return out


def _flag_events(tx: ModbusTx, flags: int) -> None:
    if flags & DATA_VALUE:
        tx.add_event("invalid_value")
    if flags & DATA_LENGTH:
        tx.add_event("invalid_length")
    if flags & EXC_CODE:
        tx.add_event("invalid_exception_code")


class ModbusParser:
    def __init__(self, settings: Any = None) -> None:
        self.txs: list[ModbusTx] = []
        self.buf = [b"", b""]
        self.lost = [False, False]
        self.givenup = False
        self.open_from = 0          # transactions before it have both sides

    def gap(self, to_server: bool, nbytes: int) -> None:
        d = int(to_server)
        self.buf[d] = b""
        self.lost[d] = True

    def parse(self, data: bytes, to_server: bool, pkt: Any = None) -> None:
        d = int(to_server)
        if self.lost[d] or not data:
            return
        buf = self.buf[d] + data if self.buf[d] else data
        off = 0
        while off < len(buf):
            try:
                m, end = parse_message(buf, off, to_server)
            except _Short:
                break
            except (_Bad, IndexError):
                self.lost[d] = True
                self.buf[d] = b""
                raise ParserError("modbus: not a Modbus message") from None
            off = end
            if not self._message(m, to_server):
                self.lost[d] = True
                self.buf[d] = b""
                raise ParserError("modbus: request flood, parser gave up")
        self.buf[d] = buf[off:]

    def _open(self) -> list[ModbusTx]:
        txs = self.txs
        i = self.open_from
        while i < len(txs) and txs[i].request is not None and txs[i].response is not None:
            i += 1
        self.open_from = i
        return txs[i:]

    def _new(self) -> ModbusTx | None:
        if self.givenup:
            return None
        tx = ModbusTx(len(self.txs))
        if len(self.txs) - self.open_from >= REQUEST_FLOOD:
            tx.add_event("flooded")
            self.givenup = True
        self.txs.append(tx)
        return tx

    def _message(self, m: Message, to_server: bool) -> bool:
        if to_server:
            for tx in self._open():
                r = tx.response
                if tx.request is None and r is not None and _matches(m, r):
                    _flag_events(tx, m.flags)
                    tx.request = m
                    tx.done[1] = True
                    tx.touch(True)
                    return True
            tx = self._new()
            if tx is None:
                return False
            _flag_events(tx, m.flags)
            tx.request = m
            tx.done[1] = True
            tx.touch(True)
            return True
        for tx in self._open():
            req = tx.request
            if req is not None and tx.response is None and _matches(m, req):
                self._response_events(tx, m)
                tx.response = m
                tx.done[0] = True
                tx.touch(False)
                return True
        tx = self._new()
        if tx is None:
            return False
        self._response_events(tx, m)
        tx.response = m
        tx.add_event("unsolicited_response")
        tx.done[0] = tx.done[1] = True
        tx.touch(False)
        return True

    @staticmethod
    def _response_events(tx: ModbusTx, m: Message) -> None:
        if m.access & (READ | WRITE) and m.flags & (DATA_LENGTH | DATA_VALUE):
            tx.add_event("value_mismatch")
        else:
            _flag_events(tx, m.flags)


def probe(data: bytes, to_server: bool) -> bool | None:
    """sawp's probe: a whole message (read with no direction) is Modbus."""
    try:
        parse_message(data, 0, None)
    except _Short:
        return None
    except (_Bad, IndexError):
        return False
    return True


register_protocol(Protocol("modbus", (6,), probe, ModbusParser, (502,), port_decides=(), ports_only=True))
