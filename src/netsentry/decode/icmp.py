"""ICMPv4 (RFC 792) and ICMPv6 (RFC 4443): type, code, echo id/seq, and the
sanity checks of Suricata's ``DecodeICMPV4``/``DecodeICMPV6``.

Type tables declare per type the highest valid code, whether the message
carries an id/sequence pair, and whether it quotes an offending IP header.
"""

from __future__ import annotations

import struct

from netsentry.decode import checksum
from netsentry.decode import events as ev
from netsentry.decode.context import DecodeContext
from netsentry.decode.packet import Packet

HDR_LEN = 8
_HDR = struct.Struct("!BBHHH").unpack_from

# type -> (max code, has id/seq, quotes an IP header)
ICMPV4_TYPES: dict[int, tuple[int, bool, bool]] = {
    0: (0, True, False),     # echo reply
    3: (15, False, True),    # destination unreachable
    4: (0, False, True),     # source quench
    5: (3, False, True),     # redirect
    8: (0, True, False),     # echo request
    11: (1, False, True),    # time exceeded
    12: (2, False, True),    # parameter problem
    13: (0, True, False),    # timestamp
    14: (0, True, False),    # timestamp reply
    15: (0, True, False),    # information request
    16: (0, True, False),    # information reply
    17: (0, True, False),    # address mask request
    18: (0, True, False),    # address mask reply
}

ICMPV6_TYPES: dict[int, tuple[int, bool, bool]] = {
    1: (6, False, True),     # destination unreachable
    2: (0, False, True),     # packet too big
    3: (1, False, True),     # time exceeded
    4: (2, False, True),     # parameter problem
    128: (0, True, False),   # echo request
    129: (0, True, False),   # echo reply
    130: (0, False, False),  # MLD query
    131: (0, False, False),  # MLD report
    132: (0, False, False),  # MLD done
    133: (0, False, False),  # router solicitation
    134: (0, False, False),  # router advertisement
    135: (0, False, False),  # neighbour solicitation
    136: (0, False, False),  # neighbour advertisement
    137: (0, False, False),  # redirect
    138: (255, False, False),  # router renumbering
    139: (2, False, False),  # node information query
    140: (2, False, False),  # node information response
    141: (0, False, False),  # inverse ND solicitation
    142: (0, False, False),  # inverse ND advertisement
    143: (0, False, False),  # MLDv2 report
    144: (0, True, False),   # home agent address discovery request
    145: (0, True, False),   # home agent address discovery reply
    146: (0, True, False),   # mobile prefix solicitation
    147: (0, True, False),   # mobile prefix advertisement
    148: (0, False, False),  # certification path solicitation
    149: (0, False, False),  # certification path advertisement
    151: (0, False, False),  # multicast router advertisement
    152: (0, False, False),  # multicast router solicitation
    153: (0, False, False),  # multicast router termination
    154: (255, False, False),  # FMIPv6
}
_ICMPV6_MLD = (130, 131, 132)
_ICMPV6_EXPERIMENTAL = (100, 101, 200, 201)


def _unassigned_v6(t: int) -> bool:
    return 5 <= t <= 99 or 102 <= t <= 126 or 155 <= t <= 199 or 202 <= t <= 254


def _common(pkt: Packet, data: bytes, off: int, avail: int, has_id: bool) -> tuple[int, int]:
    itype, code, _csum, ident, seq = _HDR(data, off)
    pkt.l4_off = off
    pkt.icmp_type = itype
    pkt.icmp_code = code
    if has_id:
        pkt.icmp_id = ident
        pkt.icmp_seq = seq
    pkt.payload_off = off + HDR_LEN
    pkt.payload_len = avail - HDR_LEN
    return itype, code


def decode_v4(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    ctx.counts["icmpv4"] += 1
    avail = end - off
    if avail < HDR_LEN:
        ctx.invalid(pkt, ev.ICMPV4_PKT_TOO_SMALL)
        return
    spec = ICMPV4_TYPES.get(data[off])
    itype, code = _common(pkt, data, off, avail, spec is not None and spec[1])
    if spec is None:
        ctx.event(pkt, ev.ICMPV4_UNKNOWN_TYPE)
    elif code > spec[0]:
        ctx.event(pkt, ev.ICMPV4_UNKNOWN_CODE)
    elif spec[2]:
        if avail < HDR_LEN + 20:
            ctx.event(pkt, ev.ICMPV4_IPV4_TRUNC_PKT)
        elif data[off + HDR_LEN] >> 4 != 4:
            ctx.event(pkt, ev.ICMPV4_IPV4_UNKNOWN_VER)
    if ctx.checksums and not checksum.plain_ok(data, off, end):
        ctx.event(pkt, ev.ICMPV4_CSUM_INVALID)
        pkt.checksum_bad = True


def decode_v6(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    ctx.counts["icmpv6"] += 1
    avail = end - off
    if avail < HDR_LEN:
        ctx.invalid(pkt, ev.ICMPV6_PKT_TOO_SMALL)
        return
    spec = ICMPV6_TYPES.get(data[off])
    itype, code = _common(pkt, data, off, avail, spec is not None and spec[1])
    if spec is None:
        if itype in _ICMPV6_EXPERIMENTAL:
            ctx.event(pkt, ev.ICMPV6_EXPERIMENTATION_TYPE)
        elif _unassigned_v6(itype):
            ctx.event(pkt, ev.ICMPV6_UNASSIGNED_TYPE)
        else:
            ctx.event(pkt, ev.ICMPV6_UNKNOWN_TYPE)
    elif code > spec[0]:
        ctx.event(pkt, ev.ICMPV6_UNKNOWN_CODE)
    elif spec[2]:
        if avail < HDR_LEN + 40:
            ctx.event(pkt, ev.ICMPV6_IPV6_TRUNC_PKT)
        elif data[off + HDR_LEN] >> 4 != 6:
            ctx.event(pkt, ev.ICMPV6_IPV6_UNKNOWN_VER)
    elif itype in _ICMPV6_MLD and pkt.ttl != 1:
        ctx.event(pkt, ev.ICMPV6_MLD_MESSAGE_WITH_INVALID_HL)
    if ctx.checksums and not checksum.l4_ok(pkt.src, pkt.dst, 58, data, off, end):
        ctx.event(pkt, ev.ICMPV6_CSUM_INVALID)
        pkt.checksum_bad = True
