"""Scans: a vertical port scan (one source, one host, many ports) and a horizontal
sweep (one source, one port or ICMP echo, many hosts).

Both count *probes*, once per flow at its first packet (the flow table has
already turned a packet stream into flows, so this is per flow, not per
packet):

- TCP: a first packet without ACK (SYN, FIN, NULL, XMAS, ...): a
  mid-conversation packet of a flow picked up midstream has ACK set and is
  not a probe. The scan type is named after the probe flags, as nmap names
  its scans; a SYN scan in which any probe completed the handshake is a
  ``connect`` scan (a full connect() per port; a SYN scanner resets instead).
- UDP: every new flow, except one that looks like a reply (client port
  below 1024 toward an ephemeral port, e.g. a DNS answer whose query we
  missed), so a resolver answering a client is not a scan of the client.
- ICMP echo request (type 8, ICMPv6 128) for sweeps.

Counts are per tumbling window of packet time; a key alerts once per
window at most (and once per ``alert-interval`` after de-duplication).
"""

from __future__ import annotations

from typing import Any

from netsentry.anomaly.alerts import Finding
from netsentry.anomaly.detector import FLAG_SYN_PROBE, Context, Detector, Tick, register
from netsentry.anomaly.flowstate import FlowState
from netsentry.anomaly.settings import Section
from netsentry.anomaly.window import TumblingWindow
from netsentry.decode.packet import ip_to_str

FIN, SYN, RST, PSH, ACK, URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20

# Probe flags (ACK excluded) -> nmap's name for the scan.
TCP_PROBES: dict[int, str] = {
    SYN: "SYN",
    FIN: "FIN",
    0: "NULL",
    FIN | PSH | URG: "XMAS",
    SYN | FIN: "SYN/FIN",
}
TYPE_NAMES = ["UDP", *TCP_PROBES.values(), "other"]
TYPE_CODES = {name: i for i, name in enumerate(TYPE_NAMES)}
UDP_CODE, SYN_CODE = TYPE_CODES["UDP"], TYPE_CODES["SYN"]
# TCP flags (low 6 bits) of a flow's first packet -> probe type code; -1: ACK set, no probe
TCP_CODE_BY_FLAGS = tuple(-1 if f & 0x10 else TYPE_CODES[TCP_PROBES.get(f & 0x2F, "other")]
                          for f in range(64))
DISTINCT_CAP = 10000          # per key: enough evidence; bounds a key's set under a full sweep
SAMPLE = 10                   # ports/hosts listed in the evidence
ECHO_REQUEST = {1: 8, 58: 128}
PROTO_NAME = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp"}

# Table keys are bytes, not tuples: a tuple is tracked by the garbage collector until a
# collection examines it, and two new keys per flow (port-scan, host-sweep) living for a
# whole window made a third of the young collections the engine caused on the bench
# capture. The parts are told apart by length (4- or 16-byte addresses):
#   port-scan   (src, dst, proto):  src + dst (TCP), src + dst + UDP_TAG (UDP)
#   host-sweep  (src, proto, port): src + PORT_BYTES[port] (TCP), ... + UDP_TAG (UDP),
#                                   src + ICMP_TAG[proto] (ICMP echo, port -1)
UDP_TAG = b"\x11"
ICMP_TAG = {1: b"\x01", 58: b"\x3a"}
PORT_BYTES = tuple(p.to_bytes(2, "big") for p in range(65536))


def scan_key_parts(key: bytes) -> tuple[bytes, bytes, int]:
    """(src, dst, proto) of a port-scan key."""
    n = len(key) >> 1
    return key[:n], key[n:2 * n], 17 if len(key) & 1 else 6


def sweep_key_parts(key: bytes) -> tuple[bytes, int, int]:
    """(src, proto, port) of a host-sweep key (port -1: ICMP echo)."""
    n = 4 if len(key) < 16 else 16
    rest = key[n:]
    if len(rest) == 1:
        return key[:n], rest[0], -1
    return key[:n], 6 if len(rest) == 2 else 17, rest[0] << 8 | rest[1]


@register("port-scan")
class PortScan(Detector):
    """Distinct destination ports per (source, target, protocol)."""


    def __init__(self, ctx: Context, sec: Section) -> None:
        super().__init__(ctx, sec)
        self.window = TumblingWindow(sec.count("window"))
        self.ports = sec.count("ports")
        self.min_ports = max(1, int(self.ports * ctx.min_factor))
        self.table = ctx.table("port-scan")
        self.candidates: dict[bytes, list] = {}

    def on_new_flows(self, flows: list[Any]) -> None:
        # the probe type as an int code from a table (no string per flow): this runs for
        # every TCP and UDP flow
        st: FlowState
        table = self.table
        data = table.data
        cap = table.cap
        ctx = self.ctx
        ignore_any = ctx.ignore_any     # read once, not per new key (Context is a plain object)
        candidates = self.candidates
        min_ports = self.min_ports
        for flow in flows:
            proto = flow.proto
            port = flow.server_port
            if proto == 6:
                st = flow.anomaly
                code = TCP_CODE_BY_FLAGS[st.first & 0x3F]     # the first packet's flags
                if code < 0:
                    continue
                if code == SYN_CODE:
                    st.flags |= FLAG_SYN_PROBE
                key = flow.client + flow.server
            elif proto != 17 or port == 53 or flow.client_port < 1024 <= port:
                continue        # not TCP/UDP, a DNS query flow (one port at most, never a scan), a reply
            else:
                code = UDP_CODE
                key = flow.client + flow.server + UDP_TAG
            v = data.get(key)
            if v is None:
                if ignore_any and ctx.ignored(flow.client):
                    continue
                # Most keys never see a second probe (a client talks to one port of a server):
                # keep the first as a plain int (port << 8 | type), no containers to allocate or
                # for the garbage collector to walk; bench_anomaly: -2.5 us per new flow.
                code = port << 8 | code
                if len(data) < cap:
                    data[key] = code
                else:
                    table.insert(key, code)
                continue
            if v.__class__ is int:
                if v == port << 8 | code:
                    continue                                # the same probe again
                # [ports, probes by type, connects, alerted]
                v = data[key] = [{v >> 8}, {TYPE_NAMES[v & 0xFF]: 1}, 0, False]
            ports = v[0]
            if len(ports) < DISTINCT_CAP:
                ports.add(port)
            types = v[1]
            ptype = TYPE_NAMES[code]
            types[ptype] = types.get(ptype, 0) + 1
            if len(ports) >= min_ports and not v[3]:
                candidates[key] = v

    def on_tick(self, tick: Tick) -> None:
        st: FlowState
        data = self.table.data
        for flow in tick.flagged:
            st = flow.anomaly
            # flow.established is False again once the scanner resets the connection, so a
            # completed handshake also shows as ACK + RST after the SYN (3 packets) with a reply
            if st.flags & FLAG_SYN_PROBE and (
                    flow.established or (flow.pkts_toserver >= 3 and flow.pkts_toclient >= 1)):
                st.flags &= ~FLAG_SYN_PROBE
                v = data.get(flow.client + flow.server)    # SYN probes are TCP
                if v is not None and v.__class__ is not int:
                    v[2] += 1

    def evaluate(self, now: float, out: list[Finding]) -> None:
        if not self.candidates:
            return
        for key, v in self.candidates.items():
            src, dst, proto = scan_key_parts(key)
            ports, types, connects = v[0], v[1], v[2]
            threshold = self.ports * self.ctx.factor(dst)
            if len(ports) < threshold:
                continue
            v[3] = True
            scan_type = max(types.items(), key=lambda kv: (kv[1], kv[0]))[0]
            if scan_type == "SYN" and connects:      # a SYN scanner never completes a handshake
                scan_type = "connect"
            kind = "tcp-port-scan" if proto == 6 else "udp-port-scan"
            out.append(Finding(
                kind=kind, detector=self.name,
                key=f"{ip_to_str(src)}>{ip_to_str(dst)}/{PROTO_NAME[proto]}",
                src=src, dst=dst, proto=proto, actor=src,
                evidence={"observed": len(ports), "unit": "distinct ports", "threshold": threshold,
                          "window": self.window.length, "distinct_ports": len(ports),
                          "scan_type": scan_type, "probes": dict(sorted(types.items())),
                          "ports_sample": sorted(ports)[:SAMPLE]}))
        self.candidates.clear()

    def roll(self, ts: float) -> None:
        if self.window.roll(ts):
            self.table.clear()
            self.candidates.clear()


@register("host-sweep")
class HostSweep(Detector):
    """Distinct destination hosts per (source, protocol, destination port | ICMP echo)."""


    def __init__(self, ctx: Context, sec: Section) -> None:
        super().__init__(ctx, sec)
        self.window = TumblingWindow(sec.count("window"))
        self.hosts = sec.count("hosts")
        self.min_hosts = max(1, int(self.hosts * ctx.min_factor))
        self.table = ctx.table("host-sweep")
        self.candidates: dict[bytes, list] = {}

    def on_new_flows(self, flows: list[Any]) -> None:
        st: FlowState
        table = self.table
        data = table.data
        cap = table.cap
        ctx = self.ctx
        ignore_any = ctx.ignore_any     # read once, not per new key (Context is a plain object)
        candidates = self.candidates
        min_hosts = self.min_hosts
        for flow in flows:
            proto = flow.proto
            st = flow.anomaly
            if proto == 6:          # the probe test inlined: this runs for nearly every flow
                if st.first & ACK:                 # the first packet's flags
                    continue
                key = flow.client + PORT_BYTES[flow.server_port]
            elif proto == 17:
                port = flow.server_port
                if flow.client_port < 1024 <= port:
                    continue
                key = flow.client + PORT_BYTES[port] + UDP_TAG
            elif ECHO_REQUEST.get(proto) == st.first:   # its ICMP type
                key = flow.client + ICMP_TAG[proto]
            else:
                continue
            v = data.get(key)
            dst = flow.server
            if v is None:
                if ignore_any and ctx.ignored(flow.client):
                    continue
                # the first host as plain bytes (no container): most keys see one host
                if len(data) < cap:
                    data[key] = dst
                else:
                    table.insert(key, dst)
                continue
            if v.__class__ is bytes:
                if v == dst:
                    continue
                v = data[key] = [{v: True}, False]      # hosts (insertion-ordered), alerted
            hosts = v[0]
            if len(hosts) < DISTINCT_CAP:
                hosts[dst] = True
            if len(hosts) >= min_hosts and not v[1]:
                candidates[key] = v

    def evaluate(self, now: float, out: list[Finding]) -> None:
        if not self.candidates:
            return
        for key, v in self.candidates.items():
            src, proto, port = sweep_key_parts(key)
            hosts = v[0]
            threshold = self.hosts * self.ctx.factor(src)
            if len(hosts) < threshold:
                continue
            v[1] = True
            last = next(reversed(hosts))
            if port < 0:
                kind, what = "icmp-host-sweep", "echo"
            else:
                kind, what = ("tcp-host-sweep" if proto == 6 else "udp-host-sweep"), str(port)
            out.append(Finding(
                kind=kind, detector=self.name,
                key=f"{ip_to_str(src)}>*:{what}/{PROTO_NAME[proto]}",
                src=src, dst=last, proto=proto, dp=max(port, 0), actor=src,
                evidence={"observed": len(hosts), "unit": "distinct hosts", "threshold": threshold,
                          "window": self.window.length, "distinct_hosts": len(hosts),
                          "port": None if port < 0 else port,
                          "scan_type": "ICMP echo" if port < 0 else ("TCP" if proto == 6 else "UDP"),
                          "hosts_sample": sorted(ip_to_str(h) for h in list(hosts)[:SAMPLE])}))
        self.candidates.clear()

    def roll(self, ts: float) -> None:
        if self.window.roll(ts):
            self.table.clear()
            self.candidates.clear()
