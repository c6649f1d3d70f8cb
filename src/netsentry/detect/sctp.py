"""What rules and EVE read from an SCTP packet: vtag, chunk types and count, DATA chunks.

Suricata's decoder keeps these per packet (``p->l4.vars.sctp``: the first 16
chunk types, the chunk count, where each of the first 16 DATA chunks' user
data lies, the header length with every chunk, and four has_* flags). Here
the decoder stays as it was (decode/sctp.py keeps only ports and the
payload, the hot path's concern) and the same facts are read again from the
packet's bytes when a rule or an EVE record asks for them: only SCTP packets
meet a rule that uses an SCTP keyword, and the walk is a few integer reads
per chunk. One packet's answer is kept until the next packet asks, so ten
SCTP rules on one packet walk its chunks once.

A packet the decoder found invalid (a chunk header cut short, a chunk length
below 4 or past the end) has no transport header (``l4_off`` -1): it is no
SCTP packet for the keywords either, as in Suricata (PacketIsSCTP false).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

IPPROTO_SCTP = 132
HDR_LEN = 12
CHUNK_HDR_LEN = 4
DATA_CHUNK_HDR_LEN = 16
MAX_TRACKED_CHUNKS = 16
MAX_DATA_CHUNKS = 16

CHUNK_NAMES: dict[int, str] = {
    0x00: "data", 0x01: "init", 0x02: "init_ack", 0x03: "sack", 0x04: "heartbeat",
    0x05: "hb_ack", 0x06: "abort", 0x07: "shutdown", 0x08: "shutdown_ack", 0x09: "error",
    0x0A: "cookie_echo", 0x0B: "cookie_ack", 0x0C: "ecne", 0x0D: "cwr",
    0x0E: "shutdown_complete", 0xC0: "forward_tsn",
}
CHUNK_TYPES: dict[str, int] = {name: value for value, name in CHUNK_NAMES.items()}
_DATA, _INIT, _INIT_ACK, _ABORT = 0x00, 0x01, 0x02, 0x06


@dataclass(frozen=True, slots=True)
class SctpInfo:
    """One SCTP packet's header facts (Suricata's SCTPVars)."""

    vtag: int
    chunk_cnt: int                        # every chunk, not only the tracked ones
    chunk_types: tuple[int, ...]          # the first MAX_TRACKED_CHUNKS chunks' types
    data_chunks: tuple[tuple[int, int], ...]   # (offset in pkt.data, length) of DATA user data
    hdr_end: int                          # end of the common header and every chunk (padded)
    has_init: bool
    has_init_ack: bool
    has_data: bool
    has_abort: bool

    def eve(self) -> dict[str, Any]:
        """The ``sctp`` object of an EVE record (Suricata's CreateEveHeader, output-json.c)."""
        return {"vtag": self.vtag, "chunk_cnt": self.chunk_cnt,
                "chunk_types": [CHUNK_NAMES.get(t, f"unknown({t})") for t in self.chunk_types],
                "has_init": self.has_init, "has_init_ack": self.has_init_ack,
                "has_data": self.has_data, "has_abort": self.has_abort}


_last: list[Any] = [None, None]          # [packet, its SctpInfo]: one packet's answer is kept


def sctp_info(pkt: Any) -> SctpInfo | None:
    """The packet's SCTP facts, or None for a packet that is no (valid) SCTP packet."""
    if pkt.proto != IPPROTO_SCTP:
        return None
    last = _last
    if last[0] is pkt:
        return last[1]
    info = _walk(pkt)
    last[0] = pkt
    last[1] = info
    return info


def _end(pkt: Any) -> int:
    """Where the IP datagram ends in `pkt.data` (Ethernet padding is no SCTP data)."""
    data_len = len(pkt.data)
    if pkt.ip_off >= 0 and pkt.ip_len > 0:
        end = pkt.ip_off + pkt.ip_len
        if end < data_len:
            return end
    return data_len


def _walk(pkt: Any) -> SctpInfo | None:
    off = pkt.l4_off
    data = pkt.data
    end = _end(pkt)
    if off < 0 or end - off < HDR_LEN:
        return None
    vtag = int.from_bytes(data[off + 4:off + 8], "big")
    pos = off + HDR_LEN
    types: list[int] = []
    chunks: list[tuple[int, int]] = []
    count = 0
    has_init = has_init_ack = has_data = has_abort = False
    while pos < end:
        if end - pos < CHUNK_HDR_LEN:
            return None
        ctype = data[pos]
        clen = (data[pos + 2] << 8) | data[pos + 3]
        if clen < CHUNK_HDR_LEN or clen > end - pos:
            return None
        if count < MAX_TRACKED_CHUNKS:
            types.append(ctype)
        count += 1
        if ctype == _DATA:
            has_data = True
            if clen >= DATA_CHUNK_HDR_LEN and len(chunks) < MAX_DATA_CHUNKS:
                chunks.append((pos + DATA_CHUNK_HDR_LEN, clen - DATA_CHUNK_HDR_LEN))
        elif ctype == _INIT:
            has_init = True
        elif ctype == _INIT_ACK:
            has_init_ack = True
        elif ctype == _ABORT:
            has_abort = True
        pos += (clen + 3) & ~3
    return SctpInfo(vtag, count, tuple(types), tuple(chunks), min(pos, end),
                    has_init, has_init_ack, has_data, has_abort)


def sctp_eve(pkt: Any) -> dict[str, Any] | None:
    """The EVE ``sctp`` object of a packet record, or None when the packet has none."""
    info = sctp_info(pkt)
    return None if info is None else info.eve()
