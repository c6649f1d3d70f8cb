"""TLS handshake messages and a minimal DER certificate, built by hand for the parser tests."""

from __future__ import annotations

import struct


def der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    ln = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(ln)]) + ln + body


def oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    out = bytes([parts[0] * 40 + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        p >>= 7
        while p:
            chunk.append(0x80 | (p & 0x7F))
            p >>= 7
        out += bytes(reversed(chunk))
    return der(0x06, out)


_OIDS = {"CN": "2.5.4.3", "O": "2.5.4.10", "C": "2.5.4.6", "OU": "2.5.4.11", "L": "2.5.4.7", "ST": "2.5.4.8"}


def name(text: str) -> bytes:
    rdns = b""
    for part in text.split(", "):
        k, v = part.split("=", 1)
        rdns += der(0x31, der(0x30, oid(_OIDS[k]) + der(0x0C, v.encode("latin-1"))))
    return der(0x30, rdns)


def certificate(subject: str, issuer: str, *, serial: int = 1, sans: list[str] | None = None,
                not_before: bytes = b"150101000000Z", not_after: bytes = b"300101000000Z") -> bytes:
    alg = der(0x30, oid("1.2.840.113549.1.1.11") + b"\x05\x00")
    tbs = der(0xA0, der(0x02, b"\x02"))
    tbs += der(0x02, serial.to_bytes((serial.bit_length() + 7) // 8 or 1, "big"))
    tbs += alg + name(issuer)
    tbs += der(0x30, der(0x17, not_before) + der(0x17, not_after))
    tbs += name(subject)
    tbs += der(0x30, der(0x30, oid("1.2.840.113549.1.1.1") + b"\x05\x00") + der(0x03, b"\x00\x01\x02"))
    if sans:
        gn = der(0x30, b"".join(der(0x82, s.encode()) for s in sans))
        ext = der(0x30, oid("2.5.29.17") + der(0x04, gn))
        tbs += der(0xA3, der(0x30, ext))
    return der(0x30, der(0x30, tbs) + alg + der(0x03, b"\x00" + b"\x00" * 16))


def _hs(mtype: int, body: bytes) -> bytes:
    return bytes([mtype]) + len(body).to_bytes(3, "big") + body


def _ext(etype: int, body: bytes) -> bytes:
    return struct.pack("!HH", etype, len(body)) + body


def client_hello(sni: str, alpns: list[str] | None = None, version: int = 0x0303) -> bytes:
    host = sni.encode()
    exts = _ext(0, struct.pack("!HBH", len(host) + 3, 0, len(host)) + host)
    exts += _ext(10, struct.pack("!HHH", 4, 0x001D, 0x0017))
    exts += _ext(11, b"\x01\x00")
    if alpns:
        lst = b"".join(bytes([len(a)]) + a.encode() for a in alpns)
        exts += _ext(16, struct.pack("!H", len(lst)) + lst)
    body = struct.pack("!H", version) + b"\x11" * 32 + b"\x00"
    body += struct.pack("!HHH", 4, 0xC02F, 0x009C) + b"\x01\x00"
    body += struct.pack("!H", len(exts)) + exts
    return _hs(1, body)


def server_hello(version: int = 0x0303) -> bytes:
    body = struct.pack("!H", version) + b"\x22" * 32 + b"\x00" + struct.pack("!H", 0xC02F) + b"\x00"
    exts = _ext(0xFF01, b"\x00")
    body += struct.pack("!H", len(exts)) + exts
    return _hs(2, body)


def certificate_handshake(certs: list[bytes]) -> bytes:
    lst = b"".join(len(c).to_bytes(3, "big") + c for c in certs)
    return _hs(11, len(lst).to_bytes(3, "big") + lst)


def handshake_record(messages: bytes, split: int = 0, version: int = 0x0303) -> bytes:
    """Handshake bytes as TLS records; `split` > 0 cuts them into records of that size."""
    step = split or len(messages)
    return b"".join(struct.pack("!BHH", 22, version, len(messages[i:i + step])) + messages[i:i + step]
                    for i in range(0, len(messages), step))
