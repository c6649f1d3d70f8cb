"""`arp` and `ether` rule protocols and the `ether.hdr` buffer (Suricata 9), and the ARP
decoder (decode/arp.py): which frames each rule meets, and the decoder's events."""

from __future__ import annotations

from detect_helpers import Detect
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Dot1Q, Ether

from netsentry.decode.decoder import Decoder

ARP_REQ = bytes(Ether(src="00:11:22:33:44:55", dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="10.0.0.1", pdst="10.0.0.2"))
ARP_VLAN = bytes(Ether() / Dot1Q(vlan=7) / ARP(op=2, psrc="10.0.0.2", pdst="10.0.0.1"))
UDP_PKT = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / b"x")

RULES = (
    'alert arp any any -> any any (sid:1;)\n'
    'alert ether any any -> any any (ether.hdr; content:"|08 06|"; offset:12; depth:2; sid:2;)\n'
    'alert ether any any -> any any (ether.hdr; content:"|08 00|"; offset:12; depth:2; sid:3;)\n'
    'alert ether any any -> any any (sid:4;)\n'
    'alert ip any any -> any any (sid:5;)\n'
    'alert ether any any -> any any (ether.hdr; content:"|ff ff ff ff ff ff|"; depth:6; bsize:14; sid:6;)\n'
)


def test_arp_rules_meet_arp_frames_only_and_ether_rules_every_ethernet_frame(detect: Detect) -> None:
    run = detect.run(RULES, [ARP_REQ, ARP_VLAN, UDP_PKT])
    assert sorted(run.sids_at(1)) == [1, 2, 4, 6]
    assert sorted(run.sids_at(2)) == [1, 4], "ARP behind a VLAN tag: ether.hdr's type field is the tag's"
    assert sorted(run.sids_at(3)) == [3, 4, 5], "an arp rule never meets an IP packet"


def test_a_bad_arp_frame_is_an_event_not_an_arp_packet(detect: Detect) -> None:
    bad_opcode = bytes(Ether() / ARP(op=9))
    short = bytes(Ether(type=0x0806) / b"\x00\x01\x08\x00")
    dec = Decoder()
    for frame, event in ((bad_opcode, "arp.unsupported_opcode"), (short, "arp.pkt_too_small")):
        pkt = dec.decode(frame, 1)
        assert event in (pkt.events or ())
    run = detect.run(RULES, [bad_opcode, short])
    assert 1 not in run.sids_at(1) + run.sids_at(2)
    assert 4 in run.sids_at(1), "still an Ethernet frame"


def test_arp_frames_are_counted():
    dec = Decoder()
    dec.decode(ARP_REQ, 1)
    dec.decode(ARP_VLAN, 1)
    assert dec.stats()["decoder.arp"] == 2
