"""Engine semantics: evaluation order, pass, drop/reject verdicts, flowbits order, alert fields."""

from __future__ import annotations

from detect_helpers import Detect, handshake, icmp, tcp, udp

C, S = "10.0.0.1", "10.0.0.2"


def conversation(payloads: list[bytes]) -> list[bytes]:
    """Handshake, then each payload client -> server."""
    frames = handshake(C, S, 40000, 80)
    seq = 101
    for p in payloads:
        frames.append(tcp(C, S, 40000, 80, p, seq=seq, ack=501))
        seq += len(p)
    return frames


def test_alert_carries_category_severity_and_metadata(detect: Detect) -> None:
    eng = detect.engine('alert tcp any any -> any any (msg:"m"; content:"x"; classtype:trojan-activity; '
                        'metadata:former_category MALWARE; sid:7; rev:3;)\n')
    run = detect.run('alert tcp any any -> any any (msg:"m"; content:"x"; classtype:trojan-activity; '
                     'metadata:former_category MALWARE; sid:7; rev:3;)\n', [tcp(C, S, 1, 2, b"x")])
    assert run.alerts == [(1, 7, "allowed")]
    sig = eng.sigs[0]
    assert sig.class_description  # classification.config is bundled
    from netsentry.decode import Decoder
    pkt = Decoder().decode(tcp(C, S, 1, 2, b"x"), 1)
    [ev] = eng.inspect(pkt, None)
    assert (ev.alert.gid, ev.alert.signature_id, ev.alert.rev, ev.alert.signature) == (1, 7, 3, "m")
    assert ev.alert.category == sig.class_description
    assert ev.alert.severity == 1
    assert ev.alert.metadata == {"former_category": ["MALWARE"]}


def test_empty_payload_skips_content_rules_but_not_header_rules(detect: Detect) -> None:
    rules = ('alert tcp any any -> any any (content:"x"; sid:1;)\n'
             'alert tcp any any -> any any (flags:S; sid:2;)\n')
    run = detect.run(rules, [tcp(C, S, 1, 2, b"", flags="S")])
    assert run.sids() == [2]


def test_pass_silences_the_packet_and_later_packets_of_the_flow(detect: Detect) -> None:
    rules = ('alert tcp any any -> any any (content:"evil"; sid:1;)\n'
             'pass tcp any any -> any any (content:"trusted"; sid:2;)\n')
    run = detect.run(rules, conversation([b"evil", b"trusted evil", b"evil"]))
    # pass is evaluated first (action order): no alert on its packet, flow passed afterwards
    assert run.alerts == [(4, 1, "allowed")]
    assert run.packets[-1].flow.action == "pass"
    assert run.engine.stats()["detect.passes"] == 1


def test_pass_of_packet_only_rule_does_not_pass_the_flow(detect: Detect) -> None:
    rules = ('alert tcp any any -> any any (content:"evil"; sid:1;)\n'
             'pass tcp-pkt any any -> any any (content:"trusted"; sid:2;)\n')
    run = detect.run(rules, conversation([b"trusted evil", b"evil"]))
    assert run.alerts == [(5, 1, "allowed")]


def test_action_order_custom(detect: Detect) -> None:
    rules = ('alert tcp any any -> any any (content:"x"; sid:1;)\n'
             'pass tcp any any -> any any (content:"x"; sid:2;)\n')
    cfg = {"detect": {"action-order": ["alert", "pass", "drop", "reject"]}}
    run = detect.run(rules, [tcp(C, S, 1, 2, b"x")], cfg)
    assert run.sids() == [1]          # alert evaluated before the pass, which then stops nothing earlier
    assert detect.run(rules, [tcp(C, S, 1, 2, b"x")]).sids() == []    # default: pass first


def test_ids_mode_drop_rule_alerts_allowed_and_never_drops(detect: Detect) -> None:
    """IDS: a drop rule alerts "allowed" and drops nothing, but a flow-scoped drop (here a
    stream match) still marks the flow as Suricata's RuleActionToFlow does in both modes:
    the flow's later packets are not inspected (suricata-verify drop-protocol-change)."""
    rules = 'drop tcp any any -> any any (content:"evil"; sid:1;)\n'
    run = detect.run(rules, conversation([b"evil", b"evil"]))
    assert run.alerts == [(4, 1, "allowed")]
    assert all(p.verdict is None for p in run.packets)
    assert run.packets[-1].flow.action == "drop"
    # a packet-scoped drop leaves the flow alone
    run = detect.run('drop tcp-pkt any any -> any any (content:"evil"; sid:1;)\n', conversation([b"evil", b"evil"]))
    assert run.alerts == [(4, 1, "allowed"), (5, 1, "allowed")]
    assert run.packets[-1].flow.action is None


def test_ips_drop_blocks_and_the_flow_stays_dropped(detect: Detect) -> None:
    rules = ('drop tcp any any -> any any (content:"evil"; sid:1;)\n'
             'alert tcp any any -> any any (content:"later"; sid:2;)\n')
    frames = conversation([b"hello", b"evil", b"later"]) + [tcp(S, C, 80, 40000, b"later", seq=501, ack=120)]
    run = detect.run(rules, frames, ips=True)
    assert run.alerts == [(5, 1, "blocked")]          # nothing inspected after the drop
    assert [p.verdict for p in run.packets] == [None, None, None, None, "drop", "drop", "drop"]
    assert run.packets[4].drop_alert.signature_id == 1
    assert run.packets[5].drop_alert is None          # dropped by the flow, not by a rule
    assert run.packets[4].flow.action == "drop"
    # another flow is unaffected
    other = detect.run(rules, [tcp(C, S, 40001, 80, b"later")], ips=True)
    assert other.alerts == [(1, 2, "allowed")]


def test_ips_noalert_drop_still_drops_and_names_the_rule(detect: Detect) -> None:
    rules = 'drop tcp any any -> any any (noalert; sid:1;)\n'
    run = detect.run(rules, handshake(C, S, 40000, 80), ips=True)
    assert run.alerts == []
    assert [p.verdict for p in run.packets] == ["drop"] * 3
    assert run.packets[0].drop_alert.signature_id == 1
    assert run.packets[0].drop_alert.action == "blocked"


def test_drop_of_packet_only_rule_drops_only_that_packet(detect: Detect) -> None:
    rules = 'drop tcp-pkt any any -> any any (content:"evil"; sid:1;)\n'
    run = detect.run(rules, conversation([b"evil", b"fine"]), ips=True)
    assert [p.verdict for p in run.packets[3:]] == ["drop", None]


def test_reject_is_blocked_in_both_modes_with_reject_verdict(detect: Detect) -> None:
    rules = 'reject tcp any any -> any any (content:"evil"; sid:1;)\n'
    for ips in (False, True):
        run = detect.run(rules, [tcp(C, S, 1, 2, b"evil")], ips=ips)
        assert run.alerts == [(1, 1, "blocked")]
        assert run.packets[0].verdict == "reject"


def test_drop_threshold_silent_match_still_drops(detect: Detect) -> None:
    rules = 'drop udp any any -> any any (content:"x"; threshold: type limit, track by_src, count 1, seconds 60; sid:1;)\n'
    run = detect.run(rules, [udp(C, S, 1, 2, b"x"), udp(C, S, 3, 4, b"x")], ips=True)
    assert run.alerts == [(1, 1, "blocked")]
    assert [p.verdict for p in run.packets] == ["drop", "drop"]


def test_flowbits_setter_runs_before_checker_on_the_same_packet(detect: Detect) -> None:
    # the checker comes first in the file and has the higher priority: the setter still runs first
    rules = ('alert tcp any any -> any any (flowbits:isset,seen; content:"b"; priority:1; sid:2;)\n'
             'alert tcp any any -> any any (content:"a"; flowbits:set,seen; priority:3; sid:1;)\n'
             'alert tcp any any -> any any (flowbits:isnotset,seen; content:"b"; sid:3;)\n')
    run = detect.run(rules, conversation([b"ab"]))
    assert sorted(run.sids_at(4)) == [1, 2]


def test_flowbits_noalert_setter_and_later_checker(detect: Detect) -> None:
    rules = ('alert tcp any any -> any any (content:"login"; flowbits:set,auth; flowbits:noalert; sid:1;)\n'
             'alert tcp any any -> any any (content:"cmd"; flowbits:isset,auth; sid:2;)\n')
    run = detect.run(rules, conversation([b"cmd", b"login", b"cmd"]))
    assert run.alerts == [(6, 2, "allowed")]


def test_priority_orders_alerts_of_one_packet(detect: Detect) -> None:
    rules = ('alert udp any any -> any any (content:"x"; priority:3; sid:1;)\n'
             'alert udp any any -> any any (content:"x"; priority:1; sid:2;)\n'
             'alert udp any any -> any any (priority:2; sid:3;)\n')
    run = detect.run(rules, [udp(C, S, 1, 2, b"x")])
    assert run.sids() == [2, 3, 1]


def test_stream_only_rule_ignores_rst_data(detect: Detect) -> None:
    rules = ('alert tcp any any -> any any (flow:only_stream; content:"Denied"; sid:1;)\n'
             'alert tcp-pkt any any -> any any (content:"Denied"; sid:2;)\n')
    frames = conversation([b"Denied"]) + [tcp(C, S, 40000, 80, b"Denied", flags="RA", seq=107, ack=501)]
    run = detect.run(rules, frames)
    assert run.alerts == [(4, 1, "allowed"), (4, 2, "allowed"), (5, 2, "allowed")]


def test_icmp_and_ip_rules(detect: Detect) -> None:
    rules = ('alert icmp any any -> any any (content:"ping"; sid:1;)\n'
             'alert ip any any -> any any (content:"ping"; sid:2;)\n')
    run = detect.run(rules, [icmp(C, S, b"ping"), udp(C, S, 1, 2, b"ping")])
    assert run.sids_at(1) == [1, 2]
    assert run.sids_at(2) == [2]


def test_stats_and_load_report(detect: Detect) -> None:
    rules = ('alert tcp any any -> any 80 (content:"x"; sid:1;)\n'
             'alert udp any any -> any any (sid:2;)\n')
    run = detect.run(rules, [tcp(C, S, 1, 80, b"x"), udp(C, S, 1, 2)])
    st = run.engine.stats()
    assert st["detect.alert"] == 2 and st["detect.rules_loaded"] == 2
    rep = run.engine.load_report()
    assert rep["rules"] == 2
    assert rep["buckets"]["tcp"]["rules"] == 1 and rep["buckets"]["udp"]["rules"] == 1
    assert rep["build_seconds"] >= 0


def server_segments(payloads: list[bytes], seq: int = 501, flags: str = "PA") -> list[bytes]:
    out = []
    for p in payloads:
        out.append(tcp(S, C, 80, 40000, p, seq=seq, ack=101, flags=flags))
        seq += len(p)
    return out


def test_content_split_over_segments_matches_on_the_stream_window(detect: Detect) -> None:
    rules = ('alert tcp any any -> any any (content:"Please Let Me In!"; sid:1;)\n'
             'alert tcp-pkt any any -> any any (content:"Please Let Me In!"; sid:2;)\n'
             'alert tcp any any -> any any (content:"Let"; content:"In!"; distance:0; sid:3;)\n')
    frames = handshake(C, S, 40000, 80) + server_segments([b"Please ", b"Let ", b"Me ", b"In!"])
    run = detect.run(rules, frames)
    # tcp rules see the stream (alert on the segment completing it), tcp-pkt never does
    assert run.alerts == [(7, 1, "allowed"), (7, 3, "allowed")]


def test_stream_window_does_not_realert_on_old_data(detect: Detect) -> None:
    rules = 'alert tcp any any -> any any (content:"secret"; sid:1;)\n'
    frames = handshake(C, S, 40000, 80) + server_segments([b"a secret", b"more", b"data", b"secret!"])
    run = detect.run(rules, frames)
    assert run.alerts == [(4, 1, "allowed"), (7, 1, "allowed")]


def test_retransmission_and_rst_data_do_not_join_the_stream(detect: Detect) -> None:
    rules = 'alert tcp any any -> any any (content:"abcdef"; sid:1;)\n'
    segs = server_segments([b"xxabc", b"def"])
    retrans = tcp(S, C, 80, 40000, b"def", seq=501, ack=101)            # old seq: not in order
    rst = tcp(S, C, 80, 40000, b"def", seq=506, ack=101, flags="RA")    # RST data: packet only
    run = detect.run(rules, handshake(C, S, 40000, 80) + [segs[0], retrans, rst, segs[1]])
    assert run.alerts == [(7, 1, "allowed")]


def test_alert_keyword_makes_a_pass_rule_alert_then_pass(detect: Detect) -> None:
    # Suricata's `alert;` (alert then pass): the pass rule logs its alert, later rules stay silent
    rules = ('alert tcp any any -> any any (content:"evil"; sid:1;)\n'
             'pass tcp any any -> any any (content:"trusted"; alert; sid:2;)\n'
             'pass tcp any any -> any any (content:"quiet"; sid:3;)\n')
    run = detect.run(rules, conversation([b"trusted evil", b"evil"]))
    assert run.alerts == [(4, 2, "allowed")]
    assert run.packets[-1].flow.action == "pass"
    run = detect.run(rules, conversation([b"quiet evil"]))
    assert run.alerts == []


def test_ip_only_rule_with_ports_passes_the_whole_flow(detect: Detect) -> None:
    # Suricata 8's IP-only test ignores ports: a header-only pass rule to port 80 passes the
    # flow (its answers too), where a packet rule would pass only the packets it matched
    rules = ('pass tcp any any -> any 80 (sid:1;)\n'
             'drop tcp any any -> any any (noalert; sid:2;)\n')
    run = detect.run(rules, conversation([b"a", b"b"]) + [tcp(S, C, 80, 40000, b"c", seq=501, ack=103)],
                     ips=True)
    assert [p.verdict for p in run.packets] == [None] * len(run.packets)
    assert run.packets[-1].flow.action == "pass"


def test_ip_only_rule_is_inspected_once_per_flow_direction(detect: Detect) -> None:
    rules = ('alert ip 10.0.0.1 any -> any any (sid:1;)\n'
             'alert ip any any -> any any (flowbits:set,x; sid:2;)\n'
             'alert tcp 10.0.0.1 any -> any any (flags:PA; sid:3;)\n'          # packet rule: every packet
             'alert tcp 10.0.0.1 any -> !10.0.0.1 any (sid:4;)\n')             # like-ip-only: every packet
    frames = conversation([b"a", b"b"]) + [tcp(S, C, 80, 40000, b"c", seq=501, ack=103)]
    run = detect.run(rules, frames)
    assert sorted(run.sids_at(1)) == [1, 2, 4]  # first packet to server
    assert run.sids_at(2) == [2]                # first packet to client (sid 1 is from 10.0.0.1 only)
    assert run.sids_at(3) == [4]
    assert sorted(run.sids_at(4)) == [3, 4]
    assert run.sids_at(6) == []                 # to client again: ip-only already done


def test_ips_drop_scope_follows_the_rule_type(detect: Detect) -> None:
    # a packet rule (flags) drops only its packet; a stream rule (content on tcp) drops the flow
    run = detect.run('drop tcp any any -> any any (flags:S; sid:1;)\n', conversation([b"x"]), ips=True)
    assert [p.verdict for p in run.packets] == ["drop", None, None, None]
    run = detect.run('drop udp any any -> any any (content:"x"; sid:1;)\n',
                     [udp(C, S, 1, 2, b"x"), udp(C, S, 1, 2, b"y")], ips=True)
    assert [p.verdict for p in run.packets] == ["drop", None]
    run = detect.run('drop ip any any -> any any (sid:1;)\n',
                     [udp(C, S, 1, 2, b"x"), udp(C, S, 1, 2, b"y")], ips=True)
    assert [p.verdict for p in run.packets] == ["drop", "drop"]


def test_ip_rules_never_match_non_ip_frames(detect: Detect) -> None:
    from scapy.layers.l2 import ARP, Ether
    arp = bytes(Ether() / ARP(psrc=C, pdst=S))
    run = detect.run('alert ip any any -> any any (sid:1;)\nalert pkthdr any any -> any any (sid:2;)\n',
                     [arp, udp(C, S, 1, 2, b"x")])
    assert run.sids_at(1) == [2]
    assert sorted(run.sids_at(2)) == [1, 2]


def test_stream_window_keeps_header_fields_of_the_packet(detect: Detect) -> None:
    # the rule needs the packet's TTL (read lazily from the frame by the decoder)
    # while its content is matched on stream data made of two segments
    rules = 'alert tcp any any -> any any (ttl:64; content:"split-me"; sid:1;)\n'
    frames = handshake(C, S, 40000, 80) + server_segments([b"xx split", b"-me yy"])
    run = detect.run(rules, frames)
    assert run.alerts == [(5, 1, "allowed")]


def test_flows_survive_a_rule_reload(detect: Detect) -> None:
    from netsentry.decode import Decoder
    from netsentry.flow import FlowTable
    old = detect.engine('alert tcp any any -> any any (content:"a"; sid:1;)\n'
                        'alert tcp any any -> any any (content:"b"; sid:2;)\n')
    new = detect.engine('alert tcp any any -> any any (content:"b"; sid:3;)\n')
    dec, flows = Decoder(), FlowTable({}, lambda f: None)
    sids = []
    for eng, data in ((old, tcp(C, S, 1, 2, b"ab")), (new, tcp(C, S, 1, 2, b"ab"))):
        pkt = dec.decode(data, 1)
        sids.append([e.alert.signature_id for e in eng.inspect(pkt, flows.update(pkt)) or ()])
    assert sids == [[1, 2], [3]]


def test_equal_rules_are_ordered_by_sid_not_file_order(detect: Detect) -> None:
    rules = ('alert udp any any -> any any (content:"x"; sid:30;)\n'
             'alert udp any any -> any any (content:"x"; sid:10;)\n'
             'alert udp any any -> any any (content:"x"; sid:20;)\n')
    run = detect.run(rules, [udp(C, S, 1, 2, b"x")])
    assert run.sids() == [10, 20, 30]


def test_many_ip_only_rules_are_narrowed_by_address_without_changing_results(detect: Detect) -> None:
    from netsentry.detect.grouping import IP_ONLY_INDEX_MIN
    n = IP_ONLY_INDEX_MIN * 3
    lines = [f"alert ip any any -> 10.9.{i}.0/24 any (sid:{100 + i};)" for i in range(n)]
    lines.append("alert ip 10.9.5.7 any <> 10.0.0.1 any (sid:99;)")          # bidirectional
    lines.append("alert ip [10.0.0.0/8,!10.9.0.0/16] any -> any any (sid:98;)")
    frames = [udp(C, "10.9.3.4", 1, 2, b"x"), udp("10.9.5.7", C, 3, 4, b"y"), udp(C, "192.168.1.1", 5, 6)]
    run = detect.run("\n".join(lines) + "\n", frames)
    group = run.packets[0].flow.detect[1]
    assert group._ip_src is not None          # the index is in use for this many rules
    assert sorted(run.sids_at(1)) == [98, 103]
    assert sorted(run.sids_at(2)) == [99]
    assert run.sids_at(3) == [98]


def test_bad_detect_settings_are_config_errors_naming_the_key(detect: Detect) -> None:
    import pytest

    from netsentry.config import ConfigError
    rule = 'alert udp any any -> any any (sid:1;)\n'
    with pytest.raises(ConfigError, match="detect.prefilter"):
        detect.engine(rule, {"detect": {"prefilter": "grep"}})
    with pytest.raises(ConfigError, match="detect.action-order"):
        detect.engine(rule, {"detect": {"action-order": ["pass", "alert"]}})
    with pytest.raises(ConfigError, match=r"threshold\[0\].*missing 'sig_id'"):
        detect.engine(rule, {"threshold": ["suppress gen_id 1"]})


def test_flowint_counter_rules_as_suricata_documents_them(detect: Detect) -> None:
    """The login-failure counter of Suricata's flowint documentation. Rules that change
    the counter run before the rule that only reads it (whatever the file order), and
    changes apply after each rule matched: the first failure starts the count and the
    counting rule adds one on the same packet, so the reader fires at the third failure."""
    rules = ('alert tcp any any -> any any (msg:"more than three"; content:"login failed"; '
             'flowint:loginfail,isset; flowint:loginfail,>,3; sid:3;)\n'
             'alert tcp any any -> any any (msg:"count"; content:"login failed"; '
             'flowint:loginfail,isset; flowint:loginfail,+,1; noalert; sid:2;)\n'
             'alert tcp any any -> any any (msg:"start"; content:"login failed"; '
             'flowint:loginfail,notset; flowint:loginfail,=,1; noalert; sid:1;)\n')
    run = detect.run(rules, conversation([b"login failed"] * 4))
    assert [s.sid for s in run.engine.sigs] == [1, 2, 3]
    assert run.alerts == [(6, 3, "allowed"), (7, 3, "allowed")]
    assert run.packets[-1].flow.flowints == {"loginfail": 5}
