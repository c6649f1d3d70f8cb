"""SCTP: ports and the first DATA chunk's user data (what `content` inspects), and
Suricata's decoder events for short packets and bad chunks; a whole-sensor run
shows `alert sctp` rules, SCTP flows and EVE ports."""

from __future__ import annotations

from pathlib import Path

import pytest
from decode_frames import DST4, SRC4, decode, eth
from scapy.layers.inet import IP
from scapy.layers.sctp import SCTP, SCTPChunkData, SCTPChunkInit, SCTPChunkSACK

from netsentry.config import load_config
from netsentry.output.eve import render
from netsentry.output.memory import MemoryOutput
from netsentry.rules import load_rules
from netsentry.sensor import Sensor


def sctp(*chunks, tag: int = 7, sport: int = 2905, dport: int = 2906) -> bytes:
    layer = SCTP(sport=sport, dport=dport, tag=tag)
    for c in chunks:
        layer = layer / c
    return eth(IP(src=SRC4, dst=DST4) / layer)


def test_ports_and_first_data_chunk_payload() -> None:
    pkt = decode(sctp(SCTPChunkSACK(), SCTPChunkData(data=b"hello"), SCTPChunkData(data=b"world")))
    assert (pkt.proto, pkt.sp, pkt.dp) == (132, 2905, 2906)
    assert pkt.payload == b"hello"
    assert pkt.events is None


def test_no_data_chunk_no_payload() -> None:
    pkt = decode(sctp(SCTPChunkInit(), tag=0))
    assert pkt.sp == 2905 and pkt.payload == b""
    assert pkt.events is None


@pytest.mark.parametrize("frame,event,decoded", [
    (eth(IP(src=SRC4, dst=DST4, proto=132) / b"\x0b\x59\x0b\x5a\x00\x00"), "sctp.pkt_too_small", False),
    (eth(IP(src=SRC4, dst=DST4, proto=132) / (bytes(SCTP(sport=2905, dport=2906, tag=7) / SCTPChunkData(data=b"x"))
                                              + b"\x00\x00")), "sctp.chunk_too_small", False),
    (sctp(SCTPChunkData(data=b"x", len=200)), "sctp.chunk_len_invalid", False),
    (sctp(SCTPChunkInit(), tag=9), "sctp.init_with_non_zero_vtag", True),
    (sctp(SCTPChunkInit(), SCTPChunkSACK(), tag=0), "sctp.init_chunk_bundled", True),
    (sctp(SCTPChunkData(data=b"x"), tag=0), "sctp.data_with_zero_vtag", True),
    (sctp(*[SCTPChunkSACK() for _ in range(17)]), "sctp.too_many_chunks", True),
])
def test_events(frame: bytes, event: str, decoded: bool) -> None:
    """Cut-short and overlong chunks end decoding (Suricata's DecodeSCTP fails: no ports,
    no flow); the protocol-rule events only mark the packet."""
    pkt = decode(frame)
    assert event in pkt.events
    assert (pkt.sp == 2905) is decoded


def test_sctp_rules_flows_and_eve(tmp_path: Path) -> None:
    rf = tmp_path / "t.rules"
    rf.write_text('alert sctp any 2905 -> any 2906 (content:"hello"; sid:1;)\n'
                  'alert sctp any any -> any any (decode-event:sctp.pkt_too_small; sid:2;)\n')
    cfg = load_config(None, [])
    out = MemoryOutput()
    sensor = Sensor(cfg, [out], load_rules([str(rf)], cfg))
    frames = [sctp(SCTPChunkData(data=b"hello")),
              eth(IP(src=SRC4, dst=DST4, proto=132) / b"\x00\x01")]
    sensor.run([(1.0 + i, f, len(f), 1) for i, f in enumerate(frames)])
    sensor.finish()
    recs = [render(e) for e in out.events]
    alerts = {r["alert"]["signature_id"]: r for r in recs if r["event_type"] == "alert"}
    assert (alerts[1]["proto"], alerts[1]["src_port"], alerts[1]["dest_port"]) == ("SCTP", 2905, 2906)
    assert alerts[2]["pcap_cnt"] == 2
    flows = [r for r in recs if r["event_type"] == "flow"]
    assert [(f["proto"], f["src_port"], f["dest_port"]) for f in flows] == [("SCTP", 2905, 2906)]
