"""QUIC (applayer/quic.py): the Initial keys of RFC 9001's appendix A, Initial packets
encrypted here (header protection, AES-128-GCM) whose CRYPTO frames carry a ClientHello
split across two packets sent out of order, v1 and v2, a gQUIC Q046 CHLO (CYU, SNI, UA),
the keywords and records, and hostile input (every truncation: an event or ParserError)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from applayer_helpers import alerts, replay, udp_exchange
from tls_builders import client_hello, server_hello

from netsentry.applayer import quic
from netsentry.applayer.registry import ParserError

pytestmark = pytest.mark.skipif(not quic.HAVE_CRYPTO, reason="the cryptography package is not installed")


def test_rfc9001_initial_secrets():
    """RFC 9001 A.1: the client's Initial key, iv and hp for DCID 8394c8f03e515708."""
    import hashlib
    import hmac
    dcid = bytes.fromhex("8394c8f03e515708")
    initial = hmac.new(quic._SALT_V1, dcid, hashlib.sha256).digest()
    client = quic._expand_label(initial, b"client in", 32)
    assert client.hex() == "c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea"
    assert quic._expand_label(client, b"quic key", 16).hex() == "1f369613dd76d5467730efcbe3b1a22d"
    assert quic._expand_label(client, b"quic iv", 12).hex() == "fa044b2f42a3fd3b46fb255c"
    assert quic._expand_label(client, b"quic hp", 16).hex() == "9f50449e04a0e810283a1e9933adedd2"


def varint(v: int) -> bytes:
    if v < 64:
        return bytes([v])
    if v < 16384:
        return struct.pack(">H", 0x4000 | v)
    return struct.pack(">I", 0x80000000 | v)


def crypto_frame(offset: int, data: bytes) -> bytes:
    return b"\x06" + varint(offset) + varint(len(data)) + data


def initial(version: int, dcid: bytes, frames: bytes, to_server: bool, pn: int = 0, pad_to: int = 0) -> bytes:
    """An Initial packet, encrypted as an endpoint would (RFC 9001 5.3, 5.4)."""
    keys = quic.initial_keys(version, dcid)
    assert keys is not None
    k = keys[0 if to_server else 1]
    payload = frames + b"\x00" * max(0, pad_to - len(frames))
    kind = 1 if version == quic.V2 else 0
    first = 0xC0 | (kind << 4) | 0x01                  # a 2-byte packet number
    pn_bytes = struct.pack(">H", pn)
    scid = b"\x05" * 8
    length = len(pn_bytes) + len(payload) + 16
    header = bytes([first]) + struct.pack(">I", version) + bytes([len(dcid)]) + dcid + bytes([len(scid)]) + scid
    header += varint(0) + struct.pack(">H", 0x4000 | length) + pn_bytes
    nonce = (int.from_bytes(k.iv, "big") ^ pn).to_bytes(12, "big")
    sealed = k.key.encrypt(nonce, payload, header)
    pn_off = len(header) - 2
    enc = k.hp.encryptor()
    mask = enc.update(sealed[2:18]) + enc.finalize()
    out = bytearray(header + sealed)
    out[0] ^= mask[0] & 0x0F
    out[pn_off] ^= mask[1]
    out[pn_off + 1] ^= mask[2]
    return bytes(out)


DCID = bytes.fromhex("0011223344556677")
RULES = "\n".join((
    'alert quic any any -> any any (msg:"sni"; quic.sni; content:"quic.example"; sid:1;)',
    'alert quic any any -> any any (msg:"v1"; quic.version; content:"|00 00 00 01|"; sid:2;)',
    'alert quic any any -> any any (msg:"ja4"; ja4.hash; content:"q"; startswith; sid:3;)',
    'alert quic any any -> any any (msg:"ja3s"; ja3s.string; content:"771,49199"; sid:4;)',
    "alert quic any any -> any any (msg:\"v2\"; quic.version; content:\"|6b 33 43 cf|\"; sid:5;)",
)) + "\n"


@pytest.mark.parametrize("version", [quic.V1, quic.V2])
def test_initial_decrypt_crypto_out_of_order(tmp_path: Path, version: int):
    hello = client_hello("quic.example", ["h3"], version=0x0303)
    half = len(hello) // 2
    second = initial(version, DCID, crypto_frame(half, hello[half:]), True, pn=1, pad_to=300)
    first = initial(version, DCID, crypto_frame(0, hello[:half]), True, pn=0, pad_to=300)
    answer = initial(version, DCID, crypto_frame(0, server_hello()), False, pad_to=100)
    pcap = udp_exchange(tmp_path / "q.pcap", [(True, second), (True, first), (False, answer)],
                        dport=443, sport=50000)
    recs = replay(tmp_path, pcap, RULES, "outputs.eve-log.types=[alert, quic]")
    want_v = {2: 3, 5: 0} if version == quic.V1 else {2: 0, 5: 3}
    assert {sid: len(alerts(recs, sid)) for sid in (1, 3, 4)} == {1: 1, 3: 1, 4: 1}
    assert {sid: len(alerts(recs, sid)) for sid in (2, 5)} == want_v
    got = [r["quic"] for r in recs if r["event_type"] == "quic"]
    assert [g["version"] for g in got] == ["1" if version == quic.V1 else "v2"] * 3
    hello_rec = got[1]
    assert hello_rec["sni"] == "quic.example" and hello_rec["ja4"].startswith("q12d")
    assert hello_rec["ja3"]["string"].startswith("771,49199-156,0-10-11-16")
    assert {"name": "alpn", "type": 16, "values": ["h3"]} in hello_rec["extensions"]
    assert "sni" not in got[0]                      # the second half alone says nothing yet
    assert got[2]["ja3s"]["string"] == "771,49199,65281"


def chlo(tags: list[tuple[bytes, bytes]]) -> bytes:
    out = b"CHLO" + struct.pack("<HH", len(tags), 0)
    end = 0
    for tag, value in tags:
        end += len(value)
        out += tag + struct.pack("<I", end)
    return out + b"".join(v for _, v in tags)


def test_gquic_q046_cyu(tmp_path: Path):
    tags = [(b"PAD\x00", b"\x00" * 8), (b"SNI\x00", b"www.example.com"), (b"VER\x00", b"Q046"),
            (b"UAID", b"Chrome/90")]
    body = chlo(tags)
    frame = bytes([0xA0]) + b"\x01" + struct.pack(">H", len(body)) + body     # STREAM, id 1, a length
    pkt = bytes([0xC3]) + b"Q046" + bytes([0x50]) + b"\x11" * 8 + b"\x00\x00\x00\x01" + b"\x00" * 12 + frame
    pcap = udp_exchange(tmp_path / "g.pcap", [(True, pkt)], dport=443, sport=50001)
    rules = ('alert quic any any -> any any (quic.cyu.string; content:"46,PAD-SNI-VER-UAID"; sid:1;)\n'
             'alert quic any any -> any any (quic.ua; content:"Chrome"; sid:2;)\n'
             'alert quic any any -> any any (quic.version; content:"Q046"; sid:3;)\n')
    recs = replay(tmp_path, pcap, rules, "outputs.eve-log.types=[alert, quic]")
    assert {sid: len(alerts(recs, sid)) for sid in (1, 2, 3)} == {1: 1, 2: 1, 3: 1}
    rec = [r["quic"] for r in recs if r["event_type"] == "quic"][0]
    assert rec["version"] == "Q046" and rec["sni"] == "www.example.com" and rec["ua"] == "Chrome/90"
    import hashlib
    assert rec["cyu"] == [{"hash": hashlib.md5(b"46,PAD-SNI-VER-UAID").hexdigest(), "string": "46,PAD-SNI-VER-UAID"}]


def test_probe():
    assert quic.probe(initial(quic.V1, DCID, crypto_frame(0, b"x"), True), True) is True
    assert quic.probe(b"\x40\x01\x02", True) is True                 # a short header: QUIC
    assert quic.probe(b"\xc0\x00\x00", True) is False                # a cut long header
    assert quic.probe(b"", True) is None


def test_truncations_are_events_not_crashes():
    hello = client_hello("quic.example", ["h3"])
    pkts = [initial(quic.V1, DCID, crypto_frame(0, hello), True, pad_to=300),
            bytes([0xC3]) + b"Q046" + bytes([0x50]) + b"\x11" * 8 + b"\x00" * 16 + b"\xa0\x01\x00\x10" + b"CHLO"]
    for pkt in pkts:
        for cut in range(1, len(pkt), 7):
            p = quic.QuicParser()
            try:
                p.parse(pkt[:cut], True)
            except ParserError:
                pass
            assert all(e in quic.EVENTS for tx in p.txs for e in (tx.events or ()))
    p = quic.QuicParser()
    bad = bytearray(pkts[0])
    bad[-5] ^= 0xFF                                  # a damaged tag: does not decrypt
    with pytest.raises(ParserError):
        p.parse(bytes(bad), True)
    assert p.txs[-1].events == {"failed_decrypt"}
