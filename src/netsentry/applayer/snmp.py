"""SNMP v1, v2c and v3 over UDP, as Suricata's parser (rust/src/snmp/, on the snmp-parser
crate) reads it: the `snmp.*` keywords, the `snmp` EVE record, the `snmp.*` events.

- Detection on ports 161 and 162 only (Suricata's probing parser by port): a BER SEQUENCE
  of three elements whose first is the integer 0 or 1 (v1, v2c), or of four whose first is
  3 (v3). The flow's version is the first message's.
- Every datagram is a transaction of its own direction, complete at once, logged when
  seen. A v1/v2c message: version, community, PDU (type, error status, the trap's type,
  enterprise OID and agent address for a v1 trap, the variable bindings' OIDs). A v3
  message: the USM user name, the PDU when it is not encrypted (`pdu_type: encrypted`).
- Events: `malformed_data` (on the newest transaction; an app-layer error),
  `version_mismatch` (a message of another version than the flow's),
  `unknown_security_model` (v3 other than USM).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from netsentry.applayer import der, evestr
from netsentry.applayer.der import DerError
from netsentry.applayer import enabled
from netsentry.applayer.registry import BOTH, ParserError, Protocol, register_buffer, register_protocol
from netsentry.applayer.registry import register_states
from netsentry.applayer.tx import MessageTx

EVENTS: dict[str, int | None] = {"malformed_data": BOTH, "unknown_security_model": BOTH,
                                 "version_mismatch": BOTH}
PDU_TYPES = ("get_request", "get_next_request", "response", "set_request", "trap_v1", "get_bulk_request",
             "inform_request", "trap_v2", "report")
TRAP_TYPES = ("ColdStart", "WarmStart", "LinkDown", "LinkUp", "AuthenticationFailure", "EgpNeighborLoss",
              "EnterpriseSpecific")
ERRORS = ("NoError", "TooBig", "NoSuchName", "BadValue", "ReadOnly", "GenErr", "NoAccess", "WrongType",
          "WrongLength", "WrongEncoding", "WrongValue", "NoCreation", "InconsistentValue",
          "ResourceUnavailable", "CommitFailed", "UndoFailed", "AuthorizationError", "NotWritable",
          "InconsistentName")
_SEQ, _INT, _OCTETS, _OID, _IPADDR = 0x30, 0x02, 0x04, 0x06, 0x40


def envelope_version(data: bytes) -> int | None:
    """Suricata's parse_pdu_envelope_version: 1, 2 or 3, None when it is not SNMP; Short
    when the datagram stops inside the outer SEQUENCE."""
    s, e = der.expect(data, 0, len(data), _SEQ)
    kids = der.children(data, s, e)
    if not kids or kids[0][0] != _INT:
        return None
    v = der.integer(data, kids[0][1], kids[0][2])
    if len(kids) == 3 and v in (0, 1):
        return v + 1
    if len(kids) == 4 and v == 3:
        return 3
    return None


def probe(data: bytes, to_server: bool) -> bool | None:
    if data[:1] not in (b"", b"\x30"):
        return False
    if len(data) < 4:
        return None
    try:
        return envelope_version(data) is not None
    except der.Short:
        return None
    except DerError:
        return False


class Pdu:
    __slots__ = ("pdu_type", "err", "trap", "vars")

    def __init__(self, pdu_type: int) -> None:
        self.pdu_type = pdu_type
        self.err = 0
        self.trap: tuple[int, str, str] | None = None       # (generic trap, enterprise OID, agent address)
        self.vars: list[str] = []


def _varbinds(data: bytes, s: int, e: int) -> list[str]:
    out = []
    for t, vs, ve in der.children(data, s, e):
        if t != _SEQ:
            raise DerError("variable binding is not a SEQUENCE")
        ns, ne = der.expect(data, vs, ve, _OID)
        out.append(der.oid(data, ns, ne))
    return out


def parse_pdu(data: bytes, tag: int, s: int, e: int) -> Pdu:
    if tag & 0xE0 != 0xA0 or (tag & 0x1F) > 8:
        raise DerError(f"unknown PDU tag 0x{tag:02x}")
    p = Pdu(tag & 0x1F)
    kids = der.children(data, s, e)
    if p.pdu_type == 4:             # Trap-PDU (v1)
        if len(kids) != 6 or kids[0][0] != _OID or kids[1][0] != _IPADDR:
            raise DerError("bad v1 trap")
        ent = der.oid(data, kids[0][1], kids[0][2])
        addr = data[kids[1][1]:kids[1][2]]
        if len(addr) != 4:
            raise DerError("bad agent address")
        generic = der.integer(data, kids[2][1], kids[2][2])
        p.trap = (generic, ent, str(ipaddress.IPv4Address(addr)))
        vb = kids[5]
    else:
        if len(kids) != 4 or any(k[0] != _INT for k in kids[:3]):
            raise DerError("bad PDU")
        if p.pdu_type != 5:
            p.err = der.integer(data, kids[1][1], kids[1][2])
        vb = kids[3]
    if vb[0] != _SEQ:
        raise DerError("variable bindings are not a SEQUENCE")
    p.vars = _varbinds(data, vb[1], vb[2])
    return p


class SnmpTx(MessageTx):
    __slots__ = ("version", "pdu", "community", "usm", "encrypted")
    proto = "snmp"

    def __init__(self, tx_id: int, to_server: bool, version: int) -> None:
        super().__init__(tx_id, to_server)
        self.version = version
        self.pdu: Pdu | None = None
        self.community: bytes | None = None
        self.usm: bytes | None = None
        self.encrypted = False

    def eve(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": self.version}
        if self.encrypted:
            out["pdu_type"] = "encrypted"
            return out
        p = self.pdu
        if p is not None:
            out["pdu_type"] = PDU_TYPES[p.pdu_type] if p.pdu_type < len(PDU_TYPES) else f"Unknown(0x{p.pdu_type:x})"
            if p.err:
                out["error"] = ERRORS[p.err] if 0 <= p.err < len(ERRORS) else f"ErrorStatus({p.err})"
            if p.trap is not None:
                g = p.trap[0]
                out["trap_type"] = TRAP_TYPES[g] if 0 <= g < len(TRAP_TYPES) else f"TrapType({g})"
                out["trap_oid"] = p.trap[1]
                out["trap_address"] = p.trap[2]
            if p.vars:
                out["vars"] = list(p.vars)
        if self.community is not None:
            out["community"] = evestr.lossy(self.community)
        if self.usm is not None:
            out["usm"] = evestr.lossy(self.usm)
        return out


class SnmpParser:
    def __init__(self, settings: Any = None) -> None:
        self.off = settings is not None and not settings["parse"]     # detection-only
        self.txs: list[SnmpTx] = []
        self.version = 0

    def parse(self, data: bytes, to_server: bool, pkt: Any = None) -> None:
        if self.off:
            return
        if self.version == 0:
            try:
                self.version = envelope_version(data) or 0
            except DerError:
                pass
        try:
            self._message(data, to_server)
        except DerError:
            if self.txs:
                self.txs[-1].add_event("malformed_data")
                self.txs[-1].touch(to_server)
            raise ParserError("snmp: malformed_data") from None

    def _message(self, data: bytes, to_server: bool) -> None:
        s, e = der.expect(data, 0, len(data), _SEQ)
        kids = der.children(data, s, e)
        if not kids or kids[0][0] != _INT:
            raise DerError("no version")
        v = der.integer(data, kids[0][1], kids[0][2])
        tx = SnmpTx(len(self.txs), to_server, self.version)
        if v in (0, 1):
            if len(kids) != 3 or kids[1][0] != _OCTETS:
                raise DerError("bad v1/v2c message")
            tx.pdu = parse_pdu(data, *kids[2])
            tx.community = data[kids[1][1]:kids[1][2]]
            if self.version != v + 1:
                tx.add_event("version_mismatch")
        elif v == 3:
            if len(kids) != 4 or kids[1][0] != _SEQ or kids[2][0] != _OCTETS:
                raise DerError("bad v3 message")
            glob = der.children(data, kids[1][1], kids[1][2])
            if len(glob) != 4 or glob[3][0] != _INT:
                raise DerError("bad v3 global data")
            model = der.integer(data, glob[3][1], glob[3][2])
            t, ds, de_ = kids[3]
            if t == _SEQ:
                scoped = der.children(data, ds, de_)
                if len(scoped) != 3:
                    raise DerError("bad scoped PDU")
                pdu = parse_pdu(data, *scoped[2])
            elif t == _OCTETS:
                pdu = None
            else:
                raise DerError("bad v3 data")
            usm = None
            if model == 3:
                ps, pe = der.expect(data, kids[2][1], kids[2][2], _SEQ)
                params = der.children(data, ps, pe)
                if len(params) != 6 or params[3][0] != _OCTETS:
                    raise DerError("bad USM parameters")
                usm = data[params[3][1]:params[3][2]]
            if self.version != 3:
                tx.add_event("version_mismatch")
            if pdu is None:
                tx.encrypted = True
            else:
                tx.pdu = pdu
            if model == 3:
                tx.usm = usm
            else:
                tx.add_event("unknown_security_model")
        else:
            raise DerError(f"unknown version {v}")
        self.txs.append(tx)
        tx.touch(to_server)


def _side(get_):
    def get(tx: SnmpTx, to_server: bool) -> bytes | None:
        return get_(tx) if tx.to_server == to_server else None
    return get


register_buffer("snmp.community", "snmp", BOTH, _side(lambda tx: tx.community or None))
register_buffer("snmp.usm", "snmp", BOTH, _side(lambda tx: tx.usm))    # present and empty: bsize:0 matches (v3 without a user)
register_buffer("snmp.trap_oid", "snmp", BOTH,
                _side(lambda tx: tx.pdu.trap[1].encode() if tx.pdu is not None and tx.pdu.trap else None))
register_buffer("snmp.trap_address", "snmp", BOTH,
                _side(lambda tx: tx.pdu.trap[2].encode() if tx.pdu is not None and tx.pdu.trap else None))
register_states("snmp", ("request_started", "request_complete"), ("response_started", "response_complete"),
                lambda tx, ts: 1)
register_protocol(Protocol("snmp", (17,), probe, SnmpParser, (161, 162), ports_only=True,
                           configure=lambda config: enabled.settings(config, "snmp")))
