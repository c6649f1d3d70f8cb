#!/usr/bin/env python3
"""Memory per flow of the TCP reassembly stage (stream/tcp.py), with tracemalloc.

usage: bench_stream_memory.py [--flows N] [--request BYTES] [--response BYTES]

Builds N TCP sessions (handshake, one request, one response, all kept alive)
as real decoder output, runs them through the flow table with and without
the stream stage, and prints the extra bytes per flow the stage keeps: two
direction records plus, per direction with data, the inspection overlap
(up to 2 KB, stream/tcp.py OVERLAP). Out-of-order data is not part of it
(it is bounded by stream.reassembly.memcap). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import gc
import struct
import tracemalloc


def frame(src: int, dst: int, sp: int, dp: int, seq: int, ack: int, flags: int, payload: bytes) -> bytes:
    """Ethernet + IPv4 + TCP, checksums zero (not validated by default)."""
    tcp = struct.pack("!HHIIBBHHH", sp, dp, seq, ack, 5 << 4, flags, 65535, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), 1, 0, 64, 6, 0,
                     src.to_bytes(4, "big"), dst.to_bytes(4, "big"))
    return b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00" + ip + tcp + payload


def run(n: int, req: int, resp: int, with_stream: bool) -> tuple[int, int]:
    from netsentry.config import load_config
    from netsentry.decode import Decoder
    from netsentry.flow import FlowTable
    from netsentry.stream import StreamEngine, StreamSettings
    config = load_config(None, [])
    flow_cfg = dict(config["flow"])
    flow_cfg["max-flows"] = n * 2
    dec, table = Decoder(), FlowTable(flow_cfg, lambda f: None)
    stream = StreamEngine(StreamSettings.from_config(config)) if with_stream else None
    keep = []
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for i in range(n):
        c, s = 0xC0000200 + (i >> 16), 0xC6336400 + (i & 0xFFFF)
        cp = 10000 + i % 50000
        pkts = [frame(c, s, cp, 80, 100, 0, 0x02, b""), frame(s, c, 80, cp, 500, 101, 0x12, b""),
                frame(c, s, cp, 80, 101, 501, 0x10, b""), frame(c, s, cp, 80, 101, 501, 0x18, b"q" * req),
                frame(s, c, 80, cp, 501, 101 + req, 0x18, b"r" * resp)]
        for data in pkts:
            pkt = dec.decode(data, 1)
            pkt.ts = 1_700_000_000.0 + i * 1e-4
            flow = table.update(pkt)
            if stream is not None and flow is not None:
                stream.update(pkt, flow)
        keep.append(flow)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return used, len(keep)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--flows", type=int, default=20000)
    ap.add_argument("--request", type=int, default=300)
    ap.add_argument("--response", type=int, default=1400)
    a = ap.parse_args()
    off, n = run(a.flows, a.request, a.response, False)
    on, _ = run(a.flows, a.request, a.response, True)
    print(f"{n:,} flows, request {a.request} B, response {a.response} B: "
          f"without stream {off / n:,.0f} B/flow, with {on / n:,.0f} B/flow, "
          f"reassembly adds {(on - off) / n:,.0f} B/flow")


if __name__ == "__main__":
    main()
