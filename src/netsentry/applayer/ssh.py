"""SSH: the version exchange and the clear-text key exchange, as Suricata's SSH parser
(rust/src/ssh/) reads them: `ssh.proto`, `ssh.software`, hassh, the EVE `ssh` object.

Each side opens with its identification line, ``SSH-protoversion-softwareversion
comments`` (RFC 4253 4.2); then binary packets (4-byte length, padding length,
message code) in the clear until that side's NEWKEYS, encrypted after it.

- One transaction per flow, with a header per side: protocol and software version from
  the banner, and, when hassh is on, the hassh string and its MD5 from that side's
  KEXINIT (RFC 4253 7.1: key exchange, encryption, MAC and compression algorithms of
  its own direction).
- A side's progress (`app-layer-state`: ``request_*``/``response_*``): in progress,
  banner done once its line is in, finished at its NEWKEYS. As Suricata, a side reports
  "finished" only once both sides are, and a banner longer than 256 bytes without its
  line end (``long_banner``) never reports "banner done".
- Events (`app-layer-event:ssh.*`): ``invalid_banner`` (not ``SSH-x-y``: the side is
  given up, the error policy applies), ``long_banner`` (256 bytes or more),
  ``invalid_record`` (a packet length below 2), ``long_kex_record`` (a KEXINIT of
  64 KiB or more, not kept for hassh).
- hassh (``app-layer.protocols.ssh.hassh``, off by default) is also turned on by a rule
  that reads an `ssh.hassh*` buffer, as Suricata's keyword setup turns it on; with it
  the record is logged once both sides finished, else once both banners are in.
- After a side's NEWKEYS its bytes are encrypted and not parsed (Suricata's
  ``encryption-handling`` beyond that, turning payload inspection off, is not built).
"""

from __future__ import annotations

import hashlib
from typing import Any

from netsentry.applayer.registry import (BOTH, TO_CLIENT, TO_SERVER, Encrypted, ParserError, Protocol, encryption_handling,
                                         register_buffer,
                                         register_protocol, register_states)
from netsentry.applayer.tx import Tx
from netsentry.config import get

_BANNER = b"SSH-"
MAX_BANNER = 256                # Suricata's SSH_MAX_BANNER_LEN
MAX_KEX_RECORD = 65535          # a KEXINIT kept whole for hassh up to this size
_HEADER = 6                     # packet length (4), padding length (1), message code (1)
_KEXINIT, _NEWKEYS = 20, 21

# a side's state (Suricata's SSHConnectionState)
IN_PROGRESS, BANNER_WAIT_EOL, BANNER_DONE, FINISHED = 0, 1, 2, 3

# One transaction per flow: an event is the flow's, seen by rules of either side
EVENTS: dict[str, int | None] = {name: BOTH for name in (
    "invalid_banner", "long_banner", "invalid_record", "long_kex_record")}

# the buffers that need the key exchange parsed (Suricata: their keywords enable hassh)
HASSH_BUFFERS = frozenset({"ssh.hassh", "ssh.hassh.string", "ssh.hassh.server", "ssh.hassh.server.string"})
# Suricata's SSH frames (`frame:ssh.record.pdu` etc.): each clear-text packet whole, its
# 6-byte header, and its data (payload and padding after the header)
FRAME_BUFFERS = frozenset({"frame:ssh.record.pdu", "frame:ssh.record.hdr", "frame:ssh.record.data"})


def probe(data: bytes, to_server: bool) -> bool | None:
    """Either side opens with its identification string, "SSH-protoversion-software"
    (RFC 4253 4.2; Suricata's SSH pattern)."""
    if len(data) < len(_BANNER):
        return None if _BANNER.startswith(data) else False
    return data.startswith(_BANNER)


class SshSide:
    """What one side said in the clear."""

    __slots__ = ("state", "protover", "swver", "hassh", "hassh_string")

    def __init__(self) -> None:
        self.state = IN_PROGRESS
        self.protover = b""
        self.swver = b""
        self.hassh = b""
        self.hassh_string = b""

    def eve(self) -> dict[str, Any]:
        out: dict[str, Any] = {"proto_version": _text(self.protover)}
        if self.swver:
            out["software_version"] = _text(self.swver)
        if self.hassh or self.hassh_string:
            hassh: dict[str, str] = {}
            if self.hassh:
                hassh["hash"] = self.hassh.decode("ascii")
            if self.hassh_string:
                hassh["string"] = _text(self.hassh_string, None)
            out["hassh"] = hassh
        return out


def _text(b: bytes, limit: int | None = MAX_BANNER) -> str:
    """As Suricata's JSON builder writes banner bytes: cut at `limit` with a note of what
    was cut; valid UTF-8 as it is, else each byte above 127 as ``\\xNN``."""
    if limit is not None and len(b) > limit:
        more = len(b) - limit
        b = b[:limit] + f"[truncated {more} additional byte{'s' if more != 1 else ''}]".encode()
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(chr(c) if c < 128 else f"\\x{c:02x}" for c in b)


class SshTx(Tx):
    """The flow's one transaction: the client's side and the server's."""

    __slots__ = ("sides", "hassh_on", "frames")
    proto = "ssh"

    def __init__(self, hassh_on: bool) -> None:
        super().__init__(0)
        self.sides = (SshSide(), SshSide())     # by to_server index: [0] server, [1] client
        self.hassh_on = hassh_on
        self.frames: tuple[list[bytes], list[bytes]] = ([], [])   # clear-text packets, when read

    def progress(self, to_server: bool) -> int:
        """Suricata's SCSshTxGetAlStateProgress: finished only when both sides are."""
        srv, cli = self.sides
        if cli.state >= FINISHED and srv.state >= FINISHED:
            return FINISHED
        return BANNER_DONE if self.sides[to_server].state >= BANNER_DONE else IN_PROGRESS

    def complete(self) -> bool:
        """Ready to log (Suricata's SCSshTxGetLogCondition): both sides finished when hassh
        is on (the KEXINITs are in), else both banners done."""
        srv, cli = self.sides
        want = FINISHED if self.hassh_on else BANNER_DONE
        return cli.state == want and srv.state == want

    def eve(self) -> dict[str, Any]:
        srv, cli = self.sides
        out: dict[str, Any] = {}
        if cli.protover:
            out["client"] = cli.eve()
        if srv.protover:
            out["server"] = srv.eve()
        return out

    def eve_objects(self) -> dict[str, Any]:
        """No record for a flow where neither side's banner came (Suricata's log_ssh)."""
        rec = self.eve()
        return {"ssh": rec} if rec else {}

    def alert_objects(self) -> dict[str, Any]:
        return self.eve_objects()


class SshParser:
    """One SSH connection: each side's banner, then its clear-text packets up to NEWKEYS."""

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        settings = settings or {}
        self.hassh = bool(settings.get("hassh", False))
        self.frames = bool(settings.get("frames", False))     # a rule reads frame:ssh.record.*
        # app-layer.protocols.ssh.encryption-handling (registry.Encrypted): 0 full (or no
        # settings), 1 track-only, 2 bypass; -1 once said
        self.on_encrypted = _HANDLING.get(settings.get("encryption-handling", "full"), 0)
        self.tx = SshTx(self.hassh)
        self.txs: list[SshTx] = [self.tx]
        self.buf = [b"", b""]           # by to_server index: an incomplete line or packet
        self.skip = [0, 0]              # bytes of the current packet still to pass over
        self.records = [False, False]   # past the banner line (a long banner's state stays WAIT_EOL)
        self.lost = [False, False]      # given up (invalid banner or record)

    def parse(self, data: bytes, to_server: bool, pkt: Any = None) -> None:
        d = 1 if to_server else 0
        side = self.tx.sides[d]
        if self.lost[d] or not data or (side.state == FINISHED and not self.buf[d] and not self.skip[d]):
            return                      # past NEWKEYS (and the rest of its packet): encrypted
        before = (side.state, side.hassh, len(self.tx.frames[d]))
        buf = self.buf[d] + data if self.buf[d] else data
        self.buf[d] = b""
        try:
            if not self.records[d]:
                buf = self._banner(d, side, buf)
            if buf:
                self._records(d, side, buf)
        finally:
            tx = self.tx
            if side.state == FINISHED and tx.progress(to_server) == FINISHED:
                tx.done[0] = tx.done[1] = True
            # a moved state or a new hassh changes buffers; other bytes only move the tx on
            tx.touch(to_server, None if (side.state, side.hassh, len(tx.frames[d])) != before else _NO_BUFFERS)
        if self.on_encrypted > 0 and self.tx.progress(to_server) == FINISHED:
            # both sides past NEWKEYS: the session is encrypted (Suricata's SshStateFinished)
            bypass = self.on_encrypted == 2
            self.on_encrypted = -1
            raise Encrypted(bypass)

    def _fail(self, d: int, event: str) -> None:
        self.tx.add_event(event)
        self.lost[d] = True
        self.buf[d] = b""
        raise ParserError(f"ssh: {event}")

    # --- the identification line ----------------------------------------------------------------
    def _banner(self, d: int, side: SshSide, buf: bytes) -> bytes:
        """Consume the banner line; what follows it (packets), or b"" while it is incomplete."""
        end, nxt = _line_end(buf)
        if side.state == BANNER_WAIT_EOL:
            # the rest of a long banner: skipped up to its line end
            if end < 0:
                return b""
            self.records[d] = True
            return buf[nxt:]
        if end < 0:
            if len(buf) < MAX_BANNER:
                self.buf[d] = buf       # wait for the line end
                return b""
            if not _set_banner(side, buf):
                self._fail(d, "invalid_banner")
            side.state = BANNER_WAIT_EOL
            self.tx.add_event("long_banner")
            return b""
        line = buf[:end]
        if not _set_banner(side, line):
            self._fail(d, "invalid_banner")
        side.state = BANNER_DONE
        if len(line) >= MAX_BANNER:
            self.tx.add_event("long_banner")
        self.records[d] = True
        return buf[nxt:]

    # --- binary packets -------------------------------------------------------------------------
    def _records(self, d: int, side: SshSide, buf: bytes) -> None:
        """Clear-text packets up to this side's NEWKEYS. A packet someone reads whole (a
        KEXINIT for hassh, any packet for the frames) is gathered up to 64 KiB; of the
        others only the header is read and the rest passed over."""
        skip = self.skip[d]
        if skip:
            if skip >= len(buf):
                self.skip[d] = skip - len(buf)
                return
            self.skip[d] = 0
            buf = buf[skip:]
            if side.state == FINISHED:
                return                      # that was NEWKEYS' packet: encrypted from here
        off, n = 0, len(buf)
        while off < n:
            if n - off >= 4 and int.from_bytes(buf[off:off + 4], "big") <= 1:
                self._fail(d, "invalid_record")
            if n - off < _HEADER:
                self.buf[d] = buf[off:]
                return
            length = int.from_bytes(buf[off:off + 4], "big")
            code = buf[off + 5]
            end = off + 4 + length
            if code == _NEWKEYS:
                side.state = FINISHED
            whole = self.frames or (code == _KEXINIT and self.hassh)
            if end > n:                     # the packet goes on in later bytes
                if whole and length - 2 < MAX_KEX_RECORD:
                    self.buf[d] = buf[off:]
                    return
                if code == _KEXINIT and self.hassh:
                    self.tx.add_event("long_kex_record")
                self.skip[d] = end - n
                return
            if whole:
                self._packet(d, side, code, buf[off:end])
            off = end
            if side.state == FINISHED:
                return                      # what follows is encrypted

    def _packet(self, d: int, side: SshSide, code: int, pdu: bytes) -> None:
        if code == _KEXINIT and self.hassh:
            self._kexinit(d, side, pdu[_HEADER:])
        if self.frames:
            self.tx.frames[d].append(pdu)

    def _kexinit(self, d: int, side: SshSide, body: bytes) -> None:
        """hassh (Salesforce's): MD5 of "kex;enc;mac;comp", the algorithms of this side's
        own direction from its KEXINIT."""
        lists = _name_lists(body)
        if lists is None:
            return
        kex, _hostkey, enc_cs, enc_sc, mac_cs, mac_sc, comp_cs, comp_sc = lists[:8]
        own = (enc_cs, mac_cs, comp_cs) if d else (enc_sc, mac_sc, comp_sc)
        side.hassh_string = b";".join((kex,) + own)
        side.hassh = hashlib.md5(side.hassh_string).hexdigest().encode()  # noqa: S324 - hassh is MD5


_NO_BUFFERS: frozenset[str] = frozenset()


def _line_end(buf: bytes) -> tuple[int, int]:
    """(end of the line, start of what follows) or (-1, -1): a line ends at LF, CRLF, or a
    CR that is not the last byte (Suricata's ssh_parse_line)."""
    lf = buf.find(b"\n")
    cr = buf.find(b"\r")
    if cr >= 0 and (lf < 0 or cr < lf):
        if cr + 1 >= len(buf):
            return -1, -1           # a CR at the end: maybe CRLF
        return cr, cr + 2 if buf[cr + 1] == 0x0A else cr + 1
    return (lf, lf + 1) if lf >= 0 else (-1, -1)


def _set_banner(side: SshSide, line: bytes) -> bool:
    """``SSH-protoversion-softwareversion[ comments]``: protoversion is not empty and
    ends at a dash; the software version ends at a space."""
    if not line.startswith(_BANNER):
        return False
    dash = line.find(b"-", 4)
    if dash <= 4:
        return False
    side.protover = line[4:dash]
    rest = line[dash + 1:]
    end = min((i for i in (rest.find(b" "), rest.find(b"\r"), rest.find(b"\n")) if i >= 0), default=-1)
    # nothing before the first space: Suricata keeps the whole rest
    side.swver = rest[:end] if end > 0 else rest
    return True


def _name_lists(body: bytes) -> list[bytes] | None:
    """A KEXINIT's ten name-lists after its 16-byte cookie (RFC 4253 7.1), or None when
    it is cut short."""
    off = 16
    out = []
    for _ in range(10):
        if off + 4 > len(body):
            return None
        ln = int.from_bytes(body[off:off + 4], "big")
        off += 4
        if off + ln > len(body):
            return None
        out.append(body[off:off + ln])
        off += ln
    if off + 5 > len(body):             # first_kex_packet_follows, reserved
        return None
    return out


_HANDLING = {"full": 0, "track-only": 1, "bypass": 2}


def configure(config: Any) -> dict[str, Any]:
    """`app-layer.protocols.ssh.hassh` (default off) and `encryption-handling`
    (registry.encryption_handling)."""
    value = get(config, "app-layer.protocols.ssh.hassh", False)
    on = value is True or str(value).lower() in ("yes", "true", "on", "1")
    return {"hassh-config": on, "hassh": on, "frames": False,
            "encryption-handling": encryption_handling(config, "ssh")}


def rules_known(settings: dict[str, Any], names: frozenset[str]) -> None:
    """A rule reading a hassh buffer turns hassh on (Suricata's SCSshEnableHassh); frames
    are kept only for rules that read them. Settled again on each reload."""
    settings["hassh"] = settings["hassh-config"] or bool(names & HASSH_BUFFERS)
    settings["frames"] = bool(names & FRAME_BUFFERS)


# --- buffers: the side the rule inspects is the side that said it ----------------------------

def _field(attr: str, need: int = BANNER_DONE):
    def get_(tx: SshTx, to_server: bool) -> bytes | None:
        if tx.progress(to_server) < need:
            return None
        return getattr(tx.sides[to_server], attr) or None
    return get_


register_buffer("ssh.proto", "ssh", BOTH, _field("protover"), "ssh_proto")
register_buffer("ssh.software", "ssh", BOTH, _field("swver"), "ssh_software")
register_buffer("ssh.hassh", "ssh", TO_SERVER, _field("hassh"))
register_buffer("ssh.hassh.string", "ssh", TO_SERVER, _field("hassh_string"))
register_buffer("ssh.hassh.server", "ssh", TO_CLIENT, _field("hassh"))
register_buffer("ssh.hassh.server.string", "ssh", TO_CLIENT, _field("hassh_string"))

register_buffer("frame:ssh.record.pdu", "ssh", BOTH, lambda tx, ts: tx.frames[ts] or None, multi=True)
register_buffer("frame:ssh.record.hdr", "ssh", BOTH, lambda tx, ts: [p[:_HEADER] for p in tx.frames[ts]] or None,
                multi=True)
register_buffer("frame:ssh.record.data", "ssh", BOTH, lambda tx, ts: [p[_HEADER:] for p in tx.frames[ts]] or None,
                multi=True)

register_protocol(Protocol("ssh", (6,), probe, SshParser, (22,), configure=configure,
                           rules_known=rules_known))
register_states("ssh", ("request_in_progress", "request_banner_wait_eol", "request_banner_done", "request_finished"),
                ("response_in_progress", "response_banner_wait_eol", "response_banner_done",
                 "response_finished"),
                lambda tx, to_server: tx.progress(to_server))
