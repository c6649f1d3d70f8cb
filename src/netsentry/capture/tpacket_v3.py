"""The TPACKET_V3 receive ring of an AF_PACKET socket: frames read from shared memory, by block.

With a ring the kernel writes frames into memory mapped into our process,
packed into blocks, and hands a block over when it is full or its retire
timeout (``RETIRE_MS``) passes; user space walks the block's frames and
gives it back. No system call per frame (the plain socket pays one recv
each), and the kernel's own receive time stamp comes with every frame.

Layout (include/uapi/linux/if_packet.h):

- block: ``tpacket_block_desc`` = version, offset_to_priv, then
  ``tpacket_hdr_v1``: block_status (offset 8), num_pkts (12),
  offset_to_first_pkt (16), ...; ``TP_STATUS_USER`` in block_status means
  the block is ours until we write ``TP_STATUS_KERNEL`` back;
- frame: ``tpacket3_hdr`` = tp_next_offset, tp_sec, tp_nsec, tp_snaplen,
  tp_len, tp_status (u32 each), tp_mac (u16, offset of the frame from the
  header), ...

Which reader the sensor uses is ``af-packet.ring`` (docs/daemon.md has the
measurement of both).
"""

from __future__ import annotations

import mmap
import socket
import struct

SOL_PACKET = 263
PACKET_RX_RING = 5
PACKET_VERSION = 10
TPACKET_V3 = 2
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1

RETIRE_MS = 10            # a block with any frame is handed over within this time on a slow link

_BLOCK_HDR = struct.Struct("=III")        # block_status, num_pkts, offset_to_first_pkt (at offset 8)
_FRAME_HDR = struct.Struct("=IIIIIIH")    # next_offset, sec, nsec, snaplen, len, status, mac
_KERNEL = struct.pack("=I", TP_STATUS_KERNEL)


class RxRing:
    """A TPACKET_V3 ring on `sock` (set up before the socket is bound)."""

    def __init__(self, sock: socket.socket, block_size: int = 1 << 20, block_nr: int = 16,
                 frame_size: int = 1 << 11) -> None:
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
        # struct tpacket_req3: block_size, block_nr, frame_size, frame_nr, retire_blk_tov,
        # sizeof_priv, feature_req_word (frame_size/frame_nr only need to be consistent in V3)
        req = struct.pack("=7I", block_size, block_nr, frame_size, (block_size // frame_size) * block_nr,
                          RETIRE_MS, 0, 0)
        sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
        self.block_size = block_size
        self.block_nr = block_nr
        self.map = mmap.mmap(sock.fileno(), block_size * block_nr, mmap.MAP_SHARED,
                             mmap.PROT_READ | mmap.PROT_WRITE)
        self.block = 0

    def ready(self) -> bool:
        """Is the current block handed over to user space?"""
        return bool(_BLOCK_HDR.unpack_from(self.map, self.block * self.block_size + 8)[0] & TP_STATUS_USER)

    def frames(self, linktype: int, snap: int = 1 << 30):
        """Yield ``(ts, data, wirelen, linktype)`` for every frame of the current block, then give
        the block back to the kernel and move to the next one. Call only when `ready()`."""
        mm = self.map
        base = self.block * self.block_size
        _status, count, off = _BLOCK_HDR.unpack_from(mm, base + 8)
        off += base
        unpack = _FRAME_HDR.unpack_from
        try:
            for _ in range(count):
                nxt, sec, nsec, snaplen, wirelen, _st, mac = unpack(mm, off)
                start = off + mac
                yield sec + nsec * 1e-9, mm[start:start + (snaplen if snaplen < snap else snap)], wirelen, linktype
                off += nxt
        finally:
            # the frames were copied out (bytes), so the block can go back at once
            mm[base + 8:base + 12] = _KERNEL
            self.block = (self.block + 1) % self.block_nr

    def close(self) -> None:
        self.map.close()
