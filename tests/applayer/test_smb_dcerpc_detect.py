"""SMB and DCERPC protocol detection (applayer/smb.py): `alert smb` / `alert dcerpc` rules
with payload contents, as ET Open writes them, apply to those flows and only to them."""

from __future__ import annotations

from pathlib import Path

from applayer_helpers import alerts, replay, tcp_session

from netsentry.applayer.smb import probe_dcerpc, probe_smb

TYPES = "outputs.eve-log.types=[alert, flow]"

# SMB2 NEGOTIATE request in a NetBIOS session message, then a CREATE naming an .exe
SMB2_HEADER = b"\xfeSMB" + (64).to_bytes(2, "little") + bytes(6) + (5).to_bytes(2, "little") + bytes(52)
NEGOTIATE = b"\x00\x00\x00\x68" + b"\xfeSMB" + (64).to_bytes(2, "little") + bytes(94)
CREATE = SMB2_HEADER + "\\Temp\\evil.exe".encode("utf-16-le") + bytes(8)
CREATE = b"\x00" + len(CREATE).to_bytes(3, "big") + CREATE
SMB_RESPONSE = b"\x00\x00\x00\x48\xfeSMB" + (64).to_bytes(2, "little") + bytes(62)
# DCERPC bind (version 5.0, type 11, little-endian data representation)
BIND = b"\x05\x00\x0b\x03\x10\x00\x00\x00\x48\x00\x00\x00\x01\x00\x00\x00" + bytes(56)
BIND_ACK = b"\x05\x00\x0c\x03\x10\x00\x00\x00\x44\x00\x00\x00\x01\x00\x00\x00" + bytes(52)

# (no offset on the first content: the SMB stream is parsed and, as Suricata's parser, never
# asks for raw inspection, so these bytes reach payload rules at the close, both requests in
# one window, not on the CREATE's own packet)
RULES = ('alert smb any any -> any any (flow:established,to_server; content:"|fe|SMB"; '
         'content:"|00|.|00|e|00|x|00|e|00|"; nocase; sid:1;)\n'
         'alert dcerpc any any -> any any (flow:established,to_server; content:"|05 00 0b|"; depth:3; sid:2;)\n'
         'alert dcerpc any any -> any any (flow:established,to_server; content:"e|00|x|00|e|00|"; sid:3;)\n')


def _run(tmp_path: Path, session, dport: int) -> list[dict]:
    pcap = tcp_session(tmp_path / f"s{dport}.pcap", session, sport=40445, dport=dport)
    return replay(tmp_path, pcap, RULES, TYPES)


def test_smb_rules_see_smb_flows_on_any_port(tmp_path: Path):
    for port in (445, 8445):
        recs = _run(tmp_path, [(True, NEGOTIATE), (False, SMB_RESPONSE), (True, CREATE)], port)
        assert [r["app_proto"] for r in recs if r["event_type"] == "flow"] == ["smb"], port
        assert len(alerts(recs, 1)) == 1, port
        # a DCERPC rule is also an SMB flow's (Suricata's AppProtoEquals)
        assert len(alerts(recs, 3)) == 1 and not alerts(recs, 2)


def test_dcerpc_rules_see_dcerpc_flows_and_smb_rules_do_not(tmp_path: Path):
    recs = _run(tmp_path, [(True, BIND), (False, BIND_ACK)], 135)
    assert [r["app_proto"] for r in recs if r["event_type"] == "flow"] == ["dcerpc"]
    assert len(alerts(recs, 2)) == 1 and not alerts(recs, 1)


def test_the_same_bytes_in_another_protocol_match_no_smb_rule(tmp_path: Path):
    http = b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % len(CREATE) + CREATE
    recs = _run(tmp_path, [(True, http), (False, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")], 80)
    assert [r["app_proto"] for r in recs if r["event_type"] == "flow"] == ["http"]
    assert not alerts(recs)


def test_probes_as_suricata():
    assert probe_smb(NEGOTIATE, True) and probe_smb(NEGOTIATE[:20], True) is None
    assert probe_smb(b"\x00\x00\x00\x10abcdefgh" + bytes(40), True) is False
    request = b"\x81\x00\x00\x44" + bytes(0x44)      # a NetBIOS session request first
    assert probe_smb(request + NEGOTIATE, True) and probe_smb(request, True) is None
    assert probe_smb(b"GET / HTTP/1.1\r\n" + bytes(40), True) is False
    assert probe_dcerpc(BIND, True) and probe_dcerpc(BIND[:1], True) is None
    assert probe_dcerpc(b"\x05\x01" + BIND[2:], True) is False
    assert probe_dcerpc(BIND[:4] + b"\x20" + BIND[5:], True) is False      # bad data representation


def test_smb_stream_bytes_wait_for_the_chunk_size_as_suricatas_parser_never_asks(tmp_path: Path):
    """IDS raw stream inspection of an SMB flow nobody parses: Suricata's SMB parser never
    asks for it, so acknowledged bytes reach stream rules at the chunk size, the close or
    the flow's end, not on the ACK of each request (suricata-verify bug-5162)."""
    from netsentry.applayer import registry
    rule = 'alert tcp any any -> any any (flow:to_server; content:"e|00|x|00|e|00|"; sid:9;)\n'
    session = [(True, NEGOTIATE), (False, SMB_RESPONSE), (True, CREATE), (False, SMB_RESPONSE)]
    pcap = tcp_session(tmp_path / "smb.pcap", session, sport=40445, dport=445)
    client_fin = 12     # SYN, SYN/ACK, ACK, NEGOTIATE, ACK, response, ACK, CREATE, ACK, response, ACK, FIN
    at_close = [r["pcap_cnt"] for r in alerts(replay(tmp_path, pcap, rule, TYPES), 9)]
    assert at_close == [client_fin]
    # a protocol whose parser asks (as a detected protocol nobody parses does by default):
    # the request's own ACK releases it
    registry.NO_RAW_TRIGGER.discard("smb")
    try:
        per_ack = [r["pcap_cnt"] for r in alerts(replay(tmp_path, pcap, rule, TYPES), 9)]
    finally:
        registry.NO_RAW_TRIGGER.add("smb")
    assert len(per_ack) == 1 and per_ack[0] < client_fin
