"""One-sided TCP sessions (asymmetric routing): `stream.async-oneside` and SYN/ACK pickups.

When the sensor sees only one direction of a session, the other side's answer
never arrives: a client's SYN is followed by its own ACK, or a server's SYN/ACK
by its own ACK and response. As Suricata, with `stream.async-oneside: true`
that ACK establishes the session, so `flow:established` rules see its data;
without it the client-only session stays unestablished. A session picked up
midstream from its SYN/ACK (`stream.midstream: true`, IDS mode) is established
by the server's ACK either way (the client's ACK was missed).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.all import IP, TCP, Ether, wrpcap  # type: ignore[import-untyped]

from netsentry.config import ConfigError, load_config
from stream_helpers import alerts_of, replay_events

RULES = (
    'alert tcp any any -> any 80 (msg:"request"; flow:established,to_server; content:"GET /a"; sid:1;)\n'
    'alert tcp any 80 -> any any (msg:"response"; flow:established,to_client; content:"200 OK"; sid:2;)\n'
)
CLI, SRV = "10.0.0.1", "10.0.0.2"


def _client_only(path: Path) -> Path:
    c = Ether() / IP(src=CLI, dst=SRV)
    pkts = [c / TCP(sport=40000, dport=80, flags="S", seq=100),
            c / TCP(sport=40000, dport=80, flags="A", seq=101, ack=9001),
            c / TCP(sport=40000, dport=80, flags="PA", seq=101, ack=9001) / b"GET /a HTTP/1.1\r\n\r\n"]
    wrpcap(str(path / "cli.pcap"), pkts)
    return path / "cli.pcap"


def _server_only(path: Path) -> Path:
    s = Ether() / IP(src=SRV, dst=CLI)
    pkts = [s / TCP(sport=80, dport=40000, flags="SA", seq=9000, ack=101),
            s / TCP(sport=80, dport=40000, flags="A", seq=9001, ack=101),
            s / TCP(sport=80, dport=40000, flags="PA", seq=9001, ack=120) / b"HTTP/1.1 200 OK\r\n\r\n"]
    wrpcap(str(path / "srv.pcap"), pkts)
    return path / "srv.pcap"


def _alerts(tmp_path: Path, pcap: Path, *overrides: str) -> list[tuple[int, int]]:
    rules = tmp_path / "t.rules"
    rules.write_text(RULES)
    # which packet a stream match names is the subject: inspected on arrival
    out, _sensor = replay_events(pcap, rules, overrides=("stream.reassembly.raw-inspection=arrival", *overrides))
    return alerts_of(out)


@pytest.mark.parametrize("async_oneside, expected", [("true", [(3, 1)]), ("false", [])])
def test_client_only_session_is_established_by_its_ack_only_with_async_oneside(
        tmp_path: Path, async_oneside: str, expected: list[tuple[int, int]]) -> None:
    assert _alerts(tmp_path, _client_only(tmp_path), f"stream.async-oneside={async_oneside}") == expected


def test_client_ack_at_another_sequence_number_is_not_async(tmp_path: Path) -> None:
    c = Ether() / IP(src=CLI, dst=SRV)
    pkts = [c / TCP(sport=40000, dport=80, flags="S", seq=100),
            c / TCP(sport=40000, dport=80, flags="A", seq=5000, ack=9001),
            c / TCP(sport=40000, dport=80, flags="PA", seq=5000, ack=9001) / b"GET /a HTTP/1.1\r\n\r\n"]
    wrpcap(str(tmp_path / "x.pcap"), pkts)
    assert _alerts(tmp_path, tmp_path / "x.pcap", "stream.async-oneside=true") == []


@pytest.mark.parametrize("overrides", [["stream.async-oneside=true"],
                                       ["stream.midstream=true"],
                                       ["stream.midstream=true", "stream.async-oneside=true"]],
                         ids=["async", "synack-pickup", "both"])
def test_server_only_session_is_established_by_the_servers_ack(tmp_path: Path, overrides: list[str]) -> None:
    assert _alerts(tmp_path, _server_only(tmp_path), *overrides) == [(3, 2)]


def test_server_only_session_without_either_setting_stays_unestablished(tmp_path: Path) -> None:
    assert _alerts(tmp_path, _server_only(tmp_path)) == []


def test_async_oneside_must_be_a_boolean() -> None:
    with pytest.raises(ConfigError, match="stream.async-oneside: expected a boolean"):
        load_config(None, ["anomaly.enabled=false", "stream.async-oneside=maybe"])


def test_handshake_completed_by_an_ack_with_data_is_established_for_that_packet(tmp_path: Path) -> None:
    """The client's bare ACK is missing: its first data segment completes the handshake and
    is already established (Suricata's SYN_RECV special case), so flow:established rules
    see it; a midstream pickup's first segment still is not."""
    c, s = Ether() / IP(src=CLI, dst=SRV), Ether() / IP(src=SRV, dst=CLI)
    request = b"GET /a HTTP/1.1\r\n\r\n"
    pkts = [c / TCP(sport=40000, dport=80, flags="S", seq=100),
            s / TCP(sport=80, dport=40000, flags="SA", seq=9000, ack=101),
            c / TCP(sport=40000, dport=80, flags="PA", seq=101, ack=9001) / request]
    wrpcap(str(tmp_path / "h.pcap"), pkts)
    assert _alerts(tmp_path, tmp_path / "h.pcap") == [(3, 1)]
    wrpcap(str(tmp_path / "m.pcap"), [pkts[2]])
    assert _alerts(tmp_path, tmp_path / "m.pcap", "stream.midstream=true") == []
