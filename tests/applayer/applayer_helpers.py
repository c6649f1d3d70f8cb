"""Crafted captures (scapy) and an in-process replay for the app-layer tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from netsentry.capture import read_captures
from netsentry.config import load_config
from netsentry.output.eve import render
from netsentry.rules.loader import load_rules
from netsentry.sensor import Sensor
from netsentry.output.memory import MemoryOutput as Collect

T0 = 1_800_000_000.0
CLIENT, SERVER = "10.0.0.5", "192.0.2.80"
SCHEMA = Path(__file__).resolve().parents[2] / ".." / "shared" / "eve-schema" / "schema.json"


def tcp_session(path: Path, exchanges: list[tuple[bool, bytes]], *, sport: int = 40001, dport: int = 80,
                segment: int = 0, client: str = CLIENT, server: str = SERVER) -> Path:
    """A whole TCP connection: handshake, each (to_server, data) as segments of at most
    `segment` bytes (0: one segment), each ACKed by the other side, then FIN/ACK both ways."""
    eth = Ether(src="00:11:22:33:44:55", dst="66:77:88:99:aa:bb")
    c2s = eth / IP(src=client, dst=server)
    s2c = eth / IP(src=server, dst=client)
    cseq, sseq = 1000, 5000
    frames = [c2s / TCP(sport=sport, dport=dport, flags="S", seq=cseq),
              s2c / TCP(sport=dport, dport=sport, flags="SA", seq=sseq, ack=cseq + 1)]
    cseq += 1
    sseq += 1
    frames.append(c2s / TCP(sport=sport, dport=dport, flags="A", seq=cseq, ack=sseq))
    for to_server, data in exchanges:
        step = segment or len(data)
        for i in range(0, len(data), step):
            chunk = data[i:i + step]
            if to_server:
                frames.append(c2s / TCP(sport=sport, dport=dport, flags="PA", seq=cseq, ack=sseq) / Raw(chunk))
                cseq += len(chunk)
                frames.append(s2c / TCP(sport=dport, dport=sport, flags="A", seq=sseq, ack=cseq))
            else:
                frames.append(s2c / TCP(sport=dport, dport=sport, flags="PA", seq=sseq, ack=cseq) / Raw(chunk))
                sseq += len(chunk)
                frames.append(c2s / TCP(sport=sport, dport=dport, flags="A", seq=cseq, ack=sseq))
    frames += [c2s / TCP(sport=sport, dport=dport, flags="FA", seq=cseq, ack=sseq),
               s2c / TCP(sport=dport, dport=sport, flags="FA", seq=sseq, ack=cseq + 1),
               c2s / TCP(sport=sport, dport=dport, flags="A", seq=cseq + 1, ack=sseq + 1)]
    for i, f in enumerate(frames):
        f.time = T0 + i * 0.01
    wrpcap(str(path), frames)
    return path


def udp_exchange(path: Path, datagrams: list[tuple[bool, bytes]], *, sport: int = 40002, dport: int = 53) -> Path:
    eth = Ether(src="00:11:22:33:44:55", dst="66:77:88:99:aa:bb")
    frames = []
    for to_server, data in datagrams:
        if to_server:
            frames.append(eth / IP(src=CLIENT, dst=SERVER) / UDP(sport=sport, dport=dport) / Raw(data))
        else:
            frames.append(eth / IP(src=SERVER, dst=CLIENT) / UDP(sport=dport, dport=sport) / Raw(data))
    for i, f in enumerate(frames):
        f.time = T0 + i * 0.01
    wrpcap(str(path), frames)
    return path


def replay(tmp_path: Path, pcap: Path, rules: str, *overrides: str, suricata: Path | None = None) -> list[dict[str, Any]]:
    """EVE records (as dicts, JSON round-tripped) of `pcap` replayed with `rules` (and a
    Suricata suricata.yaml, when given, applied before the overrides)."""
    config = load_config(None, ["outputs.eve-log.types=[alert, drop, flow, http, dns, tls]", *overrides],
                         suricata=suricata)
    rf = tmp_path / "t.rules"
    rf.write_text(rules)
    ruleset = load_rules([rf], config)
    assert not ruleset.errors, ruleset.errors
    out = Collect()
    sensor = Sensor(config, [out], ruleset)
    sensor.run(read_captures([str(pcap)]))
    sensor.finish()
    return [json.loads(json.dumps(render(e), default=str)) for e in out.events if e.event_type != "stats"]


def alerts(records: list[dict[str, Any]], sid: int | None = None) -> list[dict[str, Any]]:
    return [r for r in records if r["event_type"] == "alert" and (sid is None or r["alert"]["signature_id"] == sid)]


def hits(records: list[dict[str, Any]], sid: int) -> list[int]:
    """The packet numbers rule `sid` alerted on, in order."""
    return [r["pcap_cnt"] for r in alerts(records, sid)]
