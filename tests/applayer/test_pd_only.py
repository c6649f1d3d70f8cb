"""Protocol-detection-only rules (`app-layer-protocol` alone): Suricata inspects them only
on the packets on which detection of a direction completed, so they alert once per
direction, not on every packet of the flow (detect-app-layer-protocol.c, app-layer.c
FlagPacketFlow). Crafted captures, replayed."""

from __future__ import annotations

from pathlib import Path

from scapy.layers.dns import DNS, DNSQR, DNSRR

from applayer_helpers import hits, replay, tcp_session, udp_exchange

from netsentry.config import load_config
from netsentry.rules.loader import load_rules

REQ = b"GET / HTTP/1.1\r\nHost: h.example\r\n\r\n"
RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"



def test_pd_only_alerts_once_per_direction_ids(tmp_path: Path):
    # frames: 1 S, 2 SA, 3 A, 4 request, 5 its ACK, 6 response, 7 its ACK, 8 FIN, 9 FIN, 10 ACK.
    # IDS: the request reaches detection on its ACK (5), the mark goes to the client's next
    # packet (7); the response's on 7, its mark to the server's next packet (9)
    pcap = tcp_session(tmp_path / "h.pcap", [(True, REQ), (False, RESP)])
    recs = replay(tmp_path, pcap, "\n".join([
        "alert tcp any any -> any any (msg:\"pd\"; app-layer-protocol:http; sid:1;)",
        "alert tcp any any -> any any (msg:\"pd ts\"; app-layer-protocol:http; flow:to_server; sid:2;)",
        "alert tcp any any -> any any (msg:\"pd neg\"; app-layer-protocol:!tls; sid:3;)",
        "alert tcp any any -> any any (msg:\"other\"; app-layer-protocol:tls; sid:4;)",
        # not PD-only (flow state): every packet of the flow once it is known
        "alert tcp any any -> any any (msg:\"pkt\"; app-layer-protocol:http; flow:established,to_server; sid:5;)",
        "alert tcp any any -> any any (msg:\"list\"; app-layer-protocol:tls|http; sid:6;)",
    ]))
    assert hits(recs, 1) == [7, 9]
    assert hits(recs, 2) == [7]
    assert hits(recs, 3) == [7, 9]
    assert hits(recs, 4) == []
    assert len(hits(recs, 5)) > 1
    assert hits(recs, 6) == [7, 9]


def test_pd_only_inline_marks_the_packet_itself(tmp_path: Path):
    pcap = tcp_session(tmp_path / "h.pcap", [(True, REQ), (False, RESP)])
    recs = replay(tmp_path, pcap, "alert tcp any any -> any any (app-layer-protocol:http; sid:1;)",
                  "stream.inline=true")
    # the packet itself and, as FlagPacketFlow also sets the flow's flag that flow.c hands
    # on, the direction's next packet (suricata-verify app-layer-protocol-negated-list)
    assert hits(recs, 1) == [4, 6, 7, 9]


def test_pd_only_udp_query_and_answer(tmp_path: Path):
    q = bytes(DNS(id=7, rd=1, qd=DNSQR(qname="a.example")))
    r = bytes(DNS(id=7, qr=1, qd=DNSQR(qname="a.example"), an=DNSRR(rrname="a.example", rdata="192.0.2.9")))
    pcap = udp_exchange(tmp_path / "d.pcap", [(True, q), (False, r), (True, q)])
    recs = replay(tmp_path, pcap, "alert udp any any -> any any (app-layer-protocol:dns; sid:1;)")
    # UDP marks the packet and the flow (FlagPacketFlow): the second query takes the flow's
    assert hits(recs, 1) == [1, 2, 3]


def test_pd_only_failed_detection(tmp_path: Path):
    junk = bytes(range(1, 200)) * 30
    pcap = tcp_session(tmp_path / "j.pcap", [(True, junk), (False, junk)], dport=7777)
    recs = replay(tmp_path, pcap, "\n".join([
        "alert tcp any any -> any any (app-layer-protocol:failed; sid:1;)",
        "alert tcp any any -> any any (app-layer-protocol:!http; sid:2;)",
    ]))
    assert len(hits(recs, 1)) == 2 and hits(recs, 1) == hits(recs, 2)


def test_app_layer_protocol_arguments(tmp_path: Path):
    rf = tmp_path / "r.rules"
    rf.write_text("\n".join([
        "alert tcp any any -> any any (app-layer-protocol:!unknown; sid:1;)",
        "alert tcp any any -> any any (app-layer-protocol:http,exact; sid:2;)",
        "alert tcp any any -> any any (app-layer-protocol:dns,final,either; sid:3;)",
        "alert tcp any any -> any any (app-layer-protocol:dns,sideways; sid:4;)",
        "alert tcp any any -> any any (app-layer-protocol:dns|; sid:5;)",
        "alert tcp any any -> any any (app-layer-protocol:http1,exact; sid:6;)",
    ]) + "\n")
    rs = load_rules([rf], load_config(None, []))
    assert sorted(e.sid for e in rs.errors) == [1, 2, 3, 4, 5]
    assert [s.sid for s in rs.signatures] == [6] and rs.signatures[0].pd_only
