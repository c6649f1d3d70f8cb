"""DNS over UDP and TCP: probe, message parser, transactions, buffers, EVE (format v3).

One transaction per message, as Suricata 8's rust/src/dns: a request is a
transaction of the to-server direction, its response another of the to-client
direction (`tx_id` counts messages; `dns.id` is the wire id of each). A message
that does not parse, or a response sent to the server, makes none: its event
(malformed_data, not_a_request) goes on the flow's newest transaction. Over TCP every message carries
the RFC 1035 4.2.2 two-byte length prefix, and messages may span segments.
Names are decoded with compression pointers (loops and out-of-range pointers
end the name, never the parser).
"""

from __future__ import annotations

import struct
from typing import Any

from netsentry.applayer.registry import (BOTH, GENERIC_STATES, TO_CLIENT, TO_SERVER, Protocol, register_buffer,
                                         register_protocol, register_states)
from netsentry.applayer.tx import Tx

RRTYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 13: "HINFO", 15: "MX", 16: "TXT",
           28: "AAAA", 33: "SRV", 35: "NAPTR", 39: "DNAME", 41: "OPT", 43: "DS", 46: "RRSIG",
           47: "NSEC", 48: "DNSKEY", 50: "NSEC3", 52: "TLSA", 64: "SVCB", 65: "HTTPS", 99: "SPF",
           250: "TSIG", 251: "IXFR", 252: "AXFR", 255: "ANY", 257: "CAA"}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
          6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE"}
MAX_RRS = 256
# rdata that is (or starts with) a domain name, at this offset: NS, CNAME, SOA (mname),
# PTR, MX (after the preference), DNAME; Suricata's get_rdata_name and its EVE rdata
_NAME_RDATA = {2: 0, 5: 0, 6: 0, 12: 0, 15: 2, 39: 0}
_LOG_NAME_RDATA = frozenset({2, 5, 12, 15, 39})


MAX_NAME_LEN = 1025     # Suricata truncates a longer name (event name_too_long)
MAX_NAME_STEPS = 255    # labels and pointers followed per name (event too_many_labels)


def read_name(msg: bytes, off: int, events: set[str] | None = None) -> tuple[bytes, int]:
    """(dotted name, offset after it in the record), as Suricata's dns_parse_name: a pointer
    to itself stops the name (infinite_loop), more than 255 labels and pointers stop it
    (too_many_labels, which also catches longer pointer cycles), a name longer than 1025
    bytes is truncated (name_too_long). `events` collects those names.

    The usual name (plain labels ending in the root label, no pointer: every question
    of a query) is found by one walk over the length bytes and cut out as one slice
    whose inner length bytes become dots (bench/bench_dns.py); any other name takes
    the general walk (`_read_name_general`), which handles every case."""
    n = len(msg)
    p = off
    while p < n:
        ln = msg[p]
        if ln == 0:
            break
        if ln & 0xC0:
            return _read_name_general(msg, off, events)     # a pointer or a reserved label type
        p += 1 + ln
    else:
        return _read_name_general(msg, off, events)         # runs off the end of the message
    # plain labels: their size with the dots between them is p - off - 1
    if p == off:
        return b"", p + 1
    if p - off - 1 > MAX_NAME_LEN or p - off > 2 * MAX_NAME_STEPS:
        return _read_name_general(msg, off, events)         # maybe too long, maybe too many labels
    first = msg[off]
    if off + 1 + first == p:
        return msg[off + 1:p], p + 1                        # one label
    name = bytearray(msg[off + 1:p])
    q = first
    last = p - off - 1
    while q < last:
        step = name[q]
        name[q] = 46                                        # "."
        q += 1 + step
    return bytes(name), p + 1


def _read_name_general(msg: bytes, off: int, events: set[str] | None) -> tuple[bytes, int]:
    """`read_name` for any name: labels and pointers, with every limit checked."""
    labels: list[bytes] = []
    size = 0
    end = -1
    steps = 0
    truncated = False
    n = len(msg)
    while off < n:
        ln = msg[off]
        if ln == 0:
            off += 1
            break
        if ln & 0xC0 == 0xC0:
            if off + 1 >= n:
                off = n
                break
            target = ((ln & 0x3F) << 8) | msg[off + 1]
            if end < 0:
                end = off + 2
            if target == off:
                if events is not None:
                    events.add("infinite_loop")
                break
            off = target
        elif ln & 0xC0:
            break                      # reserved label type: the name ends here
        else:
            if not truncated:
                labels.append(msg[off + 1:off + 1 + ln])
                size += ln + (1 if size else 0)
                if size > MAX_NAME_LEN:
                    truncated = True
                    if events is not None:
                        events.add("name_too_long")
            off += 1 + ln
        steps += 1
        if steps > MAX_NAME_STEPS:
            if events is not None:
                events.add("too_many_labels")
            break
    name = b".".join(labels)
    return (name[:MAX_NAME_LEN] if truncated else name), (end if end >= 0 else off)


class Message:
    __slots__ = ("id", "flags", "queries", "answers", "authorities", "additionals", "events",
                 "truncated")

    def __init__(self) -> None:
        self.id = 0
        self.flags = 0
        self.queries: list[tuple[bytes, int]] = []
        self.answers: list[tuple[bytes, int, int, bytes]] = []
        self.authorities: list[tuple[bytes, int, int, bytes]] = []
        self.additionals: list[tuple[bytes, int, int, bytes]] = []
        # Suricata's DNS events this message raises: malformed_data (the question or answer
        # section does not fit), invalid_authorities/invalid_additionals (those do not),
        # z_flag_set, invalid_opcode and read_name's name events
        self.events: set[str] = set()
        # indices of the queries whose name was cut at MAX_NAME_LEN (EVE rrname_truncated)
        self.truncated: set[int] | None = None

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF

    @property
    def is_response(self) -> bool:
        return bool(self.flags & 0x8000)


_HEADER = struct.Struct("!HHHHHH").unpack_from
_RR_FIXED = struct.Struct("!HHIH").unpack_from       # type, class, ttl, rdlength


def parse_message(msg: bytes) -> Message | None:
    """A DNS message, or None when the header does not fit (never raises). A section that
    does not fit ends the parse, with its event in `events`.

    Written for speed (bench/bench_dns.py): precompiled structs, the question's type
    from two bytes, a section parsed only when its count is not zero, one helper per
    record section (`_records`)."""
    n = len(msg)
    if n < 12:
        return None
    m = Message()
    m.id, flags, qd, an, ns, ar = _HEADER(msg, 0)
    m.flags = flags
    ev = m.events
    if flags & 0x0040:
        ev.add("z_flag_set")
    if (flags >> 11) & 0xF >= 7:
        ev.add("invalid_opcode")
    off = 12
    try:
        if qd:
            queries = m.queries
            for i in range(qd if qd < MAX_RRS else MAX_RRS):
                name, off = read_name(msg, off, ev)
                if len(name) == MAX_NAME_LEN and "name_too_long" in ev:
                    if m.truncated is None:
                        m.truncated = set()
                    m.truncated.add(i)
                if off + 4 > n:
                    ev.add("malformed_data")
                    return m
                queries.append((name, (msg[off] << 8) | msg[off + 1]))
                off += 4
        if an:
            off = _records(msg, off, an, m.answers, ev, "malformed_data")
            if off < 0:
                return m
        if ns:
            off = _records(msg, off, ns, m.authorities, ev, "invalid_authorities")
            if off < 0:
                return m
        if ar:
            _records(msg, off, ar, m.additionals, ev, "invalid_additionals")
    except (struct.error, IndexError):        # pragma: no cover - bounds are checked above
        return m
    return m


def _records(msg: bytes, off: int, count: int, target: list[tuple[bytes, int, int, bytes]],
             ev: set[str], event: str) -> int:
    """Parse `count` resource records (at most MAX_RRS) from `off` into `target`; the offset
    after them, or -1 (with `event` added) when one does not fit."""
    n = len(msg)
    for _ in range(count if count < MAX_RRS else MAX_RRS):
        name, off = read_name(msg, off, ev)
        if off + 10 > n:
            ev.add(event)
            return -1
        rtype, _rclass, ttl, rdlen = _RR_FIXED(msg, off)
        off += 10
        if off + rdlen > n:
            ev.add(event)
            return -1
        if rtype in _NAME_RDATA:
            # the name the rdata holds (for SOA its mname, for MX the exchange)
            rdata = read_name(msg, off + _NAME_RDATA[rtype], ev)[0]
        else:
            rdata = msg[off:off + rdlen]
        off += rdlen
        target.append((name, rtype, ttl, rdata))
    return off


def probe(data: bytes, to_server: bool, tcp: bool = False) -> bool | None:
    """A plausible DNS header: sane counts and a question that parses."""
    if len(data) < 12:
        return None
    _id, flags, qd, an, ns, ar = _HEADER(data, 0)
    if qd == 0 and not flags & 0x8000:
        return False
    if qd > 16 or an > 512 or ns > 512 or ar > 512:
        return False
    # Suricata's probe_header_validity: room for the records the header announces (2
    # bytes each at least); a header announcing none is the whole message. The opcode is
    # not checked (an invalid one is the parser's invalid_opcode event).
    nrecords = qd + an + ns + ar
    if 2 * nrecords > len(data) or (nrecords == 0 and len(data) > 12):
        return False
    # What parse_message would decide, without building the message (the probe runs on
    # every new UDP flow; bench-1m has 103k DNS flows): a message with questions
    # parses when its first question does, one with none (a response) always does.
    return qd == 0 or _name_end(data, 12) + 4 <= len(data)


def _name_end(msg: bytes, off: int) -> int:
    """Where `read_name(msg, off)` says the name ends, without reading its labels."""
    n = len(msg)
    while off < n:
        ln = msg[off]
        if ln == 0:
            return off + 1
        if ln & 0xC0 == 0xC0:
            return off + 2 if off + 1 < n else n
        if ln & 0xC0:
            return off                 # reserved label type: the name ends here (read_name)
        off += 1 + ln
    return off


def _probe_any(data: bytes, to_server: bool) -> bool | None:
    """UDP datagram or TCP stream: try the TCP length prefix first when it fits."""
    if len(data) >= 2:
        ln = (data[0] << 8) | data[1]
        if ln + 2 == len(data) or (ln + 2 < len(data) and ln >= 12):
            r = probe(data[2:2 + ln], to_server)
            if r:
                return True
    return probe(data, to_server)


def _probe_tcp(data: bytes, to_server: bool) -> bool | None:
    """A TCP stream: as `_probe_any`, and a prefixed message not all here yet (Suricata's
    probe_tcp) is judged by its header alone: None (undecided) when that is valid, which a
    DNS detection port turns into DNS."""
    r = _probe_any(data, to_server)
    if not r and len(data) >= 14:
        ln = (data[0] << 8) | data[1]
        if ln + 2 > len(data) and ln >= 12 and _header_valid(data[2:14], ln):
            return None
    return r


def _header_valid(header: bytes, msg_len: int) -> bool:
    """Suricata's probe_header_validity: room in `msg_len` bytes for the records the
    header announces, none announced only in a bare header, a question in a request."""
    _id, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", header, 0)
    nrecords = qd + an + ns + ar
    if 2 * nrecords > msg_len or (nrecords == 0 and msg_len > 12):
        return False
    return bool(flags & 0x8000) or qd > 0


_DONE = [True, True]        # DnsTx.done, shared (never written)


class DnsTx(Tx):
    """One DNS message: a request (to server) or a response (to client), never both."""

    __slots__ = ("request", "response", "id", "pdu")
    proto = "dns"

    def __init__(self, tx_id: int, msg: Message, response: bool) -> None:
        # Tx's fields, set here without its `done` list: a message is whole when it is
        # parsed, so both sides are done (Suricata's DNS progress is 1 both ways; detection
        # looks at it in its own direction only) and every DNS transaction shares one
        # list nobody changes (two transactions per exchange: one container less each)
        self.tx_id = tx_id
        self.done = _DONE
        self.updated = 0
        self.cache: dict[Any, Any] = {}
        self.inspected = None
        self.logged = False
        self.events = None
        self.owner = None
        self.pdu = b""                     # the message's bytes (frame:dns.pdu), TCP prefix excluded
        self.request: Message | None = None if response else msg
        self.response: Message | None = msg if response else None
        self.id = msg.id

    @property
    def message(self) -> Message:
        m = self.request
        return m if m is not None else self.response      # type: ignore[return-value]

    def release(self) -> None:
        super().release()
        self.pdu = b""

    def one_way(self) -> bool | None:
        return self.request is not None

    def message_records(self, final: bool) -> list[dict[str, Any]]:
        """The transaction's one dns record (Suricata 8's v3 log: a record per message)."""
        self.logged = True
        return [self.alert_eve()]

    def alert_eve(self) -> dict[str, Any]:
        """The `dns` object of an alert and of the dns record: the message's v3 record."""
        if self.request is not None:
            return _eve(self.request, "request", self.tx_id)
        return _eve(self.response, "response", self.tx_id)       # type: ignore[arg-type]

def _name(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def _rr(rr: tuple[bytes, int, int, bytes]) -> dict[str, Any]:
    name, rtype, ttl, rdata = rr
    d: dict[str, Any] = {"rrname": _name(name), "rrtype": RRTYPES.get(rtype, str(rtype)), "ttl": ttl}
    if rtype == 1 and len(rdata) == 4:
        d["rdata"] = ".".join(str(b) for b in rdata)
    elif rtype == 28 and len(rdata) == 16:
        import ipaddress
        d["rdata"] = str(ipaddress.IPv6Address(rdata))
    elif rtype in _LOG_NAME_RDATA:
        d["rdata"] = _name(rdata)
    return d


def _eve(m: Message, kind: str, tx_id: int) -> dict[str, Any]:
    d: dict[str, Any] = {"version": 3, "type": kind, "tx_id": tx_id, "id": m.id,
                         "flags": f"{m.flags:x}"}
    if m.is_response:
        d["qr"] = True
    for bit, key in ((0x0400, "aa"), (0x0200, "tc"), (0x0100, "rd"), (0x0080, "ra"), (0x0040, "z")):
        if m.flags & bit:
            d[key] = True
    # Suricata's DNS v3 log (rust/src/dns/log.rs log_json): opcode and rcode in every
    # message, a standard query's opcode 0 and NOERROR too
    d["opcode"] = m.opcode
    d["rcode"] = RCODES.get(m.flags & 0xF, str(m.flags & 0xF))
    if m.queries:
        d["queries"] = [{"rrname": _name(n), "rrtype": RRTYPES.get(t, str(t))} for n, t in m.queries]
        if m.truncated:
            for i in m.truncated:
                d["queries"][i]["rrname_truncated"] = True
    # every section the message has, a request's too (Suricata's log_json logs the message)
    if m.answers:
        d["answers"] = [_rr(rr) for rr in m.answers]
    if m.authorities:
        d["authorities"] = [_rr(rr) for rr in m.authorities]
    if m.additionals:
        d["additionals"] = [_rr(rr) for rr in m.additionals if rr[1] != 41]
        if not d["additionals"]:
            del d["additionals"]
    return d


class DnsParser:
    """One flow's DNS state: transactions by id, and the TCP message buffer."""

    def __init__(self, settings: Any = None, tcp: bool = False) -> None:
        self.txs: list[DnsTx] = []
        self.buf = [bytearray(), bytearray()]
        self.tcp: bool | None = None
        self.lost = [False, False]

    def gap(self, to_server: bool, nbytes: int) -> None:
        """A stream gap: the message being assembled is lost; the next one starts afresh
        only where the data says so, so this direction stops here."""
        self.buf[int(to_server)].clear()
        self.lost[int(to_server)] = True

    def parse(self, data: bytes, to_server: bool, pkt: Any = None) -> None:
        if self.lost[int(to_server)]:
            return
        tcp = pkt is not None and getattr(pkt, "proto", 17) == 6
        if not tcp:
            self._message(data, to_server)
            return
        buf = self.buf[int(to_server)]
        buf += data
        while len(buf) >= 2:
            ln = (buf[0] << 8) | buf[1]
            if len(buf) < 2 + ln:
                break
            msg = bytes(buf[2:2 + ln])
            del buf[:2 + ln]
            self._message(msg, to_server)
        if len(buf) > 65537:
            buf.clear()

    def _message(self, data: bytes, to_server: bool) -> None:
        """One message: a transaction of its own, or an event on the newest one (Suricata's
        DNSState.parse_request / parse_response)."""
        m = parse_message(data)
        if m is None:
            return
        txs = self.txs
        if "malformed_data" in m.events:
            if txs:
                self._event(txs[-1], "malformed_data", to_server)
            elif m.queries and not m.is_response:
                self._new(m, to_server, False)   # the flow's first message: keep what parsed
            return
        if to_server and m.is_response:
            if txs:
                self._event(txs[-1], "not_a_request", to_server)
            else:
                # the flow's first message is an answer: it was picked up the other way
                # round (Suricata's probe reverses such a flow); log it as the response
                self._new(m, to_server, True)
            return
        tx = self._new(m, to_server, not to_server)
        tx.pdu = data
        if not to_server and not m.is_response:
            tx.add_event("not_a_response")

    def _new(self, m: Message, to_server: bool, response: bool) -> DnsTx:
        tx = DnsTx(len(self.txs), m, response)
        self.txs.append(tx)
        for name in m.events:
            tx.add_event(name)
        tx.touch(to_server)
        return tx

    @staticmethod
    def _event(tx: DnsTx, name: str, to_server: bool) -> None:
        tx.add_event(name)
        tx.touch(to_server)


# --- buffers --------------------------------------------------------------------------------

def _query_names(tx: DnsTx, to_server: bool) -> list[bytes] | None:
    m = tx.request if to_server else tx.response
    if m is None or not m.queries:
        return None
    return [n for n, _ in m.queries]


def _rrnames(section: str) -> Any:
    """The rrnames of one section of the message of the inspected direction (Suricata
    registers these buffers both ways: a request may carry answers too)."""
    def get(tx: DnsTx, to_server: bool) -> list[bytes] | None:
        m = tx.request if to_server else tx.response
        if m is None:
            return None
        return [rr[0] for rr in getattr(m, section)] or None
    return get


def _answer_names(tx: DnsTx, to_server: bool) -> list[bytes] | None:
    """dns.answer.name: the names of the answer records and the rdata names they point to."""
    m = tx.request if to_server else tx.response
    if m is None:
        return None
    out = []
    for name, rtype, _, rdata in m.answers:
        out.append(name)
        if rtype in _LOG_NAME_RDATA:
            out.append(rdata)
    return out or None


def _response_names(tx: DnsTx, to_server: bool) -> list[bytes] | None:
    """dns.response.rrname: every name of the response: the queries', and of each answer,
    authority and additional record its name and the domain name its rdata holds (CNAME,
    PTR, MX, NS, SOA's mname), as Suricata's detect-dns-response.c."""
    m = tx.response
    if m is None or to_server:
        return None
    names = [n for n, _ in m.queries]
    for section in (m.answers, m.authorities, m.additionals):
        for name, rtype, _, rdata in section:
            names.append(name)
            if rtype in _NAME_RDATA and rtype != 39 and rdata:
                names.append(rdata)
    return names or None


register_buffer("dns.query", "dns", TO_SERVER, lambda tx, ts: _query_names(tx, True), "dns_query", multi=True)
register_buffer("dns.queries.rrname", "dns", BOTH, _query_names, "dns.query.name", multi=True)
register_buffer("dns.answer.name", "dns", BOTH, _answer_names, multi=True)
register_buffer("dns.answers.rrname", "dns", BOTH, _rrnames("answers"), multi=True)
register_buffer("dns.authorities.rrname", "dns", BOTH, _rrnames("authorities"), multi=True)
register_buffer("dns.additionals.rrname", "dns", BOTH, _rrnames("additionals"), multi=True)
register_buffer("dns.response.rrname", "dns", TO_CLIENT, _response_names, multi=True)
# Suricata's frames (`frame:dns.pdu`): one message, without the TCP length prefix
register_buffer("frame:dns.pdu", "dns", BOTH, lambda tx, ts: tx.pdu or None)

register_protocol(Protocol("dns", (17, 6), _probe_any, DnsParser, (53,), port_decides=(17, 6),
                           tcp_probe=_probe_tcp))
# a DNS message is a transaction of one side, complete once parsed
register_states("dns", GENERIC_STATES[0], GENERIC_STATES[1], lambda tx, to_server: int(tx.done[int(to_server)]))
