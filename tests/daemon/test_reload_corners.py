"""Rule reload corner cases: from no rules to rules, transactions in flight across a swap,
and an engine built off the main thread."""

from __future__ import annotations

import threading

from daemon_helpers import Collect, LiveLike, config_for, write_rules
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from netsentry.cli import load_ruleset
from netsentry.reload import RuleReloader, build_ruleset
from netsentry.rules.pcre_limit import LIMIT
from netsentry.sensor import Sensor

CLIENT, SERVER = "10.0.0.1", "10.0.0.2"


def tcp_session(*segments: tuple[bool, bytes]) -> list[bytes]:
    """Handshake, then each (to_server, payload) segment in order, each acknowledged by the
    other side's bare ACK: in IDS mode the app layer parses a direction's bytes once they
    are acknowledged (Suricata's IDS reassembly), so a session without ACKs would parse
    nothing before it ends."""
    cseq, sseq = 1000, 5000
    c = Ether() / IP(src=CLIENT, dst=SERVER)
    s = Ether() / IP(src=SERVER, dst=CLIENT)
    frames = [c / TCP(sport=40000, dport=80, flags="S", seq=cseq),
              s / TCP(sport=80, dport=40000, flags="SA", seq=sseq, ack=cseq + 1),
              c / TCP(sport=40000, dport=80, flags="A", seq=cseq + 1, ack=sseq + 1)]
    cseq, sseq = cseq + 1, sseq + 1
    for to_server, data in segments:
        if to_server:
            frames.append(c / TCP(sport=40000, dport=80, flags="PA", seq=cseq, ack=sseq) / data)
            cseq += len(data)
            frames.append(s / TCP(sport=80, dport=40000, flags="A", seq=sseq, ack=cseq))
        else:
            frames.append(s / TCP(sport=80, dport=40000, flags="PA", seq=sseq, ack=cseq) / data)
            sseq += len(data)
            frames.append(c / TCP(sport=40000, dport=80, flags="A", seq=cseq, ack=sseq))
    return [bytes(f) for f in frames]


def live_sensor(cfg: dict, ruleset=None) -> tuple[Sensor, Collect]:
    out = Collect()
    sensor = Sensor(cfg, [out], ruleset)
    sensor.live = True
    return sensor, out


def test_reload_from_no_rules_to_stream_rules_inspects_reassembled_streams(tmp_path):
    """Started without rules, the stream stage made no inspection windows; a content split
    over two segments is only found in the reassembled stream, so it proves they are made."""
    rules = tmp_path / "r.rules"
    rules.write_text("")
    cfg = config_for(rules, "stream.reassembly.raw-inspection=arrival")   # per-segment alerts
    sensor, out = live_sensor(cfg, load_ruleset(cfg))
    assert sensor.signatures is None
    write_rules(rules, 'alert tcp any any -> any 80 (msg:"split"; flow:to_server; content:"evilword"; sid:7;)')
    reloader = RuleReloader(sensor, lambda: config_for(rules, "stream.reassembly.raw-inspection=arrival"))
    frames = tcp_session((True, b"xx evi"), (True, b"lword yy"))
    # asked for before the first packet: every packet meets the new rules
    sensor.run(LiveLike(frames, lambda i: reloader.request(background=False) if i == 0 else None))
    assert reloader.counters["netsentry.reload.success"] == 1
    assert [sid for _, sid in out.alert_sids()] == [7]


REQUEST = b"POST /admin HTTP/1.1\r\nHost: example.test\r\nContent-Length: 9\r\n\r\n"
BODY = b"evil-body"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
URI_RULE = 'alert http any any -> any any (msg:"uri"; http.uri; content:"/admin"; sid:10;)'
# numbered before the uri rule in the new set (rule numbers shift under the transaction),
# and in the same direction, so old numbers would mark it finished
BODY_RULE = 'alert http any any -> any any (msg:"body"; http.request_body; content:"evil-body"; sid:5;)'


def test_transactions_in_flight_keep_their_finished_rules_by_sid_across_a_swap(tmp_path):
    rules = write_rules(tmp_path / "r.rules", URI_RULE)
    cfg = config_for(rules)
    sensor, out = live_sensor(cfg, load_ruleset(cfg))
    reloader = RuleReloader(sensor, lambda: config_for(rules))
    frames = tcp_session((True, REQUEST), (True, BODY), (False, RESPONSE))

    def between(i: int) -> None:
        # asked for after the request headers were parsed (on the server's ACK, packet 5)
        # and inspected (on the client's next packet, 6): the old rules saw them (sid 10
        # alerted); the body, parsed on the server's next ACK (7), meets the new rules
        if i == 6:
            write_rules(rules, BODY_RULE, URI_RULE)
            reloader.request(background=False)
    sensor.run(LiveLike(frames, between))
    assert [s.sid for s in sensor._tx_detect.sigs] == [5, 10]        # the numbers did shift
    # sid 10 finished with the transaction under the old engine: no second alert after the
    # swap; sid 5 is new and sees the body. (With the old numbers sid 5 was taken as
    # finished and sid 10 alerted twice.)
    assert sorted(out.alert_sids()) == [(6, 10), (9, 5)]
    sensor.finish()


def test_a_signature_engine_builds_off_the_main_thread_and_the_limit_follows(tmp_path):
    rules = write_rules(tmp_path / "r.rules",
                        'alert udp any any -> any any (msg:"p"; content:"aaa"; pcre:"/a+b/"; sid:3;)')
    LIMIT.uninstall()
    outcome: list = []

    def build() -> None:
        try:
            outcome.append(build_ruleset(config_for(rules, "detect.pcre-time-limit=0.05")))
        except Exception as exc:        # the test's point: nothing raises off the main thread
            outcome.append(exc)
    t = threading.Thread(target=build)
    t.start()
    t.join(60)
    built, engine = outcome[0]          # a tuple, not an exception
    assert engine is not None and engine.pcre_limited
    assert not LIMIT.installed          # the signal handler is the main thread's to set...
    from daemon_helpers import frame
    sensor, out = live_sensor(built.config, built.ruleset)
    sensor.swap_ruleset(built.ruleset, engine)
    sensor.run(LiveLike([frame(b"aaab")]))
    assert out.alert_sids() == [(1, 3)]
    assert LIMIT.installed and LIMIT.seconds == 0.05     # ... which it did at its first search


def test_background_reload_builds_the_engine_in_the_build_thread(tmp_path):
    rules = write_rules(tmp_path / "r.rules", URI_RULE)
    cfg = config_for(rules)
    sensor, out = live_sensor(cfg, load_ruleset(cfg))
    reloader = RuleReloader(sensor, lambda: config_for(rules))
    import netsentry.reload as reload_mod
    threads = []
    real = reload_mod.build_engine

    def spy(built):
        threads.append(threading.current_thread())
        return real(built)
    reload_mod.build_engine = spy
    try:
        done = threading.Event()
        reloader.wakeup = done.set
        write_rules(rules, BODY_RULE)
        reloader.request()
        assert done.wait(60)
        reloader.poll()
    finally:
        reload_mod.build_engine = real
    assert threads and threads[0] is not threading.main_thread()
    assert [s.sid for s in sensor.ruleset.signatures] == [5]
