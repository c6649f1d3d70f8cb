"""FTP: the control connection (commands and replies) and its data connections (`ftp-data`).

As Suricata's FTP parser (app-layer-ftp.c, rust/src/ftp/), in what rules and EVE read:

- one transaction per command the parser knows (RFC 959 and its extensions: USER,
  PASS, PORT, EPRT, PASV, EPSV, RETR, STOR, ...); a line that is no known command
  makes none. Replies go to the oldest transaction without its final reply; a
  preliminary reply (1xx) keeps it open, any other closes it (`ftp.reply_received`).
  A reply with no command waiting (the 220 greeting) gets a transaction of its own.
- lines longer than `app-layer.protocols.ftp.max-line-length` (4 KiB) are cut
  (`request_command_too_long` / `response_command_too_long`);
- PORT/EPRT (active, the address the client sends) and the 227/229 replies to
  PASV/EPSV (passive) give the data connection's port (`ftp.dynamic_port`,
  `ftp.mode`); the next RETR/STOR/APPE/STOU/LIST/NLST/MLSD expects a connection to
  that port: when it comes it is `ftp-data` without probing, its bytes are the
  file (named by the command's argument), `ftp_data{filename, command}` in EVE.
- AUTH TLS answered 234: the rest is TLS, not parsed.

An expectation lives in this process (`EXPECTATIONS`): with workers sharding flows
the data connection may land in another worker, which then does not know it.
"""

from __future__ import annotations

import re
from typing import Any

from netsentry.applayer.files import FILES, File, files_eve
from netsentry.applayer.registry import (BOTH, TO_CLIENT, TO_SERVER, ParserError, Protocol, expect, register_buffer,
                                         register_protocol)
from netsentry.applayer.tx import Tx

MAX_LINE = 4096               # Suricata's ftp max-line-length default
MAX_TX = 1024                 # ... and max-tx
# The commands Suricata's FTP parser knows; a line starting with another word makes no tx
COMMANDS = frozenset(
    b"PORT EPRT PASV EPSV RETR STOR ABOR ACCT ALLO APPE CDUP CHMOD CWD DELE HELP IDLE LIST MAIL MDTM "
    b"MKD MLFL MLSD MODE MRCP MRSQ MSAM MSND MSOM NLST NOOP PASS PWD QUIT REIN REST RMD RNFR RNTO "
    b"SITE SIZE SMNT STAT STOU STRU SYST TYPE UMASK USER FEAT OPTS LANG MLST XCUP XMKD XPWD XRCP "
    b"XRMD XRSQ XSEM XSEN CCC CONF ENC MIC PBSZ PROT AUTH ADAT HOST EPRT".split())
_TRANSFER = frozenset((b"RETR", b"STOR", b"APPE", b"STOU", b"LIST", b"NLST", b"MLSD"))
_UPLOAD = frozenset((b"STOR", b"APPE", b"STOU"))
_WITH_FILE = frozenset((b"RETR", b"STOR", b"APPE", b"STOU"))
_MODE_CMDS = frozenset((b"PORT", b"EPRT", b"PASV", b"EPSV"))
_PASV = re.compile(rb"(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})")
_EPSV = re.compile(rb"\((.)\1\1(\d{1,5})\1\)")

# app-layer-event:ftp.NAME (rust/src/ftp/event.rs): each on the side that raised it
EVENTS: dict[str, int | None] = {"request_command_too_long": 0, "response_command_too_long": 1,
                                 "too_many_transactions": None, "file_before_port": 0,
                                 "file_without_name": 0}



def probe(data: bytes, to_server: bool) -> bool | None:
    """Suricata's FTP detection: USER/PORT/FEAT from the client, a `220 (` greeting
    anywhere; QUIT and a plain 220 greeting only on the FTP port (undecided here: the
    port decides)."""
    if to_server:
        if len(data) < 5:
            up = data.upper()
            return None if any(w.startswith(up) for w in (b"USER ", b"PORT ", b"FEAT", b"QUIT")) else False
        if data[:5] == b"USER " or data[:5].upper() == b"PORT " or data[:4].upper() == b"FEAT":
            return True
        return None if data[:4] == b"QUIT" else False
    if len(data) < 5:
        return None if b"220 (".startswith(data) or b"220-".startswith(data) else False
    if data[:5] == b"220 (":
        return True
    if data[:3] != b"220" or data[3] not in b" -":
        return False
    return None


class FtpTx(Tx):
    """One command and its replies."""

    __slots__ = ("command", "command_data", "request", "req_truncated", "replies", "reply_done",
                 "dyn_port", "active", "resp_truncated", "bounce_addr", "client_addr")
    proto = "ftp"

    def __init__(self, tx_id: int) -> None:
        super().__init__(tx_id)
        self.command: bytes | None = None       # None: a reply without a command (the greeting)
        self.command_data: bytes | None = None
        self.request = b""
        self.req_truncated = False
        self.replies: list[tuple[bytes, bytes]] = []   # (code, text)
        self.reply_done = False
        self.dyn_port = 0
        self.active: bool | None = None
        self.resp_truncated = False
        self.bounce_addr: bytes | None = None   # PORT's address, packed (ftpbounce)
        self.client_addr: bytes | None = None   # the control connection's client, packed

    def eve(self) -> dict[str, Any]:
        ftp: dict[str, Any] = {}
        if self.command is not None:
            ftp["command"] = self.command.decode("ascii", "replace")
            if self.command_data is not None:
                ftp["command_data"] = self.command_data.decode("utf-8", "replace")
                ftp["command_truncated"] = self.req_truncated
        codes = [c.decode() for c, _ in self.replies if c]
        if codes:
            ftp["completion_code"] = codes
        texts = [t.decode("utf-8", "replace") for _, t in self.replies if t]
        if texts:
            ftp["reply"] = texts
        if self.dyn_port:
            ftp["dynamic_port"] = self.dyn_port
        if self.command in _MODE_CMDS and self.active is not None:
            ftp["mode"] = "active" if self.active else "passive"
        ftp["reply_received"] = "yes" if self.reply_done else "no"
        ftp["reply_truncated"] = self.resp_truncated
        return ftp


class FtpParser:
    """One FTP control connection."""

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        settings = settings or {}
        self.max_line = int(settings.get("max-line-length", MAX_LINE))
        # app-layer.protocols.ftp.max-tx: transactions in flight at most (Suricata's
        # ftp_config_maxtx, default 1024)
        self.max_tx = int(settings.get("max-tx", MAX_TX))
        self.stopped = False
        # the oldest transaction Suricata still holds: one answered is freed once a packet
        # of each direction was inspected after it (AppLayerParserTransactionsCleanup);
        # `inspected` by the packet's to_server: the answered ones when the last packet of
        # that direction was done
        self.freed = 0
        self.inspected = [0, 0]
        # the packet being parsed, as (id, time) and its direction: no reference to it is
        # kept (a packet must never be in a reference cycle: decode/packet.py)
        self.last_pkt: tuple[int, Any] | None = None
        self.last_to_server = False
        self.txs: list[FtpTx] = []
        self.buf = [b"", b""]
        self.discard = [False, False]
        self.dyn_port = 0
        self.active = False
        self.tls = False
        self.reply_from = 0           # the oldest tx that may still get replies

    def parse(self, data: bytes, to_server: bool, pkt: Any = None) -> None:
        if self.tls or self.stopped:
            return
        key = (id(pkt), getattr(pkt, "ts", None))
        if key != self.last_pkt:
            last, self.last_pkt = self.last_pkt, key
            if last is not None:
                txs = self.txs
                i = self.freed
                while i < len(txs) and txs[i].reply_done:
                    i += 1
                self.inspected[self.last_to_server] = i
                self.freed = min(self.inspected)
            self.last_to_server = bool(getattr(pkt, "to_server", False))
        d = 1 if to_server else 0
        buf = self.buf[d] + data if self.buf[d] else data
        start = 0
        n = len(buf)
        while start < n and not self.tls:
            lf = buf.find(b"\n", start)
            if lf < 0:
                if n - start >= self.max_line and not self.discard[d]:
                    self._line(buf[start:start + self.max_line], to_server, True, pkt)
                    self.discard[d] = True
                    start = n
                break
            end = lf - 1 if lf > start and buf[lf - 1] == 0x0D else lf
            line = buf[start:end]
            start = lf + 1
            if self.discard[d]:
                self.discard[d] = False
                continue
            truncated = len(line) > self.max_line
            self._line(line[:self.max_line] if truncated else line, to_server, truncated, pkt)
        self.buf[d] = buf[start:] if start < n else b""

    def _line(self, line: bytes, to_server: bool, truncated: bool, pkt: Any) -> None:
        if to_server:
            self._request(line, truncated, pkt)
        else:
            self._reply(line, truncated, pkt)

    # --- the client ---------------------------------------------------------------------------
    def _request(self, line: bytes, truncated: bool, pkt: Any) -> None:
        word, sp, rest = line.partition(b" ")
        cmd = word.upper()
        if cmd not in COMMANDS:
            return
        self._room()
        tx = FtpTx(len(self.txs))
        tx.command = b"AUTH_TLS" if cmd == b"AUTH" and rest.strip().upper() in (b"TLS", b"SSL") else cmd
        tx.command_data = rest if sp else None
        tx.request = line
        tx.req_truncated = truncated
        tx.done[1] = True
        tx.touch(True)
        self.txs.append(tx)
        if truncated:
            tx.add_event("request_command_too_long")
        if cmd == b"PORT":
            port = _port_from_port(rest)
            if port:
                self.dyn_port, self.active = port, True
                tx.dyn_port, tx.active = port, True
                nums = rest.strip().split(b",")
                tx.bounce_addr = bytes(int(x) for x in nums[:4])     # _port_from_port checked them
                flow = getattr(pkt, "flow", None) if pkt is not None else None
                if flow is not None:
                    tx.client_addr = flow.client
        elif cmd == b"EPRT":
            port = _port_from_eprt(rest)
            if port:
                self.dyn_port, self.active = port, True
                tx.dyn_port, tx.active = port, True
        elif cmd in _TRANSFER:
            if cmd in _WITH_FILE and len(line) < 6 and cmd != b"STOU":
                tx.add_event("file_without_name")
            elif not self.dyn_port:
                tx.add_event("file_before_port")
            else:
                self._expect(cmd, rest if sp and rest else (b"<stou>" if cmd == b"STOU" else None), pkt)

    def _room(self) -> None:
        """Suricata's FTPTransactionCreate: with more than `max-tx` transactions since the
        oldest one still in flight, the oldest unanswered one is given up
        (too_many_transactions) and no new one is made: a parser error, after which the
        flow is not parsed any more."""
        txs = self.txs
        if len(txs) - self.freed <= self.max_tx:
            return
        i = self.freed
        while i < len(txs) and txs[i].reply_done:
            i += 1
        if i >= len(txs):
            return
        old = txs[i]
        old.reply_done = True
        old.done[0] = True
        old.add_event("too_many_transactions")
        old.touch(True)
        old.touch(False)
        self.stopped = True
        raise ParserError("ftp: too many transactions")

    def _expect(self, cmd: bytes, name: bytes | None, pkt: Any) -> None:
        """The data connection this transfer command announces: to the server's port
        (passive) or the client's (active), carrying the file from the client (uploads)
        or to it (downloads)."""
        flow = getattr(pkt, "flow", None) if pkt is not None else None
        if flow is not None:
            upload = cmd in _UPLOAD

            def init(parser: Any, flipped: bool) -> None:
                # registered as (FTP client, FTP server): a data flow the FTP server opened
                # (active mode) runs the other way, so the file's side in it flips
                parser.expect(cmd, name, upload != flipped)
            expect(flow.client, flow.server, self.dyn_port, "ftp-data", init)
        self.dyn_port = 0
        self.active = False

    # --- the server ---------------------------------------------------------------------------
    def _reply(self, line: bytes, truncated: bool, pkt: Any) -> None:
        txs = self.txs
        i = self.reply_from
        while i < len(txs) and txs[i].reply_done:
            i += 1
        self.reply_from = i
        if i < len(txs):
            tx = txs[i]
        else:
            tx = FtpTx(len(txs))              # a reply to no command: its own transaction
            tx.done[1] = True
            txs.append(tx)
        tx.touch(False)
        cmd = tx.command
        if cmd == b"AUTH_TLS" and line[:4] == b"234 ":
            self.tls = True
        elif cmd == b"PASV" and line[:4] == b"227 ":
            port = _port_from_pasv(line)
            if port:
                self.dyn_port, self.active = port, False
                tx.dyn_port, tx.active = port, False
        elif cmd == b"EPSV" and line[:4] == b"229 ":
            m = _EPSV.search(line)
            if m:
                port = int(m.group(2))
                if 0 < port < 65536:
                    self.dyn_port, self.active = port, False
                    tx.dyn_port, tx.active = port, False
        text = line.rstrip()
        if text:
            code, sp, rest = text.partition(b" ")
            if sp and len(code) == 3 and code.isdigit():
                tx.replies.append((code, rest))
            else:
                tx.replies.append((b"", text))
        if truncated:
            tx.resp_truncated = True
            tx.add_event("response_command_too_long")
        if len(line) >= 4 and line[0] == 0x31 and line[1:3].isdigit() and line[3:4].isspace():
            return                             # a preliminary reply (1xx): more follows
        tx.reply_done = True
        tx.done[0] = True


def _port_from_port(arg: bytes) -> int:
    """PORT h1,h2,h3,h4,p1,p2 -> p1*256+p2 (0 when malformed)."""
    parts = arg.strip().split(b",")
    if len(parts) != 6:
        return 0
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        return 0
    if any(not 0 <= x <= 255 for x in nums):
        return 0
    return nums[4] * 256 + nums[5]


def _port_from_eprt(arg: bytes) -> int:
    """EPRT |proto|addr|port| (RFC 2428)."""
    arg = arg.strip()
    if len(arg) < 2:
        return 0
    fields = arg.split(arg[:1])
    if len(fields) < 5 or not fields[3].isdigit():
        return 0
    port = int(fields[3])
    return port if 0 < port < 65536 else 0


def _port_from_pasv(line: bytes) -> int:
    m = _PASV.search(line)
    if m is None:
        return 0
    p1, p2 = int(m.group(5)), int(m.group(6))
    return p1 * 256 + p2 if p1 <= 255 and p2 <= 255 else 0


# --- ftp-data -----------------------------------------------------------------------------------
class FtpDataTx(Tx):
    """The one transfer of a data connection: a file."""

    __slots__ = ("command", "filename", "file", "file_to_server")
    proto = "ftp-data"

    def __init__(self, command: bytes, filename: bytes | None, to_server: bool) -> None:
        super().__init__(0)
        self.command = command
        self.filename = filename
        self.file_to_server = to_server
        self.file = File(filename or b"", bytearray(), 0, False, False)   # type: ignore[arg-type]

    def eve_objects(self) -> dict[str, Any]:
        return {"ftp_data": self.eve()}

    def alert_objects(self) -> dict[str, Any]:
        return {"ftp_data": self.eve(), "files": files_eve([self.file], self.tx_id)}

    def eve(self) -> dict[str, Any]:
        rec: dict[str, Any] = {}
        if self.filename is not None:
            rec["filename"] = self.filename.decode("utf-8", "replace")
        rec["command"] = self.command.decode("ascii", "replace")
        return rec


class FtpDataParser:
    """A data connection an FTP command announced (`expect`): every byte is the file."""

    file_limit = 100 * 1024 * 1024

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        self.txs: list[FtpDataTx] = []

    def expect(self, command: bytes, filename: bytes | None, to_server: bool) -> None:
        self.txs.append(FtpDataTx(command, filename, to_server))

    def parse(self, data: bytes, to_server: bool, pkt: Any = None) -> None:
        if not self.txs:
            return
        tx = self.txs[0]
        if to_server != tx.file_to_server or tx.file.complete:
            return
        tx.file.append(data, self.file_limit)
        # the one transaction is the flow's: rules of either side (ftpdata_command is
        # inspected to the client even when the file goes to the server) see it move
        tx.touch(True)
        tx.touch(False)

    def eof(self, to_server: bool) -> None:
        if not self.txs:
            return
        tx = self.txs[0]
        if not tx.file.complete:
            tx.file.complete = True
            tx.done[0] = tx.done[1] = True
            tx.touch(tx.file_to_server)


def _ftp_files(tx: Any, to_server: bool) -> list[File]:
    if tx.proto == "ftp-data":
        return [tx.file] if to_server == tx.file_to_server else []
    return []


FILES["ftp-data"] = _ftp_files


def _command(tx: FtpTx, ts: bool) -> bytes | None:
    return tx.command


register_buffer("ftp.command", "ftp", TO_SERVER, _command)
register_buffer("ftp.command_data", "ftp", TO_SERVER, lambda tx, ts: tx.command_data)
register_buffer("ftp.completion_code", "ftp", TO_CLIENT, lambda tx, ts: [c for c, _ in tx.replies if c] or None,
                multi=True)
register_buffer("ftp.reply", "ftp", TO_CLIENT, lambda tx, ts: [t for _, t in tx.replies if t] or None, multi=True)
register_buffer("file.data@ftp-data", "ftp-data", BOTH, lambda tx, ts: bytes(tx.file.data) if (
    ts == tx.file_to_server and tx.file.data) else None)

register_buffer("file.name@ftp-data", "ftp-data", BOTH, lambda tx, ts: [tx.file.name] if (
    ts == tx.file_to_server and tx.filename) else None, multi=True)


def _no_probe(data: bytes, to_server: bool) -> bool | None:
    return False            # ftp-data is never probed: only an expectation makes it


def configure(config: Any) -> dict[str, Any]:
    """`app-layer.protocols.ftp`: max-tx (transactions in flight) and max-line-length
    (a size: 4kb)."""
    from netsentry.config import ConfigError, get
    from netsentry.stream.settings import parse_size
    out: dict[str, Any] = {}
    key = "app-layer.protocols.ftp.max-tx"
    v = get(config, key, None)
    if v is not None:
        try:
            out["max-tx"] = int(str(v).strip())
        except ValueError:
            raise ConfigError(f"expected a number of transactions, got {v!r}", key) from None
    v = get(config, "app-layer.protocols.ftp.max-line-length", None)
    if v is not None:
        out["max-line-length"] = parse_size(v, "app-layer.protocols.ftp.max-line-length")
    return out


register_protocol(Protocol("ftp", (6,), probe, FtpParser, (21,), port_decides=(6,), configure=configure))
register_protocol(Protocol("ftp-data", (6,), _no_probe, FtpDataParser))
