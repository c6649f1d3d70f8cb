"""TLS (and SSLv2/3 record detection): handshake parser, buffers, EVE `tls` object.

The parser reads records per direction and reassembles handshake messages that
span records (suricata-verify tls-client-hello-frag): ClientHello (version,
SNI, JA3 string), ServerHello (version, including TLS 1.3's supported_versions),
Certificate (the chain, each parsed by x509.py). One transaction per flow, as
Suricata's TLS parser; it is complete once the server finished its handshake
part (ServerHelloDone, ChangeCipherSpec or application data).

JA4 (applayer/ja4.py, `t...`): with `app-layer.protocols.tls.ja4-fingerprints` yes, or auto
(the default) and a loaded rule reading `ja4.hash`, the ClientHello's body is kept and its
JA4 worked out when first read (the `ja4.hash` buffer, the EVE `tls.ja4` field; eve-log
`tls: {ja4: off}` leaves it out of records, not alerts); otherwise nothing is kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from netsentry.applayer.frames import frames_for, register_stream_frames
from netsentry.applayer.ja4 import ja4
from netsentry.applayer.registry import (BOTH, TO_CLIENT, TO_SERVER, Encrypted, Incomplete, ParserError, Protocol, encryption_handling,
                                         register_buffer,
                                         register_states,
                                         register_protocol)
from netsentry.applayer.tx import Tx
from netsentry.config import get
from netsentry.applayer.x509 import Certificate, certificate_error, parse_certificate

VERSIONS = {0x0200: "SSLv2", 0x0300: "SSLv3", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2",
            0x0304: "TLS 1.3"}
MAX_HANDSHAKE = 1 << 18
# ssl_state words -> bit
STATE_CLIENT_HELLO, STATE_SERVER_HELLO, STATE_CLIENT_KEYX, STATE_SERVER_KEYX, STATE_UNKNOWN = 1, 2, 4, 8, 16
_GREASE = frozenset(0x0A0A + 0x1010 * i for i in range(16))
# What a record changes, for Tx.touch: the buffers below are read from the hellos and the
# certificate only; every other handshake message, a ChangeCipherSpec and application data
# move the transaction on (tx checks, payload rules see the packet) but leave the buffers
# and their prefilter hits as they are. ndpi-mix, ET Open: 6,254 TLS updates to the client,
# each rebuilt and rescanned five buffers.
BUFFER_MESSAGES = frozenset({1, 2, 11})       # client hello, server hello, certificate
NO_BUFFERS: frozenset[str] = frozenset()
# The handshake message types Suricata's parser knows (SupportedHandshakeType); another
# before ChangeCipherSpec is `invalid_handshake_message` and its record is skipped
HANDSHAKE_TYPES = frozenset({0, 1, 2, 4, 11, 12, 13, 14, 15, 16, 20, 21, 22})
RECORD_TYPES = frozenset({0x14, 0x15, 0x16, 0x17, 0x18})
# The app-layer events this parser raises (app-layer-event:tls.NAME, Suricata's names). One
# transaction per flow, so an event is the flow's: rules see it from either side.
EVENTS: dict[str, int | None] = {name: 2 for name in (
    "invalid_record_type", "invalid_record_version", "invalid_record_length", "invalid_ssl_record",
    "invalid_handshake_message", "invalid_certificate", "certificate_invalid_length",
    "certificate_invalid_der", "heartbeat_message", "overflow_heartbeat_message",
    "invalid_heartbeat_message", "multiple_sni_extensions", "invalid_sni_type", "invalid_sni_length",
    "invalid_alert_message", "invalid_sslv2_header")}


def probe(data: bytes, to_server: bool) -> bool | None:
    """A TLS/SSLv3 record header (handshake, alert, CCS), or an SSLv2 ClientHello."""
    if len(data) < 3:
        return None
    if data[0] in (0x14, 0x15, 0x16, 0x17) and data[1] == 3 and data[2] <= 4:
        return True
    if data[0] & 0x80 and len(data) >= 3 and data[2] == 1:       # SSLv2 client hello
        return True
    return False


class TlsTx(Tx):
    __slots__ = ("sni", "client_version", "server_version", "record_version", "certs", "state",
                 "ja3", "ja3s", "client_alpns", "server_alpns", "handshake_done", "randoms",
                 "client_certs", "conn_version", "hello_version", "progress", "hello", "_ja4", "log_ja4")
    proto = "tls"

    def __init__(self) -> None:
        super().__init__(0)
        self.sni: bytes | None = None
        self.client_version = 0
        self.server_version = 0
        self.record_version = 0
        self.certs: list[Certificate] = []
        self.state = 0
        self.ja3: str | None = None
        self.ja3s: str | None = None
        self.client_alpns: list[str] = []
        self.server_alpns: list[str] = []
        self.handshake_done = False
        self.randoms: list[bytes | None] = [None, None]   # [client hello's, server hello's] 32 bytes
        self.client_certs: list[Certificate] = []        # a client's Certificate message (mutual TLS)
        # each side's version as Suricata's connp.version (ssl_version): by to_server, the
        # record header's until the hello's (its supported_versions first) replaces it
        self.conn_version = [0, 0]
        self.hello_version = 0          # bit 1 << to_server: that side's hello set conn_version
        # each side's handshake state by to_server, an index into CLIENT_STATES (to server)
        # or SERVER_STATES (to client): Suricata's TlsStateClient / TlsStateServer
        self.progress = [0, 0]
        # the ClientHello's body and extensions, kept for JA4 only when it is on (TlsParser.ja4_on)
        self.hello: tuple[bytes, list[tuple[int, bytes]]] | None = None
        self._ja4: str | None = None
        self.log_ja4 = True             # outputs.eve-log.tls.ja4 (records; alerts always)

    @property
    def ja4(self) -> str | None:
        h = self.hello
        if self._ja4 is None and h is not None:
            try:
                self._ja4 = ja4(h[0], h[1], "t")
            except (IndexError, ValueError):
                pass
            self.hello = None
        return self._ja4

    def alert_eve(self) -> dict[str, Any]:
        return self.eve(True)

    def advance(self, to_server: int, state: int) -> None:
        if state > self.progress[to_server]:
            self.progress[to_server] = state

    def complete(self) -> bool:
        return self.handshake_done

    @property
    def version(self) -> int:
        return self.server_version or self.client_version or self.record_version

    def eve(self, with_ja4: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.certs:
            c = self.certs[0]
            d["subject"] = c.subject
            d["issuerdn"] = c.issuer
            d["serial"] = c.serial
            d["fingerprint"] = c.fingerprint
        if self.sni is not None:
            d["sni"] = self.sni.decode("utf-8", "replace")
        d["version"] = VERSIONS.get(self.version, "UNDETERMINED")
        if self.certs:
            d["notbefore"] = _iso(self.certs[0].not_before)
            d["notafter"] = _iso(self.certs[0].not_after)
            if self.certs[0].san:
                d["subjectaltname"] = [n.decode("utf-8", "replace") for n in self.certs[0].san]
        if self.client_alpns:
            d["client_alpns"] = list(self.client_alpns)
        if self.server_alpns:
            d["server_alpns"] = list(self.server_alpns)
        if self.ja3 is not None:
            d["ja3"] = {"hash": hashlib.md5(self.ja3.encode()).hexdigest(), "string": self.ja3}  # noqa: S324
        if self.ja3s is not None:
            d["ja3s"] = {"hash": hashlib.md5(self.ja3s.encode()).hexdigest(), "string": self.ja3s}  # noqa: S324
        if with_ja4 or self.log_ja4:
            j = self.ja4
            if j is not None:
                d["ja4"] = j
        return d


def _iso(ts: int) -> str:
    import time
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts))


class TlsParser:
    def __init__(self, settings: Any = None) -> None:
        # app-layer.protocols.tls.encryption-handling (registry.Encrypted): 0 full (also a
        # parser made without settings, outside the app layer), 1 track-only, 2 bypass;
        # -1 once said (the session is encrypted for good)
        self.on_encrypted = _HANDLING[settings["encryption-handling"]] if settings else 0
        # JA4: keep the ClientHello (ja4-fingerprints yes, or auto with a rule on ja4.hash)
        self.ja4_on = bool(settings and settings.get("ja4"))
        self.log_ja4 = not settings or settings.get("log-ja4", True)
        self.app_data = False           # an application-data record was read (the session is encrypted)
        self.tx = TlsTx()
        self.txs = [self.tx]
        self.rec = [bytearray(), bytearray()]
        # by direction: the bytes of an application-data record still to come once its
        # header was read, and that header's version (_records, parse): they are counted,
        # not buffered, since no one reads an application-data record's body
        self.skip = [0, 0]
        self.skip_version = [0, 0]
        # by direction: the bytes a record other than application data still needs once its
        # header was read (parse: the packets before it completes are no update)
        self.need = [0, 0]
        self.hs = [bytearray(), bytearray()]
        self.encrypted = [False, False]
        self.lost = [False, False]
        self.version = [0, 0]             # each direction's last record version
        self.stream_frames = frames_for("tls")   # applayer/frames.py: None unless a rule reads TLS frames

    def _fail(self, d: int, event: str) -> None:
        """An anomaly Suricata's parser stops the direction on: raise the event, drop what
        is buffered, and give up on this direction (ParserError: the error policy)."""
        self.tx.add_event(event)
        self.tx.touch(bool(d), NO_BUFFERS)
        self.rec[d].clear()
        self.need[d] = 0
        self.hs[d].clear()
        self.lost[d] = True
        raise ParserError(f"tls: {event}")

    def _heartbeat(self, d: int, body: bytes) -> None:
        """A heartbeat record (RFC 6520): in the clear, a payload length beyond the record
        is Heartbleed's overflow; encrypted, only its presence is known."""
        tx = self.tx
        tx.add_event("heartbeat_message")
        if not self.encrypted[d]:
            if len(body) < 3 or body[0] not in (1, 2):
                tx.add_event("invalid_heartbeat_message")
            elif ((body[1] << 8) | body[2]) + 3 + 16 > len(body):
                tx.add_event("overflow_heartbeat_message")
        tx.touch(bool(d), NO_BUFFERS)

    def gap(self, to_server: bool, nbytes: int) -> None:
        """A stream gap: the message being assembled is lost; the next one starts afresh
        only where the data says so, so this direction stops here."""
        self.rec[int(to_server)].clear()
        self.need[int(to_server)] = 0
        self.lost[int(to_server)] = True

    def parse(self, data: bytes, to_server: bool, pkt: Any = None) -> None:
        if self.lost[int(to_server)]:
            return
        d = int(to_server)
        tx = self.tx
        need = self.need[d]
        if need:
            # a handshake/alert record whose header was read and whose body is not all in:
            # Suricata's parser returned "incomplete, N bytes needed", so it is not called
            # (no app-layer update of the transaction) until they are
            n = len(data)
            if n < need:
                self.need[d] = need - n
                self.rec[d] += data
                if self.stream_frames is not None:
                    self.stream_frames.stream(to_server, data)
                raise Incomplete()
            self.need[d] = 0
        if data and not tx.updated & (1 if to_server else 2):
            # bytes of the side arrived: its transaction is inspected on this packet even
            # when no record completed (Suricata marks the tx updated on every parse), so
            # `app-layer-state:<client_hello_done` sees the hello in progress
            tx.touch(to_server, NO_BUFFERS)
        skip = self.skip[d]
        if skip:
            # inside an application-data record (most segments of a TLS session): its
            # bytes are skipped, not copied into the record buffer and cut off again;
            # the record takes effect when its last byte is in, as a buffered one would
            n = len(data)
            if n < skip:
                self.skip[d] = skip - n
                if self.app_data and self.on_encrypted > 0:
                    # (said at the end of the parse call that saw the data, unless a record
                    # after it failed there: then on this one, as below)
                    bypass = self.on_encrypted == 2
                    self.on_encrypted = -1
                    raise Encrypted(bypass)
                return
            self.skip[d] = 0
            self._app_data(d, to_server, self.skip_version[d])
            data = data[skip:]
        buf = self.rec[d]
        buf += data
        if self.stream_frames is not None:
            self.stream_frames.stream(to_server, data)
        # Records are read at `off` and the consumed prefix is cut once at the end: cutting
        # each record off the front moved the rest of the buffer every time, and copying
        # each record's body is needed only for the records whose body is read (handshake,
        # heartbeat). Most records are application data (ndpi-mix: the copy and the cuts
        # were a quarter of the TLS parser).
        off = 0
        try:
            off = self._records(d, to_server, buf)
        finally:
            if off:
                del buf[:off]
        if len(buf) > MAX_HANDSHAKE:
            buf.clear()
        if self.app_data and self.on_encrypted > 0:
            bypass = self.on_encrypted == 2
            self.on_encrypted = -1
            raise Encrypted(bypass)

    def _records(self, d: int, to_server: bool, buf: bytearray) -> int:
        """Read the whole records of `buf`; returns how many bytes they took."""
        tx = self.tx
        off = 0
        size = len(buf)
        while size - off >= 5:
            b0 = buf[off]
            if b0 & 0x80 and buf[off + 2] == 1 and not tx.state:        # SSLv2 record: hello only
                ln = ((b0 & 0x7F) << 8) | buf[off + 1]
                if ln < 3:
                    self._fail(d, "invalid_sslv2_header")
                if size - off < 2 + ln:
                    break
                tx.record_version = (buf[off + 3] << 8) | buf[off + 4] if ln >= 3 else 0x0200
                tx.state |= STATE_CLIENT_HELLO
                off += 2 + ln
                tx.touch(to_server)
                continue
            ctype = b0
            version = (buf[off + 1] << 8) | buf[off + 2]
            ln = (buf[off + 3] << 8) | buf[off + 4]
            if ctype not in RECORD_TYPES:
                # Suricata: an unknown record type is skipped in TLS 1.0 / 1.1, fatal otherwise
                if self.version[d] in (0x0301, 0x0302) and buf[off + 1] == 3 and size - off >= 5 + ln:
                    tx.add_event("invalid_record_type")
                    tx.touch(to_server, NO_BUFFERS)
                    off += 5 + ln
                    continue
                self._fail(d, "invalid_record_type")
            if buf[off + 1] != 3 or buf[off + 2] > 4:
                self._fail(d, "invalid_record_version")     # not TLS any more: this direction stops
            if ln == 0:
                self._fail(d, "invalid_record_length")
            if size - off < 5 + ln:
                if ctype == 0x17 and self.stream_frames is None:
                    # application data whose body is still to come: the rest is counted
                    # (parse), not buffered
                    self.skip[d] = 5 + ln - (size - off)
                    self.skip_version[d] = version
                    off = size
                else:
                    # the header is read (Suricata's connp.version is the record's from
                    # here, until the hello's), the body waits (`need`)
                    self.need[d] = 5 + ln - (size - off)
                    self.version[d] = version
                    if not tx.hello_version & (1 << d):
                        tx.conn_version[d] = version
                break
            start = off + 5
            if self.stream_frames is not None:
                self._frames(to_server, buf, off, ln, ctype)
            off = start + ln
            self.version[d] = version
            if not tx.hello_version & (1 << d):
                tx.conn_version[d] = version
            if not tx.record_version:
                tx.record_version = version
            if ctype == 0x16 and not self.encrypted[d]:
                if ln < 4 and not self.hs[d]:
                    self._fail(d, "invalid_ssl_record")
                self._handshake(d, bytes(buf[start:off]))
            elif ctype == 0x18:
                self._heartbeat(d, bytes(buf[start:off]))
            elif ctype == 0x15 and ln < 2:
                self._fail(d, "invalid_alert_message")
            elif ctype == 0x14:
                self.encrypted[d] = True
                tx.advance(d, 3 if d else 4)        # client / server handshake done
                if not to_server:
                    tx.handshake_done = True
                    tx.done[0] = True
                else:
                    tx.done[1] = True
                tx.touch(to_server, NO_BUFFERS)
            elif ctype == 0x17:
                self._app_data(d, to_server, -1)
        return off

    def _frames(self, to_server: bool, buf: bytearray, off: int, ln: int, ctype: int) -> None:
        """The whole record at `off` as Suricata's TLS frames: `hdr`, `pdu`, `data` and, for
        an alert or heartbeat record, `alert` / `heartbeat` over its body."""
        fr = self.stream_frames
        at = fr.total[int(to_server)] - len(buf) + off
        tx_id = self.tx.tx_id
        rec = bytes(buf[off:off + 5 + ln])
        fr.add(to_server, "hdr", at, rec[:5], 5, tx_id)
        fr.add(to_server, "pdu", at, rec, 5 + ln, tx_id)
        fr.add(to_server, "data", at + 5, rec[5:], ln, tx_id)
        if ctype == 0x15:
            fr.add(to_server, "alert", at + 5, rec[5:], ln, tx_id)
        elif ctype == 0x18:
            fr.add(to_server, "heartbeat", at + 5, rec[5:], ln, tx_id)

    def _app_data(self, d: int, to_server: bool, version: int) -> None:
        """A whole application-data record. `version`: its header's, when the header was
        read on an earlier segment (parse's skip), else -1 (read just now by _records)."""
        tx = self.tx
        if version >= 0:
            # what _records does for every record it reads whole
            self.version[d] = version
            if not tx.hello_version & (1 << d):
                tx.conn_version[d] = version
            if not tx.record_version:
                tx.record_version = version
        # encrypted application data: the handshake is done (and the session
        # encrypted), except for a client's early data (0-RTT) before the ServerHello
        if not self.app_data and (not d or tx.state & STATE_SERVER_HELLO):
            self.app_data = True
        tx.advance(d, 3 if d else 4)
        tx.handshake_done = True
        tx.done[0] = tx.done[1] = True
        tx.touch(to_server, NO_BUFFERS)

    def _handshake(self, d: int, body: bytes) -> None:
        hs = self.hs[d]
        hs += body
        tx = self.tx
        while len(hs) >= 4:
            mtype = hs[0]
            ln = (hs[1] << 16) | (hs[2] << 8) | hs[3]
            if mtype not in HANDSHAKE_TYPES:
                # not a message Suricata parses: the rest of the record is skipped
                hs.clear()
                tx.add_event("invalid_handshake_message")
                tx.touch(bool(d), NO_BUFFERS)
                return
            if len(hs) < 4 + ln:
                if len(hs) > MAX_HANDSHAKE:
                    hs.clear()
                return
            msg = bytes(hs[4:4 + ln])
            del hs[:4 + ln]
            try:
                if mtype == 1:
                    self._client_hello(msg)
                    tx.advance(d, 1)                # client_hello_done
                    tx.state |= STATE_CLIENT_HELLO
                    tx.hello_version |= 1 << d
                elif mtype == 2:
                    self._server_hello(msg)
                    tx.advance(d, 1)                # server_hello
                    tx.state |= STATE_SERVER_HELLO
                    tx.hello_version |= 1 << d
                elif mtype == 11:
                    tx.advance(d, 2)                # client_cert_done / server_cert_done
                    err = self._certificate(msg, d)
                    if err is not None:
                        # Suricata: the certificate's decoding error, then the handshake
                        # message fails and the direction stops
                        tx.add_event(err)
                        tx.touch(bool(d))
                        self._fail(d, "invalid_handshake_message")
                elif mtype == 12:
                    tx.state |= STATE_SERVER_KEYX
                elif mtype == 14:
                    tx.advance(0, 3)                # server_hello_done
                    tx.handshake_done = True
                    tx.done[0] = True
                elif mtype == 16:
                    tx.state |= STATE_CLIENT_KEYX
            except (IndexError, ValueError):
                pass        # a truncated message: what was read so far stays
            tx.touch(bool(d), None if mtype in BUFFER_MESSAGES else NO_BUFFERS)

    @staticmethod
    def _exts(msg: bytes, off: int) -> list[tuple[int, bytes]]:
        out = []
        if off + 2 > len(msg):
            return out
        end = min(len(msg), off + 2 + ((msg[off] << 8) | msg[off + 1]))
        off += 2
        while off + 4 <= end:
            et = (msg[off] << 8) | msg[off + 1]
            el = (msg[off + 2] << 8) | msg[off + 3]
            out.append((et, msg[off + 4:off + 4 + el]))
            off += 4 + el
        return out

    def _client_hello(self, msg: bytes) -> None:
        tx = self.tx
        tx.client_version = (msg[0] << 8) | msg[1]
        tx.conn_version[1] = tx.client_version
        if len(msg) >= 34:
            tx.randoms[0] = msg[2:34]
        off = 34
        off += 1 + msg[off]
        cl = (msg[off] << 8) | msg[off + 1]
        ciphers = [(msg[i] << 8) | msg[i + 1] for i in range(off + 2, off + 2 + cl - 1, 2)]
        off += 2 + cl
        off += 1 + msg[off]
        exts = self._exts(msg, off)
        curves: list[int] = []
        fmts: list[int] = []
        sni_seen = False
        for et, ev in exts:
            if et == 0 and ev:
                # Suricata's TLSDecodeHSHelloExtensionSni: host_name type only, a length
                # of 1..255 that fits, one SNI extension
                if len(ev) < 3:
                    continue
                if ev[2] != 0:
                    tx.add_event("invalid_sni_type")
                    continue
                nl = (ev[3] << 8) | ev[4] if len(ev) >= 5 else 0
                if len(ev) < 5 or not 0 < nl <= 255 or 5 + nl > len(ev):
                    tx.add_event("invalid_sni_length")
                    continue
                if sni_seen:
                    tx.add_event("multiple_sni_extensions")
                    continue
                sni_seen = True
                tx.sni = ev[5:5 + nl]
            elif et == 10 and len(ev) >= 2:
                curves = [(ev[i] << 8) | ev[i + 1] for i in range(2, len(ev) - 1, 2)]
            elif et == 11 and ev:
                fmts = list(ev[1:1 + ev[0]])
            elif et == 16 and len(ev) >= 2:
                tx.client_alpns = _alpns(ev)
            elif et == 43 and ev:
                # supported_versions: the first valid one is the client's version (Suricata)
                for i in range(1, min(len(ev), 1 + ev[0]) - 1, 2):
                    v = (ev[i] << 8) | ev[i + 1]
                    if v in VERSIONS and v != 0x0200:
                        tx.conn_version[1] = v
                        break
        # lists, not generators, for join: compiled, a generator is a scope object and a
        # resumable frame per list (ndpi-mix: 1% of the packet phase in TLS client hellos)
        g = lambda xs: "-".join([str(x) for x in xs if x not in _GREASE])  # noqa: E731
        tx.ja3 = ",".join((str(tx.client_version), g(ciphers), g([e for e, _ in exts]), g(curves), g(fmts)))
        if self.ja4_on:
            tx.hello = (msg, exts)
            tx._ja4 = None
            tx.log_ja4 = self.log_ja4

    def _server_hello(self, msg: bytes) -> None:
        tx = self.tx
        tx.server_version = (msg[0] << 8) | msg[1]
        tx.conn_version[0] = tx.server_version
        if len(msg) >= 34:
            tx.randoms[1] = msg[2:34]
        off = 34
        off += 1 + msg[off]
        cipher = (msg[off] << 8) | msg[off + 1]
        off += 3
        exts = self._exts(msg, off)
        for et, ev in exts:
            if et == 43 and len(ev) == 2:
                tx.server_version = tx.conn_version[0] = (ev[0] << 8) | ev[1]
            elif et == 16 and len(ev) >= 2:
                tx.server_alpns = _alpns(ev)
        tx.ja3s = ",".join((str((msg[0] << 8) | msg[1]), str(cipher),
                            "-".join([str(e) for e, _ in exts])))

    def _certificate(self, msg: bytes, d: int = 0) -> str | None:
        """The chain; the first certificate that does not decode stops it and its event
        name is returned (x509.certificate_error)."""
        tx = self.tx
        total = (msg[0] << 16) | (msg[1] << 8) | msg[2]
        off = 3
        end = min(len(msg), 3 + total)
        while off + 3 <= end:
            cl = (msg[off] << 16) | (msg[off + 1] << 8) | msg[off + 2]
            der = msg[off + 3:off + 3 + cl]
            off += 3 + cl
            cert = parse_certificate(der)
            if cert is None:
                return certificate_error(der)
            (tx.client_certs if d else tx.certs).append(cert)
        return None


def _alpns(ev: bytes) -> list[str]:
    out = []
    off = 2
    while off < len(ev):
        ln = ev[off]
        out.append(ev[off + 1:off + 1 + ln].decode("ascii", "replace"))
        off += 1 + ln
    return out


# --- buffers --------------------------------------------------------------------------------

def _chain(tx: TlsTx, to_server: bool) -> list[Certificate]:
    """The certificates one side sent: the server's to the client, a client's (mutual
    TLS) to the server (Suricata 7's certificate buffers of both directions)."""
    return tx.client_certs if to_server else tx.certs


def _cert_field(attr: str):
    def get(tx: TlsTx, to_server: bool) -> bytes | None:
        certs = tx.client_certs if to_server else tx.certs
        if not certs:
            return None
        v = getattr(certs[0], attr)
        return v.encode("utf-8", "surrogateescape") if isinstance(v, str) else v
    return get


def _fingerprint(tx: TlsTx, to_server: bool) -> bytes | None:
    certs = _chain(tx, to_server)
    return certs[0].fingerprint.encode() if certs else None


def _ja3(kind: str, hashed: bool):
    def get(tx: TlsTx, to_server: bool) -> bytes | None:
        s = tx.ja3 if kind == "ja3" else tx.ja3s
        if s is None:
            return None
        return hashlib.md5(s.encode()).hexdigest().encode() if hashed else s.encode()  # noqa: S324
    return get


# Suricata's TLS frames (app-layer-ssl.c tls_frame_table), marked by TlsParser._frames
register_stream_frames("tls", ("pdu", "hdr", "data", "alert", "heartbeat"))
register_buffer("tls.sni", "tls", TO_SERVER, lambda tx, ts: tx.sni, "tls_sni")
register_buffer("tls.cert_subject", "tls", BOTH, _cert_field("subject"), "tls_cert_subject")
register_buffer("tls.cert_issuer", "tls", BOTH, _cert_field("issuer"), "tls_cert_issuer")
register_buffer("tls.cert_serial", "tls", BOTH, _cert_field("serial"), "tls_cert_serial")
register_buffer("tls.cert_fingerprint", "tls", BOTH, _fingerprint, "tls_cert_fingerprint")
register_buffer("tls.certs", "tls", BOTH, lambda tx, ts: [c.der for c in _chain(tx, ts)] or None, multi=True)
register_buffer("tls.subjectaltname", "tls", TO_CLIENT,
                lambda tx, ts: (tx.certs[0].san or None) if tx.certs else None, multi=True)
register_buffer("ja3.hash", "tls", TO_SERVER, _ja3("ja3", True), "ja3_hash")
register_buffer("ja3.string", "tls", TO_SERVER, _ja3("ja3", False), "ja3_string")
register_buffer("ja3s.hash", "tls", TO_CLIENT, _ja3("ja3s", True))
register_buffer("ja3s.string", "tls", TO_CLIENT, _ja3("ja3s", False))
register_buffer("ja4.hash", "tls", TO_SERVER, lambda tx, ts: tx.ja4.encode() if tx.ja4 is not None else None)

def _random(start: int, stop: int) -> Callable[[TlsTx, bool], bytes | None]:
    """tls.random (32 bytes), tls.random_time (its first 4), tls.random_bytes (the other 28):
    the ClientHello's to the server, the ServerHello's to the client (Suricata's detect-tls-random.c)."""
    def get(tx: TlsTx, to_server: bool) -> bytes | None:
        r = tx.randoms[0 if to_server else 1]
        return r[start:stop] if r is not None else None
    return get


register_buffer("tls.random", "tls", BOTH, _random(0, 32))
register_buffer("tls.random_time", "tls", BOTH, _random(0, 4))
register_buffer("tls.random_bytes", "tls", BOTH, _random(4, 32))
register_buffer("tls.alpn", "tls", TO_SERVER,
                lambda tx, ts: [a.encode() for a in tx.client_alpns] or None, multi=True)

_HANDLING = {"full": 0, "track-only": 1, "bypass": 2}


def read_hello(mtype: int, msg: bytes) -> TlsTx:
    """A ClientHello (1) or ServerHello (2) body read as a TLS connection's is (SNI, ALPN,
    versions, ja3/ja3s), into a transaction of its own: QUIC's CRYPTO frames (applayer/quic.py)."""
    p = TlsParser()
    (p._client_hello if mtype == 1 else p._server_hello)(msg)
    return p.tx


def _on(v: Any) -> bool:
    return v is True or str(v).strip().lower() in ("yes", "true", "on", "1")


def configure(config: Any) -> dict[str, Any]:
    """`app-layer.protocols.tls.encryption-handling` (registry.encryption_handling),
    `app-layer.protocols.tls.ja4-fingerprints` (yes, no, auto: on once a rule reads
    `ja4.hash`, rules_known) and the eve-log `tls` option `ja4`."""
    fp = get(config, "app-layer.protocols.tls.ja4-fingerprints", "auto")
    mode = "auto" if fp is None or str(fp).strip().lower() == "auto" else ("yes" if _on(fp) else "no")
    return {"encryption-handling": encryption_handling(config, "tls"), "ja4-fingerprints": mode,
            "ja4": mode == "yes", "log-ja4": _on(get(config, "outputs.eve-log.tls.ja4", True))}


def rules_known(settings: dict[str, Any], names: frozenset[str]) -> None:
    """ja4-fingerprints auto: JA4 is worked out once a loaded rule reads `ja4.hash` (of TLS
    or QUIC, as Suricata's keyword setup turns JA4 on for both)."""
    if settings["ja4-fingerprints"] == "auto":
        settings["ja4"] = any(n.partition("@")[0] == "ja4.hash" for n in names)


register_protocol(Protocol("tls", (6,), probe, TlsParser, (443,), configure=configure, rules_known=rules_known))
register_states("tls", ("client_in_progress", "client_hello_done", "client_cert_done", "client_handshake_done",
                        "client_finished"),
                ("server_in_progress", "server_hello", "server_cert_done", "server_hello_done",
                 "server_handshake_done", "server_finished"),
                lambda tx, to_server: tx.progress[to_server])
