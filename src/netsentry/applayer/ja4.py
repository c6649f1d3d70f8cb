"""JA4 (FoxIO's TLS client fingerprint), one builder for TLS over TCP (`t`, applayer/tls.py)
and QUIC (`q`, applayer/quic.py), as Suricata's rust/src/ja4.rs defines it from the
ClientHello: `{proto}{version}{d|i}{ciphers:02}{extensions:02}{alpn}` then two 12-hex
truncated SHA-256s, of the sorted cipher suites and of the sorted extensions (SNI and ALPN
left out) joined by `_` to the signature algorithms in their order. GREASE values are left
out everywhere.

Worked out only when read (a rule's `ja4.hash`, an EVE record that logs it): the parsers
keep the hello's body and its extension list, nothing more.
"""

from __future__ import annotations

import hashlib

# the version part: TLS, SSL and DTLS versions (anything else: "00")
_VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3", 0x0002: "s2",
             0xfeff: "d1", 0xfefd: "d2", 0xfefc: "d3"}


def _grease(v: int) -> bool:
    return (v & 0x0F0F) == 0x0A0A and (v >> 8) == (v & 0xFF)


def _u16s(b: bytes, start: int, end: int) -> list[int]:
    return [(b[i] << 8) | b[i + 1] for i in range(start, min(end, len(b)) - 1, 2)]


def ja4(msg: bytes, exts: list[tuple[int, bytes]], proto: str) -> str | None:
    """JA4 (FoxIO's client fingerprint) of a ClientHello body: `q` (QUIC) or `t`, the
    version, SNI or not, the counts of ciphers and extensions, the first ALPN's ends, then
    truncated sha256s of the sorted ciphers and of the sorted extensions (without SNI and
    ALPN) with the signature algorithms. GREASE values are left out."""
    try:
        off = 34
        off += 1 + msg[off]
        cl = (msg[off] << 8) | msg[off + 1]
        ciphers = [c for c in _u16s(msg, off + 2, off + 2 + cl) if not _grease(c)]
    except IndexError:
        return None
    version = (msg[0] << 8) | msg[1]
    types = [et for et, _ in exts if not _grease(et)]
    alpn = ""
    sigs: list[int] = []
    for et, ev in exts:
        if et == 43 and ev:
            vs = [v for v in _u16s(ev, 1, 1 + ev[0]) if not _grease(v)]
            if vs:
                version = max(vs)
        elif et == 16 and len(ev) >= 3 and ev[2]:
            first = ev[3:3 + ev[2]]
            alpn = first.decode("latin-1")
        elif et == 13 and len(ev) >= 2:
            sigs = [s for s in _u16s(ev, 2, 2 + ((ev[0] << 8) | ev[1])) if not _grease(s)]
    ver = _VERSIONS.get(version, "00")
    if alpn:
        a = alpn[0] + alpn[-1]
        if not (a[0].isascii() and a[0].isalnum() and a[1].isascii() and a[1].isalnum()):
            h = first.hex()
            a = h[0] + h[-1]
    else:
        a = "00"
    head = f"{proto}{ver}{'d' if 0 in types else 'i'}{min(len(ciphers), 99):02d}{min(len(types), 99):02d}{a}"

    def h12(s: str) -> str:
        return hashlib.sha256(s.encode()).hexdigest()[:12] if s else "000000000000"
    part_b = h12(",".join(f"{c:04x}" for c in sorted(ciphers)))
    ext_list = ",".join(f"{e:04x}" for e in sorted(t for t in types if t not in (0, 16)))
    if sigs:
        ext_list += "_" + ",".join(f"{s:04x}" for s in sigs)
    part_c = h12(ext_list) if types else "000000000000"
    return f"{head}_{part_b}_{part_c}"
