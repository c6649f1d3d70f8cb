"""Inline IPS: a memory-cap exception policy dropping a flow for real.

client | router (`netsentry run -q`, NFQUEUE) | server, in namespaces made here. The
client crafts one TCP session with scapy (its kernel's resets are filtered, so the
session stays the crafted one) against a real listening server: in-order data first
(it reaches the server), then a segment beyond a hole, bigger than the sensor's
`stream.reassembly.memcap`. With `stream.reassembly.memcap-policy: drop-flow` that
segment and every later one of the flow are dropped: the server never receives the
data that fills the hole, the flow record names the policy and stats count it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from netns_lab import CRAFTED_HANDSHAKE, Daemon, Lab, crafted_ips_path, nfqueue_unavailable_reason, read_jsonl, wait_for

pytestmark = pytest.mark.netns

if _REASON := nfqueue_unavailable_reason():
    pytest.skip(_REASON, allow_module_level=True)

QUEUE = 5
CLIENT, SERVER, PORT = "10.201.5.2", "10.201.6.2", 8095

# Runs in the client namespace: handshake with the real server, then the segments.
SENDER = CRAFTED_HANDSHAKE + r"""
def seg(off, data):
    send(ip / TCP(sport=sport, dport=port, flags="PA", seq=1001 + off, ack=ack) / data)
    time.sleep(0.3)
seg(0, b"before-ok\n")                      # in order: reaches the server
seg(10 + 100, b"h" * 800)                   # beyond a 100-byte hole, over the 512-byte memcap
seg(10, b"filler-" * 14 + b"xx")            # fills the hole: the flow is dropped by now
seg(10 + 100 + 800, b"after-drop\n")
print(json.dumps({"result": "sent"}))
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    lab = Lab()
    tmp = tmp_path_factory.mktemp("ipsmemcap")
    try:
        client, router, _server, log = crafted_ips_path(lab, tmp, QUEUE, 5, CLIENT, SERVER, PORT)
        (tmp / "sender.py").write_text(SENDER)
        yield lab, tmp, client, router, log
    finally:
        lab.close()


def test_reassembly_memcap_drop_flow_drops_the_flows_later_packets(lab) -> None:
    lab_, tmp, client, router, log = lab
    d = Daemon(lab_, router, tmp / "sensor", "-q", str(QUEUE), "--set", "stats.interval=1",
               "--set", "stream.reassembly.memcap=512", "--set", "stream.reassembly.memcap-policy=drop-flow")
    d.wait_ready()
    try:
        done = lab_.run(client, sys.executable, str(tmp / "sender.py"), SERVER, str(PORT), "41000", timeout=120)
        assert json.loads(done.stdout.strip().splitlines()[-1])["result"] == "sent", done.stdout + done.stderr
        wait_for(lambda: any("before-ok" in r.get("data", "") for r in read_jsonl(log)), 30,
                 "the in-order data at the server")
    finally:
        assert d.stop() == 0, d.stderr()
    received = "".join(r.get("data", "") for r in read_jsonl(log))
    assert "before-ok" in received
    assert "filler" not in received and "after-drop" not in received and "hhh" not in received
    flows = [f for f in d.events("flow") if f.get("dest_port") == PORT]
    assert flows and flows[0]["flow"]["exception_policy"] == [
        {"target": "stream_reassembly_memcap", "policy": "drop_flow"}]
    assert flows[0]["flow"]["action"] == "drop"
    stats = d.events("stats")[-1]["stats"]
    assert stats["exception_policy"]["tcp"]["reassembly"]["drop_flow"] == 1
    assert stats["ips"]["blocked"] >= 3             # the segment over the cap and the two after it
    assert "exception policy applied" in d.stderr()
