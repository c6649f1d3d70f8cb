"""JA4 on TLS over TCP (applayer/ja4.py, shared with QUIC): FoxIO's example ClientHello
gives its published fingerprint; the hello is kept only when JA4 is on
(`app-layer.protocols.tls.ja4-fingerprints` yes, or auto with a rule on `ja4.hash`)."""

from __future__ import annotations

import struct
from pathlib import Path

from applayer_helpers import alerts, replay, tcp_session
from tls_builders import _ext, _hs, handshake_record, server_hello

from netsentry.applayer.ja4 import ja4
from netsentry.applayer.tls import TlsParser
from netsentry.config import load_config
from netsentry.rules import UnsupportedError, load_rules

# FoxIO's JA4 README example (Chrome): its ja4_r lists these ciphers, extensions (SNI and
# ALPN left out) and signature algorithms; its JA4 is the one below
FOXIO_JA4 = "t13d1516h2_8daaf6152771_e5627efa2ab1"
CIPHERS = [0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC013, 0xC014,
           0x009C, 0x009D, 0x002F, 0x0035]
OTHER_EXTS = [0x0017, 0xFF01, 0x000A, 0x000B, 0x0023, 0x0005, 0x000D, 0x0012, 0x0033, 0x002D, 0x002B,
              0x001B, 0x0015, 0x4469]
SIGS = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]


def hello(sni: str | None = "example.com", alpns: tuple[bytes, ...] = (b"h2", b"http/1.1"),
          grease: bool = True) -> bytes:
    """The example's ClientHello (legacy version 1.2, supported_versions 1.3), GREASE first
    in the ciphers, the extensions and supported_versions, as browsers send them."""
    g = [0x0A0A] if grease else []
    exts = _ext(0x1A1A, b"") if grease else b""
    if sni is not None:
        host = sni.encode()
        exts += _ext(0, struct.pack("!HBH", len(host) + 3, 0, len(host)) + host)
    for et in OTHER_EXTS:
        if et == 0x000D:
            body = struct.pack("!H", 2 * len(SIGS)) + b"".join(struct.pack("!H", s) for s in SIGS)
        elif et == 0x002B:
            vs = g + [0x0304, 0x0303]
            body = bytes([2 * len(vs)]) + b"".join(struct.pack("!H", v) for v in vs)
        else:
            body = b""
        exts += _ext(et, body)
        if et == 0x0023 and alpns:
            lst = b"".join(bytes([len(a)]) + a for a in alpns)
            exts += _ext(16, struct.pack("!H", len(lst)) + lst)
    ciphers = g + CIPHERS
    body = struct.pack("!H", 0x0303) + b"\x11" * 32 + b"\x00"
    body += struct.pack("!H", 2 * len(ciphers)) + b"".join(struct.pack("!H", c) for c in ciphers)
    body += b"\x01\x00" + struct.pack("!H", len(exts)) + exts
    return _hs(1, body)


def parsed(msg: bytes, ja4_on: bool) -> TlsParser:
    p = TlsParser({"encryption-handling": "full", "ja4": ja4_on, "log-ja4": True,
                   "ja4-fingerprints": "yes" if ja4_on else "no"})
    p.parse(handshake_record(msg), True)
    return p


def test_foxio_example_clienthello_gives_its_published_ja4():
    tx = parsed(hello(), True).tx
    msg, exts = tx.hello
    assert ja4(msg, exts, "q") == "q" + FOXIO_JA4[1:]     # one builder: QUIC differs by its letter
    assert tx.ja4 == FOXIO_JA4
    assert tx.eve()["ja4"] == FOXIO_JA4
    assert tx.hello is None                     # the hello's bytes are let go once worked out


def test_ja4_parts_without_sni_alpn_or_with_a_binary_alpn():
    assert parsed(hello(sni=None), True).tx.ja4.startswith("t13i1515h2_8daaf6152771_")
    assert parsed(hello(alpns=()), True).tx.ja4.startswith("t13d151500_8daaf6152771_")
    # an ALPN whose ends are not alphanumeric: the first and last hex digits of its bytes
    assert parsed(hello(alpns=(b"\xab\x01",),), True).tx.ja4[8:10] == "a1"
    # GREASE is left out: the same fingerprint without it
    assert parsed(hello(grease=False), True).tx.ja4 == FOXIO_JA4


def test_nothing_kept_when_ja4_is_off():
    tx = parsed(hello(), False).tx
    assert tx.hello is None and tx.ja4 is None and "ja4" not in tx.eve()
    assert tx.ja3 is not None                       # the rest of the hello is read as before


def test_damaged_hello_gives_no_ja4_and_no_crash():
    msg = hello()
    cut = _hs(1, msg[4:4 + 36])                     # the cipher list's length, then nothing
    p = parsed(cut, True)
    assert p.tx.ja4 is None


SESSION = [(True, handshake_record(hello())), (False, handshake_record(server_hello()))]
RULE = f'alert tls any any -> any any (msg:"ja4"; requires: feature ja4; ja4.hash; content:"{FOXIO_JA4}"; sid:1;)\n'


def test_rule_on_ja4_hash_turns_it_on_and_the_alert_carries_it(tmp_path: Path):
    pcap = tcp_session(tmp_path / "t.pcap", SESSION, dport=443)
    recs = replay(tmp_path, pcap, RULE)
    [a] = alerts(recs, 1)
    assert a["tls"]["ja4"] == FOXIO_JA4
    [t] = [r for r in recs if r["event_type"] == "tls"]
    assert t["tls"]["ja4"] == FOXIO_JA4
    # eve-log tls: {ja4: off}: records without it, alerts still with it
    recs = replay(tmp_path, pcap, RULE, "outputs.eve-log.tls.ja4=false")
    assert alerts(recs, 1)[0]["tls"]["ja4"] == FOXIO_JA4
    assert ["ja4" in r["tls"] for r in recs if r["event_type"] == "tls"] == [False]


def test_auto_without_a_rule_computes_nothing_and_no_skips_ja4_rules(tmp_path: Path):
    pcap = tcp_session(tmp_path / "t.pcap", SESSION, dport=443)
    recs = replay(tmp_path, pcap, "")
    assert ["ja4" in r["tls"] for r in recs if r["event_type"] == "tls"] == [False]
    recs = replay(tmp_path, pcap, "", "app-layer.protocols.tls.ja4-fingerprints=yes")
    assert [r["tls"].get("ja4") for r in recs if r["event_type"] == "tls"] == [FOXIO_JA4]
    # no: `requires: feature ja4` is not met, the rule is skipped (reported unsupported)
    rf = tmp_path / "t.rules"
    rf.write_text(RULE)
    config = load_config(None, ["app-layer.protocols.tls.ja4-fingerprints=no"])
    [err] = load_rules([rf], config).errors
    assert isinstance(err, UnsupportedError) and "feature ja4" in str(err)
    assert not load_rules([rf], load_config(None, [])).errors
