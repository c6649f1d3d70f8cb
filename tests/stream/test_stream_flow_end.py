"""Stream data detection has not seen when the flow ends, and what EVE logs for stream matches.

Detection inspects a direction's stream on that direction's packets. Data can
reach the stream through the other direction's packet (the receiver's ACK
declares a hole lost, and the data held behind it goes through), or sit out of
order behind a hole nobody fills. As Suricata's flow-timeout reassembly, such
data is inspected when the flow ends by a pseudo packet (`pkt_src` "stream
(flow timeout)", no `pcap_cnt`), which packet-only rules never see.

EVE (Suricata's alert payload options): a stream match logs the stream data it
was made on, with "[N bytes missing]" where a gap precedes it, and `stream: 1`;
a packet match logs the packet's payload and `stream: 0`.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from scapy.all import IP, TCP, Ether  # type: ignore[import-untyped]

from stream_helpers import replay_eve

from netsentry.config import ConfigError, load_config
from netsentry.output import OutputContext, open_outputs

CLI, SRV = "10.1.0.1", "10.1.0.2"


def c2s(flags: str, seq: int, ack: int = 0, load: bytes = b"") -> Ether:
    return Ether() / IP(src=CLI, dst=SRV) / TCP(sport=33000, dport=9000, flags=flags, seq=seq, ack=ack) / load


def s2c(flags: str, seq: int, ack: int = 0, load: bytes = b"") -> Ether:
    return Ether() / IP(src=SRV, dst=CLI) / TCP(sport=9000, dport=33000, flags=flags, seq=seq, ack=ack) / load


HANDSHAKE = [c2s("S", 1), s2c("SA", 1000, 2), c2s("A", 2, 1001)]


def _replay(tmp_path: Path, pkts: list[Ether], rules: str, *overrides: str) -> list[dict]:
    return replay_eve(tmp_path, pkts, rules, *overrides)


def _by_sid(recs: list[dict]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for r in recs:
        if r["event_type"] == "alert":
            out.setdefault(r["alert"]["signature_id"], []).append(r)
    return out


LEADING_GAP_RULES = (
    'alert tcp-stream any any -> any any (content:"GOOD"; sid:1;)\n'
    'alert tcp-stream any any -> any any (content:"GOODDATA"; sid:2;)\n'
    'alert tcp-pkt any any -> any any (content:"GOOD"; sid:3;)\n'
    'alert tcp-stream any any -> any any (content:"LOSTGOOD"; sid:4;)\n'
    'alert tcp any any -> any any (flow:established; sid:5;)\n'
)
# "LOST" (seq 2-5) never seen; the server acknowledges everything: the hole is a gap
LEADING_GAP = HANDSHAKE + [c2s("A", 6, 1001, b"GOOD"), c2s("A", 10, 1001, b"DATA"), s2c("A", 1001, 14)]


def test_data_an_ack_let_through_is_inspected_when_the_flow_ends(tmp_path: Path) -> None:
    alerts = _by_sid(_replay(tmp_path, LEADING_GAP, LEADING_GAP_RULES))
    (goods,) = alerts[1]
    assert goods["pkt_src"] == "stream (flow timeout)" and "pcap_cnt" not in goods
    assert goods["direction"] == "to_server" and goods["src_ip"] == CLI and goods["dest_port"] == 9000
    assert goods["payload_printable"] == "[4 bytes missing]GOODDATA" and goods["stream"] == 1
    assert base64.b64decode(goods["payload"]) == b"[4 bytes missing]GOODDATA"
    assert len(alerts[2]) == 1                              # GOOD and DATA joined in the stream
    assert 4 not in alerts                                  # nothing matches across the gap
    (pkt_match,) = alerts[3]                                # the packet match: its own payload
    assert pkt_match["pcap_cnt"] == 4 and pkt_match["payload_printable"] == "GOOD" and pkt_match["stream"] == 0
    # packet rules do not run on the pseudo packet (Suricata skips them on flow-end packets)
    assert all(r["pkt_src"] == "wire/pcap" for r in alerts[5])


def test_data_let_through_is_inspected_on_its_directions_next_packet(tmp_path: Path) -> None:
    # the gap before them failed protocol detection: no parser asks for raw inspection
    # (Suricata: only parsers do), so the bytes go once a chunk's worth is acknowledged
    pkts = LEADING_GAP + [c2s("A", 14, 1001)]
    alerts = _by_sid(_replay(tmp_path, pkts, LEADING_GAP_RULES, "stream.reassembly.toserver-chunk-size=8"))
    (goods,) = alerts[1]
    assert goods["pcap_cnt"] == 7 and goods["pkt_src"] == "wire/pcap" and goods["stream"] == 1
    d = tmp_path / "default"
    d.mkdir()
    (goods,) = _by_sid(_replay(d, pkts, LEADING_GAP_RULES))[1]      # 2560: the flow's end
    assert goods["pkt_src"] == "stream (flow timeout)"


def test_data_held_behind_a_hole_nobody_filled_is_inspected_when_the_flow_ends(tmp_path: Path) -> None:
    # "LOST" never arrives and is never acknowledged: held out of order until the end
    pkts = HANDSHAKE + [c2s("A", 6, 1001, b"GOOD"), c2s("A", 10, 1001, b"DATA"),
                        c2s("A", 20, 1001, b"MORE")]
    rules = LEADING_GAP_RULES + 'alert tcp-stream any any -> any any (content:"DATAMORE"; sid:6;)\n'
    recs = _replay(tmp_path, pkts, rules)
    alerts = _by_sid(recs)
    # the pseudo packets log their direction's stream: every piece, each gap marked
    assert [r["payload_printable"] for r in alerts[2]] == ["[4 bytes missing]GOODDATA[6 bytes missing]MORE"]
    assert 6 not in alerts                                  # 6 bytes missing between DATA and MORE
    assert all(r["pkt_src"] == "stream (flow timeout)" for r in alerts[1] + alerts[2])


def test_in_order_stream_match_logs_the_stream_window(tmp_path: Path) -> None:
    # IDS: inspected once acknowledged, on the client's next packet (7)
    pkts = HANDSHAKE + [c2s("PA", 2, 1001, b"HELLO "), c2s("PA", 8, 1001, b"WORLD"), s2c("A", 1001, 13),
                        c2s("A", 13, 1001)]
    rules = ('alert tcp any any -> any any (content:"HELLO WORLD"; sid:1;)\n'
             'alert tcp-pkt any any -> any any (content:"WORLD"; sid:2;)\n')
    alerts = _by_sid(_replay(tmp_path, pkts, rules))
    (stream,) = alerts[1]
    assert stream["pcap_cnt"] == 7 and stream["payload_printable"] == "HELLO WORLD" and stream["stream"] == 1
    (pkt,) = alerts[2]
    assert pkt["payload_printable"] == "WORLD" and pkt["stream"] == 0


def test_payload_buffer_size_caps_the_logged_stream_data(tmp_path: Path) -> None:
    pkts = HANDSHAKE + [c2s("PA", 2, 1001, b"A" * 100), c2s("PA", 102, 1001, b"NEEDLE")]
    rules = 'alert tcp any any -> any any (content:"NEEDLE"; sid:1;)\n'
    (rec,) = _by_sid(_replay(tmp_path, pkts, rules, "outputs.eve-log.alert.payload-buffer-size=64"))[1]
    assert rec["payload_printable"] == "A" * 64


@pytest.mark.parametrize("value", ["0", "lots"])
def test_payload_buffer_size_must_be_a_size(tmp_path: Path, value: str) -> None:
    config = load_config(None, ["anomaly.enabled=false", f"outputs.eve-log.alert.payload-buffer-size={value}"])
    with pytest.raises(ConfigError, match="outputs.eve-log.alert.payload-buffer-size"):
        open_outputs(config["outputs"], OutputContext(logdir=tmp_path))


def test_payload_buffer_size_takes_a_number_or_a_size_text(tmp_path: Path) -> None:
    path = tmp_path / "n.yaml"
    for value, want in (("4096", 4096), ("2kb", 2048)):
        path.write_text(f"outputs:\n  eve-log:\n    alert:\n      payload-buffer-size: {value}\n")
        config = load_config(path, [])
        (out,) = open_outputs({"eve-log": config["outputs"]["eve-log"]}, OutputContext(logdir=tmp_path))
        assert out._payload_limit == want
        out.close()


# --- inline (IPS) mode: a segment re-sending held bytes goes on as the stream's bytes ---------

RESEND_RULES = ('alert tcp-stream any any -> any any (content:"GOOD"; sid:1;)\n'
                'alert tcp-stream any any -> any any (content:"EVIL"; sid:2;)\n'
                'alert tcp-pkt any any -> any any (content:"GOOD"; sid:3;)\n'
                'alert tcp-pkt any any -> any any (content:"EVIL"; sid:4;)\n')


def test_inline_overlap_with_different_bytes_is_rewritten_to_the_streams(tmp_path: Path) -> None:
    from scapy.all import raw  # type: ignore[import-untyped]
    good = c2s("A", 2, 1001, b"GOOD")
    pkts = HANDSHAKE + [good, c2s("A", 2, 1001, b"EVIL"), s2c("A", 1001, 6)]
    recs = _replay(tmp_path, pkts, RESEND_RULES, "stream.inline=true", "outputs.eve-log.alert.packet=true")
    alerts = _by_sid(recs)
    assert 2 not in alerts and 4 not in alerts                       # EVIL never goes on, nor matches
    assert [r["pcap_cnt"] for r in alerts[1]] == [4, 5]             # the stream range inspected again
    assert [r["pcap_cnt"] for r in alerts[3]] == [4, 5]
    # the rewritten segment is byte for byte the original one, TCP checksum included
    assert {base64.b64decode(r["packet"]) for r in alerts[3]} == {raw(Ether(raw(good)))}


def test_inline_partial_overlap_keeps_the_streams_bytes(tmp_path: Path) -> None:
    pkts = HANDSHAKE + [c2s("A", 2, 1001, b"GOOD"), c2s("A", 4, 1001, b"XXDATA"), s2c("A", 1001, 10)]
    rules = ('alert tcp-pkt any any -> any any (content:"ODDATA"; sid:1;)\n'
             'alert tcp-stream any any -> any any (content:"GOODDATA"; sid:2;)\n')
    alerts = _by_sid(_replay(tmp_path, pkts, rules, "stream.inline=true"))
    assert [r["pcap_cnt"] for r in alerts[1]] == [5] and [r["pcap_cnt"] for r in alerts[2]] == [5]


def test_ids_mode_leaves_a_resent_segment_alone(tmp_path: Path) -> None:
    pkts = HANDSHAKE + [c2s("A", 2, 1001, b"GOOD"), c2s("A", 2, 1001, b"EVIL"), s2c("A", 1001, 6)]
    alerts = _by_sid(_replay(tmp_path, pkts, RESEND_RULES))
    # the stream keeps GOOD (bsd: a segment at the same start does not replace it), inspected
    # at the flow's end (no client packet after the ACK); EVIL only as a packet
    assert [r.get("pkt_src") for r in alerts[1]] == ["stream (flow timeout)"]
    assert [r["pcap_cnt"] for r in alerts[4]] == [5] and 2 not in alerts
