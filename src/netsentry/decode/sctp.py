"""SCTP (RFC 4960): the common header and the chunk walk, as Suricata's decode-sctp.c.

What the engines need from an SCTP packet is its ports (so flows, port rules and
EVE carry them) and what `content` inspects: the user data of the first DATA
chunk (Suricata points the payload there). The chunk walk raises Suricata's
decoder events; a chunk shorter than its header or running past the packet
makes the packet invalid, which ends its decoding (no ports, no flow), as a
failed DecodeSCTP does there.
"""

from __future__ import annotations

from netsentry.decode import events as ev
from netsentry.decode.context import DecodeContext
from netsentry.decode.packet import Packet

IPPROTO_SCTP = 132
HDR_LEN = 12
CHUNK_HDR_LEN = 4
DATA_CHUNK_HDR_LEN = 16
MAX_TRACKED_CHUNKS = 16     # Suricata: chunk types kept per packet; more raises too_many_chunks
MAX_DATA_CHUNKS = 16
CHUNK_DATA, CHUNK_INIT, CHUNK_INIT_ACK = 0x00, 0x01, 0x02


def decode(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int) -> None:
    ctx.counts["sctp"] += 1
    if end - off < HDR_LEN:
        ctx.invalid(pkt, ev.SCTP_PKT_TOO_SMALL)
        return
    sp = (data[off] << 8) | data[off + 1]
    dp = (data[off + 2] << 8) | data[off + 3]
    vtag = int.from_bytes(data[off + 4:off + 8], "big")
    payload_off, payload_len = _chunks(ctx, pkt, data, off + HDR_LEN, end, vtag)
    if payload_off < 0:
        return                                  # invalid: Suricata's DecodeSCTP failed
    pkt.l4_off = off
    pkt.sp = sp
    pkt.dp = dp
    pkt.payload_off = payload_off
    pkt.payload_len = payload_len


def _chunks(ctx: DecodeContext, pkt: Packet, data: bytes, off: int, end: int, vtag: int) -> tuple[int, int]:
    """Walk the chunks: (offset, length) of the first DATA chunk's user data ((end, 0)
    without one), or (-1, 0) when a chunk header is cut short or its length is wrong."""
    pos = off
    count = 0
    data_chunks = 0
    first = (end, 0)
    init = False
    while pos < end:
        if end - pos < CHUNK_HDR_LEN:
            ctx.invalid(pkt, ev.SCTP_CHUNK_TOO_SMALL)
            return -1, 0
        ctype = data[pos]
        clen = (data[pos + 2] << 8) | data[pos + 3]
        if clen < CHUNK_HDR_LEN or clen > end - pos:
            ctx.invalid(pkt, ev.SCTP_CHUNK_LEN_INVALID)
            return -1, 0
        if count == MAX_TRACKED_CHUNKS:
            ctx.event(pkt, ev.SCTP_TOO_MANY_CHUNKS)
        count += 1
        if ctype == CHUNK_INIT or ctype == CHUNK_INIT_ACK:
            init = True
            if ctype == CHUNK_INIT and vtag != 0:
                ctx.event(pkt, ev.SCTP_INIT_WITH_NON_ZERO_VTAG)    # RFC 4960 8.5.1
        elif ctype == CHUNK_DATA:
            if clen >= DATA_CHUNK_HDR_LEN:
                if data_chunks == 0:
                    first = (pos + DATA_CHUNK_HDR_LEN, clen - DATA_CHUNK_HDR_LEN)
                elif data_chunks == MAX_DATA_CHUNKS:
                    ctx.event(pkt, ev.SCTP_TOO_MANY_DATA_CHUNKS)
                data_chunks += 1
            if vtag == 0:
                ctx.event(pkt, ev.SCTP_DATA_WITH_ZERO_VTAG)
        pos += (clen + 3) & ~3                  # chunks are padded to 4 bytes
    if init and count > 1:
        ctx.event(pkt, ev.SCTP_INIT_CHUNK_BUNDLED)                # RFC 4960 6.10
    return first
