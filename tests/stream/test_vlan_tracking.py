"""vlan.use-for-tracking (Suricata's key): whether VLAN ids are part of a flow's key.

Where a router tags only one direction of a conversation (or rewrites the tag),
the two directions carry different VLAN ids. With the default (true) they are
two flows, as Suricata; with false they are one flow, so the session is
reassembled and its app layer parsed. The flow still reports its first
packet's VLAN ids.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.all import IP, TCP, Dot1Q, Ether, wrpcap  # type: ignore[import-untyped]

from stream_helpers import alerts_of, replay_events

CLI, SRV = "10.0.0.1", "10.0.0.2"
REQ = b"GET /secret HTTP/1.1\r\nHost: x\r\n\r\n"
RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
RULES = ('alert http any any -> any any (flow:to_client; http.stat_code; content:"200"; sid:1;)\n'
         'alert http any any -> any any (flow:to_server; http.uri; content:"/secret"; sid:2;)\n')


def _capture(tmp_path: Path) -> Path:
    def c2s(flags: str, seq: int, ack: int, load: bytes = b"") -> Ether:
        return Ether() / Dot1Q(vlan=3136) / IP(src=CLI, dst=SRV) / TCP(sport=40000, dport=80, flags=flags,
                                                                       seq=seq, ack=ack) / load

    def s2c(flags: str, seq: int, ack: int, load: bytes = b"") -> Ether:     # untagged
        return Ether() / IP(src=SRV, dst=CLI) / TCP(sport=80, dport=40000, flags=flags, seq=seq, ack=ack) / load

    pkts = [c2s("S", 100, 0), s2c("SA", 500, 101), c2s("A", 101, 501), c2s("PA", 101, 501, REQ),
            s2c("PA", 501, 101 + len(REQ), RESP), c2s("A", 101 + len(REQ), 501 + len(RESP)),
            c2s("FA", 101 + len(REQ), 501 + len(RESP)), s2c("FA", 501 + len(RESP), 102 + len(REQ)),
            c2s("A", 102 + len(REQ), 502 + len(RESP))]
    path = tmp_path / "vlan.pcap"
    wrpcap(str(path), pkts)
    return path


@pytest.mark.parametrize("tracking, flows", [("true", 2), ("false", 1)])
def test_vlan_ids_in_the_flow_key(tmp_path: Path, tracking: str, flows: int) -> None:
    """Tracked by VLAN, the server's side is a flow of its own that starts at a SYN/ACK
    (not followed without stream.midstream): its response is never parsed."""
    rules = tmp_path / "t.rules"
    rules.write_text(RULES)
    out, sensor = replay_events(_capture(tmp_path), rules, overrides=(f"vlan.use-for-tracking={tracking}",))
    assert sensor.result.flows == flows
    sids = {sid for _, sid in alerts_of(out)}
    assert (1 in sids) == (tracking == "false")
    if tracking == "false":
        assert sids == {1, 2}
        alert = next(e for e in out.events if e.event_type == "alert")
        assert alert.flow.vlan == (3136,)          # the first packet's ids


def test_bad_value_is_a_config_error(tmp_path: Path) -> None:
    from netsentry.config import ConfigError
    rules = tmp_path / "t.rules"
    rules.write_text(RULES)
    with pytest.raises(ConfigError, match="use-for-tracking"):
        replay_events(_capture(tmp_path), rules, overrides=("vlan.use-for-tracking=maybe",))
