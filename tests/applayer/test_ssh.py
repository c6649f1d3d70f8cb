"""SSH (applayer/ssh.py): banners, the clear-text key exchange (hassh), the `ssh.*` buffers,
the EVE `ssh` object, events and progress, over crafted sessions."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest
from applayer_helpers import SCHEMA, alerts, replay, tcp_session

from netsentry.applayer import ssh

TYPES = "outputs.eve-log.types=[alert, flow, ssh]"

CLIENT_BANNER = b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.1\r\n"
SERVER_BANNER = b"SSH-2.0-dropbear_2016.74\r\n"
CLIENT_ALGS = [b"curve25519-sha256,diffie-hellman-group14-sha256,ext-info-c", b"ssh-ed25519,rsa-sha2-512",
               b"aes128-ctr,aes256-ctr", b"aes256-gcm@openssh.com", b"hmac-sha2-256", b"hmac-sha1",
               b"none,zlib@openssh.com", b"none", b"", b""]
SERVER_ALGS = [b"curve25519-sha256", b"ssh-ed25519", b"chacha20-poly1305@openssh.com", b"aes128-ctr",
               b"umac-64-etm@openssh.com", b"hmac-sha2-512", b"none", b"zlib", b"", b""]


def packet(code: int, payload: bytes = b"") -> bytes:
    """One binary packet (RFC 4253 6): length, padding length, message code, payload, padding."""
    body = bytes([code]) + payload
    pad = 8 - (5 + len(body)) % 8 + 4
    return (1 + len(body) + pad).to_bytes(4, "big") + bytes([pad]) + body + bytes(pad)


def kexinit(algs: list[bytes]) -> bytes:
    lists = b"".join(len(a).to_bytes(4, "big") + a for a in algs)
    return packet(20, bytes(range(16)) + lists + b"\x00" + bytes(4))


def hassh_string(algs: list[bytes], client: bool) -> bytes:
    own = (algs[2], algs[4], algs[6]) if client else (algs[3], algs[5], algs[7])
    return b";".join((algs[0],) + own)


CLIENT_HASSH = hassh_string(CLIENT_ALGS, True)
SERVER_HASSH = hassh_string(SERVER_ALGS, False)

SESSION = [
    (True, CLIENT_BANNER),
    (False, SERVER_BANNER),
    (True, kexinit(CLIENT_ALGS)),
    (False, kexinit(SERVER_ALGS)),
    (True, packet(30, b"\x00\x00\x00\x20" + bytes(32))),        # KEXDH_INIT
    (False, packet(31, bytes(40)) + packet(21)),                # KEXDH_REPLY, NEWKEYS
    (True, packet(21)),                                         # NEWKEYS
    (True, bytes(range(200, 256)) * 3),                         # encrypted from here on
    (False, b"\xff" * 120),
]


def _replay(tmp_path: Path, rules: str, session=SESSION, *overrides: str, segment: int = 0) -> list[dict]:
    pcap = tcp_session(tmp_path / "ssh.pcap", session, sport=40022, dport=22, segment=segment)
    return replay(tmp_path, pcap, rules, TYPES, *overrides)


def _records(recs: list[dict]) -> list[dict]:
    return [r["ssh"] for r in recs if r["event_type"] == "ssh"]


def test_banners_make_one_record_and_the_proto_and_software_buffers(tmp_path: Path):
    recs = _replay(tmp_path,
                   'alert ssh any any -> any any (flow:to_client; ssh.software; content:"dropbear"; sid:1;)\n'
                   'alert ssh any any -> any any (flow:to_server; ssh.software; content:"dropbear"; sid:2;)\n'
                   'alert ssh any any -> any any (flow:to_server; ssh_proto; content:"2.0"; sid:3;)\n'
                   'alert ssh any any -> any any (flow:to_server; ssh.software; content:"Ubuntu"; sid:4;)\n')
    assert _records(recs) == [{"client": {"proto_version": "2.0", "software_version": "OpenSSH_8.9p1"},
                               "server": {"proto_version": "2.0", "software_version": "dropbear_2016.74"}}]
    assert len(alerts(recs, 1)) == 1 and not alerts(recs, 2) and len(alerts(recs, 3)) == 1
    assert not alerts(recs, 4), "the comment after the software version is not part of it"
    alert = alerts(recs, 1)[0]
    assert alert["app_proto"] == "ssh" and alert["ssh"]["server"]["software_version"] == "dropbear_2016.74"
    assert [r["app_proto"] for r in recs if r["event_type"] == "flow"] == ["ssh"]


@pytest.mark.parametrize("overrides", [("app-layer.protocols.ssh.hassh=yes",), ()])
def test_hassh_from_each_sides_kexinit(tmp_path: Path, overrides: tuple[str, ...]):
    """hassh from the config, or turned on by a rule reading a hassh buffer (no config)."""
    md5 = hashlib.md5(CLIENT_HASSH).hexdigest()
    md5_server = hashlib.md5(SERVER_HASSH).hexdigest()
    recs = _replay(tmp_path,
                   f'alert ssh any any -> any any (ssh.hassh; content:"{md5}"; sid:1;)\n'
                   'alert ssh any any -> any any (ssh.hassh.string; content:"aes128-ctr,aes256-ctr|3b|hmac-sha2-256|3b|"; '
                   'sid:2;)\n'
                   'alert ssh any any -> any any (ssh.hassh.server.string; content:"curve25519-sha256|3b|aes128-ctr|3b|'
                   'hmac-sha2-512|3b|zlib"; endswith; sid:3;)\n'
                   f'alert ssh any any -> any any (ssh.hassh.server; content:"{md5}"; sid:4;)\n',
                   SESSION, *overrides)
    assert [len(alerts(recs, sid)) for sid in (1, 2, 3, 4)] == [1, 1, 1, 0]
    (rec,) = _records(recs)
    assert rec["client"]["hassh"] == {"hash": md5, "string": CLIENT_HASSH.decode()}
    assert rec["server"]["hassh"] == {"hash": md5_server, "string": SERVER_HASSH.decode()}


def test_without_hassh_nothing_of_it_is_logged(tmp_path: Path):
    (rec,) = _records(_replay(tmp_path, ""))
    assert "hassh" not in rec["client"] and "hassh" not in rec["server"]


def test_small_segments_give_the_same_record_and_hassh(tmp_path: Path):
    whole = _records(_replay(tmp_path, "", SESSION, "app-layer.protocols.ssh.hassh=yes"))
    cut = _records(_replay(tmp_path, "", SESSION, "app-layer.protocols.ssh.hassh=yes", segment=5))
    assert cut == whole and "hassh" in cut[0]["client"]


def test_a_content_rule_on_the_ssh_banner_as_et_open_writes_it(tmp_path: Path):
    """ET Open's `alert ssh` rules with payload contents (e.g. sid 2006546's libssh banner)."""
    session = [(True, b"SSH-2.0-libssh_0.9.6\r\n"), (False, SERVER_BANNER)]
    rule = ('alert ssh any any -> any 22 (flow:established,to_server; content:"SSH-"; content:"libssh"; within:20; '
            'sid:1;)\n')
    assert len(alerts(_replay(tmp_path, rule, session), 1)) == 1
    assert not alerts(_replay(tmp_path, rule, SESSION), 1)


def test_events_invalid_banner_long_banner_invalid_record(tmp_path: Path):
    rules = "".join(f'alert ssh any any -> any any (app-layer-event:ssh.{name}; sid:{i};)\n'
                    for i, name in enumerate(("invalid_banner", "long_banner", "invalid_record"), 1))
    bad_server = [(True, CLIENT_BANNER), (False, b"HTTP/1.1 400 Bad Request\r\n")]
    # the flow's one transaction carries the event: a rule without a direction sees it from
    # each side once (as ssh.software in suricata-verify's ssh-banner-only)
    assert [len(alerts(_replay(tmp_path, rules, bad_server), s)) for s in (1, 2, 3)] == [2, 0, 0]
    long_client = [(True, b"SSH-2.0-" + b"x" * 300 + b"\r\n"), (False, SERVER_BANNER)]
    recs = _replay(tmp_path, rules + 'alert ssh any any -> any any (flow:to_server; ssh.proto; content:"2.0"; '
                   'sid:4;)\n', long_client)
    assert [len(alerts(recs, s)) for s in (1, 2, 3, 4)] == [0, 2, 0, 1]
    # logged cut at 256 bytes, as Suricata notes it; the buffer keeps all of it
    assert _records(recs)[0]["client"]["software_version"] == "x" * 256 + "[truncated 44 additional bytes]"
    bad_record = [(True, CLIENT_BANNER), (False, SERVER_BANNER), (True, b"\x00\x00\x00\x01\x00\x15")]
    assert [len(alerts(_replay(tmp_path, rules, bad_record), s)) for s in (1, 2, 3)] == [0, 0, 2]


def test_progress_hooks(tmp_path: Path):
    """`app-layer-state`: a side's banner, then finished once both sides sent NEWKEYS."""
    rules = ('alert ssh any any -> any any (flow:to_server; app-layer-state:request_finished; sid:1;)\n'
             'alert ssh any any -> any any (flow:to_client; app-layer-state:response_banner_done; sid:2;)\n')
    # a plain hook matches while the side is at that state: each of the server's packets
    # from its banner to its NEWKEYS (the server is "finished" only once the client is too)
    recs = _replay(tmp_path, rules)
    assert len(alerts(recs, 1)) == 1 and len(alerts(recs, 2)) == 3
    recs = _replay(tmp_path, rules, SESSION[:4])
    assert not alerts(recs, 1) and len(alerts(recs, 2)) == 2


def test_record_validates_against_suricatas_schema(tmp_path: Path):
    if not SCHEMA.exists():
        pytest.skip(f"Suricata's EVE schema not found at {SCHEMA} (fresh clone)")
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    recs = _replay(tmp_path, 'alert ssh any any -> any any (ssh.proto; content:"2.0"; sid:1;)\n', SESSION,
                   "app-layer.protocols.ssh.hassh=yes")
    assert {"ssh", "alert"} <= {r["event_type"] for r in recs}
    for rec in recs:
        errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(rec)]
        assert not errors, (rec["event_type"], errors)


def test_banner_text_as_suricatas_json_builder_writes_it():
    assert ssh._text(b"caf\xc3\xa9") == "caf\u00e9"
    assert ssh._text(b"a\xffb") == "a\\xffb"
    assert ssh._text(b"abcd", 3) == "abc[truncated 1 additional byte]"


def test_banner_parsing_as_suricata():
    side = ssh.SshSide()
    assert ssh._set_banner(side, b"SSH-2.0-Soft") and (side.protover, side.swver) == (b"2.0", b"Soft")
    assert ssh._set_banner(side, b"SSH-Single-") and (side.protover, side.swver) == (b"Single", b"")
    assert ssh._set_banner(side, b"SSH-1.99-Cisco-1.25 x") and side.swver == b"Cisco-1.25"
    assert not ssh._set_banner(side, b"SSH--x") and not ssh._set_banner(side, b"SSH-2.0")
    assert ssh._line_end(b"SSH-Oops\rMore\r\n") == (8, 9)
    assert ssh._line_end(b"SSH-Miss\r") == (-1, -1)
    assert ssh._line_end(b"a\r\nb") == (1, 3)


def test_parser_survives_random_bytes():
    """Hostile bytes never raise anything but ParserError, cut anywhere, hassh on."""
    from netsentry.applayer.registry import ParserError
    rng = random.Random(22)
    pieces = [CLIENT_BANNER, SERVER_BANNER, kexinit(CLIENT_ALGS), packet(21), b"SSH-", b"\r", b"\n",
              b"\x00\x00\x00\x01", b"\xff\xff\xff\xff\x05\x14", kexinit(SERVER_ALGS)[:30]]
    for _ in range(300):
        p = ssh.SshParser({"hassh": True})
        for _ in range(30):
            data = rng.choice(pieces) if rng.random() < 0.7 else rng.randbytes(rng.randrange(1, 80))
            try:
                p.parse(data, rng.random() < 0.5)
            except ParserError:
                pass
        p.tx.eve()
        p.tx.complete()


def test_frames_of_the_clear_text_packets(tmp_path: Path):
    """`frame:ssh.record.{pdu,hdr,data}`: each packet before NEWKEYS, whole, its header, its
    data; the encrypted bytes after NEWKEYS are no frame."""
    rules = ('alert ssh any any -> any 22 (frame:ssh.record.pdu; content:"|0a 1e 00 00 00 20|"; offset:4; depth:6; '
             'sid:1;)\n'
             'alert ssh any any -> any 22 (frame:ssh.record.hdr; content:"|15|"; endswith; bsize:6; sid:2;)\n'
             'alert ssh any any -> any 22 (frame:ssh.record.data; content:"curve25519"; sid:3;)\n'
             'alert ssh any any -> any any (flow:to_client; frame:ssh.record.data; content:"hmac-sha2-512"; sid:4;)\n'
             'alert ssh any any -> any any (frame:ssh.record.pdu; content:"|c8 c9 ca|"; sid:5;)\n')
    for segment in (0, 7):
        recs = _replay(tmp_path, rules, segment=segment)
        assert [len(alerts(recs, sid)) for sid in (1, 2, 3, 4, 5)] == [1, 1, 1, 1, 0], segment
