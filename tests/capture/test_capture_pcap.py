"""Classic pcap: byte orders, resolutions, damage, chaining, progress."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from capture_builders import pcap_file, pcap_header, pcap_record
from netsentry.capture import CaptureError, first_timestamp, open_capture, read_captures
from netsentry.capture import reader as reader_module

FRAMES = [b"\x01" * 60, b"\x02" * 1514, b"", b"\x03" * 7]


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_byte_orders_and_resolutions(tmp_path, order, nano):
    frac = 123456789 if nano else 123456
    recs = [(1700000000 + i, frac, f, len(f) + 4) for i, f in enumerate(FRAMES)]
    p = write(tmp_path, "a.pcap", pcap_file(recs, order=order, nano=nano, linktype=1))
    r = open_capture(p)
    assert r.format == "pcap" and r.linktypes == [1] and r.path == str(p)
    got = list(r)
    assert [g[1] for g in got] == FRAMES
    assert [g[2] for g in got] == [len(f) + 4 for f in FRAMES]
    assert all(g[3] == 1 for g in got)
    div = 1e9 if nano else 1e6
    for i, g in enumerate(got):
        assert isinstance(g[0], float)
        assert g[0] == pytest.approx(1700000000 + i + frac / div, abs=1e-6)
    # microsecond value survives float round-trip (the EVE writer rounds it)
    assert round(got[0][0] * 1e6) == 1700000000 * 10**6 + (123457 if nano else frac)


def test_data_is_bytes_and_iteration_restarts(tmp_path):
    p = write(tmp_path, "a.pcap", pcap_file([(1, 2, b"xy")]))
    r = open_capture(p)
    first = list(r)
    assert type(first[0][1]) is bytes
    assert list(r) == first


def test_header_only_file_has_no_records(tmp_path):
    r = open_capture(write(tmp_path, "h.pcap", pcap_header()))
    assert list(r) == []
    assert r.bytes_read == r.size == 24


def test_empty_file_is_an_error(tmp_path):
    p = write(tmp_path, "empty.pcap", b"")
    with pytest.raises(CaptureError, match=re.escape(f"{p}: empty file")):
        open_capture(p)


def test_garbage_is_an_error(tmp_path):
    p = write(tmp_path, "junk.pcap", b"GET / HTTP/1.1\r\n" * 10)
    with pytest.raises(CaptureError, match=r"not a pcap or pcapng file at byte 0: unknown magic 47455420"):
        open_capture(p)


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(CaptureError, match="cannot open"):
        open_capture(tmp_path / "nope.pcap")


def test_short_file_header(tmp_path):
    p = write(tmp_path, "short.pcap", pcap_header()[:10])
    with pytest.raises(CaptureError, match="truncated pcap file header"):
        open_capture(p)


def test_bad_version(tmp_path):
    hdr = bytearray(pcap_header())
    hdr[4] = 9
    with pytest.raises(CaptureError, match="unsupported pcap version"):
        open_capture(write(tmp_path, "v.pcap", bytes(hdr)))


def record_starts(frames, first=24):
    starts, off = [], first
    for f in frames:
        starts.append(off)
        off += 16 + len(f)
    return starts, off


def test_truncated_at_every_cut_point(tmp_path):
    frames = [b"\x01" * 60, b"\x02" * 100, b"", b"\x03" * 7]
    full = pcap_file([(10, i, f) for i, f in enumerate(frames)])
    starts, end = record_starts(frames)
    assert end == len(full)
    for cut in range(24, len(full)):
        p = write(tmp_path, "cut.pcap", full[:cut])
        got = []
        complete = [i for i, s in enumerate(starts) if s + 16 + len(frames[i]) <= cut]
        at_boundary = cut in starts
        if at_boundary:
            got = list(open_capture(p))
        else:
            with pytest.raises(CaptureError) as ei:
                for rec in open_capture(p):
                    got.append(rec)
            bad = starts[len(complete)]
            assert ei.value.offset == bad
            assert str(ei.value).startswith(f"{p}: truncated record")
            assert f"at byte {bad}" in str(ei.value)
        assert [g[1] for g in got] == [frames[i] for i in complete], cut


def test_truncated_message_names_lengths(tmp_path):
    data = pcap_file([(1, 0, b"a" * 100)]) + pcap_record(2, 0, b"b" * 1514)[:16 + 200]
    p = write(tmp_path, "t.pcap", data)
    with pytest.raises(CaptureError) as ei:
        list(open_capture(p))
    assert str(ei.value) == f"{p}: truncated record at byte 140 (packet 2): header says 1514 bytes, 200 left"
    assert ei.value.packet == 2


def test_absurd_caplen_after_good_records(tmp_path):
    import struct
    bad = struct.pack("<IIII", 3, 0, 300000, 300000) + b"z" * 64
    p = write(tmp_path, "absurd.pcap", pcap_file([(1, 0, b"a"), (2, 0, b"b")]) + bad)
    got = []
    with pytest.raises(CaptureError, match=r"absurd record length at byte 58 \(packet 3\): header says 300000 bytes"):
        for rec in open_capture(p):
            got.append(rec[1])
    assert got == [b"a", b"b"]


def test_caplen_over_small_snaplen_margin(tmp_path):
    # snaplen 96: a caplen of 70000 (over 64 KiB and 2*snaplen) is damage
    import struct
    data = pcap_header(snaplen=96) + struct.pack("<IIII", 1, 0, 70000, 70000) + b"x" * 70000
    with pytest.raises(CaptureError, match="absurd record length"):
        list(open_capture(write(tmp_path, "s.pcap", data)))


def test_unknown_linktype_passes_through_and_fcs_bits_masked(tmp_path):
    p = write(tmp_path, "lt.pcap", pcap_file([(1, 0, b"q")], linktype=147))
    assert [r[3] for r in open_capture(p)] == [147]
    fcs = (1 << 28) | (4 << 29) | 1        # FCS-present bits above the link type
    p2 = write(tmp_path, "fcs.pcap", pcap_file([(1, 0, b"q")], linktype=fcs))
    assert open_capture(p2).linktypes == [1]


def test_bytes_read_tracks_progress(tmp_path):
    p = write(tmp_path, "a.pcap", pcap_file([(1, 0, f) for f in FRAMES]))
    r = open_capture(p)
    assert r.bytes_read == 0
    it = iter(r)
    seen = []
    for _ in FRAMES:
        next(it)
        seen.append(r.bytes_read)
    assert seen == sorted(seen) and 0 < seen[-1] < r.size
    assert list(it) == []
    assert r.bytes_read == r.size == p.stat().st_size


def test_mmap_path_gives_same_records(tmp_path, monkeypatch):
    p = write(tmp_path, "a.pcap", pcap_file([(1, i, f) for i, f in enumerate(FRAMES)]))
    whole = list(open_capture(p))
    monkeypatch.setattr(reader_module, "_READ_WHOLE_MAX", 0)
    assert list(open_capture(p)) == whole


def test_read_captures_chains_in_given_order(tmp_path):
    a = write(tmp_path, "a.pcap", pcap_file([(5, 0, b"a1"), (6, 0, b"a2")]))
    b = write(tmp_path, "b.pcap", pcap_file([(1, 0, b"b1")], order=">", linktype=101))
    chain = read_captures([b, a])
    assert chain.size == a.stat().st_size + b.stat().st_size
    assert chain.linktypes == [101, 1]
    out = []
    for rec in chain:
        out.append((rec[1], rec[3], chain.path))
    assert out == [(b"b1", 101, str(b)), (b"a1", 1, str(a)), (b"a2", 1, str(a))]
    assert chain.bytes_read == chain.size


def test_read_captures_fails_before_reading_when_a_file_is_bad(tmp_path):
    a = write(tmp_path, "a.pcap", pcap_file([(5, 0, b"a1")]))
    junk = write(tmp_path, "junk.pcap", b"\0" * 40)
    with pytest.raises(CaptureError, match="junk.pcap"):
        read_captures([a, junk])


def test_read_captures_damage_ends_that_file_and_the_next_is_read(tmp_path, capsys):
    """Suricata's pcap file source: a read error is logged and the file ends there
    (source-pcap-file-helper.c, PcapFileDispatch); the next file follows."""
    a = write(tmp_path, "a.pcap", pcap_file([(5, 0, b"a1")]))
    b = write(tmp_path, "b.pcap", pcap_file([(6, 0, b"b1"), (7, 0, b"b2")])[:-1])
    c = write(tmp_path, "c.pcap", pcap_file([(8, 0, b"c1")]))
    chain = read_captures([a, b, c])
    got = [rec[1] for rec in chain]
    assert got == [b"a1", b"b1", b"c1"]
    (err,) = chain.damaged
    assert (err.path, err.packet, err.offset) == (str(b), 2, 42)
    assert str(err).startswith(f"{b}: truncated record at byte 42 (packet 2)")
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    (line,) = [r for r in logged if r["level"] == "error"]
    assert (line["file"], line["packet"], line["byte"], line["error"]) == (str(b), 2, 42, str(err))
    assert chain.bytes_read == chain.size


@pytest.mark.parametrize("damage", ["absurd", "header-cut"])
def test_chain_damage_kinds_are_reported_once_and_iteration_stays_done(tmp_path, damage):
    import struct
    good = pcap_file([(1, 0, b"a"), (2, 0, b"b")])
    tail = struct.pack("<IIII", 3, 0, 300000, 300000) + b"z" * 64 if damage == "absurd" else b"\0" * 9
    p = write(tmp_path, "d.pcap", good + tail)
    chain = read_captures([p])
    it = iter(chain)
    assert [rec[1] for rec in it] == [b"a", b"b"]
    assert list(it) == []                   # a finished source stays finished (no second report)
    (err,) = chain.damaged
    assert err.packet == 3 and err.offset == 58
    assert err.reason == ("absurd record length" if damage == "absurd" else "truncated record header")


@pytest.mark.parametrize("order", ["<", ">"])
def test_kuznetsov_modified_pcap(tmp_path, order):
    import struct
    hdr = bytearray(pcap_header(order))
    hdr[0:4] = struct.pack(order + "I", 0xA1B2CD34)
    rec = struct.pack(order + "IIII", 7, 500, 3, 60) + struct.pack(order + "IHBB", 2, 0x0800, 0, 0) + b"abc"
    got = list(open_capture(write(tmp_path, "k.pcap", bytes(hdr) + rec + rec)))
    assert [(g[1], g[2]) for g in got] == [(b"abc", 60)] * 2
    assert got[0][0] == pytest.approx(7.0005)


def test_first_timestamp_reads_only_the_head(tmp_path):
    """A directory is ordered by first-packet time without reading whole files:
    a file whose damage lies past the first 64 KiB still gives its first time."""
    big = pcap_file([(1700000100 + i, 0, b"\x00" * 1400) for i in range(100)])
    p = write(tmp_path, "big.pcap", big[:-700])              # truncated far past the head
    assert first_timestamp(p) == 1700000100.0
    assert first_timestamp(write(tmp_path, "hdr.pcap", pcap_header("<", False, 1, 65535))) is None
    assert first_timestamp(write(tmp_path, "junk.pcap", b"not a capture")) is None
    assert first_timestamp(tmp_path / "missing.pcap") is None
