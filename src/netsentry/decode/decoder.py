"""`Decoder`: the decode stage's entry point (``decoder.decode(data, linktype)``).

Two paths produce identical packets:

* the *layered* path walks one function per protocol through the
  registration tables in `DecodeContext` (link -> ethertype -> IP protocol);
  it handles everything, including every malformed case and checksums;
* the *fast* path, a single closure, handles the shape most traffic has
  (Ethernet, IPv4 without options or fragmentation, TCP/UDP/ICMP echo, sane
  lengths) with one ``struct`` call per header and no per-layer calls. Any
  packet it is not sure about goes to the layered path from scratch, so it
  never decides an event. tests/decode/test_fastpath.py checks both paths
  agree field by field.
"""

from __future__ import annotations

import struct
from typing import Callable

from netsentry.decode import arp, erspan, gre, icmp, igmp, ipip, ipv4, ipv6, link, mpls, nsh, pppoe, sctp, tcp, udp
from netsentry.decode.udptunnel import UdpTunnels
from netsentry.decode.context import EVENTS_OVERFLOW, IPV6_EXTHDR_LIMIT, DecodeContext
from netsentry.decode.packet import TYPED, Packet

try:
    import cython
except ImportError:      # Cython is a build dependency only (netsentry/_cython_shim.py)
    from netsentry import _cython_shim as cython

if not cython.compiled:         # compiled: a C function, cimported by decoder.pxd
    from netsentry.decode.packet import copy_packet, new_packet

# Suricata's names for the fixed decoder counters (always present in stats(), even at 0)
COUNTERS = ("pkts", "bytes", "invalid", "ipv4", "ipv6", "ethernet", "raw", "null", "sll", "chdlc",
            "tcp", "udp", "icmpv4", "icmpv6", "gre", "vlan", "vlan_qinq", "vlan_qinqinq",
            "mpls", "pppoe", "ppp", "nsh",
            "ipv4_frag", "ipv6_frag", "ipv4_in_ipv6", "ipv6_in_ipv6", "avg_pkt_size")


def build_context(checksums: bool) -> DecodeContext:
    """Register every protocol decoder; the only place that knows them all."""
    ctx = DecodeContext(checksums)
    ctx.ethertypes.update(link.ETHERTYPES)
    ctx.ethertypes.update(mpls.ETHERTYPES)
    ctx.ethertypes.update(nsh.ETHERTYPES)
    ctx.ethertypes.update(pppoe.ETHERTYPES)
    ctx.ethertypes.update(arp.ETHERTYPES)
    ctx.ethertypes[link.ETHERTYPE_IPV4] = ipv4.decode
    ctx.ethertypes[link.ETHERTYPE_IPV6] = ipv6.decode
    ctx.ethertypes[gre.ETHERTYPE_TEB] = link.decode_ethernet
    ctx.ip_protos[6] = tcp.decode
    ctx.ip_protos[17] = udp.decode
    ctx.ip_protos[1] = icmp.decode_v4
    ctx.ip_protos[58] = icmp.decode_v6
    ctx.ip_protos[47] = gre.decode
    ctx.ip_protos[sctp.IPPROTO_SCTP] = sctp.decode
    ctx.ip_protos[igmp.IPPROTO_IGMP] = igmp.decode
    ctx.ethertypes[erspan.ETHERTYPE_ERSPAN] = erspan.decode      # reached from GRE
    ctx.ip_protos[ipip.IPPROTO_IPIP] = ipip.decode_ipv4_in_ip
    ctx.ip_protos[ipip.IPPROTO_IPV6] = ipip.decode_ipv6_in_ip
    return ctx


class _FromData:
    """A field read from the frame on first access instead of stored by the decoder.

    A non-data descriptor: an instance that assigns the field shadows it as
    usual. Used for header fields few packets are asked about (TTL, TOS, IP id,
    IP flags, TCP window): bench_pipeline read+decode 1.32 -> see bench/README.md.
    """

    __slots__ = ("off", "width", "shift", "mask")

    def __init__(self, off: int, width: int = 1, shift: int = 0, mask: int = 0xFFFF) -> None:
        self.off, self.width, self.shift, self.mask = off, width, shift, mask

    def __get__(self, pkt: Packet | None, owner: type | None = None):  # type: ignore[no-untyped-def]
        if pkt is None:
            return self
        off = self.off
        return (int.from_bytes(pkt.data[off:off + self.width], "big") >> self.shift) & self.mask


# Fast-path packet shapes (Ethernet + 20-byte IPv4 header): what every packet of
# the shape shares is a class attribute instead of a per-packet store, and the
# rarely read header fields come from the frame on demand. They are still
# `Packet`s: a later stage assigning any field just shadows the class value on
# that instance.
class _EthIPv4(Packet):
    """Fast-path packets. Copies (copy.copy, deepcopy, pickle) carry the lazy fields
    as plain values, so a copy whose ``data`` is replaced (detect does this to run
    rules on stream data) keeps its header fields."""

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        for klass in type(self).__mro__:
            for name, attr in vars(klass).items():
                if isinstance(attr, _FromData) and name not in state:
                    state[name] = getattr(self, name)
        return state

    ip_version = 4
    ip_off = 14
    ip_hlen = 20
    l4_off = 34
    tos = _FromData(15)
    ip_id = _FromData(18, 2)
    ip_flags = _FromData(20, 1, 5, 0x7)
    ttl = _FromData(22)


class _EthIPv4Tcp(_EthIPv4):
    proto = 6
    win = _FromData(48, 2)


class _EthIPv4Tcp20(_EthIPv4Tcp):
    """TCP without options: the header length and payload offset are fixed too."""
    tcp_hlen = 20
    payload_off = 54


class _EthIPv4Udp(_EthIPv4):
    proto = 17
    payload_off = 42


class _EthIPv4Icmp(_EthIPv4):
    proto = 1
    icmp_code = 0
    payload_off = 42


ADDR_SLOTS = cython.declare(cython.Py_ssize_t, 8192)   # AddrCache's slots (decoder.pxd: the keys array's length)


@cython.cclass
class AddrCache:
    """Compiled fast path: the packed-address bytes objects (``pkt.src``, ``pkt.dst``)
    handed out again while their slot holds them, instead of two new 4-byte objects
    per packet. A slot is picked by a multiplicative hash of the address and holds the
    last address seen there; the address is compared as a C integer, so a hit touches
    no object. Every packet and flow of a busy host then shares one object (the flow
    table's address sharing came for free), and a packet costs two allocations and
    two frees less. Values are equal bytes either way: sharing is a saving, never a
    meaning (no stage compares addresses by identity). Pure Python has none."""

    def __init__(self) -> None:
        self.objs = [None] * ADDR_SLOTS

    @cython.cfunc
    def get(self, p: cython.p_const_uchar) -> object:
        ip: cython.uint = ((cython.cast(cython.uint, p[0]) << 24) | (cython.cast(cython.uint, p[1]) << 16)
                           | (cython.cast(cython.uint, p[2]) << 8) | p[3])
        mul: cython.ulonglong = 0x9E3779B1      # Knuth's multiplicative hash: the top bits of ip * A mod 2**32
        i: cython.Py_ssize_t = cython.cast(cython.Py_ssize_t, ((ip * mul) >> 19) & 8191)   # ADDR_SLOTS - 1
        held = self.objs[i]
        if held is not None and self.keys[i] == ip:
            return held
        b = p[:4]
        self.objs[i] = b
        self.keys[i] = ip
        return b


def _shape_model(proto: int, payload_off: int, icmp_code: int) -> Packet:
    """The compiled fast path's model record of one header shape (Ethernet + 20-byte
    IPv4 + `proto`): the fields every packet of the shape shares, set once; each packet
    starts as a copy (packet.py `copy_packet`) instead of storing them again (the pure
    path's shape classes, as values). Never handed out, never written after this."""
    pkt = new_packet()
    pkt.ip_version = 4
    pkt.ip_off = 14
    pkt.ip_hlen = 20
    pkt.l4_off = 34
    pkt.proto = proto
    pkt.payload_off = payload_off
    pkt.icmp_code = icmp_code
    return pkt


_TCP4 = cython.declare(Packet, _shape_model(6, 0, -1))
_UDP4 = cython.declare(Packet, _shape_model(17, 42, -1))
_ICMP4 = cython.declare(Packet, _shape_model(1, 42, 0))


@cython.cfunc
@cython.inline
def _eth_ipv4(data: bytes, p: cython.p_const_uchar, tlen: cython.long, model: Packet,
              addrs: AddrCache) -> Packet:
    """Compiled fast path: a `Packet` with the Ethernet + 20-byte IPv4 fields stored
    (what the pure path's shape classes and lazy fields give), from the shape's model."""
    pkt: Packet = copy_packet(model)
    pkt.data = data
    pkt.src = addrs.get(p + 26)
    pkt.dst = addrs.get(p + 30)
    pkt.ip_len = tlen
    pkt.tos = p[15]
    pkt.ip_id = (p[18] << 8) | p[19]
    pkt.ip_flags = p[20] >> 5
    pkt.ttl = p[22]
    return pkt


class Decoder:
    """Decodes raw frames into `Packet` records; never raises on packet bytes.

    ``decode`` is an instance attribute (a closure) rather than a method: its
    constants and counters are closure cells, which the hot loop reads faster
    than attributes of ``self``.
    """

    decode: Callable[[bytes, int], Packet]

    def __init__(self, checksums: bool = False, udp_tunnels: UdpTunnels | None = None) -> None:
        self.checksums = checksums
        self._ctx = build_context(checksums)
        self._fast_counts: Callable[[], tuple[int, int, int, int]]
        self.decode, self._fast_counts = self._build(self._ctx)
        if udp_tunnels is not None:
            self._ctx.udp_tunnels = udp_tunnels
            if self.decode is not self._layered:
                self.decode = self._with_udp_tunnels(self.decode, self._ctx, udp_tunnels)

    @staticmethod
    def _with_udp_tunnels(fast: Callable[[bytes, int], Packet], ctx: DecodeContext,
                          tunnels: UdpTunnels) -> Callable[[bytes, int], Packet]:
        """The fast path does not look inside UDP: a UDP packet it decoded whose port names a
        tunnel (udptunnel.py) gets the tunnel decoders here, from its payload on, as the
        layered UDP decoder would have done (a packet that went the layered way was
        judged there already: `ctx.udp_seen`). Kept outside the fast path's closure, so
        that stays the shape it is; costs one test per packet when tunnels are on."""
        # `tunnels.wants` inline: its tables are filled in place (UdpTunnels.add), so these
        # are the live ones; no Python frame per UDP packet (~205k on bench-1m)
        by_dport, by_sport, anywhere = tunnels.by_dport, tunnels.by_sport, tunnels.anywhere

        def decode(data: bytes, linktype: int) -> Packet:
            # typed: compiled, the fields tested per packet are struct reads, not attribute
            # lookups (1.8 per packet, ~250 instructions, on bench-200k; bench/README.md "perfst")
            pkt: Packet = fast(data, linktype)
            if pkt.proto == 17 and pkt.tunnel is None and ctx.udp_seen is not pkt and (
                    pkt.dp in by_dport or pkt.sp in by_sport or anywhere):
                ctx.depth = 0
                off = pkt.payload_off
                tunnels.decode(ctx, pkt, data, off, off + pkt.payload_len)
            return pkt

        return decode

    def decode_layered(self, data: bytes, linktype: int) -> Packet:
        """The general path; `decode` falls back to it. Public for tests and tools."""
        return self._layered(data, linktype)

    def _layered(self, data: bytes, linktype: int) -> Packet:
        ctx = self._ctx
        counts = ctx.counts
        counts["pkts"] += 1
        counts["bytes"] += len(data)
        pkt = new_packet()          # compiled: a copy of Packet()'s defaults (packet.py)
        pkt.data = data
        if linktype != 1:
            pkt.linktype = linktype
        fn = link.LINKTYPES.get(linktype)
        if fn is None:
            counts["unknown_linktype"] += 1
            return pkt
        ctx.depth = 0
        try:
            fn(ctx, pkt, data, 0, len(data))
        except (IndexError, struct.error, ValueError) as exc:   # pragma: no cover - a decoder bug
            # a decoder bug must not take the sensor down: count it and keep what was decoded
            counts["decoder_bug"] += 1
            pkt.add_event(f"decoder.bug:{type(exc).__name__}")
        return pkt

    def _build(self, ctx: DecodeContext) -> tuple[Callable[[bytes, int], Packet], Callable[[], tuple[int, int, int, int]]]:
        layered = self._layered
        if ctx.checksums:
            # checksum validation touches every byte anyway; the layered path does it
            return layered, lambda: (0, 0, 0, 0)
        if TYPED and not cython.compiled:
            # the compiled Packet under this pure decoder (a stale extension after an
            # edit): the shape classes below would shadow its slots; the long way
            return layered, lambda: (0, 0, 0, 0)

        # one unpack from the ethertype to the TCP flags (bench: one 13-field call 205 ns
        # versus 290 ns for separate IPv4 and TCP calls); UDP and ICMP headers sit
        # at the same offsets, so their fields are carved out of the TCP-shaped ints.
        hdr = struct.Struct("!HBxH2xHxB2x4s4sHHIIBB").unpack_from
        tcp_options = tcp.decode_options
        Tcp20Pkt, TcpPkt, UdpPkt, IcmpPkt = _EthIPv4Tcp20, _EthIPv4Tcp, _EthIPv4Udp, _EthIPv4Icmp
        n_tcp = n_udp = n_icmp = n_bytes = 0
        # compiled: the fast path's shared address objects (AddrCache); pure Python: unused
        addr_cache: AddrCache = AddrCache() if cython.compiled else None

        def decode(data: bytes, linktype: int) -> Packet:
            nonlocal n_tcp, n_udp, n_icmp, n_bytes
            # C integers when compiled (setup.py COMPILED_MODULES); plain ints otherwise
            et: cython.long
            vihl: cython.long
            tlen: cython.long
            fo: cython.long
            proto: cython.long
            sp: cython.long
            dp: cython.long
            seq: cython.long
            ack: cython.long
            doff: cython.long
            flags: cython.long
            hlen: cython.long
            p: cython.p_const_uchar
            pkt: Packet
            if linktype == 1 and len(data) >= 54:
                if cython.compiled:
                    # compiled: the same fields read straight from the frame as C integers
                    # and stored in the typed record (packet.pxd); no struct call, no lazy
                    # fields (a store here is a pointer write): bench/README.md "pktrec"
                    if type(data) is not bytes:
                        return layered(data, linktype)
                    p = data
                    et = (p[12] << 8) | p[13]
                    vihl = p[14]
                    tlen = (p[16] << 8) | p[17]
                    fo = (p[20] << 8) | p[21]
                    proto = p[23]
                    if et == 0x0800 and vihl == 0x45 and not fo & 0x3FFF and 28 <= tlen <= len(data) - 14:
                        sp = (p[34] << 8) | p[35]
                        dp = (p[36] << 8) | p[37]
                        # widen before shifting: a C int would overflow at << 24
                        seq = (cython.cast(cython.long, p[38]) << 24) | (p[39] << 16) | (p[40] << 8) | p[41]
                        if proto == 6:
                            doff = p[46]
                            hlen = (doff >> 4) << 2
                            if (tlen >= 40) if doff == 0x50 else (20 <= hlen <= tlen - 20):
                                pkt = _eth_ipv4(data, p, tlen, _TCP4, addr_cache)
                                pkt.sp = sp
                                pkt.dp = dp
                                pkt.seq = seq
                                pkt.ack = (cython.cast(cython.long, p[42]) << 24) | (p[43] << 16) | (p[44] << 8) | p[45]
                                pkt.tcp_flags = p[47]
                                pkt.win = (p[48] << 8) | p[49]
                                pkt.tcp_hlen = hlen
                                pkt.payload_off = 34 + hlen
                                pkt.payload_len = tlen - 20 - hlen
                                if hlen > 20:
                                    tcp_options(ctx, pkt, data, 54, 34 + hlen)
                                n_tcp += 1
                                n_bytes += len(data)
                                return pkt
                        elif proto == 17:
                            if seq >> 16 == tlen - 20:   # UDP length field
                                pkt = _eth_ipv4(data, p, tlen, _UDP4, addr_cache)
                                pkt.sp = sp
                                pkt.dp = dp
                                pkt.payload_len = tlen - 28
                                n_udp += 1
                                n_bytes += len(data)
                                return pkt
                        elif proto == 1:
                            if sp == 0x0800 or sp == 0:   # echo request / reply, code 0
                                pkt = _eth_ipv4(data, p, tlen, _ICMP4, addr_cache)
                                pkt.icmp_type = sp >> 8
                                pkt.icmp_id = seq >> 16
                                pkt.icmp_seq = seq & 0xFFFF
                                pkt.payload_len = tlen - 28
                                n_icmp += 1
                                n_bytes += len(data)
                                return pkt
                    return layered(data, linktype)
                et, vihl, tlen, fo, proto, src, dst, sp, dp, seq, ack, doff, flags = hdr(data, 12)
                # Ethernet + IPv4, 20-byte header, not a fragment (DF allowed), fully captured
                if et == 0x0800 and vihl == 0x45 and not fo & 0x3FFF and 28 <= tlen <= len(data) - 14:
                    if proto == 6:
                        if doff == 0x50:
                            if tlen >= 40:
                                pkt = Tcp20Pkt()
                                pkt.data = data
                                pkt.src = src
                                pkt.dst = dst
                                pkt.ip_len = tlen
                                pkt.sp = sp
                                pkt.dp = dp
                                pkt.seq = seq
                                pkt.ack = ack
                                pkt.tcp_flags = flags
                                pkt.payload_len = tlen - 40
                                n_tcp += 1
                                n_bytes += len(data)
                                return pkt
                        else:
                            hlen = (doff >> 4) << 2
                            if 20 <= hlen <= tlen - 20:
                                pkt = TcpPkt()
                                pkt.data = data
                                pkt.src = src
                                pkt.dst = dst
                                pkt.ip_len = tlen
                                pkt.sp = sp
                                pkt.dp = dp
                                pkt.seq = seq
                                pkt.ack = ack
                                pkt.tcp_flags = flags
                                pkt.tcp_hlen = hlen
                                pkt.payload_off = 34 + hlen
                                pkt.payload_len = tlen - 20 - hlen
                                if hlen > 20:
                                    tcp_options(ctx, pkt, data, 54, 34 + hlen)
                                n_tcp += 1
                                n_bytes += len(data)
                                return pkt
                    elif proto == 17:
                        if seq >> 16 == tlen - 20:   # UDP length field
                            pkt = UdpPkt()
                            pkt.data = data
                            pkt.src = src
                            pkt.dst = dst
                            pkt.ip_len = tlen
                            pkt.sp = sp
                            pkt.dp = dp
                            pkt.payload_len = tlen - 28
                            n_udp += 1
                            n_bytes += len(data)
                            return pkt
                    elif proto == 1:
                        if sp == 0x0800 or sp == 0:   # echo request / reply, code 0
                            pkt = IcmpPkt()
                            pkt.data = data
                            pkt.src = src
                            pkt.dst = dst
                            pkt.ip_len = tlen
                            pkt.icmp_type = sp >> 8
                            pkt.icmp_id = seq >> 16
                            pkt.icmp_seq = seq & 0xFFFF
                            pkt.payload_len = tlen - 28
                            n_icmp += 1
                            n_bytes += len(data)
                            return pkt
            return layered(data, linktype)

        def fast_counts() -> tuple[int, int, int, int]:
            return n_tcp, n_udp, n_icmp, n_bytes

        return decode, fast_counts

    def stats(self) -> dict[str, int]:
        """Counters under Suricata's names (``decoder.pkts``, ``decoder.event.ipv4.trunc_pkt``, ...)."""
        counts = dict.fromkeys(COUNTERS, 0)
        counts.update(self._ctx.counts)
        n_tcp, n_udp, n_icmp, n_bytes = self._fast_counts()
        fast = n_tcp + n_udp + n_icmp
        counts["pkts"] += fast
        counts["bytes"] += n_bytes
        counts["ethernet"] += fast
        counts["ipv4"] += fast
        counts["tcp"] += n_tcp
        counts["udp"] += n_udp
        counts["icmpv4"] += n_icmp
        counts["avg_pkt_size"] = counts["bytes"] // counts["pkts"] if counts["pkts"] else 0
        out = {"decoder." + k: v for k, v in counts.items() if not k.startswith("netsentry.")}
        for k in (EVENTS_OVERFLOW, IPV6_EXTHDR_LIMIT):
            out["netsentry.decoder." + k.partition(".")[2]] = counts.get(k, 0)
        return out
