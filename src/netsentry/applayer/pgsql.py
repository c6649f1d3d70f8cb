"""PostgreSQL's frontend/backend protocol (v3) over TCP, as Suricata's pgsql parser
(rust/src/pgsql/): transactions, the `pgsql.query` buffer, the EVE `pgsql` record, events.

- Detection by port (5432; `app-layer.protocols.pgsql.tcp.detection-ports`), as Suricata's
  probing parsers: a flow elsewhere is never probed for it (Protocol.ports_only). The probe
  wants one whole message of the direction (a startup/SSL/cancel request or a typed
  message; the server's one-byte SSL answer).
- Messages are read as the state of the session asks (Suricata's state-based parsing: a
  `p` message is a password, a SASL initial response or a SASL response depending on the
  authentication request before it). A transaction is opened by a request that starts one
  (startup, SSL request, password/SASL messages, a query, cancel, terminate, the first
  COPY data in) and completed by the server's answer that ends it (ready-for-query, an
  authentication request, SSL refused, copy-in response); data rows and COPY data are
  counted into one `data_row`/`copy_data_*` entry. The server accepting SSL hands the flow
  to TLS (ProtocolChange).
- Events (`app-layer-event:pgsql.NAME`): invalid_length (a length field below the
  message's minimum: the direction stops, an app-layer error), malformed_request /
  malformed_response (a message of an unknown kind where only known ones can be: startup
  version, authentication type), too_many_transactions.
- EVE `pgsql`: `tx_id` (the transaction's number from 1, as Suricata logs it), `request`
  and `response` objects with Suricata's field names; a password is logged only with the
  record's `passwords: yes` option (else `password_redacted: true`).
"""

from __future__ import annotations

from typing import Any

from netsentry.applayer.registry import (BOTH, CHANGERS, TO_SERVER, ParserError, Protocol, ProtocolChange,
                                         register_buffer, register_protocol)
from netsentry.applayer.tx import Tx
from netsentry.config import get

EVENTS: dict[str, int | None] = {"invalid_length": BOTH, "malformed_request": BOTH,
                                 "malformed_response": BOTH, "too_many_transactions": BOTH}
MAX_TX = 1024                   # Suricata's PGSQL_MAX_TX
MAX_BUFFER = 1 << 24            # a direction's unparsed bytes kept waiting for a message's end

_INCOMPLETE = object()          # a message not whole yet


class _Malformed(Exception):
    """An unknown kind where the message's kind must be known (Suricata's Switch error)."""


class _Invalid(Exception):
    """A length field below the message's minimum (Suricata's InvalidLength)."""


class _Bad(Exception):
    """Bytes that are not the message expected (other nom errors: dropped, no event)."""


PARAM_NAMES = {b"DateStyle": "date_style", b"IntervalStyle": "interval_style", b"TimeZone": "time_zone"}
ERROR_FIELDS = {ord("S"): "severity_localizable", ord("V"): "severity_non_localizable", ord("C"): "code",
                ord("M"): "message", ord("D"): "detail", ord("H"): "hint", ord("P"): "position",
                ord("p"): "internal_position", ord("q"): "internal_query", ord("W"): "where",
                ord("s"): "schema_name", ord("t"): "table_name", ord("c"): "column_name",
                ord("d"): "data_type", ord("n"): "constraint_name", ord("F"): "file", ord("L"): "line",
                ord("R"): "routine"}
AUTH_NAMES = {0: "authentication_ok", 3: "authentication_cleartext_password", 5: "authentication_md5_password",
              9: "authentication_sspi", 10: "authentication_sasl", 11: "authentication_sasl_continue",
              12: "authentication_sasl_final"}


def _u32(b: bytes, off: int) -> int:
    return int.from_bytes(b[off:off + 4], "big")


def _s(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def _param_name(name: bytes) -> str:
    known = PARAM_NAMES.get(name)
    if known is not None:
        return known
    try:
        return name.decode("utf-8")
    except UnicodeDecodeError:
        return "unknown_parameter"


def _params(body: bytes) -> list[tuple[bytes, bytes]] | None:
    """NAME\\0VALUE\\0 pairs up to the terminating \\0; None when they do not parse."""
    out = []
    off, n = 0, len(body)
    while off < n and body[off] != 0:
        a = body.find(b"\x00", off)
        if a < 0:
            return None
        b = body.find(b"\x00", a + 1)
        if b < 0:
            return None
        out.append((body[off:a], body[a + 1:b]))
        off = b + 1
    if off >= n or not out:
        return None
    return out


# --- frontend (client) messages: (kind, value, consumed) -------------------------------------

def _frame(buf: bytes, off: int, minimum: int, exact: int | None = None) -> Any:
    """A typed message's (body start, end): type byte, then a length that counts itself."""
    if len(buf) - off < 5:
        return _INCOMPLETE
    length = _u32(buf, off + 1)
    if length < minimum or (exact is not None and length != exact):
        raise _Invalid()
    end = off + 1 + length
    if end > len(buf):
        return _INCOMPLETE
    return off + 5, end


def _request(buf: bytes, off: int, state: str) -> Any:
    """The next client message at `off` as the session's state reads it:
    (kind, value, end) or _INCOMPLETE."""
    if off >= len(buf):
        return _INCOMPLETE
    t = buf[off]
    if t == 0x70 and state in ("sasl_auth", "sasl_initial", "sasl_continue", "simple_auth"):     # 'p'
        fr = _frame(buf, off, 4)
        if fr is _INCOMPLETE:
            return fr
        s, e = fr
        body = buf[s:e]
        if state == "sasl_auth":
            for mech, name in ((b"SCRAM-SHA-256-PLUS\x00", "scram_SHA256_plus"),
                               (b"SCRAM-SHA-256\x00", "scram_SHA256")):
                if body.startswith(mech):
                    rest = body[len(mech):]
                    if len(rest) < 4 or 4 + _u32(rest, 0) != len(rest):
                        raise _Bad()
                    return "sasl_initial_response", (name, rest[4:]), e
            raise _Bad()
        if state == "simple_auth":
            z = body.find(b"\x00")
            if z <= 0:
                raise _Bad()
            return "password", body[:z], e
        return "sasl_response", body, e
    if t == 0:
        if len(buf) - off < 4:
            return _INCOMPLETE
        length = _u32(buf, off)
        if length < 8:
            raise _Invalid()
        if len(buf) - off < 6:
            return _INCOMPLETE
        end = off + length
        if end > len(buf):
            return _INCOMPLETE
        major = int.from_bytes(buf[off + 4:off + 6], "big")
        if 1 <= major <= 3:
            minor = int.from_bytes(buf[off + 6:off + 8], "big")
            params = _params(buf[off + 8:end])
            if params is None:
                raise _Bad()
            user = b"".join(v for k, v in params if k == b"user")
            if not user:
                raise _Bad()
            # Suricata drops the last "user" entry from the others (it may be any one)
            idx = max(i for i, (k, _) in enumerate(params) if k == b"user")
            others = [p for i, p in enumerate(params) if i != idx]
            return "startup_message", (major, minor, user, others), end
        if major == 1234:
            minor = int.from_bytes(buf[off + 6:off + 8], "big")
            if minor == 5678:
                if length < 16:
                    raise _Bad()
                return "cancel_request", (_u32(buf, off + 8), _u32(buf, off + 12)), end
            if minor == 5679:
                return "ssl_request", None, end
        raise _Malformed()
    if t == 0x51:                       # Q
        fr = _frame(buf, off, 4)
        if fr is _INCOMPLETE:
            return fr
        s, e = fr
        z = buf.find(b"\x00", s, e)
        if z <= s:
            raise _Bad()
        return "simple_query", buf[s:z], e
    if t == 0x58:                       # X
        fr = _frame(buf, off, 4, 4)
        return fr if fr is _INCOMPLETE else ("termination_message", None, fr[1])
    if t == 0x64:                       # d
        fr = _frame(buf, off, 5)
        return fr if fr is _INCOMPLETE else ("copy_data_in", fr[1] - fr[0], fr[1])
    if t == 0x63:                       # c
        fr = _frame(buf, off, 4, 4)
        return fr if fr is _INCOMPLETE else ("copy_done", None, fr[1])
    if t == 0x66:                       # f
        fr = _frame(buf, off, 5)
        return fr if fr is _INCOMPLETE else ("copy_fail", buf[fr[0]:fr[1]], fr[1])
    fr = _frame(buf, off, 4)
    return fr if fr is _INCOMPLETE else ("unknown", None, fr[1])


# --- backend (server) messages -----------------------------------------------------------

def _error_fields(body: bytes, is_error: bool) -> list[tuple[str, bytes]]:
    out = []
    off, n = 0, len(body)
    while True:
        if off >= n:
            raise _Bad()
        t = body[off]
        if t == 0:
            return out
        if t == 0x43:                   # C: a 5-character SQLSTATE code + \0
            code = body[off + 1:off + 7]
            if len(code) < 6:
                raise _Bad()
            val = code.rstrip(b"\x00")
            if not val or not val.isalnum():
                raise _Bad()
            out.append(("code", val))
            off += 1 + len(val)
            if off < n and body[off] == 0 and len(val) < 6:
                off += 1
            continue
        z = body.find(b"\x00", off + 1)
        if z < 0:
            raise _Bad()
        val = body[off + 1:z]
        if t == 0x56:                   # V
            ok = (b"ERROR", b"FATAL", b"PANIC") if is_error else (b"WARNING", b"NOTICE", b"DEBUG", b"INFO", b"LOG")
            if val not in ok:
                raise _Bad()
        out.append((ERROR_FIELDS.get(t, "unknown_field_type"), val))
        off = z + 1


def _response(buf: bytes, off: int, state: str) -> Any:
    if off >= len(buf):
        return _INCOMPLETE
    t = buf[off]
    if state == "ssl_request":
        if t == 0x53:
            return "ssl_accepted", True, off + 1
        if t == 0x4E:
            return "ssl_rejected", False, off + 1
        raise _Bad()
    minimum = {0x45: 11, 0x4E: 11, 0x52: 8, 0x4B: 12, 0x5A: 5, 0x54: 7, 0x41: 10, 0x44: 7, 0x64: 5,
               0x48: 8, 0x47: 8}.get(t, 4)
    exact = {0x4B: 12, 0x5A: 5, 0x63: 4}.get(t)
    fr = _frame(buf, off, minimum, exact)
    if fr is _INCOMPLETE:
        return fr
    s, e = fr
    body = buf[s:e]
    if t == 0x52:                       # R: authentication
        auth = _u32(body, 0)
        name = AUTH_NAMES.get(auth)
        if name is None:
            raise _Malformed()
        rest = body[4:]
        if auth == 5 and len(rest) != 4:
            raise _Bad()
        if auth == 10:
            if not rest.endswith(b"\x00") or not rest.startswith(b"SCRAM-SHA-256"):
                raise _Bad()
        return name, rest, e
    if t == 0x53:                       # S: parameter status
        params = _params(body + b"\x00")
        if params is None or len(params) != 1:
            raise _Bad()
        return "parameter_status", params[0], e
    if t == 0x4B:
        return "backend_key_data", (_u32(body, 0), _u32(body, 4)), e
    if t == 0x5A:
        if body[0] not in b"ITE":
            raise _Bad()
        return "ready_for_query", None, e
    if t == 0x43:
        z = body.find(b"\x00")
        if z < 0:
            raise _Bad()
        return "command_completed", body[:z], e
    if t == 0x63:
        return "copy_done", None, e
    if t == 0x54:
        return "row_description", int.from_bytes(body[:2], "big"), e
    if t == 0x44:                       # a data row: the sum of its values' lengths
        count = int.from_bytes(body[:2], "big")
        size, p = 0, 2
        for _ in range(count):
            if p + 4 > len(body):
                break
            vlen = int.from_bytes(body[p:p + 4], "big", signed=True)
            p += 4
            if vlen > 0:
                if p + vlen > len(body):
                    raise _Bad()
                size += vlen
                p += vlen
        return "data_row", size, e
    if t == 0x64:
        return "copy_data_out", len(body), e
    if t in (0x48, 0x47):
        return ("copy_out_response" if t == 0x48 else "copy_in_response"), int.from_bytes(body[1:3], "big"), e
    if t in (0x45, 0x4E):
        return ("error_response" if t == 0x45 else "notice_response"), _error_fields(body, t == 0x45), e
    if t == 0x41:                       # A: notification
        pid = _u32(body, 0)
        a = body.find(b"\x00", 4)
        b = body.find(b"\x00", a + 1) if a >= 0 else -1
        if b < 0:
            raise _Bad()
        return "notification_response", (pid, body[4:a], body[a + 1:b]), e
    return "unknown", None, e


# the session states after which the next message opens a transaction (Suricata's find_or_create_tx)
_OPENS = frozenset({"idle", "startup", "password", "sasl_initial", "sasl_response", "query", "ssl_request",
                    "terminated", "cancel", "copy_in_first"})
_REQ_STATE = {"ssl_request": "ssl_request", "startup_message": "startup", "password": "password",
              "sasl_initial_response": "sasl_initial", "sasl_response": "sasl_response", "simple_query": "query",
              "copy_done": "copy_done", "copy_fail": "copy_fail", "cancel_request": "cancel",
              "termination_message": "terminated"}
_REQ_COMPLETE = frozenset({"ssl_request", "startup", "query", "password", "sasl_initial", "sasl_response", "cancel",
                           "copy_done", "copy_fail", "terminated"})
_RES_STATE = {"ssl_accepted": "finished", "ssl_rejected": "ssl_rejected", "authentication_sasl": "sasl_auth",
              "authentication_sasl_continue": "sasl_continue", "authentication_sasl_final": "sasl_final",
              "authentication_ok": "auth_ok", "parameter_status": "parameters", "backend_key_data": "backend_key",
              "ready_for_query": "ready", "authentication_md5_password": "simple_auth",
              "authentication_cleartext_password": "simple_auth", "row_description": "row_description",
              "copy_out_response": "copy_out", "copy_in_response": "copy_in", "data_row": "data_row",
              "copy_data_out": "copy_data_out", "copy_done": "copy_done", "command_completed": "command_completed",
              "error_response": "error"}
_RES_COMPLETE = frozenset({"ready", "ssl_rejected", "simple_auth", "sasl_auth", "sasl_continue", "sasl_final",
                           "copy_in", "finished"})

INIT, RECEIVED, DONE = 0, 1, 2


class PgsqlTx(Tx):
    __slots__ = ("requests", "responses", "req_state", "res_state", "rows", "size", "passwords")
    proto = "pgsql"

    def __init__(self, tx_id: int, passwords: bool) -> None:
        super().__init__(tx_id)
        self.requests: list[tuple[str, Any]] = []
        self.responses: list[tuple[str, Any]] = []
        self.req_state = INIT
        self.res_state = INIT
        self.rows = 0
        self.size = 0
        self.passwords = passwords

    def query(self) -> bytes | None:
        for kind, value in self.requests:
            if kind == "simple_query":
                return value
        return None

    def eve(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tx_id": self.tx_id + 1}
        if self.requests:
            out["request"] = self._request()
        elif not self.responses:
            return out
        if self.responses:
            out["response"] = self._response()
        return out

    def _request(self) -> dict[str, Any]:
        r: dict[str, Any] = {}
        for kind, v in self.requests:
            if kind == "startup_message":
                major, minor, user, others = v
                r["protocol_version"] = f"{major}.{minor}"
                sp: dict[str, Any] = {"user": _s(user)}
                if others:
                    sp["optional_parameters"] = [{_param_name(k): _s(val)} for k, val in others]
                r["startup_parameters"] = sp
            elif kind == "ssl_request":
                r["message"] = "SSL Request"
            elif kind == "sasl_initial_response":
                r["sasl_authentication_mechanism"] = v[0]
                r["sasl_param"] = _s(v[1])
            elif kind == "password":
                if self.passwords:
                    r["password"] = _s(v)
                else:
                    r["password_redacted"] = True
            elif kind in ("sasl_response", "simple_query", "copy_fail"):
                r[kind] = _s(v)
            elif kind == "cancel_request":
                r["message"] = "cancel_request"
                r["process_id"] = v[0]
                r["secret_key"] = v[1]
            elif kind == "copy_data_in":
                r["copy_data_in"] = {"msg_count": v[0], "data_size": v[1]}
            elif kind in ("copy_done", "termination_message"):
                r["message"] = kind
        return r

    def _response(self) -> dict[str, Any]:
        r: dict[str, Any] = {}
        status: list[dict[str, str]] | None = None
        for kind, v in self.responses:
            if kind == "parameter_status":
                if status is None:
                    # a later run of parameter statuses replaces the key's array, as a
                    # repeated key in Suricata's JSON would be read
                    status = r["parameter_status"] = []
                status.append({_param_name(v[0]): _s(v[1])})
                continue
            status = None
            if kind in ("ssl_accepted", "ssl_rejected"):
                r["ssl_accepted"] = v
            elif kind in ("error_response", "notice_response"):
                for name, val in v:
                    r[name] = _s(val)
            elif kind in ("authentication_md5_password", "authentication_sspi", "authentication_sasl_final",
                          "command_completed"):
                r[kind] = _s(v)
            elif kind in ("authentication_ok", "authentication_cleartext_password", "authentication_sasl",
                          "authentication_sasl_continue", "copy_done"):
                r["message"] = kind
            elif kind in ("copy_out_response", "copy_in_response"):
                r[kind] = {"columns": v}
            elif kind == "backend_key_data":
                r["process_id"] = v[0]
                r["secret_key"] = v[1]
            elif kind == "copy_data_out":
                r["copy_data_out"] = {"row_count": v[0], "data_size": v[1]}
            elif kind == "row_description":
                r["field_count"] = v
            elif kind == "data_row":
                r["data_rows"] = v[0]
                r["data_size"] = v[1]
            elif kind == "notification_response":
                r["pid"] = v[0]
                r["channel_name"] = _s(v[1])
                r["payload"] = _s(v[2])
        return r


class PgsqlParser:
    def __init__(self, settings: Any = None) -> None:
        self.txs: list[PgsqlTx] = []
        self.buf = [b"", b""]
        self.lost = [False, False]
        self.gap_ = [False, False]
        self.state = "idle"
        self.completed = 0          # Suricata's tx_index_completed (too_many_transactions)
        self.passwords = bool(settings and settings.get("passwords"))

    # --- transactions ---
    def _new_tx(self) -> PgsqlTx:
        txs = self.txs
        if len(txs) - self.completed > MAX_TX:
            i = self.completed
            for old in txs[self.completed:]:
                i += 1
                if old.res_state < DONE:
                    old.req_state = old.res_state = DONE + 1
                    old.done[0] = old.done[1] = True
                    old.add_event("too_many_transactions")
                    old.touch(True)
                    old.touch(False)
                    break
            self.completed = i
        tx = PgsqlTx(len(txs), self.passwords)
        txs.append(tx)
        return tx

    def _current(self) -> PgsqlTx | None:
        if self.state in _OPENS:
            return self._new_tx()
        return self.txs[-1] if self.txs else None

    def _event_tx(self, name: str) -> None:
        tx = self._new_tx()
        tx.add_event(name)
        tx.touch(True)

    # --- parsing ---
    def gap(self, to_server: bool, nbytes: int) -> None:
        d = int(to_server)
        self.buf[d] = b""
        self.gap_[d] = True

    def parse(self, data: bytes, to_server: bool, pkt: Any = None) -> None:
        d = int(to_server)
        if self.lost[d] or not data:
            return
        buf = self.buf[d] + data if self.buf[d] else data
        if self.gap_[d]:
            # after a gap: wait for bytes that read as a message of the direction
            try:
                r = (_request(buf, 0, "idle") if to_server else
                     _response(buf, 0, "idle") if buf[0] not in b"SN" or len(buf) > 1 else ("ssl", None, 1))
            except (_Malformed, _Invalid, _Bad):
                r = None
            if r is None or r is _INCOMPLETE:
                self.buf[d] = b""
                return
            self.gap_[d] = False
        off, n = 0, len(buf)
        change = False
        try:
            while off < n:
                r = _request(buf, off, self.state) if to_server else _response(buf, off, self.state)
                if r is _INCOMPLETE:
                    break
                kind, value, off = r
                if to_server:
                    self._on_request(kind, value)
                else:
                    change = self._on_response(kind, value) or change
                    if change:
                        off = n
        except _Invalid:
            self._event_tx("invalid_length")
            self._fail(d)
        except _Malformed:
            self._event_tx("malformed_request" if to_server else "malformed_response")
            off = n
        except _Bad:
            off = n
        rest = buf[off:]
        if len(rest) > MAX_BUFFER:
            rest = b""
        self.buf[d] = rest
        if change:
            raise ProtocolChange("tls")

    def _on_request(self, kind: str, value: Any) -> None:
        state = self.state
        if kind == "copy_data_in":
            if state == "copy_in":
                new = "copy_in_first"
            elif state in ("copy_in_first", "copy_in_more"):
                new = "copy_in_more"
            else:
                new = None
        else:
            new = _REQ_STATE.get(kind)
        if new is not None:
            self.state = new
        tx = self._current()
        if tx is None:
            return
        tx.touch(True)
        if new is None:
            return
        if new in ("copy_in_first", "copy_in_more"):
            tx.size += value
            tx.rows += 1
            return
        if new in ("copy_done", "copy_fail") and tx.rows > 0:
            tx.requests.append(("copy_data_in", (tx.rows, tx.size)))
        if new in _REQ_COMPLETE:
            tx.requests.append((kind, value))
            tx.req_state = DONE
            tx.done[1] = True
            if new in ("terminated", "cancel"):
                tx.res_state = DONE
                tx.done[0] = True

    def _on_response(self, kind: str, value: Any) -> bool:
        new = _RES_STATE.get(kind)
        if kind in ("data_row", "copy_data_out") and self.txs:
            self.txs[-1].size += value
        if new is not None:
            self.state = new
        tx = self._current()
        if tx is None:
            return False
        tx.touch(False)
        if tx.res_state == INIT:
            tx.res_state = RECEIVED
        if new is None:
            return False
        if new in ("data_row", "copy_data_out"):
            tx.rows += 1
        elif new == "command_completed" and tx.rows > 0:
            tx.responses.append(("data_row", (tx.rows, tx.size)))
            tx.responses.append((kind, value))
            tx.rows = tx.size = 0
        elif new == "copy_done" and tx.rows > 0:
            tx.responses.append(("copy_data_out", (tx.rows, tx.size)))
            tx.responses.append((kind, value))
            tx.rows = tx.size = 0
        else:
            tx.responses.append((kind, value))
            if new in _RES_COMPLETE:
                tx.req_state = tx.res_state = DONE
                tx.done[0] = tx.done[1] = True
        return kind == "ssl_accepted"

    def _fail(self, d: int) -> None:
        self.lost[d] = True
        self.buf[d] = b""
        raise ParserError("pgsql: invalid message length")


def probe(data: bytes, to_server: bool) -> bool | None:
    """One whole message of the direction (Suricata's probing parsers): True; cut short:
    None; anything else: False."""
    try:
        r = _request(data, 0, "idle") if to_server else (
            True if data[:1] in (b"S", b"N") else _response(data, 0, "idle"))
    except (_Malformed, _Invalid, _Bad):
        return False
    except (IndexError, ValueError):
        return False
    if r is _INCOMPLETE:
        return None
    return True


def configure(config: Any) -> dict[str, Any]:
    """`app-layer.protocols.pgsql.enabled` and the EVE record's `passwords` option."""
    enabled = get(config, "app-layer.protocols.pgsql.enabled", True)
    out: dict[str, Any] = {"passwords": False}
    if enabled is False or str(enabled).lower() in ("no", "false", "off", "0"):
        out["enabled"] = False
    v = get(config, "outputs.eve-log.pgsql.passwords", False)
    out["passwords"] = v is True
    return out


def _query(tx: PgsqlTx, to_server: bool) -> bytes | None:
    return tx.query()


register_buffer("pgsql.query", "pgsql", TO_SERVER, _query)
register_protocol(Protocol("pgsql", (6,), probe, PgsqlParser, (5432,), port_decides=(), configure=configure,
                           ports_only=True))
CHANGERS.add("pgsql")           # an SSL request accepted: TLS follows
