"""DCERPC over TCP (applayer/dcerpc.py) and its keywords (rules/keywords/dcerpc.py):
binds and acks, calls with fragment reassembly, dcerpc.iface/opnum/stub_data and the dce_*
names, byte_* `dce`, the EVE `dcerpc` record."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from applayer_helpers import alerts, replay, tcp_session

from netsentry.applayer.dcerpc import DceState, Header, wire_uuid
from netsentry.rules import RuleError
from netsentry.rules.keywords.dcerpc import parse_iface, parse_opnum

TYPES = "outputs.eve-log.types=[alert, flow, dcerpc]"
IFACE = "367abb81-9844-35f1-ad32-98f038001003"          # svcctl
OTHER = "12345678-1234-abcd-ef00-0123456789ab"
NDR = bytes.fromhex("045d888aeb1cc9119fe808002b104860") + (2).to_bytes(4, "little")


def pdu(ptype: int, call_id: int, body: bytes, flags: int = 0x03, little: bool = True) -> bytes:
    order = "little" if little else "big"
    drep = b"\x10\x00\x00\x00" if little else b"\x00\x00\x00\x00"
    return (bytes([5, 0, ptype, flags]) + drep + (16 + len(body)).to_bytes(2, order) + b"\x00\x00"
            + call_id.to_bytes(4, order) + body)


def bind(call_id: int, items: list[tuple[int, str, int, int]], little: bool = True, flags: int = 0x03) -> bytes:
    order = "little" if little else "big"
    body = b"\xb8\x10\xb8\x10\x00\x00\x00\x00" + bytes([len(items), 0, 0, 0])
    for ctxid, text, major, minor in items:
        raw = uuid.UUID(text).bytes_le if little else uuid.UUID(text).bytes
        body += ctxid.to_bytes(2, order) + b"\x01\x00" + raw + major.to_bytes(2, order) + minor.to_bytes(2, order) + NDR
    return pdu(11, call_id, body, flags, little)


def bind_ack(call_id: int, results: list[int]) -> bytes:
    body = b"\xb8\x10\xb8\x10\x01\x00\x00\x00" + (4).to_bytes(2, "little") + b"135\x00" + b"\x00\x00"
    body += bytes([len(results), 0, 0, 0])
    for r in results:
        body += r.to_bytes(2, "little") + b"\x00\x00" + NDR
    return pdu(12, call_id, body)


def request(call_id: int, ctxid: int, opnum: int, stub: bytes, flags: int = 0x03, little: bool = True) -> bytes:
    order = "little" if little else "big"
    return pdu(0, call_id, (len(stub)).to_bytes(4, order) + ctxid.to_bytes(2, order) + opnum.to_bytes(2, order)
               + stub, flags, little)


def response(call_id: int, stub: bytes, flags: int = 0x03) -> bytes:
    return pdu(2, call_id, len(stub).to_bytes(4, "little") + b"\x00\x00\x00\x00" + stub, flags)


def run(tmp_path: Path, session, rules: str, name: str = "d") -> list[dict]:
    pcap = tcp_session(tmp_path / f"{name}.pcap", session, sport=40135, dport=135)
    return replay(tmp_path, pcap, rules, TYPES)


SESSION = [(True, bind(1, [(0, IFACE, 2, 0), (1, OTHER, 1, 0)])), (False, bind_ack(1, [0, 2])),
           (True, request(2, 0, 15, b"\x09\x00\x00\x00\x00\x01\x00\x00ABCD")),
           (False, response(2, b"\x00" * 20 + b"REPLY")),
           (True, request(3, 1, 4, b"other-iface"))]


def test_iface_opnum_and_stub_data_of_an_accepted_interface(tmp_path: Path):
    rules = "\n".join([
        f"alert tcp any any -> any any (flow:to_server; dcerpc.iface:{IFACE}; dcerpc.opnum:15; sid:1;)",
        # the second context was not accepted (result 2): never matches
        f"alert tcp any any -> any any (flow:to_server; dce_iface:{OTHER}; sid:2;)",
        f"alert tcp any any -> any any (dcerpc.iface:{IFACE},=2; sid:3;)",
        f"alert tcp any any -> any any (dcerpc.iface:{IFACE},>2; sid:4;)",
        "alert tcp any any -> any any (flow:to_server; dce_opnum:1-5,15; dce_stub_data; content:\"ABCD\"; sid:5;)",
        'alert dcerpc any any -> any any (flow:to_client; dcerpc.stub_data; content:"REPLY"; sid:6;)',
        'alert tcp any any -> any any (flow:to_server; dcerpc.stub_data; content:"REPLY"; sid:7;)',
        "alert tcp any any -> any any (flow:to_server; dcerpc.opnum:>10; sid:8;)",
    ]) + "\n"
    recs = run(tmp_path, SESSION, rules)
    assert len(alerts(recs, 1)) == 1
    assert not alerts(recs, 2) and not alerts(recs, 4) and not alerts(recs, 7)
    assert len(alerts(recs, 3)) == 2            # no direction: the request side and the response side
    assert len(alerts(recs, 5)) == 1 and len(alerts(recs, 6)) == 1
    a = alerts(recs, 8)
    assert len(a) == 1 and a[0]["dcerpc"]["req"]["opnum"] == 15
    assert a[0]["app_proto"] == "dcerpc"


def test_eve_dcerpc_records(tmp_path: Path):
    recs = [r["dcerpc"] for r in run(tmp_path, SESSION, "") if r["event_type"] == "dcerpc"]
    assert recs[0]["request"] == "BIND" and recs[0]["response"] == "BINDACK"
    assert [(i["uuid"], i["version"], i["ack_result"]) for i in recs[0]["interfaces"]] == [
        (IFACE, "2.0", 0), (OTHER, "1.0", 2)]
    assert recs[0]["interfaces"][0]["service"] == "svcctl"       # Zeek's table
    call = recs[1]
    assert call["request"] == "REQUEST" and call["response"] == "RESPONSE"
    assert call["req"] == {"opnum": 15, "frag_cnt": 1, "stub_data_size": 12}
    # the response's stub data counts its own 8-byte header (Suricata)
    assert call["res"] == {"frag_cnt": 1, "stub_data_size": 33}
    assert call["call_id"] == 2 and call["rpc_version"] == "5.0"
    assert call["interfaces"][0]["procedure"] == "OpenSCManagerW"
    assert recs[2]["response"] == "UNREPLIED"


def test_fragments_are_reassembled_and_the_call_completes_with_the_last(tmp_path: Path):
    session = [(True, bind(1, [(0, IFACE, 2, 0)])), (False, bind_ack(1, [0])),
               (True, request(5, 0, 15, b"first-middle-", flags=0x01)),
               (True, request(5, 0, 15, b"last", flags=0x02)),
               (False, response(5, b"ok"))]
    rules = 'alert tcp any any -> any any (flow:to_server; dce_stub_data; content:"first-middle-last"; sid:1;)\n'
    recs = run(tmp_path, session, rules)
    assert len(alerts(recs, 1)) == 1
    call = [r["dcerpc"] for r in recs if r["event_type"] == "dcerpc"][1]
    assert call["req"]["frag_cnt"] == 2 and call["req"]["stub_data_size"] == len("first-middle-last")
    # as Suricata, a fragment with neither flag ends its call's side (evaluate_stub_params)


def test_any_frag_also_sees_interfaces_bound_without_the_first_fragment_flag(tmp_path: Path):
    session = [(True, bind(1, [(0, IFACE, 2, 0)], flags=0x00)), (False, bind_ack(1, [0])),
               (True, request(2, 0, 15, b"x")), (False, response(2, b"y"))]
    rules = (f"alert tcp any any -> any any (flow:to_server; dcerpc.iface:{IFACE}; sid:1;)\n"
             f"alert tcp any any -> any any (flow:to_server; dcerpc.iface:{IFACE},any_frag; sid:2;)\n")
    recs = run(tmp_path, session, rules)
    assert not alerts(recs, 1) and len(alerts(recs, 2)) == 1


def test_byte_test_dce_reads_in_the_pdus_byte_order(tmp_path: Path):
    rules = ('alert tcp any any -> any any (dce_stub_data; content:"AB"; byte_test:2,=,0x1234,0,relative,dce; sid:1;)\n'
             'alert tcp any any -> any any (dce_stub_data; content:"AB"; byte_test:2,=,0x3412,0,relative,dce; sid:2;)\n')
    little = [(True, bind(1, [(0, IFACE, 2, 0)])), (False, bind_ack(1, [0])),
              (True, request(2, 0, 1, b"AB\x34\x12"))]
    big = [(True, bind(1, [(0, IFACE, 2, 0)], little=False)), (False, bind_ack(1, [0])),
           (True, request(2, 0, 1, b"AB\x12\x34", little=False))]
    recs = run(tmp_path, little, rules, "le")
    assert len(alerts(recs, 1)) == 1 and not alerts(recs, 2)
    recs = run(tmp_path, big, rules, "be")
    assert len(alerts(recs, 1)) == 1 and not alerts(recs, 2)


def test_a_bad_version_is_an_error_not_a_crash(tmp_path: Path):
    junk = b"\x05\x07" + SESSION[0][1][2:]
    recs = run(tmp_path, [(True, SESSION[0][1]), (False, bind_ack(1, [0, 2])), (True, junk),
                          (True, request(2, 0, 15, b"x"))], f"alert tcp any any -> any any (dce_iface:{IFACE}; sid:1;)\n")
    assert not alerts(recs, 1)          # the direction was given up at the bad PDU
    assert [r["app_proto"] for r in recs if r["event_type"] == "flow"] == ["dcerpc"]


def test_keyword_values():
    u, pred, any_frag = parse_iface(f"{IFACE},!2,any_frag")
    assert u == uuid.UUID(IFACE).bytes and any_frag and pred(1) and not pred(2)
    assert parse_iface(IFACE)[1] is None
    for bad in ("not-a-uuid", f"{IFACE},<1,bogus", f"{IFACE},@1"):
        with pytest.raises(RuleError):
            parse_iface(bad)
    p = parse_opnum("1,5-7,20")
    assert [v for v in range(25) if p(v)] == [1, 5, 6, 7, 20]
    assert parse_opnum(">3")(4) and not parse_opnum(">3")(3)
    with pytest.raises(RuleError):
        parse_opnum("7-5")


def test_the_state_machine_directly():
    st = DceState()
    raw = bind(9, [(3, IFACE, 2, 1)])
    st.pdu(Header(raw[:16]), raw[16:], True)
    assert st.ifaces[0].uuid == uuid.UUID(IFACE).bytes and st.ifaces[0].ctxid == 3
    assert wire_uuid(uuid.UUID(IFACE).bytes_le, True) == uuid.UUID(IFACE).bytes
    ack = bind_ack(9, [0])
    call = st.pdu(Header(ack[:16]), ack[16:], False)
    assert call is not None and call.req_done and call.resp_done and st.ifaces[0].acked
