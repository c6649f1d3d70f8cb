"""MIME: an incremental, line-based decoder of one mail message (SMTP DATA / BDAT).

As Suricata's SMTP MIME decoder (rust/src/mime/smtp.rs), not a full RFC 2045 parser:
it reads the message a line at a time as the client sends it, so nothing but the
attachments' data is kept, and it gives what rules and EVE read of a mail:

- the message's own headers (`email.from`, `email.subject`, ...): the header lines
  before the first empty line, folded lines unfolded;
- the parts: each part's headers; a part whose Content-Disposition has a `filename`
  or whose Content-Type has a `name` is an attachment (a file: `file.data`,
  `filename`, EVE `email.attachment` and `fileinfo`), decoded from base64 or
  quoted-printable as its Content-Transfer-Encoding says;
- nested multiparts: each Content-Type `boundary` is pushed, its `--boundary--`
  line pops it;
- URLs found in the decoded text of the parts that are not attachments
  (`email.url`), by the configured schemes (Suricata's default: `http://`), logged
  without the scheme unless `log-url-scheme` is set;
- the md5 of the body (everything after the message's headers, as sent: Suricata's
  `body-md5`), when asked.

Why line by line rather than the standard library's `email` parser: that parser
wants the whole message before it gives anything, so a mail of tens of MiB would be
held whole per flow; here memory is one line plus the attachments' kept data.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from typing import Any

from netsentry.applayer.files import File

_TOKEN_CACHE: dict[bytes, re.Pattern[bytes]] = {}
# Suricata's RS_MIME_MAX_TOKEN_LEN (a longer filename is cut, MIME_LONG_FILENAME)
MAX_TOKEN_LEN = 255
MAX_BOUNDARY_LEN = 254
MAX_LINE_LEN = 998          # RFC 5322's limit: a longer line is MIME_LONG_LINE
MAX_HEADER_NAME = 75
MAX_HEADER_VALUE = 2000
MAX_DECODED_LINE = 8192     # Suricata's SMTP_MIME_MAX_DECODED_LINE_LENGTH
_QP_HEX = re.compile(rb"=([0-9A-Fa-f]{2})")
_B64_STRIP = re.compile(rb"[^A-Za-z0-9+/=]")

# the parser's states
HEADERS, BODY = 0, 1


def header_token(value: bytes, token: bytes) -> bytes | None:
    """The value of parameter `token` (`filename`, `name`, `boundary`) in a header value,
    quoted or not; RFC 2231 continuations (`name*0=`, `name*1=`) are joined, as Suricata's
    mime_find_header_token (suricata-verify smtp-rfc2231)."""
    pat = _TOKEN_CACHE.get(token)
    if pat is None:
        pat = _TOKEN_CACHE[token] = re.compile(
            rb'(?:^|[;\s])' + re.escape(token) + rb'(\*[0-9]+)?\*?\s*=\s*(?:"([^"]*)"|([^;\s]*))', re.I)
    parts: list[tuple[int, bytes]] = []
    for m in pat.finditer(value):
        idx = int(m.group(1)[1:]) if m.group(1) else -1
        v = m.group(2) if m.group(2) is not None else m.group(3)
        if idx < 0:
            return v
        parts.append((idx, v))
    if not parts:
        return None
    return b"".join(v for _, v in sorted(parts))


class MimePart:
    """One part being read: its headers and, for an attachment, its file."""

    __slots__ = ("headers", "encoding", "file", "text", "b64_rest", "encap", "held_eol")

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.encoding = b""
        self.file: File | None = None
        self.text = False           # text/plain or text/html: URLs are looked for in it
        self.b64_rest = b""         # base64 characters not yet a multiple of 4
        self.encap = False          # message/rfc822: its body is another message's headers
        self.held_eol = b""         # a file line's ending, written when the next line is no boundary


class MimeMessage:
    """The decoder of one message. `line(data)` takes one line without its line ending;
    `complete()` at the message's end (the DATA `.`, the last BDAT chunk)."""

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        settings = settings or {}
        self.headers: list[tuple[bytes, bytes]] = []     # the message's own headers
        self.main_done = False
        self.state = HEADERS
        self.part = MimePart()
        self.boundaries: list[bytes] = []
        self.files: list[File] = []
        self.attachments: list[bytes] = []
        self.urls: list[bytes] = []
        self.events: set[str] = set()
        self.done = False
        self.decode_base64 = settings.get("decode-base64", True)
        self.decode_qp = settings.get("decode-quoted-printable", True)
        self.extract_urls = settings.get("extract-urls", True)
        self.schemes: tuple[bytes, ...] = tuple(s.encode() if isinstance(s, str) else s
                                                for s in settings.get("extract-urls-schemes", ("http://",)))
        self.log_scheme = bool(settings.get("log-url-scheme", False))
        self.file_limit = int(settings.get("file-limit", 100 * 1024 * 1024))
        self._md5: Any = hashlib.md5() if settings.get("body-md5", True) else None
        self.body_md5: str | None = None
        self._pending_header: tuple[bytes, bytearray] | None = None
        self.bdat_pending = b""
        self._url_line = b""             # decoded text after the last LF, for URL extraction          # BDAT: the start of a line a chunk cut (smtp.py)

    # --- reading --------------------------------------------------------------------------
    def line(self, data: bytes, eol: bytes = b"\r\n") -> None:
        if self.done:
            return
        if len(data) > MAX_LINE_LEN:
            self.events.add("mime_long_line")
        if self._md5 is not None and self.main_done:
            self._md5.update(data + eol)
        if self.state == HEADERS:
            self._header_line(data)
            if self.state == BODY and self._md5 is not None and not self.main_done:
                pass
            return
        self._body_line(data, eol)

    def _header_line(self, data: bytes) -> None:
        if data and data[0] in (0x20, 0x09) and self._pending_header is not None:
            # a folded header continues the previous one
            self._pending_header[1].extend(data)
            return
        self._flush_header()
        if not data:
            self._end_headers()
            return
        name, colon, value = data.partition(b":")
        if not colon or not name or b" " in name.strip():
            # not a header: the headers are over and this is the body's first line (a
            # message without its empty line, as Suricata's parser reads it)
            self._end_headers()
            self._body_line(data, b"\r\n")
            return
        if len(name) > MAX_HEADER_NAME:
            self.events.add("mime_long_header_name")
        self._pending_header = (name.strip(), bytearray(value.lstrip(b" \t")))

    def _flush_header(self) -> None:
        pending = self._pending_header
        if pending is None:
            return
        self._pending_header = None
        name, value = pending
        if len(value) > MAX_HEADER_VALUE:
            self.events.add("mime_long_header_value")
        item = (name, bytes(value).rstrip(b" \t"))
        if self.main_done:
            self.part.headers.append(item)
        else:
            self.headers.append(item)
            self.part.headers.append(item)

    def _end_headers(self) -> None:
        """The empty line after a header block: what the part is (an attachment, text, a
        multipart with its boundary, an encapsulated message)."""
        self.main_done = True
        self.state = BODY
        part = self.part
        name = None
        ctype_main = b""
        for hname, value in part.headers:
            low = hname.lower()
            if low == b"content-disposition":
                if name is None:
                    name = header_token(value, b"filename")
            elif low == b"content-transfer-encoding":
                part.encoding = value.strip().lower()
            elif low == b"content-type":
                if name is None:
                    name = header_token(value, b"name")
                boundary = header_token(value, b"boundary")
                if boundary:
                    if len(boundary) > MAX_BOUNDARY_LEN:
                        self.events.add("mime_long_boundary")
                    self.boundaries.append(b"--" + boundary)
                ctype_main = value.split(b";", 1)[0].strip().lower()
        if name is not None:
            if len(name) > MAX_TOKEN_LEN:
                self.events.add("mime_long_filename")
                name = name[:MAX_TOKEN_LEN]
            part.file = File(name, b"", 0, False, False)
            part.file.data = bytearray()          # type: ignore[assignment]
            self.files.append(part.file)
            self.attachments.append(name)
        else:
            part.text = ctype_main in (b"", b"text/plain", b"text/html")
        if ctype_main.startswith(b"message/"):
            # an encapsulated message: its headers follow at once (smtp-mime-encap)
            part.encap = True
            self.part = MimePart()
            self.state = HEADERS

    def _body_line(self, data: bytes, eol: bytes) -> None:
        if data[:2] == b"--" and self.boundaries:
            stripped = data.rstrip(b" \t")
            for i in range(len(self.boundaries) - 1, -1, -1):
                b = self.boundaries[i]
                if stripped == b:
                    self._close_part()
                    del self.boundaries[i + 1:]
                    self.part = MimePart()
                    self.state = HEADERS
                    return
                if stripped == b + b"--":
                    self._close_part()
                    del self.boundaries[i:]
                    self.part = MimePart()
                    self.part.text = False       # the epilogue is not looked at
                    return
        part = self.part
        decoded = self._decode(part, data, eol)
        if part.file is not None:
            # the line ending before a boundary line belongs to the boundary (RFC 2046
            # 5.1.1): a line's ending is added to the file when the next line is not one
            decoded = part.held_eol + decoded
            part.held_eol = b""
            if part.encoding != b"base64" and decoded.endswith(b"\n"):
                cut = 2 if decoded.endswith(b"\r\n") else 1
                decoded, part.held_eol = decoded[:-cut], decoded[-cut:]
            if decoded:
                part.file.append(decoded, self.file_limit)
        elif part.text and self.extract_urls and decoded:
            # URLs are looked for in whole decoded lines: a quoted-printable soft break
            # splits a URL over two encoded lines (Suricata's decoded_line)
            text = self._url_line + decoded if self._url_line else decoded
            nl = text.rfind(b"\n")
            if nl < 0 and len(text) <= MAX_DECODED_LINE:
                self._url_line = text
            else:
                cut = len(text) if nl < 0 else nl + 1
                self._find_urls(text[:cut])
                self._url_line = text[cut:]

    def _decode(self, part: MimePart, data: bytes, eol: bytes) -> bytes:
        enc = part.encoding
        if enc == b"base64" and self.decode_base64:
            chars = part.b64_rest + _B64_STRIP.sub(b"", data)
            n = len(chars) - len(chars) % 4
            part.b64_rest = chars[n:]
            if not n:
                return b""
            try:
                return binascii.a2b_base64(chars[:n])
            except binascii.Error:
                self.events.add("mime_invalid_base64")
                return b""
        if enc == b"quoted-printable" and self.decode_qp:
            if data.endswith(b"="):              # a soft line break: no line ending
                return _QP_HEX.sub(lambda m: bytes((int(m.group(1), 16),)), data[:-1])
            return _QP_HEX.sub(lambda m: bytes((int(m.group(1), 16),)), data) + b"\r\n"
        return data + eol

    def _find_urls(self, text: bytes) -> None:
        low = text.lower()
        for scheme in self.schemes:
            start = low.find(scheme)
            while start >= 0:
                end = start
                n = len(text)
                while end < n and text[end] not in b" \"'<>]\t\r\n":
                    end += 1
                url = text[start:end] if self.log_scheme else text[start + len(scheme):end]
                self.urls.append(url)
                start = low.find(scheme, end)

    def _close_part(self) -> None:
        if self._url_line:
            self._find_urls(self._url_line)
            self._url_line = b""
        f = self.part.file
        if f is not None:
            if self.part.b64_rest:
                rest = self.part.b64_rest + b"=" * (-len(self.part.b64_rest) % 4)
                self.part.b64_rest = b""
                try:
                    tail = binascii.a2b_base64(rest)
                except binascii.Error:
                    tail = b""
                f.data.extend(tail)              # type: ignore[attr-defined]
                f.size += len(tail)
            f.complete = True

    def complete(self) -> None:
        """The message ended: every open file is closed, the body md5 is final."""
        if self.done:
            return
        self._flush_header()
        if not self.main_done:
            self.main_done = True
        self._close_part()
        for f in self.files:
            f.complete = True
        if self._md5 is not None:
            self.body_md5 = self._md5.hexdigest()
        self.done = True

    # --- what rules and EVE read ------------------------------------------------------------
    def header(self, name: bytes) -> bytes | None:
        """The first of the message's own headers called `name` (lowercase)."""
        for hname, value in self.headers:
            if hname.lower() == name:
                return value
        return None

    def header_all(self, name: bytes) -> list[bytes]:
        return [value for hname, value in self.headers if hname.lower() == name]


def split_addresses(value: bytes) -> list[bytes]:
    """A To/Cc value split on the commas outside quotes, leading blanks dropped (as
    Suricata logs `email.to` / `email.cc`)."""
    out: list[bytes] = []
    quoted = False
    start = 0
    field = False
    for i, c in enumerate(value):
        if not field and not quoted:
            if c in (0x20, 0x09):
                start += 1
                continue
            field = True
        if c == 0x22:
            quoted = not quoted
        elif c == 0x2C and not quoted:
            if i > start:
                out.append(value[start:i])
            start = i + 1
            field = False
    if len(value) > start:
        out.append(value[start:])
    return out
