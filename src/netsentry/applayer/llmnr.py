"""LLMNR (RFC 4795): DNS's message format on port 5355, UDP and TCP, as Suricata 9's
rust/src/llmnr/ runs its DNS parser in the LLMNR variant.

- Detection: DNS's probe, on LLMNR's port (5355; `app-layer.protocols.llmnr.*.
  detection-ports` moves it). Elsewhere DNS, registered first, takes a DNS-looking flow.
- Parsing, transactions and events are DNS's (applayer/dns.py: one transaction per
  message, the TCP length prefix), except that any opcode other than 0 raises
  ``invalid_opcode`` (RFC 4795 2.1.1), where DNS raises it from 7 on.
- Buffers `llmnr.queries.rrname`, `llmnr.answers.rrname`, `llmnr.authorities.rrname`,
  `llmnr.additionals.rrname`, `llmnr.response.rrname`: DNS's getters.
- EVE `llmnr` (Suricata's llmnr/log.rs): `type` (request/response), `id` (the wire
  id), `flags` (["c", "tc", "t"] when set), `opcode`, `queries` [{rrname, rrtype}]
  and `answers`/`authorities`/`additionals` [{rrname, <rrtype>: rdata}], the rrtype
  in lower case and the rdata under its name (``"a": "10.0.0.1"``).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from netsentry.applayer import dns
from netsentry.applayer.registry import BOTH, TO_CLIENT, TO_SERVER, Protocol, register_buffer, register_protocol

EVENTS: dict[str, int | None] = {name: BOTH for name in (
    "malformed_data", "not_a_request", "not_a_response", "z_flag_set", "invalid_opcode",
    "name_too_long", "infinite_loop", "too_many_labels", "invalid_additionals", "invalid_authorities")}


def _rrtype(t: int) -> str:
    return dns.RRTYPES.get(t, str(t)).lower()


def _rdata(rtype: int, rdata: bytes) -> Any:
    if rtype == 1 and len(rdata) == 4:
        return str(ipaddress.IPv4Address(rdata))
    if rtype == 28 and len(rdata) == 16:
        return str(ipaddress.IPv6Address(rdata))
    if rtype == 16:
        out, i = [], 0
        while i < len(rdata):
            ln = rdata[i]
            out.append(rdata[i + 1:i + 1 + ln].decode("utf-8", "replace"))
            i += 1 + ln
        return out
    return rdata.decode("utf-8", "replace")


def _rr(rr: tuple[bytes, int, int, bytes]) -> dict[str, Any]:
    name, rtype, _ttl, rdata = rr
    return {"rrname": name.decode("utf-8", "replace"), _rrtype(rtype): _rdata(rtype, rdata)}


class LlmnrTx(dns.DnsTx):
    """One LLMNR message (a DNS transaction with its own record)."""

    __slots__ = ()
    proto = "llmnr"

    def alert_eve(self) -> dict[str, Any]:
        response = self.request is None
        m = self.message
        out: dict[str, Any] = {"type": "response" if response else "request", "id": m.id}
        flags = [name for bit, name in ((0x0400, "c"), (0x0200, "tc"), (0x0100, "t")) if m.flags & bit]
        if flags:
            out["flags"] = flags
        out["opcode"] = m.opcode
        if m.queries:
            out["queries"] = [{"rrname": n.decode("utf-8", "replace"), "rrtype": _rrtype(t)} for n, t in m.queries]
            for i in m.truncated or ():
                out["queries"][i]["rrname_truncated"] = True
        if m.answers:
            out["answers"] = [_rr(rr) for rr in m.answers]
        if m.authorities:
            out["authorities"] = [_rr(rr) for rr in m.authorities]
        additionals = [_rr(rr) for rr in m.additionals if not (rr[1] == 41 and not rr[3])]
        if additionals:
            out["additionals"] = additionals
        return out


class LlmnrParser(dns.DnsParser):
    """DNS's parser making LLMNR transactions."""

    def _new(self, m: dns.Message, to_server: bool, response: bool) -> dns.DnsTx:
        if m.opcode != 0:
            m.events.add("invalid_opcode")
        tx = LlmnrTx(len(self.txs), m, response)
        self.txs.append(tx)
        for name in m.events:
            tx.add_event(name)
        tx.touch(to_server)
        return tx


register_buffer("llmnr.queries.rrname", "llmnr", BOTH, dns._query_names, multi=True)
register_buffer("llmnr.answers.rrname", "llmnr", BOTH, dns._rrnames("answers"), multi=True)
register_buffer("llmnr.authorities.rrname", "llmnr", BOTH, dns._rrnames("authorities"), multi=True)
register_buffer("llmnr.additionals.rrname", "llmnr", BOTH, dns._rrnames("additionals"), multi=True)
register_buffer("llmnr.response.rrname", "llmnr", TO_CLIENT, dns._response_names, multi=True)
register_buffer("frame:llmnr.pdu", "llmnr", BOTH, lambda tx, ts: tx.pdu or None)
_ = TO_SERVER

def _answer(data: bytes) -> bool:
    """The QR bit: a response (Suricata's DNS probe reverses the flow on one)."""
    return len(data) >= 4 and bool(data[2] & 0x80)


register_protocol(Protocol("llmnr", (17, 6), dns._probe_any, LlmnrParser, (5355,), port_decides=(17, 6),
                           tcp_probe=dns._probe_tcp, answer_first=_answer))
