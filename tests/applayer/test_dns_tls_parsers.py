"""DNS and TLS parsers on crafted bytes, and every parser under random and mutated input."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.dns import DNS, DNSQR, DNSRR
from tls_builders import certificate, certificate_handshake, client_hello, handshake_record, server_hello

from netsentry.applayer.dns import DnsParser, parse_message, read_name
from netsentry.applayer.dns import probe as dns_probe
from netsentry.applayer.http import HttpParser
from netsentry.applayer.registry import ParserError
from netsentry.applayer.tls import TlsParser
from netsentry.applayer.tls import probe as tls_probe
from netsentry.applayer.x509 import parse_certificate


class _Tcp:
    proto = 6


def test_dns_message_sections_and_compression():
    msg = bytes(DNS(id=3, qr=1, opcode=0, qd=DNSQR(qname="a.example.com"),
                    an=DNSRR(rrname="a.example.com", type="CNAME", rdata="b.example.com"),
                    ar=DNSRR(rrname="ns.example.com", type="A", rdata="192.0.2.1")))
    m = parse_message(msg)
    assert m.id == 3 and m.is_response and m.queries == [(b"a.example.com", 1)]
    assert m.answers[0][3] == b"b.example.com" and m.additionals[0][0] == b"ns.example.com"


def test_dns_name_pointer_loop_ends_the_name():
    msg = b"\x00" * 12 + b"\x01a\xc0\x0c"
    name, end = read_name(msg, 12)
    assert name.startswith(b"a") and end == 16


def test_dns_name_events():
    # a pointer to itself: infinite_loop; a 300-label chain: too_many_labels; a name over
    # 1025 bytes: truncated, name_too_long (Suricata's dns_parse_name limits)
    ev: set[str] = set()
    read_name(b"\x00" * 12 + b"\x01a\xc0\x0e", 12, ev)
    assert ev == {"infinite_loop"}
    ev = set()
    read_name(b"\x01a" * 300 + b"\x00", 0, ev)
    assert "too_many_labels" in ev
    ev = set()
    name, _ = read_name((b"\x3f" + b"x" * 63) * 20 + b"\x00", 0, ev)
    assert ev == {"name_too_long"} and len(name) == 1025


def test_dns_parser_events_on_transactions():
    p = DnsParser()
    p.parse(bytes(DNS(id=1, opcode=9, z=1, qd=DNSQR(qname="x.test"))), True)
    assert p.txs[0].events == {"invalid_opcode", "z_flag_set"}
    p.parse(bytes(DNS(id=1, qr=1, qd=DNSQR(qname="x.test")))[:-3], False)     # cut in the question
    assert "malformed_data" in p.txs[0].events and len(p.txs) == 1
    p.parse(bytes(DNS(id=2, qr=1, qd=DNSQR(qname="y.test"))), True)          # an answer to the server
    assert "not_a_request" in p.txs[0].events and len(p.txs) == 1
    p.parse(bytes(DNS(id=3, qd=DNSQR(qname="z.test"))), False)                 # a question to the client
    assert p.txs[1].events == {"not_a_response"}
    ok = bytes(DNS(id=4, qr=1, qd=DNSQR(qname="a.test"), ar=DNSRR(rrname="a.test", rdata="192.0.2.1")))
    assert parse_message(ok[:-2]).events == {"invalid_additionals"}


def test_dns_tcp_messages_across_segments_and_ids():
    q1 = bytes(DNS(id=1, qd=DNSQR(qname="one.test")))
    q2 = bytes(DNS(id=2, qd=DNSQR(qname="two.test")))
    stream = struct.pack("!H", len(q1)) + q1 + struct.pack("!H", len(q2)) + q2
    p = DnsParser()
    for i in range(0, len(stream), 5):
        p.parse(stream[i:i + 5], True, _Tcp())
    r2 = bytes(DNS(id=2, qr=1, qd=DNSQR(qname="two.test")))
    p.parse(struct.pack("!H", len(r2)) + r2, False, _Tcp())
    # one transaction per message (Suricata 8): two requests, then the response of id 2
    assert [(t.tx_id, t.id) for t in p.txs] == [(0, 1), (1, 2), (2, 2)]
    assert [t.request is not None for t in p.txs] == [True, True, False]
    assert p.txs[2].response is not None and p.txs[2].alert_eve()["type"] == "response"


def test_dns_probe():
    assert dns_probe(bytes(DNS(id=1, qd=DNSQR(qname="x.test"))), True)
    assert not dns_probe(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", True)
    assert dns_probe(bytes(DNS(id=1, opcode=9, qd=DNSQR(qname="x.test"))), True)   # opcode is the parser's business
    assert not dns_probe(struct.pack("!6H", 1, 0x8180, 0, 0, 0, 0) + b"junk", False)  # no records, yet more than a header


def test_tls_client_hello_over_records_and_certificate():
    p = TlsParser()
    p.parse(handshake_record(client_hello("sni.test", alpns=["h2"]), split=17), True)
    tx = p.tx
    assert tx.sni == b"sni.test" and tx.client_alpns == ["h2"] and tx.state & 1
    assert tx.ja3.startswith("771,49199-156,0-10-11-16,29-23,0")
    cert = certificate("CN=s, O=Org", "CN=ca", serial=258, sans=["s", "t"])
    p.parse(handshake_record(server_hello() + certificate_handshake([cert]) + b"\x0e\x00\x00\x00"), False)
    assert tx.version == 0x0303 and tx.handshake_done
    c = tx.certs[0]
    assert (c.subject, c.issuer, c.serial, c.san) == ("CN=s, O=Org", "CN=ca", "01:02", [b"s", b"t"])
    assert c.not_before == 1420070400 and len(c.fingerprint) == 59


def test_tls_probe():
    assert tls_probe(b"\x16\x03\x01\x02\x00", True)
    assert tls_probe(b"GET / HTTP/1.1", True) is False


# --- hostile bytes: the parsers never raise -----------------------------------------------------

SEEDS = [
    b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\nffffffff\r\n",
    handshake_record(client_hello("x") + certificate_handshake([certificate("CN=a", "CN=b")])),
    struct.pack("!H", 40) + bytes(DNS(id=1, qd=DNSQR(qname="fuzz.test"))),
]


def _feed_all(data: bytes, cuts: list[int]) -> None:
    pieces, last = [], 0
    for c in sorted(set(c % (len(data) + 1) for c in cuts)):
        pieces.append(data[last:c])
        last = c
    pieces.append(data[last:])
    for parser in (HttpParser(), TlsParser(), DnsParser()):
        for i, piece in enumerate(pieces):
            try:
                parser.parse(piece, i % 2 == 0, _Tcp())
            except ParserError:
                pass        # the one exception a parser may raise: "not my protocol any more"
        if hasattr(parser, "eof"):
            parser.eof(False)
        for tx in parser.txs:
            eve = getattr(tx, "alert_eve", tx.eve)
            eve()
    parse_message(data)
    parse_certificate(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.lists(st.integers(min_value=0, max_value=600), max_size=6))
def test_parsers_never_raise_on_random_bytes(data, cuts):
    _feed_all(data, cuts)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=8),
       st.integers(0, 400))
def test_parsers_never_raise_on_mutated_messages(seed, flips, cut):
    data = bytearray(seed)
    for pos, val in flips:
        if data:
            data[pos % len(data)] = val
    _feed_all(bytes(data[:cut or len(data)]), [cut // 2])


def test_dns_rcode_and_tls_cert_chain_len_keywords():
    import sys
    from pathlib import Path
    from types import SimpleNamespace
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rules"))
    from rules_helpers import rule
    sig = rule("dns.rcode:3;", "alert dns any any -> any any")
    (_, _, check), = sig_tx_checks(sig)
    resp = parse_message(bytes(DNS(id=1, qr=1, rcode=3, qd=DNSQR(qname="nx.test"))))
    assert check(SimpleNamespace(request=None, response=resp), False)
    assert not check(SimpleNamespace(request=None, response=None), False)
    sig = rule("tls.cert_chain_len:0<>4;", "alert tls any any -> any any")
    (_, _, check), = sig_tx_checks(sig)
    assert check(SimpleNamespace(certs=[1, 2, 3]), False) and not check(SimpleNamespace(certs=[1, 2, 3, 4]), False)
    assert not check(SimpleNamespace(certs=[]), False)        # no Certificate message: no match


def sig_tx_checks(sig):
    return sig.tx_checks


def _probe_by_parsing(data: bytes) -> bool | None:
    """The DNS probe's decision as the full message parser makes it (the probe skips the parse)."""
    if len(data) < 12:
        return None
    _id, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", data, 0)
    if qd == 0 and not flags & 0x8000:
        return False
    if qd > 16 or an > 512 or ns > 512 or ar > 512:
        return False
    nrecords = qd + an + ns + ar
    if 2 * nrecords > len(data) or (nrecords == 0 and len(data) > 12):
        return False
    m = parse_message(data)
    return m is not None and (bool(m.queries) or qd == 0)


_DNS_SEEDS = [bytes(DNS(id=7, qd=DNSQR(qname="www.example.com"))),
              bytes(DNS(id=7, qr=1, qd=DNSQR(qname="a.test"), an=DNSRR(rrname="a.test", rdata="192.0.2.1"))),
              bytes(DNS(id=9, qr=1, qdcount=0)),
              b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01"]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_DNS_SEEDS), st.lists(st.tuples(st.integers(0, 80), st.sampled_from([0, 1, 3, 0x3F, 0xC0, 0xC1, 0xFF])),
                                             max_size=5), st.integers(0, 80))
def test_dns_probe_decides_as_the_message_parser(seed, flips, cut):
    """The probe reads only the header and the first question's end; it must say what a
    whole parse would (truncated names, pointers, counts), since it names every UDP flow."""
    data = bytearray(seed)
    for pos, val in flips:
        data[pos % len(data)] = val
    msg = bytes(data[:cut or len(data)])
    assert dns_probe(msg, True) == _probe_by_parsing(msg)


def test_dns_records_carry_opcode_and_rcode_in_every_message():
    # Suricata's DNS v3 log writes both for requests as well as responses
    p = DnsParser()
    p.parse(bytes(DNS(id=7, rd=1, qd=DNSQR(qname="a.test"))), True)
    req = p.txs[0].alert_eve()
    assert req["type"] == "request" and req["opcode"] == 0 and req["rcode"] == "NOERROR"
    p.parse(bytes(DNS(id=7, qr=1, opcode=2, rcode=3, qd=DNSQR(qname="a.test"))), False)
    resp = p.txs[1].alert_eve()
    assert resp["type"] == "response" and resp["opcode"] == 2 and resp["rcode"] == "NXDOMAIN"
    assert resp["tx_id"] == 1 and req["tx_id"] == 0
