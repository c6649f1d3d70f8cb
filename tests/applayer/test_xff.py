"""X-Forwarded-For in alert records (outputs.eve-log.alert.xff), through the whole replay CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from applayer_helpers import CLIENT, SERVER, tcp_session

from netsentry.applayer.http import HttpParser, xff_address
from netsentry.cli import main
from netsentry.log import setup_logging

RULES = ('alert http any any -> any any (msg:"req"; http.uri; content:"/login"; sid:1;)\n'
         'alert http any any -> any any (msg:"resp"; http.stat_code; content:"200"; sid:2;)\n'
         'alert tcp any any -> any any (msg:"pkt"; content:"secret"; sid:3;)\n')


def _pcap(tmp_path: Path, xff: bytes) -> Path:
    req = b"GET /login HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: " + xff + b"\r\n\r\n"
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret"
    return tcp_session(tmp_path / "x.pcap", [(True, req), (False, resp)])


def _alerts(tmp_path: Path, capsys: pytest.CaptureFixture[str], pcap: Path, *sets: str) -> dict[int, dict]:
    rules = tmp_path / "t.rules"
    rules.write_text(RULES)
    args = ["replay", str(pcap), "-S", str(rules), "-l", str(tmp_path / "log"), "-q",
            "--set", "anomaly.enabled=false"]
    for s in sets:
        args += ["--set", s]
    try:
        status = main(args)
    finally:
        setup_logging(stream=sys.__stderr__)
    assert status == 0, capsys.readouterr().err
    recs = [json.loads(line) for line in (tmp_path / "log" / "eve.json").read_bytes().splitlines()]
    return {r["alert"]["signature_id"]: r for r in recs if r["event_type"] == "alert"}


def test_extra_data_adds_the_chains_last_address_to_alerts_on_the_flow(tmp_path: Path, capsys):
    got = _alerts(tmp_path, capsys, _pcap(tmp_path, b"10.9.9.9, 10.3.3.3"),
                  "outputs.eve-log.alert.xff.enabled=true")
    assert got.keys() == {1, 2, 3}
    # every alert of the HTTP flow, on a transaction or not, names the client; addresses stay
    assert all(a["alert"]["xff"] == "10.3.3.3" for a in got.values())
    assert got[1]["src_ip"] == CLIENT and got[2]["dest_ip"] == CLIENT
    assert list(got[1]["alert"])[-1] == "xff"         # last in alert{}, as Suricata writes it


def test_overwrite_forward_replaces_the_client_side_address(tmp_path: Path, capsys):
    got = _alerts(tmp_path, capsys, _pcap(tmp_path, b"[2001:db8::7]:443, 10.3.3.3"),
                  "outputs.eve-log.alert.xff.enabled=true", "outputs.eve-log.alert.xff.mode=overwrite",
                  "outputs.eve-log.alert.xff.deployment=forward")
    assert got[1]["src_ip"] == "2001:db8::7" and got[1]["dest_ip"] == SERVER      # request: to server
    assert got[2]["dest_ip"] == "2001:db8::7" and got[2]["src_ip"] == SERVER      # response: to client
    assert "xff" not in got[1]["alert"]


def test_disabled_by_default_and_bad_settings_are_config_errors(tmp_path: Path, capsys):
    got = _alerts(tmp_path, capsys, _pcap(tmp_path, b"10.3.3.3"))
    assert "xff" not in got[1]["alert"] and got[1]["src_ip"] == CLIENT
    rules = tmp_path / "t.rules"
    try:
        status = main(["replay", str(_pcap(tmp_path, b"10.3.3.3")), "-S", str(rules), "-l", str(tmp_path / "l2"),
                       "-q", "--set", "outputs.eve-log.alert.xff.mode=rewrite"])
    finally:
        setup_logging(stream=sys.__stderr__)
    assert status != 0 and "outputs.eve-log.alert.xff.mode" in capsys.readouterr().err


@pytest.mark.parametrize("value,reverse,want", [
    (b"10.1.1.1, 10.2.2.2", True, "10.2.2.2"),
    (b"10.1.1.1, 10.2.2.2", False, "10.1.1.1"),
    (b"10.1.1.1:8080", True, "10.1.1.1"),             # IPv4 with a port
    (b"[2001:db8::1]:80", False, "2001:db8::1"),      # bracketed IPv6 with a port
    (b"2001:db8::1", True, "2001:db8::1"),
    (b"unknown, 10.2.2.2", False, None),             # not an address
    (b"1.1.1.", True, None),                          # shorter than Suricata reads (7)
    (b"10.1.1.1, " * 30, False, None),                # 256 bytes or more are not read
])
def test_xff_address(value, reverse, want):
    p = HttpParser()
    p.parse(b"GET / HTTP/1.1\r\nx-forwarded-for: " + value + b"\r\n\r\n", True)
    assert xff_address(p.txs[0], b"X-Forwarded-For", reverse) == want
