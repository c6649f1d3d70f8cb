"""DHCP (RFC 2131, 2132) over UDP, as Suricata's parser (rust/src/dhcp/) reads it: the
`dhcp.leasetime`, `dhcp.rebinding_time`, `dhcp.renewal_time` keywords, the `dhcp` EVE
record (Suricata's default and `extended` forms) and the `dhcp.*` events.

- Detection on ports 67 and 68 only (Suricata's probing parser by port): a datagram of at
  least 232 bytes whose BOOTP header (236 bytes with the magic cookie) reads.
- Every datagram is a transaction of its own direction, complete at once (Suricata's
  bug-8621: inspected on that side only). The options are read up to END, then those of
  the `file` / `sname` fields an Overload option (52) names. An option cut short ends the
  list with ``truncated_options``.
- EVE `dhcp`: `type` (request, reply), `id`, `client_mac`, `assigned_ip`, the hostname,
  client id, DHCP message type and renewal time; `outputs.eve-log.dhcp.extended: yes`
  adds client, relay and next-server addresses, lease and rebinding times, subnet mask,
  requested IP, parameter list, DNS servers, routers, vendor class. Without `extended`
  only ACKs are logged. An alert's `dhcp` object is the extended one.
"""

from __future__ import annotations

from typing import Any

from netsentry.applayer import enabled, evestr
from netsentry.applayer.registry import BOTH, ParserError, Protocol, register_protocol, register_states
from netsentry.applayer.tx import MessageTx
from netsentry.config import get

EVENTS: dict[str, int | None] = {"truncated_options": BOTH, "malformed_options": BOTH}
MIN_FRAME = 232
HEADER_LEN = 240
OPT_SUBNET_MASK, OPT_ROUTERS, OPT_DNS, OPT_HOSTNAME = 1, 3, 6, 12
OPT_REQUESTED_IP, OPT_LEASE, OPT_OVERLOAD, OPT_TYPE, OPT_PARAMS = 50, 51, 52, 53, 55
OPT_RENEWAL, OPT_REBINDING, OPT_VENDOR, OPT_CLIENT_ID, OPT_END = 58, 59, 60, 61, 255
_TIME_OPTS = frozenset((OPT_LEASE, OPT_RENEWAL, OPT_REBINDING))
TYPES = {1: "discover", 2: "offer", 3: "request", 4: "decline", 5: "ack", 6: "nak", 7: "release", 8: "inform"}
PARAMS = {1: "subnet_mask", 3: "router", 6: "dns_server", 15: "domain", 35: "arp_timeout", 42: "ntp_server",
          66: "tftp_server_name", 150: "tftp_server_ip"}


def _addr(b: bytes) -> str:
    if len(b) == 4:
        return ".".join(str(c) for c in b)
    if len(b) == 16:
        import ipaddress
        return str(ipaddress.IPv6Address(b))
    return ""


def _hex(b: bytes) -> str:
    return ":".join(f"{c:02x}" for c in b)


class Message:
    __slots__ = ("opcode", "txid", "clientip", "yourip", "serverip", "giaddr", "clienthw", "options",
                 "truncated")

    def __init__(self) -> None:
        self.options: list[tuple[int, str, Any]] = []     # (code, kind, value): kind g, c (client id), t (time)
        self.truncated = False


def _options(data: bytes, off: int, out: list[tuple[int, str, Any]]) -> bool:
    """Options from `off` up to END or the end; False when one is cut short."""
    n = len(data)
    while off < n:
        code = data[off]
        if code == OPT_END:
            out.append((code, "e", None))
            return True
        if off + 2 > n:
            return False
        length = data[off + 1]
        if code == OPT_CLIENT_ID:
            if length <= 1 or off + 2 + length > n:
                return False
            out.append((code, "c", data[off + 3:off + 2 + length]))
            off += 2 + length
        elif code in _TIME_OPTS:
            if off + 6 > n:
                return False
            out.append((code, "t", int.from_bytes(data[off + 2:off + 6], "big")))
            off += 6            # as Suricata: the length byte is not checked
        else:
            if off + 2 + length > n:
                return False
            out.append((code, "g", data[off + 2:off + 2 + length]))
            off += 2 + length
    return False


def parse(data: bytes) -> Message | None:
    if len(data) < HEADER_LEN:
        return None
    m = Message()
    m.opcode = data[0]
    hlen = data[2]
    m.txid = int.from_bytes(data[4:8], "big")
    m.clientip, m.yourip, m.serverip, m.giaddr = data[12:16], data[16:20], data[20:24], data[24:28]
    m.clienthw = data[28:28 + min(hlen, 16)]
    if not _options(data, HEADER_LEN, m.options):
        m.truncated = True
    overload = 0
    for code, kind, value in m.options:
        if code == OPT_OVERLOAD and kind == "g" and value:
            overload = value[0]
            break
    if overload & 1:
        _options(data[108:236], 0, m.options)          # the `file` field
    if overload & 2:
        _options(data[44:108], 0, m.options)           # the `sname` field
    return m


def probe(data: bytes, to_server: bool) -> bool | None:
    return True if len(data) >= HEADER_LEN else None


class DhcpTx(MessageTx):
    __slots__ = ("msg", "extended")
    proto = "dhcp"

    def __init__(self, tx_id: int, to_server: bool, msg: Message, extended: bool) -> None:
        super().__init__(tx_id, to_server)
        self.msg = msg
        self.extended = extended

    def dhcp_type(self) -> int | None:
        for code, kind, value in self.msg.options:
            if code == OPT_TYPE and kind == "g" and value:
                return value[0]
        return None

    def time(self, code: int) -> int | None:
        for c, kind, value in self.msg.options:
            if c == code and kind == "t":
                return value
        return None

    def message_records(self, final: bool) -> list[dict[str, Any]]:
        self.logged = True
        if not self.extended and self.dhcp_type() != 5:
            return []               # Suricata's default dhcp log: ACKs only
        return [self.eve()]

    def eve(self) -> dict[str, Any]:
        return eve_object(self.msg, self.extended)

    def alert_eve(self) -> dict[str, Any]:
        return eve_object(self.msg, True)


def eve_object(m: Message, extended: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "request" if m.opcode == 1 else "reply" if m.opcode == 2 else "<unknown>",
                           "id": m.txid, "client_mac": _hex(m.clienthw), "assigned_ip": _addr(m.yourip)}
    if extended:
        out["client_ip"] = _addr(m.clientip)
        if m.opcode == 2:
            out["relay_ip"] = _addr(m.giaddr)
            out["next_server_ip"] = _addr(m.serverip)
    for code, kind, value in m.options:
        if kind == "c":
            out["client_id"] = _hex(value)
        elif kind == "t":
            if code == OPT_LEASE and extended:
                out["lease_time"] = value
            elif code == OPT_REBINDING and extended:
                out["rebinding_time"] = value
            elif code == OPT_RENEWAL:
                out["renewal_time"] = value
        elif kind == "g":
            if code == OPT_SUBNET_MASK and extended:
                out["subnet_mask"] = _addr(value)
            elif code == OPT_HOSTNAME and value:
                out["hostname"] = evestr.from_bytes(value)
            elif code == OPT_TYPE:
                if value:
                    out["dhcp_type"] = TYPES.get(value[0], "unknown")
            elif code == OPT_REQUESTED_IP and extended:
                out["requested_ip"] = _addr(value)
            elif code == OPT_PARAMS and extended:
                out["params"] = [PARAMS[c] for c in value if c in PARAMS]
            elif code == OPT_DNS and extended:
                out["dns_servers"] = [_addr(value[i:i + 4]) for i in range(0, len(value) - 3, 4)]
            elif code == OPT_ROUTERS and extended:
                out["routers"] = [_addr(value[i:i + 4]) for i in range(0, len(value) - 3, 4)]
            elif code == OPT_VENDOR and extended and value:
                out["vendor_class_identifier"] = evestr.from_bytes(value)
    return out


class DhcpParser:
    def __init__(self, settings: Any = None) -> None:
        self.off = settings is not None and not settings["parse"]     # detection-only
        self.extended = bool(settings and settings.get("extended"))
        self.txs: list[DhcpTx] = []

    def parse(self, data: bytes, to_server: bool, pkt: Any = None) -> None:
        if self.off:
            return
        m = parse(data)
        if m is None:
            raise ParserError("dhcp: not a BOOTP message")
        tx = DhcpTx(len(self.txs), to_server, m, self.extended)
        if m.truncated:
            tx.add_event("truncated_options")
        self.txs.append(tx)
        tx.touch(to_server)


def configure(config: Any) -> dict[str, Any]:
    """`app-layer.protocols.dhcp.enabled` and the eve-log `dhcp` option `extended` (no)."""
    eve = get(config, "outputs.eve-log.dhcp", None)
    ext = eve.get("extended", False) if isinstance(eve, dict) else False
    return enabled.settings(config, "dhcp",
                            extended=ext is True or str(ext).lower() in ("yes", "true", "on", "1"))


register_states("dhcp", ("request_started", "request_complete"), ("response_started", "response_complete"),
                lambda tx, ts: 1)
register_protocol(Protocol("dhcp", (17,), probe, DhcpParser, (67, 68), ports_only=True, configure=configure))
