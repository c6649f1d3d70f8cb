"""SCTP keywords (sctp.vtag, sctp.chunk_type, sctp.chunk_cnt, sctp.hdr, sctp.chunk_data)
and the ``sctp{}`` object of EVE records, on packets built with scapy and decoded by
netsentry's decoder, and through a whole replay's eve.json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from rules_helpers import rule
from scapy.layers.inet import IP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.layers.sctp import (SCTP, SCTPChunkAbort, SCTPChunkData, SCTPChunkInit,
                               SCTPChunkInitAck, SCTPChunkSACK)
from scapy.utils import wrpcap

from netsentry.decode import Decoder
from netsentry.detect.sctp import sctp_info
from netsentry.rules import RuleError

CLIENT, SERVER = "10.1.0.1", "10.1.0.2"


def frame(*chunks, vtag: int = 0x11223344, sport: int = 2906, dport: int = 6303) -> bytes:
    layer = SCTP(sport=sport, dport=dport, tag=vtag)
    for c in chunks:
        layer = layer / c
    return bytes(Ether() / IP(src=CLIENT, dst=SERVER) / layer)


def decoded(raw: bytes):
    return Decoder().decode(raw, 1)


def hit(opts: str, raw: bytes, header: str = "alert sctp any any -> any any") -> bool:
    return bool(rule(opts, header).match(decoded(raw), None))


INIT = frame(SCTPChunkInit(init_tag=7), vtag=0)
INIT_ACK = frame(SCTPChunkInitAck(init_tag=9), vtag=7)
TWO_DATA = frame(SCTPChunkData(tsn=1, data=b"first chunk"), SCTPChunkData(tsn=2, data=b"second chunk"), vtag=9)
SACK_DATA = frame(SCTPChunkSACK(), SCTPChunkData(tsn=3, data=b"hello"), vtag=9)


def test_info_from_the_wire() -> None:
    info = sctp_info(decoded(TWO_DATA))
    assert info is not None
    assert info.vtag == 9 and info.chunk_cnt == 2 and info.chunk_types == (0, 0)
    assert info.has_data and not info.has_init and len(info.data_chunks) == 2
    assert sctp_info(decoded(bytes(Ether() / IP() / b"x"))) is None       # not SCTP


@pytest.mark.parametrize("opts, raw, want", [
    ("sctp.vtag:0;", INIT, True),
    ("sctp.vtag:0;", INIT_ACK, False),
    ("sctp.vtag:>5;", INIT_ACK, True),
    ("sctp.vtag:5-8;", INIT_ACK, True),               # integer ranges are exclusive: 6, 7
    ("sctp.vtag:!7;", INIT_ACK, False),
    ("sctp.chunk_type:init;", INIT, True),
    ("sctp.chunk_type:INIT_ACK;", INIT_ACK, True),    # names are case-insensitive
    ("sctp.chunk_type:init;", INIT_ACK, False),
    ("sctp.chunk_type:1;", INIT, True),               # or numbers
    ("sctp.chunk_type:!data;", SACK_DATA, True),      # any chunk that is not DATA: the SACK
    ("sctp.chunk_type:!data;", TWO_DATA, False),
    ("sctp.chunk_type:>2;", SACK_DATA, True),
    ("sctp.chunk_cnt:2;", SACK_DATA, True),
    ("sctp.chunk_cnt:>2;", SACK_DATA, False),
    ("sctp.chunk_cnt:1;", INIT, True),
])
def test_integer_keywords(opts: str, raw: bytes, want: bool) -> None:
    assert hit(opts, raw) is want


def test_hdr_buffer_is_the_common_header_and_every_chunk() -> None:
    assert hit('sctp.hdr; content:"|0b 5a 18 9f|"; depth:4;', INIT)         # ports 2906 -> 6303
    assert hit('sctp.hdr; content:"|01 00|"; offset:12; depth:2;', INIT)    # the INIT chunk header
    assert hit('sctp.hdr; content:"second chunk";', TWO_DATA)               # chunks' bytes too
    assert not hit('sctp.hdr; content:"|01 00|"; offset:12; depth:2;', INIT_ACK)


def test_chunk_data_inspects_every_data_chunk_while_content_sees_the_first() -> None:
    assert hit('sctp.chunk_data; content:"second"; startswith;', TWO_DATA)
    assert hit('sctp.chunk_data; content:"first"; startswith;', TWO_DATA)
    assert hit('sctp.chunk_data; content:"hello"; bsize:5;', SACK_DATA)
    assert not hit('sctp.chunk_data; content:"chunkfirst";', TWO_DATA)      # instances are apart
    assert not hit('sctp.chunk_data; content:"x";', INIT)                   # no DATA chunk
    assert hit('content:"first chunk";', TWO_DATA)
    assert not hit('content:"second";', TWO_DATA)      # the payload is the first DATA chunk's


def test_keywords_never_match_other_protocols() -> None:
    tcp = bytes(Ether() / IP(src=CLIENT, dst=SERVER, proto=6) / (b"\x00" * 20))
    assert not hit("sctp.vtag:0;", tcp, "alert ip any any -> any any")
    assert not hit("sctp.chunk_cnt:>0;", tcp, "alert ip any any -> any any")


@pytest.mark.parametrize("opts, msg", [
    ("sctp.chunk_type:bogus;", "unknown value"),
    ("sctp.chunk_type:256;", "unknown value"),
    ("sctp.chunk_cnt:70000;", "does not fit"),
    ("sctp.vtag:x;", "invalid"),
])
def test_bad_values(opts: str, msg: str) -> None:
    with pytest.raises(RuleError, match=msg):
        rule(opts, "alert sctp any any -> any any")


@pytest.mark.parametrize("kw", ["sctp.hdr", "sctp.chunk_data"])
def test_sticky_buffers_need_a_protocol_that_can_be_sctp(kw: str) -> None:
    with pytest.raises(RuleError, match="cannot be SCTP"):
        rule(f'{kw}; content:"a";', "alert tcp any any -> any any")
    rule(f'{kw}; content:"a";', "alert ip any any -> any any")


def test_eve_records_carry_the_sctp_object(tmp_path: Path) -> None:
    frames = [Ether(INIT), Ether(INIT_ACK), Ether(TWO_DATA)]
    for i, f in enumerate(frames):
        f.time = 1_700_000_000 + i
    wrpcap(str(tmp_path / "s.pcap"), frames)
    (tmp_path / "s.rules").write_text(
        "alert sctp any any -> any any (sctp.chunk_type:init; sid:1;)\n"
        "alert sctp any any -> any any (sctp.chunk_data; content:\"second\"; sid:2;)\n")
    out = tmp_path / "out"
    subprocess.run([sys.executable, "-m", "netsentry", "replay", str(tmp_path / "s.pcap"),
                    "-S", str(tmp_path / "s.rules"), "-l", str(out)], check=True, capture_output=True)
    recs = [json.loads(line) for line in (out / "eve.json").read_text().splitlines()]
    alerts = {r["alert"]["signature_id"]: r for r in recs if r["event_type"] == "alert"}
    assert set(alerts) == {1, 2}
    assert alerts[1]["sctp"] == {"vtag": 0, "chunk_cnt": 1, "chunk_types": ["init"], "has_init": True,
                                 "has_init_ack": False, "has_data": False, "has_abort": False}
    assert alerts[2]["sctp"]["chunk_types"] == ["data", "data"]
    assert alerts[2]["sctp"]["has_data"] and alerts[2]["sctp"]["vtag"] == 9
    # as Suricata's header: after ip_v, before pkt_src
    keys = list(alerts[1])
    assert keys.index("ip_v") < keys.index("sctp") < keys.index("pkt_src")
    assert all("sctp" not in r for r in recs if r["event_type"] == "flow")


def test_abort_and_unknown_chunk_names_in_eve() -> None:
    raw = frame(SCTPChunkAbort(), vtag=3)
    info = sctp_info(decoded(raw))
    assert info is not None and info.has_abort and info.eve()["chunk_types"] == ["abort"]
    # an unassigned type (0x3f): a bare 4-byte chunk header
    raw = bytes(Ether() / IP(src=CLIENT, dst=SERVER) / SCTP(tag=3) / Raw(bytes.fromhex("3f000004")))
    info = sctp_info(decoded(raw))
    assert info is not None and info.eve()["chunk_types"] == ["unknown(63)"]
