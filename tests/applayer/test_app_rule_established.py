"""A rule naming an app-layer protocol without app-layer keywords (`alert http ... (sid:1;)`)
needs the flow's protocol, which Suricata reads for a TCP packet only once the session
is established (PKT_STREAM_EST): a SYN carrying data (TCP Fast Open) is not matched
even when its bytes already told the protocol."""

from __future__ import annotations

from pathlib import Path

from applayer_helpers import CLIENT, SERVER, T0, hits, replay
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

REQ = b"GET /tfo HTTP/1.1\r\nHost: www.example.com\r\n\r\n"
RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def _fast_open(path: Path) -> Path:
    """1 SYN with the Fast Open option and the request, 2 SYN/ACK acknowledging it, 3 ACK, 4 response, 5 ACK,
    6-8 FIN/ACK both ways and the last ACK."""
    eth = Ether(src="00:11:22:33:44:55", dst="66:77:88:99:aa:bb")
    c2s, s2c = eth / IP(src=CLIENT, dst=SERVER), eth / IP(src=SERVER, dst=CLIENT)
    c, s = 1000, 5000
    frames = [c2s / TCP(sport=40100, dport=80, flags="S", seq=c,
                        options=[("TFO", b"\x01\x02\x03\x04\x05\x06\x07\x08")]) / Raw(REQ)]
    c += 1 + len(REQ)
    frames += [s2c / TCP(sport=80, dport=40100, flags="SA", seq=s, ack=c),
               c2s / TCP(sport=40100, dport=80, flags="A", seq=c, ack=s + 1),
               s2c / TCP(sport=80, dport=40100, flags="PA", seq=s + 1, ack=c) / Raw(RESP)]
    s += 1 + len(RESP)
    frames += [c2s / TCP(sport=40100, dport=80, flags="A", seq=c, ack=s),
               c2s / TCP(sport=40100, dport=80, flags="FA", seq=c, ack=s),
               s2c / TCP(sport=80, dport=40100, flags="FA", seq=s, ack=c + 1),
               c2s / TCP(sport=40100, dport=80, flags="A", seq=c + 1, ack=s + 1)]
    for i, f in enumerate(frames):
        f.time = T0 + i * 0.01
    wrpcap(str(path), frames)
    return path


def test_a_syn_carrying_data_is_not_matched_by_a_protocol_rule(tmp_path: Path):
    pcap = _fast_open(tmp_path / "tfo.pcap")
    recs = replay(tmp_path, pcap, 'alert http any any -> any any (msg:"http"; flow:to_server; sid:4;)\n'
                                  'alert tcp any any -> any any (msg:"tcp"; flow:to_server; sid:3;)\n')
    assert 1 in hits(recs, 3)               # the SYN itself is a to-server packet of the flow
    got = hits(recs, 4)
    assert got and 1 not in got
