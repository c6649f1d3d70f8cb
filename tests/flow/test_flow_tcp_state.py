"""TCP session state (Suricata's names), direction rules, midstream and stream_size bookkeeping."""

from __future__ import annotations

from flow_helpers import C, S, handshake, table, tcp

from netsentry.flow.tcp_state import stream_size


def test_handshake_reaches_established() -> None:
    t, _ = table()
    syn = t.update(tcp(C, S, 40000, 80, "S", 1.0, seq=1000))
    assert syn.tcp_state == "syn_sent" and not syn.established and syn.state == "new"
    t.update(tcp(S, C, 80, 40000, "SA", 1.1, seq=5000, ack=1001))
    assert syn.tcp_state == "syn_recv"
    t.update(tcp(C, S, 40000, 80, "A", 1.2, seq=1001, ack=5001))
    assert syn.tcp_state == "established" and syn.state == "established"
    assert not syn.established       # the handshake-completing ACK is not yet established for detection
    t.update(tcp(C, S, 40000, 80, "PA", 1.3, seq=1001, ack=5001, payload=b"GET"))
    assert syn.established


def test_established_is_per_packet_as_suricata_flags_it() -> None:
    """flow:established sees the state before the segment (Suricata's FLOW_PKT_ESTABLISHED,
    set in flow handling before the stream engine runs): suricata-verify like-ip-only-01
    counts no alert on each flow's third handshake packet."""
    t, _ = table()
    seen = []
    for pkt in (tcp(C, S, 40000, 80, "S", 1.0, seq=1000),
                tcp(S, C, 80, 40000, "SA", 1.1, seq=5000, ack=1001),
                tcp(C, S, 40000, 80, "A", 1.2, seq=1001, ack=5001),        # completes the handshake
                tcp(C, S, 40000, 80, "A", 1.3, seq=1001, ack=5001),        # plain ACK: fast path
                tcp(S, C, 80, 40000, "PA", 1.4, seq=5001, ack=1001, payload=b"x"),
                tcp(C, S, 40000, 80, "R", 1.5, seq=1001),                  # closes: still established
                tcp(S, C, 80, 40000, "A", 1.6, seq=5002, ack=1001)):       # after the close: still
        f = t.update(pkt)
        seen.append(f.established)
    # flow.c: a TCP session at or past ESTABLISHED in Suricata's state order (closed too)
    assert seen == [False, False, False, True, True, True, True]
    assert f.tcp_state == "closed" and f.state == "closed"


def test_server_closes_first_then_client() -> None:
    t, _ = table()
    f = handshake(t)
    t.update(tcp(S, C, 80, 40000, "FA", 200.0, seq=5001, ack=1001))
    assert f.tcp_state == "close_wait" and f.established
    t.update(tcp(C, S, 40000, 80, "FA", 200.1, seq=1001, ack=5002))
    assert f.tcp_state == "last_ack" and f.state == "closed" and f.established   # closing segment still is
    t.update(tcp(S, C, 80, 40000, "A", 200.2, seq=5002, ack=1002))
    assert f.tcp_state == "closed" and f.established   # the session got past ESTABLISHED


def test_client_closes_first() -> None:
    t, _ = table()
    f = handshake(t)
    t.update(tcp(C, S, 40000, 80, "FA", 200.0, seq=1001, ack=5001))
    assert f.tcp_state == "fin_wait1"
    t.update(tcp(S, C, 80, 40000, "A", 200.1, seq=5001, ack=1002))
    assert f.tcp_state == "fin_wait2"
    t.update(tcp(S, C, 80, 40000, "FA", 200.2, seq=5001, ack=1002))
    assert f.tcp_state == "time_wait"
    t.update(tcp(C, S, 40000, 80, "A", 200.3, seq=1002, ack=5002))
    assert f.tcp_state == "closed"


def test_rst_closes() -> None:
    t, _ = table()
    f = handshake(t)
    t.update(tcp(S, C, 80, 40000, "R", 5.0, seq=5001))
    assert f.tcp_state == "closed" and f.state == "closed"
    t.update(tcp(C, S, 40000, 80, "A", 5.1, seq=1001))
    assert f.established                # TCP_CLOSED is after ESTABLISHED in Suricata's order


def test_a_rst_without_a_session_starts_none() -> None:
    """Suricata's StreamTcpPacketStateNone: a RST when there is no session is ignored
    (rst_but_no_session), so data, RST, data again without a handshake is never
    established (suricata-verify alert-no-3whs-established); with midstream the data
    picks the session up and a RST after that closes it."""
    t, _ = table({"midstream": False})
    seen = []
    for pkt in (tcp(C, S, 2443, 1212, "PA", 1.0, seq=10, payload=b"MATCH?"),
                tcp(S, C, 1212, 2443, "R", 1.1, seq=99),
                tcp(C, S, 2443, 1212, "PA", 1.2, seq=10, payload=b"MATCH?")):
        f = t.update(pkt)
        seen.append((f.tcp_state, f.established))
    assert seen == [("none", False), ("none", False), ("none", False)]
    t2, _ = table({"midstream": True})
    g = t2.update(tcp(C, S, 2443, 1212, "PA", 1.0, seq=10, payload=b"MATCH?"))
    t2.update(tcp(S, C, 1212, 2443, "R", 1.1, seq=99))
    assert g.tcp_state == "closed"


def test_a_handshake_never_completed_is_not_established() -> None:
    t, _ = table()
    seen = []
    for pkt in (tcp(C, S, 40000, 80, "S", 1.0, seq=1000),
                tcp(S, C, 80, 40000, "SA", 1.1, seq=5000, ack=1001),
                tcp(S, C, 80, 40000, "SA", 1.5, seq=5000, ack=1001),          # retransmitted
                tcp(C, S, 40000, 80, "S", 2.0, seq=1000)):
        seen.append(t.update(pkt).established)
    assert seen == [False, False, False, False]


def test_synack_first_makes_its_receiver_the_client() -> None:
    t, _ = table()
    f = t.update(tcp(S, C, 80, 40000, "SA", 1.0, seq=5000, ack=1001))
    assert (f.client_ip, f.client_port, f.server_ip, f.server_port) == (C, 40000, S, 80)
    assert f.tcp_state == "syn_recv"
    ack = tcp(C, S, 40000, 80, "A", 1.1, seq=1001, ack=5001)
    t.update(ack)
    assert ack.to_server is True and f.tcp_state == "established"
    assert f.pkts_toclient == 1 and f.pkts_toserver == 1


def test_first_packet_without_syn_sets_client_and_midstream_policy() -> None:
    t, _ = table({"midstream": False})
    f = t.update(tcp(C, S, 40000, 80, "PA", 1.0, seq=10, payload=b"data"))
    assert (f.client_ip, f.server_port) == (C, 80)
    assert f.tcp_state == "none" and not f.established       # tracked, not established
    t2, _ = table({"midstream": True})
    g = t2.update(tcp(C, S, 40000, 80, "PA", 1.0, seq=10, payload=b"data"))
    assert g.tcp_state == "established" and not g.established   # picked up: established from the next one
    t2.update(tcp(S, C, 80, 40000, "A", 1.1, seq=99, ack=14))
    assert g.established


def test_stream_size_counts_bytes_per_side_by_sequence() -> None:
    t, _ = table()
    f = handshake(t)                                   # client ISN 1000, server ISN 5000
    t.update(tcp(C, S, 40000, 80, "PA", 101.0, seq=1001, ack=5001, payload=b"G" * 100))
    t.update(tcp(S, C, 80, 40000, "PA", 101.1, seq=5001, ack=1101, payload=b"R" * 1400))
    t.update(tcp(S, C, 80, 40000, "PA", 101.2, seq=6401, ack=1101, payload=b"R" * 600))
    # a retransmission does not count twice
    t.update(tcp(S, C, 80, 40000, "PA", 101.3, seq=5001, ack=1101, payload=b"R" * 1400))
    assert stream_size(f) == (1 + 100, 1 + 2000)       # the SYN takes one sequence number
    t.update(tcp(C, S, 40000, 80, "FA", 102.0, seq=1101, ack=7001))
    assert stream_size(f)[0] == 102


def test_stream_size_survives_sequence_wraparound() -> None:
    t, _ = table()
    isn = 0xFFFFFF00
    t.update(tcp(C, S, 1, 2, "S", 1.0, seq=isn))
    t.update(tcp(S, C, 2, 1, "SA", 1.1, seq=7, ack=isn + 1))
    f = t.update(tcp(C, S, 1, 2, "A", 1.2, seq=isn + 1, ack=8))
    t.update(tcp(C, S, 1, 2, "PA", 1.3, seq=isn + 1, ack=8, payload=b"x" * 1000))
    assert stream_size(f)[0] == 1001


def test_tcp_flags_are_kept_per_direction() -> None:
    t, _ = table()
    f = handshake(t)
    t.update(tcp(C, S, 40000, 80, "PA", 1.0, seq=1001, payload=b"GET /"))
    t.update(tcp(S, C, 80, 40000, "FA", 1.1, seq=5001))
    t.update(tcp(C, S, 40000, 80, "R", 1.2, seq=1006))
    assert f.tcp_flags_ts == 0x02 | 0x10 | 0x08 | 0x04     # S, A, PA, R
    assert f.tcp_flags_tc == 0x12 | 0x01                    # SA, FA


def test_tcp_flags_follow_the_client_when_the_synack_comes_first() -> None:
    t, _ = table()
    f = t.update(tcp(S, C, 80, 40000, "SA", 1.0, seq=5000, ack=1001))
    t.update(tcp(C, S, 40000, 80, "A", 1.1, seq=1001, ack=5001))
    assert (f.tcp_flags_ts, f.tcp_flags_tc) == (0x10, 0x12)
