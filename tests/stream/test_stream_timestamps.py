"""A forged reply to a SYN that echoes a timestamp the SYN never sent (bug 3286's evasion).

An attacker on the path answers the client's SYN with a RST or FIN carrying a
made-up timestamp echo, hoping the sensor drops the session the client's TCP
stack keeps. As Suricata (StateSynSentValidateTimestamp), such a packet raises
`stream.pkt_invalid_timestamp` (a `stream-event` rule sees it, the
`stream.pkt_invalid_timestamp` counter counts it), is not taken by the session,
and the real SYN/ACK and request that follow are still followed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.all import IP, TCP, Ether, wrpcap  # type: ignore[import-untyped]

from stream_helpers import alerts_of, replay_events

RULES = (
    'alert tcp any any -> any any (msg:"bad ts"; stream-event:pkt_invalid_timestamp; sid:1;)\n'
    'alert tcp any any -> any any (msg:"request"; flow:established,to_server; content:"GET /secret"; sid:2;)\n'
)
CLI, SRV = "10.0.0.1", "10.0.0.2"


def _capture(path: Path, syn_ts: tuple[int, int] | None, forged_echo: int) -> Path:
    """SYN (with or without a timestamp), a forged RST/ACK and FIN/ACK echoing `forged_echo`,
    then the real handshake and a request."""
    def c2s(flags: str, seq: int, ack: int = 0, load: bytes = b"", ts: tuple[int, int] | None = None) -> Ether:
        opts = [("Timestamp", ts)] if ts else []
        return Ether() / IP(src=CLI, dst=SRV) / TCP(sport=40000, dport=80, flags=flags, seq=seq, ack=ack,
                                                    options=opts) / load

    def s2c(flags: str, seq: int, ack: int, ts: tuple[int, int] | None = None) -> Ether:
        opts = [("Timestamp", ts)] if ts else []
        return Ether() / IP(src=SRV, dst=CLI) / TCP(sport=80, dport=40000, flags=flags, seq=seq, ack=ack,
                                                    options=opts)

    isn = 1000
    real_ts = (syn_ts[0] + 5, syn_ts[0]) if syn_ts else None
    pkts = [
        c2s("S", isn, ts=syn_ts),
        s2c("RA", 0, isn + 1, ts=(100, forged_echo)),
        s2c("FA", 0, isn + 1, ts=(100, forged_echo)),
        s2c("SA", 5000, isn + 1, ts=real_ts),
        c2s("A", isn + 1, 5001),
        c2s("PA", isn + 1, 5001, b"GET /secret HTTP/1.1\r\nHost: x\r\n\r\n"),
    ]
    out = path / "ts.pcap"
    wrpcap(str(out), pkts)
    return out


def _run(tmp_path: Path, pcap: Path) -> tuple[list[tuple[int, int]], dict[str, int]]:
    rules = tmp_path / "t.rules"
    rules.write_text(RULES)
    out, sensor = replay_events(pcap, rules, overrides=("stream.reassembly.raw-inspection=arrival",))
    alerts = alerts_of(out)
    anomalies = [e for e in out.events if e.event_type == "anomaly"]
    assert not anomalies, "stream events are not decoder anomalies"
    return alerts, sensor.stream.stats()


@pytest.mark.parametrize("syn_ts, echo", [((7000, 0), 100), (None, 100)],
                         ids=["syn-with-timestamp-wrong-echo", "syn-without-timestamp-echo"])
def test_forged_replies_to_a_syn_raise_the_event_and_the_session_goes_on(
        tmp_path: Path, syn_ts: tuple[int, int] | None, echo: int) -> None:
    alerts, stats = _run(tmp_path, _capture(tmp_path, syn_ts, echo))
    assert alerts == [(2, 1), (3, 1), (6, 2)]
    assert stats["stream.pkt_invalid_timestamp"] == 2


@pytest.mark.parametrize("syn_ts, echo", [((7000, 0), 7000), ((7000, 0), 0), ((0, 0), 100)],
                         ids=["echo-of-the-syn", "no-echo", "syn-timestamp-zero"])
def test_replies_echoing_what_the_syn_sent_are_valid(tmp_path: Path, syn_ts: tuple[int, int], echo: int) -> None:
    alerts, stats = _run(tmp_path, _capture(tmp_path, syn_ts, echo))
    assert [a for a in alerts if a[1] == 1] == []
    assert stats.get("stream.pkt_invalid_timestamp", 0) == 0
