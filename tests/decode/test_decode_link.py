"""Link layers: every supported pcap link type reaches the same IP fields scapy put there."""

from __future__ import annotations

import pytest
from decode_frames import DST4, DST6, ETHER, SRC4, SRC6, decode, sample_frames
from scapy.all import IP, UDP, CookedLinux, Dot1Q, IPv6, raw  # type: ignore[import-untyped]

from netsentry.decode import Decoder


@pytest.mark.parametrize("name,frame,linktype", sample_frames(), ids=[n for n, _, _ in sample_frames()])
def test_every_path_decodes_addresses(name: str, frame: bytes, linktype: int) -> None:
    pkt = decode(frame, linktype)
    assert pkt.ip_version in (4, 6)
    if name.startswith("gre"):
        assert pkt.tunnel[:3] == (bytes([1, 1, 1, 1]), bytes([2, 2, 2, 2]), 47)
    expected = (SRC4, DST4) if pkt.ip_version == 4 else (SRC6, DST6)
    if name == "eth-ipv4-icmp-unreach":
        expected = (DST4, SRC4)
    assert (pkt.src_ip, pkt.dst_ip) == expected
    assert pkt.linktype == linktype
    assert not pkt.events or name == "eth-ipv6-exthdrs"


def test_vlan_ids_outermost_first_and_counted() -> None:
    d = Decoder()
    qinq = next(f for n, f, _ in sample_frames() if n == "qinq")
    pkt = d.decode(qinq, 1)
    assert pkt.vlan == (10, 20)
    assert pkt.proto == 6
    s = d.stats()
    assert s["decoder.vlan"] == 2 and s["decoder.vlan_qinq"] == 1 and s["decoder.ethernet"] == 1


def test_vlan_too_many_layers() -> None:
    frame = raw(ETHER / Dot1Q(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / Dot1Q(vlan=4) / IP() / UDP())
    pkt = decode(frame)
    assert pkt.vlan == (1, 2, 3)
    assert pkt.events == ["vlan.too_many_layers"]
    assert pkt.ip_version == 0


@pytest.mark.parametrize("frame,linktype,event", [
    (b"\x00" * 13, 1, "ethernet.pkt_too_small"),
    (raw(ETHER / Dot1Q(vlan=5))[:16], 1, "vlan.header_too_small"),
    (b"\x00" * 15, 113, "sll.pkt_too_small"),
    (b"\x00" * 19, 276, "sll.pkt_too_small"),
    (b"\x02\x00", 0, "ltnull.pkt_too_small"),
    (b"\x07\x00\x00\x00" + raw(IP() / UDP()), 0, "ltnull.unsupported_type"),
    (b"\x55" + b"\x00" * 30, 101, "ipraw.invalid_ip_version"),
    (b"\x0f\x00\x08", 104, "chdlc.pkt_too_small"),
])
def test_link_events(frame: bytes, linktype: int, event: str) -> None:
    d = Decoder()
    pkt = d.decode(frame, linktype)
    assert pkt.events == [event]
    assert d.stats()["decoder.event." + event] == 1
    assert d.stats()["decoder.invalid"] == 1


def test_null_accepts_both_byte_orders() -> None:
    ip = raw(IP(src=SRC4, dst=DST4) / UDP(sport=1, dport=2))
    little = decode(b"\x02\x00\x00\x00" + ip, 0)
    big = decode(b"\x00\x00\x00\x02" + ip, 0)
    assert little.src_ip == big.src_ip == SRC4


def test_cooked_offsets() -> None:
    pkt = decode(raw(CookedLinux(proto=0x0800) / IP(src=SRC4, dst=DST4) / UDP(sport=9, dport=10) / b"abc"), 113)
    assert pkt.ip_off == 16 and pkt.l4_off == 36
    assert pkt.payload == b"abc"


def test_unknown_linktype_is_counted_not_raised() -> None:
    d = Decoder()
    pkt = d.decode(b"\x45" * 40, 9999)
    assert pkt.ip_version == 0
    assert d.stats()["decoder.pkts"] == 1


def test_chdlc_counted_and_ipv6_inside() -> None:
    d = Decoder()
    pkt = d.decode(b"\x8f\x00\x86\xdd" + raw(IPv6(src=SRC6, dst=DST6) / UDP(sport=5, dport=6) / b"z"), 104)
    assert (pkt.src_ip, pkt.dst_ip, pkt.dp, pkt.payload) == (SRC6, DST6, 6, b"z")
    assert d.stats()["decoder.chdlc"] == 1


# --- PPP (LINKTYPE_PPP 9): HDLC-like framing, address/control optional --------------------

PPP_IP4 = raw(IP(src=SRC4, dst=DST4) / UDP(sport=1, dport=2) / b"p")
PPP_IP6 = raw(IPv6(src=SRC6, dst=DST6) / UDP(sport=1, dport=2) / b"p")


@pytest.mark.parametrize("header,inner,version", [
    (b"\xff\x03\x00\x21", PPP_IP4, 4),      # address, control, protocol IPv4
    (b"\x00\x21", PPP_IP4, 4),              # address-and-control-field compression
    (b"\xff\x03\x21", PPP_IP4, 4),          # protocol-field compression
    (b"\x21", PPP_IP4, 4),                  # both
    (b"\xff\x03\x00\x57", PPP_IP6, 6),
    (b"\x57", PPP_IP6, 6),
], ids=["full-v4", "acfc-v4", "pfc-v4", "both-v4", "full-v6", "both-v6"])
def test_ppp_framings_reach_ip(header: bytes, inner: bytes, version: int) -> None:
    d = Decoder()
    pkt = d.decode(header + inner, 9)
    assert pkt.ip_version == version and pkt.linktype == 9
    assert (pkt.src_ip, pkt.dst_ip) == ((SRC4, DST4) if version == 4 else (SRC6, DST6))
    assert (pkt.dp, pkt.payload) == (2, b"p")
    assert pkt.ip_off == len(header)
    assert not pkt.events
    assert d.stats()["decoder.ppp"] == 1


@pytest.mark.parametrize("frame,event,invalid", [
    (b"\xff", "ppp.pkt_too_small", True),
    (b"\xff\x03", "ppp.pkt_too_small", True),
    (b"\xff\x03\x00", "ppp.pkt_too_small", True),
    (b"\x00\x21" + PPP_IP4[:12], "ppp.ip4_pkt_too_small", True),
    (b"\xff\x03\x00\x2b" + b"\x00" * 20, "ppp.unsup_proto", False),      # IPX
    (b"\xff\x03\x12\x34" + b"\x00" * 20, "ppp.wrong_type", True),
])
def test_ppp_events(frame: bytes, event: str, invalid: bool) -> None:
    d = Decoder()
    pkt = d.decode(frame, 9)
    assert pkt.events == [event] and pkt.ip_version == 0
    assert d.stats()["decoder.invalid"] == int(invalid)


def test_ppp_control_protocols_pass_without_events() -> None:
    d = Decoder()
    pkt = d.decode(b"\xff\x03\xc0\x21\x01\x01\x00\x04", 9)        # LCP configure-request
    assert not pkt.events and pkt.ip_version == 0
    assert d.stats()["decoder.ppp"] == 1 and d.stats()["decoder.invalid"] == 0


def test_ppp_capture_replays_with_alerts_and_flows(tmp_path) -> None:
    """A linktype-9 capture as scapy's PcapWriter writes it (HDLC()/PPP() framing)
    goes through the whole sensor: it used to be refused as an unsupported link type."""
    import subprocess
    import sys

    import orjson
    from scapy.layers.ppp import HDLC, PPP  # type: ignore[import-untyped]
    from scapy.utils import PcapWriter  # type: ignore[import-untyped]

    pcap = tmp_path / "ppp.pcap"
    writer = PcapWriter(str(pcap), linktype=9)
    for i, (hdr, inner) in enumerate([(HDLC() / PPP(proto=0x0021), IP(src=SRC4, dst=DST4)),
                                      (PPP(proto=0x0021), IP(src=DST4, dst=SRC4)),
                                      (HDLC() / PPP(proto=0x0057), IPv6(src=SRC6, dst=DST6))]):
        frame = hdr / inner / UDP(sport=4000 + i, dport=53) / b"ppp-marker"
        frame.time = 1_700_000_000 + i
        writer.write(frame)
    writer.close()
    rules = tmp_path / "ppp.rules"
    rules.write_text('alert udp any any -> any 53 (msg:"ppp marker"; content:"ppp-marker"; sid:9000009; rev:1;)\n')
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "netsentry", "replay", str(pcap), "-S", str(rules), "-l", str(out),
                           "-q"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    records = [orjson.loads(line) for line in (out / "eve.json").read_bytes().splitlines()]
    alerts = [r for r in records if r["event_type"] == "alert"]
    assert [(a["src_ip"], a["src_port"]) for a in alerts] == [
        (SRC4, 4000), (DST4, 4001), ("2001:0db8:0000:0000:0000:0000:0000:0001", 4002)]
    (stats,) = [r["stats"] for r in records if r["event_type"] == "stats"]
    assert stats["decoder"]["ppp"] == 3 and stats["decoder"]["invalid"] == 0
