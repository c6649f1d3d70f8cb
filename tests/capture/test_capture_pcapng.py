"""pcapng: interfaces, resolutions, block kinds, sections, damage."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from capture_builders import block, epb, idb, option, pb, shb, spb
from netsentry.capture import CaptureError, open_capture

T0 = 1700000000


def write(tmp_path: Path, data: bytes, name: str = "a.pcapng") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def read(tmp_path: Path, data: bytes) -> list[tuple]:
    return list(open_capture(write(tmp_path, data)))


@pytest.mark.parametrize("order", ["<", ">"])
def test_two_interfaces_with_own_linktype_and_resolution(tmp_path, order):
    data = (shb(order) + idb(1, 65535, order=order)                       # Ethernet, microseconds
            + idb(113, 262144, tsresol=9, order=order)                    # Linux SLL, nanoseconds
            + epb(0, T0 * 10**6 + 250_000, b"eth-frame", order=order)
            + epb(1, T0 * 10**9 + 123_456_789, b"sll-frame!", wirelen=99, order=order)
            + epb(0, (T0 + 1) * 10**6, b"e2", order=order))
    r = open_capture(write(tmp_path, data))
    assert r.format == "pcapng"
    assert r.linktypes == [1, 113]          # learnt at open time
    got = list(r)
    assert [(g[1], g[2], g[3]) for g in got] == [
        (b"eth-frame", 9, 1), (b"sll-frame!", 99, 113), (b"e2", 2, 1)]
    assert got[0][0] == pytest.approx(T0 + 0.25, abs=1e-6)
    assert got[1][0] == pytest.approx(T0 + 0.123456789, abs=1e-6)
    assert round(got[1][0] * 1e6) == T0 * 10**6 + 123457
    assert got[2][0] == float(T0 + 1)


def test_power_of_two_resolution_and_ts_offset(tmp_path):
    data = (shb() + idb(1, tsresol=0x80 | 20, tsoffset=1000)
            + epb(0, (T0 << 20) + (1 << 19), b"x"))                        # half a second, 2^-20 units
    (ts, _, _, _), = read(tmp_path, data)
    assert ts == pytest.approx(T0 + 1000 + 0.5, abs=1e-6)


def test_ts_precision_matches_exact_quotient(tmp_path):
    ticks = [T0 * 10**6 + u for u in (0, 1, 999_999, 123_456, 654_321)] + [(1 << 32) - 1, 1 << 45]
    got = read(tmp_path, shb() + idb(1) + b"".join(epb(0, t, b"d") for t in ticks))
    for t, g in zip(ticks, got):
        assert round(g[0] * 1e6) == t


def test_simple_packet_block_uses_interface_0_snaplen_and_last_time(tmp_path):
    data = (shb() + idb(1, snaplen=4)
            + spb(b"abcdefgh", wirelen=8)                                  # before any timestamp
            + epb(0, T0 * 10**6, b"abcd")
            + spb(b"ABCDEFGH"))
    got = read(tmp_path, data)
    assert [(g[0], g[1], g[2], g[3]) for g in got] == [
        (0.0, b"abcd", 8, 1), (float(T0), b"abcd", 4, 1), (float(T0), b"ABCD", 8, 1)]


def test_obsolete_packet_block(tmp_path):
    got = read(tmp_path, shb() + idb(6) + pb(0, T0 * 10**6 + 5, b"old"))
    assert got == [(pytest.approx(T0 + 5e-6, abs=1e-7), b"old", 3, 6)]


def test_unknown_blocks_are_skipped(tmp_path):
    nrb = block(4, struct.pack("<HH", 0, 0))
    isb = block(5, struct.pack("<III", 0, 0, 0))
    custom = block(0x40000BAD, b"\xde\xad\xbe\xef" * 3)
    data = shb() + nrb + idb(1) + isb + epb(0, 1, b"p1") + custom + epb(0, 2, b"p2") + isb
    assert [g[1] for g in read(tmp_path, data)] == [b"p1", b"p2"]


def test_epb_with_options_and_padding(tmp_path):
    opts = option(1, b"a comment that is not aligned")
    data = shb(options=option(2, b"hw")) + idb(1) + epb(0, 7, b"12345", options=opts) + epb(0, 8, b"z")
    assert [g[1] for g in read(tmp_path, data)] == [b"12345", b"z"]


def test_big_epb_takes_the_checked_path(tmp_path):
    big = b"B" * 200_000
    opts = option(1, b"c" * 65000) + option(1, b"d" * 65000)              # block > fast-path bound
    got = read(tmp_path, shb() + idb(1) + epb(0, 1, big, options=opts) + epb(0, 2, b"s"))
    assert [len(g[1]) for g in got] == [200_000, 1]


def test_several_sections_with_own_byte_order_and_interfaces(tmp_path):
    data = (shb("<") + idb(1) + epb(0, T0 * 10**6, b"s1")
            + shb(">") + idb(101, tsresol=3, order=">") + epb(0, T0 * 1000 + 500, b"s2", order=">")
            + shb("<") + idb(228) + idb(1) + epb(1, T0 * 10**6, b"s3a") + epb(0, T0 * 10**6, b"s3b"))
    r = open_capture(write(tmp_path, data))
    assert r.linktypes == [1]
    got = list(r)
    assert [(g[1], g[3]) for g in got] == [(b"s1", 1), (b"s2", 101), (b"s3a", 1), (b"s3b", 228)]
    assert got[1][0] == pytest.approx(T0 + 0.5)
    assert r.linktypes == [1, 101, 228]


def test_interface_from_previous_section_is_not_reused(tmp_path):
    data = shb() + idb(1) + epb(0, 1, b"ok") + shb() + epb(0, 2, b"orphan")
    p = write(tmp_path, data)
    got = []
    with pytest.raises(CaptureError, match="unknown interface id at byte") as ei:
        for rec in open_capture(p):
            got.append(rec[1])
    assert got == [b"ok"]
    assert ei.value.offset == data.index(epb(0, 2, b"orphan"))


def test_unknown_interface_id(tmp_path):
    data = shb() + idb(1) + epb(0, 1, b"ok") + epb(3, 2, b"bad")
    p = write(tmp_path, data)
    got = []
    with pytest.raises(CaptureError) as ei:
        for rec in open_capture(p):
            got.append(rec[1])
    assert got == [b"ok"]
    assert str(ei.value) == (f"{p}: unknown interface id at byte {len(data) - 36} (packet 2): "
                             "packet names interface 3, section has 1")


def test_header_only_pcapng_has_no_records(tmp_path):
    assert read(tmp_path, shb() + idb(1)) == []
    assert read(tmp_path, shb()) == []


@pytest.mark.parametrize("bad_len", [0, 4, 8, 13, 14])
def test_bad_block_length_never_loops(tmp_path, bad_len):
    data = shb() + idb(1) + epb(0, 1, b"ok") + struct.pack("<II", 0x99, bad_len) + b"\0" * 16
    p = write(tmp_path, data)
    got = []
    with pytest.raises(CaptureError, match="bad block length at byte"):
        for rec in open_capture(p):
            got.append(rec[1])
    assert got == [b"ok"]


def test_zero_length_epb_is_an_error(tmp_path):
    data = shb() + idb(1) + struct.pack("<IIIIIII", 6, 0, 0, 0, 0, 0, 0) + b"\0" * 8
    with pytest.raises(CaptureError, match="bad block length"):
        read(tmp_path, data)


def test_trailing_length_mismatch(tmp_path):
    bad = bytearray(block(0x99, b"\0" * 8))
    bad[-4:] = struct.pack("<I", 24)
    with pytest.raises(CaptureError, match="block length mismatch"):
        read(tmp_path, shb() + idb(1) + bytes(bad))


def test_epb_caplen_overruns_block(tmp_path):
    good = shb() + idb(1) + epb(0, 1, b"ok")
    bad = bytearray(epb(0, 2, b"x" * 8))
    bad[20:24] = struct.pack("<I", 50)            # caplen 50 in a block with room for 8
    p = write(tmp_path, good + bytes(bad))
    got = []
    with pytest.raises(CaptureError, match=f"packet overruns its block at byte {len(good)}"):
        for rec in open_capture(p):
            got.append(rec[1])
    assert got == [b"ok"]


def test_chain_ends_a_damaged_pcapng_there_and_reads_the_next_file(tmp_path):
    from netsentry.capture import read_captures
    good = shb() + idb(1) + epb(0, 1, b"ok") + block(5, b"\0" * 12) + epb(0, 2, b"ok2")
    bad = bytearray(epb(0, 3, b"x" * 8))
    bad[20:24] = struct.pack("<I", 50)            # caplen 50 in a block with room for 8
    first = write(tmp_path, good + bytes(bad) + epb(0, 4, b"never"), "first.pcapng")
    second = write(tmp_path, shb() + idb(1) + epb(0, 5, b"next"), "second.pcapng")
    chain = read_captures([first, second])
    assert [rec[1] for rec in chain] == [b"ok", b"ok2", b"next"]
    (err,) = chain.damaged
    assert (err.path, err.packet, err.offset) == (str(first), 3, len(good))
    assert str(err) == (f"{first}: packet overruns its block at byte {len(good)} (packet 3): "
                        "captured length 50, block has room for 8")


def test_absurd_epb_caplen(tmp_path):
    data = shb() + idb(1) + epb(0, 1, b"A" * 300_000)
    with pytest.raises(CaptureError, match="absurd packet length"):
        read(tmp_path, data)


def test_bad_byte_order_magic(tmp_path):
    data = bytearray(shb() + idb(1))
    data[8:12] = b"\x01\x02\x03\x04"
    with pytest.raises(CaptureError, match="bad pcapng byte-order magic at byte 8"):
        open_capture(write(tmp_path, bytes(data)))


def test_bad_second_section_header(tmp_path):
    second = bytearray(shb())
    second[8:12] = b"zzzz"
    first = shb() + idb(1) + epb(0, 1, b"ok")
    p = write(tmp_path, first + bytes(second))
    got = []
    with pytest.raises(CaptureError, match=f"byte-order magic at byte {len(first) + 8}"):
        for rec in open_capture(p):
            got.append(rec[1])
    assert got == [b"ok"]


def test_truncated_at_every_cut_point(tmp_path):
    blocks = [shb(), idb(1), idb(113, tsresol=9), epb(0, 1, b"a" * 33), spb(b"s" * 5),
              epb(1, 2, b"b" * 7), block(5, b"\0" * 12), epb(0, 3, b"")]
    full = b"".join(blocks)
    ends, off = [], 0
    for b in blocks:
        off += len(b)
        ends.append(off)
    packets = {3: b"a" * 33, 4: b"s" * 5, 5: b"b" * 7, 7: b""}
    for cut in range(1, len(full)):
        p = write(tmp_path, full[:cut])
        expected = [packets[i] for i, e in enumerate(ends) if e <= cut and i in packets]
        got = []
        try:
            for rec in open_capture(p):
                got.append(rec[1])
        except CaptureError as e:
            assert cut not in ends, cut
            assert f"{p}: " in str(e) and "at byte" in str(e)
            assert e.offset is not None and e.offset <= cut
        else:
            assert cut in ends, cut
        assert got == expected, cut


def test_scapy_pcapng_writer_interop(tmp_path):
    scapy_utils = pytest.importorskip("scapy.utils")
    from scapy.layers.l2 import Ether
    from scapy.layers.inet import IP, UDP

    pkts = []
    for i in range(5):
        pkt = Ether() / IP(dst="127.0.0.1") / UDP(sport=1000 + i, dport=53) / (b"q" * i)
        pkt.time = T0 + i / 4
        pkts.append(pkt)
    p = tmp_path / "scapy.pcapng"
    with scapy_utils.PcapNgWriter(str(p)) as w:
        for pkt in pkts:
            w.write(pkt)
    got = list(open_capture(p))
    assert [g[1] for g in got] == [bytes(x) for x in pkts]
    assert [g[3] for g in got] == [1] * 5
    assert [g[0] for g in got] == pytest.approx([T0 + i / 4 for i in range(5)], abs=1e-6)


def test_new_section_does_not_reuse_cached_interface(tmp_path):
    # same interface id, same high timestamp word: only the section differs
    data = (shb() + idb(1) + epb(0, T0 * 1000, b"a")
            + shb() + idb(105, tsresol=3) + epb(0, T0 * 1000, b"b"))
    got = read(tmp_path, data)
    assert [(g[1], g[3]) for g in got] == [(b"a", 1), (b"b", 105)]
    assert got[0][0] == pytest.approx(T0 / 1000, rel=1e-12)
    assert got[1][0] == pytest.approx(T0, rel=1e-12)          # same ticks, now milliseconds


# --- timestamp extremes (issue #14): kept in the EVE range, counted, never a crash -----------

TS_MAX = 253402300799.0       # 9999-12-31T23:59:59


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("idb_kw,ticks", [
    ({"tsresol": 0x80}, (1 << 64) - 1),                        # 2^64 seconds
    ({"tsresol": 0}, (1 << 64) - 1),                           # seconds
    ({"tsoffset": (1 << 63) - 1}, 0),                          # largest positive offset
    ({"tsoffset": -(1 << 63)}, 0),                             # before year 1000
    ({}, 300_000_000_000 * 10**6),                             # microseconds past year 9999
])
def test_out_of_range_timestamps_take_the_previous_time_and_are_counted(tmp_path, order, idb_kw, ticks):
    data = (shb(order) + idb(1, order=order) + idb(1, order=order, **idb_kw)
            + epb(0, T0 * 10**6, b"ok", order=order)
            + epb(1, ticks, b"bad", order=order)
            + epb(1, ticks, b"bad2", order=order)                 # same high word: still checked
            + pb(1, ticks, b"old", order=order)                   # the obsolete Packet Block too
            + epb(0, (T0 + 2) * 10**6, b"ok2", order=order))
    r = open_capture(write(tmp_path, data))
    got = list(r)
    assert [g[1] for g in got] == [b"ok", b"bad", b"bad2", b"old", b"ok2"]       # every packet kept
    assert [g[0] for g in got] == [float(T0)] * 4 + [float(T0 + 2)]
    assert r.stats() == {"netsentry.capture.ts_out_of_range": 3}


def test_last_second_of_year_9999_is_kept_and_first_out_of_range_packet_gets_zero(tmp_path):
    data = (shb() + idb(1, tsresol=0)
            + epb(0, int(TS_MAX) + 1, b"first")                     # nothing before it: 0.0
            + epb(0, int(TS_MAX), b"last ok"))
    r = open_capture(write(tmp_path, data))
    assert [g[0] for g in r] == [0.0, TS_MAX]
    assert r.stats()["netsentry.capture.ts_out_of_range"] == 1


def test_eve_timestamps_keep_four_digit_years():
    from netsentry.output.fields import make_timestamp_formatter
    fmt = make_timestamp_formatter()
    assert fmt(TS_MAX) == "9999-12-31T23:59:59.000000+0000"
    assert fmt(TS_MAX + 86400 * 366 * 5) == "9999-12-31T23:59:59.999999+0000"     # never 5 digits
    assert fmt(1e18) == "9999-12-31T23:59:59.999999+0000"                          # no OverflowError
    assert fmt(-1e18).startswith("1000-01-01T00:00:00")
    assert fmt(-30610224000.0) == "1000-01-01T00:00:00.000000+0000"
    assert fmt(0.5) == "1970-01-01T00:00:00.500000+0000"


def test_replay_with_huge_timestamps_keeps_the_whole_output(tmp_path):
    """Valid packets, then one past year 9999: the run's records used to be lost
    ('cannot write output: Value too large' or an OverflowError)."""
    import subprocess
    import sys

    import orjson
    frame = (b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00"
             + struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 1, 0, 64, 17, 0, b"\x0a\0\0\x01", b"\x0a\0\0\x02")
             + struct.pack("!HHHH", 1000, 53, 8, 0))
    data = (shb() + idb(1) + idb(1, tsresol=0x80, tsoffset=(1 << 63) - 1)
            + epb(0, T0 * 10**6, frame) + epb(0, T0 * 10**6 + 1, frame)
            + epb(1, (1 << 64) - 1, frame))
    pcap = write(tmp_path, data)
    proc = subprocess.run([sys.executable, "-m", "netsentry", "replay", str(pcap), "-l", str(tmp_path), "-q"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    records = [orjson.loads(line) for line in (tmp_path / "eve.json").read_bytes().splitlines()]
    assert [r["event_type"] for r in records][-1] == "stats"
    assert records[-1]["stats"]["decoder"]["pkts"] == 3
    assert records[-1]["stats"]["netsentry"]["capture"]["ts_out_of_range"] == 1
    for r in records:
        assert r["timestamp"][:4].isdigit() and r["timestamp"][4] == "-"
