"""The bundled sample captures: reproducible from their scenarios, small, and on safe addresses.

The captures in pcaps/ are committed so a user's demo needs no scapy run; these
tests keep them honest: ``make_pcaps.py --check`` must regenerate every file
byte for byte, the check must name a capture that drifted, every address must
be a documentation or private one, and the crafting helpers the scenarios
share (pcaps/craft.py) must produce TCP a real stack would.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from netsentry.capture import open_capture
from netsentry.decode import Decoder
from netsentry.decode.packet import ip_to_str

REPO = Path(__file__).resolve().parents[1]
PCAPS = REPO / "pcaps"
MAKE = PCAPS / "make_pcaps.py"
CAPTURES = sorted(PCAPS.glob("*.pcap"))

# RFC 5737 documentation ranges, RFC 1918 private ranges, RFC 3849 IPv6
# documentation, plus link-local/multicast that hosts on those nets use.
ALLOWED_NETS = [ipaddress.ip_network(n) for n in (
    "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24",
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
    "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "255.255.255.255/32", "0.0.0.0/32",
    "2001:db8::/32", "fe80::/10", "fd00::/8", "ff00::/8", "::1/128", "::/128",
)]
MAX_BYTES = 200 * 1024


def make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(MAKE), *args], capture_output=True, text=True, timeout=300)


def test_captures_exist() -> None:
    names = {p.name for p in CAPTURES}
    assert {"benign-web.pcap", "benign-dns.pcap", "attacks-web.pcap", "attacks-scan.pcap"} <= names


def test_committed_captures_match_their_scenarios() -> None:
    proc = make("--check")
    assert proc.returncode == 0, proc.stderr


def test_check_names_the_capture_that_drifted(tmp_path: Path) -> None:
    # A partial copy: the check reports the absent captures as missing without building them.
    for name in ("benign-dns.pcap", "benign-services.pcap"):
        shutil.copy(PCAPS / name, tmp_path / name)
    victim = tmp_path / "benign-dns.pcap"
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0xFF
    victim.write_bytes(bytes(data))
    (tmp_path / "stray.pcap").write_bytes(b"")

    proc = make("--check", "--out", str(tmp_path))

    assert proc.returncode == 1
    assert "benign-dns.pcap: differs" in proc.stderr
    assert "attacks-icmp.pcap: missing" in proc.stderr
    assert "stray.pcap: no scenario produces it" in proc.stderr
    assert "benign-services.pcap" not in proc.stderr


def test_generation_writes_what_check_compares(tmp_path: Path) -> None:
    proc = make("--out", str(tmp_path), "attacks-dns.pcap")
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["attacks-dns.pcap"]
    assert (tmp_path / "attacks-dns.pcap").read_bytes() == (PCAPS / "attacks-dns.pcap").read_bytes()


def test_unknown_capture_name_is_a_usage_error() -> None:
    proc = make("--check", "no-such.pcap")
    assert proc.returncode == 2
    assert "no scenario produces no-such.pcap" in proc.stderr


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_capture_is_small_ordered_and_on_safe_addresses(path: Path) -> None:
    assert path.stat().st_size < MAX_BYTES
    decoder = Decoder()
    last_ts = 0.0
    n = 0
    for ts, data, _wirelen, linktype in open_capture(str(path)):
        n += 1
        assert linktype == 1, f"{path.name} packet {n}: link type {linktype}, expected Ethernet"
        assert ts >= last_ts, f"{path.name} packet {n}: time goes backwards"
        last_ts = ts
        pkt = decoder.decode(data, linktype)
        assert pkt.events is None, f"{path.name} packet {n}: decoder events {pkt.events}"
        for packed in (pkt.src, pkt.dst):
            addr = ipaddress.ip_address(ip_to_str(packed))
            assert any(addr in net for net in ALLOWED_NETS), f"{path.name} packet {n}: {addr} is not a safe address"
    assert n > 0


# --- the shared crafting helpers ---------------------------------------------------------------

@pytest.fixture(scope="module")
def craft():
    sys.path.insert(0, str(PCAPS))
    try:
        import craft as mod
        yield mod
    finally:
        sys.path.remove(str(PCAPS))


def test_tcp_conversation_has_consistent_seq_and_ack(craft) -> None:
    from scapy.layers.inet import TCP
    big = bytes(range(256)) * 12            # 3072 bytes: three segments at MSS 1460
    pkts = craft.tcp_conversation("192.168.1.2", "10.0.0.2", 40000, 80,
                                  [(b"GET / HTTP/1.1\r\n\r\n", big), (b"", b"banner")], craft.BASE_TS, mss=1460)
    flags = [str(p[TCP].flags) for p in pkts]
    assert flags[:3] == ["S", "SA", "A"]
    assert flags[-3:] == ["FA", "FA", "A"]
    # Replay both directions' byte streams: every segment starts where the previous
    # one from the same side ended, and every ACK acknowledges exactly what the
    # other side has sent so far.
    client, server = pkts[0][TCP].seq, pkts[1][TCP].seq
    assert pkts[1][TCP].ack == client + 1
    nxt = {"c": client + 1, "s": server + 1}
    seen = {"c": b"", "s": b""}
    for p in pkts[2:]:
        side, other = ("c", "s") if p[TCP].sport == 40000 else ("s", "c")
        assert p[TCP].seq == nxt[side]
        assert p[TCP].ack == nxt[other]
        payload = bytes(p[TCP].payload)
        assert len(payload) <= 1460
        seen[side] += payload
        nxt[side] += len(payload) + (1 if "F" in str(p[TCP].flags) else 0)
    assert seen["c"] == b"GET / HTTP/1.1\r\n\r\n"
    assert seen["s"] == big + b"banner"


def test_helpers_are_deterministic_and_set_time(craft) -> None:
    def build():
        return (craft.tcp_request("192.168.1.2", "10.0.0.2", 40000, 80, b"a", b"b", craft.BASE_TS + 5)
                + craft.dns_exchange("192.168.1.2", "10.0.0.53", "www.example.com", craft.BASE_TS, answers=["192.0.2.1"])
                + craft.icmp_echo("192.168.1.2", "10.0.0.1", craft.BASE_TS)
                + [craft.icmp_packet("203.0.113.1", "10.0.0.1", craft.BASE_TS, type=13)])
    first, second = build(), build()
    assert [bytes(p) for p in first] == [bytes(p) for p in second]
    assert [float(p.time) for p in first] == [float(p.time) for p in second]
    assert all(craft.BASE_TS <= float(p.time) < craft.BASE_TS + 60 for p in first)


def test_dns_exchange_answers_the_question(craft) -> None:
    from scapy.layers.dns import DNS
    query, answer = craft.dns_exchange("192.168.1.2", "10.0.0.53", "www.example.com", craft.BASE_TS,
                                       answers=["192.0.2.1"], txid=0x1234)
    assert query[DNS].id == answer[DNS].id == 0x1234
    assert query[DNS].qr == 0 and answer[DNS].qr == 1
    assert [rr.rdata for rr in answer[DNS].an] == ["192.0.2.1"]
    assert float(answer.time) > float(query.time)
