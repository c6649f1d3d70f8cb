"""x509.py's memos of names, OIDs and whole certificates never change what a certificate parses to."""

from __future__ import annotations

from tls_builders import certificate

from netsentry.applayer import x509


def cold(der: bytes) -> x509.Certificate | None:
    """The certificate parsed with empty memos: what the parser gives without them."""
    x509._NAMES.clear()
    x509._OIDS.clear()
    x509._CERTS.clear()
    return x509.parse_certificate(der)


def test_repeated_issuer_is_remembered_and_parses_the_same():
    a = certificate("CN=a.test, O=Org", "CN=Shared CA, O=CA Org, C=US", serial=5, sans=["a.test"])
    b = certificate("CN=b.test", "CN=Shared CA, O=CA Org, C=US", serial=6)
    want_a, want_b = cold(a), cold(b)
    x509._NAMES.clear()
    x509._OIDS.clear()
    x509._CERTS.clear()
    got_a = x509.parse_certificate(a)
    assert any(v == "CN=Shared CA, O=CA Org, C=US" for v in x509._NAMES.values())
    got_b = x509.parse_certificate(b)         # the issuer from the memo
    assert (got_a, got_b) == (want_a, want_b)
    assert got_b.issuer == "CN=Shared CA, O=CA Org, C=US" and got_b.subject == "CN=b.test"
    assert got_a.san == [b"a.test"]


def _overrunning_issuer(not_before: bytes, not_after: bytes) -> bytes:
    """A certificate whose issuer's CN value claims 2 bytes more than the name holds: the
    parser reads them from what follows the name (the validity header)."""
    der = certificate("CN=s", "CN=ca", not_before=not_before, not_after=not_after)
    assert der.count(b"\x0c\x02ca") == 1
    return der.replace(b"\x0c\x02ca", b"\x0c\x04ca")


def test_a_name_reading_past_its_end_is_not_remembered():
    # same issuer bytes, different bytes after them: the texts differ, as without a memo
    a = _overrunning_issuer(b"150101000000Z", b"300101000000Z")
    b = _overrunning_issuer(b"20150101000000Z", b"20300101000000Z")
    want_a, want_b = cold(a), cold(b)
    assert want_a is not None and want_b is not None and want_a.issuer != want_b.issuer
    x509._NAMES.clear()
    x509._OIDS.clear()
    x509._CERTS.clear()
    assert x509.parse_certificate(a) == want_a
    assert x509.parse_certificate(b) == want_b
    assert not any(v.startswith("CN=ca") for v in x509._NAMES.values())


def test_memo_is_bounded():
    x509._NAMES.clear()
    for i in range(x509.MEMO_MAX + 10):
        x509.parse_certificate(certificate(f"CN=host{i}", "CN=ca"))
    assert len(x509._NAMES) <= x509.MEMO_MAX
    assert len(x509._CERTS) <= x509.CERT_MEMO_MAX


def test_a_repeated_certificate_is_parsed_once_and_a_bad_one_is_not_kept():
    """A server's chain repeats in every handshake: the same DER gives the same (never
    changed) Certificate; one that does not parse is not remembered."""
    der = certificate("CN=repeat.test, O=Org", "CN=ca", serial=77, sans=["repeat.test", "www.repeat.test"])
    want = cold(der)
    first = x509.parse_certificate(der)
    again = x509.parse_certificate(bytes(bytearray(der)))       # equal bytes, another object
    assert first is again and first == want
    assert again.san == [b"repeat.test", b"www.repeat.test"] and again.serial == "4D"
    bad = der[:40]
    assert x509.parse_certificate(bad) is None and bad not in x509._CERTS
    assert x509.certificate_error(bad) in ("invalid_certificate", "certificate_invalid_length")
