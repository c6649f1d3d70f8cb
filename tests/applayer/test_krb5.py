"""Kerberos 5 (applayer/krb5.py) over UDP and TCP (record marking split across segments):
requests, replies, errors, the keywords (names only on replies, as Suricata registers
them), weak encryption, hostile messages."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from applayer_helpers import alerts, replay, tcp_session, udp_exchange

from netsentry.applayer import krb5
from netsentry.applayer.registry import ParserError


def tlv(tag: int, value: bytes) -> bytes:
    n = len(value)
    return bytes([tag]) + (bytes([n]) if n < 128 else bytes([0x82]) + struct.pack(">H", n)) + value


def ctx(n: int, value: bytes) -> bytes:
    return tlv(0xA0 + n, value)


def i(v: int) -> bytes:
    return tlv(0x02, v.to_bytes(4, "big", signed=True).lstrip(b"\x00") or b"\x00")


def principal(*names: bytes) -> bytes:
    return tlv(0x30, ctx(0, i(1)) + ctx(1, tlv(0x30, b"".join(tlv(0x1B, n) for n in names))))


def enc(etype: int) -> bytes:
    return tlv(0x30, ctx(0, i(etype)) + ctx(2, tlv(0x04, b"cipher")))


def as_req(user: bytes, realm: bytes) -> bytes:
    body = tlv(0x30, ctx(0, tlv(0x03, b"\x00\x50\x80\x00\x00")) + ctx(1, principal(user)) + ctx(2, tlv(0x1B, realm))
               + ctx(3, principal(b"krbtgt", realm)) + ctx(7, i(1234)) + ctx(8, tlv(0x30, i(23))))
    return tlv(0x6A, tlv(0x30, ctx(1, i(5)) + ctx(2, i(10)) + ctx(4, body)))


def as_rep(user: bytes, realm: bytes, etype: int, ticket_etype: int) -> bytes:
    ticket = tlv(0x61, tlv(0x30, ctx(0, i(5)) + ctx(1, tlv(0x1B, realm)) + ctx(2, principal(b"krbtgt", realm))
                           + ctx(3, enc(ticket_etype))))
    return tlv(0x6B, tlv(0x30, ctx(0, i(5)) + ctx(1, i(11)) + ctx(3, tlv(0x1B, realm)) + ctx(4, principal(user))
                         + ctx(5, ticket) + ctx(6, enc(etype))))


def krb_error(code: int, realm: bytes) -> bytes:
    return tlv(0x7E, tlv(0x30, ctx(0, i(5)) + ctx(1, i(30)) + ctx(4, tlv(0x18, b"20180628171330Z")) + ctx(5, i(0))
                         + ctx(6, i(code)) + ctx(9, tlv(0x1B, realm)) + ctx(10, principal(b"krbtgt", realm))))


RULES = "\n".join((
    "alert krb5 any any -> any any (krb5_msg_type:AS_REQ; sid:1;)",
    'alert krb5 any any -> any any (krb5.cname; content:"alice"; sid:2;)',
    "alert krb5 any any -> any any (krb5_err_code:25; sid:3;)",
    "alert krb5 any any -> any any (krb5.ticket_encryption:weak; sid:4;)",
    "alert krb5 any any -> any any (krb5.ticket_encryption:aes256-cts-hmac-sha1-96,23; sid:5;)",
    "alert krb5 any any -> any any (app-layer-event:krb5.weak_encryption; sid:6;)",
)) + "\n"


def check(recs: list) -> None:
    # the AS-REQ carries "alice" too, but krb5.cname is a to-client buffer in Suricata
    assert {sid: len(alerts(recs, sid)) for sid in range(1, 7)} == {1: 1, 2: 1, 3: 1, 4: 0, 5: 1, 6: 1}
    got = [r["krb5"] for r in recs if r["event_type"] == "krb5"]
    assert [g["msg_type"] for g in got] == ["KRB_AS_REQ", "KRB_ERROR", "KRB_AS_REP"]
    assert got[1]["failed_request"] == "KRB_AS_REQ" and got[1]["error_code"] == "KDC_ERR_PREAUTH_REQUIRED"
    assert got[2]["encryption"] == "rc4-hmac" and got[2]["weak_encryption"] is True
    assert got[2]["ticket_encryption"] == "aes256-cts-hmac-sha1-96" and got[2]["ticket_weak_encryption"] is False
    assert got[0]["cname"] == "alice" and got[0]["sname"] == "krbtgt/EXAMPLE.ORG" and got[0]["encryption"] == "<none>"


def test_udp(tmp_path: Path):
    pcap = udp_exchange(tmp_path / "k.pcap", [(True, as_req(b"alice", b"EXAMPLE.ORG")),
                                              (False, krb_error(25, b"EXAMPLE.ORG")),
                                              (True, as_req(b"alice", b"EXAMPLE.ORG")),
                                              (False, as_rep(b"alice", b"EXAMPLE.ORG", 23, 18))], dport=88)
    recs = replay(tmp_path, pcap, RULES, "outputs.eve-log.types=[alert, krb5]")
    assert len([r for r in recs if r["event_type"] == "krb5"]) == 4
    recs = [r for r in recs if not (r["event_type"] == "krb5" and r["tx_id"] == 2)]
    assert {sid: len(alerts(recs, sid)) for sid in (1, 2, 3, 5)} == {1: 2, 2: 1, 3: 1, 5: 1}


def test_tcp_record_marking_split(tmp_path: Path):
    def rec(m: bytes) -> bytes:
        return struct.pack(">I", len(m)) + m
    pcap = tcp_session(tmp_path / "k.pcap", [(True, rec(as_req(b"alice", b"EXAMPLE.ORG"))),
                                             (False, rec(krb_error(25, b"EXAMPLE.ORG"))
                                              + rec(as_rep(b"alice", b"EXAMPLE.ORG", 23, 18)))],
                       dport=88, segment=40)
    check(replay(tmp_path, pcap, RULES, "outputs.eve-log.types=[alert, krb5]"))


def test_hostile_and_probe():
    p = krb5.Krb5Parser()
    p.parse(as_req(b"alice", b"R"), True)
    with pytest.raises(ParserError):
        p.parse(b"\x6a", True)                     # a header cut short
    assert p.txs[-1].events == {"malformed_data"}
    p.parse(as_req(b"alice", b"R")[:-5], True)    # a body that does not parse: no transaction
    p.parse(b"\x30\x03\x02\x01\x05", True)        # not APPLICATION class: ignored
    assert len(p.txs) == 1
    assert krb5.probe_udp(as_req(b"alice", b"R"), True) is True
    assert krb5.probe_udp(b"\x6a\x05\x30\x03\x02\x01\x04" + b"\0" * 8, True) is False
    assert krb5.probe_tcp(struct.pack(">I", 20000) + as_req(b"a", b"R"), True) is False
