"""IDS timing of the app layer: a direction's TCP bytes are parsed once the other side
acknowledged them (Suricata's IDS reassembly), inline mode parses at once.

tcp_session's frames: 1 SYN, 2 SYN/ACK, 3 ACK, then each data segment followed by the
receiver's ACK, then FIN/ACK both ways and the last ACK."""

from __future__ import annotations

from pathlib import Path

from applayer_helpers import CLIENT, SERVER, T0, alerts, replay, tcp_session
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

REQ = b"GET /blah/ HTTP/1.0\r\nUser-Agent: Wget/1.11.4\r\nHost: www.example.com\r\n\r\n"
RESP = b"HTTP/1.0 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nnope!"
URI_RULE = 'alert tcp any any -> any any (msg:"uri"; content:"blah"; http_uri; sid:1;)\n'


def test_a_request_is_inspected_after_the_server_acknowledged_it(tmp_path: Path):
    """The request (4) is parsed on the server's ACK (5); its to-server rule runs on the
    client's next packet (7, which also acknowledges the response), so the alert carries
    the response's fields, as Suricata's alert in suricata-verify bug-78."""
    pcap = tcp_session(tmp_path / "a.pcap", [(True, REQ), (False, RESP)])
    recs = replay(tmp_path, pcap, URI_RULE)
    [a] = alerts(recs, 1)
    assert a["pcap_cnt"] == 7 and a["src_ip"] == CLIENT and a["tx_id"] == 0
    assert a["http"]["status"] == 404 and a["http"]["http_content_type"] == "text/html"
    assert a["http"]["length"] == 5


def test_inline_mode_parses_on_arrival(tmp_path: Path):
    pcap = tcp_session(tmp_path / "i.pcap", [(True, REQ), (False, RESP)])
    recs = replay(tmp_path, pcap, URI_RULE, "stream.inline=true")
    [a] = alerts(recs, 1)
    assert a["pcap_cnt"] == 4 and "status" not in a["http"]


def test_a_rule_mixing_payload_and_transaction_keywords_reads_the_released_bytes(tmp_path: Path):
    """Inspected on a later packet than the one that carried the bytes: the payload part of
    the rule reads what was released (Suricata's raw stream), not that later packet."""
    pcap = tcp_session(tmp_path / "m.pcap", [(True, REQ), (False, RESP)])
    recs = replay(tmp_path, pcap,
                  'alert http any any -> any any (content:"Wget/1.11"; http.uri; content:"/blah/"; sid:1;)\n'
                  'alert http any any -> any any (content:"Found"; file.data; content:"nope"; sid:2;)\n')
    assert [a["pcap_cnt"] for a in alerts(recs, 1)] == [7]
    assert len(alerts(recs, 2)) == 1 and alerts(recs, 2)[0]["src_ip"] == SERVER


def _unacked_request(path: Path) -> Path:
    """A handshake and a request nobody acknowledges before the capture ends."""
    eth = Ether(src="00:11:22:33:44:55", dst="66:77:88:99:aa:bb")
    c2s, s2c = eth / IP(src=CLIENT, dst=SERVER), eth / IP(src=SERVER, dst=CLIENT)
    frames = [c2s / TCP(sport=40001, dport=80, flags="S", seq=100),
              s2c / TCP(sport=80, dport=40001, flags="SA", seq=500, ack=101),
              c2s / TCP(sport=40001, dport=80, flags="A", seq=101, ack=501),
              c2s / TCP(sport=40001, dport=80, flags="PA", seq=101, ack=501) / Raw(REQ)]
    for i, f in enumerate(frames):
        f.time = T0 + i * 0.01
    wrpcap(str(path), frames)
    return path


def test_bytes_never_acknowledged_are_parsed_and_inspected_when_the_flow_ends(tmp_path: Path):
    recs = replay(tmp_path, _unacked_request(tmp_path / "u.pcap"), URI_RULE)
    [a] = alerts(recs, 1)
    assert a["pkt_src"] == "stream (flow timeout)" and "pcap_cnt" not in a
    assert [r["http"]["url"] for r in recs if r["event_type"] == "http"] == ["/blah/"]


def test_a_one_sided_capture_is_parsed_on_arrival(tmp_path: Path):
    """Only the client's packets (asymmetric routing): no ACK will come from the server's
    side, so nothing waits for one."""
    eth = Ether(src="00:11:22:33:44:55", dst="66:77:88:99:aa:bb")
    c2s = eth / IP(src=CLIENT, dst=SERVER)
    frames = [c2s / TCP(sport=40001, dport=80, flags="S", seq=100),
              c2s / TCP(sport=40001, dport=80, flags="A", seq=101, ack=501),
              c2s / TCP(sport=40001, dport=80, flags="PA", seq=101, ack=501) / Raw(REQ)]
    for i, f in enumerate(frames):
        f.time = T0 + i * 0.01
    wrpcap(str(tmp_path / "o.pcap"), frames)
    recs = replay(tmp_path, tmp_path / "o.pcap", URI_RULE, "stream.midstream=true", "stream.async-oneside=true")
    assert [a["pcap_cnt"] for a in alerts(recs, 1)] == [3]


def test_a_closing_sender_is_parsed_on_its_fin(tmp_path: Path):
    """A response cut by the server's FIN (headers ended by the close): parsed on the FIN
    itself, so its to-client rule still runs while the session is established."""
    eth = Ether(src="00:11:22:33:44:55", dst="66:77:88:99:aa:bb")
    c2s, s2c = eth / IP(src=CLIENT, dst=SERVER), eth / IP(src=SERVER, dst=CLIENT)
    resp = b"HTTP/1.0 200 OK\nServer:ng1nx\r\n"
    frames = [c2s / TCP(sport=40001, dport=80, flags="S", seq=100),
              s2c / TCP(sport=80, dport=40001, flags="SA", seq=500, ack=101),
              c2s / TCP(sport=40001, dport=80, flags="A", seq=101, ack=501),
              c2s / TCP(sport=40001, dport=80, flags="PA", seq=101, ack=501) / Raw(REQ),
              s2c / TCP(sport=80, dport=40001, flags="A", seq=501, ack=101 + len(REQ)),
              s2c / TCP(sport=80, dport=40001, flags="PA", seq=501, ack=101 + len(REQ)) / Raw(resp),
              s2c / TCP(sport=80, dport=40001, flags="FA", seq=501 + len(resp), ack=101 + len(REQ)),
              c2s / TCP(sport=40001, dport=80, flags="A", seq=101 + len(REQ), ack=501 + len(resp)),
              c2s / TCP(sport=40001, dport=80, flags="FA", seq=101 + len(REQ), ack=502 + len(resp)),
              s2c / TCP(sport=80, dport=40001, flags="A", seq=502 + len(resp), ack=102 + len(REQ))]
    for i, f in enumerate(frames):
        f.time = T0 + i * 0.01
    wrpcap(str(tmp_path / "c.pcap"), frames)
    recs = replay(tmp_path, tmp_path / "c.pcap",
                  'alert http any any -> any any (flow:established,from_server; content:"ng1nx"; http_header; sid:1;)\n')
    assert [a["pcap_cnt"] for a in alerts(recs, 1)] == [7]


def test_a_frame_that_includes_the_body_is_rebuilt_as_the_body_grows(tmp_path: Path):
    """frame:http1.response is line + headers + body: a body segment after the headers
    must not leave the header-only frame of the previous packet in the buffer cache."""
    head = b"HTTP/1.0 200 OK\r\nServer: Apache\r\nConnection: close\r\n\r\n"
    pcap = tcp_session(tmp_path / "f.pcap", [(True, REQ), (False, head), (False, b"AAAAAAAAAAAAAA")])
    recs = replay(tmp_path, pcap,
                  'alert http any any -> any any (frame:http1.response; content:"|0d 0a|AAA"; sid:1;)\n',
                  "stream.inline=true")
    assert [a["pcap_cnt"] for a in alerts(recs, 1)] == [8]
