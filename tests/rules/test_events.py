"""decode-event / engine-event / stream-event: a packet's decoder (and stream) events."""

from __future__ import annotations

import pytest
from rules_helpers import pkt, rule

from netsentry.rules import RuleError, UnsupportedError


def _hit(opts: str, events: list[str] | None) -> bool:
    return rule(opts, "alert pkthdr any any -> any any").match(pkt(b"", events=events), None)


@pytest.mark.parametrize("opts, events, want", [
    ("decode-event:ipv4.trunc_pkt;", ["ipv4.trunc_pkt"], True),
    ("decode-event:IPv4.Trunc_Pkt;", ["ipv4.trunc_pkt"], True),           # case-insensitive
    ("decode-event:ipv4.trunc_pkt;", ["ipv4.opt_pad_required"], False),
    ("decode-event:ipv4.trunc_pkt;", None, False),
    ("engine-event:decoder.ipv6.exthdr_dupl_fh;", ["ipv6.exthdr_dupl_fh"], True),
    ("stream-event:3whs_synack_resend_with_different_ack;",
     ["stream.3whs_synack_resend_with_diff_ack"], True),                  # Suricata's legacy alias
    ("engine-event:stream.pkt_invalid_timestamp;", ["stream.pkt_invalid_timestamp"], True),
])
def test_event_keywords(opts: str, events: list[str] | None, want: bool) -> None:
    assert _hit(opts, events) is want


def test_a_decoder_event_netsentry_never_raises_is_reported_not_silently_dead() -> None:
    with pytest.raises(UnsupportedError, match="not raised by netsentry"):
        rule("decode-event:ipv4.no_such_event;", "alert pkthdr any any -> any any")


def test_engine_event_needs_a_known_layer() -> None:
    with pytest.raises(RuleError, match="expected decoder"):
        rule("engine-event:app.foo;", "alert pkthdr any any -> any any")


def test_decoded_packet_events_reach_the_rule() -> None:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    from netsentry.decode import Decoder
    frame = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP() / b"abcd")[:-6]   # cut: truncated
    p = Decoder().decode(frame, 1)
    assert p.events
    sig = rule(f"decode-event:{p.events[0]};", "alert pkthdr any any -> any any")
    assert sig.match(p, None)


def test_app_layer_event_netsentry_never_raises_is_reported_not_silently_dead() -> None:
    assert rule("app-layer-event:dns.z_flag_set;", "alert dns any any -> any any").tx_rule
    with pytest.raises(UnsupportedError, match="not raised"):
        rule("app-layer-event:dns.no_such_event;", "alert dns any any -> any any")
    with pytest.raises(UnsupportedError, match="not raised"):
        rule("app-layer-event:http.range_invalid;", "alert http any any -> any any")
    with pytest.raises(UnsupportedError, match="not raised"):
        rule("app-layer-event:applayer_proto_detection_skipped;", "alert ip any any -> any any")
    # the generic detection events protocol detection raises are packet checks
    r = rule("app-layer-event:applayer_mismatch_protocol_both_directions;", "alert ip any any -> any any")
    assert not r.tx_rule
    assert rule("app-layer-event:http.request_field_too_long;", "alert http any any -> any any").tx_rule
    with pytest.raises(RuleError, match="PROTO.EVENT"):
        rule("app-layer-event:z_flag_set;", "alert dns any any -> any any")


def test_ipv4_unknown_protocol_is_a_decoder_event() -> None:
    from scapy.layers.inet import IP
    from scapy.layers.l2 import Ether

    from netsentry.decode import Decoder
    p = Decoder().decode(bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2", proto=253) / b"xyz"), 1)
    assert p.events and "ipv4.unknown_protocol" in p.events
    assert rule("decode-event:ipv4.unknown_protocol;", "alert ipv4 any any -> any any").match(p, None)
    q = Decoder().decode(bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2", proto=2) / b"xyzw"), 2)   # IGMP
    assert not q.events or "ipv4.unknown_protocol" not in q.events
