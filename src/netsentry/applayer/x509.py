"""The few X.509 fields TLS rules and EVE use, read from DER without a crypto library.

Subject and issuer are written as Suricata writes them (rust x509-parser's
display): "C=US, ST=WA, CN=name" in certificate order; the serial as
uppercase hex bytes joined by ':'; the fingerprint as SHA-1 of the DER, lowercase
hex joined by ':'. A certificate that does not parse yields None, never an exception.
"""

from __future__ import annotations

import calendar
import hashlib
from dataclasses import dataclass, field

OID_NAMES = {
    "2.5.4.3": "CN", "2.5.4.4": "SN", "2.5.4.5": "serialNumber", "2.5.4.6": "C", "2.5.4.7": "L",
    "2.5.4.8": "ST", "2.5.4.9": "street", "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.12": "title",
    "2.5.4.42": "GN", "2.5.4.43": "initials", "2.5.4.46": "dnQualifier", "2.5.4.65": "pseudonym",
    "1.2.840.113549.1.9.1": "Email", "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID", "2.5.4.15": "businessCategory",
    "1.3.6.1.4.1.311.60.2.1.3": "jurisdictionC", "1.3.6.1.4.1.311.60.2.1.2": "jurisdictionST",
    "2.5.4.17": "postalCode",
}


@dataclass
class Certificate:
    der: bytes
    subject: str = ""
    issuer: str = ""
    serial: str = ""
    not_before: int = 0          # epoch seconds
    not_after: int = 0
    san: list[bytes] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        return ":".join(f"{b:02x}" for b in hashlib.sha1(self.der).digest())  # noqa: S324 - Suricata's field


def _tlv(data: bytes, off: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the DER element at `off`; ValueError if it does not fit."""
    if off + 2 > len(data):
        raise ValueError("short")
    tag = data[off]
    ln = data[off + 1]
    off += 2
    if ln & 0x80:
        nb = ln & 0x7F
        if nb == 0 or nb > 4 or off + nb > len(data):
            raise ValueError("length")
        ln = int.from_bytes(data[off:off + nb], "big")
        off += nb
    end = off + ln
    if end > len(data):
        raise ValueError("overrun")
    return tag, off, end


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out = []
    off = start
    while off < end:
        tag, s, e = _tlv(data, off)
        out.append((tag, s, e))
        off = e
    return out


# Memos of _oid and _name by their DER bytes. Real traffic repeats both (ndpi-mix: 837
# certificates, 13,229 OIDs of a few dozen kinds, issuers of a few CAs); parsing each
# anew was ~56 us a certificate, 3-4% of the packet phase with the 4.1 set
# (bench/README.md, "realfast"). Bounded: cleared when full, so hostile names cannot
# grow them. Only successful results are kept, so what raises still raises.
MEMO_MAX = 4096
_OIDS: dict[bytes, str] = {}
_NAMES: dict[bytes, str] = {}


def _oid(b: bytes) -> str:
    s = _OIDS.get(b)
    if s is None:
        s = _oid_text(b)
        if len(_OIDS) >= MEMO_MAX:
            _OIDS.clear()
        _OIDS[b] = s
    return s


def _oid_text(b: bytes) -> str:
    if not b:
        return ""
    parts = [b[0] // 40, b[0] % 40]
    v = 0
    for c in b[1:]:
        v = (v << 7) | (c & 0x7F)
        if not c & 0x80:
            parts.append(v)
            v = 0
    return ".".join(str(p) for p in parts)


def _name(data: bytes, s: int, e: int) -> str:
    raw = data[s:e]
    name = _NAMES.get(raw)
    if name is None:
        name, inside = _name_text(data, s, e)
        if inside:
            # read nothing past the name's end: the text is a function of `raw` alone
            if len(_NAMES) >= MEMO_MAX:
                _NAMES.clear()
            _NAMES[raw] = name
    return name


def _name_text(data: bytes, s: int, e: int) -> tuple[str, bool]:
    """The name's text, and whether every element read ended inside [s, e) (a malformed
    length can reach past it; such a text depends on the bytes after and is not memoized)."""
    parts = []
    sets = _children(data, s, e)
    inside = not sets or sets[-1][2] <= e
    for _tag, rs, re_ in sets:                                # SET
        for _t2, as_, ae in _children(data, rs, re_):       # SEQUENCE {oid, value}
            kids = _children(data, as_, ae)
            if kids and kids[-1][2] > e:
                inside = False
            if len(kids) < 2:
                continue
            oid = _oid(data[kids[0][1]:kids[0][2]])
            vtag, vs, ve = kids[1]
            raw = data[vs:ve]
            text = raw.decode("utf-16-be", "replace") if vtag == 0x1E else raw.decode("utf-8", "replace")
            parts.append(f"{OID_NAMES.get(oid, oid)}={text}")
    return ", ".join(parts), inside


def _time(data: bytes, tag: int, s: int, e: int) -> int:
    t = data[s:e].decode("ascii", "replace").rstrip("Z")
    try:
        if tag == 0x17:        # UTCTime YYMMDDHHMM[SS]
            yy = int(t[0:2])
            year = 1900 + yy if yy >= 50 else 2000 + yy
            rest = t[2:]
        else:                  # GeneralizedTime YYYYMMDDHHMM[SS]
            year = int(t[0:4])
            rest = t[4:]
        mon, day, hh, mm = int(rest[0:2]), int(rest[2:4]), int(rest[4:6]), int(rest[6:8])
        ss = int(rest[8:10]) if len(rest) >= 10 else 0
        return calendar.timegm((year, mon, day, hh, mm, ss, 0, 0, 0))
    except (ValueError, IndexError):
        return 0


def certificate_error(der: bytes) -> str:
    """The app-layer event of a certificate `parse_certificate` refused, as Suricata's
    x509 decoder names its errors: an element header cut short (its tag or length bytes
    missing: the decoder needed more) is `certificate_invalid_length`; anything else
    (a length beyond its container, a missing field) `invalid_certificate`."""
    def headers_fit(start: int, end: int, depth: int) -> bool:
        off = start
        while off < end:
            if off + 2 > end:
                return False
            ln = der[off + 1]
            hdr = 2
            if ln & 0x80:
                nb = ln & 0x7F
                if off + 2 + nb > end:
                    return False
                ln = int.from_bytes(der[off + 2:off + 2 + nb], "big")
                hdr += nb
            body = off + hdr
            if body + ln > end:
                return True               # the header is whole; its content overruns
            if der[off] & 0x20 and depth < 4 and not headers_fit(body, body + ln, depth + 1):
                return False
            off = body + ln
            if depth == 0:
                break                     # what follows the certificate is not read
        return True
    return "invalid_certificate" if headers_fit(0, len(der), 0) else "certificate_invalid_length"


# Whole certificates by their DER: a server sends the same chain to every client, so
# real traffic parses the same few certificates again and again (ndpi-mix: 837
# certificates). A Certificate is never changed once parsed (tls.py, EVE and the
# tls.cert_* buffers only read it), so flows may share one. Bounded as the memos above;
# a DER that does not parse is not kept (certificate_error reads it again).
CERT_MEMO_MAX = 512
_CERTS: dict[bytes, Certificate] = {}


def parse_certificate(der: bytes) -> Certificate | None:
    """The certificate `der`, or None when it does not parse (see certificate_error)."""
    cert = _CERTS.get(der)
    if cert is None:
        cert = _parse_certificate(der)
        if cert is not None:
            if len(_CERTS) >= CERT_MEMO_MAX:
                _CERTS.clear()
            _CERTS[der] = cert
    return cert


def _parse_certificate(der: bytes) -> Certificate | None:
    try:
        _t, s, e = _tlv(der, 0)
        _t, ts, te = _tlv(der, s)                 # tbsCertificate
        kids = _children(der, ts, te)
        i = 0
        if kids and kids[0][0] == 0xA0:           # [0] version
            i = 1
        cert = Certificate(der=der)
        serial = der[kids[i][1]:kids[i][2]]
        cert.serial = ":".join(f"{b:02X}" for b in serial)
        cert.issuer = _name(der, kids[i + 2][1], kids[i + 2][2])
        validity = _children(der, kids[i + 3][1], kids[i + 3][2])
        if len(validity) == 2:
            cert.not_before = _time(der, *validity[0])
            cert.not_after = _time(der, *validity[1])
        cert.subject = _name(der, kids[i + 4][1], kids[i + 4][2])
        for tag, xs, xe in kids[i + 6:]:
            if tag != 0xA3:
                continue
            for _t3, es, ee in _children(der, *_tlv(der, xs)[1:]):
                ext = _children(der, es, ee)
                if ext and _oid(der[ext[0][1]:ext[0][2]]) == "2.5.29.17":
                    _t4, os_, oe = ext[-1]
                    _t5, ss_, se = _tlv(der, os_)
                    for gtag, gs, ge in _children(der, ss_, se):
                        if gtag == 0x82:          # dNSName
                            cert.san.append(der[gs:ge])
        return cert
    except (ValueError, IndexError):
        return None
