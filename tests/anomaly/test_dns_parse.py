"""The DNS question parser and the entropy measure behind dns-tunnel."""

from __future__ import annotations

import struct

import pytest

from netsentry.anomaly.dns import entropy, question_labels


def query(name: bytes, flags: int = 0x0100) -> bytes:
    qname = b"".join(bytes([len(p)]) + p for p in name.split(b".")) + b"\0"
    return struct.pack("!HHHHHH", 7, flags, 1, 0, 0, 0) + qname + b"\0\x01\0\x01"


def test_labels_of_a_query():
    data = b"pad" + query(b"www.example.com")
    assert question_labels(data, 3, len(data)) == [b"www", b"example", b"com"]


@pytest.mark.parametrize("data", [
    query(b"www.example.com")[:20],                      # truncated in a label
    struct.pack("!HHHHHH", 7, 0x100, 1, 0, 0, 0) + b"\xc0\x0c",   # compression pointer
    struct.pack("!HHHHHH", 7, 0x100, 1, 0, 0, 0) + b"\x03www",    # no terminating zero
])
def test_malformed_questions_give_none(data):
    assert question_labels(data, 0, len(data)) is None


def test_entropy():
    assert entropy(b"") == 0.0
    assert entropy(b"aaaa") == 0.0
    assert entropy(b"abcd") == pytest.approx(2.0)
    assert entropy(bytes(range(32))) == pytest.approx(5.0)
