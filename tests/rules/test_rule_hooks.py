"""Rule hooks on the normal rule set (rules/hooks.py's table, rules/hook_rules.py's meaning)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "applayer"))

from applayer_helpers import alerts, replay, tcp_session  # noqa: E402

from netsentry.config import load_config  # noqa: E402
from netsentry.rules.errors import RuleError  # noqa: E402
from netsentry.rules.hooks import parse_hook  # noqa: E402
from netsentry.rules.loader import load_rules  # noqa: E402


def test_hook_table() -> None:
    h = parse_hook("http1", "request_body")
    assert (h.kind, h.proto, h.to_server, h.progress) == ("app", "http", True, 3)
    h = parse_hook("tls", "server_hello")
    assert (h.kind, h.proto, h.to_server) == ("app", "tls", False)
    assert parse_hook("tls", "response_complete").progress == -1
    assert parse_hook("tcp", "flow_start").kind == "pkt"
    assert parse_hook("tcp", "<flow_start").lte
    for proto, name in (("tcp", "request_body"), ("http1", "nosuch"), ("tcp", "")):
        with pytest.raises(RuleError):
            parse_hook(proto, name)


def test_bad_hook_is_a_rule_error_with_its_line(tmp_path: Path) -> None:
    rf = tmp_path / "t.rules"
    rf.write_text("alert tcp any any -> any any (sid:1;)\nalert http1:nosuch any any -> any any (sid:2;)\n")
    rs = load_rules([rf], load_config(None, []))
    assert [s.sid for s in rs.signatures] == [1]
    assert rs.errors[0].line == 2 and "nosuch" in str(rs.errors[0])


_REQ = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
_RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabcdef"


def test_flow_start_is_the_first_packet_of_each_direction(tmp_path: Path) -> None:
    pcap = tcp_session(tmp_path / "f.pcap", [(True, _REQ), (False, _RESP)])
    recs = replay(tmp_path, pcap,
                  "alert tcp:flow_start any any -> any any (sid:1;)\n"
                  "alert tcp:flow_start any any -> any any (flow:to_server; sid:2;)\n"
                  "alert tcp any any -> any any (flags:S; sid:3;)\n")
    assert [r["pcap_cnt"] for r in alerts(recs, 1)] == [1, 2]      # SYN, SYN/ACK
    assert [r["pcap_cnt"] for r in alerts(recs, 2)] == [1]


def test_app_hooks_fire_at_their_state(tmp_path: Path) -> None:
    pcap = tcp_session(tmp_path / "h.pcap", [(True, _REQ), (False, _RESP)])
    recs = replay(tmp_path, pcap,
                  "alert http1:request_headers any any -> any any (sid:1;)\n"
                  "alert http1:response_line any any -> any any (sid:2;)\n"
                  "alert http1:request_complete any any -> any any (http.uri; content:\"/a\"; sid:3;)\n"
                  "alert http1:request_headers any any -> any any (http.uri; content:\"/b\"; sid:4;)\n")
    assert len(alerts(recs, 1)) == 1 and alerts(recs, 1)[0]["direction"] == "to_server"
    assert len(alerts(recs, 2)) == 1 and alerts(recs, 2)[0]["direction"] == "to_client"
    assert len(alerts(recs, 3)) == 1
    assert alerts(recs, 4) == []


def test_a_response_cut_short_by_the_close_is_complete(tmp_path: Path) -> None:
    """libhtp-rs finalizes a response when the server closes, also one whose body has a
    Content-Length the close cut short (response_body_identity_cl_known): its trailer and
    complete hooks fire then, and http.response_body has what came."""
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"A" * 100
    pcap = tcp_session(tmp_path / "c.pcap", [(True, _REQ), (False, resp)])
    rules = ("alert http1:response_trailer any any -> any any (sid:1;)\n"
             "alert http1:response_complete any any -> any any (http.response_body; content:\"AAAA\"; sid:2;)\n"
             "alert http1:response_body any any -> any any (sid:3;)\n")
    recs = replay(tmp_path, pcap, rules)
    assert len(alerts(recs, 1)) == 1 and len(alerts(recs, 2)) == 1
    assert len(alerts(recs, 3)) >= 1
