"""A replay worker's share of a capture (share.py) and the parent's folding of the parts
(workers.merge_eve, workers.widen_pipe).

share.py is compiled when the extensions are built; its pure-Python generator
is the reference. Both must hand a worker the same records, number them the
same (`pcap_cnt`, EVE's packet number) and close the host-state judge's seconds
at the same records, or N workers would disagree with one.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.utils import wrpcap

from netsentry import _compiled
from netsentry.workers import merge_eve, widen_pipe

REPO = Path(__file__).resolve().parents[1]

# One interpreter per path: every worker's share of each capture, with a stand-in for the
# judge's link that records when the worker closes a second (and a stop that never fires).
DRIVER = r"""
import json, sys, zlib
from netsentry.capture import read_captures
from netsentry.share import ShareSource

class Link:
    own_closes = bool(int(sys.argv[1]))
    def __init__(self):
        self.tick_end = float("-inf")
        self.closed = []
    def advance(self, ts, cnt):
        self.closed.append([ts, cnt])
        self.tick_end = (ts // 1 + 1) * 1.0

out = {}
for path in sys.argv[2:]:
    for workers in (1, 2, 3):
        for index in range(workers):
            link = Link()
            share = ShareSource(read_captures([path]), index, workers, lambda: False)
            share.link = link
            got = [[share.pcap_cnt, record[0], zlib.crc32(record[1])] for record in share]
            out[f"{path}:{workers}:{index}"] = [got, link.closed, share.pcap_cnt, share.last_ts]
print(json.dumps(out))
"""


def _mixed(path: Path) -> Path:
    """IPv4, IPv6, VLAN-tagged and ARP frames over several seconds, many host pairs."""
    frames = []
    t = 1_700_000_000.0
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")     # (no address lookups by scapy)
    for i in range(80):
        a, b = f"192.168.{i % 5}.{i + 1}", f"10.0.{i % 3}.{i % 7 + 1}"
        frames.append(eth / IP(src=a, dst=b) / TCP(sport=40000 + i, dport=80, flags="S"))
        frames.append(eth / IP(src=b, dst=a) / TCP(sport=80, dport=40000 + i, flags="SA"))
        frames.append(eth / Dot1Q(vlan=7) / IP(src=a, dst=b) / UDP(sport=5000 + i, dport=53) / b"q")
        frames.append(eth / IPv6(src=f"2001:db8::{i + 1:x}", dst=f"2001:db8:1::{i % 4 + 1:x}")
                      / TCP(sport=50000 + i, dport=443, flags="S"))
        if i % 10 == 0:
            frames.append(Ether(src="02:00:00:00:00:01", dst="ff:ff:ff:ff:ff:ff") / ARP(psrc=a, pdst=b))
    for n, f in enumerate(frames):
        f.time = t + n * 0.013          # ~4 s of packet time: the clock closes seconds
    wrpcap(str(path), frames)
    return path


def _shares(paths: list[Path], pure: bool, own_closes: bool) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    env.pop("NETSENTRY_PURE", None)
    if pure:
        env["NETSENTRY_PURE"] = "1"
    out = subprocess.run([sys.executable, "-c", DRIVER, str(int(own_closes)), *map(str, paths)],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("own_closes", [False, True])
def test_compiled_and_pure_shares_give_the_same_records_numbers_and_clock(tmp_path: Path, own_closes: bool):
    if _compiled.built_modules().get("netsentry.share") is not False:
        pytest.skip("share.py is not compiled (or its extension is stale): there is one path only")
    paths = [_mixed(tmp_path / "mixed.pcap"), REPO / "pcaps" / "anomaly-portscan.pcap"]
    pure = _shares(paths, pure=True, own_closes=own_closes)
    compiled = _shares(paths, pure=False, own_closes=own_closes)
    assert compiled == pure
    mixed = str(paths[0])
    for workers in (2, 3):
        numbers = sorted(cnt for i in range(workers) for cnt, _, _ in pure[f"{mixed}:{workers}:{i}"][0])
        assert numbers == list(range(1, pure[f"{mixed}:1:0"][2] + 1)), "the shares are disjoint and cover it"
        if own_closes:      # (else the worker's anomaly observer closes a second at its own records)
            assert all(pure[f"{mixed}:{workers}:{i}"][1] == pure[f"{mixed}:{workers}:0"][1]
                       for i in range(workers)), "every worker closes the seconds at the same record"
    assert len(pure[f"{mixed}:2:0"][1]) >= 4       # the clock did close seconds


def test_merge_keeps_each_part_in_order_interleaves_by_time_and_drops_a_torn_line(tmp_path: Path):
    def line(ts: str, who: str) -> bytes:
        return b'{"timestamp":"2026-12-07T03:00:%s+0000","who":"%s"}\n' % (ts.encode(), who.encode())
    (tmp_path / "eve.0.json").write_bytes(line("01.000001", "a1") + line("03.000000", "a2") + line("02.000000", "a3"))
    (tmp_path / "eve.1.json").write_bytes(line("01.000001", "b1") + line("02.500000", "b2")
                                          + b'{"timestamp":"2026-12-07T03:00:09.0')     # killed mid-write
    (tmp_path / "eve.2.json").write_bytes(b"")
    merge_eve(tmp_path, "eve.json", 3, append=False, keep_parts=False)
    who = [json.loads(x)["who"] for x in (tmp_path / "eve.json").read_bytes().splitlines()]
    # ties in part order; a part's own order is kept even where its times go back (a3)
    assert who == ["a1", "b1", "b2", "a2", "a3"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eve.json"]


def test_a_worker_pipe_holds_a_second_of_host_state_without_blocking():
    import multiprocessing
    read_end, write_end = multiprocessing.get_context("fork").Pipe(duplex=False)
    try:
        widen_pipe(write_end)
        size = fcntl.fcntl(write_end.fileno(), fcntl.F_GETPIPE_SZ)
        limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
        assert size >= min(1 << 20, limit)
        os.set_blocking(write_end.fileno(), False)
        write_end.send_bytes(b"x" * 200_000)            # a bench second's batch is ~110 KB
        assert read_end.recv_bytes() == b"x" * 200_000
    finally:
        read_end.close()
        write_end.close()


MERGE_DRIVER = r"""
import sys
from pathlib import Path
from netsentry.evemerge import merge_parts
d = Path(sys.argv[1])
with open(d / sys.argv[2], "wb") as out:
    merge_parts([d / f"eve.{i}.json" for i in range(5)], out)
"""


def test_compiled_and_pure_merges_write_the_same_bytes(tmp_path: Path):
    """evemerge's compiled merge (mapped parts, memcmp keys, one output buffer) writes what
    heapq.merge over the lines writes: ties in part order, a part's own order kept, keys
    shorter than the slice (short lines), a line longer than the output buffer, empty and
    missing parts, torn last lines dropped."""
    if _compiled.built_modules().get("netsentry.evemerge") is not False:
        pytest.skip("evemerge.py is not compiled (or its extension is stale): there is one path only")
    from netsentry.evemerge import MERGE_BUFFER

    def line(ts: str, who: str, pad: int = 0) -> bytes:
        return b'{"timestamp":"2026-12-07T03:00:%s+0000","who":"%s"%s}\n' % (
            ts.encode(), who.encode(), b',"p":"' + b"x" * pad + b'"' if pad else b"")
    parts = [
        [line("01.000001", "a1"), line("03.000000", "a2"), line("02.000000", "a3"), b"{}\n",
         line("05.000000", "a4", pad=MERGE_BUFFER + 100), line("05.000000", "a5")],
        [line("01.000001", "b1"), b'{"timestamp":"2026-12-07T03:00:01\n', line("02.500000", "b2"),
         line("05.000000", "b3", pad=70_000), b'{"timestamp":"2026-12-07T03:00:09.0'],     # torn
        [],
        None,       # no file
        [b"\n", b'{"ti\n', line("04.000000", "e1"), line("04.000000", "e2")],
    ]
    for i, lines in enumerate(parts):
        if lines is not None:
            (tmp_path / f"eve.{i}.json").write_bytes(b"".join(lines))
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    env.pop("NETSENTRY_PURE", None)
    subprocess.run([sys.executable, "-c", MERGE_DRIVER, str(tmp_path), "compiled.json"], env=env, check=True)
    env["NETSENTRY_PURE"] = "1"
    subprocess.run([sys.executable, "-c", MERGE_DRIVER, str(tmp_path), "pure.json"], env=env, check=True)
    compiled = (tmp_path / "compiled.json").read_bytes()
    assert compiled == (tmp_path / "pure.json").read_bytes()
    got = compiled.splitlines(keepends=True)
    assert len(got) == 14 and not any(b"09.0" in x for x in got), "every whole line once, the torn ones dropped"
    who = [json.loads(x)["who"] for x in got if b'"who"' in x]
    assert who == ["a1", "b1", "b2", "a2", "a3", "e1", "e2", "a4", "a5", "b3"]
