"""An alert on a reassembled IP datagram logs `packet` as Suricata does since its bug 6887:
the capture's link header (from the fragment that completed it) in front of the whole
datagram, and `packet_info.linktype` of the capture, not a raw-IP stand-in."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, fragment6
from scapy.layers.l2 import Dot1Q, Ether

from netsentry.config import load_config
from netsentry.output import OutputContext, open_outputs
from netsentry.rules import load_rules
from netsentry.sensor import Sensor

ETH = Ether(src="00:01:02:03:04:05", dst="05:04:03:02:01:00")


def _alert(tmp_path: Path, frames: list[bytes], linktype: int) -> dict:
    rf = tmp_path / "t.rules"
    rf.write_text("alert tcp any any -> any any (tcp.flags:S; sid:1;)\n")
    cfg = load_config(None, [])
    (out,) = open_outputs({"eve-log": {"enabled": True, "types": ["alert"], "alert": {"packet": True}}},
                          OutputContext(logdir=tmp_path))
    sensor = Sensor(cfg, [out], load_rules([str(rf)], cfg))
    sensor.run([(1.0 + i, f, len(f), linktype) for i, f in enumerate(frames)])
    sensor.finish()
    out.close()
    alerts = [r for r in map(json.loads, (tmp_path / "eve.json").read_text().splitlines())
              if r["event_type"] == "alert"]
    assert len(alerts) == 1
    return alerts[0]


def _v4() -> tuple[bytes, list]:
    dgram = IP(src="1.1.1.1", dst="2.2.2.2", id=1) / TCP(sport=12345, dport=8080, flags="S") / (b"A" * 40)
    return bytes(dgram), fragment(dgram, fragsize=16)


@pytest.mark.parametrize("link,linktype", [(lambda: ETH / Dot1Q(vlan=6), 1), (lambda: None, 228)])
def test_reassembled_ipv4_keeps_the_capture_link_header(tmp_path: Path, link, linktype: int) -> None:
    whole, frags = _v4()
    head = link()
    frames = [bytes(head / f) if head is not None else bytes(f) for f in frags]
    rec = _alert(tmp_path, frames, linktype)
    prefix = frames[-1][:len(frames[-1]) - len(bytes(frags[-1]))]    # the capture's link header
    assert base64.b64decode(rec["packet"]) == prefix + whole
    assert rec["packet_info"]["linktype"] == linktype


def test_reassembled_ipv6_behind_ethernet(tmp_path: Path) -> None:
    dgram = IPv6(src="::1", dst="::2") / IPv6ExtHdrFragment(id=7) / TCP(sport=1, dport=2, flags="S") / (b"B" * 1500)
    frags = fragment6(dgram, 600)
    rec = _alert(tmp_path, [bytes(ETH / f) for f in frags], 1)
    data = base64.b64decode(rec["packet"])
    assert data[:14] == bytes(ETH / frags[-1])[:14]
    assert data[14] >> 4 == 6 and len(data) == 14 + 40 + 20 + 1500    # one datagram, no fragment header
    assert rec["packet_info"] == {"linktype": 1, "linktype_name": "EN10MB"}


def test_tunnelled_packet_logs_the_tunnel_packet_as_raw(tmp_path: Path) -> None:
    """A packet a tunnel carried is logged as Suricata logs its tunnel packet: the bytes from
    the tunnel's payload on, link type RAW (12); for fragments a tunnel carried, the tunnel
    payload's own header (PPP in GRE) in front of the reassembled datagram."""
    from scapy.layers.inet import GRE
    from scapy.layers.ppp import PPP
    outer = ETH / IP(src="7.7.7.7", dst="9.9.9.9")
    syn = IP(src="1.1.1.1", dst="2.2.2.2") / TCP(sport=12345, dport=8080, flags="S")
    rec = _alert(tmp_path, [bytes(outer / GRE(proto=0x0800) / syn)], 1)
    assert base64.b64decode(rec["packet"]) == bytes(syn)
    assert rec["packet_info"] == {"linktype": 12, "linktype_name": "RAW"}
    assert rec["pkt_src"] == "gre tunnel" and rec["tunnel"]["proto"] == "GRE"
    whole, frags = _v4()
    frames = [bytes(outer / GRE(proto=0x880B) / PPP(proto=0x0021) / f) for f in frags]
    (tmp_path / "eve.json").unlink()
    rec = _alert(tmp_path, frames, 1)
    assert base64.b64decode(rec["packet"]) == b"\x00\x21" + whole
    assert rec["packet_info"]["linktype"] == 12


def test_vxlan_alert_names_its_outer_udp_ports(tmp_path: Path) -> None:
    from scapy.layers.inet import UDP
    from scapy.layers.vxlan import VXLAN
    inner = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="1.1.1.1", dst="2.2.2.2") \
        / TCP(sport=12345, dport=8080, flags="S")
    frame = bytes(ETH / IP(src="7.7.7.7", dst="9.9.9.9") / UDP(sport=40000, dport=4789) / VXLAN(vni=5, flags=0x08) / inner)
    rec = _alert(tmp_path, [frame], 1)
    assert rec["pkt_src"] == "vxlan encapsulation" and rec["src_ip"] == "1.1.1.1"
    assert {k: rec["tunnel"][k] for k in ("src_ip", "src_port", "dest_ip", "dest_port", "proto")} == {
        "src_ip": "7.7.7.7", "src_port": 40000, "dest_ip": "9.9.9.9", "dest_port": 4789, "proto": "UDP"}
    assert base64.b64decode(rec["packet"]) == bytes(inner)
