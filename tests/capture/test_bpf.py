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
