"""A tunnel's outer packets are inspected too (detect/tunnel.py): GRE, IP-in-IP, VXLAN.

Suricata runs its root packet (and every tunnel layer) through flow handling and
detection before the inner packet, so `ip_proto:47` and header rules on the
carrier match, with EVE's proto naming the carrier (GRE, IP-in-IP, UDP)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
from scapy.layers.inet import GRE, ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.utils import wrpcap

BIN = Path(sys.executable).with_name("netsentry")


def replay(tmp_path: Path, frames: list, rules: str, *extra: str) -> list[dict]:
    for i, f in enumerate(frames):
        f.time = 1_700_000_000 + i * 0.1
    pcap = tmp_path / "t.pcap"
    wrpcap(str(pcap), frames)
    (tmp_path / "t.rules").write_text(rules)
    cmd = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "netsentry"]
    proc = subprocess.run(cmd + ["replay", "-q", str(pcap), "-S", str(tmp_path / "t.rules"),
                                 "-l", str(tmp_path / "out"), "-k", "none", *extra],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [orjson.loads(line) for line in (tmp_path / "out" / "eve.json").read_bytes().splitlines()]


def alerts(recs: list[dict], sid: int) -> list[dict]:
    return [r for r in recs if r["event_type"] == "alert" and r["alert"]["signature_id"] == sid]


def gre_frames() -> list:
    out = []
    for i in range(3):
        out.append(Ether() / IP(src="192.0.2.1", dst="192.0.2.2") / GRE()
                   / IP(src="10.2.0.1", dst="10.2.0.2") / TCP(sport=40000, dport=1234, flags="S" if i == 0 else "A",
                                                            seq=100 + i))
    return out


def test_gre_packets_alert_as_gre_without_a_flow(tmp_path: Path) -> None:
    recs = replay(tmp_path, gre_frames(),
                  "alert ip any any -> any any (msg:\"gre\"; ip_proto:47; sid:1;)\n"
                  "alert ip any any -> any any (msg:\"all ip\"; sid:2;)\n"
                  "alert tcp any any -> any 1234 (msg:\"inner\"; flags:S; sid:3;)\n")
    gre = alerts(recs, 1)
    # no flow for a GRE packet (Suricata's DecodeGRE sets none up): every packet matches
    assert len(gre) == 3
    for rec in gre:
        assert (rec["proto"], rec["src_ip"], rec["dest_ip"], rec["pkt_src"]) == \
            ("GRE", "192.0.2.1", "192.0.2.2", "wire/pcap")
        assert "flow_id" not in rec
    # the ip-only rule: every GRE packet, and once per direction of the inner TCP flow
    assert sorted(r["proto"] for r in alerts(recs, 2)) == ["GRE", "GRE", "GRE", "TCP"]
    inner = alerts(recs, 3)
    assert len(inner) == 1 and inner[0]["tunnel"]["src_ip"] == "192.0.2.1"
    assert inner[0]["pkt_src"] == "gre tunnel"
    assert sorted(r["proto"] for r in recs if r["event_type"] == "flow") == ["TCP"]


def test_ip_in_ip_outer_packet_has_a_flow_of_its_own(tmp_path: Path) -> None:
    frames = []
    for i in range(2):
        frames.append(Ether() / IP(src="10.0.0.94", dst="10.1.0.237") / IP(src="192.168.0.94", dst="192.168.0.237")
                      / ICMP(type=8, seq=i))
        frames.append(Ether() / IP(src="10.1.0.237", dst="10.0.0.94") / IP(src="192.168.0.237", dst="192.168.0.94")
                      / ICMP(type=0, seq=i))
    recs = replay(tmp_path, frames,
                  "alert ip any any -> 10.0.0.0/8 any (msg:\"outer\"; sid:1;)\n"
                  "alert icmp any any -> 192.168.0.0/16 any (msg:\"inner\"; itype:8; sid:2;)\n")
    outer = alerts(recs, 1)
    # an ip-only rule on a flow: once per direction of the outer IP-in-IP flow
    assert sorted((r["src_ip"], r["proto"], r["pkt_src"]) for r in outer) == [
        ("10.0.0.94", "IP-in-IP", "wire/pcap"), ("10.1.0.237", "IP-in-IP", "wire/pcap")]
    assert outer[0]["flow_id"] == outer[1]["flow_id"]
    inner = alerts(recs, 2)
    assert len(inner) == 2 and all(r["tunnel"]["proto"] == "IP-in-IP" for r in inner)
    flows = {r["proto"]: r for r in recs if r["event_type"] == "flow"}
    assert set(flows) == {"IP-in-IP", "ICMP"}
    assert flows["IP-in-IP"]["flow"]["pkts_toserver"] == 2 and flows["IP-in-IP"]["flow"]["alerted"] is True


def test_vxlan_carrier_is_inspected_as_udp(tmp_path: Path) -> None:
    frames = [Ether() / IP(src="172.16.0.1", dst="172.16.0.2") / UDP(sport=50000, dport=4789) / VXLAN(flags=0x08, vni=7)
              / Ether() / IP(src="10.9.0.1", dst="10.9.0.2") / ICMP(type=8, seq=i) for i in range(2)]
    recs = replay(tmp_path, frames,
                  "alert udp any any -> any 4789 (msg:\"vxlan carrier\"; content:\"|08 00 00 00 00 00 07 00|\";"
                  " depth:8; sid:1;)\n"
                  "alert icmp any any -> any any (msg:\"inner\"; sid:2;)\n")
    carrier = alerts(recs, 1)
    # a content rule reads the carrier's own UDP payload (VXLAN header first)
    assert len(carrier) == 2
    assert all((r["proto"], r["src_port"], r["dest_port"]) == ("UDP", 50000, 4789) for r in carrier)
    inner = alerts(recs, 2)
    assert inner and all(r["tunnel"]["dest_port"] == 4789 for r in inner)
    assert sorted(r["proto"] for r in recs if r["event_type"] == "flow") == ["ICMP", "UDP"]


def test_ips_drop_of_the_carrier_drops_the_frame(tmp_path: Path) -> None:
    recs = replay(tmp_path, gre_frames(),
                  "drop ip any any -> any any (msg:\"no gre\"; ip_proto:47; sid:1;)\n", "--simulate-ips")
    assert len(alerts(recs, 1)) == 3
    assert all(r["alert"]["action"] == "blocked" for r in alerts(recs, 1))
    # the inner packets share their frame's verdict
    drops = [r for r in recs if r["event_type"] == "drop"]
    assert drops and all(r["alert"]["signature_id"] == 1 for r in drops)


def test_nested_tunnels_each_layer_and_the_root_in_the_tunnel_object(tmp_path: Path) -> None:
    frames = [Ether() / IP(src="192.0.2.1", dst="192.0.2.2") / GRE() / IP(src="198.51.100.1", dst="198.51.100.2")
              / GRE() / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=8, seq=i) for i in range(2)]
    recs = replay(tmp_path, frames,
                  "alert ip any any -> any any (msg:\"gre\"; ip_proto:47; sid:1;)\n"
                  "alert icmp any any -> any any (msg:\"inner\"; itype:8; sid:2;)\n")
    gre = alerts(recs, 1)
    # both GRE layers of both frames; the second layer came out of the first tunnel
    assert sorted((r["src_ip"], r["pkt_src"]) for r in gre) == [
        ("192.0.2.1", "wire/pcap")] * 2 + [("198.51.100.1", "gre tunnel")] * 2
    inner = alerts(recs, 2)
    assert len(inner) == 2
    # Suricata's AlertJsonTunnel: the root packet's addresses and the nesting depth
    assert all((r["tunnel"]["src_ip"], r["tunnel"]["depth"], r["tunnel"]["proto"]) == ("192.0.2.1", 2, "GRE")
               for r in inner)
