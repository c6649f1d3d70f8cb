"""Transaction rules' addresses by the packet's home class, ports apart (txdetect.py):
the same alerts as a full header test for each kind of address spec, both directions."""

from __future__ import annotations

import pytest

from applayer_helpers import alerts, replay, tcp_session

RULES = """\
alert http $HOME_NET any -> $EXTERNAL_NET any (http.uri; content:"/a"; sid:1;)
alert http $EXTERNAL_NET any -> $HOME_NET any (http.uri; content:"/a"; sid:2;)
alert http $HOME_NET any -> $EXTERNAL_NET 8080 (http.uri; content:"/a"; sid:3;)
alert http $HOME_NET any -> $EXTERNAL_NET 80 (http.uri; content:"/a"; sid:4;)
alert http any any -> any 81 (http.uri; content:"/a"; sid:5;)
alert http [10.0.0.0/8] any -> any any (http.uri; content:"/a"; sid:6;)
alert http $EXTERNAL_NET any -> any any (http.stat_code; content:"200"; sid:7;)
alert http $HOME_NET any -> any any (http.stat_code; content:"200"; sid:8;)
alert http $HOME_NET 80 -> any any (http.stat_code; content:"200"; sid:9;)
"""

REQUEST = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.mark.parametrize(("home", "want"), [
    # client 10.0.0.5 in the default HOME_NET, server 192.0.2.80 outside it
    (None, {1, 4, 6, 7}),
    # the other way round: the server is home, the client is not
    ("[192.0.2.0/24]", {2, 6, 8, 9}),
])
def test_tx_rule_addresses_and_ports(tmp_path, home, want):
    pcap = tcp_session(tmp_path / "s.pcap", [(True, REQUEST), (False, RESPONSE)])
    overrides = [] if home is None else [f"vars.address-groups.HOME_NET={home}"]
    got = {a["alert"]["signature_id"] for a in alerts(replay(tmp_path, pcap, RULES, *overrides))}
    assert got == want
