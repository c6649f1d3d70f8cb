"""BPF capture filters: compiled by libpcap, read from -F files."""

from __future__ import annotations

from pathlib import Path

import pytest

from netsentry.capture.bpf import BpfError, compile_filter, read_filter_file

try:
    compile_filter("tcp")
except BpfError as exc:                                   # pragma: no cover - libpcap missing
    pytest.skip(str(exc), allow_module_level=True)


def test_compiles_to_classic_bpf() -> None:
    prog = compile_filter("udp port 53")
    insns = prog.instructions()
    assert len(prog) == len(insns) > 3
    assert insns[0] == (0x28, 0, 0, 12)                  # ldh [12]: the Ethernet type first
    assert insns[-1][0] == 0x06                           # ret
    assert compile_filter("ip", 101).instructions() != compile_filter("ip", 1).instructions()


def test_errors_name_the_filter() -> None:
    with pytest.raises(BpfError, match=r"bpf filter 'tcp prt 80': .*syntax error"):
        compile_filter("tcp prt 80")


def test_filter_file_comments_and_lines(tmp_path: Path) -> None:
    f = tmp_path / "f.bpf"
    f.write_text("# web only\ntcp port 80   # plain http\n  or tcp port 443\n")
    assert read_filter_file(str(f)) == "tcp port 80 or tcp port 443"
    compile_filter(read_filter_file(str(f)))
    with pytest.raises(BpfError, match="cannot read BPF filter file"):
        read_filter_file(str(tmp_path / "absent"))
    f.write_bytes(b"\xff\xfe")
    with pytest.raises(BpfError, match="not UTF-8"):
        read_filter_file(str(f))


def _eve(path: Path) -> list[dict]:
    import json
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_replay_F_keeps_only_what_the_filter_accepts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    from netsentry.cli import main
    frames = []
    for i in range(4):
        frames.append(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1000 + i, dport=53) / b"q")
        frames.append(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=2000 + i, dport=80, flags="S"))
    pcap = tmp_path / "mixed.pcap"
    wrpcap(str(pcap), frames)
    bpf = tmp_path / "udp.bpf"
    bpf.write_text("udp  # DNS only\n")
    assert main(["replay", str(pcap), "-q", "-l", str(tmp_path / "all")]) == 0
    assert main(["replay", str(pcap), "-q", "-l", str(tmp_path / "udp"), "-F", str(bpf)]) == 0
    full = [r for r in _eve(tmp_path / "all" / "eve.json") if r["event_type"] == "stats"][-1]["stats"]["decoder"]
    only = [r for r in _eve(tmp_path / "udp" / "eve.json") if r["event_type"] == "stats"][-1]["stats"]["decoder"]
    assert (full["pkts"], full["tcp"], full["udp"]) == (8, 4, 4)
    assert (only["pkts"], only["tcp"], only["udp"]) == (4, 0, 4)
    flows = [r for r in _eve(tmp_path / "udp" / "eve.json") if r["event_type"] == "flow"]
    assert {f["proto"] for f in flows} == {"UDP"}


def test_replay_bad_filter_is_exit_2_before_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    from netsentry.cli import main
    pcap = tmp_path / "one.pcap"
    wrpcap(str(pcap), [Ether() / IP() / UDP()])
    bpf = tmp_path / "bad.bpf"
    bpf.write_text("udp prt 53\n")
    assert main(["replay", str(pcap), "-q", "-l", str(tmp_path / "out"), "-F", str(bpf)]) == 2
    assert "bpf filter 'udp prt 53'" in capsys.readouterr().err
    assert not (tmp_path / "out" / "eve.json").exists()
