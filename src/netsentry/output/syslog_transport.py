"""Syslog transports: UDP (RFC 5426), TCP (RFC 6587), TLS (RFC 5425) and the local socket.

Each is a `Transport` driven by the output's sender thread (sendqueue.py),
never by the capture loop. One table, `TRANSPORTS`, maps the configuration's
``transport:`` value to its class, with its standard port.

Framing over a stream (TCP, TLS, a stream unix socket): RFC 6587 octet
counting by default (``LEN SP MSG``, what RFC 5425 mandates for TLS and what
rsyslog, syslog-ng and Splunk accept), or non-transparent framing (``MSG LF``)
as an option; EVE JSON never holds a raw LF, so that framing is safe for it.

UDP truncation rule: a message longer than ``max-message-size`` bytes is cut
at that many bytes (at a UTF-8 character boundary), never split over two
datagrams, and counted in ``truncated``. RFC 5426 asks receivers to accept
at least 480 bytes (IPv4) and says 2048 SHOULD be; rsyslog's default limit is
8 KiB, our default. A truncated EVE record is no longer valid JSON: send big
records (payload, packet) over TCP or TLS.

TLS never falls back to plain TCP: the server's certificate is verified
against ``ca-file`` and its name against ``server`` (or ``tls-name``); a
failed handshake is a failed connection, retried with backoff.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable

from netsentry.output.sendqueue import SendError, Transport

CONNECT_TIMEOUT = 5.0
SEND_WAIT = 0.5         # seconds per wait on a full socket buffer before looking at stop()


def utf8_cut(data: bytes, limit: int) -> bytes:
    """`data` cut to at most `limit` bytes without splitting a UTF-8 character."""
    if len(data) <= limit:
        return data
    cut = limit
    while cut > 0 and (data[cut] & 0xC0) == 0x80:      # a continuation byte: back up
        cut -= 1
    return data[:cut]


def octet_counted(msg: bytes) -> bytes:
    """RFC 6587 section 3.4.1 / RFC 5425 section 4.3: ``MSG-LEN SP SYSLOG-MSG``."""
    return b"%d %s" % (len(msg), msg)


def non_transparent(msg: bytes) -> bytes:
    """RFC 6587 section 3.4.2: the message followed by LF."""
    return msg + b"\n"


FRAMINGS: dict[str, Callable[[bytes], bytes]] = {
    "octet-counting": octet_counted,
    "non-transparent": non_transparent,
}


class StreamTransport(Transport):
    """A stream socket; records are framed and written in one buffer per batch."""

    def __init__(self, frame: Callable[[bytes], bytes]) -> None:
        self._frame = frame
        self._sock: socket.socket | None = None

    def _open(self) -> socket.socket:  # pragma: no cover - interface
        raise NotImplementedError

    def connect(self) -> None:
        self.close()
        sock = self._open()
        sock.settimeout(SEND_WAIT)
        self._sock = sock

    def send(self, records: list[bytes], stop: Callable[[], bool]) -> None:
        sock = self._sock
        if sock is None:
            raise SendError("not connected")
        frame = self._frame
        data = memoryview(b"".join([frame(r) for r in records]))
        while data:
            try:
                n = sock.send(data)
            except (TimeoutError, socket.timeout, ssl.SSLWantWriteError):
                # the receiver is slow or frozen, not gone: wait on this connection, so
                # no byte is sent twice, unless shutdown has given up
                if stop():
                    raise SendError("shutdown while the receiver was not reading") from None
                continue
            data = data[n:]

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None


class TcpTransport(StreamTransport):
    def __init__(self, host: str, port: int, frame: Callable[[bytes], bytes]) -> None:
        super().__init__(frame)
        self.host, self.port = host, port
        self.name = f"tcp://{host}:{port}"

    def _open(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


class TlsTransport(StreamTransport):
    def __init__(self, host: str, port: int, frame: Callable[[bytes], bytes],
                 context: ssl.SSLContext, server_name: str) -> None:
        super().__init__(frame)
        self.host, self.port = host, port
        self._context = context
        self._server_name = server_name
        self.name = f"tls://{host}:{port}"

    def _open(self) -> socket.socket:
        raw = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT)
        try:
            return self._context.wrap_socket(raw, server_hostname=self._server_name)
        except BaseException:
            raw.close()
            raise


class UnixStreamTransport(StreamTransport):
    def __init__(self, path: str, frame: Callable[[bytes], bytes]) -> None:
        super().__init__(frame)
        self.path = path
        self.name = f"unix-stream://{path}"

    def _open(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(CONNECT_TIMEOUT)
        try:
            sock.connect(self.path)
        except BaseException:
            sock.close()
            raise
        return sock


class DatagramTransport(Transport):
    """UDP or a datagram unix socket: one message per datagram, cut at `limit` bytes."""

    def __init__(self, family: int, address: object, limit: int, name: str) -> None:
        self._family = family
        self._address = address
        self.limit = limit
        self.truncated = 0
        self._sock: socket.socket | None = None
        self.name = name

    def connect(self) -> None:
        self.close()
        sock = socket.socket(self._family, socket.SOCK_DGRAM)
        try:
            sock.settimeout(SEND_WAIT)
            sock.connect(self._address)     # connected: ICMP unreachable shows as an error
        except BaseException:
            sock.close()
            raise
        self._sock = sock

    def send(self, records: list[bytes], stop: Callable[[], bool]) -> None:
        sock = self._sock
        if sock is None:
            raise SendError("not connected")
        limit = self.limit
        for rec in records:
            if len(rec) > limit:
                rec = utf8_cut(rec, limit)
                self.truncated += 1
            while True:
                try:
                    sock.send(rec)
                    break
                except (TimeoutError, socket.timeout, BlockingIOError):
                    if stop():
                        raise SendError("shutdown while the receiver was not reading") from None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class UnixTransport(Transport):
    """The local syslog socket (``/dev/log``): a datagram socket, or a stream one
    where the daemon listens that way (as some syslog daemons do)."""

    def __init__(self, path: str, limit: int, frame: Callable[[bytes], bytes]) -> None:
        self.path = path
        self.name = f"unix://{path}"
        self._dgram = DatagramTransport(socket.AF_UNIX, path, limit, self.name)
        self._stream = UnixStreamTransport(path, frame)
        self._active: Transport = self._dgram

    @property
    def truncated(self) -> int:
        return self._dgram.truncated

    def connect(self) -> None:
        try:
            self._dgram.connect()
            self._active = self._dgram
        except OSError as exc:
            if exc.errno != 91:         # EPROTOTYPE: the socket is a stream socket
                raise
            self._stream.connect()
            self._active = self._stream

    def send(self, records: list[bytes], stop: Callable[[], bool]) -> None:
        self._active.send(records, stop)

    def close(self) -> None:
        self._dgram.close()
        self._stream.close()


# transport name -> standard port (0: not a network transport)
STANDARD_PORTS: dict[str, int] = {"udp": 514, "tcp": 514, "tls": 6514, "unix": 0}
