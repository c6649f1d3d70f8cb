"""The UDP protocols of round 12: NTP (applayer/ntp.py), TFTP (tftp.py), SNMP (snmp.py),
DHCP (dhcp.py): their keywords on their own side only, their records, hostile datagrams
(an event and an app-layer error, never a crash), detection on their ports only."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from applayer_helpers import alerts, replay, udp_exchange

from netsentry.applayer import dhcp, ntp, snmp
from netsentry.applayer.registry import ParserError


def ntp_packet(version: int, mode: int, stratum: int, ref: bytes) -> bytes:
    return bytes([(version << 3) | mode, stratum, 6, 0xEC]) + b"\x00" * 8 + ref + b"\x00" * 32


NTP_RULES = "\n".join((
    "alert ntp any any -> any any (ntp.version:4; ntp.mode:client; sid:1;)",
    "alert ntp any any -> any any (flow:to_client; ntp.stratum:2; sid:2;)",
    'alert ntp any any -> any any (ntp.reference_id; content:"LOCL"; sid:3;)',
    "alert ntp any any -> any any (ntp.mode:!server; sid:4;)",
    "alert ntp any any -> any any (app-layer-event:ntp.malformed_data; sid:5;)",
)) + "\n"


def test_ntp(tmp_path: Path):
    pcap = udp_exchange(tmp_path / "n.pcap", [(True, ntp_packet(4, 3, 0, b"\0\0\0\0")),
                                              (False, ntp_packet(4, 4, 2, b"LOCL")),
                                              (True, b"\x23\x00")], dport=123)
    recs = replay(tmp_path, pcap, NTP_RULES, "outputs.eve-log.types=[alert, ntp]")
    assert {sid: len(alerts(recs, sid)) for sid in range(1, 6)} == {1: 1, 2: 1, 3: 1, 4: 1, 5: 1}
    assert [r["ntp"] for r in recs if r["event_type"] == "ntp"] == [
        {"version": 4, "mode": 3, "stratum": 0, "reference_id": "00:00:00:00"},
        {"version": 4, "mode": 4, "stratum": 2, "reference_id": "4c:4f:43:4c"}]
    assert ntp.probe(ntp_packet(2, 3, 0, b"\0" * 4), True) is False
    off = udp_exchange(tmp_path / "o.pcap", [(True, ntp_packet(4, 3, 0, b"\0\0\0\0"))], dport=124)
    assert not alerts(replay(tmp_path, off, NTP_RULES))


def test_tftp(tmp_path: Path):
    rrq = b"\x00\x01rfc1350.txt\x00OCTET\x00"
    pcap = udp_exchange(tmp_path / "t.pcap", [(True, rrq)], dport=69)
    recs = replay(tmp_path, pcap, 'alert tftp any any -> any any (content:"rfc1350"; sid:1;)\n',
                  "outputs.eve-log.types=[alert, tftp]")
    assert [r["tftp"] for r in recs if r["event_type"] == "tftp"] == [
        {"packet": "read", "file": "rfc1350.txt", "mode": "octet"}]
    assert alerts(recs, 1)[0]["tftp"]["packet"] == "read"


def tlv(tag: int, value: bytes) -> bytes:
    n = len(value)
    return bytes([tag]) + (bytes([n]) if n < 128 else bytes([0x82]) + struct.pack(">H", n)) + value


def snmp_v2c(community: bytes, pdu_tag: int, oid: bytes = b"\x2b\x06\x01\x02\x01\x01\x01\x00") -> bytes:
    varbind = tlv(0x30, tlv(0x06, oid) + b"\x05\x00")
    pdu = tlv(pdu_tag, tlv(0x02, b"\x01") + tlv(0x02, b"\x00") + tlv(0x02, b"\x00") + tlv(0x30, varbind))
    return tlv(0x30, tlv(0x02, b"\x01") + tlv(0x04, community) + pdu)


SNMP_RULES = "\n".join((
    'alert snmp any any -> any any (snmp.community; content:"public"; sid:1;)',
    "alert snmp any any -> any any (snmp.pdu_type:get_request; snmp.version:2; sid:2;)",
    "alert snmp any any -> any any (snmp.pdu_type:response; flow:to_client; sid:3;)",
    "alert snmp any any -> any any (app-layer-event:snmp.malformed_data; sid:4;)",
)) + "\n"


def test_snmp(tmp_path: Path):
    pcap = udp_exchange(tmp_path / "s.pcap", [(True, snmp_v2c(b"public", 0xA0)), (False, snmp_v2c(b"public", 0xA2)),
                                              (True, snmp_v2c(b"public", 0xA0)[:-3])], dport=161)
    recs = replay(tmp_path, pcap, SNMP_RULES, "outputs.eve-log.types=[alert, snmp]")
    # the community is in both messages: each alerts once, on its own side
    assert {sid: len(alerts(recs, sid)) for sid in range(1, 5)} == {1: 2, 2: 1, 3: 1, 4: 1}
    first = [r["snmp"] for r in recs if r["event_type"] == "snmp"][0]
    assert first == {"version": 2, "pdu_type": "get_request", "vars": ["1.3.6.1.2.1.1.1.0"], "community": "public"}


def test_snmp_v1_trap_and_hostile_input():
    trap = tlv(0xA4, tlv(0x06, b"\x2b\x06\x01\x04\x01\x04\x01\x02\x15") + tlv(0x40, b"\x7f\x00\x00\x01")
               + tlv(0x02, b"\x03") + tlv(0x02, b"\x00") + tlv(0x43, b"\x06") + tlv(0x30, b""))
    p = snmp.SnmpParser()
    p.parse(tlv(0x30, tlv(0x02, b"\x00") + tlv(0x04, b"public") + trap), True)
    assert p.txs[0].eve()["trap_type"] == "LinkUp" and p.txs[0].eve()["trap_address"] == "127.0.0.1"
    assert p.txs[0].eve()["trap_oid"] == "1.3.6.1.4.1.4.1.2.21"
    for junk in (b"\x30\x84\xff\xff\xff\xff", b"\x30\x80\x00\x00", b"\x30", b"\x30\x03\x02\x01\x05"):
        with pytest.raises(ParserError):
            p.parse(junk, True)
    assert p.txs[-1].events == {"malformed_data"}
    assert snmp.probe(b"\x30\x82\x01", True) is None and snmp.probe(b"GET / HTTP", True) is False


def dhcp_message(op: int, mtype: int, options: bytes) -> bytes:
    hdr = bytes([op, 1, 6, 0]) + struct.pack(">I", 0xEF63D944) + b"\x00" * 4
    hdr += bytes([10, 16, 1, 4]) + (bytes([10, 16, 1, 4]) if op == 2 else b"\0" * 4) + bytes([10, 16, 1, 1]) + b"\0" * 4
    hdr += bytes.fromhex("00113217 49f0") + b"\0" * 10 + b"\0" * 192 + b"\x63\x82\x53\x63"
    return hdr + bytes([53, 1, mtype]) + options + b"\xff"


def test_dhcp(tmp_path: Path):
    req = dhcp_message(1, 3, bytes([12, 5]) + b"nas1\0" + bytes([55, 4, 1, 3, 15, 6]))
    ack = dhcp_message(2, 5, bytes([51, 4, 0, 0, 0x0E, 0x10, 59, 4, 0, 0, 0x0B, 0xD7, 58, 4, 0, 0, 0x06, 0x91,
                                    1, 4, 255, 255, 0, 0]))
    pcap = udp_exchange(tmp_path / "d.pcap", [(True, req), (False, ack)], sport=68, dport=67)
    rules = ("alert dhcp any any -> any any (dhcp.leasetime:<7200; sid:1;)\n"
             "alert dhcp any any -> any any (dhcp.renewal_time:1000<>2000; sid:2;)\n"
             "alert dhcp any any -> any any (flow:to_server; sid:3;)\n")
    recs = replay(tmp_path, pcap, rules, "outputs.eve-log.types=[alert, dhcp]")
    assert len(alerts(recs, 1)) == 1 and len(alerts(recs, 2)) == 1
    assert [a["dhcp"]["type"] for a in alerts(recs, 3)] == ["request"]     # bug-8621: its own side only
    # the default (not extended) record: ACKs only
    assert [r["dhcp"]["dhcp_type"] for r in recs if r["event_type"] == "dhcp"] == ["ack"]
    ext = replay(tmp_path, pcap, rules, "outputs.eve-log.types=[alert, dhcp]", "outputs.eve-log.dhcp.extended=true")
    got = [r["dhcp"] for r in ext if r["event_type"] == "dhcp"]
    assert got[0]["params"] == ["subnet_mask", "router", "domain", "dns_server"] and got[0]["hostname"] == "nas1\x00"
    assert got[1]["lease_time"] == 3600 and got[1]["subnet_mask"] == "255.255.0.0"
    cut = dhcp.parse(req[:-4])
    assert cut is not None and cut.truncated
    assert dhcp.parse(req[:200]) is None
