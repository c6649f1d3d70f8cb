"""SMTP: commands and replies, the mail transaction, DATA/BDAT with MIME, STARTTLS.

As Suricata's SMTP parser (app-layer-smtp.c), in the parts rules and EVE can tell:

- lines: commands from the client, replies from the server, each up to LF; a
  command or reply of 510 bytes or more (Suricata's SMTP_LINE_BUFFER_LIMIT) is cut
  there and its rest discarded, with `truncated_line`; the lines of a DATA body
  have no such limit (the MIME decoder's `mime_long_line` instead);
- every command waits in a queue for its reply (pipelining: a client may send
  several before the first reply); a multi-line reply (`250-...`) answers one
  command; the first reply is the server's greeting (220);
- the transaction: one mail, from the first command (or the first after the
  previous mail ended) to the reply that ends it. HELO/EHLO belongs to the
  session (`smtp.helo` of every mail); MAIL FROM and RCPT TO fill the mail; DATA
  enters data mode on the 354 reply (at once when the server announced
  PIPELINING), the message runs to the line `.`, and the mail is complete on the
  server's reply to it; BDAT N [LAST] carries N bytes of message; RSET and QUIT
  complete the current mail on their 250 / 221 and make none of their own; a
  mid-session HELO/EHLO after MAIL FROM/RCPT TO/DATA resets like RSET;
- STARTTLS accepted (220): the parser stops (`app-layer-event:smtp.*` still names
  what went before) and asks the app layer for a protocol change (ProtocolChange):
  the next bytes are detected again, TLS expected;
- the message: applayer/mime.py (headers, attachments as files, URLs).

Buffers: `smtp.helo`, `smtp.mail_from`, `smtp.rcpt_to` (multi), `email.from`,
`email.subject`, `email.to` (multi), `email.cc` (multi), `email.date`,
`email.message_id`, `email.x_mailer`, `email.received` (multi), `email.url`
(multi), `email.body_md5`, and `file.data` of the attachments. EVE: `smtp{helo,
mail_from, rcpt_to}` and `email{from, to, cc, status, attachment, url}`.
"""

from __future__ import annotations

import hashlib
from collections import deque
from typing import Any

from netsentry.applayer.files import FILES, File, files_eve
from netsentry.applayer.mime import MimeMessage, split_addresses
from netsentry.applayer.frames import frames_for, register_stream_frames
from netsentry.applayer.registry import (CHANGERS, TO_SERVER, Protocol, ProtocolChange, register_buffer,
                                         register_protocol, register_states)
from netsentry.applayer.tx import Tx
from netsentry.config import ConfigError, get

LINE_LIMIT = 510                  # Suricata's SMTP_LINE_BUFFER_LIMIT
# progress of the request side (Suricata's SMTP_REQUEST_*)
REQ_STARTED, REQ_DATA, REQ_COMPLETE = 0, 1, 2
RESP_STARTED, RESP_DATA, RESP_COMPLETE = 0, 1, 2

# The app-layer events this parser raises (app-layer-event:smtp.NAME, Suricata's
# rules/smtp-events.rules names), each inspected on the request side.
EVENTS: dict[str, int | None] = {name: 0 for name in (
    "invalid_reply", "unable_to_match_reply_with_request", "max_command_line_len_exceeded",
    "max_reply_line_len_exceeded", "invalid_pipelined_sequence", "bdat_chunk_len_exceeded",
    "no_server_welcome_message", "tls_rejected", "data_command_rejected", "failed_protocol_change",
    "mime_parse_failed", "mime_invalid_base64", "mime_invalid_qp", "mime_long_line",
    "mime_long_enc_line", "mime_long_header_name", "mime_long_header_value", "mime_long_boundary",
    "mime_long_filename", "duplicate_fields", "unparsable_content", "truncated_line", "invalid_bdat")}

MAX_PENDING = 0xFFFF - 1   # commands waiting for replies (Suricata: USHRT_MAX - 1)

# the queue's command kinds
_OTHER, _DATA, _DATA_END, _BDAT, _BDAT_LAST, _RSET, _QUIT, _STARTTLS = range(8)


def probe(data: bytes, to_server: bool) -> bool | None:
    """Suricata's SMTP detection: EHLO/HELO from the client (any case); QUIT is SMTP only
    on an SMTP port (undecided here: the port decides); a server's 220 greeting is SMTP on
    its ports (25, 465) and undecided elsewhere (FTP greets with 220 too): the client's
    first command decides."""
    if to_server:
        if len(data) < 4:
            return None if _prefix_of(data, (b"EHLO", b"HELO", b"QUIT")) else False
        head = data[:4].upper()
        if head in (b"EHLO", b"HELO"):
            return True
        return None if head == b"QUIT" else False
    if len(data) < 4:
        return None if b"220 ".startswith(data) or b"220-".startswith(data) else False
    if data[:3] != b"220" or data[3] not in b" -":
        return False
    return None


def _prefix_of(data: bytes, words: tuple[bytes, ...]) -> bool:
    up = data.upper()
    return any(w.startswith(up) for w in words)


class SmtpTx(Tx):
    """One mail: its envelope, its message, and how far each side got."""

    __slots__ = ("conn", "mail_from", "rcpt_to", "mime", "progress", "progress_tc", "is_data", "raw")
    proto = "smtp"

    def __init__(self, tx_id: int, conn: SmtpParser) -> None:
        super().__init__(tx_id)
        self.conn = conn                       # the session: smtp.helo is its
        self.mail_from: bytes | None = None
        self.rcpt_to: list[bytes] = []
        self.mime: MimeMessage | None = None
        self.progress = REQ_STARTED
        self.progress_tc = RESP_STARTED        # the reply side's (RESP_DATA: 354 to DATA, a BDAT reply)
        self.is_data = False
        self.raw: File | None = None           # raw-extraction: the whole message as one file

    def files(self) -> list[File]:
        if self.raw is not None:
            return [self.raw]
        return self.mime.files if self.mime is not None else []

    def eve(self) -> dict[str, Any]:
        return self.eve_objects()["smtp"]

    def alert_objects(self) -> dict[str, Any]:
        """An alert on this mail: its record's objects and the mail's files."""
        out = self.eve_objects()
        files = self.files()
        if files:
            out["files"] = files_eve(files, self.tx_id)
        return out

    def eve_objects(self) -> dict[str, Any]:
        """The top-level objects of this mail's records and alerts: `smtp` and, once the
        message started, `email` (Suricata's output-json-smtp.c and smtp_log.rs)."""
        smtp: dict[str, Any] = {}
        helo = self.conn.helo
        if helo is not None:
            smtp["helo"] = _text(helo)
        if self.mail_from is not None:
            smtp["mail_from"] = _text(self.mail_from)
        if self.rcpt_to:
            smtp["rcpt_to"] = [_text(r) for r in self.rcpt_to]
        out: dict[str, Any] = {"smtp": smtp}
        m = self.mime
        if m is not None:
            out["email"] = email_eve(m, self.conn.settings)
        return out


def email_eve(m: MimeMessage, settings: dict[str, Any]) -> dict[str, Any]:
    email: dict[str, Any] = {}
    v = m.header(b"from")
    if v is not None:
        email["from"] = _text(v)
    for field in (b"to", b"cc"):
        v = m.header(field)
        if v is not None:
            parts = split_addresses(v)
            if parts:
                email[field.decode()] = [_text(p) for p in parts]
    email["status"] = "PARSE_DONE"
    if m.attachments:
        email["attachment"] = [_text(a) for a in m.attachments]
    if m.urls:
        email["url"] = [_text(u) for u in reversed(m.urls)]
    # `outputs.eve-log.smtp`: extended / custom fields (output-json-email-common.c), in
    # Suricata's table order; the keys are the table's (`message_id`)
    for key in settings.get("custom", ()):
        header, how, _ = EMAIL_FIELDS[key]
        values = m.header_all(header.encode())
        if not values:
            continue
        if how == "array":
            email[key] = [_text(x) for x in values]
        elif how == "comma":
            parts = split_addresses(values[0])
            if parts:
                email[key] = [_text(x) for x in parts]
        else:
            email[key] = _text(values[0])
    md5 = settings.get("md5", ())
    if "subject" in md5:
        subj = m.header(b"subject")
        if subj is not None:
            email["subject_md5"] = hashlib.md5(subj).hexdigest()
    if "body" in md5 and m.body_md5 is not None:
        email["body_md5"] = m.body_md5
    return email


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


class SmtpParser:
    """One SMTP session."""

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        self.settings = settings or {}
        self.txs: list[SmtpTx] = []
        self.helo: bytes | None = None
        self.curr: SmtpTx | None = None
        self.buf = [b"", b""]                 # partial line by to_server
        self.discard = [False, False]         # the rest of an over-long line is dropped
        # commands waiting for their reply (at most MAX_PENDING: a client that pipelines
        # without end, or a server that never answers, must not grow it without bound)
        self.cmds: deque[tuple[int, SmtpTx | None]] = deque()
        self.first_reply = False
        self.multiline = False
        self.pipelining = False               # the server said 250-PIPELINING
        self.data_mode = False
        self.current = _OTHER
        self.bdat_left = 0
        self.tls = False                      # STARTTLS accepted: the rest is TLS
        self.events_pending: set[str] = set()
        self.stream_frames = frames_for("smtp")      # applayer/frames.py: None unless a rule reads SMTP frames
        self.data_frame: Any = None           # the open `data` frame of a DATA command

    # --- events -----------------------------------------------------------------------------
    def _event(self, name: str, tx: SmtpTx | None = None) -> None:
        tx = tx or self.curr or (self.txs[-1] if self.txs else None)
        if tx is None:
            self.events_pending.add(name)     # before the first mail: on the first one
            return
        tx.add_event(name)
        tx.touch(True)

    # --- bytes in -------------------------------------------------------------------------------
    def parse(self, data: bytes, to_server: bool, pkt: Any = None) -> None:
        if self.tls:
            return
        d = 1 if to_server else 0
        if to_server and self.bdat_left and not self.buf[1]:
            data = self._bdat_bytes(data)
            if not data:
                return
        fr = self.stream_frames
        if fr is not None:
            fr.stream(to_server, data)
        buf = self.buf[d] + data if self.buf[d] else data
        start = 0
        n = len(buf)
        while start < n and not self.tls:
            if to_server and self.bdat_left:
                rest = self._bdat_bytes(buf[start:])
                buf, start, n = rest, 0, len(rest)
                continue
            lf = buf.find(b"\n", start)
            if lf < 0:
                if n - start >= LINE_LIMIT and not self.discard[d] and not (to_server and self.data_mode):
                    # an over-long command or reply: Suricata parses its first 510 bytes and
                    # drops the rest up to LF (a DATA body has no such limit: MIME's own)
                    line = buf[start:start + LINE_LIMIT]
                    self._event("truncated_line")
                    self.discard[d] = True
                    if fr is not None:
                        fr.add(to_server, "command_line" if to_server else "response_line",
                               fr.total[d] - n + start, line, len(line))
                    self._line(line, b"", to_server)
                    start = n
                    break
                break
            end = lf
            eol = b"\n"
            if end > start and buf[end - 1] == 0x0D:
                end -= 1
                eol = b"\r\n"
            line = buf[start:end]
            at = start
            start = lf + 1
            if self.discard[d]:
                self.discard[d] = False
                continue
            if len(line) >= LINE_LIMIT and not (to_server and self.data_mode):
                self._event("truncated_line")
                line = line[:LINE_LIMIT]
            if fr is not None:
                self._frames(to_server, buf, at, start, line, eol, fr.total[d] - n)
                continue
            self._line(line, eol, to_server)
        self.buf[d] = buf[start:] if start < n else b""
        if self.tls:
            self.buf = [b"", b""]
            raise ProtocolChange("tls")         # the app layer detects the protocol again

    def _frames(self, to_server: bool, buf: bytes, at: int, end: int, line: bytes, eol: bytes, base: int) -> None:
        """Read the line buf[at:end] (`line` without its end) with Suricata's SMTP frames
        (app-layer-smtp.c): a reply is a `response_line`; a command line outside a DATA body
        is a `command_line` twice, as Suricata marks it: with its line end when the line is
        found, then without it and with its transaction when the command is processed; a
        DATA command opens the `data` frame, which the body's end closes."""
        fr = self.stream_frames
        if not to_server:
            # the transaction the reply answers (Suricata's SMTPGetReplyTx)
            if self.cmds:
                owner = self.cmds[0][1]
            else:
                owner = self.curr
            fr.add(False, "response_line", base + at, buf[at:end], end - at,
                   owner.tx_id if owner is not None else None)
            self._reply(line)
            return
        in_data = self.data_mode and self.current == _DATA
        if not in_data:
            fr.add(True, "command_line", base + at, buf[at:end], end - at)
        was_data = self.curr.is_data if self.curr is not None else False
        self._request(line, eol)
        tx = self.curr
        if not in_data:
            fr.add(True, "command_line", base + at, line, len(line), tx.tx_id if tx is not None else None)
            if tx is not None and tx.is_data and not was_data and line[:4].lower() == b"data":
                self.data_frame = fr.add(True, "data", base + end, buf[end:], -1, tx.tx_id)
        elif not self.data_mode and self.data_frame is not None:
            # the body's end (".\r\n") closes the data frame after it
            f = self.data_frame
            self.data_frame = None
            f.close(base + end - f.offset)

    def _bdat_bytes(self, data: bytes) -> bytes:
        """The next `bdat_left` bytes are message data, whatever lines they hold."""
        take = data[:self.bdat_left]
        self.bdat_left -= len(take)
        tx = self.curr
        if tx is not None and tx.mime is not None:
            self._mime_feed(tx, take)
            tx.touch(True)
        if not self.bdat_left and self.current == _BDAT_LAST and tx is not None:
            self._end_message(tx)
        return data[len(take):]

    def _line(self, line: bytes, eol: bytes, to_server: bool) -> None:
        if to_server:
            self._request(line, eol)
        else:
            self._reply(line)

    def gap(self, to_server: bool, nbytes: int) -> None:
        if to_server and self.curr is not None and self.data_mode:
            self._event("truncated_line")

    def eof(self, to_server: bool) -> None:
        if self.curr is not None and self.curr.mime is not None and not self.curr.mime.done:
            self.curr.mime.complete()

    # --- the client ---------------------------------------------------------------------------
    def _new_tx(self) -> SmtpTx:
        tx = SmtpTx(len(self.txs), self)
        if self.events_pending:
            for e in self.events_pending:
                tx.add_event(e)
            self.events_pending = set()
        self.txs.append(tx)
        self.curr = tx
        return tx

    def _request(self, line: bytes, eol: bytes) -> None:
        if self.data_mode and self.current == _DATA:
            self._data_line(line, eol)
            return
        low4 = line[:4].lower()
        no_new_tx = low4 in (b"rset", b"quit")
        curr = self.curr
        if (curr is None and (not self.txs or not no_new_tx)) or (
                curr is not None and curr.progress == REQ_COMPLETE and not no_new_tx):
            curr = self._new_tx()
        if not self.first_reply:
            self._event("no_server_welcome_message")
        tx = curr
        if tx is not None:
            tx.touch(True)
        if tx is None or (no_new_tx and tx.progress == REQ_COMPLETE):
            # RSET / QUIT after the mail ended: the session's, no transaction
            cmd = _RSET if low4 == b"rset" else _QUIT
            self._queue(cmd, None)
            return
        if line[:8].lower() == b"starttls":
            cmd = _STARTTLS
        elif low4 == b"data":
            cmd = _DATA
            tx.progress = REQ_DATA
            if tx.is_data:
                self._event("unparsable_content", tx)
                return
            tx.is_data = True
            self._start_message(tx)
            if self.pipelining:
                self.data_mode = True           # data follows without waiting for 354
        elif low4 == b"bdat":
            cmd = self._bdat_command(tx, line)
        elif low4 in (b"helo", b"ehlo"):
            if self.helo is None:
                self.helo = _param(line, 4)
            else:
                self._event("duplicate_fields", tx)
            if tx.mail_from is not None or tx.rcpt_to or tx.progress != REQ_STARTED:
                cmd = _RSET                     # RFC 5321 4.1.4: a new HELO resets the mail
            else:
                cmd = _OTHER
        elif line[:9].lower() == b"mail from":
            if tx.mail_from is not None:
                self._event("duplicate_fields", tx)
            else:
                tx.mail_from = _param(line, 9)
            cmd = _OTHER
        elif line[:7].lower() == b"rcpt to":
            tx.rcpt_to.append(_param(line, 7))
            cmd = _OTHER
        elif low4 == b"rset":
            cmd = _RSET
        elif low4 == b"quit":
            cmd = _QUIT
        else:
            cmd = _OTHER
        self.current = cmd
        self._queue(cmd, tx)

    def _queue(self, cmd: int, tx: SmtpTx | None) -> None:
        """A command waits for its reply. Suricata's command buffer holds at most 65,534
        (a uint16 count) and refuses more; so does this queue, so a reply stream that
        never comes costs bounded memory."""
        if len(self.cmds) < MAX_PENDING:
            self.cmds.append((cmd, tx))

    def _bdat_command(self, tx: SmtpTx, line: bytes) -> int:
        words = line.split()
        if len(words) < 2 or not words[1].isdigit() or len(words) > 3 or (
                len(words) == 3 and words[2].upper() != b"LAST"):
            self._event("invalid_bdat", tx)
            return _OTHER
        size = int(words[1])
        last = len(words) == 3
        tx.progress = REQ_DATA
        if tx.mime is None and tx.raw is None:
            tx.is_data = True
            self._start_message(tx)
        self.current = _BDAT_LAST if last else _BDAT
        if size > 0:
            self.bdat_left = size
        elif last:
            self._end_message(tx)
        return self.current

    def _start_message(self, tx: SmtpTx) -> None:
        # configure() never leaves both on (Suricata: decode-mime wins)
        if self.settings.get("decode-mime", True):
            tx.mime = MimeMessage(self.settings.get("mime"))
        elif self.settings.get("raw-extraction", False):
            tx.raw = File(b"rawmsg", bytearray(), 0, False, False)    # type: ignore[arg-type]

    def _mime_feed(self, tx: SmtpTx, data: bytes) -> None:
        """BDAT chunk bytes: cut into lines for the decoder (a line may span chunks)."""
        m = tx.mime
        pend = m.bdat_pending + data
        start = 0
        while True:
            lf = pend.find(b"\n", start)
            if lf < 0:
                break
            end = lf - 1 if lf > start and pend[lf - 1] == 0x0D else lf
            m.line(pend[start:end], pend[end:lf + 1])
            start = lf + 1
        m.bdat_pending = pend[start:]

    def _data_line(self, line: bytes, eol: bytes) -> None:
        tx = self.curr
        if tx is None:
            return
        tx.touch(True)
        if line == b".":
            self.data_mode = False
            self._queue(_DATA_END, tx)
            self._end_message(tx)
            return
        # a dot-stuffed line (RFC 5321 4.5.2) goes on as sent: Suricata's SMTP parser does not
        # undo the stuffing, so its body md5, files and buffers keep the doubled dot
        if tx.raw is not None:
            self._raw_append(tx.raw, line + eol)
        elif tx.mime is not None:
            tx.mime.line(line, eol)

    def _raw_append(self, f: File, data: bytes) -> None:
        f.data.extend(data)                       # type: ignore[attr-defined]
        f.size += len(data)

    def _end_message(self, tx: SmtpTx) -> None:
        m = tx.mime
        if m is not None:
            if m.bdat_pending:
                m.line(m.bdat_pending, b"")
                m.bdat_pending = b""
            m.complete()
            for e in m.events:
                tx.add_event(e)
        if tx.raw is not None:
            tx.raw.complete = True
        tx.progress = REQ_COMPLETE
        tx.done[1] = True
        tx.touch(True)

    # --- the server ---------------------------------------------------------------------------
    def _reply(self, line: bytes) -> None:
        if not line:
            return
        if len(line) < 3 or not line[:3].isdigit():
            self._event("invalid_reply")
            return
        if len(line) >= 4 and line[3] == 0x2D:       # "250-": more lines follow
            self.multiline = True
        else:
            self.multiline = False
        code = line[:3]
        if not self.cmds:
            if not self.first_reply:
                if not self.multiline:
                    self.first_reply = True
                if code != b"220":
                    self._event("invalid_reply")
            return
        if self.multiline:
            if self.first_reply and code == b"250" and line[4:].strip().lower() == b"pipelining":
                self.pipelining = True
            return
        cmd, tx = self.cmds.popleft()
        if tx is not None:
            tx.touch(False)
        if cmd == _STARTTLS:
            if code == b"220":
                self.tls = True
                if tx is not None:
                    self._complete(tx)
            else:
                self._event("tls_rejected", tx)
        elif cmd == _DATA:
            if code == b"354":
                self.data_mode = True
                if tx is not None:
                    tx.progress_tc = RESP_DATA
            else:
                if self.pipelining:
                    self.data_mode = False
                self._event("data_command_rejected", tx)
                if tx is not None:
                    tx.is_data = False
        elif cmd == _BDAT:
            if tx is not None:
                tx.progress_tc = RESP_DATA
        elif cmd in (_DATA_END, _BDAT_LAST):
            if tx is not None:
                tx.done[0] = True
        elif cmd == _RSET:
            if code == b"250" and tx is not None:
                self._complete(tx)
        elif cmd == _QUIT:
            if code == b"221" and tx is not None:
                self._complete(tx)

    def _complete(self, tx: SmtpTx) -> None:
        if tx.mime is not None and not tx.mime.done:
            tx.mime.complete()
        tx.progress = REQ_COMPLETE
        tx.done[0] = tx.done[1] = True
        tx.touch(True)


def _param(line: bytes, skip: int) -> bytes:
    """The argument of HELO / MAIL FROM / RCPT TO: after the verb, spaces and ':' skipped,
    up to the first space (RFC 1870's SIZE= and other parameters are left out)."""
    i = skip
    n = len(line)
    while i < n and line[i] in b" :":
        i += 1
    j = line.find(b" ", i)
    return line[i:] if j < 0 else line[i:j]


# --- configuration ------------------------------------------------------------------------------
# `outputs.eve-log.smtp.custom` names (Suricata's email_fields: the logged key, the header),
# with how each is logged: "array" every header of the name, "comma" the first one split into
# addresses, else the first one as text; True: also logged by `extended`
EMAIL_FIELDS: dict[str, tuple[str, str, bool]] = {
    "reply_to": ("reply-to", "", False), "bcc": ("bcc", "comma", True),
    "message_id": ("message-id", "", True), "subject": ("subject", "", True),
    "x_mailer": ("x-mailer", "", True), "user_agent": ("user-agent", "", True),
    "received": ("received", "array", False), "x_originating_ip": ("x-originating-ip", "", False),
    "in_reply_to": ("in-reply-to", "", False), "references": ("references", "", False),
    "importance": ("importance", "", False), "priority": ("priority", "", False),
    "sensitivity": ("sensitivity", "", False), "organization": ("organization", "", False),
    "content_md5": ("content-md5", "", False), "date": ("date", "", False),
}
_MD5_FIELDS = ("body", "subject")


def _bool(v: Any, key: str) -> bool:
    if isinstance(v, bool):
        return v
    text = str(v).strip().lower()
    if text in ("yes", "true", "on", "1"):
        return True
    if text in ("no", "false", "off", "0"):
        return False
    raise ConfigError(f"expected yes/no, got {v!r}", key)


def _size_u32(v: Any, key: str) -> int:
    from netsentry.applayer.state import _size
    try:
        n = _size(v)
    except (TypeError, ValueError):
        raise ConfigError(f"expected a size (4096, 32kb, 1mb), got {v!r}", key) from None
    if not 0 <= n <= 0xFFFFFFFF:
        raise ConfigError(f"must be 0 .. 4GiB, got {v!r}", key)
    return n


def configure(config: Any) -> dict[str, Any]:
    """SMTP's settings from the configuration (Suricata's SMTPConfigure and the eve-log `smtp`
    options of OutputEmailInitConf): `app-layer.protocols.smtp.{raw-extraction, mime.*,
    inspected-tracker.*}` and `outputs.eve-log.smtp.{extended, custom, md5}`. Every parser
    of the run shares the returned dict (AppLayer.settings), so `body-md5: auto` is decided
    once the rules are known (`use_buffers`)."""
    base = "app-layer.protocols.smtp"
    smtp = get(config, base, None) or {}
    mime = smtp.get("mime") or {}
    k = f"{base}.mime"
    decode_mime = _bool(mime.get("decode-mime", True), f"{k}.decode-mime")
    raw = _bool(smtp.get("raw-extraction", False), f"{base}.raw-extraction")
    schemes = mime.get("extract-urls-schemes")
    if schemes is None:
        schemes = ["http"]
    if isinstance(schemes, str):
        schemes = [s.strip() for s in schemes.strip("[]").split(",") if s.strip()]
    if not isinstance(schemes, list) or not all(isinstance(s, str) and s for s in schemes):
        raise ConfigError(f"expected a list of URL schemes, got {schemes!r}", f"{k}.extract-urls-schemes")
    # Suricata adds '://' to a scheme that does not end in '/'
    schemes = [s if s.endswith("/") else s + "://" for s in schemes]
    md5 = mime.get("body-md5", "auto")
    if md5 is None or str(md5).strip().lower() == "auto":
        md5 = "auto"                                # on when a rule reads email.body_md5
    else:
        md5 = _bool(md5, f"{k}.body-md5")
    depth = mime.get("header-value-depth", 2000)
    if not isinstance(depth, int) or isinstance(depth, bool) or not 0 <= depth <= 0xFFFFFFFF:
        raise ConfigError(f"expected 0 .. 4294967295, got {depth!r}", f"{k}.header-value-depth")
    mime_settings = {
        "decode-base64": _bool(mime.get("decode-base64", True), f"{k}.decode-base64"),
        "decode-quoted-printable": _bool(mime.get("decode-quoted-printable", True), f"{k}.decode-quoted-printable"),
        "extract-urls": _bool(mime.get("extract-urls", True), f"{k}.extract-urls"),
        "extract-urls-schemes": tuple(schemes),
        "log-url-scheme": _bool(mime.get("log-url-scheme", False), f"{k}.log-url-scheme"),
        "body-md5": md5 if md5 != "auto" else False,
        # accepted as Suricata does; its MIME decoder reads no header-value-depth either
        "header-value-depth": depth,
    }
    tracker = smtp.get("inspected-tracker") or {}
    t = f"{base}.inspected-tracker"
    settings: dict[str, Any] = {
        "decode-mime": decode_mime,
        # Suricata: "decode-mime and raw-extraction can't be enabled at the same time"
        "raw-extraction": raw and not decode_mime,
        "mime": mime_settings,
        "body-md5-auto": md5 == "auto",
        "content-limit": _size_u32(tracker.get("content-limit", 100000), f"{t}.content-limit"),
        "content-inspect-min-size": _size_u32(tracker.get("content-inspect-min-size", INSPECT_MIN_SIZE),
                                              f"{t}.content-inspect-min-size"),
        "content-inspect-window": _size_u32(tracker.get("content-inspect-window", 4096),
                                            f"{t}.content-inspect-window"),
    }
    eve = get(config, "outputs.eve-log.smtp", None) or {}
    e = "outputs.eve-log.smtp"
    extended = _bool(eve.get("extended", False), f"{e}.extended")
    custom: list[str] = [name for name, (_, _, ext) in EMAIL_FIELDS.items() if extended and ext]
    for field in eve.get("custom") or ():
        name = str(field).strip()
        key = name.replace("-", "_").lower()
        if key not in EMAIL_FIELDS:
            continue            # Suricata skips a name it has no field for (its sample lists `relays`)
        if key not in custom:
            custom.append(key)
    order = list(EMAIL_FIELDS)
    settings["custom"] = tuple(sorted(custom, key=order.index))     # Suricata logs them in its table's order
    md5s = []
    for field in eve.get("md5") or ():
        if field in _MD5_FIELDS:            # Suricata: other names are not looked at
            md5s.append(field)
    settings["md5"] = tuple(md5s)
    return settings


def use_buffers(settings: dict[str, Any], names: Any) -> None:
    """The rules are known: `body-md5: auto` computes the body's md5 when a rule reads it."""
    if settings.get("body-md5-auto"):
        settings["mime"]["body-md5"] = any(n.partition(":")[0] == "email.body_md5" for n in names)


# --- buffers ------------------------------------------------------------------------------------
def _helo(tx: SmtpTx, ts: bool) -> bytes | None:
    return tx.conn.helo


def _email(name: bytes):
    def get(tx: SmtpTx, ts: bool) -> bytes | None:
        return tx.mime.header(name) if tx.mime is not None else None
    return get


def _email_multi(name: bytes, split: bool):
    def get(tx: SmtpTx, ts: bool) -> list[bytes] | None:
        m = tx.mime
        if m is None:
            return None
        if split:
            v = m.header(name)
            return split_addresses(v) if v is not None else None
        return m.header_all(name) or None
    return get


def _urls(tx: SmtpTx, ts: bool) -> list[bytes] | None:
    m = tx.mime
    return list(reversed(m.urls)) or None if m is not None else None


def _body_md5(tx: SmtpTx, ts: bool) -> bytes | None:
    m = tx.mime
    if m is None or not m.done or m.body_md5 is None:
        return None
    return m.body_md5.encode()


# Suricata's smtp content-inspect-min-size: an open file is inspected once this much of it
# is there, a smaller one when it is closed
INSPECT_MIN_SIZE = 32768


def _file_data(tx: SmtpTx, ts: bool) -> list[bytes] | None:
    least = tx.conn.settings.get("content-inspect-min-size", INSPECT_MIN_SIZE)
    return [bytes(f.data) for f in tx.files() if f.data and (f.complete or len(f.data) >= least)] or None


def smtp_files(tx: SmtpTx, to_server: bool) -> list[File]:
    """The attachments of a mail (client side only)."""
    return tx.files() if to_server else []


FILES["smtp"] = smtp_files

# Suricata's SMTP frames (app-layer-smtp.c smtp_frame_table), marked by SmtpParser._frames
register_stream_frames("smtp", ("command_line", "data", "response_line"))
register_buffer("smtp.helo", "smtp", TO_SERVER, _helo)
register_buffer("smtp.mail_from", "smtp", TO_SERVER, lambda tx, ts: tx.mail_from)
register_buffer("smtp.rcpt_to", "smtp", TO_SERVER, lambda tx, ts: tx.rcpt_to or None, multi=True)
for _name in ("from", "subject", "date", "message_id", "x_mailer"):
    register_buffer(f"email.{_name}", "smtp", TO_SERVER, _email(_name.replace("_", "-").encode()))
register_buffer("email.to", "smtp", TO_SERVER, _email_multi(b"to", True), multi=True)
register_buffer("email.cc", "smtp", TO_SERVER, _email_multi(b"cc", True), multi=True)
register_buffer("email.received", "smtp", TO_SERVER, _email_multi(b"received", False), multi=True)
register_buffer("email.url", "smtp", TO_SERVER, _urls, multi=True)
register_buffer("email.body_md5", "smtp", TO_SERVER, _body_md5)
# file.data of another protocol: the name@proto form rules/keywords/smtpftp.py selects
register_buffer("file.data@smtp", "smtp", TO_SERVER, _file_data, multi=True)
register_buffer("file.name@smtp", "smtp", TO_SERVER, lambda tx, ts: [f.name for f in tx.files()] or None, multi=True)

CHANGERS.add("smtp")            # STARTTLS: whatever the next bytes are may be read
# the progress states (Suricata's smtp_state_client_table / _server_table): the rule hooks
# `smtp:request_data`, `smtp:response_data`... of firewall rules and hook rules
register_states("smtp", ("request_started", "request_data", "request_complete"),
                ("response_started", "response_data", "response_complete"),
                lambda tx, to_server: tx.progress if to_server else (
                    RESP_COMPLETE if tx.done[0] else tx.progress_tc))
register_protocol(Protocol("smtp", (6,), probe, SmtpParser, (25, 465), port_decides=(6,), configure=configure,
                           rules_known=use_buffers))
