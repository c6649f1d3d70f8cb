"""IPv4 and IPv6 defragmentation, before the flow lookup.

Why here: a pattern spread over fragments, or fragments that overlap with
different bytes, must be seen as the target host would reassemble them
(Suricata's defrag.c). The capture loop hands every fragment (`pkt.frag`,
set by the decoder) to `Defragmenter.add`; the fragment itself still runs
the pipeline as the IP packet it is, and when it completes a datagram the
reassembled packet is attached as `pkt.reassembled` and runs the pipeline
once, right after it, with the same `pcap_cnt` (the packet Suricata names
for an alert on the reassembled datagram is the one that completed it).

- Trackers are keyed like Suricata's: address family, addresses, IP id,
  (IPv4) protocol, and VLAN ids.
- Overlaps are resolved per the destination's policy (`host-os-policy`,
  hostos.py; `defrag.policy` for hosts it does not name; policy.py); a
  fragment that overlaps another raises `ipv4.frag_overlap` /
  `ipv6.frag_overlap`.
- A fragment reaching past 65,535 bytes is dropped with
  `ipv4.frag_pkt_too_large` / `ipv6.frag_pkt_too_large`; an IPv6 fragment
  that is not the last with a length not a multiple of 8 raises
  `ipv6.frag_invalid_length`.
- `defrag.timeout` seconds of packet time after its last fragment, an
  unfinished datagram is dropped and counted (`defrag.wrk.tracker_timeout`);
  over `defrag.trackers`, `defrag.max-frags` or `defrag.memcap` the fragment
  is ignored (`ipv4.frag_ignored`, `defrag.max_trackers_reached`,
  `defrag.max_frags_reached`).
"""

from __future__ import annotations

import struct
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from netsentry.stream.hostos import FRAG_OF_OS, HostOS
from netsentry.stream.overlay import Overlay
from netsentry.stream.policy import FRAG_POLICIES
from netsentry.stream.settings import DefragSettings

if TYPE_CHECKING:  # pragma: no cover
    from netsentry.decode.packet import Packet

MAX_PACKET = 65535
LINKTYPE_RAW = 101
_EXT_CHAIN = frozenset({0, 43, 60})      # hop-by-hop, routing, destination options: before the fragment header
_FRAGMENT = 44


class Tracker:
    """One datagram being reassembled."""

    __slots__ = ("overlay", "header", "last_end", "due", "nfrags", "v6_nh_pos", "v6_nh", "wins")

    def __init__(self, wins: Any) -> None:
        self.wins = wins             # the destination's overlap policy (policy.py)
        self.overlay = Overlay()
        self.header = b""            # the offset-0 fragment's unfragmentable part (IPv4 header / IPv6 + ext headers)
        self.last_end = -1           # end of the datagram, known from the last fragment (MF clear)
        self.due = 0.0
        self.nfrags = 0
        self.v6_nh_pos = -1          # IPv6: where in `header` the next-header byte naming the fragment header is
        self.v6_nh = 0               # ... and the protocol that follows the fragment header


class Defragmenter:
    """`add(pkt)` for each fragment; returns the reassembled Packet or None.

    `decode(data, linktype) -> Packet` decodes a reassembled datagram (the
    sensor passes its decoder, so the datagram is counted and checked like
    any packet)."""

    def __init__(self, settings: DefragSettings, decode: Callable[[bytes, int], Any],
                 hosts: HostOS | None = None) -> None:
        self.settings = settings
        self.hosts = hosts if hosts else None       # host-os-policy; None: one policy for every host
        self.decode = decode
        self.new_wins = FRAG_POLICIES[settings.policy]
        self.timeout = settings.timeout
        self.trackers: OrderedDict[Any, Tracker] = OrderedDict()   # oldest activity first
        self.memuse = 0
        self.nfrags = 0
        self.decoded_bytes = 0       # reassembled datagrams' bytes the decoder counted
        self.counters: Counter[str] = Counter()
        # the memcap's exception policy (exception_policy.py): on_memcap(pkt)
        self.on_memcap: Callable[[Packet], None] | None = None

    def add(self, pkt: Packet) -> Packet | None:
        self._expire(pkt.ts)
        v6 = pkt.ip_version == 6
        fam = "ipv6" if v6 else "ipv4"
        self.counters[f"defrag.{fam}.fragments"] += 1
        data = pkt.data
        ip_off = pkt.ip_off
        if v6:
            parsed = _v6_fragment(data, ip_off)
            if parsed is None:
                return None
            hdr_end, nh_pos, nh, frag_pos, offset, more, ident = parsed
            start = frag_pos + 8
            stop = ip_off + 40 + struct.unpack_from("!H", data, ip_off + 4)[0]
            key = (6, pkt.src, pkt.dst, ident, pkt.vlan)
        else:
            hdr_end = ip_off + pkt.ip_hlen
            start = hdr_end
            stop = ip_off + pkt.ip_len
            offset = pkt.frag_offset * 8
            more = pkt.ip_flags & 1
            key = (4, pkt.src, pkt.dst, pkt.ip_id, pkt.proto, pkt.vlan)
        length = stop - start
        if length < 0:
            return None
        if offset + length > MAX_PACKET or (not v6 and 20 + offset + length > MAX_PACKET):
            self._event(pkt, f"{fam}.frag_pkt_too_large")
            return None
        if v6 and more and length % 8:
            self._event(pkt, "ipv6.frag_invalid_length")
            return None
        s = self.settings
        tr = self.trackers.get(key)
        if tr is None:
            if len(self.trackers) >= s.trackers:
                self.counters["defrag.max_trackers_reached"] += 1
                self._event(pkt, f"{fam}.frag_ignored")
                if self.on_memcap is not None:      # defrag.memcap-policy
                    self.on_memcap(pkt)
                return None
            tr = self.trackers[key] = Tracker(self._policy_for(pkt.dst))
        else:
            self.trackers.move_to_end(key)
        if self.nfrags >= s.max_frags or self.memuse + length > s.memcap:
            self.counters["defrag.max_frags_reached"] += 1
            self._event(pkt, f"{fam}.frag_ignored")
            if self.on_memcap is not None:
                self.on_memcap(pkt)
            return None
        tr.due = pkt.ts + self.timeout
        before = tr.overlay.nbytes
        overlapped, _ = tr.overlay.insert(offset, data[start:stop], tr.wins)
        self.memuse += tr.overlay.nbytes - before
        tr.nfrags += 1
        self.nfrags += 1
        if overlapped:
            self._event(pkt, f"{fam}.frag_overlap")
        if offset == 0:
            if v6:
                tr.header = data[ip_off:hdr_end]
                tr.v6_nh_pos = nh_pos - ip_off
                tr.v6_nh = nh
            else:
                tr.header = data[ip_off:hdr_end]
        if not more:
            tr.last_end = offset + length
        if tr.last_end < 0 or not tr.header:
            return None
        pieces = tr.overlay.pieces
        cur = 0
        for ps, pd, _, _ in pieces:
            if ps != cur:
                return None           # still a hole
            cur = ps + len(pd)
        if cur < tr.last_end:
            return None
        payload = b"".join(p[1] for p in pieces)[:tr.last_end]
        self._forget(key)
        self.counters[f"defrag.{fam}.reassembled"] += 1
        return self._build(pkt, tr, payload, v6)

    # --- the parts -------------------------------------------------------------

    def _policy_for(self, dst: bytes) -> Any:
        """The destination host's fragment policy (Suricata's DefragGetOsPolicy)."""
        hosts = self.hosts
        if hosts is not None:
            os_name = hosts.lookup(dst)
            if os_name is not None:
                return FRAG_POLICIES[FRAG_OF_OS[os_name]]
        return self.new_wins

    def _build(self, pkt: Packet, tr: Tracker, payload: bytes, v6: bool) -> Packet:
        hdr = bytearray(tr.header)
        if v6:
            hdr[tr.v6_nh_pos] = tr.v6_nh
            struct.pack_into("!H", hdr, 4, len(hdr) - 40 + len(payload))
        else:
            struct.pack_into("!H", hdr, 2, len(hdr) + len(payload))     # total length
            struct.pack_into("!H", hdr, 6, 0)                           # flags and offset cleared
            hdr[10:12] = b"\0\0"
            struct.pack_into("!H", hdr, 10, _ip_checksum(bytes(hdr)))
        raw = bytes(hdr) + payload
        rp = self.decode(raw, LINKTYPE_RAW)
        self.decoded_bytes += len(raw)
        rp.ts = pkt.ts
        rp.pcap_cnt = pkt.pcap_cnt
        rp.wirelen = len(raw)
        rp.root = pkt
        if pkt.vlan:
            rp.vlan = pkt.vlan
        return rp

    def _event(self, pkt: Packet, name: str) -> None:
        pkt.add_event(name)
        self.counters["decoder.event." + name] += 1

    def _forget(self, key: Any) -> None:
        tr = self.trackers.pop(key)
        self.memuse -= tr.overlay.nbytes
        self.nfrags -= tr.nfrags

    def _expire(self, now: float) -> None:
        trackers = self.trackers
        while trackers:
            key, tr = next(iter(trackers.items()))
            if tr.due > now:
                break
            self._forget(key)
            self.counters["defrag.wrk.tracker_timeout"] += 1

    def flush(self) -> None:
        """End of the run: unfinished datagrams are dropped and counted."""
        for key in list(self.trackers):
            self._forget(key)
            self.counters["defrag.wrk.tracker_timeout"] += 1

    def stats(self) -> dict[str, int]:
        out = dict(self.counters)
        out["defrag.memuse"] = self.memuse
        # A reassembled datagram is decoded (as raw IP) like a packet, but Suricata's
        # decoder.pkts/bytes/raw count only what was captured: take ours back out
        # (the counters are summed over the stages, output/stats.py merge_counters).
        n = self.counters["defrag.ipv4.reassembled"] + self.counters["defrag.ipv6.reassembled"]
        if n:
            out["decoder.pkts"] = -n
            out["decoder.raw"] = -n
            out["decoder.bytes"] = -self.decoded_bytes
        return out


def _v6_fragment(data: bytes, ip_off: int) -> tuple[int, int, int, int, int, int, int] | None:
    """Walk to the fragment header: (end of the unfragmentable part, position of the
    next-header byte that names the fragment header, protocol after it, fragment
    header position, offset in bytes, more-fragments flag, identification)."""
    nh_pos = ip_off + 6
    nh = data[nh_pos]
    cur = ip_off + 40
    while nh in _EXT_CHAIN:
        if cur + 2 > len(data):
            return None
        nh_pos = cur
        nh = data[cur]
        cur += (data[cur + 1] + 1) * 8
    if nh != _FRAGMENT or cur + 8 > len(data):
        return None
    nxt, _, offm, ident = struct.unpack_from("!BBHI", data, cur)
    return cur, nh_pos, nxt, cur, offm & 0xFFF8, offm & 1, ident


def _ip_checksum(hdr: bytes) -> int:
    if len(hdr) % 2:
        hdr += b"\0"
    total = sum(struct.unpack(f"!{len(hdr) // 2}H", hdr))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
