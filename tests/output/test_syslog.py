"""Syslog output against a real rsyslog on loopback (UDP, TCP, TLS, the local socket).

Each test starts its own rsyslogd in the foreground on free 127.0.0.1 ports
(receivers.py), replays a sample capture through `netsentry replay` with the
syslog output on, and compares what rsyslog wrote with the EVE records of the
same run: every record arrives complete and parses as the JSON that was sent.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from receivers import GTLS, OPENSSL, RSYSLOGD, Rsyslog, free_port, make_certs, thaw_after_the_capture_loop

REPO = Path(__file__).resolve().parents[2]
CAPTURE = REPO / "pcaps" / "attacks-web.pcap"
RULES = REPO / "signatures" / "netsentry.rules"

needs_rsyslog = pytest.mark.skipif(RSYSLOGD is None, reason="rsyslogd not installed (setup.sh installs rsyslog)")
needs_tls = pytest.mark.skipif(RSYSLOGD is None or not GTLS.exists() or OPENSSL is None,
                               reason="rsyslog-gnutls or openssl not installed (setup.sh installs them)")


def replay(tmp: Path, *sets: str, capture: Path = CAPTURE, timeout: float = 120) -> tuple[int, str, list[dict]]:
    """netsentry replay with eve-log (alerts) and the given --set items; (status, stderr, eve alerts)."""
    logdir = tmp / "log"
    args = [sys.executable, "-m", "netsentry", "replay", str(capture), "-S", str(RULES), "-l", str(logdir), "-q",
            "--set", "outputs.eve-log.types=[alert]", "--set", "outputs.syslog.enabled=true",
            "--set", "outputs.syslog.types=[alert]"]
    for item in sets:
        args += ["--set", item]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    eve = logdir / "eve.json"
    records = [json.loads(line) for line in eve.read_text().splitlines()] if eve.exists() else []
    return proc.returncode, proc.stderr, records


def parse(line: str) -> tuple[list[str], dict]:
    parts = line.split("|", 7)
    return parts[:7], json.loads(parts[7])


def closed_counts(stderr: str) -> dict:
    (rec,) = [json.loads(ln) for ln in stderr.splitlines() if '"output closed"' in ln]
    return rec


def check_delivered(rs: Rsyslog, records: list[dict], stderr: str) -> list[list[str]]:
    assert records, "the capture raised alerts"
    lines = rs.wait_lines(len(records))
    got = [parse(ln) for ln in lines]
    assert [body for _, body in got] == records          # complete, in order, the same JSON
    counts = closed_counts(stderr)
    assert counts["produced"] == counts["sent"] == len(records) and counts["dropped"] == 0
    return [head for head, _ in got]


@needs_rsyslog
def test_udp_rfc5424_eve_records_arrive_complete(tmp_path: Path):
    port = free_port(socket.SOCK_DGRAM)
    with Rsyslog(tmp_path / "rs", f'module(load="imudp")\ninput(type="imudp" port="{port}" address="127.0.0.1")') as rs:
        status, err, records = replay(tmp_path, f"outputs.syslog.port={port}", "outputs.syslog.hostname=sensor-1")
        assert status == 0, err
        heads = check_delivered(rs, records, err)
    facility, severity, host, app, procid, msgid, sd = heads[0]
    assert (facility, host, app, msgid) == ("21", "sensor-1", "netsentry", "alert")      # local5
    assert procid.isdigit()
    # severity from the alert's: 1 -> crit (2), 2 -> err (3), 3 -> warning (4)
    for (_, sev, *_rest), rec in zip(heads, records):
        assert int(sev) == {1: 2, 2: 3, 3: 4}[rec["alert"]["severity"]]
    # RFC 5424 meta sequenceId: 1, 2, 3, ... so a SIEM sees gaps
    assert [h[6] for h in heads] == [f'[meta sequenceId="{i}"]' for i in range(1, len(heads) + 1)]


@needs_rsyslog
@pytest.mark.parametrize("framing", ["octet-counting", "non-transparent"])
def test_tcp_framings_and_rfc3164(tmp_path: Path, framing: str):
    port = free_port()
    with Rsyslog(tmp_path / "rs", f'input(type="imtcp" port="{port}" address="127.0.0.1")') as rs:
        status, err, records = replay(tmp_path, f"outputs.syslog.port={port}", "outputs.syslog.transport=tcp",
                                      f"outputs.syslog.framing={framing}", "outputs.syslog.format=rfc3164",
                                      "outputs.syslog.hostname=sensor-2")
        assert status == 0, err
        heads = check_delivered(rs, records, err)
    assert {(h[2], h[3]) for h in heads} == {("sensor-2", "netsentry")}


@needs_rsyslog
def test_min_severity_filters_and_cef_body(tmp_path: Path):
    port = free_port()
    with Rsyslog(tmp_path / "rs", f'input(type="imtcp" port="{port}" address="127.0.0.1")') as rs:
        status, err, records = replay(tmp_path, f"outputs.syslog.port={port}", "outputs.syslog.transport=tcp",
                                      "outputs.syslog.body=cef", "outputs.syslog.min-severity=crit")
        assert status == 0, err
        wanted = [r for r in records if r["alert"]["severity"] == 1]
        assert wanted and len(wanted) < len(records), "the capture has alerts on both sides of the filter"
        lines = rs.wait_lines(len(wanted))
        time.sleep(0.2)
        lines = rs.lines()
    assert len(lines) == len(wanted)
    for line, rec in zip(lines, wanted):
        msg = line.split("|", 7)[7]
        assert msg.startswith("CEF:0|netsentry|netsentry|")
        header = msg.split("|")
        assert header[4] == f"1:{rec['alert']['signature_id']}:{rec['alert']['rev']}"
        assert f"src={rec['src_ip']}" in msg and f"dst={rec['dest_ip']}" in msg


@needs_tls
@pytest.mark.parametrize("client_cert", [False, True])
def test_tls_verified_against_the_ca(tmp_path: Path, client_cert: bool):
    certs = make_certs(tmp_path / "certs")
    port = free_port()
    auth = "x509/certvalid" if client_cert else "anon"
    rs_globals = (f'DefaultNetstreamDriver="gtls" DefaultNetstreamDriverCAFile="{certs["ca"]}" '
                  f'DefaultNetstreamDriverCertFile="{certs["server"]}" '
                  f'DefaultNetstreamDriverKeyFile="{certs["server-key"]}"')
    inputs = (f'input(type="imtcp" port="{port}" address="127.0.0.1" StreamDriver.Name="gtls" '
              f'StreamDriver.Mode="1" StreamDriver.AuthMode="{auth}")')
    sets = [f"outputs.syslog.port={port}", "outputs.syslog.transport=tls", "outputs.syslog.server=127.0.0.1",
            "outputs.syslog.tls-name=localhost", f"outputs.syslog.ca-file={certs['ca']}"]
    if client_cert:
        sets += [f"outputs.syslog.cert-file={certs['client']}", f"outputs.syslog.key-file={certs['client-key']}"]
    with Rsyslog(tmp_path / "rs", inputs, globals_=rs_globals) as rs:
        status, err, records = replay(tmp_path, *sets)
        assert status == 0, err
        check_delivered(rs, records, err)


@needs_tls
def test_tls_with_the_wrong_ca_sends_nothing_and_never_falls_back(tmp_path: Path):
    certs = make_certs(tmp_path / "certs")
    port = free_port()
    rs_globals = (f'DefaultNetstreamDriver="gtls" DefaultNetstreamDriverCAFile="{certs["ca"]}" '
                  f'DefaultNetstreamDriverCertFile="{certs["server"]}" '
                  f'DefaultNetstreamDriverKeyFile="{certs["server-key"]}"')
    inputs = (f'input(type="imtcp" port="{port}" address="127.0.0.1" StreamDriver.Name="gtls" '
              f'StreamDriver.Mode="1" StreamDriver.AuthMode="anon")')
    with Rsyslog(tmp_path / "rs", inputs, globals_=rs_globals) as rs:
        status, err, records = replay(tmp_path, f"outputs.syslog.port={port}", "outputs.syslog.transport=tls",
                                      "outputs.syslog.tls-name=localhost", f"outputs.syslog.ca-file={certs['other-ca']}",
                                      "outputs.syslog.drain-timeout=1")
        time.sleep(0.3)
        assert rs.lines() == []
    assert status == 0, err
    assert "CERTIFICATE_VERIFY_FAILED" in err and "retrying" in err
    counts = closed_counts(err)
    assert counts["sent"] == 0 and counts["dropped"] == counts["produced"] == len(records) > 0


@needs_rsyslog
def test_local_socket(tmp_path: Path):
    sock = tmp_path / "log.sock"
    inputs = (f'module(load="imuxsock" SysSock.Use="off")\n'
              f'input(type="imuxsock" Socket="{sock}" CreatePath="on" RateLimit.Interval="0" '
              f'UseSysTimeStamp="off" IgnoreOwnMessages="off")')
    with Rsyslog(tmp_path / "rs", inputs) as rs:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        status, err, records = replay(tmp_path, "outputs.syslog.transport=unix", f"outputs.syslog.socket={sock}",
                                      "outputs.syslog.format=rfc3164")
        assert status == 0, err
        heads = check_delivered(rs, records, err)
    assert heads[0][3] == "netsentry"


def test_impossible_settings_are_config_errors(tmp_path: Path):
    for sets, key in ((["outputs.syslog.transport=sctp"], "outputs.syslog.transport"),
                      (["outputs.syslog.transport=tls"], "outputs.syslog.ca-file"),
                      (["outputs.syslog.transport=tls", f"outputs.syslog.ca-file={tmp_path}/none.pem"],
                       "outputs.syslog.ca-file"),
                      (["outputs.syslog.format=rfc9999"], "outputs.syslog.format"),
                      (["outputs.syslog.min-severity=loud"], "outputs.syslog.min-severity"),
                      (["outputs.syslog.receivers=[{transport: tcp, prot: 1}]"], "outputs.syslog.receivers[0].prot")):
        status, err, _ = replay(tmp_path, *sets)
        assert status == 2, (sets, err)
        lines = [ln for ln in err.splitlines() if ln.startswith("config error")]
        assert len(lines) == 1 and lines[0].startswith(f"config error: {key}:"), (sets, err)
        assert "Traceback" not in err


def test_receiver_down_at_start_is_a_logged_retry(tmp_path: Path):
    port = free_port()          # nothing listens there
    status, err, records = replay(tmp_path, f"outputs.syslog.port={port}", "outputs.syslog.transport=tcp",
                                  "outputs.syslog.drain-timeout=0.5")
    assert status == 0, err
    assert "output receiver unreachable, retrying" in err and "Traceback" not in err
    counts = closed_counts(err)
    assert counts["sent"] == 0 and counts["dropped"] == counts["produced"] == len(records) > 0


@needs_rsyslog
def test_more_receivers_each_get_their_records(tmp_path: Path):
    udp, tcp = free_port(socket.SOCK_DGRAM), free_port()
    inputs = (f'module(load="imudp")\ninput(type="imudp" port="{udp}" address="127.0.0.1")\n'
              f'input(type="imtcp" port="{tcp}" address="127.0.0.1")')
    with Rsyslog(tmp_path / "rs", inputs) as rs:
        status, err, records = replay(tmp_path, f"outputs.syslog.port={udp}",
                                      f"outputs.syslog.receivers=[{{transport: tcp, port: {tcp}, hostname: second}}]")
        assert status == 0, err
        lines = rs.wait_lines(2 * len(records))
    bodies = [parse(ln) for ln in lines]
    assert len(bodies) == 2 * len(records)
    second = [b for h, b in bodies if h[2] == "second"]
    first = [b for h, b in bodies if h[2] != "second"]
    assert second == records and first == records


@needs_rsyslog
def test_outage_receiver_frozen_during_a_replay(tmp_path: Path):
    """SIGSTOP the receiver during a replay: the replay's capture loop finishes while it is
    frozen, the queue keeps what it can (the rest is counted as dropped), what was queued
    arrives after SIGCONT, and sent + dropped == produced."""
    from test_logrotate import udp_pcap

    capture = tmp_path / "many.pcap"
    udp_pcap(capture, 20_000)
    rules = tmp_path / "every.rules"
    rules.write_text('alert udp any any -> any any (msg:"every packet"; sid:1; classtype:bad-unknown;)\n')
    port = free_port()
    logdir = tmp_path / "log"
    with Rsyslog(tmp_path / "rs", f'input(type="imtcp" port="{port}" address="127.0.0.1")') as rs:
        rs.freeze()
        proc = subprocess.Popen(
            [sys.executable, "-m", "netsentry", "replay", str(capture), "-S", str(rules), "-l", str(logdir), "-q",
             "--set", "anomaly.enabled=false", "--set", "outputs.eve-log.types=[alert, stats]",
             "--set", "outputs.syslog.enabled=true", "--set", "outputs.syslog.types=[alert]",
             "--set", "outputs.syslog.transport=tcp", "--set", f"outputs.syslog.port={port}",
             "--set", "outputs.syslog.queue-size=2000", "--set", "outputs.syslog.drain-timeout=60.0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        eve = logdir / "eve.json"
        err = thaw_after_the_capture_loop(proc, eve, rs)
        assert proc.returncode == 0, err
        counts = closed_counts(err)
        produced = sum(1 for line in eve.read_bytes().splitlines() if b'"event_type":"alert"' in line)
        assert counts["produced"] == produced == 20_000
        assert counts["sent"] + counts["dropped"] == produced
        assert counts["dropped"] > 0, "the queue bound was reached"
        lines = rs.wait_lines(counts["sent"])
        time.sleep(0.3)
        lines = rs.lines()
    got = [parse(ln)[1]["pcap_cnt"] for ln in lines]
    assert len(got) == len(set(got)) == counts["sent"]           # no duplicate, none lost once sent
    assert "output queue full, records dropped" in err


def test_full_queue_drops_the_least_severe_oldest_first():
    """A receiver that is down (nothing listens on the port): records stay queued; when the
    queue is full the oldest of the least severe class goes first, and a record less severe
    than everything queued is dropped itself."""
    from netsentry.output.sendqueue import SendQueue
    from netsentry.output.syslog_transport import TcpTransport, octet_counted

    q = SendQueue(TcpTransport("127.0.0.1", free_port(), octet_counted), 4, "test")
    try:
        q.put(b"info-1", 6)
        q.put(b"warn-1", 4)
        q.put(b"info-2", 6)
        q.put(b"crit-1", 2)
        q.put(b"err-1", 3)          # full: info-1 (oldest of the least severe) goes
        q.put(b"debug-1", 7)        # less severe than all queued: dropped itself
        q.put(b"crit-2", 2)         # info-2 goes
        with q._cond:
            kept = q._take()
        assert kept == [b"warn-1", b"crit-1", b"err-1", b"crit-2"]      # in queued order
        assert (q.produced, q.dropped) == (7, 3)
    finally:
        q.close(0.1)


def test_a_bad_network_output_setting_leaves_eve_json_untouched(tmp_path: Path):
    logdir = tmp_path / "log"
    logdir.mkdir()
    (logdir / "eve.json").write_text('{"yesterday": 1}\n')
    status, err, _ = replay(tmp_path, "outputs.syslog.transport=sctp")
    assert status == 2, err
    assert (logdir / "eve.json").read_text() == '{"yesterday": 1}\n'


@needs_rsyslog
def test_udp_messages_over_the_limit_are_cut_never_split(tmp_path: Path):
    port = free_port(socket.SOCK_DGRAM)
    limit = 480
    with Rsyslog(tmp_path / "rs", f'module(load="imudp")\ninput(type="imudp" port="{port}" address="127.0.0.1")') as rs:
        status, err, records = replay(tmp_path, f"outputs.syslog.port={port}",
                                      f"outputs.syslog.max-message-size={limit}")
        assert status == 0, err
        lines = rs.wait_lines(len(records))
        time.sleep(0.3)
        lines = rs.lines()
    eve_lines = (tmp_path / "log" / "eve.json").read_text().splitlines()
    assert len(lines) == len(eve_lines)                       # one datagram per record, none split
    cut = 0
    for line, full in zip(lines, eve_lines):
        body = line.split("|", 7)[7]
        assert full.startswith(body) and len(body) < limit    # a prefix of the record, within the limit
        cut += body != full
    assert cut == len(eve_lines)                              # these alerts are all longer than 480 bytes


def test_cef_escapes_and_maps_fields():
    from netsentry import __version__
    from netsentry.output.cef import cef_line

    rec = {"timestamp": "2024-01-02T03:04:05.678901+0100", "flow_id": 7, "event_type": "alert",
           "src_ip": "10.0.0.1", "src_port": 1, "dest_ip": "10.0.0.2", "dest_port": 80, "proto": "TCP",
           "alert": {"action": "blocked", "gid": 1, "signature_id": 42, "rev": 3, "signature": "a|b\\c",
                     "category": "x=y\nz", "severity": 1},
           "netsentry": {"assets": [{"name": "db", "criticality": "critical"}]}}
    line = cef_line(rec)
    head, ext = line.rsplit("|", 1)
    assert head == f"CEF:0|netsentry|netsentry|{__version__}|1:42:3|a\\|b\\\\c|10"
    assert ext.startswith("rt=1704161045678 src=10.0.0.1 spt=1 dst=10.0.0.2 dpt=80 proto=TCP act=blocked")
    assert "cat=x\\=y\\nz" in ext and "cn1=7 cn1Label=flowId" in ext and "cs2=db(critical) cs2Label=asset" in ext


@needs_rsyslog
def test_integrity_checkpoints_go_to_every_receiver(tmp_path: Path):
    key = tmp_path / "chain.key"
    key.write_bytes(b"k" * 32)
    port = free_port()
    with Rsyslog(tmp_path / "rs", f'input(type="imtcp" port="{port}" address="127.0.0.1")') as rs:
        status, err, records = replay(tmp_path, f"outputs.syslog.port={port}", "outputs.syslog.transport=tcp",
                                      "outputs.syslog.min-severity=crit",
                                      "outputs.eve-log.integrity=sha256-chain", f"outputs.eve-log.integrity-key={key}",
                                      "outputs.eve-log.integrity-checkpoint={records: 10, seconds: 0}")
        assert status == 0, err
        counts = closed_counts(err)
        lines = rs.wait_lines(counts["sent"])
    checkpoints = [json.loads(ln.split("|", 7)[7]) for ln in lines if ln.split("|")[5] == "integrity"]
    assert len(records) >= 10 and len(checkpoints) == len(records) // 10 + 1
    assert checkpoints[-1]["reason"] == "shutdown" and checkpoints[-1]["seq"] == len(records)
    assert counts["sent"] == counts["produced"]
