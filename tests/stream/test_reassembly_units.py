"""The stream stage's parts on their own: overlap policies, TCP reassembly limits, defrag limits.

Packets are real decoder output of scapy-built frames; the stages are the real ones.
"""

from __future__ import annotations

from typing import Any

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from stream_helpers import Feed, stream_through

from netsentry.config import ConfigError
from netsentry.decode import Decoder
from netsentry.stream import Defragmenter, DefragSettings, StreamEngine, StreamSettings, parse_size
from netsentry.stream.overlay import Overlay
from netsentry.stream.policy import FRAG_POLICIES, TCP_POLICIES

C, S = "192.0.2.1", "198.51.100.2"
MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}


# --- overlap policies -----------------------------------------------------------------

def lay(policy: str, pieces: list[tuple[int, bytes]], table: dict = FRAG_POLICIES) -> bytes:
    ov = Overlay()
    for start, data in pieces:
        ov.insert(start, data, table[policy])
    return ov.take_contiguous(0)


# Novak's classic: an original at 8-16, then a second one starting before it and ending inside it
@pytest.mark.parametrize("policy,expected", [
    ("first", b"BBBBBBBBAAAAAAAA"), ("last", b"BBBBBBBBBBBBAAAA"), ("bsd", b"BBBBBBBBBBBBAAAA"),
    ("bsd-right", b"BBBBBBBBAAAAAAAA"), ("linux", b"BBBBBBBBBBBBAAAA"), ("windows", b"BBBBBBBBAAAAAAAA"),
    ("solaris", b"BBBBBBBBAAAAAAAA"),
])
def test_fragment_starting_before_and_ending_inside(policy: str, expected: bytes) -> None:
    assert lay(policy, [(8, b"A" * 8), (0, b"B" * 12)]) == expected


@pytest.mark.parametrize("policy,expected", [
    ("first", b"AAAAAAAABB"), ("last", b"BBBBBBBBBB"), ("bsd", b"AAAAAAAABB"), ("linux", b"BBBBBBBBBB"),
    ("windows", b"AAAAAAAABB"), ("solaris", b"AAAAAAAABB"),
])
def test_fragment_at_the_same_offset_reaching_further(policy: str, expected: bytes) -> None:
    assert lay(policy, [(0, b"A" * 8), (0, b"B" * 10)]) == expected


@pytest.mark.parametrize("policy,expected", [
    ("first", b"BBAAAABB"), ("last", b"BBBBBBBB"), ("bsd", b"BBBBBBBB"), ("linux", b"BBBBBBBB"),
    ("windows", b"BBBBBBBB"), ("solaris", b"BBBBBBBB"),
])
def test_fragment_covering_an_earlier_one(policy: str, expected: bytes) -> None:
    assert lay(policy, [(2, b"A" * 4), (0, b"B" * 8)]) == expected


def test_every_tcp_policy_keeps_bytes_nobody_overlapped() -> None:
    for name in TCP_POLICIES:
        assert lay(name, [(4, b"4567"), (0, b"0123"), (8, b"89")], TCP_POLICIES) == b"0123456789"


def test_overlay_reports_different_overlapping_bytes() -> None:
    ov = Overlay()
    assert ov.insert(0, b"abcd", FRAG_POLICIES["first"]) == (False, False)
    assert ov.insert(2, b"cd", FRAG_POLICIES["first"]) == (True, False)
    assert ov.insert(2, b"XY", FRAG_POLICIES["first"]) == (True, True)


# --- TCP reassembly ---------------------------------------------------------------------

def frame(seq: int, data: bytes = b"", flags: str = "PA", to_server: bool = True, ack: int = 0) -> bytes:
    src, dst, sp, dp = (C, S, 40000, 80) if to_server else (S, C, 80, 40000)
    return bytes(Ether(**MACS) / IP(src=src, dst=dst) / TCP(sport=sp, dport=dp, flags=flags, seq=seq, ack=ack)
                 / Raw(data))


def run_stream(frames: list[bytes], **cfg: Any) -> tuple[StreamEngine, Feed, list[Any]]:
    config: dict[str, Any] = {"stream": {"midstream": cfg.pop("midstream", False),
                                         "reassembly": {k.replace("_", "-"): v for k, v in cfg.items()}}}
    return stream_through(frames, config)


SYN = frame(100, flags="S")
SYNACK = frame(500, flags="SA", to_server=False, ack=101)


def test_out_of_order_data_is_fed_once_in_order() -> None:
    eng, feed, pkts = run_stream([SYN, SYNACK, frame(105, b"456789"), frame(101, b"0123"), frame(101, b"0123")])
    assert bytes(feed.data[True]) == b"0123456789"
    assert pkts[2].stream_data is None and pkts[2].stream_added   # held: nothing new in order yet
    assert pkts[3].stream_data == b"0123456789"                   # the hole is filled: all of it is new
    assert pkts[4].stream_data is None                            # a retransmission brings nothing new
    assert eng.memuse == 0 and eng.stats()["stream.pkt_retransmission"] == 1


def test_a_new_syn_with_another_number_starts_a_new_stream() -> None:
    eng, feed, pkts = run_stream([SYN, SYNACK, frame(101, b"first"), frame(9000, flags="S"),
                                  frame(8000, flags="SA", to_server=False, ack=9001), frame(9001, b"second")])
    assert bytes(feed.data[True]) == b"firstsecond"
    assert pkts[5].stream_data == b"second" and pkts[5].stream_old == 0
    assert eng.stats()["tcp.ssn_reused"] == 1


def test_depth_stops_reassembly_and_is_counted_once() -> None:
    eng, feed, _ = run_stream([SYN, SYNACK, frame(101, b"a" * 6), frame(107, b"b" * 6), frame(113, b"c" * 6)],
                              depth="8")
    assert bytes(feed.data[True]) == b"aaaaaabb"
    assert eng.stats()["tcp.stream_depth_reached"] == 1


def test_depth_reached_is_a_stream_event_on_the_packet_that_reached_it_once_per_direction() -> None:
    """`stream-event:reassembly_depth_reached` rules match the packet whose data reached
    the depth, once per direction (Suricata stops reassembling the direction there)."""
    _, _, pkts = run_stream([SYN, SYNACK, frame(101, b"a" * 6), frame(107, b"b" * 6), frame(113, b"c" * 6),
                             frame(501, b"r" * 10, to_server=False, ack=119), frame(511, b"s", to_server=False)],
                            depth="8")
    hit = [i for i, p in enumerate(pkts) if "stream.reassembly_depth_reached" in (p.events or [])]
    assert hit == [3, 5]


def test_memcap_drops_out_of_order_data_beyond_it() -> None:
    eng, feed, _ = run_stream([SYN, SYNACK, frame(111, b"x" * 10), frame(131, b"y" * 10)], memcap="15")
    assert eng.stats()["tcp.segment_memcap_drop"] == 1
    assert eng.memuse == 10


def test_acknowledged_hole_is_a_gap_and_reassembly_goes_on() -> None:
    # the receiver acknowledges bytes 101-110 we never saw: skip them, deliver what follows
    eng, feed, _ = run_stream([SYN, SYNACK, frame(101, b"head"), frame(111, b"after-gap"),
                               frame(500 + 1, b"", flags="A", to_server=False, ack=120)])
    assert bytes(feed.data[True]) == b"headafter-gap"
    assert feed.gaps == [6]
    assert eng.stats()["tcp.reassembly_gap"] == 1


def test_rst_data_never_joins_the_stream() -> None:
    _, feed, pkts = run_stream([SYN, SYNACK, frame(101, b"bad", flags="RA")])
    assert bytes(feed.data[True]) == b"" and not pkts[2].stream_added


def test_session_without_handshake_needs_midstream() -> None:
    _, feed, pkts = run_stream([frame(101, b"hello")])
    assert bytes(feed.data[True]) == b"" and not pkts[0].stream_added
    eng, feed, pkts = run_stream([frame(101, b"hello")], midstream=True)
    assert bytes(feed.data[True]) == b"hello" and pkts[0].stream_added
    assert eng.stats()["tcp.midstream_pickups"] == 1


def test_window_keeps_an_overlap_of_inspected_bytes_in_front_of_new_ones() -> None:
    _, _, pkts = run_stream([SYN, SYNACK, frame(101, b"abc"), frame(104, b"def")])
    assert (pkts[2].stream_data, pkts[2].stream_old) == (b"abc", 0)
    assert (pkts[3].stream_data, pkts[3].stream_old) == (b"abcdef", 3)


@pytest.mark.parametrize("key,value", [("stream.reassembly.depth", "lots"), ("stream.reassembly.policy", "beos"),
                                       ("defrag.policy", "amiga"), ("defrag.timeout", 0)])
def test_bad_settings_name_their_key(key: str, value: Any) -> None:
    section, *rest = key.split(".")
    cfg: dict[str, Any] = {}
    node = cfg.setdefault(section, {})
    for part in rest[:-1]:
        node = node.setdefault(part, {})
    node[rest[-1]] = value
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        StreamSettings.from_config(cfg) if section == "stream" else DefragSettings.from_config(cfg)


def test_sizes_read_as_suricata_writes_them() -> None:
    assert parse_size("1mb", "k") == 1 << 20
    assert parse_size("64 KiB", "k") == 64 << 10
    assert parse_size(32768, "k") == 32768


# --- defragmentation -----------------------------------------------------------------

def frag(ident: int, offset: int, data: bytes, more: bool) -> bytes:
    return bytes(Ether(**MACS) / IP(src=C, dst=S, id=ident, proto=17, flags="MF" if more else 0, frag=offset // 8)
                 / Raw(data))


def run_defrag(frames: list[tuple[float, bytes]], **cfg: Any) -> tuple[Defragmenter, list[Any]]:
    dec = Decoder()
    d = Defragmenter(DefragSettings.from_config({"defrag": cfg}), dec.decode)
    out = []
    for ts, data in frames:
        pkt = dec.decode(data, 1)
        pkt.ts = ts
        assert pkt.frag
        out.append((pkt, d.add(pkt)))
    return d, out


UDP_BYTES = bytes(IP(src=C, dst=S) / UDP(sport=1, dport=2) / (b"p" * 16))[20:]   # 24 bytes


def test_unfinished_datagram_expires_counted() -> None:
    d, out = run_defrag([(0.0, frag(1, 0, UDP_BYTES[:8], True)), (100.0, frag(2, 0, UDP_BYTES[:8], True)),
                         (101.0, frag(1, 8, UDP_BYTES[8:], False))], timeout=60)
    assert all(r is None for _, r in out)       # id 1's first half expired before its end came
    assert d.stats()["defrag.wrk.tracker_timeout"] == 1
    d.flush()
    assert d.stats()["defrag.wrk.tracker_timeout"] == 3 and d.memuse == 0


def test_fragment_past_the_largest_datagram_is_an_event() -> None:
    d, out = run_defrag([(0.0, frag(1, 65528, b"x" * 16, False))])
    pkt, r = out[0]
    assert r is None and pkt.events == ["ipv4.frag_pkt_too_large"]


def test_memcap_ignores_fragments_beyond_it() -> None:
    d, out = run_defrag([(0.0, frag(1, 0, UDP_BYTES[:8], True)), (0.1, frag(1, 8, UDP_BYTES[8:16], True))],
                        memcap="12")
    assert out[1][0].events == ["ipv4.frag_ignored"]
    assert d.stats()["defrag.max_frags_reached"] == 1


def test_reassembled_datagram_is_decoded_whole() -> None:
    _, out = run_defrag([(0.0, frag(7, 8, UDP_BYTES[8:], False)), (0.1, frag(7, 0, UDP_BYTES[:8], True))])
    rp = out[1][1]
    assert (rp.sp, rp.dp, rp.payload, rp.frag) == (1, 2, b"p" * 16, False)


# --- host-os-policy --------------------------------------------------------------------

def test_most_specific_network_names_the_os() -> None:
    import ipaddress

    from netsentry.stream import HostOS
    hosts = HostOS({"host-os-policy": {"windows": ["0.0.0.0/0"], "linux": ["10.1.0.0/16"], "bsd": ["10.1.2.3"],
                                       "macos": ["2001:db8::/32"]}})
    def os_of(a: str) -> str | None:
        return hosts.lookup(ipaddress.ip_address(a).packed)
    assert [os_of("10.1.2.3"), os_of("10.1.9.9"), os_of("192.0.2.1"), os_of("2001:db8::1"), os_of("::1")] == \
        ["bsd", "linux", "windows", "macos", None]


@pytest.mark.parametrize("section,key", [({"beos": ["10.0.0.0/8"]}, "host-os-policy.beos"),
                                         ({"linux": ["10.0.0.300"]}, "host-os-policy.linux")])
def test_bad_host_os_policy_names_its_key(section: dict, key: str) -> None:
    from netsentry.stream import HostOS
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        HostOS({"host-os-policy": section})
