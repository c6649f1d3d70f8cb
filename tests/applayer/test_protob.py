"""The round-12 protocols B (applayer/pgsql.py, ldap.py, enip.py, modbus.py): crafted
sessions through the whole sensor (detection by port only, transactions, keywords, EVE
records, events), and hostile input that must end as an event or an app-layer error,
never an exception."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from applayer_helpers import alerts, replay, tcp_session, udp_exchange

from netsentry.applayer import enip, ike, ldap, modbus, pgsql
from netsentry.applayer.registry import ParserError, ProtocolChange


# --- PostgreSQL -------------------------------------------------------------------------------

def _pg(t: bytes, body: bytes) -> bytes:
    return t + struct.pack(">I", len(body) + 4) + body


def _startup(user: bytes = b"alice", db: bytes = b"shop") -> bytes:
    body = struct.pack(">HH", 3, 0) + b"user\0" + user + b"\0database\0" + db + b"\0\0"
    return struct.pack(">I", len(body) + 4) + body


PG_SESSION = [
    (True, _startup()),
    (False, _pg(b"R", struct.pack(">I", 0)) + _pg(b"S", b"TimeZone\0UTC\0") + _pg(b"K", struct.pack(">II", 42, 7))
     + _pg(b"Z", b"I")),
    (True, _pg(b"Q", b"SELECT name FROM users;\0")),
    (False, _pg(b"T", struct.pack(">H", 1) + b"name\0" + bytes(18)) + _pg(b"D", struct.pack(">HI", 1, 3) + b"bob")
     + _pg(b"D", struct.pack(">HI", 1, 5) + b"alice") + _pg(b"C", b"SELECT 2\0") + _pg(b"Z", b"I")),
    (True, _pg(b"X", b"")),
]
PG_TYPES = "outputs.eve-log.types=[alert, pgsql]"


def test_pgsql_session_records_and_query_keyword(tmp_path: Path):
    pcap = tcp_session(tmp_path / "p.pcap", PG_SESSION, dport=5432, segment=7)
    rules = ('alert pgsql any any -> any any (pgsql.query; content:"FROM users"; sid:1;)\n'
             'alert pgsql any any -> any any (pgsql.query; content:"DELETE"; sid:2;)\n')
    recs = replay(tmp_path, pcap, rules, PG_TYPES)
    assert len(alerts(recs, 1)) == 1 and not alerts(recs, 2)
    hit = alerts(recs, 1)[0]
    assert hit["app_proto"] == "pgsql" and hit["pgsql"]["request"]["simple_query"] == "SELECT name FROM users;"
    pg = [r["pgsql"] for r in recs if r["event_type"] == "pgsql"]
    assert pg[0]["tx_id"] == 1 and pg[0]["request"]["startup_parameters"] == {
        "user": "alice", "optional_parameters": [{"database": "shop"}]}
    assert pg[0]["response"] == {"message": "authentication_ok", "parameter_status": [{"time_zone": "UTC"}],
                                 "process_id": 42, "secret_key": 7}
    assert pg[1]["response"] == {"field_count": 1, "data_rows": 2, "data_size": 8, "command_completed": "SELECT 2"}
    assert pg[2]["request"] == {"message": "termination_message"}


def test_pgsql_is_detected_on_its_port_only(tmp_path: Path):
    pcap = tcp_session(tmp_path / "p.pcap", PG_SESSION, dport=5433)
    recs = replay(tmp_path, pcap, 'alert pgsql any any -> any any (pgsql.query; content:"SELECT"; sid:1;)\n', PG_TYPES)
    assert not alerts(recs) and not [r for r in recs if r["event_type"] == "pgsql"]


def test_pgsql_events_and_ssl_upgrade():
    p = pgsql.PgsqlParser()
    p.parse(b"\x00\x00\x00\x08\x00\xff\x00\xff", True)          # a startup of an unknown version
    assert p.txs[-1].events == {"malformed_request"}
    p = pgsql.PgsqlParser()
    with pytest.raises(ParserError):
        p.parse(b"Q\x00\x00\x00\x02", True)                       # a length below its own size
    assert p.txs[-1].events == {"invalid_length"}
    p.parse(b"Q\x00\x00\x00\x09more\0", True)                     # the direction stays given up
    assert len(p.txs) == 1
    p = pgsql.PgsqlParser()
    p.parse(struct.pack(">IHH", 8, 1234, 5679), True)              # SSL request
    with pytest.raises(ProtocolChange):
        p.parse(b"S", False)
    assert p.txs[0].eve() == {"tx_id": 1, "request": {"message": "SSL Request"}, "response": {"ssl_accepted": True}}


def test_pgsql_passwords_redacted_unless_asked():
    for settings, want in ((None, {"password_redacted": True}), ({"passwords": True}, {"password": "s3cret"})):
        p = pgsql.PgsqlParser(settings)
        p.parse(_startup(), True)
        p.parse(_pg(b"R", struct.pack(">I", 3)), False)             # cleartext password asked
        p.parse(_pg(b"p", b"s3cret\0"), True)
        p.parse(_pg(b"R", struct.pack(">I", 0)) + _pg(b"Z", b"I"), False)
        assert p.txs[1].eve()["request"] == want


# --- LDAP ---------------------------------------------------------------------------------------

def _ber(tag: int, body: bytes) -> bytes:
    n = len(body)
    return bytes([tag]) + (bytes([n]) if n < 128 else b"\x82" + struct.pack(">H", n)) + body


def _ldap(mid: int, op: bytes) -> bytes:
    return _ber(0x30, _ber(0x02, bytes([mid])) + op)


def _result(code: int, msg: bytes = b"") -> bytes:
    return _ber(0x0A, bytes([code])) + _ber(0x04, b"") + _ber(0x04, msg)


SEARCH = _ldap(2, _ber(0x63, _ber(0x04, b"dc=example,dc=com") + _ber(0x0A, b"\x02") + _ber(0x0A, b"\x00")
                       + _ber(0x02, b"\x64") + _ber(0x02, b"\x1e") + _ber(0x01, b"\x00")
                       + _ber(0x87, b"objectClass") + _ber(0x30, _ber(0x04, b"cn") + _ber(0x04, b"mail"))))
ENTRY = _ldap(2, _ber(0x64, _ber(0x04, b"cn=bob,dc=example,dc=com")
                      + _ber(0x30, _ber(0x30, _ber(0x04, b"cn") + _ber(0x31, _ber(0x04, b"bob"))))))
DONE = _ldap(2, _ber(0x65, _result(4, b"size limit")))


def test_ldap_search_keywords_and_record(tmp_path: Path):
    pcap = tcp_session(tmp_path / "l.pcap", [(True, SEARCH), (False, ENTRY + DONE)], dport=389, segment=9)
    rules = ('alert ldap any any -> any any (ldap.request.operation:search_request; sid:1;)\n'
             'alert ldap any any -> any any (ldap.responses.operation:search_result_done,-1; sid:2;)\n'
             'alert ldap any any -> any any (ldap.responses.operation:search_result_done,0; sid:3;)\n'
             'alert ldap any any -> any any (ldap.responses.count:2; ldap.responses.result_code:size_limit_exceeded; '
             'sid:4;)\n'
             'alert ldap any any -> any any (ldap.request.dn; content:"dc=example,dc=com"; startswith; sid:5;)\n'
             'alert ldap any any -> any any (ldap.responses.attribute_type; content:"cn"; endswith; sid:6;)\n'
             'alert ldap any any -> any any (ldap.request.attribute_type; content:"mail"; sid:7;)\n')
    recs = replay(tmp_path, pcap, rules, "outputs.eve-log.types=[alert, ldap]")
    assert [len(alerts(recs, s)) for s in range(1, 8)] == [1, 1, 0, 1, 1, 1, 1]
    rec = [r["ldap"] for r in recs if r["event_type"] == "ldap"][0]
    assert rec["request"]["search_request"]["attributes"] == ["cn", "mail"]
    assert rec["request"]["search_request"]["filter"] == {"type": "present", "value": "objectClass"}
    assert rec["responses"][0]["search_result_entry"]["attributes"] == [{"type": "cn", "values": ["bob"]}]
    assert rec["responses"][1]["search_result_done"] == {"result_code": "size_limit_exceeded", "matched_dn": "",
                                                         "message": "size limit"}


def test_ldap_udp_and_unsolicited_response(tmp_path: Path):
    pcap = udp_exchange(tmp_path / "l.pcap", [(True, SEARCH), (False, ENTRY + DONE)], dport=389)
    recs = replay(tmp_path, pcap, 'alert ldap any any -> any any (ldap.responses.count:2; sid:1;)\n',
                  "outputs.eve-log.types=[alert, ldap]")
    assert len(alerts(recs, 1)) == 1
    assert [r["proto"] for r in recs if r["event_type"] == "ldap"] == ["UDP"]
    p = ldap.LdapParser()
    p.parse(_ldap(0, _ber(0x78, _result(52, b"going down") + _ber(0x8A, b"1.3.6.1.4.1.1466.20036"))), False)
    tx = p.txs[0]
    assert tx.events is None and tx.eve()["responses"][0]["message_id"] == 0
    p.parse(DONE, False)                                          # no request with id 2
    assert p.txs[1].events == {"request_not_found"}


def test_ldap_starttls_and_bad_input():
    p = ldap.LdapParser()
    p.parse(_ldap(1, _ber(0x77, _ber(0x80, ldap.STARTTLS_OID.encode()))), True)
    with pytest.raises(ProtocolChange):
        p.parse(_ldap(1, _ber(0x78, _result(0))), False)
    p = ldap.LdapParser()
    p.parse(SEARCH, True)
    with pytest.raises(ParserError):
        p.parse(b"\x30\x03\x02\x05\x01", True)                    # an inner length past the message
    assert "invalid_data" in p.txs[-1].events


# --- ENIP/CIP ------------------------------------------------------------------------------------

def _enip(cmd: int, data: bytes, session: int = 5) -> bytes:
    return struct.pack("<HHIIQI", cmd, len(data), session, 0, 0, 0) + data


def _identity() -> bytes:
    name = b"1756-ENBT/A"
    item = (struct.pack("<H", 1) + struct.pack(">HH4s8x", 2, 44818, bytes([10, 0, 0, 1]))
            + struct.pack("<HHHBBHI", 1, 12, 58, 3, 4, 0x30, 0x524D8E) + bytes([len(name)]) + name + b"\x03")
    return struct.pack("<HHH", 1, 0x0C, len(item)) + item


def _cip_rr(cip: bytes) -> bytes:
    return struct.pack("<IHH", 0, 0, 2) + struct.pack("<HH", 0, 0) + struct.pack("<HH", 0xB2, len(cip)) + cip


def test_enip_identity_and_cip_keywords(tmp_path: Path):
    get_attr = bytes([0x0E, 3, 0x20, 0x01, 0x24, 0x01, 0x30, 0x05])          # class 1, instance 1, attribute 5
    answer = bytes([0x8E, 0, 0, 0, 0x01, 0x02])
    pcap = tcp_session(tmp_path / "e.pcap", [(True, _enip(0x63, b"")), (False, _enip(0x63, _identity())),
                                              (True, _enip(0x6F, _cip_rr(get_attr))),
                                              (False, _enip(0x6F, _cip_rr(answer)))], dport=44818, segment=11)
    rules = ('alert enip any any -> any any (enip_command:list_identity; flow:to_server; sid:1;)\n'
             'alert enip any any -> any any (enip.product_name; content:"1756-ENBT/A"; sid:2;)\n'
             'alert enip any any -> any any (enip.revision:0x304; enip.serial:0x524D8E; enip.vendor_id:1; sid:3;)\n'
             'alert enip any any -> any any (flow:to_server; enip.cip_class:1; enip.cip_instance:1; '
             'enip.cip_attribute:5; sid:4;)\n'
             'alert enip any any -> any any (cip_service:14,1,5; sid:5;)\n'
             'alert enip any any -> any any (enip.cip_status:0; sid:6;)\n'
             'alert enip any any -> any any (enip.cip_class:2; sid:7;)\n')
    recs = replay(tmp_path, pcap, rules, "outputs.eve-log.types=[alert, enip]")
    assert [len(alerts(recs, s)) for s in range(1, 8)] == [1, 1, 1, 1, 1, 1, 0]
    assert alerts(recs, 1)[0]["enip"]["request"]["command"] == "list_identity"
    rec = [r["enip"] for r in recs if r["event_type"] == "enip"]
    assert rec[1]["request"]["cip"]["path"][0] == {"segment_type": "class", "value": 1}


def test_enip_bad_pdu_is_an_event():
    p = enip.EnipParser()
    p.parse(_enip(0x65, b"\x01"), True)                            # RegisterSession data too short
    assert p.txs[0].events == {"invalid_pdu"}
    assert enip.probe(_enip(0x65, b"\x01\x00\x00\x00"), True) is True
    assert enip.probe(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", True) is False


# --- Modbus ---------------------------------------------------------------------------------------

def _mb(tid: int, unit: int, pdu: bytes) -> bytes:
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


def test_modbus_keyword_forms_and_record(tmp_path: Path):
    pcap = tcp_session(tmp_path / "m.pcap", [
        (True, _mb(1, 10, bytes([1, 0, 0, 0, 8]))), (False, _mb(1, 10, bytes([1, 1, 0xFF]))),
        (True, _mb(2, 10, bytes([6, 0, 4, 0, 0x2A]))), (False, _mb(2, 10, bytes([6, 0, 4, 0, 0x2A]))),
    ], dport=502, segment=5)
    rules = ('alert modbus any any -> any any (modbus: function 1; sid:1;)\n'
             'alert modbus any any -> any any (modbus: access read coils; sid:2;)\n'
             'alert modbus any any -> any any (modbus: unit >9, access write holding, address 5, value 42; sid:3;)\n'
             'alert modbus any any -> any any (modbus: function !assigned; sid:4;)\n'
             'alert modbus any any -> any any (modbus: access write holding, address 5, value 43; sid:5;)\n')
    recs = replay(tmp_path, pcap, rules, "outputs.eve-log.types=[alert, modbus]")
    assert [len(alerts(recs, s)) for s in range(1, 6)] == [1, 1, 1, 0, 0]
    rec = [r["modbus"] for r in recs if r["event_type"] == "modbus"][0]
    assert rec["request"]["access_type"] == "READ | COILS" and rec["response"]["category"] == "PUBLIC_ASSIGNED"
    assert rec["request"]["read"] == {"address": 0, "quantity": 8}


def test_modbus_unsolicited_and_flags():
    p = modbus.ModbusParser()
    p.parse(_mb(9, 1, bytes([3, 2, 0, 0])), False)                # an answer nobody asked for
    assert "unsolicited_response" in p.txs[0].events
    p.parse(_mb(3, 1, bytes([5, 0, 1, 0x12, 0x34])), True)        # a coil written with neither 0 nor FF00
    assert p.txs[1].events == {"invalid_value"}
    with pytest.raises(ParserError):
        p.parse(b"\x00\x01\x00\x07\x00\x06\x01\x03\x00\x00\x00\x01", True)   # protocol id 7


# --- hostile input --------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [pgsql.PgsqlParser, ldap.LdapParser, enip.EnipParser, modbus.ModbusParser])
def test_random_bytes_never_raise_anything_but_parser_errors(make):
    rnd = random.Random(1212)
    for _ in range(300):
        p = make()
        for _ in range(4):
            data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 60)))
            try:
                p.parse(data, rnd.random() < 0.5)
            except (ParserError, ProtocolChange):
                pass
        for tx in p.txs:
            tx.eve()


# --- DNP3 -----------------------------------------------------------------------------------------

def _dnp3_frame(user: bytes, *, to_server: bool, dst: int = 10, src: int = 1) -> bytes:
    """A link frame of user data with every CRC: header, then 16-byte blocks."""
    from netsentry.applayer.dnp3 import crc
    ctrl = 0xC4 if to_server else 0x44
    head = bytes([0x05, 0x64, 5 + len(user), ctrl]) + struct.pack("<HH", dst, src)
    c = crc(head)
    out = head + bytes([c & 0xFF, c >> 8])
    for i in range(0, len(user), 16):
        block = user[i:i + 16]
        c = crc(block)
        out += block + bytes([c & 0xFF, c >> 8])
    return out


def test_dnp3_keywords_records_and_crc(tmp_path: Path):
    from netsentry.applayer import dnp3
    req = _dnp3_frame(bytes([0xC0, 0xC1, 0x01, 60, 2, 6, 60, 3, 6]), to_server=True)        # read class 1, 2
    resp = _dnp3_frame(bytes([0xC0, 0xC1, 0x81, 0x80, 0x00, 30, 2, 0x00, 0, 1])
                       + struct.pack("<bhbh", 1, 100, 1, 200), to_server=False, dst=1, src=10)
    pcap = tcp_session(tmp_path / "d.pcap", [(True, req), (False, resp)], dport=20000, segment=7)
    rules = ('alert dnp3 any any -> any any (dnp3_func:read; sid:1;)\n'
             'alert dnp3 any any -> any any (dnp3_func:response; dnp3_ind:device_restart; sid:2;)\n'
             'alert dnp3 any any -> any any (dnp3_obj:60,3; sid:3;)\n'
             'alert dnp3 any any -> any any (dnp3_obj:30,2; sid:4;)\n'
             'alert dnp3 any any -> any any (dnp3_data; content:"|1e 02 00 00 01|"; sid:5;)\n'
             'alert dnp3 any any -> any any (dnp3_ind:need_time; sid:6;)\n')
    recs = replay(tmp_path, pcap, rules, "outputs.eve-log.types=[alert, dnp3]")
    assert [len(alerts(recs, s)) for s in range(1, 7)] == [1, 1, 1, 1, 1, 0]
    assert alerts(recs, 2)[0]["dnp3"]["response"]["iin"]["indicators"] == ["device_restart"]
    rec = [r["dnp3"] for r in recs if r["event_type"] == "dnp3"]
    assert [r["type"] for r in rec] == ["request", "response"]
    assert rec[1]["application"]["objects"][0] == {"group": 30, "variation": 2, "qualifier": 0, "prefix_code": 0,
                                                   "range_code": 0, "start": 0, "stop": 1, "count": 2}
    p = dnp3.Dnp3Parser()
    bad = bytearray(req)
    bad[8] ^= 0xFF                                                # the link header's CRC
    with pytest.raises(ParserError):
        p.parse(bytes(bad), True)


def test_dnp3_flood_and_reassembly_limit():
    from netsentry.applayer import dnp3
    p = dnp3.Dnp3Parser()
    for i in range(33):
        p.parse(_dnp3_frame(bytes([0xC0 | (i & 0x3F), 0xC0 | (i & 0x0F), 0x01, 60, 1, 6]), to_server=True), True)
    assert [i for i, tx in enumerate(p.txs) if tx.events] == [32] and p.txs[32].events == {"flooded"}
    p = dnp3.Dnp3Parser()
    seg = bytes(200)
    p.parse(_dnp3_frame(bytes([0x40]) + bytes([0xC0, 0x02]) + seg, to_server=True), True)   # FIR, no FIN
    for i in range(1, 90):
        p.parse(_dnp3_frame(bytes([i & 0x3F]) + seg, to_server=True), True)
    assert p.txs[0].events == {"too_long_reassembly"}


@pytest.mark.parametrize("seed", [5, 6])
def test_dnp3_random_bytes(seed):
    from netsentry.applayer import dnp3
    rnd = random.Random(seed)
    for _ in range(300):
        p = dnp3.Dnp3Parser()
        data = b"\x05\x64" + bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 80)))
        try:
            p.parse(data, True)
        except ParserError:
            pass


# --- IKE ------------------------------------------------------------------------------------------

def _isakmp(init: bytes, resp: bytes, version: int, exch: int, payloads: list[tuple[int, bytes]],
            flags: int = 0) -> bytes:
    body = b""
    for i, (kind, data) in enumerate(payloads):
        nxt = payloads[i + 1][0] if i + 1 < len(payloads) else 0
        body += bytes([nxt, 0]) + struct.pack(">H", len(data) + 4) + data
    first = payloads[0][0] if payloads else 0
    return init + resp + bytes([first, version, exch, flags]) + struct.pack(">II", 0, 28 + len(body)) + body


def _v1_sa(attrs: bytes) -> bytes:
    transform = bytes([0, 0]) + struct.pack(">H", 8 + len(attrs)) + bytes([1, 1, 0, 0]) + attrs
    proposal = bytes([0, 0]) + struct.pack(">H", 8 + len(transform)) + bytes([1, 1, 0, 1]) + transform
    return struct.pack(">II", 1, 1) + proposal


def test_ike_v1_keywords(tmp_path: Path):
    init, resp = bytes.fromhex("e47a591fd057587f"), bytes.fromhex("a00b8ef0902bb8ec")
    attrs = struct.pack(">HH", 0x8001, 7) + struct.pack(">HH", 0x8002, 2) + struct.pack(">HHI", 12, 4, 86400)
    m1 = _isakmp(init, bytes(8), 0x10, 2, [(1, _v1_sa(attrs)), (13, bytes.fromhex("4a131c81070358455c5728f20e95452f"))])
    m2 = _isakmp(init, resp, 0x10, 2, [(1, _v1_sa(attrs))])
    m3 = _isakmp(init, resp, 0x10, 2, [(4, bytes(128)), (10, bytes(range(20)))])
    pcap = udp_exchange(tmp_path / "i.pcap", [(True, m1), (False, m2), (True, m3)], sport=500, dport=500)
    rules = ('alert ike any any -> any any (ike.init_spi; content:"e47a591fd057587f"; sid:1;)\n'
             'alert ike any any -> any any (ike.resp_spi; content:"a00b8ef0902bb8ec"; sid:2;)\n'
             'alert ike any any -> any any (ike.chosen_sa_attribute:alg_enc=7; sid:3;)\n'
             'alert ike any any -> any any (ike.chosen_sa_attribute:sa_life_duration=86400; sid:4;)\n'
             'alert ike any any -> any any (ike.vendor; content:"4a131c81070358455c5728f20e95452f"; sid:5;)\n'
             'alert ike any any -> any any (ike.key_exchange_payload_length:128; ike.nonce_payload_length:<30; '
             'sid:6;)\n'
             'alert ike any any -> any any (ike.exchtype:2; sid:7;)\n')
    recs = replay(tmp_path, pcap, rules, "outputs.eve-log.types=[alert, ike]")
    assert [len(alerts(recs, s)) for s in range(1, 8)] == [2, 1, 1, 1, 1, 1, 3]


def test_ikev2_weak_dh_event():
    sa = bytes([0, 0]) + struct.pack(">H", 8 + 8) + bytes([1, 1, 0, 1]) + (
        bytes([0, 0]) + struct.pack(">H", 8) + bytes([4, 0]) + struct.pack(">H", 2))     # DH MODP1024
    msg = _isakmp(bytes(range(8)), bytes(8), 0x20, 34, [(33, sa), (34, struct.pack(">HH", 2, 0) + bytes(128))])
    assert ike.probe(msg, True) is True and ike.probe(msg[:-1], True) is False
    p = ike.IkeParser()
    p.parse(msg, True)
    assert p.txs[0].events == {"weak_crypto_dh"} and p.txs[0].dh_group == 2
    with pytest.raises(ParserError):
        p.parse(msg[:30] + b"\xff\xff", True)


@pytest.mark.parametrize("midstream", [True, False])
def test_ldap_tcp_midstream_response_first_reverses_the_flow(tmp_path: Path, midstream: bool):
    """Suricata's TCPProtoDetect: picked up midstream, a flow whose first bytes are an LDAP
    response runs the other way round (the probe's rdir), so the response is a response to
    rules and records (suricata-verify bug-7552-02, ldap-unsolicited). With the handshake
    seen, the side that sent the SYN stays the client whatever it sends."""
    from scapy.all import IP, TCP, Ether, Raw, wrpcap
    notice = _ldap(0, _ber(0x78, _result(52, b"going down") + _ber(0x8A, b"1.3.6.1.4.1.1466.20036")))
    eth = Ether(src="00:11:22:33:44:55", dst="66:77:88:99:aa:bb")
    srv, cli = eth / IP(src="10.0.0.2", dst="10.0.0.1"), eth / IP(src="10.0.0.1", dst="10.0.0.2")
    frames = []
    if not midstream:   # the server opened it (an odd capture): its SYN makes it the client
        frames += [srv / TCP(sport=389, dport=5555, flags="S", seq=99),
                   cli / TCP(sport=5555, dport=389, flags="SA", seq=499, ack=100),
                   srv / TCP(sport=389, dport=5555, flags="A", seq=100, ack=500)]
    frames += [srv / TCP(sport=389, dport=5555, flags="PA", seq=100, ack=500) / Raw(notice),
               cli / TCP(sport=5555, dport=389, flags="A", seq=500, ack=100 + len(notice))]
    for i, f in enumerate(frames):
        f.time = 1700000000 + i * 0.01
    pcap = tmp_path / "m.pcap"
    wrpcap(str(pcap), frames)
    recs = replay(tmp_path, pcap,
                  'alert tcp any any -> any any (ldap.responses.operation:extended_response; sid:1;)\n'
                  'alert tcp any any -> any any (ldap.request.operation:extended_response; sid:2;)\n',
                  "outputs.eve-log.types=[alert, ldap]", "stream.midstream=true")
    rec = [r["ldap"] for r in recs if r["event_type"] == "ldap"][0]
    if midstream:
        assert len(alerts(recs, 1)) == 1 and alerts(recs, 2) == []
        assert rec["responses"][0]["operation"] == "extended_response" and "request" not in rec
    else:
        assert alerts(recs, 1) == [] and len(alerts(recs, 2)) == 1
        assert rec["request"]["operation"] == "extended_response"
