"""Suricata's command-line spellings a replay accepts: --runmode, a suricata.yaml, threshold-file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

BIN = Path(sys.executable).with_name("netsentry")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "netsentry.cli"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=120)


def _setup(tmp_path: Path) -> tuple[Path, Path]:
    pcap = tmp_path / "in.pcap"
    pkts = [Ether() / IP(src=f"10.0.0.{i}", dst="10.0.1.1") / UDP(sport=1000, dport=53) / b"hello"
            for i in (1, 2, 3)]
    for n, p in enumerate(pkts):
        p.time = 1_700_000_000 + n
    wrpcap(str(pcap), pkts)
    rules = tmp_path / "r.rules"
    rules.write_text('alert udp any any -> any any (content:"hello"; sid:1;)\n')
    return pcap, rules


def _alert_sources(logdir: Path) -> list[str]:
    recs = [orjson.loads(x) for x in (logdir / "eve.json").read_bytes().splitlines()]
    return [r["src_ip"] for r in recs if r["event_type"] == "alert"]


def test_runmode_single_both_spellings(tmp_path: Path) -> None:
    pcap, rules = _setup(tmp_path)
    for i, flag in enumerate((["--runmode", "single"], ["--runmode=single"])):
        out = tmp_path / f"o{i}"
        out.mkdir()
        proc = run("replay", str(pcap), "-S", str(rules), "-l", str(out), "-q", *flag)
        assert proc.returncode == 0, proc.stderr
        assert len(_alert_sources(out)) == 3


def test_suricata_yaml_threshold_file_and_vars(tmp_path: Path) -> None:
    pcap, rules = _setup(tmp_path)
    (tmp_path / "threshold.config").write_text("suppress gen_id 1, sig_id 1, track by_src, ip $SCANNERS\n")
    (tmp_path / "suricata.yaml").write_text(
        "%YAML 1.1\n---\nvars:\n  address-groups:\n    SCANNERS: \"[10.0.0.1,10.0.0.3]\"\n"
        "outputs:\n  - eve-log:\n      enabled: yes\n      types:\n        - alert\n"
        "threshold-file: threshold.config\nthreading:\n  set-cpu-affinity: no\n")
    out = tmp_path / "o"
    out.mkdir()
    proc = run("replay", str(pcap), "-S", str(rules), "-l", str(out), "-q",
               "--suricata-config", str(tmp_path / "suricata.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert _alert_sources(out) == ["10.0.0.2"]
    assert "threading" in proc.stderr          # the note names what was ignored


def test_set_threshold_file_missing_is_one_line(tmp_path: Path) -> None:
    pcap, rules = _setup(tmp_path)
    proc = run("replay", str(pcap), "-S", str(rules), "-l", str(tmp_path), "-q",
               "--set", f"threshold-file={tmp_path}/none.config")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "threshold-file" in proc.stderr and "none.config" in proc.stderr
