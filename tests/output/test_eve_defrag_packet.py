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
