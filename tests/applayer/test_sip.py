"""SIP (applayer/sip.py): detection by pattern on UDP and TCP, one transaction per message,
the `sip.*` buffers (header multi-buffers, compact forms), the EVE `sip` record, the
`sip.invalid_data` event, the frames; over crafted exchanges."""

from __future__ import annotations

from pathlib import Path

import pytest
from applayer_helpers import alerts, replay, tcp_session, udp_exchange

from netsentry.applayer import sip

TYPES = "outputs.eve-log.types=[alert, flow, sip]"

REGISTER = (b"REGISTER sip:sip.example.net SIP/2.0\r\n"
            b"Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1\r\n"
            b"From: <sip:alice@example.net>;tag=1\r\n"
            b"To: <sip:alice@example.net>\r\n"
            b"t: <sip:bob@example.net>\r\n"
            b"User-Agent: TestPhone 1.0\r\n"
            b"Content-Length: 0\r\n"
            b"\r\n")
OK = (b"SIP/2.0 200 OK\r\n"
      b"Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1\r\n"
      b"From: <sip:alice@example.net>;tag=1\r\n"
      b"To: <sip:alice@example.net>;tag=2\r\n"
      b"Content-Length: 4\r\n"
      b"\r\nABCD")


def _udp(tmp_path: Path, rules: str, datagrams=((True, REGISTER), (False, OK)), *overrides: str) -> list[dict]:
    pcap = udp_exchange(tmp_path / "sip.pcap", list(datagrams), sport=5062, dport=5060)
    return replay(tmp_path, pcap, rules, TYPES, *overrides)


def test_probe_by_pattern_not_port():
    assert sip.probe(b"INVITE sip:x SIP/2.0\r\n", True) is True
    assert sip.probe(b"SIP/2.0 100 Trying\r\n", False) is True
    assert sip.probe(b"OPTIONS sip:x SIP/2.0\r\n", True) is True
    assert sip.probe(b"OPTIONS * HTTP/1.1\r\n", True) is None, "the probed methods need SIP/ further on"
    assert sip.probe(b"REG", True) is None
    assert sip.probe(b"GET / HTTP/1.1\r\n", True) is False


def test_request_and_response_are_transactions_with_records_and_buffers(tmp_path: Path):
    recs = _udp(tmp_path,
                'alert sip any any -> any any (flow:to_server; sip.method; content:"REGISTER"; sid:1;)\n'
                'alert sip any any -> any any (flow:to_server; sip.uri; content:"sip:sip.example.net"; bsize:19; sid:2;)\n'
                'alert sip any any -> any any (flow:to_client; sip.stat_code; content:"200"; sid:3;)\n'
                'alert sip any any -> any any (flow:to_client; sip.stat_msg; content:"OK"; bsize:2; sid:4;)\n'
                'alert sip any any -> any any (sip.protocol; content:"SIP/2.0"; bsize:7; sid:5;)\n'
                'alert sip any any -> any any (sip.request_line; content:"REGISTER sip:sip.example.net SIP/2.0";'
                ' bsize:36; sid:6;)\n'
                'alert sip any any -> any any (sip.response_line; content:"SIP/2.0 200 OK"; bsize:14; sid:7;)\n'
                'alert sip any any -> any any (sip.user_agent; content:"TestPhone"; sid:8;)\n'
                'alert sip any any -> any any (flow:to_server; sip.method; content:"200"; sid:9;)\n')
    for sid in (1, 2, 3, 4, 6, 7, 8):
        assert len(alerts(recs, sid)) == 1, sid
    assert len(alerts(recs, 5)) == 2, "sip.protocol is the version of each side's message"
    assert not alerts(recs, 9)
    records = [r for r in recs if r["event_type"] == "sip"]
    assert [r["sip"] for r in records] == [
        {"method": "REGISTER", "uri": "sip:sip.example.net", "version": "SIP/2.0",
         "request_line": "REGISTER sip:sip.example.net SIP/2.0"},
        {"version": "SIP/2.0", "code": "200", "reason": "OK", "response_line": "SIP/2.0 200 OK"}]
    assert records[0]["src_port"] == 5062 and records[1]["src_port"] == 5060, "named by their packet"
    assert all(r["app_proto"] == "sip" for r in recs if r["event_type"] == "flow")


def test_headers_are_multi_buffers_of_the_inspected_side_with_compact_forms(tmp_path: Path):
    recs = _udp(tmp_path,
                'alert sip any any -> any any (flow:to_server; sip.to; content:"sip:bob@"; sid:1;)\n'
                'alert sip any any -> any any (flow:to_server; sip.to; content:"sip:alice@"; sid:2;)\n'
                'alert sip any any -> any any (flow:to_client; sip.to; content:"tag=2"; sid:3;)\n'
                'alert sip any any -> any any (flow:to_server; sip.to; content:"tag=2"; sid:4;)\n'
                'alert sip any any -> any any (flow:to_client; sip.content_length; content:"4"; bsize:1; sid:5;)\n'
                'alert sip any any -> any any (sip.via; content:"SIP/2.0/UDP"; startswith; sid:6;)\n')
    assert len(alerts(recs, 1)) == 1, "`t:` is the compact To, a second instance of the buffer"
    assert len(alerts(recs, 2)) == 1 and len(alerts(recs, 3)) == 1
    assert not alerts(recs, 4), "the request's headers only on the request side"
    assert len(alerts(recs, 5)) == 1 and len(alerts(recs, 6)) == 2


def test_a_bad_message_raises_invalid_data_on_the_newest_transaction(tmp_path: Path):
    bad = b"REGISTER sip:x SIP/2.0\r\nFrom: a\x01b\r\n\r\n"
    recs = _udp(tmp_path,
                'alert sip any any -> any any (app-layer-event:sip.invalid_data; sid:1;)\n',
                ((True, REGISTER), (True, bad)))
    assert len(alerts(recs, 1)) == 1
    assert len([r for r in recs if r["event_type"] == "sip"]) == 1, "the bad message is no transaction"


def test_tcp_messages_follow_each_other_split_anywhere(tmp_path: Path):
    pcap = tcp_session(tmp_path / "sip.pcap", [(True, REGISTER + REGISTER.replace(b"REGISTER", b"INVITE", 1)),
                                                (False, OK)],
                       sport=40060, dport=5060, segment=7)
    recs = replay(tmp_path, pcap,
                  'alert sip any any -> any any (flow:to_server; sip.method; content:"INVITE"; sid:1;)\n'
                  'alert sip any any -> any any (flow:to_client; frame:response.body; content:"ABCD"; bsize:4; sid:2;)\n'
                  'alert sip any any -> any any (flow:to_server; frame:request.line; content:"SIP/2.0|0d 0a|";'
                  ' endswith; sid:3;)\n', TYPES)
    assert len(alerts(recs, 1)) == 1 and len(alerts(recs, 2)) == 1
    assert len(alerts(recs, 3)) == 2
    assert [r["sip"].get("method", r["sip"].get("code")) for r in recs if r["event_type"] == "sip"] == \
        ["REGISTER", "INVITE", "200"]


@pytest.mark.parametrize("data", [b"", b"\r\n", b"SIP/2.0 ", b"INVITE  SIP/2.0\r\n\r\n",
                                  b"SIP/2.0 200 OK\r\nX: y\r\n", REGISTER[:-1], bytes(range(256))])
def test_parse_message_never_crashes(data: bytes):
    for request in (True, False):
        for tcp in (True, False):
            try:
                sip.parse_message(data, request, tcp)
            except (sip.Incomplete, sip.Invalid):
                pass


SDP_BODY = (b"v=0\r\no=alice  2890844526 2890844526 IN IP4 10.0.0.5\r\ns=Call\r\ni=Info here\r\n"
            b"c=IN IP4 10.0.0.5\r\nb=AS:64\r\nt=0 0\r\nr=604800 3600 0 90000\r\na=sendrecv\r\n"
            b"m=audio 49170 RTP/AVP 0\r\ni=voice\r\na=rtpmap:0 PCMU/8000\r\n")


def test_an_sdp_body_is_parsed_for_buffers_and_the_record(tmp_path: Path):
    invite = (b"INVITE sip:bob@example.net SIP/2.0\r\nContent-Type: application/sdp\r\n"
              b"Content-Length: %d\r\n\r\n" % len(SDP_BODY)) + SDP_BODY
    recs = _udp(tmp_path,
                'alert sip any any -> any any (sdp.origin; content:"alice 2890844526 2890844526 IN IP4 10.0.0.5";'
                ' bsize:43; sid:1;)\n'
                'alert sip any any -> any any (sdp.media.media; content:"audio"; sdp.attribute; content:"sendrecv";'
                ' sid:2;)\n'
                'alert sip any any -> any any (sdp.repeat_time; content:"604800"; sid:3;)\n'
                'alert sip any any -> any any (sdp.attribute; content:"rtpmap"; sid:4;)\n',
                ((True, invite), (False, OK)))
    assert len(alerts(recs, 1)) == 1 and len(alerts(recs, 2)) == 1 and len(alerts(recs, 3)) == 1
    assert not alerts(recs, 4), "a media attribute is sdp.media's, not the session's"
    sdp = [r["sip"] for r in recs if r["event_type"] == "sip"][0]["sdp"]
    assert sdp["origin"] == "alice 2890844526 2890844526 IN IP4 10.0.0.5"
    assert sdp["time_descriptions"] == [{"time": "0 0", "repeat_time": "604800 3600 0 90000"}]
    assert sdp["media_descriptions"] == [{"media": "audio 49170 RTP/AVP 0", "media_info": "voice",
                                          "attributes": ["rtpmap:0 PCMU/8000"]}]
    assert "sdp" not in [r["sip"] for r in recs if r["event_type"] == "sip"][1], "ABCD is no SDP"


def test_a_frame_rule_alert_describes_the_frame_it_matched(tmp_path: Path):
    """Suricata's AlertAddFrame: an alert on `frame:NAME` carries a `frame` object, the
    frame's name in its protocol, the packet's direction, its length, whether it is
    complete and its bytes (UDP: the first 256); an alert on another buffer has none."""
    import base64
    big = REGISTER.replace(b"Content-Length: 0", b"Content-Length: 300", 1) + b"X" * 300
    recs = _udp(tmp_path,
                'alert sip any any -> any any (flow:to_server; frame:request.headers; content:"Via:"; '
                'startswith; sid:1;)\n'
                'alert sip any any -> any any (flow:to_client; frame:sip.response.body; content:"ABCD"; sid:2;)\n'
                'alert sip any any -> any any (flow:to_server; frame:request.body; content:"XXX"; sid:3;)\n'
                'alert sip any any -> any any (flow:to_server; sip.method; content:"REGISTER"; sid:4;)\n',
                ((True, big), (False, OK)))
    head = big[big.index(b"\r\n") + 2:big.index(b"\r\n\r\n") + 2]      # without the empty line
    [a1], [a2], [a3], [a4] = alerts(recs, 1), alerts(recs, 2), alerts(recs, 3), alerts(recs, 4)
    assert a1["frame"] == {"type": "request.headers", "direction": "toserver", "length": len(head),
                           "payload": base64.b64encode(head).decode(),
                           "payload_printable": head.decode(), "complete": True}
    assert a2["frame"]["type"] == "response.body" and a2["frame"]["direction"] == "toclient"
    assert base64.b64decode(a2["frame"]["payload"]) == b"ABCD" and a2["frame"]["length"] == 4
    assert a3["frame"]["length"] == 300 and base64.b64decode(a3["frame"]["payload"]) == b"X" * 256
    assert "frame" not in a4
