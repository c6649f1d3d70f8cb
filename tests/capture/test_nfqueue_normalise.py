"""Inline IPS: re-sent TCP bytes that differ from the ones inspected are forwarded as inspected.

client | router (`netsentry run -q`, NFQUEUE) | server, in namespaces made here. The
client crafts one TCP session with scapy against a real listening server (its kernel's
resets are filtered): a line in order, then the same sequence range again with other
bytes, the classic overlap evasion. The stream stage knows what it inspected and puts
those bytes back in the re-sent segment (stream/tcp.py `_inline_resend`, Suricata's
inline normalisation); the source must forward the packet with them, checksum fixed. A
sniffer on the server's interface records what arrives.
"""

from __future__ import annotations

import json
import sys

import pytest

from netns_lab import CRAFTED_HANDSHAKE, Daemon, Lab, crafted_ips_path, nfqueue_unavailable_reason, read_jsonl, wait_for

pytestmark = pytest.mark.netns

if _REASON := nfqueue_unavailable_reason():
    pytest.skip(_REASON, allow_module_level=True)

QUEUE = 6
CLIENT, SERVER, PORT = "10.201.7.2", "10.201.8.2", 8096

# Runs in the client namespace: handshake with the real server, then the two versions.
SENDER = CRAFTED_HANDSHAKE + r"""
for data in (b"hello-world\n", b"HELLO-WORLD\n"):
    send(ip / TCP(sport=sport, dport=port, flags="PA", seq=1001, ack=ack) / data)
    time.sleep(0.3)
print(json.dumps({"result": "sent"}))
"""

# Runs in the server namespace: every TCP segment to PORT with a payload, as it arrived.
SNIFFER = r"""
import json, sys
from scapy.all import IP, TCP, Raw, conf, sniff
conf.verb = 0
iface, port, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
out = open(log, "a", buffering=1)

def seen(p):
    if IP in p and TCP in p and p[TCP].dport == port and Raw in p:
        wire = IP(bytes(p[IP]))
        sent = wire[TCP].chksum
        del wire[TCP].chksum
        out.write(json.dumps({"data": bytes(p[Raw]).decode("latin-1"),
                              "checksum_ok": IP(bytes(wire))[TCP].chksum == sent}) + "\n")

sniff(iface=iface, prn=seen, store=False,
      started_callback=lambda: out.write(json.dumps({"listening": True}) + "\n"))
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    lab = Lab()
    tmp = tmp_path_factory.mktemp("ipsnormalise")
    try:
        client, router, server, _log = crafted_ips_path(lab, tmp, QUEUE, 7, CLIENT, SERVER, PORT)
        wire = tmp / "wire.jsonl"
        (tmp / "sniffer.py").write_text(SNIFFER)
        lab.spawn(server, sys.executable, str(tmp / "sniffer.py"), "s0", str(PORT), str(wire))
        wait_for(lambda: any("listening" in r for r in read_jsonl(wire)), 20, "the sniffer")
        (tmp / "sender.py").write_text(SENDER)
        yield lab, tmp, client, router, wire
    finally:
        lab.close()


def test_a_resent_range_with_other_bytes_is_forwarded_with_the_inspected_bytes(lab) -> None:
    lab_, tmp, client, router, wire = lab
    rules = tmp / "ips.rules"
    rules.write_text(f'alert tcp any any -> any {PORT} (msg:"greeting"; flow:to_server; content:"hello"; sid:1;)\n')
    d = Daemon(lab_, router, tmp / "sensor", "-q", str(QUEUE), "-S", str(rules), "--set", "stats.interval=1")
    d.wait_ready()
    try:
        done = lab_.run(client, sys.executable, str(tmp / "sender.py"), SERVER, str(PORT), "41001", timeout=120)
        assert json.loads(done.stdout.strip().splitlines()[-1])["result"] == "sent", done.stdout + done.stderr
        wait_for(lambda: len([r for r in read_jsonl(wire) if "data" in r]) >= 2, 30,
                 "both segments at the server's interface")
        wait_for(lambda: any(e["stats"].get("netsentry", {}).get("nfq", {}).get("rewritten")
                             for e in d.events("stats")), 15, "a stats record counting the rewrite")
    finally:
        assert d.stop() == 0, d.stderr()
    segments = [r for r in read_jsonl(wire) if "data" in r]
    assert [r["data"] for r in segments] == ["hello-world\n", "hello-world\n"], segments
    assert all(r["checksum_ok"] for r in segments), segments
    # the stream rule alerted on the inspected bytes (and, as Suricata's inline raw inspection,
    # again on the re-sent range it now carries); never on the second version's bytes
    assert {a["alert"]["signature_id"] for a in d.events("alert")} == {1}
