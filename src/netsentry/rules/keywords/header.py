"""Header keywords: IP/TCP/ICMP fields of the packet.

flags (alias tcp.flags), fragbits, ttl, tos, id, ip_proto, sameip, seq, ack,
window, itype, icode, icmp_id, icmp_seq, fragoffset, tcp.mss. Numeric
values use Suricata's integer syntax (rules/numeric.py). A TCP keyword never
matches a non-TCP packet, an ICMP keyword never a non-ICMP one, as in Suricata.
"""

from __future__ import annotations

import re
from typing import Any
from collections.abc import Callable

from netsentry.rules.errors import RuleError
from netsentry.rules.numeric import parse_multi_uint, parse_uint
from netsentry.rules.registry import RuleBuilder, keyword, unquote

_TCP_FLAGS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20,
              "E": 0x40, "C": 0x80, "2": 0x40, "1": 0x80}
_FRAG_BITS = {"R": 0x4, "D": 0x2, "M": 0x1}
_ICMP = (1, 58)
_PROTO_NAMES = {"ip": 0, "icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "ipv6": 41, "gre": 47,
                "esp": 50, "ah": 51, "icmpv6": 58, "sctp": 132}


def _bits(b: RuleBuilder, arg: str | None, what: str, table: dict[str, int],
          field: Callable[[object], int], proto: int | None) -> None:
    """flags/fragbits: `[+*!]BITS[,mask]`; exact match without a modifier."""
    text = unquote(arg, what).strip()
    spec, _, mask_text = text.partition(",")
    spec = spec.strip()
    modifier = ""
    bits = 0
    zero = False
    for ch in spec:
        if ch in "+*!":
            if modifier:
                raise RuleError(f"{what}: more than one modifier in '{text}'")
            modifier = ch
        elif ch == "0" and what != "fragbits":
            zero = True
        elif ch.upper() in table:
            bits |= table[ch.upper()]
        elif ch != " ":
            raise RuleError(f"{what}: unknown flag '{ch}' in '{text}'")
    if zero and bits:
        raise RuleError(f"{what}: '0' (no flags) cannot be combined with flags in '{text}'")
    if not zero and not bits:
        raise RuleError(f"{what}: no flags in '{text}'")
    ignore = 0
    for ch in mask_text.strip():
        if ch.upper() in table:
            ignore |= table[ch.upper()]
        elif ch != " ":
            raise RuleError(f"{what}: unknown mask flag '{ch}' in '{text}'")
    keep = ~ignore

    if modifier == "*":
        def test(v: int) -> bool: return (v & keep & bits) != 0
    elif modifier == "+":
        def test(v: int) -> bool: return (v & keep & bits) == bits
    elif modifier == "!":
        def test(v: int) -> bool: return (v & keep & bits) != bits
    else:
        def test(v: int) -> bool: return (v & keep) == bits

    if what == "flags":
        # for the detect engine's TCP-flags prefilter (Signature.tcp_flags_ok)
        b.extra.setdefault("tcp_flags_tests", []).append(test)
    if proto is None:
        b.packet_checks.append(lambda pkt, flow: pkt.ip_version == 4 and test(field(pkt)))
    else:
        b.packet_checks.append(lambda pkt, flow: pkt.proto == proto and test(field(pkt)))


@keyword("flags", "tcp.flags", help="flags:[+*!]SAFRPUCE0[,mask]; TCP flags")
def flags(b: RuleBuilder, arg: str | None) -> None:
    _bits(b, arg, "flags", _TCP_FLAGS, lambda pkt: pkt.tcp_flags, 6)  # type: ignore[attr-defined]


@keyword("fragbits", help="fragbits:[+*!]MDR; IPv4 fragment bits")
def fragbits(b: RuleBuilder, arg: str | None) -> None:
    _bits(b, arg, "fragbits", _FRAG_BITS, lambda pkt: pkt.ip_flags, None)  # type: ignore[attr-defined]


def _numeric(name: str, attr: str, bits: int, guard: Callable[[object], bool], help: str) -> None:
    """Register a keyword that compares one Packet attribute with Suricata's integer syntax."""

    def setup(b: RuleBuilder, arg: str | None) -> None:
        pred = parse_uint(unquote(arg, name), name, bits)
        b.packet_checks.append(lambda pkt, flow: guard(pkt) and pred(getattr(pkt, attr)))

    setup.__name__ = name.replace(".", "_")
    setup.__module__ = __name__
    keyword(name, help=help)(setup)


def _is_ip(pkt) -> bool: return pkt.ip_version != 0                     # noqa: E704
def _is_ip4(pkt) -> bool: return pkt.ip_version == 4                    # noqa: E704
def _is_tcp(pkt) -> bool: return pkt.proto == 6                         # noqa: E704
def _is_icmp(pkt) -> bool: return pkt.proto in _ICMP and pkt.icmp_type >= 0   # noqa: E704
def _has_icmp_id(pkt) -> bool: return pkt.proto in _ICMP and pkt.icmp_id >= 0  # noqa: E704
def _has_mss(pkt) -> bool: return pkt.proto == 6 and pkt.tcp_mss >= 0    # noqa: E704


_numeric("ttl", "ttl", 8, _is_ip, "ttl:[<>!]N|A-B; IP time-to-live / hop limit")
_numeric("tos", "tos", 8, _is_ip, "tos:[!]N; IPv4 TOS / IPv6 traffic class")
_numeric("id", "ip_id", 16, _is_ip4, "id:N; IPv4 identification")
_numeric("seq", "seq", 32, _is_tcp, "seq:N; TCP sequence number")
_numeric("ack", "ack", 32, _is_tcp, "ack:N; TCP acknowledgement number")
_numeric("window", "win", 16, _is_tcp, "window:[!]N; TCP window (unscaled)")
# Suricata 8's names for the same keywords (seq/ack/window stay as aliases there)
_numeric("tcp.seq", "seq", 32, _is_tcp, "tcp.seq:N; TCP sequence number (alias seq)")
_numeric("tcp.ack", "ack", 32, _is_tcp, "tcp.ack:N; TCP acknowledgement number (alias ack)")
_numeric("tcp.window", "win", 16, _is_tcp, "tcp.window:[!]N; TCP window, unscaled (alias window)")
_numeric("itype", "icmp_type", 8, _is_icmp, "itype:[<>]N|A<>B; ICMP type")
_numeric("icode", "icmp_code", 8, _is_icmp, "icode:[<>]N|A<>B; ICMP code")


@keyword("igmp.type", help="igmp.type:[<>]N|A-B; the IGMP message type (Suricata 9)")
def igmp_type(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint(unquote(arg, "igmp.type"), "igmp.type", 8)
    b.packet_checks.append(
        lambda pkt, flow: getattr(pkt, "igmp", None) is not None and pred(pkt.data[pkt.l4_off]))
_numeric("icmp_id", "icmp_id", 16, _has_icmp_id, "icmp_id:N; ICMP echo id")
_numeric("icmp_seq", "icmp_seq", 16, _has_icmp_id, "icmp_seq:N; ICMP echo sequence")
_numeric("fragoffset", "frag_offset", 16, _is_ip4, "fragoffset:[!<>]N; IPv4 fragment offset field")
_numeric("tcp.mss", "tcp_mss", 16, _has_mss, "tcp.mss:[<>]N; TCP MSS option value")


@keyword("ip_proto", help="ip_proto:[!<>]N|name; IP protocol number")
def ip_proto(b: RuleBuilder, arg: str | None) -> None:
    text = unquote(arg, "ip_proto").strip()
    prefix = text.rstrip("abcdefghijklmnopqrstuvwxyz0123456789-")
    name = text[len(prefix):]
    if name.lower() in _PROTO_NAMES:
        text = prefix + str(_PROTO_NAMES[name.lower()])
    pred = parse_uint(text, "ip_proto", 8)
    check = lambda pkt, flow: pkt.ip_version != 0 and pred(pkt.proto)   # noqa: E731
    check.ip_protos = frozenset(p for p in range(256) if pred(p))   # type: ignore[attr-defined]  # detect/grouping.py
    b.packet_checks.append(check)


@keyword("sameip", value="none", help="sameip; source address equals destination address")
def sameip(b: RuleBuilder, arg: str | None) -> None:
    b.packet_checks.append(lambda pkt, flow: pkt.ip_version != 0 and pkt.src == pkt.dst)


# --- ipopts ---------------------------------------------------------------------------

# Suricata's ipopts names -> IPv4 option type (detect-ipopts.c / decode-ipv4.h)
IP_OPTIONS = {"eol": 0x00, "nop": 0x01, "rr": 0x07, "qs": 0x19, "ts": 0x44, "sec": 0x82, "lsrr": 0x83,
              "esec": 0x85, "cipso": 0x86, "satid": 0x88, "ssrr": 0x89, "rtralt": 0x94}


@keyword("ipopts", help="ipopts:rr|eol|nop|ts|sec|esec|lsrr|ssrr|satid|qs|cipso|rtralt|any; an IPv4 option is present")
def ipopts(b: RuleBuilder, arg: str | None) -> None:
    """One option per keyword (name case-insensitive), IPv4 only. `any`: the packet has
    any option; Suricata documents it so (its code compares all flag bits at once)."""
    name = unquote(arg, "ipopts").strip().lower()
    if name == "any":
        b.packet_checks.append(lambda pkt, f: pkt.ip_version == 4 and bool(pkt.ip_opts))
        return
    opt = IP_OPTIONS.get(name)
    if opt is None:
        raise RuleError(f"ipopts: unknown IP option '{name}' (expected {', '.join(IP_OPTIONS)} or any)")
    b.packet_checks.append(lambda pkt, f: pkt.ip_version == 4 and opt in pkt.ip_opts)


# --- vlan.id / vlan.layers (Suricata 8) ---------------------------------------------------

VLAN_MAX_LAYERS = 3     # Suricata decodes at most three VLAN tags


@keyword("vlan.id", help="vlan.id:[op]ID[,any|all|INDEX]; the packet's VLAN ids (outermost first)")
def vlan_id(b: RuleBuilder, arg: str | None) -> None:
    text = unquote(arg, "vlan.id")
    head = text.split(",")[0].strip()
    if not head.startswith("count"):
        for n in re.findall(r"0[xX][0-9a-fA-F]+|\d+", head):
            if int(n, 16 if n[:2].lower() == "0x" else 10) > 0xFFF:
                raise RuleError(f"vlan.id: {n} is not a VLAN id (12 bits: 0..4095)")
    pred = parse_multi_uint(text, "vlan.id", 16, (-VLAN_MAX_LAYERS, VLAN_MAX_LAYERS - 1))
    b.packet_checks.append(lambda pkt, f: pred(pkt.vlan))


@keyword("vlan.layers", help="vlan.layers:[op]N; how many VLAN tags the packet has (0..3)")
def vlan_layers(b: RuleBuilder, arg: str | None) -> None:
    text = unquote(arg, "vlan.layers")
    pred = parse_uint(text, "vlan.layers", 8)
    if not any(pred(n) for n in range(VLAN_MAX_LAYERS + 1)) and "!" not in text:
        raise RuleError(f"vlan.layers: '{text.strip()}' can never match (0..{VLAN_MAX_LAYERS} layers)")
    b.packet_checks.append(lambda pkt, f: pred(len(pkt.vlan)))


# --- checksum keywords (Suricata's detect-csum.c) ----------------------------------------------

def _csum_ok(kind: str, pkt: object) -> bool | None:
    """Is the packet's `kind` checksum right? None when the packet has no such layer
    (wrong IP version or protocol) or is cut short: the keyword does not match then."""
    from netsentry.decode import checksum
    p: Any = pkt
    ip_off = p.ip_off
    if ip_off < 0:
        return None
    data = p.data
    v4 = len(p.src) == 4
    if kind == "ipv4":
        if not v4 or ip_off + p.ip_hlen > len(data):
            return None
        return checksum.ipv4_header_ok(data, ip_off, p.ip_hlen)
    proto, want_v4 = _CSUM_LAYERS[kind]
    if p.proto != proto or v4 != want_v4 or p.l4_off < 0 or p.frag:
        return None
    end = ip_off + p.ip_len
    if end > len(data):
        return None
    if proto in (1, 2):            # ICMPv4 and IGMP: the plain sum over the message
        return checksum.plain_ok(data, p.l4_off, end)
    return checksum.l4_ok(p.src, p.dst, proto, data, p.l4_off, end)


_CSUM_LAYERS: dict[str, tuple[int, bool]] = {
    "tcpv4": (6, True), "tcpv6": (6, False), "udpv4": (17, True), "udpv6": (17, False),
    "icmpv4": (1, True), "icmpv6": (58, False), "igmp": (2, True)}


def _csum_keyword(kind: str) -> Callable[[RuleBuilder, str | None], None]:
    def setup(b: RuleBuilder, arg: str | None) -> None:
        want = unquote(arg, f"{kind}-csum").strip().lower()
        if want not in ("valid", "invalid"):
            raise RuleError(f"{kind}-csum: expected valid or invalid, got '{want}'")
        good = want == "valid"

        def check(pkt: Any, flow: Any) -> bool:
            ok = _csum_ok(kind, pkt)
            return ok is not None and ok is good
        b.packet_checks.append(check)
    return setup


for _kind in ("ipv4", *_CSUM_LAYERS):
    keyword(f"{_kind}-csum", help=f"{_kind}-csum:valid|invalid; the {_kind} checksum is (not) right")(
        _csum_keyword(_kind))


@keyword("icmpv6.mtu", help="icmpv6.mtu:[op]N; the MTU of an ICMPv6 Packet Too Big message")
def icmpv6_mtu(b: RuleBuilder, arg: str | None) -> None:
    """Suricata's detect-icmpv6-mtu.c: only a Packet Too Big (type 2, code 0) has an MTU."""
    pred = parse_uint(unquote(arg, "icmpv6.mtu"), "icmpv6.mtu", 32)

    def check(pkt: Any, flow: Any) -> bool:
        off = pkt.l4_off
        if pkt.proto != 58 or off < 0 or pkt.icmp_type != 2 or pkt.icmp_code != 0:
            return False
        data = pkt.data
        if off + 8 > len(data):
            return False
        return pred(int.from_bytes(data[off + 4:off + 8], "big"))
    b.packet_checks.append(check)
