"""`encryption-handling` (TLS and SSH): once a session is encrypted, packet and stream
payload are no longer inspected (`track-only`, Suricata's default), the flow is bypassed
(`bypass`), or nothing changes (`full`); app-layer rules keep working in `track-only`."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from applayer_helpers import alerts, replay, tcp_session
from test_ssh import SESSION as SSH_SESSION
from tls_builders import client_hello, handshake_record, server_hello

from netsentry.applayer.registry import encryption_handling
from netsentry.config import ConfigError, load_config

SECRET = b"SECRETWORD"


def app_data(body: bytes) -> bytes:
    return struct.pack("!BHH", 23, 0x0303, len(body)) + body


CCS = struct.pack("!BHHB", 20, 0x0303, 1, 1)

TLS_SESSION = [
    (True, handshake_record(client_hello("enc.example.com"))),
    (False, handshake_record(server_hello()) + CCS),
    (True, CCS),
    (True, app_data(b"a" * 20 + SECRET)),        # the first application data: inspected in full
    (False, app_data(b"b" * 40)),
    (True, app_data(b"c" * 20 + SECRET)),        # from here: the session is encrypted
    (False, app_data(b"d" * 20 + SECRET)),
]

RULES = "\n".join([
    f'alert tcp any any -> any any (msg:"raw content"; content:"{SECRET.decode()}"; sid:1;)',
    'alert tls any any -> any any (msg:"sni"; tls.sni; content:"enc.example.com"; sid:2;)',
    'alert tcp any any -> any 443 (msg:"header only"; flow:established,to_server; flags:PA; sid:3;)',
]) + "\n"


def _tls(tmp_path: Path, *overrides: str) -> list[dict]:
    pcap = tcp_session(tmp_path / "tls.pcap", TLS_SESSION, sport=40443, dport=443)
    return replay(tmp_path, pcap, RULES, "outputs.eve-log.types=[alert, flow]", *overrides)


def test_track_only_is_the_default_and_stops_payload_inspection_after_the_first_app_data(tmp_path: Path):
    recs = _tls(tmp_path)
    # only the first application-data record's content: the stream data not yet inspected
    # when the session turned encrypted is, on a pseudo packet, before inspection stops
    # (Suricata's StreamTcpDetectLogFlush); the later records are never looked at
    raw = alerts(recs, 1)
    assert len(raw) == 1
    assert raw[0]["pkt_src"] == "stream (detect/log)" and "pcap_cnt" not in raw[0]
    assert len(alerts(recs, 2)) == 1                # transactions are still inspected
    assert len(alerts(recs, 3)) == 4                # rules that need no payload still run


def test_full_inspects_encrypted_bytes_as_any_others(tmp_path: Path):
    recs = _tls(tmp_path, "app-layer.protocols.tls.encryption-handling=full")
    # both directions' streams, inspected as the session closes (the client's two records
    # in one window: one alert)
    assert sorted(a["src_port"] for a in alerts(recs, 1)) == [443, 40443]
    assert len(alerts(recs, 2)) == 1
    assert len(alerts(recs, 3)) == 4


def test_bypass_skips_the_rest_of_the_flow(tmp_path: Path):
    recs = _tls(tmp_path, "app-layer.protocols.tls.encryption-handling=bypass")
    assert len(alerts(recs, 1)) == 1
    # the client's last record comes after the bypass: no packet rule sees it
    assert len(alerts(recs, 3)) == 3
    flows = [r for r in recs if r["event_type"] == "flow"]
    assert flows and flows[0]["flow"]["state"] == "bypassed"


@pytest.mark.parametrize(("tls", "expected"), [
    ("no-reassemble: yes", "bypass"), ("no-reassemble: no", "track-only"),
    ("encryption-handling: full", "full"), ("encryption-handling: default", "track-only")])
def test_a_suricata_yaml_setting_and_its_legacy_no_reassemble(tmp_path: Path, tls: str, expected: str):
    path = tmp_path / "suricata.yaml"
    path.write_text(f"%YAML 1.1\n---\napp-layer:\n  protocols:\n    tls:\n      {tls}\n")
    assert encryption_handling(load_config(suricata=path), "tls") == expected
    assert encryption_handling(load_config(), "ssh") == "track-only"


def test_an_unknown_value_is_a_config_error_with_its_key():
    with pytest.raises(ConfigError) as err:
        encryption_handling({"app-layer": {"protocols": {"ssh": {"encryption-handling": "maybe"}}}}, "ssh")
    assert "app-layer.protocols.ssh.encryption-handling" in str(err.value)


SSH_RULE = 'alert tcp any any -> any 22 (msg:"encrypted bytes"; content:"|c8 c9 ca|"; sid:10;)\n'


@pytest.mark.parametrize(("handling", "expected"), [("track-only", 0), ("full", 1)])
def test_ssh_payload_after_both_newkeys_is_not_inspected_in_track_only(tmp_path: Path, handling: str,
                                                                         expected: int):
    # the client's encrypted bytes come after both sides' NEWKEYS; the server's NEWKEYS is
    # acknowledged (parsed) one packet before them, so they are past the switch
    session = SSH_SESSION[:7] + [(False, b"\x00" * 8), SSH_SESSION[7]]
    pcap = tcp_session(tmp_path / "ssh.pcap", session, sport=40022, dport=22)
    recs = replay(tmp_path, pcap, SSH_RULE, "outputs.eve-log.types=[alert]",
                  f"app-layer.protocols.ssh.encryption-handling={handling}")
    assert len(alerts(recs, 10)) == expected
