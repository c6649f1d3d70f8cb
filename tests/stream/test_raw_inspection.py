"""When reassembled stream bytes reach the stream rules: Suricata's raw reassembly.

IDS mode (stream.inline off, `stream.reassembly.raw-inspection: acked`, the
default): a direction's bytes are inspected on that direction's packet once the
receiver acknowledged them and something asks for them (an app-layer message of
that direction completed, a flow without a parser here, the chunk size, the
session closing), or on the flow-end pseudo packet (`pkt_src` "stream (flow
timeout)") with whatever is left, acknowledged or not. Bytes not yet inspected
follow the receiver's overlap policy when re-sent. Inline mode inspects the
chunk around each packet on arrival, so a content still in it matches again.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.all import IP, TCP, Ether  # type: ignore[import-untyped]

from stream_helpers import replay_eve

from netsentry.config import ConfigError, load_config
from netsentry.stream import StreamSettings

CLI, SRV = "10.2.0.1", "10.2.0.2"


def c2s(flags: str, seq: int, ack: int = 0, load: bytes = b"", dport: int = 9000) -> Ether:
    return Ether() / IP(src=CLI, dst=SRV) / TCP(sport=33000, dport=dport, flags=flags, seq=seq, ack=ack) / load


def s2c(flags: str, seq: int, ack: int = 0, load: bytes = b"", sport: int = 9000) -> Ether:
    return Ether() / IP(src=SRV, dst=CLI) / TCP(sport=sport, dport=33000, flags=flags, seq=seq, ack=ack) / load


HANDSHAKE = [c2s("S", 1), s2c("SA", 1000, 2), c2s("A", 2, 1001)]


def _replay(tmp_path: Path, pkts: list[Ether], rules: str, *overrides: str) -> list[dict]:
    return replay_eve(tmp_path, pkts, rules, *overrides)


def _alerts(recs: list[dict], sid: int) -> list[dict]:
    return [r for r in recs if r["event_type"] == "alert" and r["alert"]["signature_id"] == sid]


def _where(recs: list[dict], sid: int) -> list[object]:
    """Where each alert of `sid` was raised: its packet number, or "end" (flow-end pseudo packet)."""
    return [r.get("pcap_cnt", "end") for r in _alerts(recs, sid)]


STREAM_GOOD = 'alert tcp any any -> any any (content:"GOOD"; sid:1;)\n'


def test_unacknowledged_bytes_wait_for_the_ack_then_the_directions_next_packet(tmp_path: Path) -> None:
    pkts = HANDSHAKE + [c2s("PA", 2, 1001, b"GOOD"),     # 4: not acknowledged yet
                        c2s("A", 6, 1001),               # 5: still not acknowledged
                        s2c("A", 1001, 6),               # 6: the server acknowledges it
                        c2s("A", 6, 1001)]               # 7: the client's next packet inspects it
    recs = _replay(tmp_path, pkts, STREAM_GOOD)
    assert _where(recs, 1) == [7]
    (rec,) = _alerts(recs, 1)
    assert rec["payload_printable"] == "GOOD" and rec["stream"] == 1


def test_acknowledged_bytes_without_a_later_packet_go_to_the_flow_end_pseudo_packet(tmp_path: Path) -> None:
    pkts = HANDSHAKE + [c2s("PA", 2, 1001, b"GOOD"), s2c("A", 1001, 6)]
    recs = _replay(tmp_path, pkts, STREAM_GOOD)
    (rec,) = _alerts(recs, 1)
    assert rec["pkt_src"] == "stream (flow timeout)" and "pcap_cnt" not in rec
    assert rec["direction"] == "to_server" and rec["payload_printable"] == "GOOD"


def test_only_the_acknowledged_part_is_inspected_the_rest_at_the_end(tmp_path: Path) -> None:
    pkts = HANDSHAKE + [c2s("PA", 2, 1001, b"GOOD"), c2s("PA", 6, 1001, b"EVIL"),
                        s2c("A", 1001, 6),               # only GOOD acknowledged
                        c2s("A", 10, 1001)]
    rules = STREAM_GOOD + 'alert tcp any any -> any any (content:"EVIL"; sid:2;)\n'
    recs = _replay(tmp_path, pkts, rules)
    assert _where(recs, 1) == [7]
    assert _where(recs, 2) == ["end"]               # never acknowledged: the end takes it anyway


def test_arrival_timing_inspects_on_the_packet_that_brings_the_bytes(tmp_path: Path) -> None:
    pkts = HANDSHAKE + [c2s("PA", 2, 1001, b"GOOD"), s2c("A", 1001, 6), c2s("A", 6, 1001)]
    recs = _replay(tmp_path, pkts, STREAM_GOOD, "stream.reassembly.raw-inspection=arrival")
    assert _where(recs, 1) == [4]


def test_a_one_sided_capture_waits_for_the_flows_end(tmp_path: Path) -> None:
    # the server never sends a packet: nothing is ever acknowledged (Suricata's raw progress
    # never moves; the flow-end pseudo packet takes it: stream-async-6063-cli-03)
    pkts = [c2s("A", 2, 1001, b"GOOD"), c2s("PA", 6, 1001, b"MORE")]
    recs = _replay(tmp_path, pkts, STREAM_GOOD, "stream.midstream=true")
    assert _where(recs, 1) == ["end"]


def test_an_async_oneside_session_counts_its_own_data_as_acknowledged(tmp_path: Path) -> None:
    # stream.async-oneside: Suricata moves the async session's last_ack with the seen side's
    # data, so its bytes reach the stream rules as they arrive (suricata-verify bug-2491-02)
    pkts = [c2s("A", 2, 1001, b"GOOD"), c2s("PA", 6, 1001, b"MORE")]
    recs = _replay(tmp_path, pkts, STREAM_GOOD, "stream.midstream=true", "stream.async-oneside=true")
    assert _where(recs, 1) == [1]


def test_fast_open_data_is_inspected_on_the_syn(tmp_path: Path) -> None:
    syn = Ether() / IP(src=CLI, dst=SRV) / TCP(sport=33000, dport=9000, flags="S", seq=1,
                                                options=[("TFO", b"\x01\x02\x03\x04")]) / b"GOOD"
    pkts = [syn, s2c("SA", 1000, 6), c2s("A", 6, 1001)]
    rules = STREAM_GOOD + 'alert tcp any any -> any any (flags:S; content:"GOOD"; sid:2;)\n'
    recs = _replay(tmp_path, pkts, rules)
    assert _where(recs, 1) == [1] and _where(recs, 2) == [1]


@pytest.mark.parametrize(("policy", "kept"), [
    ("bsd", b"GOOD"), ("windows", b"GOOD"), ("first", b"GOOD"), ("vista", b"GOOD"),
    ("old-linux", b"EVIL"), ("last", b"EVIL"), ("solaris", b"EVIL"), ("hpux11", b"EVIL"),
    ("linux", b"GOOD"),                     # linux: a same-start segment must reach further
])
def test_a_resent_segment_over_uninspected_bytes_follows_the_receivers_policy(
        tmp_path: Path, policy: str, kept: bytes) -> None:
    pkts = HANDSHAKE + [c2s("PA", 2, 1001, b"GOOD"), c2s("PA", 2, 1001, b"EVIL"), s2c("A", 1001, 6)]
    rules = ('alert tcp-stream any any -> any any (content:"GOOD"; sid:1;)\n'
             'alert tcp-stream any any -> any any (content:"EVIL"; sid:2;)\n'
             'alert tcp-pkt any any -> any any (content:"EVIL"; sid:3;)\n')
    recs = _replay(tmp_path, pkts, rules, f"stream.reassembly.policy={policy}", "host-os-policy.windows=[]")
    want, other = (1, 2) if kept == b"GOOD" else (2, 1)
    assert _where(recs, want) == ["end"] and not _alerts(recs, other)
    assert _where(recs, 3) == [5]                   # the packet itself is what it is


def test_a_partial_resend_replaces_only_where_the_policy_says(tmp_path: Path) -> None:
    # "XXDATA" starts inside GOOD (at O): under last it wins there, under bsd it does not
    pkts = HANDSHAKE + [c2s("PA", 2, 1001, b"GOOD"), c2s("PA", 4, 1001, b"XXDATA"), s2c("A", 1001, 10)]
    rules = ('alert tcp-stream any any -> any any (content:"GOODDATA"; sid:1;)\n'
             'alert tcp-stream any any -> any any (content:"GOXXDATA"; sid:2;)\n')
    for policy, sid in (("bsd", 1), ("last", 2)):
        d = tmp_path / policy
        d.mkdir()
        recs = _replay(d, pkts, rules, f"stream.reassembly.policy={policy}", "host-os-policy.windows=[]")
        assert _where(recs, sid) == ["end"], policy
        assert not _alerts(recs, 3 - sid), policy


def test_flow_end_pseudo_packets_log_the_stream_with_its_gaps(tmp_path: Path) -> None:
    # "VERY", 4 bytes never seen, "DATA": all acknowledged, inspected at the end in two pieces
    pkts = HANDSHAKE + [c2s("A", 2, 1001, b"VERY"), c2s("A", 10, 1001, b"DATA"), s2c("A", 1001, 14)]
    rules = ('alert tcp-stream any any -> any any (content:"VERY"; sid:1;)\n'
             'alert tcp-stream any any -> any any (content:"DATA"; sid:2;)\n'
             'alert tcp-stream any any -> any any (content:"VERYDATA"; sid:3;)\n')
    recs = _replay(tmp_path, pkts, rules)
    for sid in (1, 2):
        (rec,) = _alerts(recs, sid)
        assert rec["pkt_src"] == "stream (flow timeout)"
        assert rec["payload_printable"] == "VERY[4 bytes missing]DATA" and rec["stream"] == 1
    assert not _alerts(recs, 3)                     # nothing matches across the gap


def test_unacknowledged_data_before_a_rst_is_inspected_at_the_end_without_a_gap(tmp_path: Path) -> None:
    pkts = HANDSHAKE + [s2c("PA", 1001, 2, b"Please "), s2c("PA", 1008, 2, b"Let Me In!"),
                        c2s("RA", 2, 1008)]
    rules = ('alert tcp any any -> any any (content:"Let Me In"; sid:1;)\n'
             'alert tcp any any -> any any (stream-event:reassembly_seq_gap; sid:2;)\n')
    recs = _replay(tmp_path, pkts, rules)
    (rec,) = _alerts(recs, 1)
    assert rec["pkt_src"] == "stream (flow timeout)" and rec["direction"] == "to_client"
    assert not _alerts(recs, 2)


def test_the_clients_fin_makes_whatever_is_acknowledged_inspected(tmp_path: Path) -> None:
    # HTTP request with no end (no CRLFCRLF): no message completes; the client's FIN closes
    req = b"GET /GOOD HTTP/1.1\r\nHost: x"
    pkts = [c2s("S", 1, dport=80), s2c("SA", 1000, 2, sport=80), c2s("A", 2, 1001, dport=80),
            c2s("PA", 2, 1001, req, dport=80), s2c("A", 1001, 2 + len(req), sport=80),
            c2s("A", 2 + len(req), 1001, dport=80),                 # 6: message incomplete: waits
            c2s("FA", 2 + len(req), 1001, dport=80)]                # 7: closing: inspected
    recs = _replay(tmp_path, pkts, STREAM_GOOD)
    assert _where(recs, 1) == [7]


def test_a_completed_app_layer_message_asks_for_inspection_on_the_senders_next_packet(tmp_path: Path) -> None:
    req = b"GET /GOOD HTTP/1.1\r\nHost: x\r\n\r\n"
    pkts = [c2s("S", 1, dport=80), s2c("SA", 1000, 2, sport=80), c2s("A", 2, 1001, dport=80),
            c2s("PA", 2, 1001, req, dport=80), s2c("A", 1001, 2 + len(req), sport=80),
            c2s("A", 2 + len(req), 1001, dport=80)]
    recs = _replay(tmp_path, pkts, STREAM_GOOD + 'alert http any any -> any any (http.uri; content:"GOOD"; sid:2;)\n')
    assert _where(recs, 1) == [6] and _where(recs, 2) == [6]


def test_the_chunk_size_releases_acknowledged_bytes_of_an_unfinished_message(tmp_path: Path) -> None:
    # an HTTP request that never ends its header: its acknowledged bytes wait for the chunk
    head = b"GET /x HTTP/1.1\r\nX-Pad: " + b"a" * 60
    pkts = [c2s("S", 1, dport=80), s2c("SA", 1000, 2, sport=80), c2s("A", 2, 1001, dport=80),
            c2s("PA", 2, 1001, head, dport=80), c2s("PA", 2 + len(head), 1001, b"GOOD", dport=80),
            s2c("A", 1001, 6 + len(head), sport=80), c2s("A", 6 + len(head), 1001, dport=80)]
    small = _replay(tmp_path, pkts, STREAM_GOOD, "stream.reassembly.toserver-chunk-size=64")
    assert _where(small, 1) == [7]
    d = tmp_path / "default"
    d.mkdir()
    assert _where(_replay(d, pkts, STREAM_GOOD), 1) == ["end"]     # 2560: not reached


@pytest.mark.parametrize("value", ["0", "70000", "lots"])
def test_chunk_size_must_be_a_u16_size(value: str) -> None:
    with pytest.raises(ConfigError, match="stream.reassembly.toserver-chunk-size"):
        StreamSettings.from_config(load_config(None, [f"stream.reassembly.toserver-chunk-size={value}"]))


def test_raw_inspection_names_a_timing() -> None:
    with pytest.raises(ConfigError, match="stream.reassembly.raw-inspection"):
        StreamSettings.from_config(load_config(None, ["stream.reassembly.raw-inspection=later"]))


def test_inline_inspects_the_chunk_around_each_packet(tmp_path: Path) -> None:
    # IPS: a content still within the chunk before a later packet matches again there
    pkts = HANDSHAKE + [c2s("PA", 2, 1001, b"GOOD"), s2c("A", 1001, 6), c2s("PA", 6, 1001, b"more"),
                        c2s("PA", 10, 1001, b"x" * 2600), c2s("PA", 2610, 1001, b"y")]
    recs = _replay(tmp_path, pkts, STREAM_GOOD, "stream.inline=true")
    # 4: its own bytes; 6: GOOD still in the chunk; 7: a packet of a chunk or more gets its
    # payload and a third of a chunk before it: GOOD is in it; 8: 2,600 bytes on, it is not
    assert _where(recs, 1) == [4, 6, 7]


def test_the_suricata_yaml_host_os_policy_and_reassembly_keys_are_used(tmp_path: Path) -> None:
    from netsentry.suricata_config import translate
    doc = {"outputs": [], "host-os-policy": {"old-linux": [SRV]},
           "stream": {"reassembly": {"toserver-chunk-size": 1000, "depth": "2mb", "randomize-chunk-size": True}}}
    config, ignored = translate(doc, tmp_path / "suricata.yaml", ())
    assert config["host-os-policy"] == {"old-linux": [SRV]}
    assert config["stream"]["reassembly"] == {"toserver-chunk-size": 1000, "depth": "2mb"}
    assert ignored == ["stream.reassembly.randomize-chunk-size"]


def test_waiting_pieces_keep_their_extents_after_a_partial_release(tmp_path: Path) -> None:
    # GOOD (stream offsets 0-4) and DATA (4-8) wait; the ACK covers "GO", released on packet 7;
    # a resend from offset 2 then meets "OD", still part of the piece that starts at 0: under
    # linux the new bytes win only over a piece starting where they do, so "OD" stays and
    # "DATA" (starting after them) is replaced
    pkts = HANDSHAKE + [c2s("PA", 2, 1001, b"GOOD"), c2s("PA", 6, 1001, b"DATA"),
                        s2c("A", 1001, 4), c2s("A", 10, 1001),
                        c2s("PA", 4, 1001, b"XXYYZZ")]
    rules = ('alert tcp any any -> any any (content:"GO"; sid:1;)\n'
             'alert tcp any any -> any any (content:"ODYYZZ"; sid:2;)\n'
             'alert tcp-stream any any -> any any (content:"XXYY"; sid:3;)\n')
    recs = _replay(tmp_path, pkts, rules, "stream.reassembly.policy=linux", "host-os-policy.windows=[]")
    assert _where(recs, 1) == [7]
    assert _where(recs, 2) == ["end"] and not _alerts(recs, 3)


def test_a_released_chunk_on_a_bare_ack_is_matched_by_every_kind_of_stream_rule(tmp_path: Path) -> None:
    # the chunk alone, nothing inspected before it, on a packet without payload: a one-content
    # rule, a content chain and an anchored content all see it as that packet's data
    pkts = HANDSHAKE + [c2s("PA", 2, 1001, b"GOOD DATA"), s2c("A", 1001, 11), c2s("A", 11, 1001)]
    rules = (STREAM_GOOD
             + 'alert tcp any any -> any any (content:"GOOD"; content:"DATA"; distance:1; sid:2;)\n'
             + 'alert tcp any any -> any any (content:"GOOD"; depth:4; sid:3;)\n'
             + 'alert tcp any any -> any any (content:"DATA"; depth:4; sid:4;)\n')
    recs = _replay(tmp_path, pkts, rules)
    assert _where(recs, 1) == [6] and _where(recs, 2) == [6]
    # the anchored content reads the packet too (Suricata's SIG_FLAG_REQUIRE_PACKET with
    # _STREAM): its own packet, whose bytes the stream does not offer yet, then the stream
    assert _where(recs, 3) == [4, 6]
    assert not _alerts(recs, 4)
    assert all(r["payload_printable"] == "GOOD DATA" for r in _alerts(recs, 2))


def test_a_packet_rule_beside_the_stream_rules_still_sees_the_bare_ack(tmp_path: Path) -> None:
    # a rule that reads the packet (dsize), in the same group as the stream rule: on the ACK
    # that releases the chunk it judges the ACK's own (empty) payload, not the chunk
    pkts = HANDSHAKE + [c2s("PA", 2, 1001, b"GOOD"), s2c("A", 1001, 6), c2s("A", 6, 1001)]
    rules = STREAM_GOOD + 'alert tcp any any -> any 9000 (dsize:0; flags:A; sid:2;)\n'
    recs = _replay(tmp_path, pkts, rules)
    assert _where(recs, 1) == [6]
    assert 6 in _where(recs, 2) and 4 not in _where(recs, 2)


def test_an_alert_logs_only_the_stream_bytes_not_yet_inspected(tmp_path: Path) -> None:
    # Suricata prunes what raw inspection and the app layer are done with after each packet,
    # and logs what its stream still holds: "HELLO" went on packet 6, so the alert on
    # packet 8 logs "GOOD" alone, though "HELLO" is still in the window detection scans
    pkts = HANDSHAKE + [c2s("PA", 2, 1001, b"HELLO"), s2c("A", 1001, 7), c2s("A", 7, 1001),
                        c2s("PA", 7, 1001, b"GOOD"), s2c("A", 1001, 11), c2s("A", 11, 1001)]
    rules = STREAM_GOOD + 'alert tcp any any -> any any (content:"HELLOGOOD"; sid:2;)\n'
    recs = _replay(tmp_path, pkts, rules)
    assert _where(recs, 1) == [9] and _where(recs, 2) == [9]
    for sid in (1, 2):
        (rec,) = _alerts(recs, sid)
        assert rec["payload_printable"] == "GOOD" and rec["stream"] == 1


def test_http_keeps_inspected_bytes_in_what_an_alert_logs(tmp_path: Path) -> None:
    # HTTP asks the stream to keep a minimal inspect depth (Suricata's
    # StreamTcpReassemblySetMinInspectDepth): the first request is still logged
    one, two = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"
    n1, n2 = len(one), len(two)
    pkts = [c2s("S", 1, dport=80), s2c("SA", 1000, 2, sport=80), c2s("A", 2, 1001, dport=80),
            c2s("PA", 2, 1001, one, dport=80), s2c("A", 1001, 2 + n1, sport=80),
            c2s("A", 2 + n1, 1001, dport=80),
            c2s("PA", 2 + n1, 1001, two, dport=80), s2c("A", 1001, 2 + n1 + n2, sport=80),
            c2s("A", 2 + n1 + n2, 1001, dport=80)]
    recs = _replay(tmp_path, pkts, 'alert tcp any any -> any any (content:"GET /b"; sid:1;)\n')
    (rec,) = _alerts(recs, 1)
    assert rec["payload_printable"] == (one + two).decode() and rec["stream"] == 1
