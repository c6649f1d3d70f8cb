"""LDAP (RFC 4511) over TCP and UDP, as Suricata's ldap parser (rust/src/ldap/): BER-encoded
LDAPMessages read by hand, transactions, the `ldap.*` keywords' buffers, the EVE `ldap`
record and events.

- Detection on ports 389 and 3268 only (Suricata's probing parsers by port;
  Protocol.ports_only): a whole LDAPMessage of the direction is LDAP; a response where a
  request was expected turns the flow round.
- A request opens a transaction; a response joins the transaction of its message id
  (an unbind or abandon request completes at once; a result-carrying response completes
  it). A response with no request is a transaction of its own (an unsolicited extended
  response, e.g. a notice of disconnection; any other raises request_not_found).
- StartTLS (extended request 1.3.6.1.4.1.1466.20037) answered with success: the flow is TLS
  from there (ProtocolChange).
- Events (`app-layer-event:ldap.NAME`): too_many_transactions, invalid_data (bytes that are
  no LDAPMessage: the direction stops, an app-layer error), request_not_found,
  incomplete_data (a UDP datagram cut short), too_many_responses.
- EVE `ldap`: `request` (message_id, operation, the operation's object) and `responses`
  (operation, the operation's object; message_id when there is no request), with
  Suricata's field names.
"""

from __future__ import annotations

from typing import Any

from netsentry.applayer import der
from netsentry.applayer.frames import frames_for, register_stream_frames
from netsentry.applayer.registry import (BOTH, CHANGERS, TO_CLIENT, TO_SERVER, ParserError, Protocol, ProtocolChange,
                                         register_buffer, register_protocol)
from netsentry.applayer.tx import Tx, event_on_newest

EVENTS: dict[str, int | None] = {"too_many_transactions": BOTH, "invalid_data": BOTH, "request_not_found": BOTH,
                                 "incomplete_data": BOTH, "too_many_responses": BOTH}
MAX_TX = 256                    # Suricata's LDAP_MAX_TX default
MAX_RESPONSES = 1024            # Suricata's LDAP_MAX_RESPONSES default
MAX_MESSAGE = 1 << 24           # a declared message length past this is not LDAP here
STARTTLS_OID = "1.3.6.1.4.1.1466.20037"

OPERATIONS = {0: "bind_request", 1: "bind_response", 2: "unbind_request", 3: "search_request",
              4: "search_result_entry", 5: "search_result_done", 19: "search_result_reference",
              6: "modify_request", 7: "modify_response", 8: "add_request", 9: "add_response",
              10: "del_request", 11: "del_response", 12: "mod_dn_request", 13: "mod_dn_response",
              14: "compare_request", 15: "compare_response", 16: "abandon_request",
              23: "extended_request", 24: "extended_response", 25: "intermediate_response"}
OPERATION_CODES = {name: code for code, name in OPERATIONS.items()}
REQUESTS = frozenset({0, 2, 3, 6, 8, 10, 12, 14, 16, 23})
# responses that end their transaction (Suricata's tx_is_complete)
FINAL = frozenset({5, 1, 7, 9, 11, 13, 15, 24})
RESULT_OPS = frozenset({1, 5, 7, 9, 11, 13, 15, 24})

RESULT_CODES = {
    0: "success", 1: "operations_error", 2: "protocol_error", 3: "time_limit_exceeded",
    4: "size_limit_exceeded", 5: "compare_false", 6: "compare_true", 7: "auth_method_not_supported",
    8: "stronger_auth_required", 10: "referral", 11: "admin_limit_exceeded",
    12: "unavailable_critical_extension", 13: "confidentiality_required", 14: "sasl_bind_in_progress",
    16: "no_such_attribute", 17: "undefined_attribute_type", 18: "inappropriate_matching",
    19: "constraint_violation", 20: "attribute_or_value_exists", 21: "invalid_attribute_syntax",
    32: "no_such_object", 33: "alias_problem", 34: "invalid_dns_syntax", 35: "is_leaf",
    36: "alias_dereferencing_problem", 48: "inappropriate_authentication", 49: "invalid_credentials",
    50: "insufficient_access_rights", 51: "busy", 52: "unavailable", 53: "unwilling_to_perform",
    54: "loop_detect", 60: "sort_control_missing", 61: "offset_range_error", 64: "naming_violation",
    65: "object_class_violation", 66: "not_allowed_on_non_leaf", 67: "not_allowed_on_rdn",
    68: "entry_already_exists", 69: "object_class_mods_prohibited", 70: "results_too_large",
    71: "affects_multiple_dsas", 76: "control_error", 80: "other", 81: "server_down", 82: "local_error",
    83: "encoding_error", 84: "decoding_error", 85: "timeout", 86: "auth_unknown", 87: "filter_error",
    88: "user_canceled", 89: "param_error", 90: "no_memory", 91: "connect_error", 92: "not_supported",
    93: "control_not_found", 94: "no_results_returned", 95: "more_results_to_return", 96: "client_loop",
    97: "referral_limit_exceeded", 100: "invalid_response", 101: "ambiguous_response",
    112: "tls_not_supported", 113: "intermediate_response", 114: "unknown_type", 118: "canceled",
    119: "no_such_operation", 120: "too_late", 121: "cannot_cancel", 122: "assertion_failed",
    123: "authorization_denied", 4096: "e_sync_refresh_required", 16654: "no_operation"}
RESULT_NUMBERS = {name: code for code, name in RESULT_CODES.items()}
MODIFY_OPS = {0: "add", 1: "delete", 2: "replace"}


# LDAP's BER (RFC 4511 section 5.1): the ASN.1 protocols' reader (der.py), with LDAP's own
# refusals on top. A message not whole yet is `_Short`; anything else wrong is `_Bad`.
_Short = der.Short
_Bad = der.DerError


def _tlv(b: bytes, off: int, end: int) -> tuple[int, int, int]:
    """(tag, value start, value end) of the element at `off`, within `end`."""
    if off + 2 <= end and b[off] & 0x1F == 0x1F:
        raise _Bad("high tag number")      # none in LDAP
    return der.tlv(b, off, end)


def _elements(b: bytes, s: int, e: int) -> list[tuple[int, int, int]]:
    out = []
    while s < e:
        t = _tlv(b, s, e)
        out.append(t)
        s = t[2]
    return out


def _int(b: bytes, s: int, e: int) -> int:
    if s >= e or e - s > 8:
        raise _Bad()
    return int.from_bytes(b[s:e], "big", signed=True)


def _str(b: bytes, s: int, e: int) -> str:
    return b[s:e].decode("utf-8", "replace")


def _expect(el: tuple[int, int, int], tag: int) -> tuple[int, int]:
    if el[0] != tag:
        raise _Bad()
    return el[1], el[2]


def _need(els: list, n: int) -> None:
    if len(els) < n:
        raise _Bad()


def _attributes(b: bytes, s: int, e: int) -> list[tuple[str, list[bytes]]]:
    """SEQUENCE OF (type, SET OF value) (PartialAttribute / Attribute)."""
    out = []
    for t, vs, ve in _elements(b, s, e):
        if t != 0x30:
            raise _Bad()
        parts = _elements(b, vs, ve)
        _need(parts, 2)
        ts, te = _expect(parts[0], 0x04)
        ss, se = _expect(parts[1], 0x31)
        out.append((_str(b, ts, te), [b[x:y] for tag, x, y in _elements(b, ss, se)]))
    return out


def _result(b: bytes, els: list) -> dict[str, Any]:
    _need(els, 3)
    code = _int(b, *_expect(els[0], 0x0A))
    return {"result_code": code, "matched_dn": _str(b, *_expect(els[1], 0x04)),
            "message": _str(b, *_expect(els[2], 0x04))}


class Message:
    """One LDAPMessage: id, operation code, the operation's fields, controls."""

    __slots__ = ("message_id", "op", "fields", "controls")

    def __init__(self, message_id: int, op: int, fields: dict[str, Any], controls: list | None) -> None:
        self.message_id = message_id
        self.op = op
        self.fields = fields
        self.controls = controls


def parse_message(b: bytes, off: int = 0) -> tuple[Message, int]:
    """The LDAPMessage at `off`: (message, end). _Short: cut short; _Bad: not LDAP."""
    tag, s, e = _tlv(b, off, len(b))
    if tag != 0x30:
        raise _Bad()
    try:
        els = _elements(b, s, e)
    except _Short:
        raise _Bad() from None      # the outer length holds, the inside does not
    _need(els, 2)
    mid = _int(b, *_expect(els[0], 0x02))
    if mid < 0:
        raise _Bad()
    t, os_, oe = els[1]
    if t & 0xC0 != 0x40:
        raise _Bad()
    op = t & 0x1F
    if op not in OPERATIONS:
        raise _Bad()
    try:
        fields = _operation(b, op, t & 0x20 != 0, os_, oe)
    except _Short:
        raise _Bad() from None
    controls = None
    if len(els) > 2 and els[2][0] == 0xA0:
        controls = []
        for ct, cs, ce in _elements(b, els[2][1], els[2][2]):
            parts = _elements(b, cs, ce)
            _need(parts, 1)
            ctl: dict[str, Any] = {"control_type": _str(b, *_expect(parts[0], 0x04)), "criticality": False}
            for pt, ps, pe in parts[1:]:
                if pt == 0x01:
                    ctl["criticality"] = ps < pe and b[ps] != 0
                elif pt == 0x04:
                    ctl["control_value"] = b[ps:pe]
            controls.append(ctl)
    return Message(mid, op, fields, controls), e


def _operation(b: bytes, op: int, constructed: bool, s: int, e: int) -> dict[str, Any]:
    if op == 2:                                     # unbind: NULL
        return {}
    if op == 10:                                    # del request: the DN itself
        return {"dn": _str(b, s, e)}
    if op == 16:                                    # abandon: a message id
        return {"id": _int(b, s, e) if s < e else 0}
    if not constructed:
        raise _Bad()
    els = _elements(b, s, e)
    if op == 0:                                     # bind request
        _need(els, 3)
        f: dict[str, Any] = {"version": _int(b, *_expect(els[0], 0x02)), "name": _str(b, *_expect(els[1], 0x04))}
        t, as_, ae = els[2]
        if t == 0xA3:
            parts = _elements(b, as_, ae)
            _need(parts, 1)
            f["sasl"] = {"mechanism": _str(b, *_expect(parts[0], 0x04))}
            if len(parts) > 1:
                f["sasl"]["credentials"] = b[parts[1][1]:parts[1][2]]
        elif t != 0x80:
            raise _Bad()
        return f
    if op in RESULT_OPS:
        f = _result(b, els)
        rest = els[3:]
        if rest and rest[0][0] == 0xA3:             # referral
            rest = rest[1:]
        if op == 1 and rest and rest[0][0] == 0x87:
            f["server_sasl_creds"] = b[rest[0][1]:rest[0][2]]
        if op == 24:
            for t, vs, ve in rest:
                if t == 0x8A:
                    f["name"] = _str(b, vs, ve)
                elif t == 0x8B:
                    f["value"] = b[vs:ve]
        return f
    if op == 3:                                     # search request
        _need(els, 8)
        f = {"base_object": _str(b, *_expect(els[0], 0x04)), "scope": _int(b, *_expect(els[1], 0x0A)),
             "deref_alias": _int(b, *_expect(els[2], 0x0A)), "size_limit": _int(b, *_expect(els[3], 0x02)),
             "time_limit": _int(b, *_expect(els[4], 0x02))}
        ts_, te = _expect(els[5], 0x01)
        f["types_only"] = ts_ < te and b[ts_] != 0
        ft, fs, fe = els[6]
        if ft == 0x87:                              # present filter
            f["filter"] = {"type": "present", "value": _str(b, fs, fe)}
        as_, ae = _expect(els[7], 0x30)
        f["attributes"] = [_str(b, x, y) for t, x, y in _elements(b, as_, ae)]
        return f
    if op == 4:                                     # search result entry
        _need(els, 2)
        return {"object_name": _str(b, *_expect(els[0], 0x04)), "attributes": _attributes(b, *_expect(els[1], 0x30))}
    if op == 19:                                    # search result reference: URIs
        return {"uris": [_str(b, x, y) for t, x, y in els]}
    if op == 6:                                     # modify request
        _need(els, 2)
        changes = []
        cs, ce = _expect(els[1], 0x30)
        for t, vs, ve in _elements(b, cs, ce):
            parts = _elements(b, vs, ve)
            _need(parts, 2)
            operation = _int(b, *_expect(parts[0], 0x0A))
            ms, me = _expect(parts[1], 0x30)
            mod = _elements(b, ms, me)
            _need(mod, 2)
            vals = [b[x:y] for tag, x, y in _elements(b, *_expect(mod[1], 0x31))]
            changes.append((operation, _str(b, *_expect(mod[0], 0x04)), vals))
        return {"object": _str(b, *_expect(els[0], 0x04)), "changes": changes}
    if op == 8:                                     # add request
        _need(els, 2)
        return {"entry": _str(b, *_expect(els[0], 0x04)), "attributes": _attributes(b, *_expect(els[1], 0x30))}
    if op == 12:                                    # modify DN request
        _need(els, 3)
        f = {"entry": _str(b, *_expect(els[0], 0x04)), "new_rdn": _str(b, *_expect(els[1], 0x04))}
        ds, de = _expect(els[2], 0x01)
        f["delete_old_rdn"] = ds < de and b[ds] != 0
        if len(els) > 3 and els[3][0] == 0x80:
            f["new_superior"] = _str(b, els[3][1], els[3][2])
        return f
    if op == 14:                                    # compare request
        _need(els, 2)
        ps, pe = _expect(els[1], 0x30)
        ava = _elements(b, ps, pe)
        _need(ava, 2)
        return {"entry": _str(b, *_expect(els[0], 0x04)), "description": _str(b, *_expect(ava[0], 0x04)),
                "value": b[ava[1][1]:ava[1][2]]}
    if op in (23, 25):                              # extended request / intermediate response
        f = {}
        for t, vs, ve in els:
            if t == 0x80:
                f["name"] = _str(b, vs, ve)
            elif t == 0x81:
                f["value"] = b[vs:ve]
        if op == 23 and "name" not in f:
            raise _Bad()
        return f
    return {}


# --- EVE ------------------------------------------------------------------------------------

def _text(v: bytes) -> str:
    return v.decode("utf-8", "replace")


def _result_eve(f: dict[str, Any]) -> dict[str, Any]:
    code = f["result_code"]
    return {"result_code": RESULT_CODES.get(code, f"unknown-{code}"), "matched_dn": f["matched_dn"],
            "message": f["message"]}


def _op_eve(m: Message) -> tuple[str, dict[str, Any]] | None:
    op, f = m.op, m.fields
    if op == 3:
        o: dict[str, Any] = {"base_object": f["base_object"], "scope": f["scope"], "deref_alias": f["deref_alias"],
                             "size_limit": f["size_limit"], "time_limit": f["time_limit"],
                             "types_only": f["types_only"]}
        if "filter" in f:
            o["filter"] = f["filter"]
        if f["attributes"]:
            o["attributes"] = f["attributes"]
        return "search_request", o
    if op == 0:
        o = {"version": f["version"], "name": f["name"]}
        if "sasl" in f:
            sasl = {"mechanism": f["sasl"]["mechanism"]}
            if "credentials" in f["sasl"]:
                sasl["credentials"] = f["sasl"]["credentials"].hex()
            o["sasl"] = sasl
        return "bind_request", o
    if op == 6:
        o = {"object": f["object"]}
        if f["changes"]:
            changes = []
            for operation, atype, vals in f["changes"]:
                mod: dict[str, Any] = {"attribute_type": atype}
                if vals:
                    mod["attribute_values"] = [_text(v) for v in vals]
                changes.append({"operation": MODIFY_OPS.get(operation, str(operation)), "modification": mod})
            o["changes"] = changes
        return "modify_request", o
    if op == 8:
        o = {"entry": f["entry"]}
        if f["attributes"]:
            o["attributes"] = [dict({"name": n}, **({"values": [_text(v) for v in vals]} if vals else {}))
                               for n, vals in f["attributes"]]
        return "add_request", o
    if op == 10:
        return "del_request", {"dn": f["dn"]}
    if op == 12:
        o = {"entry": f["entry"], "new_rdn": f["new_rdn"], "delete_old_rdn": f["delete_old_rdn"]}
        if "new_superior" in f:
            o["new_superior"] = f["new_superior"]
        return "mod_dn_request", o
    if op == 14:
        return "compare_request", {"entry": f["entry"], "attribute_value_assertion": {
            "description": f["description"], "value": _text(f["value"])}}
    if op == 23:
        o = {"name": f["name"]}
        if "value" in f:
            o["value"] = _text(f["value"])
        return "extended_request", o
    if op == 4:
        o = {"base_object": f["object_name"]}
        if f["attributes"]:
            o["attributes"] = [dict({"type": n}, **({"values": [_text(v) for v in vals]} if vals else {}))
                               for n, vals in f["attributes"]]
        return "search_result_entry", o
    if op in (5, 9, 11, 13, 15):
        return OPERATIONS[op], _result_eve(f)
    if op == 1:
        o = _result_eve(f)
        if "server_sasl_creds" in f:
            o["server_sasl_creds"] = f["server_sasl_creds"].hex()
        return "bind_response", o
    if op == 7:
        return "modify_response", _result_eve(f)
    if op == 24:
        o = _result_eve(f)
        if "name" in f:
            o["name"] = f["name"]
        if "value" in f:
            o["value"] = _text(f["value"])
        return "extended_response", o
    if op == 25:
        o = {}
        if "name" in f:
            o["name"] = f["name"]
        if "value" in f:
            o["value"] = _text(f["value"])
        return "intermediate_response", o
    return None


def _controls_eve(out: dict[str, Any], m: Message) -> None:
    if m.controls is not None:
        ctls = []
        for c in m.controls:
            o = {"control_type": c["control_type"], "criticality": c["criticality"]}
            if "control_value" in c:
                o["control_value"] = c["control_value"].hex()
            ctls.append(o)
        out["controls"] = ctls


class LdapTx(Tx):
    __slots__ = ("request", "responses", "udp")
    proto = "ldap"

    def __init__(self, tx_id: int, udp: bool) -> None:
        super().__init__(tx_id)
        self.request: Message | None = None
        self.responses: list[Message] = []
        self.udp = udp

    def finish(self) -> None:
        self.done[0] = self.done[1] = True

    @property
    def complete_(self) -> bool:
        return self.done[0]

    def eve(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        req = self.request
        if req is not None:
            r: dict[str, Any] = {"message_id": req.message_id, "operation": OPERATIONS[req.op]}
            body = _op_eve(req)
            if body is not None:
                r[body[0]] = body[1]
            _controls_eve(r, req)
            out["request"] = r
        if self.responses:
            rs = []
            for m in self.responses:
                o: dict[str, Any] = {"operation": OPERATIONS[m.op]}
                if req is None:
                    o["message_id"] = m.message_id
                body = _op_eve(m)
                if body is not None:
                    o[body[0]] = body[1]
                _controls_eve(o, m)
                rs.append(o)
            out["responses"] = rs
        return out


class LdapParser:
    def __init__(self, settings: Any = None) -> None:
        self.txs: list[LdapTx] = []
        self.buf = [b"", b""]
        self.lost = [False, False]
        self.gap_ = [False, False]
        self.udp: bool | None = None     # known from the first packet parsed
        self.starttls = False       # a StartTLS request waits for its answer
        self.live = 0               # transactions not complete (too_many_transactions)
        self.stream_frames = frames_for("ldap")   # applayer/frames.py: None unless a rule reads LDAP frames

    def _new_tx(self) -> LdapTx | None:
        txs = self.txs
        if self.live > MAX_TX:
            for old in txs:
                if not old.done[0]:
                    old.finish()
                    old.add_event("too_many_transactions")
                    old.touch(True)
                    old.touch(False)
            self.live = 0
            return None
        tx = LdapTx(len(txs), bool(self.udp))
        txs.append(tx)
        self.live += 1
        return tx

    def _complete(self, tx: LdapTx) -> None:
        if not tx.done[0]:
            tx.finish()
            self.live -= 1

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
        fr = self.stream_frames
        if self.udp:
            if fr is not None and to_server:
                # Suricata: a request datagram is one `pdu` frame, whole
                fr.add(True, "pdu", 0, data, len(data))
            self._datagram(data, to_server)
            return
        if fr is not None:
            fr.stream(to_server, data)
        buf = self.buf[d] + data if self.buf[d] else data
        if self.gap_[d]:
            try:
                parse_message(buf)
            except (_Short, _Bad):
                self.buf[d] = b""
                self._fail(d, None)
            self.gap_[d] = False
        off, n = 0, len(buf)
        change = False
        while off < n:
            try:
                m, off2 = parse_message(buf, off)
            except _Short:
                if n - off > MAX_MESSAGE:
                    self._fail(d, "invalid_data")
                break
            except _Bad:
                self._fail(d, "invalid_data")
            if fr is not None:
                # each message a `pdu` frame, with its transaction (rust/src/ldap/ldap.rs)
                ntx = len(self.txs)
                at = fr.total[d] - n + off
                msg = buf[off:off2]
            off = off2
            if to_server:
                if not self._request(m):
                    self._fail(d, None)
            else:
                r = self._response(m)
                if r is None:
                    self._fail(d, None)
            if fr is not None:
                tx = self.txs[-1] if self.txs and (len(self.txs) > ntx or not to_server) else None
                fr.add(to_server, "pdu", at, msg, len(msg), tx.tx_id if tx is not None else None)
            if not to_server and r:
                change = True
                off = n
                break
        self.buf[d] = buf[off:]
        if change:
            raise ProtocolChange("tls")

    def _datagram(self, data: bytes, to_server: bool) -> None:
        off, n = 0, len(data)
        while off < n:
            try:
                m, off = parse_message(data, off)
            except _Short:
                self._event("incomplete_data")
                raise ParserError("ldap: datagram cut short") from None
            except _Bad:
                self._event("invalid_data")
                raise ParserError("ldap: not an LDAP message") from None
            if to_server:
                if not self._request(m):
                    raise ParserError("ldap: too many transactions")
                return              # one request per datagram
            if self._response(m) is None:
                raise ParserError("ldap: too many transactions")

    def _request(self, m: Message) -> bool:
        tx = self._new_tx()
        if tx is None:
            return False
        if m.op == 23 and m.fields.get("name") == STARTTLS_OID:
            self.starttls = True
        tx.request = m
        tx.done[1] = True
        if m.op in (2, 16):
            self._complete(tx)
        tx.touch(True)
        return True

    def _response(self, m: Message) -> bool | None:
        """Files a response; True: StartTLS accepted (TLS follows); None: no room for a
        transaction."""
        change = False
        if self.starttls and m.op == 24:
            change = m.fields.get("result_code") == 0
            self.starttls = False
        for tx in self.txs:
            req = tx.request
            if req is not None and req.message_id == m.message_id:
                if m.op in FINAL:
                    self._complete(tx)
                if len(tx.responses) < MAX_RESPONSES:
                    tx.responses.append(m)
                else:
                    tx.add_event("too_many_responses")
                tx.touch(False)
                return change
        tx = self._new_tx()
        if tx is None:
            return None
        tx.responses.append(m)
        tx.done[1] = True
        self._complete(tx)
        if m.op != 24:
            tx.add_event("request_not_found")
        tx.touch(False)
        return change

    def _event(self, name: str) -> None:
        event_on_newest(self.txs, name)

    def _fail(self, d: int, event: str | None) -> None:
        if event is not None:
            self._event(event)
        self.lost[d] = True
        self.buf[d] = b""
        raise ParserError("ldap: not an LDAP message")


def probe(data: bytes, to_server: bool) -> bool | None:
    try:
        parse_message(data)
    except _Short:
        return None
    except (_Bad, ValueError, IndexError):
        return False
    return True


def answer_first(data: bytes) -> bool:
    """A first datagram that is a response: its sender is the server."""
    try:
        m, _ = parse_message(data)
    except (_Short, _Bad, ValueError, IndexError):
        return False
    return m.op not in REQUESTS


# --- buffers --------------------------------------------------------------------------------

def _request_dn(tx: LdapTx, to_server: bool) -> bytes | None:
    req = tx.request
    if req is None:
        return None
    f = req.fields
    key = {0: "name", 8: "entry", 3: "base_object", 6: "object", 10: "dn", 12: "entry", 14: "entry"}.get(req.op)
    if key is None:
        return None
    return f[key].encode("utf-8", "surrogateescape")


def _responses_dn(tx: LdapTx, to_server: bool) -> list[bytes]:
    out = []
    for m in tx.responses:
        if m.op == 4:
            out.append(m.fields["object_name"].encode())
        elif m.op in RESULT_OPS:
            out.append(m.fields["matched_dn"].encode())
        else:
            out.append(b"")
    return out


def _responses_message(tx: LdapTx, to_server: bool) -> list[bytes]:
    return [m.fields["message"].encode() if m.op in RESULT_OPS else b"" for m in tx.responses]


def _request_attribute_type(tx: LdapTx, to_server: bool) -> list[bytes] | None:
    req = tx.request
    if req is None:
        return None
    f = req.fields
    if req.op == 3:
        return [a.encode() for a in f["attributes"]]
    if req.op == 6:
        return [c[1].encode() for c in f["changes"]]
    if req.op == 8:
        return [a[0].encode() for a in f["attributes"]]
    if req.op == 14:
        return [f["description"].encode()]
    return None


def _responses_attribute_type(tx: LdapTx, to_server: bool) -> list[bytes]:
    return [a[0].encode() for m in tx.responses if m.op == 4 for a in m.fields["attributes"]]


# Suricata's LDAP frame (rust/src/ldap/ldap.rs LdapFrameType), marked by LdapParser.parse
register_stream_frames("ldap", ("pdu",))
register_buffer("ldap.request.dn", "ldap", TO_SERVER, _request_dn)
register_buffer("ldap.responses.dn", "ldap", TO_CLIENT, _responses_dn, multi=True)
register_buffer("ldap.responses.message", "ldap", TO_CLIENT, _responses_message, multi=True)
register_buffer("ldap.request.attribute_type", "ldap", TO_SERVER, _request_attribute_type, multi=True)
register_buffer("ldap.responses.attribute_type", "ldap", TO_CLIENT, _responses_attribute_type, multi=True)
register_protocol(Protocol("ldap", (6, 17), probe, LdapParser, (389, 3268), port_decides=(), ports_only=True,
                           answer_first=answer_first))
CHANGERS.add("ldap")            # StartTLS: TLS follows
