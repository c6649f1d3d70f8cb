"""SCTP keywords (Suricata 8, doc rules/sctp-keywords): sctp.vtag, sctp.chunk_type,
sctp.chunk_cnt, and the sticky buffers sctp.hdr and sctp.chunk_data.

- ``sctp.vtag``: the verification tag of the common header, a 32-bit integer
  keyword (``sctp.vtag:>0``, ``sctp.vtag:100-200``).
- ``sctp.chunk_type``: true when *any* of the packet's first 16 chunks has the
  type; an 8-bit integer keyword that also takes the chunk names (``init``,
  ``init_ack``, ``!data``, case-insensitive; Suricata's enum integers: a name
  means equal, ``!name`` not equal).
- ``sctp.chunk_cnt``: how many chunks the packet has (all of them), 16 bits.
- ``sctp.hdr``: the common header and every chunk (Suricata's hlen).
- ``sctp.chunk_data``: the user data of each DATA chunk (the first 16), a
  multi-instance buffer: its keywords match if they match in one chunk. A plain
  ``content`` still inspects the packet payload, which for SCTP is the first
  DATA chunk's user data.

Every one is a packet keyword (never matched on stream data) and never matches
a packet that is not a valid SCTP packet; the sticky buffers refuse a rule
whose protocol cannot be SCTP, as Suricata does. The facts come from
detect/sctp.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from netsentry.detect.sctp import CHUNK_TYPES, IPPROTO_SCTP, sctp_info
from netsentry.rules.buffers import register_buffer
from netsentry.rules.errors import RuleError
from netsentry.rules.numeric import parse_uint
from netsentry.rules.registry import RuleBuilder, keyword, unquote

if TYPE_CHECKING:  # pragma: no cover
    from netsentry.decode.packet import Packet
    from netsentry.flow.flow import Flow


def parse_uint_enum(text: str, what: str, bits: int, names: dict[str, int]) -> Callable[[int], bool]:
    """Suricata's enum integer (detect_parse_uint_enum): an integer keyword value, or a
    name of the enumeration (case-insensitive), ``!name`` for not equal."""
    t = text.strip()
    try:
        return parse_uint(t, what, bits)
    except RuleError:
        pass
    neg = t.startswith("!")
    name = t[1:].strip() if neg else t
    value = names.get(name.lower())
    if value is None:
        raise RuleError(f"{what}: unknown value '{t}' (a number, or one of {', '.join(names)})")
    if neg:
        return lambda v: v != value
    return lambda v: v == value


def _require_sctp(b: RuleBuilder, what: str) -> None:
    protos = b.sig.ip_protos
    if protos is not None and IPPROTO_SCTP not in protos:
        raise RuleError(f"{what}: rule protocol '{b.sig.proto}' cannot be SCTP")


@keyword("sctp.vtag", help="sctp.vtag:[op]N; SCTP verification tag (32-bit integer)")
def sctp_vtag(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint(unquote(arg, "sctp.vtag"), "sctp.vtag", 32)

    def check(pkt: Packet, flow: Flow | None) -> bool:
        info = sctp_info(pkt)
        return info is not None and pred(info.vtag)
    b.packet_checks.append(check)
    b.sig.pkt_only = True


@keyword("sctp.chunk_type", help="sctp.chunk_type:[!]NAME|[op]N; type of any SCTP chunk in the packet")
def sctp_chunk_type(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint_enum(unquote(arg, "sctp.chunk_type"), "sctp.chunk_type", 8, CHUNK_TYPES)

    def check(pkt: Packet, flow: Flow | None) -> bool:
        info = sctp_info(pkt)
        if info is None:
            return False
        for t in info.chunk_types:
            if pred(t):
                return True
        return False
    b.packet_checks.append(check)
    b.sig.pkt_only = True


@keyword("sctp.chunk_cnt", help="sctp.chunk_cnt:[op]N; number of SCTP chunks in the packet (16-bit integer)")
def sctp_chunk_cnt(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint(unquote(arg, "sctp.chunk_cnt"), "sctp.chunk_cnt", 16)

    def check(pkt: Packet, flow: Flow | None) -> bool:
        info = sctp_info(pkt)
        return info is not None and pred(info.chunk_cnt)
    b.packet_checks.append(check)
    b.sig.pkt_only = True


def _hdr(pkt: Packet, flow: Flow | None) -> bytes | None:
    info = sctp_info(pkt)
    if info is None:
        return None
    return pkt.data[pkt.l4_off:info.hdr_end]


def _chunk_data(pkt: Packet, flow: Flow | None) -> list[bytes] | None:
    info = sctp_info(pkt)
    if info is None or not info.data_chunks:
        return None
    data = pkt.data
    return [data[off:off + n] for off, n in info.data_chunks if n]


register_buffer("sctp.hdr", _hdr)
register_buffer("sctp.chunk_data", _chunk_data, multi=True)


def _sticky(name: str) -> Callable[[RuleBuilder, str | None], None]:
    def setup(b: RuleBuilder, arg: str | None) -> None:
        _require_sctp(b, name)
        b.set_buffer(name)
        b.sig.pkt_only = True
    setup.__name__ = name.replace(".", "_")
    setup.__module__ = __name__
    return setup


keyword("sctp.hdr", value="none",
        help="sctp.hdr; sticky buffer: the SCTP common header and every chunk")(_sticky("sctp.hdr"))
keyword("sctp.chunk_data", value="none",
        help="sctp.chunk_data; sticky buffer: each SCTP DATA chunk's user data")(_sticky("sctp.chunk_data"))
