"""Kerberos 5 (RFC 4120) over UDP and TCP (record marking: a 4-byte length before each
message), as Suricata's parser (rust/src/krb/, on the kerberos-parser crate) reads it: the
`krb5_msg_type`, `krb5_err_code`, `krb5.cname`, `krb5.sname`, `krb5.ticket_encryption`
keywords, the `krb5` EVE record, the `krb5.*` events.

- Detection on port 88 only (Suricata's probing parsers by port): an APPLICATION-class
  element (tag 0..30) wrapping a SEQUENCE whose first field is `pvno 5`; over TCP after a
  record mark of at most 16384 (a first segment of 14 bytes or less is refused).
- AS-REQ, TGS-REQ, AS-REP, TGS-REP and KRB-ERROR are transactions of their own direction,
  complete at once, logged when seen: `msg_type`, `failed_request` and `error_code` of an
  error (the request it answers, UNKNOWN when it was not seen), `cname`, `realm`, `sname`
  (`<empty>` when absent), `encryption` / `weak_encryption` (a reply's enc-part etype, `<none>`
  for a request), `ticket_encryption` / `ticket_weak_encryption` (a reply's ticket). Only the
  AES and Camellia types are strong (Suricata's test_weak_encryption).
- A message whose element header does not read raises ``malformed_data`` on the newest
  transaction and is an app-layer error; a reply with a weak etype raises ``weak_encryption``.
  A message of a known type that does not parse makes no transaction (as Suricata).
"""

from __future__ import annotations

from typing import Any

from netsentry.applayer import der, enabled, evestr
from netsentry.applayer.der import DerError
from netsentry.applayer.registry import (BOTH, TO_CLIENT, ParserError, Protocol, register_buffer, register_protocol,
                                         register_states)
from netsentry.applayer.tx import MessageTx

EVENTS: dict[str, int | None] = {"malformed_data": BOTH, "weak_encryption": BOTH}
MSG_TYPES = {10: "KRB_AS_REQ", 11: "KRB_AS_REP", 12: "KRB_TGS_REQ", 13: "KRB_TGS_REP", 14: "KRB_AP_REQ",
             15: "KRB_AP_REP", 16: "KRB_RESERVED16", 17: "KRB_RESERVED17", 20: "KRB_SAFE", 21: "KRB_PRIV",
             22: "KRB_CRED", 30: "KRB_ERROR"}
# Suricata's krb5_msg_type names (Krb5MessageType)
MSG_TYPE_NAMES = {"as_req": 10, "as_rep": 11, "tgs_req": 12, "tgs_rep": 13, "ap_req": 14, "ap_rep": 15,
                  "reserved16": 16, "reserved17": 17, "safe": 20, "priv": 21, "cred": 22, "error": 30}
ETYPES = {1: "des-cbc-crc", 2: "des-cbc-md4", 3: "des-cbc-md5", 5: "des3-cbc-md5", 7: "des3-cbc-sha1",
          9: "dsaWithSHA1-CmsOID", 10: "md5WithRSAEncryption-CmsOID", 11: "sha1WithRSAEncryption-CmsOID",
          12: "rc2CBC-EnvOID", 13: "rsaEncryption-EnvOID", 14: "rsaES-OAEP-ENV-OID", 15: "des-ede3-cbc-Env-OID",
          16: "des3-cbc-sha1-kd", 17: "aes128-cts-hmac-sha1-96", 18: "aes256-cts-hmac-sha1-96",
          19: "aes128-cts-hmac-sha256-128", 20: "aes256-cts-hmac-sha384-192", 23: "rc4-hmac",
          24: "rc4-hmac-exp", 25: "camellia128-cts-cmac", 26: "camellia256-cts-cmac", 65: "subkey-keymaterial",
          -128: "rc4-md4", -129: "rc4-plain2", -130: "rc4-lm", -131: "rc4-sha", -132: "des-plain",
          -133: "rc4-hmac-OLD", -134: "rc4-plain-OLD", -135: "rc4-hmac-OLD-exp", -136: "rc4-plain-OLD-exp",
          -140: "rc4-plain", -141: "rc4-plain-exp"}
STRONG = frozenset((17, 18, 19, 20, 25, 26))
ERRORS = {0: "KDC_ERR_NONE", 1: "KDC_ERR_NAME_EXP", 2: "KDC_ERR_SERVICE_EXP", 3: "KDC_ERR_BAD_PVNO",
          4: "KDC_ERR_C_OLD_MAST_KVNO", 5: "KDC_ERR_S_OLD_MAST_KVNO", 6: "KDC_ERR_C_PRINCIPAL_UNKNOWN",
          7: "KDC_ERR_S_PRINCIPAL_UNKNOWN", 8: "KDC_ERR_PRINCIPAL_NOT_UNIQUE", 9: "KDC_ERR_NULL_KEY",
          10: "KDC_ERR_CANNOT_POSTDATE", 11: "KDC_ERR_NEVER_VALID", 12: "KDC_ERR_POLICY",
          13: "KDC_ERR_BADOPTION", 14: "KDC_ERR_ETYPE_NOSUPP", 15: "KDC_ERR_SUMTYPE_NOSUPP",
          16: "KDC_ERR_PADATA_TYPE_NOSUPP", 17: "KDC_ERR_TRTYPE_NOSUPP", 18: "KDC_ERR_CLIENT_REVOKED",
          19: "KDC_ERR_SERVICE_REVOKED", 20: "KDC_ERR_TGT_REVOKED", 21: "KDC_ERR_CLIENT_NOTYET",
          22: "KDC_ERR_SERVICE_NOTYET", 23: "KDC_ERR_KEY_EXPIRED", 24: "KDC_ERR_PREAUTH_FAILED",
          25: "KDC_ERR_PREAUTH_REQUIRED", 26: "KDC_ERR_SERVER_NOMATCH", 27: "KDC_ERR_MUST_USE_USER2USER",
          28: "KDC_ERR_PATH_NOT_ACCEPTED", 29: "KDC_ERR_SVC_UNAVAILABLE", 31: "KRB_AP_ERR_BAD_INTEGRITY",
          32: "KRB_AP_ERR_TKT_EXPIRED", 33: "KRB_AP_ERR_TKT_NYV", 34: "KRB_AP_ERR_REPEAT",
          35: "KRB_AP_ERR_NOT_US", 36: "KRB_AP_ERR_BADMATCH", 37: "KRB_AP_ERR_SKEW", 38: "KRB_AP_ERR_BADADDR",
          39: "KRB_AP_ERR_BADVERSION", 40: "KRB_AP_ERR_MSG_TYPE", 41: "KRB_AP_ERR_MODIFIED",
          42: "KRB_AP_ERR_BADORDER", 44: "KRB_AP_ERR_BADKEYVER", 45: "KRB_AP_ERR_NOKEY",
          46: "KRB_AP_ERR_MUT_FAIL", 47: "KRB_AP_ERR_BADDIRECTION", 48: "KRB_AP_ERR_METHOD",
          49: "KRB_AP_ERR_BADSEQ", 50: "KRB_AP_ERR_INAPP_CKSUM", 51: "KRB_AP_PATH_NOT_ACCEPTED",
          52: "KRB_ERR_RESPONSE_TOO_BIG", 60: "KRB_ERR_GENERIC", 61: "KRB_ERR_FIELD_TOOLONG",
          62: "KDC_ERROR_CLIENT_NOT_TRUSTED", 63: "KDC_ERROR_KDC_NOT_TRUSTED", 64: "KDC_ERROR_INVALID_SIG",
          65: "KDC_ERR_KEY_TOO_WEAK", 66: "KDC_ERR_CERTIFICATE_MISMATCH", 67: "KRB_AP_ERR_NO_TGT",
          68: "KDC_ERR_WRONG_REALM", 69: "KRB_AP_ERR_USER_TO_USER_REQUIRED",
          70: "KDC_ERR_CANT_VERIFY_CERTIFICATE", 71: "KDC_ERR_INVALID_CERTIFICATE",
          72: "KDC_ERR_REVOKED_CERTIFICATE", 73: "KDC_ERR_REVOCATION_STATUS_UNKNOWN",
          74: "KDC_ERR_REVOCATION_STATUS_UNAVAILABLE", 75: "KDC_ERR_CLIENT_NAME_MISMATCH",
          76: "KDC_ERR_KDC_NAME_MISMATCH"}
MAX_RECORD = 16384           # the TCP probe's largest first record mark


def weak(etype: int) -> bool:
    return etype not in STRONG


def etype_name(etype: int) -> str:
    return ETYPES.get(etype, f"EncryptionType({etype})")


class NotApplication(Exception):
    """The first element is not of the APPLICATION class (Suricata skips such a message)."""


def app_header(data: bytes) -> tuple[int, int, int]:
    """(application tag number, value start, value end); DerError when the first element
    is not of the APPLICATION class or does not read."""
    t, s, n = der.header(data, 0, len(data))
    if t & 0xC0 != 0x40:
        raise NotApplication
    # the value may run past the bytes here: the message's own parse fails then, as Suricata's
    return t & 0x1F if t & 0x1F != 0x1F else t >> 8, s, min(s + n, len(data))


def probe_udp(data: bytes, to_server: bool) -> bool | None:
    if len(data) <= 10:
        return False
    try:
        t, s, e = der.tlv(data, 0, len(data))
    except der.Short:
        return None
    except DerError:
        return False
    if t & 0xC0 != 0x40 or (t & 0x1F) > 30 or s >= len(data) or data[s] != 0x30:
        return False
    try:
        _, s2, _ = der.tlv(data, s, len(data))
    except DerError:
        return False
    rem = data[s2:]
    return len(rem) > 5 and rem[2:5] == b"\x02\x01\x05"


def probe_tcp(data: bytes, to_server: bool) -> bool | None:
    if len(data) <= 14:
        return False
    if int.from_bytes(data[:4], "big") > MAX_RECORD:
        return False
    return probe_udp(data[4:], to_server)


def _fields(data: bytes, s: int, e: int) -> dict[int, tuple[int, int]]:
    """The context-tagged fields [n] of a SEQUENCE: n -> (value start, value end) of the
    element inside the explicit tag."""
    s, e = der.expect(data, s, e, 0x30)
    out = {}
    for t, cs, ce in der.children(data, s, e):
        if t & 0xE0 == 0xA0:
            out[t & 0x1F] = (cs, ce)
    return out


def _int(data: bytes, f: tuple[int, int]) -> int:
    s, e = der.expect(data, f[0], f[1], 0x02)
    return der.integer(data, s, e)


def _string(data: bytes, f: tuple[int, int]) -> bytes:
    t, s, e = der.tlv(data, f[0], f[1])
    return data[s:e]


def _principal(data: bytes, f: tuple[int, int]) -> list[bytes]:
    p = _fields(data, f[0], f[1])
    if 1 not in p:
        raise DerError("principal without name-string")
    s, e = der.expect(data, p[1][0], p[1][1], 0x30)
    return [data[cs:ce] for _, cs, ce in der.children(data, s, e)]


def _etype(data: bytes, f: tuple[int, int]) -> int:
    p = _fields(data, f[0], f[1])
    if 0 not in p:
        raise DerError("EncryptedData without etype")
    return _int(data, p[0])


class Krb5Tx(MessageTx):
    __slots__ = ("msg_type", "cname", "realm", "sname", "etype", "ticket_etype", "error_code", "req_type")
    proto = "krb5"

    def __init__(self, tx_id: int, to_server: bool, msg_type: int) -> None:
        super().__init__(tx_id, to_server)
        self.msg_type = msg_type
        self.cname: list[bytes] | None = None
        self.realm: bytes | None = None
        self.sname: list[bytes] | None = None
        self.etype: int | None = None
        self.ticket_etype: int | None = None
        self.error_code: int | None = None
        self.req_type: int | None = None

    def eve(self) -> dict[str, Any]:
        out: dict[str, Any] = {"msg_type": MSG_TYPES.get(self.msg_type, f"MessageType({self.msg_type})")}
        if self.error_code is not None:
            rt = self.req_type
            out["failed_request"] = "UNKNOWN" if rt is None else MSG_TYPES.get(rt, f"MessageType({rt})")
            out["error_code"] = ERRORS.get(self.error_code, f"ErrorCode({self.error_code})")
        out["cname"] = _pname(self.cname)
        out["realm"] = "<empty>" if self.realm is None else evestr.lossy(self.realm)
        out["sname"] = _pname(self.sname)
        out["encryption"] = "<none>" if self.etype is None else etype_name(self.etype)
        out["weak_encryption"] = self.etype is not None and weak(self.etype)
        if self.ticket_etype is not None:
            out["ticket_encryption"] = etype_name(self.ticket_etype)
            out["ticket_weak_encryption"] = weak(self.ticket_etype)
        return out


def _pname(p: list[bytes] | None) -> str:
    return "<empty>" if p is None else "/".join(evestr.lossy(x) for x in p)


class Krb5Parser:
    def __init__(self, settings: Any = None) -> None:
        self.off = settings is not None and not settings["parse"]     # detection-only
        self.txs: list[Krb5Tx] = []
        self.req_id = 0
        self.buf = [b"", b""]
        self.lost = [False, False]

    def gap(self, to_server: bool, nbytes: int) -> None:
        self.buf[int(to_server)] = b""
        self.lost[int(to_server)] = True

    def parse(self, data: bytes, to_server: bool, pkt: Any = None) -> None:
        if self.off or not data:
            return
        if pkt is None or getattr(pkt, "proto", 6) != 6:
            self._message(data, to_server)
            return
        d = int(to_server)
        if self.lost[d]:
            return
        buf = self.buf[d] + data if self.buf[d] else data
        off, n = 0, len(buf)
        while n - off >= 4:
            length = int.from_bytes(buf[off:off + 4], "big")
            if n - off - 4 < length:
                break
            try:
                self._message(buf[off + 4:], to_server)
            except ParserError:
                self.buf[d] = b""
                self.lost[d] = True
                raise
            off += 4 + length
        self.buf[d] = buf[off:]

    def _message(self, data: bytes, to_server: bool) -> None:
        try:
            tag, s, e = app_header(data)
        except NotApplication:
            return
        except DerError:
            if self.txs:
                self.txs[-1].add_event("malformed_data")
                self.txs[-1].touch(to_server)
            raise ParserError("krb5: malformed_data") from None
        try:
            tx = self._read(data, tag, s, e, to_server)
        except DerError:
            tx = None           # a message of a known type that does not parse: no transaction
        if tag in (10, 12, 14):
            self.req_id = tag
        elif tag in (11, 13, 15, 30):
            self.req_id = 0
        if tx is not None:
            self.txs.append(tx)
            tx.touch(to_server)
            if tx.etype is not None and tag in (11, 13) and weak(tx.etype):
                tx.add_event("weak_encryption")

    def _read(self, data: bytes, tag: int, s: int, e: int, to_server: bool) -> Krb5Tx | None:
        if tag in (10, 12):                 # KDC-REQ
            f = _fields(data, s, e)
            if 4 not in f:
                raise DerError("KDC-REQ without req-body")
            body = _fields(data, *f[4])
            if 2 not in body:
                raise DerError("KDC-REQ-BODY without realm")
            tx = Krb5Tx(len(self.txs), to_server, tag)
            tx.cname = _principal(data, body[1]) if 1 in body else None
            tx.realm = _string(data, body[2])
            tx.sname = _principal(data, body[3]) if 3 in body else None
            return tx
        if tag in (11, 13):                 # KDC-REP
            f = _fields(data, s, e)
            if any(k not in f for k in (3, 4, 5, 6)):
                raise DerError("KDC-REP without its fields")
            ts, te = der.expect(data, f[5][0], f[5][1], 0x61)       # Ticket ::= [APPLICATION 1]
            ticket = _fields(data, ts, te)
            if 2 not in ticket or 3 not in ticket:
                raise DerError("Ticket without sname or enc-part")
            tx = Krb5Tx(len(self.txs), to_server, tag)
            if self.req_id:
                tx.req_type = self.req_id
            tx.cname = _principal(data, f[4])
            tx.realm = _string(data, f[3])
            tx.sname = _principal(data, ticket[2])
            tx.ticket_etype = _etype(data, ticket[3])
            tx.etype = _etype(data, f[6])
            return tx
        if tag == 30:                       # KRB-ERROR
            f = _fields(data, s, e)
            if any(k not in f for k in (6, 9, 10)):
                raise DerError("KRB-ERROR without its fields")
            tx = Krb5Tx(len(self.txs), to_server, 30)
            if self.req_id:
                tx.req_type = self.req_id
            tx.error_code = _int(data, f[6])
            tx.cname = _principal(data, f[8]) if 8 in f else None
            tx.realm = _string(data, f[7]) if 7 in f else None
            tx.sname = _principal(data, f[10])
            return tx
        return None


def _names(attr: str):
    def get(tx: Krb5Tx, to_server: bool) -> list[bytes] | None:
        if tx.to_server != to_server:
            return None
        return getattr(tx, attr) or None
    return get


# Suricata registers both name buffers for the to-client side only: a request's names are
# not inspected (krb5-request-frag-log)
register_buffer("krb5.cname", "krb5", TO_CLIENT, _names("cname"), multi=True)
register_buffer("krb5.sname", "krb5", TO_CLIENT, _names("sname"), multi=True)
register_states("krb5", ("request_started", "request_complete"), ("response_started", "response_complete"),
                lambda tx, ts: 1)
register_protocol(Protocol("krb5", (17, 6), probe_udp, Krb5Parser, (88,), tcp_probe=probe_tcp,
                           ports_only=True, configure=lambda config: enabled.settings(config, "krb5")))
