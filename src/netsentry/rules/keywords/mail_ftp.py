"""SMTP and FTP keywords (Suricata's detect-smtp.c, detect-email.c, detect-ftp-*.c,
detect-ftpbounce.c, detect-ftpdata.c).

The sticky buffers (`smtp.helo`, `email.subject`, `ftp.command`, `ftp.reply`, ...) are
registered by applayer/smtp.py and applayer/ftp.py; the names rules/keywords/applayer.py
does not list already are made sticky keywords here. The rest are transaction checks:

- `ftp.mode:active|passive`: the transaction's PORT/EPRT (active) or PASV/EPSV reply
  (passive) set the data connection's mode;
- `ftp.reply_received:yes|no` (also on/off, true/false, 1/0);
- `ftp.dynamic_port:[op]N|A-B`: the port of the data connection the transaction set;
- `ftpbounce`: a PORT command whose address is not the client's own (an FTP bounce);
- `ftpdata_command:stor|appe|stou|retr|nlst|list|mlsd`: the command an `ftp-data` flow carries the file of.

`app-layer-event:smtp.*` / `ftp.*` take the parsers' event names.
"""

from __future__ import annotations

from typing import Any

from netsentry.applayer import ftp, smtp
from netsentry.applayer.registry import BOTH, BUFFERS
from netsentry.rules.errors import RuleError
from netsentry.rules.keywords.applayer import APP_LAYER_EVENTS, _sticky, tx_check
from netsentry.rules.numeric import parse_uint
from netsentry.rules.registry import KEYWORDS, RuleBuilder, keyword, unquote

APP_LAYER_EVENTS["smtp"] = dict(smtp.EVENTS)
APP_LAYER_EVENTS["ftp"] = dict(ftp.EVENTS)

for _name in ("email.date", "email.message_id", "email.x_mailer", "email.url", "email.received",
              "email.body_md5", "ftp.completion_code", "ftp.reply"):
    if _name not in KEYWORDS and _name in BUFFERS:
        keyword(_name, value="optional", help=f"{_name}; sticky buffer ({BUFFERS[_name].proto})")(_sticky(_name))


@keyword("ftp.mode", help="ftp.mode:active|passive; the data connection mode the FTP command set")
def ftp_mode(b: RuleBuilder, arg: str | None) -> None:
    text = unquote(arg, "ftp.mode").strip().lower()
    if text not in ("active", "passive"):
        raise RuleError(f"ftp.mode: expected 'active' or 'passive', got '{text}'")
    want = text == "active"
    # Suricata inspects it in both directions once the command got its reply
    tx_check(b, "ftp", BOTH, lambda tx, ts: tx.reply_done and tx.active is not None and tx.active == want)


_YES = {"yes": True, "on": True, "true": True, "1": True, "no": False, "off": False, "false": False, "0": False}


@keyword("ftp.reply_received", help="ftp.reply_received:yes|no; whether the FTP command got its final reply")
def ftp_reply_received(b: RuleBuilder, arg: str | None) -> None:
    text = unquote(arg, "ftp.reply_received").strip().lower()
    if text not in _YES:
        raise RuleError(f"ftp.reply_received: expected yes or no, got '{text}'")
    want = _YES[text]
    # inspected on the server's side (Suricata registers it to the client only)
    tx_check(b, "ftp", 1, lambda tx, ts: tx.command is not None and tx.reply_done == want)


@keyword("ftp.dynamic_port", help="ftp.dynamic_port:[op]N|A-B; the data connection port the FTP command set")
def ftp_dynamic_port(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint(unquote(arg, "ftp.dynamic_port").replace(" ", ""), "ftp.dynamic_port", 16)
    tx_check(b, "ftp", BOTH, lambda tx, ts: tx.reply_done and bool(tx.dyn_port) and pred(tx.dyn_port))


@keyword("ftpbounce", value="none", help="ftpbounce; a PORT command naming an address other than the client's")
def ftpbounce(b: RuleBuilder, arg: str | None) -> None:
    def check(tx: Any, ts: bool) -> bool:
        addr = tx.bounce_addr
        client = tx.client_addr
        return addr is not None and client is not None and addr != client
    tx_check(b, "ftp", 0, check)


_FTPDATA_COMMANDS = ("stor", "appe", "stou", "retr", "nlst", "list", "mlsd")    # detect-ftpdata.c


@keyword("ftpdata_command", help="ftpdata_command:stor|appe|stou|retr|nlst|list|mlsd; the FTP command "
         "an ftp-data flow carries")
def ftpdata_command(b: RuleBuilder, arg: str | None) -> None:
    text = unquote(arg, "ftpdata_command").strip().lower()
    if text not in _FTPDATA_COMMANDS:
        raise RuleError(f"ftpdata_command: expected one of {', '.join(_FTPDATA_COMMANDS)}, got '{text}'")
    want = text.upper().encode()
    # Suricata inspects it on the to-client side of the data flow, whichever way the file goes
    tx_check(b, "ftp-data", 1, lambda tx, ts: tx.command == want)
