"""TLS application data spanning segments: its body is counted, not buffered (applayer/tls.py
`TlsParser.skip`), and the record still takes effect on the segment that completes it, as
a buffered record did. Each case is checked against feeding the same bytes in one piece."""

from __future__ import annotations

import struct

import pytest

from netsentry.applayer.registry import Encrypted, Incomplete
from netsentry.applayer.tls import TlsParser
from tests.applayer.tls_builders import client_hello, handshake_record, server_hello


def app_record(n: int, version: int = 0x0303) -> bytes:
    return struct.pack("!BHH", 0x17, version, n) + bytes(range(256)) * (n // 256) + bytes(n % 256)


def handshaken(settings: dict | None = None) -> TlsParser:
    p = TlsParser(settings)
    p.parse(handshake_record(client_hello("example.com")), True)
    p.parse(handshake_record(server_hello()), False)
    return p


def state(p: TlsParser) -> tuple:
    tx = p.tx
    return (tx.handshake_done, list(tx.done), list(tx.progress), p.app_data, list(p.version),
            list(tx.conn_version), tx.record_version, tx.updated)


def test_record_takes_effect_on_its_last_segment() -> None:
    p = handshaken()
    rec = app_record(5000, version=0x0301)
    p.tx.updated = 0
    p.parse(rec[:1400], False)
    assert p.skip[0] == len(rec) - 1400
    assert not p.rec[0]                      # nothing buffered
    assert not p.tx.handshake_done and p.version[0] == 0x0303
    assert p.tx.updated == 2                 # bytes of the side arrived: the tx is touched
    p.parse(rec[1400:2800], False)
    assert not p.tx.handshake_done
    p.parse(rec[2800:], False)
    assert p.skip[0] == 0
    assert p.tx.handshake_done and p.tx.done == [True, True]
    assert p.version[0] == 0x0301            # the record's header version, applied when whole


@pytest.mark.parametrize("cuts", [[3], [5], [6, 4000], [1400, 2800, 4200], [4999], [5005],
                                  [5006], [2000, 5005, 5007, 6000]])
def test_same_state_as_whole(cuts: list[int]) -> None:
    """Records cut anywhere (inside a header, at a body's end, across two records) leave the
    parser where feeding all bytes at once does."""
    data = app_record(5000) + app_record(300, version=0x0302) + handshake_record(b"\x14\x00\x00\x00")[:5]
    whole = handshaken()
    whole.parse(data, False)
    cut = handshaken()
    pos = 0
    for c in cuts + [len(data)]:
        try:
            cut.parse(data[pos:c], False)
        except Incomplete:
            pass        # bytes kept for a record whose body is not all in: no app-layer update
        pos = c
    assert state(cut) == state(whole)
    assert bytes(cut.rec[0]) == bytes(whole.rec[0])


def test_client_early_data_before_server_hello() -> None:
    """A client's application data before the ServerHello does not mark the session
    encrypted (0-RTT), however it is cut."""
    p = TlsParser()
    p.parse(handshake_record(client_hello("example.com")), True)
    rec = app_record(3000)
    p.parse(rec[:100], True)
    p.parse(rec[100:], True)
    assert not p.app_data
    assert p.tx.handshake_done


def test_encrypted_said_once_on_completing_segment() -> None:
    p = handshaken({"encryption-handling": "track-only"})
    rec = app_record(4000)
    p.parse(rec[:1000], False)               # header read, body still to come: not yet
    with pytest.raises(Encrypted):
        p.parse(rec[1000:], False)
    p.parse(app_record(2000)[:500], False)   # said once only
    p.parse(app_record(10), True)
