"""EVE `ipv6-compress` (Suricata 8): IPv6 addresses in RFC 5952 form instead of expanded."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from scapy.layers.inet import TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from netsentry.output import fields
from netsentry.output.fields import ipv6_compressed

BIN = Path(sys.executable).with_name("netsentry")


def packed(text: str) -> bytes:
    return ipaddress.IPv6Address(text).packed


@pytest.mark.parametrize("text, want", [
    ("fe80:0000:0000:0000:020c:29ff:fef3:cf38", "fe80::20c:29ff:fef3:cf38"),
    ("0000:0000:0000:0000:0000:0000:0000:0000", "::"),
    ("0000:0000:0000:0000:0000:0000:0000:0001", "::1"),
    ("2001:0db8:0000:0000:0001:0000:0000:0001", "2001:db8::1:0:0:1"),     # first of equal runs
    ("2001:0db8:0000:0001:0000:0000:0000:0001", "2001:db8:0:1::1"),       # the longest run
    ("2001:0db8:0000:0001:0001:0001:0001:0001", "2001:db8:0:1:1:1:1:1"),  # one zero group stays
    ("2001:0db8:0001:0001:0001:0001:0001:0000", "2001:db8:1:1:1:1:1:0"),
    ("0000:0000:0000:0000:0000:ffff:0102:0304", "::ffff:1.2.3.4"),        # IPv4-mapped
    ("ABCD:0000:0000:0000:0000:0000:0000:0000", "abcd::"),
])
def test_rfc5952_forms(text: str, want: str) -> None:
    assert ipv6_compressed(packed(text)) == want
    # the same text Python's own RFC 5952 printer gives, except the mapped form
    if not want.startswith("::ffff:"):
        assert want == str(ipaddress.IPv6Address(text))


def test_switch_empties_the_address_cache() -> None:
    addr = packed("fe80::1")
    try:
        fields.set_ipv6_compress(False)
        assert fields._format_ip_cached(addr) == "fe80:0000:0000:0000:0000:0000:0000:0001"
        fields.set_ipv6_compress(True)
        assert fields._format_ip_cached(addr) == "fe80::1"
        assert fields._format_ip_cached(bytes([10, 0, 0, 1])) == "10.0.0.1"
    finally:
        fields.set_ipv6_compress(False)


def _replay(tmp_path: Path, *sets: str) -> tuple[int, str, list[dict]]:
    pcap = tmp_path / "v6.pcap"
    c, s = "fe80::20c:29ff:fef3:cf38", "2001:db8::80"
    frames = [Ether() / IPv6(src=c, dst=s) / TCP(sport=40000, dport=80, flags="S", seq=1),
              Ether() / IPv6(src=s, dst=c) / TCP(sport=80, dport=40000, flags="SA", seq=9, ack=2),
              Ether() / IPv6(src=c, dst=s) / TCP(sport=40000, dport=80, flags="A", seq=2, ack=10)]
    for i, f in enumerate(frames):
        f.time = 1_700_000_000 + i
    wrpcap(str(pcap), frames)
    rules = tmp_path / "r.rules"
    rules.write_text('alert tcp any any -> any 80 (msg:"syn"; flags:S; sid:1;)\n')
    cmd = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "netsentry"]
    args = ["replay", "-q", str(pcap), "-S", str(rules), "-l", str(tmp_path / "out"), "-k", "none"]
    for item in sets:
        args += ["--set", item]
    proc = subprocess.run(cmd + args, capture_output=True, text=True, timeout=120)
    recs = []
    if proc.returncode == 0:
        recs = [orjson.loads(line) for line in (tmp_path / "out" / "eve.json").read_bytes().splitlines()]
    return proc.returncode, proc.stderr, recs


def test_replay_writes_compressed_addresses_in_alerts_and_flows(tmp_path: Path) -> None:
    rc, err, recs = _replay(tmp_path, "outputs.eve-log.ipv6-compress=true")
    assert rc == 0, err
    alert = next(r for r in recs if r["event_type"] == "alert")
    flow = next(r for r in recs if r["event_type"] == "flow")
    for rec in (alert, flow):
        assert (rec["src_ip"], rec["dest_ip"]) == ("fe80::20c:29ff:fef3:cf38", "2001:db8::80")
    assert alert["flow"]["src_ip"] == "fe80::20c:29ff:fef3:cf38"


def test_default_stays_expanded(tmp_path: Path) -> None:
    rc, err, recs = _replay(tmp_path)
    assert rc == 0, err
    alert = next(r for r in recs if r["event_type"] == "alert")
    assert alert["src_ip"] == "fe80:0000:0000:0000:020c:29ff:fef3:cf38"


def test_bad_value_names_the_key(tmp_path: Path) -> None:
    rc, err, _ = _replay(tmp_path, "outputs.eve-log.ipv6-compress=sometimes")
    assert rc != 0
    assert "outputs.eve-log.ipv6-compress" in err
