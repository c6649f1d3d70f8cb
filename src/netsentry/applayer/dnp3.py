"""DNP3 over TCP (port 20000), as Suricata's dnp3 parser (app-layer-dnp3.c): link-layer
frames with their CRCs, transport-layer reassembly, application headers and object
headers; the `dnp3_func`, `dnp3_ind`, `dnp3_obj` and `dnp3_data` keywords, the EVE `dnp3`
record and events.

- Detection by port only (Protocol.ports_only): the start bytes 0x05 0x64 and a link
  length of at least 5; a frame from the other side's point of view (its DIR bit) turns
  the flow round.
- Link layer: every frame's header CRC is checked (bad_link_crc: the direction stops,
  an app-layer error), its length says how many 16-byte blocks (each with its own CRC)
  follow. Only user-data frames are read; a block with a bad CRC drops the frame
  (bad_transport_crc).
- Transport: a segment with FIR opens a transaction (a request to the server, a
  response to the client; application confirms are passed over); one without joins the
  open transaction of the same addresses whose sequence number it follows; FIN completes
  it. The reassembled application data is `dnp3_data` (CRCs and transport headers
  taken out); beyond 63 * 255 bytes: too_long_reassembly, and the transaction is done.
- Application layer: function code (`dnp3_func`), internal indications of a response
  (`dnp3_ind`), then object headers (group, variation, qualifier, range). The objects of
  the common fixed-size groups are stepped over to the next header (`dnp3_obj`); the
  points counted (max-points, 16384: too_many_points) and headers counted (max-objects,
  2048: too_many_objects) as Suricata's `app-layer.protocols.dnp3.max-points` /
  `max-objects` defaults.
- More than 32 unanswered requests: flooded (once, until answers catch up).
"""

from __future__ import annotations

from typing import Any

from netsentry.applayer.registry import BOTH, ParserError, Protocol, register_buffer, register_protocol
from netsentry.applayer.tx import Tx
from netsentry.config import ConfigError, get

EVENTS: dict[str, int | None] = {n: BOTH for n in (
    "flooded", "len_too_small", "bad_link_crc", "bad_transport_crc", "malformed", "unknown_object",
    "too_many_points", "too_many_objects", "too_long_reassembly")}
MAX_TX = 32
MAX_POINTS = 16384
MAX_OBJECTS = 2048
MAX_REASSEMBLY = 63 * 0xFF
BLOCK = 16


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA6BC if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC = _crc_table()


def crc(data: bytes) -> int:
    c = 0
    for b in data:
        c = _CRC[(c ^ b) & 0xFF] ^ (c >> 8)
    return ~c & 0xFFFF


def _crc_ok(block: bytes) -> bool:
    if len(block) < 3:
        return False
    c = crc(block[:-2])
    return block[-2] == c & 0xFF and block[-1] == c >> 8


def frame_length(link_len: int) -> int:
    """The frame's whole length with the blocks' CRCs (0: too short to be one)."""
    if link_len < 5:
        return 0
    n = link_len - 5
    full, rem = divmod(n, BLOCK)
    return 10 + full * (BLOCK + 2) + (rem + 2 if rem else 0)


def _user_blocks(body: bytes) -> bytes | None:
    """The user data of a frame's blocks, their CRCs checked and taken out; None: a bad CRC."""
    out = bytearray()
    for off in range(0, len(body), BLOCK + 2):
        block = body[off:off + BLOCK + 2]
        if not _crc_ok(block):
            return None
        out += block[:-2]
    return bytes(out)


FUNCTIONS = {0: "confirm", 1: "read", 2: "write", 3: "select", 4: "operate", 5: "direct_operate",
             6: "direct_operate_nr", 7: "immed_freeze", 8: "immed_freeze_nr", 9: "freeze_clear",
             10: "freeze_clear_nr", 11: "freeze_at_time", 12: "freeze_at_time_nr", 13: "cold_restart",
             14: "warm_restart", 15: "initialize_data", 16: "initialize_appl", 17: "start_appl",
             18: "stop_appl", 19: "save_config", 20: "enable_unsolicited", 21: "disable_unsolicited",
             22: "assign_class", 23: "delay_measure", 24: "record_current_time", 25: "open_file",
             26: "close_file", 27: "delete_file", 28: "get_file_info", 29: "authenticate_file",
             30: "abort_file", 31: "activate_config", 32: "autenthicate_req", 33: "autenthicate_err",
             129: "response", 130: "unsolicited_response", 131: "authenticate_resp"}
FUNCTION_CODES = {v: k for k, v in FUNCTIONS.items()}
IND_FLAGS = {"device_restart": 0x8000, "device_trouble": 0x4000, "local_control": 0x2000, "need_time": 0x1000,
             "class_3_events": 0x0800, "class_2_events": 0x0400, "class_1_events": 0x0200,
             "all_stations": 0x0100, "reserved_1": 0x0080, "reserved_2": 0x0040, "config_corrupt": 0x0020,
             "already_executing": 0x0010, "event_buffer_overflow": 0x0008, "parameter_error": 0x0004,
             "object_unknown": 0x0002, "no_func_code_support": 0x0001}

# object sizes in bytes (negative: bits per point, packed) of the fixed-size group/variations
SIZES = {(1, 1): -1, (1, 2): 1, (2, 1): 1, (2, 2): 7, (2, 3): 3, (3, 1): -2, (3, 2): 1, (4, 1): 1, (4, 2): 7,
         (4, 3): 3, (10, 1): -1, (10, 2): 1, (11, 1): 1, (11, 2): 7, (12, 1): 11, (13, 1): 1, (13, 2): 7,
         (20, 1): 5, (20, 2): 3, (20, 5): 4, (20, 6): 2, (21, 1): 5, (21, 2): 3, (21, 5): 11, (21, 6): 9,
         (21, 9): 4, (21, 10): 2, (22, 1): 5, (22, 2): 3, (22, 5): 11, (22, 6): 9, (23, 1): 5, (23, 2): 3,
         (23, 5): 11, (23, 6): 9, (30, 1): 5, (30, 2): 3, (30, 3): 4, (30, 4): 2, (30, 5): 5, (30, 6): 9,
         (31, 1): 5, (31, 2): 3, (31, 3): 11, (31, 4): 9, (31, 5): 4, (31, 6): 2, (32, 1): 5, (32, 2): 3,
         (32, 3): 11, (32, 4): 9, (32, 5): 5, (32, 6): 9, (32, 7): 11, (32, 8): 15, (33, 1): 5, (33, 2): 3,
         (33, 3): 11, (33, 4): 9, (34, 1): 2, (34, 2): 4, (34, 3): 4, (40, 1): 5, (40, 2): 3, (40, 3): 5,
         (40, 4): 9, (41, 1): 5, (41, 2): 3, (41, 3): 5, (41, 4): 9, (42, 1): 5, (42, 2): 3, (50, 1): 6,
         (50, 2): 10, (50, 3): 6, (51, 1): 6, (51, 2): 6, (52, 1): 2, (52, 2): 2, (80, 1): -1}
_PREFIX = {0: 0, 1: 1, 2: 2, 3: 4}
_RANGE = {0: 2, 3: 2, 1: 4, 4: 4, 2: 8, 5: 8, 6: 0, 7: 1, 8: 2, 9: 4, 0x0B: 1}


class Dnp3Tx(Tx):
    __slots__ = ("request", "src", "dst", "th", "fc", "iin", "buffer", "objects", "finished", "control", "all_read")
    proto = "dnp3"

    def __init__(self, tx_id: int, request: bool, header: bytes, th: int) -> None:
        super().__init__(tx_id)
        self.request = request
        self.control = header[3]
        self.dst = header[4] | header[5] << 8
        self.src = header[6] | header[7] << 8
        self.th = th
        self.fc = 0
        self.iin = 0
        self.buffer = bytearray()
        # (group, variation, qualifier, count, start, stop)
        self.objects: list[tuple[int, int, int, int, int, int]] = []
        self.finished = False
        self.all_read = False           # every object header of the message was read

    def one_way(self) -> bool | None:
        return self.request

    def _body(self) -> dict[str, Any]:
        c = self.control
        b = bytes(self.buffer)
        ac = b[0] if b else 0
        out: dict[str, Any] = {
            "control": {"dir": bool(c & 0x80), "pri": bool(c & 0x40), "fcb": bool(c & 0x20),
                        "fcv": bool(c & 0x10), "function_code": c & 0x0F},
            "src": self.src, "dst": self.dst,
            "application": {"control": {"fir": bool(ac & 0x80), "fin": bool(ac & 0x40), "con": bool(ac & 0x20),
                                        "uns": bool(ac & 0x10), "sequence": ac & 0x0F},
                            "function_code": self.fc,
                            "objects": [{"group": g, "variation": v, "qualifier": q, "prefix_code": (q >> 4) & 7,
                                         "range_code": q & 0x0F, "start": st, "stop": sp, "count": n}
                                        for g, v, q, n, st, sp in self.objects],
                            "complete": self.all_read}}
        if not self.objects:
            del out["application"]["objects"]
        if not self.request:
            out["iin"] = {"indicators": [name for name, bit in IND_FLAGS.items() if self.iin & bit]}
            if not out["iin"]["indicators"]:
                del out["iin"]["indicators"]
        return out

    def eve(self) -> dict[str, Any]:
        return {"type": "request" if self.request else "response", **self._body()}

    def alert_eve(self) -> dict[str, Any]:
        return {"request" if self.request else "response": self._body()}


def configure(config: Any) -> dict[str, Any]:
    """`app-layer.protocols.dnp3.{request-flood, max-points, max-objects}` (0: no limit)."""
    out = {}
    for key, default in (("request-flood", MAX_TX), ("max-points", MAX_POINTS), ("max-objects", MAX_OBJECTS)):
        v = get(config, f"app-layer.protocols.dnp3.{key}", default)
        try:
            n = int(v)
        except (TypeError, ValueError):
            raise ConfigError(f"expected a number, got {v!r}", f"app-layer.protocols.dnp3.{key}") from None
        if n < 0:
            raise ConfigError(f"expected a number of at least 0, got {v!r}", f"app-layer.protocols.dnp3.{key}")
        out[key] = n or (1 << 62)
    return out


class Dnp3Parser:
    def __init__(self, settings: Any = None) -> None:
        s = settings or {}
        self.max_tx = s.get("request-flood", MAX_TX)
        self.max_points = s.get("max-points", MAX_POINTS)
        self.max_objects = s.get("max-objects", MAX_OBJECTS)
        self.txs: list[Dnp3Tx] = []
        self.buf = [b"", b""]
        self.lost = [False, False]
        self.unreplied = 0
        self.flooded = False
        self.curr: Dnp3Tx | None = None

    def gap(self, to_server: bool, nbytes: int) -> None:
        d = int(to_server)
        self.buf[d] = b""
        self.lost[d] = True

    def _event(self, name: str) -> None:
        tx = self.curr
        if tx is not None:
            tx.add_event(name)
            tx.touch(tx.request)

    def parse(self, data: bytes, to_server: bool, pkt: Any = None) -> None:
        d = int(to_server)
        if self.lost[d] or not data:
            return
        buf = self.buf[d] + data if self.buf[d] else data
        off, n = 0, len(buf)
        while n - off >= 10:
            if buf[off] != 0x05 or buf[off + 1] != 0x64:
                self._fail(d)
            header = buf[off:off + 10]
            if not _crc_ok(header):
                self._event("bad_link_crc")
                self._fail(d)
            flen = frame_length(header[2])
            if not flen:
                self._event("len_too_small")
                self._fail(d)
            if n - off < flen:
                break
            frame = buf[off:off + flen]
            off += flen
            if header[3] & 0x0F not in (3, 4):          # (un)confirmed user data only
                continue
            need = 5 + 1 + 2 + (0 if to_server else 2)
            if header[2] < need:
                self._event("len_too_small")
                if not to_server:
                    self._fail(d)
                continue
            user = _user_blocks(frame[10:])
            if user is None:
                self._event("bad_transport_crc")
                continue
            self._segment(header, user, to_server)
        self.buf[d] = buf[off:]

    def _segment(self, header: bytes, user: bytes, request: bool) -> None:
        th = user[0]
        dst = header[4] | header[5] << 8
        src = header[6] | header[7] << 8
        tx = None
        if not th & 0x40:                                    # not FIR: continues a transaction
            for t in reversed(self.txs):
                if (t.src == src and t.dst == dst and t.request == request and not t.finished
                        and (t.th + 1) & 0x3F == th & 0x3F):
                    tx = t
                    break
            if tx is None:
                return
            tx.th = th
        else:
            if request and len(user) > 2 and user[2] == 0:     # application confirm
                return
            tx = self._new(request, header, th)
            tx.fc = user[2] if len(user) > 2 else 0
            if not request and len(user) > 4:
                tx.iin = user[3] << 8 | user[4]
        tx.buffer += user[1:]
        tx.touch(request)
        if len(tx.buffer) > MAX_REASSEMBLY:
            self.curr = tx
            self._event("too_long_reassembly")
            self._finish(tx)
            return
        if not th & 0x80:                                    # not FIN yet
            return
        self._finish(tx)
        self._objects(tx)

    def _new(self, request: bool, header: bytes, th: int) -> Dnp3Tx:
        tx = Dnp3Tx(len(self.txs), request, header, th)
        self.txs.append(tx)
        self.curr = tx
        if request:
            self.unreplied += 1
            if self.unreplied > self.max_tx and not self.flooded:
                self.flooded = True
                self._event("flooded")
        else:
            tx.done[1] = True
            self.unreplied = max(0, self.unreplied - 1)
            if self.flooded and self.unreplied < self.max_tx:
                self.flooded = False
        if request:
            tx.done[0] = True
        return tx

    def _finish(self, tx: Dnp3Tx) -> None:
        tx.finished = True
        tx.done[0] = tx.done[1] = True
        tx.touch(tx.request)

    def _objects(self, tx: Dnp3Tx) -> None:
        b = bytes(tx.buffer)
        p = 2 if tx.request else 4
        points = objects = 0
        while p < len(b):
            if len(b) - p < 3:
                return
            g, v, q = b[p], b[p + 1], b[p + 2]
            p += 3
            objects += 1
            if objects > self.max_objects:
                tx.add_event("too_many_objects")
                return
            rc = q & 0x0F
            rl = _RANGE.get(rc)
            if rl is None or len(b) - p < rl:
                return
            start = stop = 0
            if rc in (0, 3, 1, 4, 2, 5):
                half = rl // 2
                start = int.from_bytes(b[p:p + half], "little")
                stop = int.from_bytes(b[p + half:p + rl], "little")
                count = (stop - start + 1) & 0xFFFFFFFF
            elif rc == 6:
                count = 0
            else:
                count = int.from_bytes(b[p:p + rl], "little")
            p += rl
            tx.objects.append((g, v, q, count, start, stop))
            if v == 0 or count == 0:
                continue
            points += count
            if points > self.max_points:
                tx.add_event("too_many_points")
                return
            if tx.request and tx.fc == 1:
                continue                                     # a read names points, sends no values
            prefix = (q >> 4) & 7
            size = SIZES.get((g, v))
            if size is None:
                return                                       # objects this reader cannot step over
            if prefix in (4, 5, 6):
                return
            if size < 0:
                if prefix:
                    return
                p += (count * -size + 7) // 8
            else:
                p += count * (_PREFIX.get(prefix, 0) + size)
        tx.all_read = True

    def _fail(self, d: int) -> None:
        self.lost[d] = True
        self.buf[d] = b""
        raise ParserError("dnp3: not a DNP3 link frame")


def probe(data: bytes, to_server: bool) -> bool | None:
    if len(data) < 10:
        return None if data[:2] in (b"\x05\x64", b"\x05", b"") else False
    if data[0] != 0x05 or data[1] != 0x64 or data[2] < 5:
        return False
    return True


def _answer_first(data: bytes) -> bool:
    return len(data) >= 4 and not data[3] & 0x80


def _data(tx: Dnp3Tx, to_server: bool) -> bytes | None:
    if tx.request != to_server:
        return None
    return bytes(tx.buffer)


register_buffer("dnp3_data", "dnp3", BOTH, _data)
register_protocol(Protocol("dnp3", (6,), probe, Dnp3Parser, (20000,), port_decides=(), ports_only=True,
                           answer_first=_answer_first, configure=configure))
