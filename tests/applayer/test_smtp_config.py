"""SMTP's settings (applayer/smtp.py `configure`): app-layer.protocols.smtp and the eve-log
smtp options, from netsentry's own keys and from a Suricata suricata.yaml; and file keywords
of a rule that names no protocol (`alert tcp ... file.data`) over SMTP."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest
from applayer_helpers import alerts, replay, tcp_session

from netsentry.applayer import smtp
from netsentry.config import ConfigError, load_config

TYPES = "outputs.eve-log.types=[alert, flow, smtp, ftp, ftp_data]"
ATTACHMENT = b"PK\x03\x04 pretend zip " * 8 + b"THE-42-MARKER"

MESSAGE = (
    b"From: jane@example.org\r\n"
    b"To: bob@example.net\r\n"
    b"Bcc: \"Hidden, One\" <h1@example.net>, h2@example.net\r\n"
    b"Reply-To: replies@example.org\r\n"
    b"Subject: settings\r\n"
    b"Message-ID: <m1@example.org>\r\n"
    b"X-Mailer: CraftMailer 2.0\r\n"
    b"Received: from a by b\r\n"
    b"Received: from c by d\r\n"
    b"Importance: high\r\n"
    b"Content-Type: multipart/mixed; boundary=\"B1\"\r\n"
    b"\r\n"
    b"--B1\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"visit http://plain.example.com/a and https://secure.example.com/b =3D\r\n"
    b"--B1\r\n"
    b"Content-Type: application/zip; name=\"data.zip\"\r\n"
    b"Content-Disposition: attachment; filename=\"data.zip\"\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    + b"\r\n".join(base64.encodebytes(ATTACHMENT).splitlines()) + b"\r\n"
    b"--B1--\r\n"
    b".\r\n")

SESSION = [
    (False, b"220 mx.example.net ESMTP\r\n"),
    (True, b"EHLO client.example.org\r\n"),
    (False, b"250 mx.example.net\r\n"),
    (True, b"MAIL FROM:<jane@example.org>\r\n"),
    (False, b"250 OK\r\n"),
    (True, b"RCPT TO:<bob@example.net>\r\n"),
    (False, b"250 OK\r\n"),
    (True, b"DATA\r\n"),
    (False, b"354 go ahead\r\n"),
    (True, MESSAGE),
    (False, b"250 queued\r\n"),
    (True, b"QUIT\r\n"),
    (False, b"221 bye\r\n"),
]

# the md5 of the body as sent: everything after the message's header block
BODY_MD5 = hashlib.md5(MESSAGE[MESSAGE.index(b"\r\n\r\n") + 4:MESSAGE.rindex(b".\r\n")]).hexdigest()


def _run(tmp_path: Path, rules: str, *overrides: str, suricata: Path | None = None) -> list[dict[str, Any]]:
    pcap = tcp_session(tmp_path / "smtp.pcap", SESSION, sport=40025, dport=25)
    return replay(tmp_path, pcap, rules, TYPES, *overrides, suricata=suricata)


def _email(recs: list[dict[str, Any]]) -> dict[str, Any]:
    records = [r for r in recs if r["event_type"] == "smtp"]
    assert len(records) == 1
    return records[0]["email"]


NO_RULES = 'alert tcp any any -> any any (msg:"never"; content:"NOT-IN-THE-SESSION"; sid:999;)\n'


def test_defaults_log_the_basic_email_fields_only(tmp_path: Path):
    email = _email(_run(tmp_path, NO_RULES))
    assert email["attachment"] == ["data.zip"]
    assert email["url"] == ["plain.example.com/a"]              # http only, without its scheme
    for key in ("bcc", "subject", "message_id", "x_mailer", "received", "reply_to", "body_md5", "subject_md5"):
        assert key not in email, key


def test_eve_extended_custom_and_md5(tmp_path: Path):
    """extended adds Suricata's extended fields; custom names fields by header or by logged
    key (an unknown name is skipped, as Suricata's sample list has `relays`); md5 subject."""
    email = _email(_run(tmp_path, NO_RULES, "outputs.eve-log.smtp.extended=true",
                        "outputs.eve-log.smtp.custom=[received, reply-to, Importance, relays]",
                        "outputs.eve-log.smtp.md5=[subject, body]"))
    assert email["bcc"] == ["\"Hidden, One\" <h1@example.net>", "h2@example.net"]
    assert email["message_id"] == "<m1@example.org>"
    assert email["subject"] == "settings"
    assert email["x_mailer"] == "CraftMailer 2.0"
    assert email["received"] == ["from a by b", "from c by d"]
    assert email["reply_to"] == "replies@example.org"
    assert email["importance"] == "high"
    assert "user_agent" not in email                              # no such header
    assert email["subject_md5"] == hashlib.md5(b"settings").hexdigest()
    # body-md5 is auto and no rule reads email.body_md5: the body's md5 is not computed
    assert "body_md5" not in email


@pytest.mark.parametrize("setting, rule_reads_it, logged", [
    ("auto", False, False), ("auto", True, True), ("true", False, True), ("false", True, False)])
def test_body_md5_yes_no_auto(tmp_path: Path, setting: str, rule_reads_it: bool, logged: bool):
    rules = NO_RULES
    if rule_reads_it:
        rules += f'alert smtp any any -> any any (msg:"md5"; email.body_md5; content:"{BODY_MD5}"; sid:1;)\n'
    recs = _run(tmp_path, rules, f"app-layer.protocols.smtp.mime.body-md5={setting}",
                "outputs.eve-log.smtp.md5=[body]")
    email = _email(recs)
    assert (email.get("body_md5") == BODY_MD5) is logged
    if rule_reads_it:
        assert len(alerts(recs, 1)) == int(logged)


def test_mime_decoding_switches(tmp_path: Path):
    rules = ('alert smtp any any -> any any (msg:"decoded"; file.data; content:"THE-42-MARKER"; sid:1;)\n'
             'alert smtp any any -> any any (msg:"url"; email.url; content:"secure.example.com"; sid:2;)\n')
    recs = _run(tmp_path, rules, "app-layer.protocols.smtp.mime.decode-base64=false",
                "app-layer.protocols.smtp.mime.extract-urls-schemes=[http, https]",
                "app-layer.protocols.smtp.mime.log-url-scheme=true")
    assert alerts(recs, 1) == []                                  # the attachment stays base64
    assert len(alerts(recs, 2)) == 1
    assert _email(recs)["url"] == ["https://secure.example.com/b", "http://plain.example.com/a"]
    recs = _run(tmp_path, rules, "app-layer.protocols.smtp.mime.extract-urls=false")
    assert len(alerts(recs, 1)) == 1 and alerts(recs, 2) == []
    assert "url" not in _email(recs)


def test_raw_extraction_only_without_mime_decoding(tmp_path: Path):
    """raw-extraction makes the whole message one file; with decode-mime on as well,
    Suricata keeps MIME decoding and disables raw extraction."""
    rules = ('alert smtp any any -> any any (msg:"raw"; file.data; content:"Subject: settings"; sid:1;)\n'
             'alert smtp any any -> any any (msg:"decoded"; file.data; content:"THE-42-MARKER"; sid:2;)\n')
    recs = _run(tmp_path, rules, "app-layer.protocols.smtp.raw-extraction=true",
                "app-layer.protocols.smtp.mime.decode-mime=false")
    assert len(alerts(recs, 1)) == 1 and alerts(recs, 2) == []
    assert "email" not in [r for r in recs if r["event_type"] == "smtp"][0]
    recs = _run(tmp_path, rules, "app-layer.protocols.smtp.raw-extraction=true")
    assert alerts(recs, 1) == [] and len(alerts(recs, 2)) == 1


def test_a_suricata_yaml_is_honoured(tmp_path: Path):
    cfg = tmp_path / "suricata.yaml"
    cfg.write_text(
        "%YAML 1.1\n---\n"
        "outputs:\n"
        "  - eve-log:\n"
        "      enabled: yes\n"
        "      types:\n"
        "        - alert\n"
        "        - smtp:\n"
        "            extended: yes\n"
        "            custom: [received, x-mailer, x-originating-ip, relays, reply-to, bcc]\n"
        "            md5: [body, subject]\n"
        "app-layer:\n"
        "  protocols:\n"
        "    smtp:\n"
        "      enabled: yes\n"
        "      raw-extraction: no\n"
        "      mime:\n"
        "        decode-mime: yes\n"
        "        decode-base64: yes\n"
        "        decode-quoted-printable: yes\n"
        "        header-value-depth: 2000\n"
        "        extract-urls: yes\n"
        "        extract-urls-schemes: [https]\n"
        "        body-md5: yes\n"
        "      inspected-tracker:\n"
        "        content-limit: 100000\n"
        "        content-inspect-min-size: 32768\n"
        "        content-inspect-window: 4096\n")
    email = _email(_run(tmp_path, NO_RULES, suricata=cfg))
    assert email["url"] == ["secure.example.com/b"]
    assert email["body_md5"] == BODY_MD5
    assert email["received"] == ["from a by b", "from c by d"] and email["reply_to"] == "replies@example.org"
    assert email["subject"] == "settings"


@pytest.mark.parametrize("override, key", [
    ("app-layer.protocols.smtp.mime.body-md5=sometimes", "app-layer.protocols.smtp.mime.body-md5"),
    ("app-layer.protocols.smtp.inspected-tracker.content-inspect-min-size=lots",
     "app-layer.protocols.smtp.inspected-tracker.content-inspect-min-size"),
    ("app-layer.protocols.smtp.mime.decode-base64=maybe", "app-layer.protocols.smtp.mime.decode-base64"),
])
def test_bad_values_name_their_key(override: str, key: str):
    """Caught by the configuration's type check or by SMTP's own: one line naming the key."""
    with pytest.raises(ConfigError) as err:
        smtp.configure(load_config(None, [override]))
    assert key in str(err.value) and "\n" not in str(err.value)


def test_file_data_on_a_rule_of_no_protocol_inspects_smtp_attachments(tmp_path: Path):
    """`alert tcp ... file.data` (Suricata registers file.data for every protocol with
    files): the SMTP attachment matches, on the client's side; naming smtp does the same,
    naming http does not."""
    rules = ('alert tcp any any -> any any (msg:"any"; file.data; content:"THE-42-MARKER"; sid:1;)\n'
             'alert ip any any -> any any (msg:"any ip"; file_data; content:"42"; sid:2;)\n'
             'alert smtp any any -> any any (msg:"smtp"; file.data; content:"THE-42-MARKER"; sid:3;)\n'
             'alert http any any -> any any (msg:"http"; file.data; content:"THE-42-MARKER"; sid:4;)\n'
             'alert tcp any any -> any any (msg:"name"; file.name; content:"data.zip"; sid:5;)\n')
    recs = _run(tmp_path, rules, "outputs.eve-log.types=[alert]")
    for sid in (1, 2, 3, 5):
        got = alerts(recs, sid)
        assert len(got) == 1, sid
        assert got[0]["app_proto"] == "smtp" and got[0]["dest_port"] == 25, sid
    assert alerts(recs, 4) == []


def test_file_keywords_on_a_rule_of_no_protocol_see_smtp_files(tmp_path: Path):
    """filesize / filename / fileext on `alert tcp` check every protocol's files: the SMTP
    attachment (its decoded size) here; bounds that exclude it do not match."""
    size = len(ATTACHMENT)
    rules = (f'alert tcp any any -> any any (msg:"lt"; filesize:<{size + 1}; sid:1;)\n'
             f'alert tcp any any -> any any (msg:"gt"; filesize:>{size - 1}; sid:2;)\n'
             f'alert tcp any any -> any any (msg:"eq"; filesize:{size}; sid:3;)\n'
             f'alert tcp any any -> any any (msg:"too small"; filesize:<{size}; sid:4;)\n'
             'alert tcp any any -> any any (msg:"name"; filename:"data.zip"; sid:5;)\n'
             'alert tcp any any -> any any (msg:"ext"; fileext:"zip"; sid:6;)\n'
             'alert tcp any any -> any any (msg:"not ext"; fileext:"exe"; sid:7;)\n'
             'alert tcp any any -> any any (msg:"name+data"; filename:"data"; file.data; content:"42"; sid:8;)\n'
             'alert http any any -> any any (msg:"http only"; filename:"data.zip"; sid:9;)\n')
    recs = _run(tmp_path, rules, "outputs.eve-log.types=[alert]")
    for sid in (1, 2, 3, 5, 6, 8):
        assert len(alerts(recs, sid)) == 1, sid
        assert alerts(recs, sid)[0]["app_proto"] == "smtp"
    for sid in (4, 7, 9):
        assert alerts(recs, sid) == [], sid
