"""Console output: fast.log-style lines."""

from __future__ import annotations

import io

from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.l2 import Ether

from netsentry.config import load_defaults
from netsentry.decode import Decoder
from netsentry.event import Alert, Event
from netsentry.output import OutputContext, open_outputs
from netsentry.output.console import format_line

TS = 1491603877.251547


def decode(frame):
    pkt = Decoder().decode(bytes(frame), 1)
    pkt.ts = TS
    return pkt


def test_alert_line_is_fast_log_layout():
    pkt = decode(Ether() / IP(src="192.168.2.14", dst="209.53.113.5") / TCP(sport=50096, dport=80))
    line = format_line(Event("alert", TS, pkt, None, Alert(2018358, "ET HUNTING thing", rev=10,
                                                             category="Potentially Bad Traffic", severity=2)))
    assert line == ("04/07/2017-22:24:37.251547  [**] [1:2018358:10] ET HUNTING thing [**] "
                    "[Classification: Potentially Bad Traffic] [Priority: 2] "
                    "{TCP} 192.168.2.14:50096 -> 209.53.113.5:80")


def test_icmp_has_no_ports_and_blocked_is_marked_drop():
    pkt = decode(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP())
    line = format_line(Event("alert", TS, pkt, None, Alert(7, "ping", action="blocked")))
    assert line.startswith("04/07/2017-22:24:37.251547  [Drop] [**] [1:7:0] ping [**]")
    assert line.endswith("{ICMP} 10.0.0.1 -> 10.0.0.2")


def test_console_output_writes_lines_for_its_types_only():
    cfg = load_defaults()["outputs"]
    cfg["eve-log"]["enabled"] = False
    cfg["console"]["enabled"] = True
    buf = io.StringIO()
    (out,) = open_outputs(cfg, OutputContext(stdout=buf))
    assert out.wants("alert") and out.wants("drop") and not out.wants("flow")
    pkt = decode(Ether() / IP() / TCP())
    out.emit(Event("alert", TS, pkt, None, Alert(1, "one")))
    out.close()
    assert buf.getvalue().count("\n") == 1 and "[1:1:0] one" in buf.getvalue()


def test_anomaly_alert_about_hosts_shows_only_what_applies():
    import socket

    from netsentry.anomaly.alerts import Finding, make_event
    spike = make_event(Finding("traffic-spike-packets", "traffic-spike", "10.0.0.9",
                               socket.inet_aton("10.0.0.9"), b"", 0, {}), 1.0, 3, 0)
    line = format_line(spike)
    assert line.endswith("[Priority: 3] 10.0.0.9") and "HOPOPT" not in line and "0.0.0.0" not in line
    scan = make_event(Finding("tcp-port-scan", "port-scan", "k", socket.inet_aton("10.0.0.1"),
                              socket.inet_aton("10.0.0.2"), 6, {}), 1.0, 3, 0)
    assert format_line(scan).endswith("{TCP} 10.0.0.1 -> 10.0.0.2")
