"""DNS wire-format parse: `read_name`'s one-slice path for plain names gives what the
general label-and-pointer walk gives (`_read_name_general`, the reference), at
the limits too (one label, 255 labels, names of 1025 and 1026 bytes, a name
running off the end, pointers), and `parse_message` reads every section."""

from __future__ import annotations

import random
import struct

import pytest

from netsentry.applayer.dns import _read_name_general, parse_message, read_name


def labels(*parts: bytes) -> bytes:
    return b"".join(bytes([len(p)]) + p for p in parts) + b"\x00"


CASES = [
    b"\x00",                                             # the root
    labels(b"com"),                                      # one label
    labels(b"mail", b"example", b"org"),
    labels(b"a" * 63, b"b" * 63),
    labels(*[b"x"] * 255),                               # 255 labels: the most without an event
    labels(*[b"x"] * 256),                               # too_many_labels
    labels(*[b"y" * 63] * 16) + b"",                     # 1023 bytes
    labels(*([b"y" * 63] * 16 + [b"z"])),                # 1025 bytes: the longest kept whole
    labels(*([b"y" * 63] * 16 + [b"zz"])),               # 1026 bytes: name_too_long
    b"\x03www\x07exam",                                  # runs off the end
    b"\x03www\x00",
    b"\x03www\xc0\x0c",                                  # a pointer after a label
    b"\x03www\x80",                                      # a reserved label type
]


@pytest.mark.parametrize("wire", CASES, ids=range(len(CASES)))
def test_plain_names_as_the_general_walk(wire: bytes) -> None:
    msg = b"\x00" * 12 + wire + b"\x00\x01\x00\x01"
    got_events: set[str] = set()
    want_events: set[str] = set()
    assert read_name(msg, 12, got_events) == _read_name_general(msg, 12, want_events)
    assert got_events == want_events


def test_random_names_as_the_general_walk() -> None:
    rnd = random.Random(12)
    for _ in range(20000):
        n = rnd.randrange(0, 80)
        msg = bytes(rnd.choice((0, 1, 2, 3, 5, 63, 64, 0xC0, 97, 98)) for _ in range(n))
        off = rnd.randrange(0, n + 1)
        e1: set[str] = set()
        e2: set[str] = set()
        assert (read_name(msg, off, e1), e1) == (_read_name_general(msg, off, e2), e2), (msg, off)


def test_parse_message_reads_every_section() -> None:
    q = labels(b"www", b"example", b"com")
    header = struct.pack("!HHHHHH", 0x1234, 0x8180, 1, 2, 1, 1)
    answer_cname = b"\xc0\x0c" + struct.pack("!HHIH", 5, 1, 300, 6) + b"\x03cdn\xc0\x10"
    answer_a = b"\xc0\x2d" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 7])
    authority = b"\xc0\x10" + struct.pack("!HHIH", 2, 1, 900, 5) + b"\x02ns\xc0\x10"
    opt = b"\x00" + struct.pack("!HHIH", 41, 4096, 0, 0)
    msg = header + q + b"\x00\x01\x00\x01" + answer_cname + answer_a + authority + opt
    m = parse_message(msg)
    assert m is not None and (m.id, m.flags, m.is_response) == (0x1234, 0x8180, True)
    assert m.queries == [(b"www.example.com", 1)]
    assert m.answers == [(b"www.example.com", 5, 300, b"cdn.example.com"),
                         (b"cdn.example.com", 1, 60, bytes([192, 0, 2, 7]))]
    assert m.authorities == [(b"example.com", 2, 900, b"ns.example.com")]
    assert m.additionals == [(b"", 41, 0, b"")]
    assert m.events == set()
    # cut inside the answers: malformed_data, and nothing after it is read
    cut = parse_message(msg[:len(header + q) + 4 + len(answer_cname) + 5])
    assert cut is not None and len(cut.answers) == 1 and "malformed_data" in cut.events
    assert cut.authorities == [] and cut.additionals == []
