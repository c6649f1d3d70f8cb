"""SMTP and FTP over crafted sessions: parsers, keywords, EVE (applayer/smtp.py, ftp.py, mime.py)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from applayer_helpers import CLIENT, SERVER, T0, alerts, replay, tcp_session
from scapy.utils import rdpcap, wrpcap

from netsentry.applayer import ftp, smtp
from netsentry.applayer.mime import MimeMessage, header_token, split_addresses
from netsentry.config import load_config
from netsentry.rules.loader import load_rules

TYPES = "outputs.eve-log.types=[alert, flow, smtp, ftp, ftp_data]"
ATTACHMENT = b"MZ\x90\x00 pretend executable " * 40 + b"EVIL-MARKER-IN-THE-FILE"

MESSAGE = (
    b"From: \"Doe, Jane\" <jane@example.org>\r\n"
    b"To: \"Smith, Bob\" <bob@example.net>, carol@example.net\r\n"
    b"Cc: dave@example.net\r\n"
    b"Subject: quarterly\r\n"
    b" report\r\n"
    b"Date: Fri, 21 Apr 2023 05:10:36 +0000\r\n"
    b"Message-ID: <abc123@example.org>\r\n"
    b"X-Mailer: CraftMailer 1.0\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n"
    b"\r\n"
    b"preamble\r\n"
    b"--XYZ\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"see http://evil.example.com/payload.bin now\r\n"
    b"..a line that started with a dot\r\n"
    b"--XYZ\r\n"
    b"Content-Type: application/octet-stream; name=\"report.exe\"\r\n"
    b"Content-Disposition: attachment; filename=\"report.exe\"\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    + b"\r\n".join(base64.encodebytes(ATTACHMENT).splitlines()) + b"\r\n"
    b"--XYZ--\r\n"
    b".\r\n")

SMTP_SESSION = [
    (False, b"220 mx.example.net ESMTP\r\n"),
    (True, b"EHLO client.example.org\r\n"),
    (False, b"250-mx.example.net\r\n250-PIPELINING\r\n250 8BITMIME\r\n"),
    (True, b"MAIL FROM:<jane@example.org> SIZE=1000\r\n"),
    (False, b"250 OK\r\n"),
    (True, b"RCPT TO:<bob@example.net>\r\n"),
    (False, b"250 OK\r\n"),
    (True, b"RCPT TO:<carol@example.net>\r\n"),
    (False, b"250 OK\r\n"),
    (True, b"DATA\r\n"),
    (False, b"354 go ahead\r\n"),
    (True, MESSAGE),
    (False, b"250 queued\r\n"),
    (True, b"QUIT\r\n"),
    (False, b"221 bye\r\n"),
]


def _smtp(tmp_path: Path, rules: str, session=SMTP_SESSION, **kw) -> list[dict]:
    pcap = tcp_session(tmp_path / "smtp.pcap", session, sport=40025, dport=kw.pop("dport", 25),
                       segment=kw.pop("segment", 0))
    return replay(tmp_path, pcap, rules, TYPES, *kw.pop("overrides", ()))


def test_smtp_envelope_message_and_attachment_keywords(tmp_path: Path):
    """One mail: the envelope buffers, the message's headers, the decoded attachment as a file
    (file.data, filename, filemd5 is the decoded bytes'), the text part's URL without its scheme."""
    rules = "\n".join([
        'alert smtp any any -> any any (msg:"helo"; smtp.helo; content:"client.example.org"; bsize:18; sid:1;)',
        'alert smtp any any -> any any (msg:"from"; smtp.mail_from; content:"<jane@example.org>"; bsize:18; sid:2;)',
        'alert smtp any any -> any any (msg:"rcpt"; smtp.rcpt_to; content:"<carol@example.net>"; bsize:19; sid:3;)',
        'alert smtp any any -> any any (msg:"subject"; email.subject; content:"quarterly report"; bsize:16; sid:4;)',
        'alert smtp any any -> any any (msg:"to"; email.to; content:"carol@example.net"; bsize:17; sid:5;)',
        'alert smtp any any -> any any (msg:"url"; email.url; content:"evil.example.com/payload.bin"; bsize:28; sid:6;)',
        'alert smtp any any -> any any (msg:"file"; file.data; content:"EVIL-MARKER-IN-THE-FILE"; sid:7;)',
        'alert smtp any any -> any any (msg:"name"; filename:"report.exe"; sid:8;)',
        'alert smtp any any -> any any (msg:"xmailer"; email.x_mailer; content:"CraftMailer"; sid:9;)',
        'alert smtp any any -> any any (msg:"msgid"; email.message_id; content:"<abc123@example.org>"; sid:10;)',
        'alert smtp any any -> any any (msg:"date"; email.date; content:"21 Apr 2023"; sid:11;)',
        'alert smtp any any -> any any (msg:"cc"; email.cc; content:"dave@"; sid:12;)',
        'alert smtp any any -> any any (msg:"from hdr"; email.from; content:"\\"Doe, Jane\\""; startswith; sid:13;)',
        # raw base64 is not in file.data; the text part is not a file
        'alert smtp any any -> any any (msg:"no raw"; file.data; content:"TVqQ"; sid:20;)',
        'alert smtp any any -> any any (msg:"no text"; file.data; content:"evil.example.com"; sid:21;)',
        'alert smtp any any -> any any (msg:"no helo"; smtp.helo; content:"other"; sid:22;)',
    ]) + "\n"
    recs = _smtp(tmp_path, rules)
    for sid in range(1, 14):
        assert len(alerts(recs, sid)) == 1, sid
    for sid in (20, 21, 22):
        assert alerts(recs, sid) == [], sid
    a = alerts(recs, 7)[0]
    assert a["app_proto"] == "smtp" and a["tx_id"] == 0
    assert a["smtp"] == {"helo": "client.example.org", "mail_from": "<jane@example.org>",
                         "rcpt_to": ["<bob@example.net>", "<carol@example.net>"]}
    assert a["files"][0]["filename"] == "report.exe" and a["files"][0]["size"] == len(ATTACHMENT)
    assert a["files"][0]["state"] == "CLOSED"
    records = [r for r in recs if r["event_type"] == "smtp"]
    assert len(records) == 1                        # QUIT after the mail makes no transaction
    email = records[0]["email"]
    assert email["from"] == "\"Doe, Jane\" <jane@example.org>"
    assert email["to"] == ["\"Smith, Bob\" <bob@example.net>", "carol@example.net"]
    assert email["cc"] == ["dave@example.net"]
    assert email["status"] == "PARSE_DONE" and email["attachment"] == ["report.exe"]
    assert email["url"] == ["evil.example.com/payload.bin"]
    assert records[0]["src_ip"] == CLIENT and records[0]["dest_port"] == 25


def test_smtp_filemd5_is_of_the_decoded_attachment(tmp_path: Path):
    (tmp_path / "bad.md5").write_text(hashlib.md5(ATTACHMENT).hexdigest() + "\n")
    (tmp_path / "other.md5").write_text(hashlib.md5(b"something else").hexdigest() + "\n")
    rules = ('alert smtp any any -> any any (msg:"md5"; filemd5:bad.md5; sid:1;)\n'
             'alert smtp any any -> any any (msg:"other"; filemd5:other.md5; sid:2;)\n')
    recs = _smtp(tmp_path, rules)
    assert len(alerts(recs, 1)) == 1 and alerts(recs, 2) == []


def test_smtp_over_small_segments_and_a_packet_rule(tmp_path: Path):
    """Lines and base64 cut across 7-byte segments decode the same; `alert smtp` with only
    payload content is a packet rule on the flow once it is SMTP."""
    rules = ('alert smtp any any -> any any (msg:"file"; file.data; content:"EVIL-MARKER"; sid:1;)\n'
             'alert smtp any any -> any any (msg:"quit"; flow:to_server; content:"QUIT"; sid:2;)\n')
    recs = _smtp(tmp_path, rules, segment=7)
    assert len(alerts(recs, 1)) == 1
    assert len(alerts(recs, 2)) == 1


def test_smtp_on_another_port_is_found_by_the_client_command(tmp_path: Path):
    """Off port 25 the 220 greeting decides nothing (FTP greets alike); the client's EHLO does."""
    recs = _smtp(tmp_path, 'alert smtp any any -> any any (msg:"h"; smtp.helo; content:"client"; sid:1;)\n',
                 dport=2525)
    assert len(alerts(recs, 1)) == 1
    flow = [r for r in recs if r["event_type"] == "flow"][0]
    assert flow["app_proto"] == "smtp"


def test_smtp_rset_and_a_second_mail_are_two_transactions(tmp_path: Path):
    session = [
        (False, b"220 mx ESMTP\r\n"),
        (True, b"HELO a\r\n"), (False, b"250 ok\r\n"),
        (True, b"MAIL FROM:<one@x>\r\n"), (False, b"250 ok\r\n"),
        (True, b"RSET\r\n"), (False, b"250 reset\r\n"),
        (True, b"MAIL FROM:<two@x>\r\n"), (False, b"250 ok\r\n"),
        (True, b"RCPT TO:<r@y>\r\n"), (False, b"250 ok\r\n"),
        (True, b"DATA\r\n"), (False, b"354 go\r\n"),
        (True, b"Subject: second\r\n\r\nbody\r\n.\r\n"), (False, b"250 ok\r\n"),
        (True, b"QUIT\r\n"), (False, b"221 bye\r\n"),
    ]
    recs = _smtp(tmp_path, 'alert smtp any any -> any any (msg:"s"; email.subject; content:"second"; sid:1;)\n',
                 session=session)
    mails = [r for r in recs if r["event_type"] == "smtp"]
    assert [m["smtp"].get("mail_from") for m in mails] == ["<one@x>", "<two@x>"]
    assert [m["tx_id"] for m in mails] == [0, 1]
    assert "email" not in mails[0] and mails[1]["email"]["status"] == "PARSE_DONE"
    assert alerts(recs, 1)[0]["tx_id"] == 1
    assert all(m["smtp"]["helo"] == "a" for m in mails)       # the session's, on every mail


def test_smtp_bdat_chunks(tmp_path: Path):
    """BDAT N: N bytes of message whatever lines they hold (a line split across chunks)."""
    part1 = b"Subject: chunked\r\nX-Mailer: bd"
    part2 = b"at\r\n\r\nhello\r\n"
    session = [
        (False, b"220 mx ESMTP\r\n"),
        (True, b"EHLO a\r\n"), (False, b"250 ok\r\n"),
        (True, b"MAIL FROM:<a@x>\r\n"), (False, b"250 ok\r\n"),
        (True, b"RCPT TO:<b@y>\r\n"), (False, b"250 ok\r\n"),
        (True, b"BDAT %d\r\n" % len(part1) + part1), (False, b"250 ok\r\n"),
        (True, b"BDAT %d LAST\r\n" % len(part2) + part2), (False, b"250 ok\r\n"),
        (True, b"QUIT\r\n"), (False, b"221 bye\r\n"),
    ]
    rules = ('alert smtp any any -> any any (msg:"x"; email.x_mailer; content:"bdat"; bsize:4; sid:1;)\n'
             'alert smtp any any -> any any (msg:"s"; email.subject; content:"chunked"; sid:2;)\n')
    recs = _smtp(tmp_path, rules, session=session)
    assert len(alerts(recs, 1)) == 1 and len(alerts(recs, 2)) == 1
    assert len([r for r in recs if r["event_type"] == "smtp"]) == 1


def test_smtp_events_and_starttls_stops_the_parser(tmp_path: Path):
    long_cmd = b"NOOP " + b"A" * 600 + b"\r\n"
    session = [
        (True, b"EHLO early\r\n"),                      # before any greeting
        (False, b"220 mx ESMTP\r\n250 ok\r\n"),
        (True, long_cmd), (False, b"250 ok\r\n"),
        (True, b"STARTTLS\r\n"), (False, b"220 go ahead\r\n"),
        (True, b"MAIL FROM:<hidden@x>\r\n"),             # would be TLS bytes: not parsed
    ]
    rules = ('alert smtp any any -> any any (msg:"nogreet"; app-layer-event:smtp.no_server_welcome_message; sid:1;)\n'
             'alert smtp any any -> any any (msg:"long"; app-layer-event:smtp.truncated_line; sid:2;)\n'
             'alert smtp any any -> any any (msg:"hidden"; smtp.mail_from; content:"hidden"; sid:3;)\n')
    recs = _smtp(tmp_path, rules, session=session)
    assert len(alerts(recs, 1)) == 1
    assert len(alerts(recs, 2)) == 1
    assert alerts(recs, 3) == []


def test_smtp_probe():
    assert smtp.probe(b"EHLO x\r\n", True) is True
    assert smtp.probe(b"helo x\r\n", True) is True
    assert smtp.probe(b"GET / HTTP/1.1\r\n", True) is False
    assert smtp.probe(b"QUIT\r\n", True) is None               # the port decides
    assert smtp.probe(b"220 mx ESMTP\r\n", False) is None       # FTP greets alike
    assert smtp.probe(b"HTTP/1.1 200 OK\r\n", False) is False
    assert smtp.probe(b"EH", True) is None


def test_mime_pieces():
    assert header_token(b'attachment; filename="a b.txt"', b"filename") == b"a b.txt"
    assert header_token(b"attachment; filename*0=\"long\"; filename*1=\"name.pdf\"", b"filename") == b"longname.pdf"
    assert header_token(b"text/plain; charset=utf-8", b"name") is None
    assert split_addresses(b'"a, b" <x@y>,  c@d') == [b'"a, b" <x@y>', b"c@d"]
    m = MimeMessage()
    for line in (b"Content-Type: text/plain", b"Content-Transfer-Encoding: quoted-printable", b"",
                 b"go to http://x.example/=", b"y?z=3D1"):
        m.line(line)
    m.complete()
    assert m.urls == [b"x.example/y?z=1"]


# --- FTP ---------------------------------------------------------------------------------------

def _ftp_with_data(tmp_path: Path, control: list, data: bytes, *, active: bool, upload: bool,
                   data_after: int) -> Path:
    """A control connection and, after its `data_after`-th exchange, the data connection:
    active: the server connects from port 20 to the client's port 50000; passive: the client
    connects to the server's port 50000."""
    ctl = rdpcap(str(tcp_session(tmp_path / "ctl.pcap", control, sport=40021, dport=21)))
    if active:
        dsess = tcp_session(tmp_path / "data.pcap", [(not upload, data)], sport=20, dport=50000,
                            client=SERVER, server=CLIENT)
    else:
        dsess = tcp_session(tmp_path / "data.pcap", [(upload, data)], sport=40022, dport=50000)
    dpk = rdpcap(str(dsess))
    # each exchange is two frames (data + ACK) after the 3 handshake frames
    cut = 3 + 2 * data_after
    frames = list(ctl[:cut]) + list(dpk) + list(ctl[cut:])
    for i, f in enumerate(frames):
        f.time = T0 + i * 0.01
    out = tmp_path / "ftp.pcap"
    wrpcap(str(out), frames)
    return out


FILE = b"hello over ftp-data\n" * 10


def test_ftp_active_download_keywords_and_records(tmp_path: Path):
    control = [
        (False, b"220 FTP ready\r\n"),
        (True, b"USER anonymous\r\n"), (False, b"331 Please specify the password.\r\n"),
        (True, b"PASS secret\r\n"), (False, b"230 Login successful.\r\n"),
        (True, b"PORT 10,0,0,5,195,80\r\n"), (False, b"200 PORT command successful.\r\n"),
        (True, b"RETR notes.txt\r\n"), (False, b"150 Opening BINARY mode data connection.\r\n"),
        (False, b"226 Transfer complete.\r\n"),
        (True, b"QUIT\r\n"), (False, b"221 Goodbye.\r\n"),
    ]
    pcap = _ftp_with_data(tmp_path, control, FILE, active=True, upload=False, data_after=9)
    rules = "\n".join([
        'alert ftp any any -> any any (msg:"user"; ftp.command; content:"USER"; ftp.command_data; content:"anonymous"; sid:1;)',
        'alert ftp any any -> any any (msg:"331"; ftp.completion_code; content:"331"; sid:2;)',
        'alert ftp any any -> any any (msg:"reply"; ftp.reply; content:"Transfer complete."; sid:3;)',
        'alert ftp any any -> any any (msg:"active"; flow:to_server; ftp.mode:active; sid:4;)',
        'alert ftp any any -> any any (msg:"port"; flow:to_server; ftp.dynamic_port:50000; sid:5;)',
        'alert ftp any any -> any any (msg:"passive"; ftp.mode:passive; sid:6;)',
        'alert ftp any any -> any any (msg:"range"; flow:to_server; ftp.dynamic_port:49000-49999; sid:7;)',
        'alert ftp-data any any -> any any (msg:"name"; filename:"notes.txt"; sid:8;)',
        'alert ftp-data any any -> any any (msg:"data"; file.data; content:"hello over ftp-data"; sid:9;)',
        'alert ftp-data any any -> any any (msg:"retr"; ftpdata_command:retr; sid:10;)',
        'alert ftp-data any any -> any any (msg:"stor"; ftpdata_command:stor; sid:11;)',
        'alert ftp any any -> any any (msg:"replied"; ftp.reply_received:yes; ftp.command; content:"RETR"; sid:12;)',
    ]) + "\n"
    recs = replay(tmp_path, pcap, rules, TYPES)
    for sid in (1, 2, 3, 4, 5, 8, 9, 10, 12):
        assert alerts(recs, sid), sid
    for sid in (6, 7, 11):
        assert alerts(recs, sid) == [], sid
    data = alerts(recs, 8)[0]
    assert data["app_proto"] == "ftp-data" and data["ftp_data"] == {"filename": "notes.txt", "command": "RETR"}
    assert data["files"][0]["size"] == len(FILE)
    ftp_recs = [r["ftp"] for r in recs if r["event_type"] == "ftp"]
    port = [r for r in ftp_recs if r.get("command") == "PORT"][0]
    assert port["dynamic_port"] == 50000 and port["mode"] == "active" and port["reply_received"] == "yes"
    retr = [r for r in ftp_recs if r.get("command") == "RETR"][0]
    assert retr["completion_code"] == ["150", "226"] and retr["command_data"] == "notes.txt"
    assert ftp_recs[0] == {"completion_code": ["220"], "reply": ["FTP ready"], "reply_received": "yes",
                           "reply_truncated": False}      # the greeting: a reply without a command
    assert [r["ftp_data"] for r in recs if r["event_type"] == "ftp_data"] == [
        {"filename": "notes.txt", "command": "RETR"}]


def test_ftp_passive_upload(tmp_path: Path):
    control = [
        (False, b"220 (vsFTPd 3.0.3)\r\n"),
        (True, b"USER u\r\n"), (False, b"331 pw\r\n"),
        (True, b"PASS p\r\n"), (False, b"230 ok\r\n"),
        (True, b"PASV\r\n"), (False, b"227 Entering Passive Mode (192,0,2,80,195,80).\r\n"),
        (True, b"STOR up.bin\r\n"), (False, b"150 Ok to send data.\r\n"),
        (False, b"226 Transfer complete.\r\n"),
    ]
    pcap = _ftp_with_data(tmp_path, control, FILE, active=False, upload=True, data_after=9)
    rules = ('alert ftp any any -> any any (msg:"passive"; flow:to_client; ftp.mode:passive; ftp.dynamic_port:50000; sid:1;)\n'
             'alert ftp-data any any -> any any (msg:"up"; flow:to_server; file.data; content:"hello over"; sid:2;)\n'
             'alert ftp-data any any -> any any (msg:"stor"; ftpdata_command:stor; sid:3;)\n'
             'alert ftp-data any any -> any any (msg:"name"; flow:to_server; filename:"up.bin"; sid:4;)\n'
             # an upload's file is on the client's side only
             'alert ftp-data any any -> any any (msg:"down"; flow:to_client; file.data; content:"hello"; sid:5;)\n')
    recs = replay(tmp_path, pcap, rules, TYPES)
    assert alerts(recs, 1) and alerts(recs, 2) and alerts(recs, 3) and alerts(recs, 4)
    assert alerts(recs, 5) == []


def test_ftpbounce(tmp_path: Path):
    control = [
        (False, b"220 FTP ready\r\n"),
        (True, b"USER u\r\n"), (False, b"331 pw\r\n"),
        (True, b"PORT 198,51,100,7,0,25\r\n"), (False, b"200 ok\r\n"),
    ]
    pcap = tcp_session(tmp_path / "b.pcap", control, sport=40021, dport=21)
    recs = replay(tmp_path, pcap, 'alert ftp any any -> any any (msg:"bounce"; ftpbounce; sid:1;)\n', TYPES)
    assert len(alerts(recs, 1)) == 1
    honest = [(False, b"220 FTP ready\r\n"), (True, b"PORT 10,0,0,5,195,80\r\n"), (False, b"200 ok\r\n")]
    pcap = tcp_session(tmp_path / "h.pcap", honest, sport=40021, dport=21)
    assert alerts(replay(tmp_path, pcap, 'alert ftp any any -> any any (msg:"b"; ftpbounce; sid:1;)\n', TYPES)) == []


def test_ftp_probe_and_ports():
    assert ftp.probe(b"USER anonymous\r\n", True) is True
    assert ftp.probe(b"220 (vsFTPd 3.0.3)\r\n", False) is True
    assert ftp.probe(b"220 ready\r\n", False) is None       # the port decides
    assert ftp.probe(b"EHLO x\r\n", True) is False
    assert ftp._port_from_port(b"10,0,0,5,195,80") == 50000
    assert ftp._port_from_port(b"10,0,0,5,300,80") == 0
    assert ftp._port_from_eprt(b"|2|::1|50000|") == 50000
    assert ftp._port_from_pasv(b"227 Entering Passive Mode (192,0,2,80,195,80).") == 50000


@pytest.mark.parametrize("rule, message", [
    ('alert ftp any any -> any any (ftp.mode:sideways; sid:1;)', "ftp.mode"),
    ('alert ftp any any -> any any (ftp.reply_received:maybe; sid:1;)', "ftp.reply_received"),
    ('alert ftp-data any any -> any any (ftpdata_command:dele; sid:1;)', "ftpdata_command"),
])
def test_bad_keyword_values_are_rule_errors(tmp_path: Path, rule: str, message: str):
    rf = tmp_path / "bad.rules"
    rf.write_text(rule + "\n")
    ruleset = load_rules([rf], load_config(None, []))
    assert len(ruleset.errors) == 1 and message in str(ruleset.errors[0])


@pytest.mark.parametrize("make", [smtp.SmtpParser, ftp.FtpParser, ftp.FtpDataParser])
def test_parsers_survive_random_bytes(make):
    """Hostile bytes never raise (but ProtocolChange, SMTP's accepted STARTTLS, after which
    the app layer gives the parser nothing more): random lines, commands, replies and
    binary, cut anywhere."""
    import random

    from netsentry.applayer.registry import ProtocolChange
    rng = random.Random(7)
    words = [b"EHLO x", b"MAIL FROM:<a>", b"RCPT TO:<b>", b"DATA", b"BDAT 5", b"BDAT 0 LAST", b"BDAT x",
             b"RSET", b"QUIT", b"STARTTLS", b"354 go", b"250-PIPELINING", b"250 ok", b"220 hi", b".",
             b"PORT 1,2,3,4,5,6", b"PORT 999,1", b"EPRT |2|::1|70000|", b"PASV", b"EPSV", b"RETR a",
             b"227 (1,2,3,4,5,6)", b"229 (|||99999|)", b"150 x", b"AUTH TLS", b"234 ok",
             b"Content-Type: multipart/mixed; boundary=q", b"--q", b"--q--",
             b"Content-Disposition: attachment; filename*0=a; filename*1=b",
             b"Content-Transfer-Encoding: base64", b"Content-Transfer-Encoding: quoted-printable",
             b"=ZZ=4", b"!!!", b""]
    for _ in range(200):
        p = make()
        stream = b"".join(rng.choice(words) + rng.choice((b"\r\n", b"\n", b"")) for _ in range(40))
        stream += rng.randbytes(rng.randrange(0, 700))
        i = 0
        while i < len(stream):
            n = rng.randrange(1, 90)
            try:
                p.parse(stream[i:i + n], rng.random() < 0.6)
            except ProtocolChange as change:
                assert make is smtp.SmtpParser and change.expect == "tls"
                break
            i += n
        if hasattr(p, "gap"):
            p.gap(True, 10)
        if hasattr(p, "eof"):
            p.eof(True)
        for tx in p.txs:
            tx.eve()
            if hasattr(tx, "alert_objects"):
                tx.alert_objects()


def test_smtp_commands_waiting_for_replies_are_bounded():
    """A client that pipelines without end to a server that never answers: the queue stops
    at Suricata's bound (a uint16 count) instead of growing with every line."""
    p = smtp.SmtpParser()
    p.parse(b"220 mail.example ESMTP\r\n", False)
    p.parse(b"EHLO c\r\n", True)
    p.parse(b"250-mail.example\r\n250 PIPELINING\r\n", False)
    p.parse(b"NOOP\r\n" * (smtp.MAX_PENDING + 500), True)
    assert len(p.cmds) == smtp.MAX_PENDING
    p.parse(b"250 ok\r\n", False)                # replies still take the oldest
    assert len(p.cmds) == smtp.MAX_PENDING - 1


def test_ftp_max_tx_gives_up_the_oldest_unanswered_command_and_stops(tmp_path: Path):
    """app-layer.protocols.ftp.max-tx (Suricata's FTPTransactionCreate): a command that
    would put more than max-tx transactions in flight raises too_many_transactions on the
    oldest unanswered one, is not made, and the flow is not parsed any more."""
    control = [
        (False, b"220 FTP ready\r\n"),
        (True, b"USER anonymous\r\n"), (False, b"331 Please specify the password.\r\n"),
        (True, b"PWD\r\nPWD\r\nPWD\r\n"), (False, b"257 \"/\"\r\n"),
        (True, b"CWD /tmp\r\n"), (False, b"250 ok\r\n"),
    ]
    pcap = tcp_session(tmp_path / "ftp.pcap", control, dport=21)
    rules = ('alert ftp any any -> any any (flow:to_server; app-layer-event:ftp.too_many_transactions; sid:1;)\n'
             'alert ftp any any -> any any (ftp.command; content:"CWD"; sid:2;)\n')
    recs = replay(tmp_path, pcap, rules, TYPES, "app-layer.protocols.ftp.max-tx=1")
    assert len(alerts(recs, 1)) == 1 and alerts(recs, 2) == []
    assert [r["ftp"].get("command") for r in recs if r["event_type"] == "ftp"] == [None, "USER", "PWD"]
    # the default (1024) leaves the same exchange alone
    recs = replay(tmp_path, pcap, rules, TYPES)
    assert alerts(recs, 1) == [] and len(alerts(recs, 2)) == 1


def test_body_md5_is_of_the_body_as_sent_dot_stuffing_kept(tmp_path: Path):
    """Suricata's SMTP parser does not undo dot-stuffing: email.body_md5 is the md5 of the
    body's lines as they crossed the wire, the doubled dot included (suricata-verify
    smtp-md5, detect-email-body_md5)."""
    body = MESSAGE[MESSAGE.index(b"\r\n\r\n") + 4:-len(b".\r\n")]
    assert b"\r\n..a line" in body
    sent = hashlib.md5(body).hexdigest()
    unstuffed = hashlib.md5(body.replace(b"\r\n..", b"\r\n.")).hexdigest()
    rules = (f'alert smtp any any -> any any (email.body_md5; content:"{sent}"; sid:1;)\n'
             f'alert smtp any any -> any any (email.body_md5; content:"{unstuffed}"; sid:2;)\n')
    recs = _smtp(tmp_path, rules)
    assert len(alerts(recs, 1)) == 1 and alerts(recs, 2) == []
