"""QUIC (RFC 9000/9001, v2 RFC 9369, the IETF drafts, Google QUIC Q043-Q046) over UDP, as
Suricata's parser (rust/src/quic/) reads it: headers, versions, Initial packet decryption,
the TLS hellos in CRYPTO frames, gQUIC's CHLO tags (CYU), the `quic` EVE record and the
`quic.*`, `ja3*`, `ja4.hash` buffers.

- Detection on UDP port 443 (`app-layer.protocols.quic.udp.detection-ports` moves it): a
  datagram whose first bytes read as a QUIC header, long or short.
- Each long-header packet of a datagram is a transaction of its sender's side (Suricata's):
  its version, and for an Initial packet what its frames carry. A short-header packet ends
  the datagram's parsing; once a side's TLS hello is read, that side's packets are not
  parsed any more (the rest is encrypted with keys no observer has).
- Initial packets are decrypted with the keys every observer can derive (RFC 9001 5.2,
  RFC 9369 3.3.1): HKDF from the version's salt and the client's first destination
  connection id, header protection (AES-128-ECB mask), then AES-128-GCM. A Retry from
  the server starts over with the client's next Initial. Without the `cryptography`
  package the packets are not decrypted: their transactions carry the header only.
- CRYPTO frames are reassembled by offset, across packets and out of order, up to 64 KB a
  side (more: `crypto_frag_too_long`); a complete ClientHello / ServerHello is read by
  the TLS reader (applayer/tls.py `read_hello`): SNI, ALPN, ja3 / ja3s; here its
  extensions (`quic.extensions`) and the client's JA4 (`q...`).
- gQUIC (Q043-Q046, unencrypted): a STREAM frame carrying a CHLO message gives its tags:
  SNI, UAID (`quic.ua`) and the CYU fingerprint (`VERSION,TAG-TAG-...` and its md5).
- EVE `quic`: version ("Q046", "v2", else the hex number: "1", "ff00001d"), sni, ua, cyu
  [{hash, string}], ja3 / ja3s {hash, string}, ja4, extensions [{name, type, values}].
- Events (`app-layer-event:quic.*`): failed_decrypt, error_on_data, error_on_header,
  crypto_frag_too_long.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
from typing import Any

from netsentry.applayer import enabled
from netsentry.applayer.ja4 import _grease, _u16s, ja4
from netsentry.config import get
from netsentry.applayer.registry import BOTH, TO_CLIENT, TO_SERVER, ParserError, Protocol, register_buffer, \
    register_protocol, register_states
from netsentry.applayer.tx import MessageTx

# Initial decryption needs the `cryptography` package (pyproject: cryptography>=41), imported
# on the first Initial packet to decrypt: a sensor that sees no QUIC never loads it (RSS)
HAVE_CRYPTO = importlib.util.find_spec("cryptography") is not None
_AES: Any = None


def _ciphers() -> Any:
    """(Cipher, algorithms, modes, AESGCM), imported once."""
    global _AES
    if _AES is None:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        _AES = (Cipher, algorithms, modes, AESGCM)
    return _AES

EVENTS: dict[str, int | None] = {"failed_decrypt": BOTH, "error_on_data": BOTH, "error_on_header": BOTH,
                                 "crypto_frag_too_long": BOTH}
MAX_CRYPTO = 65535              # CRYPTO bytes reassembled per side
MAX_PACKETS = 64                # long-header packets read per datagram

INITIAL, ZERO_RTT, HANDSHAKE, RETRY, VERSION_NEGOTIATION, SHORT = range(6)
Q043, Q044, Q045, Q046 = 0x51303433, 0x51303434, 0x51303435, 0x51303436
V1, V2 = 0x00000001, 0x6b3343cf
_GQUIC = frozenset((Q043, Q044, Q045, Q046))
# the Initial salts, by version (RFC 9001 5.2, RFC 9369 3.3.1, the drafts, Google's Q050)
_SALT_V1 = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")
_SALT_V2 = bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9")
_SALT_D29 = bytes.fromhex("afbfec289993d24c9e9786f19c6111e04390a899")
_SALT_D23 = bytes.fromhex("c3eef712c72ebb5a11a7d2432bb46365bef9f502")
_SALT_Q050 = bytes.fromhex("504574efd066fe2f9d945cfcdbd3a7f0d3b56b45")


def _salt(version: int) -> bytes | None:
    if version == V1 or 0xff000021 <= version <= 0xff000022:
        return _SALT_V1
    if version == V2:
        return _SALT_V2
    if 0xff00001d <= version <= 0xff000020:
        return _SALT_D29
    if version == 0xfaceb002 or 0xff000017 <= version <= 0xff00001c:
        return _SALT_D23
    if version == 0x51303530:
        return _SALT_Q050
    return None


def version_name(version: int) -> str:
    if version in (0x51303339, Q043, Q044, Q045, Q046):
        return version.to_bytes(4, "big").decode()
    if version == V2:
        return "v2"
    return f"{version:x}"


# --- header -----------------------------------------------------------------------------------

class Header:
    __slots__ = ("first", "kind", "version", "version_buf", "dcid", "scid", "pn_off", "length")


def varint(b: bytes, off: int) -> tuple[int, int]:
    if off >= len(b):
        raise IndexError(off)
    first = b[off]
    n = 1 << (first >> 6)
    if off + n > len(b):
        raise IndexError(off)
    v = first & 0x3F
    for i in range(1, n):
        v = (v << 8) | b[off + i]
    return v, off + n


def parse_header(b: bytes, off: int = 0) -> Header:
    """The header of the packet at `off`: `pn_off` is where its packet number (IETF) or
    its frames (gQUIC, short) start, `length` the bytes of the packet from there. Raises
    IndexError or ValueError on what is not a QUIC header."""
    first = b[off]
    h = Header()
    h.first = first
    h.dcid = h.scid = b""
    h.version = 0
    h.version_buf = b""
    p = off + 1
    if not first & 0x80 and not first & 0x40:
        # gQUIC's public header (Q043): flags, connection id, version, packet number
        if first & 0x08:
            h.dcid = b[p:p + 8]
            p += 8
        elif first & 0x04:
            p += 32                             # diversification nonce
        if first & 0x01:
            h.version_buf = b[p:p + 4]
            if len(h.version_buf) < 4:
                raise IndexError(p)
            h.version = int.from_bytes(h.version_buf, "big")
            p += 4
        p += 1 + ((first & 0x30) >> 4)          # packet number
        if first & 0x08:
            p += 12                             # message authentication hash
        if p > len(b):
            raise IndexError(p)
        h.kind = INITIAL if first & 0x01 else SHORT
        h.pn_off, h.length = p, len(b) - p
        return h
    if not first & 0x80:
        h.kind = SHORT
        h.pn_off, h.length = p, len(b) - p
        return h
    h.version_buf = b[p:p + 4]
    if len(h.version_buf) < 4:
        raise IndexError(p)
    v = h.version = int.from_bytes(h.version_buf, "big")
    p += 4
    bits = (first & 0x30) >> 4
    if v == 0:
        h.kind = VERSION_NEGOTIATION
    elif v in _GQUIC and v != Q046:
        kind = {0x7f: INITIAL, 0x7e: RETRY, 0x7d: HANDSHAKE, 0x7c: ZERO_RTT}.get(first & 0x7f)
        if kind is None:
            raise ValueError("gQUIC long header type")
        h.kind = kind
    elif v == V2:
        h.kind = (RETRY, INITIAL, ZERO_RTT, HANDSHAKE)[bits]
    else:
        h.kind = (INITIAL, ZERO_RTT, HANDSHAKE, RETRY)[bits]
    if v in _GQUIC:
        lens = b[p]
        dl, sl = lens >> 4, lens & 0x0F
        dl, sl = dl + 3 if dl else 0, sl + 3 if sl else 0
        h.dcid = b[p + 1:p + 1 + dl]
        h.scid = b[p + 1 + dl:p + 1 + dl + sl]
        p += 1 + dl + sl
    else:
        dl = b[p]
        h.dcid = b[p + 1:p + 1 + dl]
        p += 1 + dl
        sl = b[p]
        h.scid = b[p + 1:p + 1 + sl]
        p += 1 + sl
    if p > len(b):
        raise IndexError(p)
    if h.kind == INITIAL and v in _GQUIC:
        p += 4 + 12                             # packet number, message authentication hash
        if p > len(b):
            raise IndexError(p)
        h.pn_off, h.length = p, len(b) - p
    elif h.kind == INITIAL:
        token, p = varint(b, p)
        p += token
        length, p = varint(b, p)
        if p + length > len(b):
            raise ValueError("packet length past the datagram")
        h.pn_off, h.length = p, length
    elif h.kind == RETRY:
        h.pn_off, h.length = len(b), 0
    else:
        h.pn_off, h.length = p, len(b) - p
    return h


def probe(data: bytes, to_server: bool) -> bool | None:
    """A QUIC header at the start (Suricata's probing parser)."""
    if not data:
        return None
    try:
        parse_header(data)
    except (IndexError, ValueError):
        return False
    return True


# --- Initial keys -----------------------------------------------------------------------------

def _expand_label(secret: bytes, label: bytes, length: int) -> bytes:
    """HKDF-Expand-Label (RFC 8446 7.1) with SHA-256, an empty context."""
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes((len(full),)) + full + b"\x00"
    # every length asked here (16, 12, 32) takes one block: HMAC(secret, info | 0x01)
    return hmac.digest(secret, info + b"\x01", "sha256")[:length]


class _Keys:
    __slots__ = ("key", "iv", "hp")

    def __init__(self, secret: bytes, version: int) -> None:
        cipher, algorithms, modes, aesgcm = _ciphers()
        pre = b"quicv2 " if version == V2 else b"quic "
        self.key = aesgcm(_expand_label(secret, pre + b"key", 16))
        self.iv = _expand_label(secret, pre + b"iv", 12)
        self.hp = cipher(algorithms.AES(_expand_label(secret, pre + b"hp", 16)), modes.ECB())


class InitialKeys:
    """A connection's Initial keys, each side's made when its first Initial packet needs them
    (a flow seen one way only derives one side's)."""

    __slots__ = ("initial", "version", "sides")

    def __init__(self, initial: bytes, version: int) -> None:
        self.initial, self.version = initial, version
        self.sides: list[_Keys | None] = [None, None]       # by to_server: [server's, client's]

    def __getitem__(self, client: int) -> _Keys:
        """keys[0]: the client's (to server), keys[1]: the server's."""
        side = 1 - client
        k = self.sides[side]
        if k is None:
            label = b"client in" if side else b"server in"
            k = self.sides[side] = _Keys(_expand_label(self.initial, label, 32), self.version)
        return k


def initial_keys(version: int, dcid: bytes) -> InitialKeys | None:
    """The Initial keys of a connection whose client chose `dcid` (`keys[0]` the client's,
    `keys[1]` the server's), None without a salt for the version or the `cryptography`
    package."""
    salt = _salt(version)
    if salt is None or not HAVE_CRYPTO:
        return None
    return InitialKeys(hmac.digest(salt, dcid, "sha256"), version)          # HKDF-Extract


def decrypt(b: bytes, h: Header, keys: _Keys) -> bytes | None:
    """The payload (frames) of the Initial packet `h` of datagram `b`, None when it does
    not decrypt."""
    pn_off = h.pn_off
    end = pn_off + h.length
    if h.length < 20 or end > len(b):
        return None
    enc = keys.hp.encryptor()
    mask = enc.update(b[pn_off + 4:pn_off + 20]) + enc.finalize()
    first = b[0] ^ (mask[0] & (0x0F if b[0] & 0x80 else 0x1F))
    pn_len = (first & 0x03) + 1
    pn_bytes = bytes(x ^ m for x, m in zip(b[pn_off:pn_off + pn_len], mask[1:1 + pn_len]))
    pn = int.from_bytes(pn_bytes, "big")
    header = bytes((first,)) + b[1:pn_off] + pn_bytes
    nonce = (int.from_bytes(keys.iv, "big") ^ pn).to_bytes(12, "big")
    try:
        return keys.key.decrypt(nonce, b[pn_off + pn_len:end], header)
    except Exception:           # cryptography's InvalidTag: not these keys, or damaged
        return None


# --- frames -----------------------------------------------------------------------------------

_TAGS = {b"AEAD", b"CCRT", b"CCS\x00", b"CETV", b"CFCW", b"CHLO", b"COPT", b"CSCT", b"CTIM", b"ICSL",
         b"IRTT", b"KEXS", b"MIDS", b"MSPC", b"NONC", b"NONP", b"PAD\x00", b"PDMD", b"PUBS", b"SCID",
         b"SCLS", b"SFCW", b"SMHL", b"SNI\x00", b"SNO\x00", b"STK\x00", b"TCID", b"UAID", b"VER\x00", b"XLCT"}


def chlo_tags(data: bytes) -> list[tuple[bytes, bytes]] | None:
    """gQUIC's handshake message (a tag, entries, then (tag, end offset) pairs and the
    values), all of `data` and known tags only, else None."""
    if len(data) < 8 or data[:4] not in _TAGS:
        return None
    n = int.from_bytes(data[4:6], "little")
    off = 8
    if off + 8 * n > len(data):
        return None
    tags, prev = [], 0
    vals = off + 8 * n
    for i in range(n):
        tag = data[off + 8 * i:off + 8 * i + 4]
        end = int.from_bytes(data[off + 8 * i + 4:off + 8 * i + 8], "little")
        if tag not in _TAGS or end < prev or vals + end > len(data):
            return None
        tags.append((tag, data[vals + prev:vals + end]))
        prev = end
    if vals + prev != len(data):
        return None
    return tags


def frames(b: bytes) -> tuple[list[tuple[int, bytes]], list[list[tuple[bytes, bytes]]]]:
    """The CRYPTO data (offset, bytes) and gQUIC CHLO tag lists of a packet's frames.
    Raises IndexError/ValueError on a frame that does not fit."""
    crypto: list[tuple[int, bytes]] = []
    chlos: list[list[tuple[bytes, bytes]]] = []
    off, n = 0, len(b)
    while off < n:
        t = b[off]
        off += 1
        if t & 0x80:                            # gQUIC STREAM frame
            sid_len = (t & 0x03) + 1
            olen = (t & 0x1C) >> 2
            off += sid_len + (olen + 1 if olen else 0)
            if t & 0x20:
                if off + 2 > n:
                    raise IndexError(off)
                dl = int.from_bytes(b[off:off + 2], "big")
                off += 2
            else:
                dl = n - off
            if off + dl > n:
                raise IndexError(off)
            tags = chlo_tags(b[off:off + dl])
            if tags is not None:
                chlos.append(tags)
            off += dl
        elif t == 0x00:                         # PADDING (often most of an Initial: skipped at C speed)
            off = n - len(b[off:].lstrip(b"\x00"))
        elif t == 0x01:                         # PING
            pass
        elif t in (0x02, 0x03):                 # ACK
            _, off = varint(b, off)
            _, off = varint(b, off)
            count, off = varint(b, off)
            _, off = varint(b, off)
            for _ in range(min(count, 1024)):
                _, off = varint(b, off)
                _, off = varint(b, off)
            if t == 0x03:
                for _ in range(3):
                    _, off = varint(b, off)
        elif t == 0x06:                         # CRYPTO
            o, off = varint(b, off)
            ln, off = varint(b, off)
            if off + ln > n:
                raise IndexError(off)
            crypto.append((o, b[off:off + ln]))
            off += ln
        elif t == 0x08:                         # gQUIC's crypto stream (Q046)
            _, off = varint(b, off)
            ln, off = varint(b, off)
            if off + ln > n:
                raise IndexError(off)
            tags = chlo_tags(b[off:off + ln])
            if tags is not None:
                chlos.append(tags)
            off += ln
        else:
            break                               # a frame not read here: the rest of the packet
    return crypto, chlos


def cyu(version: int, tags: list[tuple[bytes, bytes]]) -> tuple[str, str] | None:
    """gQUIC's CYU fingerprint (string, md5) of one CHLO's tags."""
    v = {Q043: "43", Q044: "44", Q045: "44", Q046: "46"}.get(version)
    if v is None:
        return None
    s = v + "," + "-".join(t.rstrip(b"\x00").decode() for t, _ in tags)
    return s, hashlib.md5(s.encode()).hexdigest()  # noqa: S324


# --- the TLS hello's extensions and JA4 -------------------------------------------------------

EXT_NAMES = {0: "server_name", 1: "max_fragment_length", 2: "client_certificate_url", 3: "trusted_ca_keys",
             4: "truncated_hmac", 5: "status_request", 6: "user_mapping", 7: "client_authz", 8: "server_authz",
             9: "cert_type", 10: "supported_groups", 11: "ec_point_formats", 12: "srp",
             13: "signature_algorithms", 14: "use_srtp", 15: "heartbeat", 16: "alpn", 17: "status_request_v2",
             18: "signed_certificate_timestamp", 19: "client_certificate_type", 20: "server_certificate_type",
             21: "padding", 22: "encrypt_then_mac", 23: "extended_master_secret", 24: "token_binding",
             25: "cached_info", 26: "tls_lts", 27: "compress_certificate", 28: "record_size_limit",
             29: "pwd_protect", 30: "pwd_clear", 31: "password_salt", 32: "ticket_pinning",
             33: "tls_cert_with_extern_psk", 34: "delegated_credentials", 35: "session_ticket", 36: "tlmsp",
             37: "tlmsp_proxying", 38: "tlmsp_delegate", 39: "supported_ekt_ciphers", 41: "pre_shared_key",
             42: "early_data", 43: "supported_versions", 44: "cookie", 45: "psk_key_exchange_modes",
             47: "certificate_authorities", 48: "oid_filters", 49: "post_handshake_auth",
             50: "signature_algorithms_cert", 51: "key_share", 52: "transparency_info",
             53: "connection_id_deprecated", 54: "connection_id", 55: "external_id_hash",
             56: "external_session_id", 57: "quic_transport_parameters", 58: "ticket_request",
             59: "dnssec_chain", 13172: "next_protocol_negotiation", 65281: "renegotiation_info"}
_SIG_NAMES = {0x0401: "rsa_pkcs1_sha256", 0x0501: "rsa_pkcs1_sha384", 0x0601: "rsa_pkcs1_sha512",
              0x0403: "ecdsa_secp256r1_sha256", 0x0503: "ecdsa_secp384r1_sha384",
              0x0603: "ecdsa_secp521r1_sha512", 0x0804: "rsa_pss_rsae_sha256", 0x0805: "rsa_pss_rsae_sha384",
              0x0806: "rsa_pss_rsae_sha512", 0x0807: "ed25519", 0x0808: "ed448", 0x0809: "rsa_pss_pss_sha256",
              0x080a: "rsa_pss_pss_sha384", 0x080b: "rsa_pss_pss_sha512", 0x0201: "rsa_pkcs1_sha1",
              0x0203: "ecdsa_sha1"}
_TLS_NAMES = {0x0300: "SSLv3", 0x0301: "TLSv1", 0x0302: "TLSv1.1", 0x0303: "TLSv1.2", 0x0304: "TLSv1.3"}


def _version_text(v: int) -> str:
    if _grease(v):
        return f"0x{v:04x}"
    if 0x7f00 < v <= 0x7fff:
        return f"TLS 1.3 draft {v & 0xff}"
    return _TLS_NAMES.get(v, f"0x{v:04x}")


def _sig_text(v: int) -> str:
    if _grease(v):
        return f"Grease(0x{v:04x})"
    return _SIG_NAMES.get(v, f"Unknown(0x{v:04x})")


def hello_extensions(exts: list[tuple[int, bytes]]) -> list[dict[str, Any]]:
    """EVE `quic.extensions`: each extension's name, type and, for SNI, ALPN, supported
    versions and signature algorithms, its values."""
    out = []
    for et, ev in exts:
        e: dict[str, Any] = {}
        name = EXT_NAMES.get(et)
        if name is not None:
            e["name"] = name
        e["type"] = et
        values: list[str] = []
        if et == 0 and len(ev) >= 2:
            off, end = 2, min(len(ev), 2 + ((ev[0] << 8) | ev[1]))
            while off + 3 <= end:
                nl = (ev[off + 1] << 8) | ev[off + 2]
                values.append(ev[off + 3:off + 3 + nl].decode("utf-8", "replace"))
                off += 3 + nl
        elif et == 16 and len(ev) >= 2:
            off, end = 2, min(len(ev), 2 + ((ev[0] << 8) | ev[1]))
            while off < end:
                ln = ev[off]
                values.append(ev[off + 1:off + 1 + ln].decode("utf-8", "replace"))
                off += 1 + ln
        elif et == 43 and ev:
            vs = _u16s(ev, 1, 1 + ev[0]) if len(ev) != 2 else [(ev[0] << 8) | ev[1]]
            values = [_version_text(v) for v in vs]
        elif et == 13 and len(ev) >= 2:
            values = [_sig_text(v) for v in _u16s(ev, 2, 2 + ((ev[0] << 8) | ev[1]))]
        if values:
            e["values"] = values
        out.append(e)
    return out


# --- transactions and the parser --------------------------------------------------------------

class QuicTx(MessageTx):
    __slots__ = ("header_kind", "version", "version_buf", "sni", "ua", "cyus", "ja3", "ja3s", "_ja4",
                 "_extensions", "hello", "log_ja4")
    proto = "quic"

    def __init__(self, tx_id: int, to_server: bool, h: Header) -> None:
        super().__init__(tx_id, to_server)
        self.header_kind = h.kind
        self.version = h.version
        self.version_buf = h.version_buf
        self.sni: bytes | None = None
        self.ua: bytes | None = None
        self.cyus: list[tuple[str, str]] = []
        self.ja3: str | None = None
        self.ja3s: str | None = None
        # the hello's extensions (EVE) and JA4, worked out when first read (a record, a rule):
        # `hello` keeps (message type, body, extensions) until then
        self._ja4: str | None = None
        self._extensions: list[dict[str, Any]] | None = None
        self.hello: tuple[int, bytes, list[tuple[int, bytes]]] | None = None
        self.log_ja4 = True             # outputs.eve-log.quic.ja4 (records; alerts always)

    @property
    def extensions(self) -> list[dict[str, Any]]:
        if self._extensions is None:
            try:
                self._extensions = hello_extensions(self.hello[2]) if self.hello is not None else []
            except (IndexError, ValueError):        # a damaged extension: none listed
                self._extensions = []
        return self._extensions

    @property
    def ja4(self) -> str | None:
        h = self.hello
        if self._ja4 is None and h is not None and h[0] == 1:
            try:
                self._ja4 = ja4(h[1], h[2], "q")
            except (IndexError, ValueError):
                self.hello = None                   # a damaged hello: no JA4
        return self._ja4

    def alert_eve(self) -> dict[str, Any]:
        return self.eve(True)

    def eve(self, ja4: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.header_kind != SHORT:
            out["version"] = version_name(self.version)
            if self.sni is not None:
                out["sni"] = self.sni.decode("utf-8", "replace")
            if self.ua is not None:
                out["ua"] = self.ua.decode("utf-8", "replace")
        if self.cyus:
            out["cyu"] = [{"hash": h, "string": s} for s, h in self.cyus]
        for name, s in (("ja3", self.ja3), ("ja3s", self.ja3s)):
            if s is not None:
                out[name] = {"hash": hashlib.md5(s.encode()).hexdigest(), "string": s}  # noqa: S324
        if (ja4 or self.log_ja4) and self.ja4 is not None:
            out["ja4"] = self.ja4
        if self.extensions:
            out["extensions"] = self.extensions
        return out


class QuicParser:
    def __init__(self, settings: Any = None) -> None:
        self.off = settings is not None and not settings["parse"]
        self.log_ja4 = settings is None or settings.get("ja4", True)
        self.txs: list[QuicTx] = []
        self.keys: InitialKeys | None = None
        self.retried = False
        self.hello = [False, False]             # by to_server: that side's TLS hello was read
        self.crypto: list[dict[int, bytes]] = [{}, {}]

    def _tx(self, to_server: bool, h: Header) -> QuicTx:
        tx = QuicTx(len(self.txs), to_server, h)
        tx.log_ja4 = self.log_ja4
        self.txs.append(tx)
        tx.touch(to_server)
        return tx

    def parse(self, data: bytes, to_server: bool, pkt: Any = None) -> None:
        if self.off or not data:
            return
        d = int(to_server)
        off = 0
        for _ in range(MAX_PACKETS):
            if off >= len(data) or self.hello[d]:
                return
            b = data[off:] if off else data
            try:
                h = parse_header(b)
            except (IndexError, ValueError):
                if self.txs:
                    self.txs[-1].add_event("error_on_header")
                raise ParserError("quic: not a QUIC header") from None
            if h.kind == SHORT:
                return
            if h.kind == INITIAL and self.keys is None and h.version not in _GQUIC:
                self.keys = initial_keys(h.version, h.dcid)
            elif h.kind == RETRY and not to_server and self.keys is not None and not self.retried:
                self.hello[1] = False
                self.keys = None
                self.retried = True
                self.crypto[1] = {}
            off += h.pn_off + h.length
            tx = self._tx(to_server, h)
            if h.kind != INITIAL:
                continue
            if h.version in _GQUIC or h.version == 0x51303530 or self.keys is None:
                # gQUIC's plain frames; an IETF Initial without keys (no cryptography, no
                # salt for its version) is left unread
                if h.version not in _GQUIC:
                    continue
                payload = b[h.pn_off:h.pn_off + h.length]
            else:
                payload = decrypt(b, h, self.keys[0 if to_server else 1])
                if payload is None:
                    tx.add_event("failed_decrypt")
                    raise ParserError("quic: Initial packet does not decrypt")
            try:
                crypto, chlos = frames(payload)
            except (IndexError, ValueError):
                tx.add_event("error_on_data")
                raise ParserError("quic: frames do not parse") from None
            for tags in chlos:
                c = cyu(h.version, tags)
                if c is not None:
                    tx.cyus.append(c)
                for tag, value in tags:
                    if tag == b"SNI\x00" and tx.sni is None:
                        tx.sni = value
                    elif tag == b"UAID" and tx.ua is None:
                        tx.ua = value
            if crypto:
                self._crypto(tx, d, crypto)

    def _crypto(self, tx: QuicTx, d: int, chunks: list[tuple[int, bytes]]) -> None:
        parts = self.crypto[d]
        for o, data in chunks:
            if o + len(data) > MAX_CRYPTO:
                tx.add_event("crypto_frag_too_long")
                continue
            if len(data) > len(parts.get(o, b"")):
                parts[o] = data
        buf = bytearray()
        for o in sorted(parts):
            if o > len(buf):
                break
            piece = parts[o]
            if o + len(piece) > len(buf):
                buf += piece[len(buf) - o:]
        if len(buf) < 4:
            return
        mtype = buf[0]
        ln = (buf[1] << 16) | (buf[2] << 8) | buf[3]
        if len(buf) < 4 + ln:
            return
        msg = bytes(buf[4:4 + ln])
        self.crypto[d] = {}
        if mtype not in (1, 2):
            return
        self.hello[d] = True
        try:
            self._hello(tx, mtype, msg)
        except (IndexError, ValueError):
            tx.add_event("error_on_data")

    def _hello(self, tx: QuicTx, mtype: int, msg: bytes) -> None:
        from netsentry.applayer import tls
        t = tls.read_hello(mtype, msg)
        off = 34
        off += 1 + msg[off]
        if mtype == 1:
            off += 2 + ((msg[off] << 8) | msg[off + 1])
            off += 1 + msg[off]
        else:
            off += 3
        tx.hello = (mtype, msg, tls.TlsParser._exts(msg, off))
        if t.sni is not None:
            tx.sni = t.sni
        if mtype == 1:
            tx.ja3 = t.ja3
        else:
            tx.ja3s = t.ja3s
        tx.touch(tx.to_server)


def _attr(name: str, side: bool | None):
    def get(tx: QuicTx, to_server: bool) -> bytes | None:
        if side is not None and tx.to_server != side:
            return None
        v = getattr(tx, name)
        if v is None:
            return None
        return v if isinstance(v, bytes) else v.encode()
    return get


def _ja3_hash(name: str, side: bool):
    def get(tx: QuicTx, to_server: bool) -> bytes | None:
        v = getattr(tx, name)
        if v is None or tx.to_server != side:
            return None
        return hashlib.md5(v.encode()).hexdigest().encode()  # noqa: S324
    return get


register_buffer("quic.version", "quic", BOTH, lambda tx, ts: tx.version_buf if tx.header_kind != SHORT
                and tx.version_buf else None)
register_buffer("quic.sni", "quic", BOTH, _attr("sni", None))
register_buffer("quic.ua", "quic", BOTH, _attr("ua", None))
register_buffer("quic.cyu.hash", "quic", BOTH, lambda tx, ts: [h.encode() for s, h in tx.cyus] or None,
                multi=True)
register_buffer("quic.cyu.string", "quic", BOTH, lambda tx, ts: [s.encode() for s, h in tx.cyus] or None,
                multi=True)
register_buffer("ja3.hash@quic", "quic", TO_SERVER, _ja3_hash("ja3", True))
register_buffer("ja3.string@quic", "quic", TO_SERVER, _attr("ja3", True))
register_buffer("ja3s.hash@quic", "quic", TO_CLIENT, _ja3_hash("ja3s", False))
register_buffer("ja3s.string@quic", "quic", TO_CLIENT, _attr("ja3s", False))
register_buffer("ja4.hash@quic", "quic", TO_SERVER, _attr("ja4", True))
register_states("quic", ("request_started", "request_complete"), ("response_started", "response_complete"),
                lambda tx, ts: 1)
def configure(config: Any) -> dict[str, Any]:
    """`app-layer.protocols.quic.enabled` and the eve-log `quic` option `ja4`."""
    return enabled.settings(config, "quic", ja4=bool(get(config, "outputs.eve-log.quic.ja4", True)))


register_protocol(Protocol("quic", (17,), probe, QuicParser, (443,), ports_only=True, configure=configure))
