"""Action order and scope as Suricata applies them (suricata-verify util-action-*,
bug-4663): which packets a pass or drop reaches, whole sensor runs over crafted
packets (raw IP, link type 101).

- A pass or drop matched on data that is not stream data (a SYN's payload without
  TCP Fast Open, data after a SYN nothing answered) is a packet match of a
  stream-capable rule: it acts on the packet only, later packets are inspected.
- With `action-order` putting drop before pass, a pass that matches a packet already
  dropped ends the packet's alerts but is not applied: the flow is not passed, so an
  IP-only drop keeps dropping it.
"""

from __future__ import annotations

from pathlib import Path

from scapy.layers.inet import ICMP, IP, TCP

from netsentry.config import load_config
from netsentry.output.eve import render
from netsentry.output.memory import MemoryOutput
from netsentry.rules import load_rules
from netsentry.sensor import Sensor

C, S = "192.168.1.5", "192.168.1.1"
DROP_FIRST = "detect.action-order=[drop, pass, reject, alert]"


def run(tmp_path: Path, rules: str, frames: list[bytes], *sets: str) -> list[dict]:
    rf = tmp_path / "t.rules"
    rf.write_text(rules)
    cfg = load_config(None, list(sets))
    out = MemoryOutput()
    sensor = Sensor(cfg, [out], load_rules([str(rf)], cfg))
    sensor.run([(1_700_000_000.0 + i * 0.01, f, len(f), 101) for i, f in enumerate(frames)])
    sensor.finish()
    return [render(e) for e in out.events]


def sids_by_packet(records: list[dict]) -> list[tuple[int, int]]:
    return sorted((r["pcap_cnt"], r["alert"]["signature_id"]) for r in records if r["event_type"] == "alert")


def syn_data_frames(server_text: bytes = b"wo!\r\n") -> list[bytes]:
    """A SYN carrying data, a SYN back from the server carrying data, then the client's
    data without any SYN/ACK (scapy's default flags are S): no stream data at all."""
    return [bytes(IP(src=C, dst=S) / TCP(sport=41424, dport=80, flags="S") / b"Hi all!\r\n"),
            bytes(IP(src=S, dst=C) / TCP(sport=80, dport=41424, flags="S") / server_text),
            bytes(IP(src=C, dst=S) / TCP(sport=41424, dport=80, flags="PA") / b"Hi all!\r\n")]


def test_pass_on_a_packet_match_passes_the_packet_only(tmp_path: Path) -> None:
    rules = ('alert ip any any -> any any (content:"Hi all"; sid:1;)\n'
             'pass ip any any -> any any (content:"wo"; sid:2;)\n'
             'alert ip any any -> any any (content:"Hi all"; sid:3;)\n')
    recs = run(tmp_path, rules, syn_data_frames())
    # packet 2 is passed; packet 3 is inspected again and alerts
    assert sids_by_packet(recs) == [(1, 1), (1, 3), (3, 1), (3, 3)]
    flow = next(r for r in recs if r["event_type"] == "flow")
    assert flow["flow"].get("action") is None


def test_drop_on_a_packet_match_drops_the_packet_only(tmp_path: Path) -> None:
    rules = ('pass tcp any any -> any any (sid:1;)\n'
             'drop tcp any any -> any any (content:"Hi all"; sid:2;)\n'
             'alert tcp any any -> any any (sid:3;)\n')
    recs = run(tmp_path, rules, syn_data_frames(b"Hi all!\r\n"), "stream.inline=true", DROP_FIRST)
    # every packet: the drop first (action-order), then the IP-only pass ends the
    # packet's alerts without passing the flow, so sid 3 never alerts
    assert sids_by_packet(recs) == [(1, 2), (2, 2), (3, 2)]
    assert all(r["alert"]["action"] == "blocked" for r in recs if r["event_type"] == "alert")
    drops = [r for r in recs if r["event_type"] == "drop"]
    assert [r["pcap_cnt"] for r in drops] == [1, 2, 3]


def test_pass_after_a_drop_does_not_pass_the_flow(tmp_path: Path) -> None:
    frames = []
    for i in range(3):
        frames.append(bytes(IP(src=C, dst="8.8.8.8") / ICMP(type=8, id=7, seq=i) / b"ping"))
        frames.append(bytes(IP(src="8.8.8.8", dst=C) / ICMP(type=0, id=7, seq=i) / b"ping"))
    rules = ('drop icmp any any -> 8.8.8.8 any (msg:"Drop ICMP"; sid:10002;)\n'
             'pass ip any any -> any any (msg:"Pass IP"; sid:1004;)\n')
    recs = run(tmp_path, rules, frames, "stream.inline=true", DROP_FIRST,
               "outputs.eve-log.drop.flows=all")
    flow = next(r for r in recs if r["event_type"] == "flow")
    assert flow["flow"]["action"] == "drop"
    # the IP-only drop dropped the flow on its first packet: every packet is dropped
    assert [r["pcap_cnt"] for r in recs if r["event_type"] == "drop"] == [1, 2, 3, 4, 5, 6]
    assert sids_by_packet(recs) == [(1, 10002)]


def test_pass_first_still_passes_the_flow(tmp_path: Path) -> None:
    """Default action-order (pass first): the IP-only pass passes the flow, nothing drops."""
    frames = [bytes(IP(src=C, dst="8.8.8.8") / ICMP(type=8, id=7, seq=i) / b"ping") for i in range(3)]
    rules = ('drop icmp any any -> 8.8.8.8 any (sid:10002;)\n'
             'pass ip any any -> any any (sid:1004;)\n')
    recs = run(tmp_path, rules, frames, "stream.inline=true")
    assert not [r for r in recs if r["event_type"] in ("drop", "alert")]
    flow = next(r for r in recs if r["event_type"] == "flow")
    assert flow["flow"]["action"] == "pass"


def test_stream_match_after_the_handshake_still_passes_the_flow(tmp_path: Path) -> None:
    """The same pass rule matched on stream data (an established session) is flow-scoped."""
    c = lambda **kw: IP(src=C, dst=S) / TCP(sport=41424, dport=80, **kw)      # noqa: E731
    s = lambda **kw: IP(src=S, dst=C) / TCP(sport=80, dport=41424, **kw)      # noqa: E731
    frames = [bytes(f) for f in (
        c(flags="S", seq=99), s(flags="SA", seq=499, ack=100), c(flags="A", seq=100, ack=500),
        c(flags="PA", seq=100, ack=500) / b"wo!\r\n", s(flags="A", seq=500, ack=105),
        c(flags="PA", seq=105, ack=500) / b"Hi all!\r\n")]
    rules = ('pass ip any any -> any any (content:"wo"; sid:2;)\n'
             'alert ip any any -> any any (content:"Hi all"; sid:3;)\n')
    recs = run(tmp_path, rules, frames, "stream.inline=true")
    assert sids_by_packet(recs) == []
    flow = next(r for r in recs if r["event_type"] == "flow")
    assert flow["flow"]["action"] == "pass"


def test_syn_data_with_fast_open_is_stream_data(tmp_path: Path) -> None:
    """A SYN whose data is TCP Fast Open data (option 34) is part of the session: a pass
    matched on it is a stream match and passes the flow."""
    syn = IP(src=C, dst=S) / TCP(sport=41424, dport=80, flags="S", seq=99,
                                  options=[(34, b"\x01\x02\x03\x04")]) / b"wo!\r\n"
    frames = [bytes(syn),
              bytes(IP(src=S, dst=C) / TCP(sport=80, dport=41424, flags="SA", seq=499, ack=105)),
              bytes(IP(src=C, dst=S) / TCP(sport=41424, dport=80, flags="A", seq=105, ack=500)),
              bytes(IP(src=C, dst=S) / TCP(sport=41424, dport=80, flags="PA", seq=105, ack=500)
                    / b"Hi all!\r\n")]
    rules = ('pass tcp any any -> any any (content:"wo"; sid:2;)\n'
             'alert tcp any any -> any any (content:"Hi all"; sid:3;)\n')
    recs = run(tmp_path, rules, frames, "stream.inline=true")
    assert sids_by_packet(recs) == []
    flow = next(r for r in recs if r["event_type"] == "flow")
    assert flow["flow"]["action"] == "pass"


def test_pass_rule_alert_has_verdict_pass(tmp_path: Path) -> None:
    """`pass ...; alert;` logs its alert, and that alert's verdict is "pass" (Suricata's
    EveAddVerdict uses the alert's own action), also when the pass is packet-scoped."""
    import json

    from netsentry.output import OutputContext
    from netsentry.output.eve import EveLog

    rf = tmp_path / "t.rules"
    rf.write_text('alert tcp any any -> any any (content:"TRIGGER"; sid:1;)\n'
                  'pass tcp any any -> any any (alert; content:"TRIGGER"; sid:6;)\n'
                  'alert tcp any any -> any any (content:"OTHER"; sid:7;)\n')
    cfg = load_config(None, [])
    eve = EveLog({"filename": "eve.json", "types": ["alert"], "alert": {"verdict": True}},
                 OutputContext(logdir=tmp_path))
    sensor = Sensor(cfg, [eve], load_rules([str(rf)], cfg))
    frames = [bytes(IP(src=C, dst=S) / TCP(sport=1234, dport=80, flags="PA") / b"TRIGGER"),
              bytes(IP(src=C, dst=S) / TCP(sport=1234, dport=80, flags="PA") / b"OTHER")]
    sensor.run([(1_700_000_000.0 + i, f, len(f), 101) for i, f in enumerate(frames)])
    sensor.finish()
    recs = [json.loads(x) for x in (tmp_path / "eve.json").read_text().splitlines()]
    got = [(r["pcap_cnt"], r["alert"]["signature_id"], r["verdict"]["action"])
           for r in recs if r["event_type"] == "alert"]
    # the pass (action-order: first) silences sid 1 on packet 1; packet 2 is inspected
    assert got == [(1, 6, "pass"), (2, 7, "alert")]


def test_ids_flow_drop_stops_inspection_and_is_logged(tmp_path: Path) -> None:
    """IDS mode: an IP-only drop rule marks the flow dropped (EVE flow.action "drop"):
    one alert, the flow's later packets are not inspected, no drop records."""
    frames = [bytes(IP(src=C, dst=S) / TCP(sport=1234, dport=80, flags="PA") / (b"x%d" % i))
              for i in range(3)]
    recs = run(tmp_path, 'drop tcp any any -> any any (sid:1;)\n', frames)
    assert sids_by_packet(recs) == [(1, 1)]
    assert [r["alert"]["action"] for r in recs if r["event_type"] == "alert"] == ["allowed"]
    assert not [r for r in recs if r["event_type"] == "drop"]
    assert next(r for r in recs if r["event_type"] == "flow")["flow"]["action"] == "drop"


def test_first_of_pass_and_drop_wins_in_ids_mode(tmp_path: Path) -> None:
    """drop before pass (action-order) on the same packet in IDS mode: the flow stays
    dropped, the pass is not applied."""
    frames = [bytes(IP(src=C, dst=S) / TCP(sport=1234, dport=80, flags="PA") / (b"x%d" % i))
              for i in range(2)]
    recs = run(tmp_path, 'pass tcp any any -> any any (sid:2;)\ndrop tcp any any -> any any (sid:1;)\n',
               frames, DROP_FIRST)
    assert sids_by_packet(recs) == [(1, 1)]
    assert next(r for r in recs if r["event_type"] == "flow")["flow"]["action"] == "drop"


def http_frames(uri: bytes) -> list[bytes]:
    """A three-way handshake, one HTTP request, the server's ACK and a second request."""
    c, s = IP(src=C, dst=S), IP(src=S, dst=C)
    req = b"GET " + uri + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    return [bytes(c / TCP(sport=41000, dport=80, flags="S", seq=100)),
            bytes(s / TCP(sport=80, dport=41000, flags="SA", seq=500, ack=101)),
            bytes(c / TCP(sport=41000, dport=80, flags="A", seq=101, ack=501)),
            bytes(c / TCP(sport=41000, dport=80, flags="PA", seq=101, ack=501) / req),
            bytes(s / TCP(sport=80, dport=41000, flags="A", seq=501, ack=101 + len(req))),
            bytes(c / TCP(sport=41000, dport=80, flags="PA", seq=101 + len(req), ack=501) / req)]


TX_PASS_PACKET_DROP = (
    'pass http any any -> any any (http.uri; content:"/ok"; alert; flow:established,to_server; sid:1;)\n'
    'drop http any any -> any any (flow:to_server,established; sid:2;)\n'
    'alert tcp any any -> any any (flow:to_server,established; sid:3;)\n')


def test_transaction_pass_wins_over_a_packet_drop_of_the_same_packet(tmp_path: Path) -> None:
    # bug-7264: the pass (a transaction rule) and the drop (a packet rule) match the
    # request's packet; in rule order the pass comes first, so the drop never acts:
    # the packet goes through, only the pass's `alert` is logged, the flow is passed
    recs = run(tmp_path, TX_PASS_PACKET_DROP, http_frames(b"/ok"), "stream.inline=true")
    assert sids_by_packet(recs) == [(4, 1)]
    assert [r for r in recs if r["event_type"] == "drop"] == []
    flow = next(r for r in recs if r["event_type"] == "flow")
    assert flow["flow"].get("action") == "pass"


def test_packet_drop_stands_without_the_transaction_pass(tmp_path: Path) -> None:
    recs = run(tmp_path, TX_PASS_PACKET_DROP, http_frames(b"/no"), "stream.inline=true")
    assert (4, 2) in sids_by_packet(recs)
    assert 1 not in {sid for _n, sid in sids_by_packet(recs)}
    assert [r["pcap_cnt"] for r in recs if r["event_type"] == "drop"][:1] == [4]


def test_drop_first_keeps_the_drop_and_the_pass_only_ends_the_alerts(tmp_path: Path) -> None:
    # action-order drop first: the drop acts, the pass after it still ends the
    # packet's alerts (sid 3 never alerts on that packet) but passes nothing
    recs = run(tmp_path, TX_PASS_PACKET_DROP, http_frames(b"/ok"), "stream.inline=true", DROP_FIRST)
    on4 = [sid for n, sid in sids_by_packet(recs) if n == 4]
    assert on4 == [1, 2]
    assert 4 in [r["pcap_cnt"] for r in recs if r["event_type"] == "drop"]


def test_a_stateless_drop_is_a_packet_rule_and_drops_packet_by_packet(tmp_path: Path) -> None:
    # `flow:stateless` keeps a flow match in Suricata, so the rule is not IP-only: it is
    # inspected (and alerts) on every packet and its drop never becomes the flow's
    frames = []
    for i in range(3):
        frames.append(bytes(IP(src=C, dst="8.8.8.8") / ICMP(type=8, id=7, seq=i) / b"ping"))
        frames.append(bytes(IP(src="8.8.8.8", dst=C) / ICMP(type=0, id=7, seq=i) / b"ping"))
    recs = run(tmp_path, "drop icmp any any -> any any (flow:stateless; sid:3;)\n", frames, "stream.inline=true")
    assert [n for n, _sid in sids_by_packet(recs)] == [1, 2, 3, 4, 5, 6]
    flow = next(r for r in recs if r["event_type"] == "flow")
    assert flow["flow"].get("action") is None
