"""`netsentry run` without traffic: start-up checks, the live-mode sensor hooks, `ips rules`.

Everything wrong in the command line or configuration must stop start-up
with one line and exit 2 before any output file is opened (and before any
socket, which would need root). Live traffic is tested in
tests/capture/test_afpacket_ids.py and test_nfqueue_ips.py (namespaces).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP

from netsentry.cli import main
from netsentry.config import load_config
from netsentry.sensor import Sensor
from netsentry.output.memory import MemoryOutput as Collect


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    return rc, err


@pytest.mark.parametrize("args,message", [
    ([], "give -i IFACE or -q QUEUE"),
    (["-i", "lo", "-q", "0"], "not both"),
    (["-q", "1:x"], "nfq.queues: expected a queue number"),
    (["-q", "5:2"], "nfq.queues"),
    (["--set", "nfq.queues=[0, -1]"], "nfq.queues"),
    (["-i", "no-such-if0"], "af-packet.interfaces[0]: no such network interface: no-such-if0"),
    (["-i", "lo", "--set", "af-packet.bpf-filter=tcp prt 80"], "af-packet (lo): bpf filter 'tcp prt 80'"),
    (["-i", "lo", "--set", "af-packet.cluster-type=cluster_magic"], "cluster-type"),
    (["-i", "lo", "--set", "af-packet.snaplen=10"], "af-packet.interfaces[0].snaplen"),
    (["-i", "lo", "--set", "af-packet.ring=mmap"], "af-packet.ring"),
    (["-i", "lo", "--set", "af-packet.colour=blue"], "af-packet.colour: unknown key"),
    (["-i", "lo", "--set", "stats.interval=0"], "stats.interval"),
    (["-q", "0", "--set", "nfq.queue-maxlen=0"], "nfq.queue-maxlen"),
    (["-i", "lo", "-F", "/nonexistent/filter.bpf"], "/nonexistent/filter.bpf: cannot read BPF filter file"),
])
def test_bad_start_up_is_one_line_exit_2_and_opens_nothing(args: list[str], message: str, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    rc, err = run(["run", "-l", str(tmp_path)] + args, capsys)
    assert rc == 2
    assert message in err
    assert "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "eve.json").exists()


def test_interfaces_as_config_items(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("af-packet:\n  interfaces:\n    - lo\n    - interface: lo\n")
    rc, err = run(["run", "-c", str(cfg), "-l", str(tmp_path)], capsys)
    assert rc == 2 and "af-packet.interfaces[1]: interface lo is listed twice" in err
    cfg.write_text("af-packet:\n  interfaces:\n    - interface: lo\n      bpf-filter: 'udp port'\n")
    rc, err = run(["run", "-c", str(cfg), "-l", str(tmp_path)], capsys)
    assert rc == 2 and "bpf filter 'udp port'" in err


def test_interface_items_merge_the_section_defaults() -> None:
    from netsentry.capture.afpacket import interfaces_from_config
    cfg = load_config(None, ["af-packet.snaplen=1514", "af-packet.cluster-id=50"])
    cfg["af-packet"]["interfaces"] = ["eth0", {"interface": "eth1", "snaplen": 9000, "promisc": False}]
    eth0, eth1 = interfaces_from_config(cfg)
    assert (eth0.name, eth0.snaplen, eth0.promisc, eth0.cluster_id) == ("eth0", 1514, True, 50)
    # one fanout group per interface: the kernel ties a group to one device
    assert (eth1.name, eth1.snaplen, eth1.promisc, eth1.cluster_id) == ("eth1", 9000, False, 51)


@pytest.mark.parametrize("value,queues", [(0, [0]), ("3", [3]), ("0:3", [0, 1, 2, 3]), ("1,4", [1, 4]),
                                          ([2, "5:6"], [2, 5, 6]), (None, []), ("", [])])
def test_queue_specs(value: object, queues: list[int]) -> None:
    from netsentry.capture.nfqueue import parse_queues
    assert parse_queues(value) == queues


def test_tick_times_out_flows_without_packets() -> None:
    """A quiet link: the flow ends when wall-clock time passes its timeout, no packet needed."""
    out = Collect()
    sensor = Sensor(load_config(None, ["flow.timeouts.udp.new=5"]), [out])
    t0 = 1_700_000_000.0
    frame = bytes(IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / b"x")
    sensor.run([(t0, frame, len(frame), 101)])
    sensor.tick(t0 + 2)
    assert out.of("flow") == []
    sensor.tick(t0 + 7)
    flows = out.of("flow")
    assert len(flows) == 1 and flows[0].flow.end_reason == "timeout"
    sensor.counter_sources.append(lambda: {"capture.kernel_packets": 9})
    sensor.write_stats(t0 + 8)
    stats = out.of("stats")[-1].extra["stats"]
    assert stats["capture"]["kernel_packets"] == 9 and stats["decoder"]["pkts"] == 1


def test_tick_closes_anomaly_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The anomaly engine's second closes on a tick as it would on the next packet."""
    out = Collect()
    sensor = Sensor(load_config(None, []), [out])
    calls = []
    real = sensor.anomaly.tick
    monkeypatch.setattr(sensor.anomaly, "tick", lambda now: calls.append(now) or real(now))
    t0 = 1_700_000_000.25
    frame = bytes(IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / b"x")
    sensor.run([(t0, frame, len(frame), 101)])
    before = sensor.anomaly._tick
    sensor.tick(t0 + 3)
    assert calls == [t0 + 3]
    assert sensor.anomaly._tick == int(t0 + 3) and sensor.anomaly._tick != before


def test_ips_rules_prints_both_families(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ips", "rules", "--queues", "0:3"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "iptables -I FORWARD -j NFQUEUE --queue-balance 0:3 --queue-bypass",
        "ip6tables -I FORWARD -j NFQUEUE --queue-balance 0:3 --queue-bypass",
    ]
    assert main(["ips", "rules", "--queues", "2", "--chain", "INPUT"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "iptables -I INPUT -j NFQUEUE --queue-num 2 --queue-bypass"


def test_ips_rules_nft_syntax(capsys: pytest.CaptureFixture[str]) -> None:
    """nftables output, checked for syntax (`nft -c` where installed: the kernel here lacks nft queue)."""
    assert main(["ips", "rules", "--queues", "0:1", "--nft"]) == 0
    text = capsys.readouterr().out
    assert "table inet netsentry {" in text
    assert "type filter hook forward priority 0; policy accept;" in text
    assert "queue flags bypass to 0-1" in text
    assert text.count("{") == text.count("}")
    import shutil
    import subprocess
    if shutil.which("nft"):
        done = subprocess.run(["nft", "-c", "-f", "-"], input=text, capture_output=True, text=True)
        assert "syntax error" not in done.stderr, done.stderr


@pytest.mark.parametrize("args,message", [
    (["ips", "rules", "--queues", "1,3"], "one number or one range"),
    (["ips", "rules", "--queues", "x"], "--queues: expected a queue number"),
    (["ips", "rules"], "--queues"),
    (["ips"], "expected a subcommand: rules"),
])
def test_ips_rules_usage_errors(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc, err = run(args, capsys)
    assert rc == 2 and message in err


def test_set_reaches_the_capture_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, err = run(["run", "-l", str(tmp_path), "--set", "af-packet.interfaces=[no-such-if1]"], capsys)
    assert rc == 2 and "af-packet.interfaces[0]: no such network interface: no-such-if1" in err
    rc, err = run(["run", "-l", str(tmp_path), "--set", "nfq.queues=7:x"], capsys)
    assert rc == 2 and "nfq.queues" in err



def test_no_privilege_is_one_line_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Without root (CAP_NET_RAW) the packet socket cannot open: one line naming the interface."""
    import socket as socket_module
    real = socket_module.socket

    def refuse(family: int = -1, *args: object, **kwargs: object):
        if family == socket_module.AF_PACKET:
            raise PermissionError(1, "Operation not permitted")
        return real(family, *args, **kwargs)
    monkeypatch.setattr(socket_module, "socket", refuse)
    rc, err = run(["run", "-i", "lo", "-l", str(tmp_path)], capsys)
    assert rc == 1
    assert "af-packet lo: cannot open a packet socket: Operation not permitted (needs root or CAP_NET_RAW)" in err
    assert "\n" not in err
