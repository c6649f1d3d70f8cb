# cython: annotation_typing=False
"""EVE JSON output (``outputs.eve-log``): one JSON object per line, Suricata's schema.

Field names, order and text forms follow Suricata's own writers
(output-json.c's header, output-json-alert.c, -flow.c, -drop.c, -anomaly.c,
-stats.c) so SIEM parsers written for Suricata read our file unchanged:

- every packet record starts ``timestamp, flow_id, pcap_cnt, event_type,
  vlan, src_ip, src_port, dest_ip, dest_port, proto, ip_v, icmp_type,
  icmp_code, pkt_src``; ports only for TCP/UDP/SCTP, ICMP type/code only for
  ICMP/ICMPv6, as Suricata 8 writes them;
- alerts add ``alert{...}``, ``tunnel{...}`` for tunnelled packets (the outer
  header), ``app_proto``, ``direction`` and a ``flow{...}`` sub-object whose
  src/dest are the flow's client/server;
- flow records take src/dest from the flow's client/server and the
  timestamp of the moment the flow ended (packet time in replay).

``Event.extra`` is merged at the top level last: Suricata's own objects
(``stats``, the decoder ``anomaly`` record) and the one ``netsentry`` object
holding everything that is ours (the schema check excludes exactly
``netsentry`` and ``stats.netsentry``).

`render` gives a record as plain dicts; the file writer (`EveLog`, `encode`)
builds the same record with shortcuts, each measured with bench/bench_eve.py
and checked byte for byte by tests/output/test_eve_encode.py: the alert
object is serialised once per Alert (`alert_fragment`); a record's own
timestamp is reused from the previous record when the time is the same
(`fields.format_record_time`); the usual alert (a TCP/UDP packet of a flow)
is two dict displays (`_usual_alert`); options that add fields are applied
only when one is configured (`EveLog._with_options`). Compiled, fields.py
writes timestamps and IPv4 addresses in C, and the usual alert and flow
records as whole lines straight into one C block that goes to the file about
1 MiB at a time (`fields.LineBuffer`: the same bytes, without the dicts, a
bytes object or a file call per line; any other shape is written by the dicts
and copied into the block in order); on the pure path a
flow's address and start text are made once and kept on the flow
(`flow_texts`, `Flow.eve`).

Adding a field (keep Suricata's order; the record is a dict, so the order is
the order of insertion):
- to a record type: in its renderer in `RENDERERS` (a new event type is one
  function and one line there); for alerts, in `_usual_alert` *and* in the
  general `_alert` (the usual case returns early), and a case in
  tests/output/test_eve_encode.py's `reference` so both are checked; and in
  fields.py's `alert_line`/`flow_line` (compiled), which
  tests/output/test_eve_lines.py compares with the dicts;
- app-layer records (http, dns, tls, ...): their builder puts the object in
  `Event.extra`, which every renderer merges last; no change here;
- a configurable addition (an ``outputs.eve-log`` option): a step in
  `EveLog._with_options` and its setting in `EveLog._set_options`, so the
  default configuration keeps its one-call path.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from netsentry.config import ConfigError
from netsentry.detect.bypass import BYPASS
from netsentry.detect.bypass import flow_counters as bypassed_flow_counters
from netsentry.detect.sctp import sctp_eve
from netsentry.decode.igmp import eve as igmp_eve
from netsentry.detect.actions import PASS_ALERT_RULES
from netsentry.event import MATCH_PACKET, MATCH_STREAM, Alert, Event, HostPacket
from netsentry.exception_policy import EP_FLOW_DROP_REASON, dropped_by_policy
from netsentry.output import Output, OutputContext, check_event_types, register
from netsentry.output.integrity import ChainWriter, IntegrityConfig
from netsentry.output.fields import COMPILED as FIELDS_COMPILED
from netsentry.output.fields import LINES as FIELDS_LINES
from netsentry.output.fields import (
    ICMP_PROTOS,
    PORT_PROTOS,
    LineBuffer,
    PROTO_TEXT,
    alert_context,
    alert_line,
    eve_vars,
    flow_line,
    format_ip,
    record_line,
    set_ipv6_compress,
    set_line_hooks,
    format_record_time,
    format_timestamp,
)

_DUMPS = orjson.dumps
_NEWLINE = orjson.OPT_APPEND_NEWLINE
PKT_SRC = "wire/pcap"

# The flow record's tcp{} as Suricata writes it: the flags of both directions ORed, of
# each direction, as two lowercase hex digits, then one boolean per flag that was seen
# (in Suricata's order), then the TCP state. Per flags byte, precomputed.
_TCP_FLAG_NAMES = ((0x02, "syn"), (0x01, "fin"), (0x04, "rst"), (0x08, "psh"),
                   (0x10, "ack"), (0x20, "urg"), (0x40, "ecn"), (0x80, "cwr"))
_OBJECTS = (dict, orjson.Fragment)     # a record's objects (alert{}, flow{}, ...) follow its head
_HEX2 = tuple(f"{b:02x}" for b in range(256))
_TCP_FLAG_ITEMS = tuple(tuple((name, True) for bit, name in _TCP_FLAG_NAMES if b & bit) for b in range(256))


def _flow_texts_kept(flow: Any) -> tuple[str, str, str]:
    """The flow's client and server addresses and start time as EVE text, made on the
    flow's first record and kept on it (`Flow.eve`): the pure path's `flow_texts`.

    They never change, and every alert of a flow and its flow record write all
    three. The shared address cache (`format_ip`, 65,536 entries) misses on
    captures with more hosts than that (151k addresses on the 1M bench
    capture; a miss costs 0.4 us, a hit 0.07 us), and flow records come long
    after the flow's packets, so they missed almost always.
    """
    texts = flow.eve
    if texts is None:
        texts = flow.eve = (format_ip(flow.client), format_ip(flow.server), format_timestamp(flow.start))
    return texts


def _flow_texts_made(flow: Any) -> tuple[str, str, str]:
    """The compiled path's `flow_texts`: made each time, kept nowhere. output/fields.py
    formats an IPv4 address in 0.08 us and a time in 0.16 us there, so keeping them
    would save little and cost every flow that alerts 144 bytes while it lives (the
    tuple and the start text)."""
    return format_ip(flow.client), format_ip(flow.server), format_timestamp(flow.start)


# `Flow.eve` is only ever set on the pure path; readers write `flow.eve or flow_texts(flow)`.
KEEP_FLOW_TEXT = not FIELDS_COMPILED
flow_texts: Callable[[Any], tuple[str, str, str]] = _flow_texts_kept if KEEP_FLOW_TEXT else _flow_texts_made


# The protocols of the usual record shapes (`_usual_alert`, packet_header's first branch):
# SCTP has ports too, but its header carries an ``sctp{}`` object (detect/sctp.py), so it
# takes the general path.
USUAL_PROTOS = frozenset((6, 17))
IPPROTO_SCTP = 132
IPPROTO_IGMP = 2


def packet_header(event_type: str, ts: float, pkt: Any, flow: Any) -> dict[str, Any]:
    """The common head of a packet record (Suricata's CreateEveHeader, packet direction)."""
    proto = pkt.proto
    if flow is not None and proto in USUAL_PROTOS and pkt.pcap_cnt and pkt.ip_version and not pkt.vlan:
        # the usual alert: one dict display instead of ~10 tests and item stores, and
        # (pure path) the addresses' text from the flow when the packet's are the flow's
        src, dst = pkt.src, pkt.dst
        if KEEP_FLOW_TEXT:
            client, server, _ = flow.eve or flow_texts(flow)
            if src == flow.client and dst == flow.server:
                src_ip, dest_ip = client, server
            elif src == flow.server and dst == flow.client:
                src_ip, dest_ip = server, client
            else:
                src_ip, dest_ip = format_ip(src), format_ip(dst)
        else:
            src_ip, dest_ip = format_ip(src), format_ip(dst)
        return {"timestamp": format_record_time(ts), "flow_id": flow.flow_id, "pcap_cnt": pkt.pcap_cnt,
                "event_type": event_type, "src_ip": src_ip, "src_port": pkt.sp,
                "dest_ip": dest_ip, "dest_port": pkt.dp, "proto": PROTO_TEXT[proto],
                "ip_v": pkt.ip_version, "pkt_src": PKT_SRC if pkt.tunnel is None else tunnel_src(pkt)}
    rec: dict[str, Any] = {"timestamp": format_record_time(ts)}
    if flow is not None:
        rec["flow_id"] = flow.flow_id
    if pkt.pcap_cnt:
        rec["pcap_cnt"] = pkt.pcap_cnt
    rec["event_type"] = event_type
    if pkt.vlan:
        rec["vlan"] = list(pkt.vlan)
    version = pkt.ip_version
    if version:
        rec["src_ip"] = format_ip(pkt.src)
        if proto in PORT_PROTOS:
            rec["src_port"] = pkt.sp
        rec["dest_ip"] = format_ip(pkt.dst)
        if proto in PORT_PROTOS:
            rec["dest_port"] = pkt.dp
        rec["proto"] = PROTO_TEXT[proto & 0xFF]
        rec["ip_v"] = version
        if proto in ICMP_PROTOS and pkt.icmp_type >= 0:
            rec["icmp_type"] = pkt.icmp_type
            rec["icmp_code"] = pkt.icmp_code
        elif proto == IPPROTO_SCTP:
            sctp = sctp_eve(pkt)
            if sctp is not None:
                rec["sctp"] = sctp
        elif proto == IPPROTO_IGMP:
            igmp = igmp_eve(pkt)        # Suricata's igmp {type, version} / rgmp {type}
            if igmp is not None:
                rec[igmp[0]] = igmp[1]
    if pkt.tunnel is None:
        # a packet without a number is no captured one: the stream stage's flow-end pseudo
        # packet names itself (stream/tcp.py StreamEndPacket: "stream (flow timeout)")
        rec["pkt_src"] = PKT_SRC if pkt.pcap_cnt else getattr(pkt, "pkt_src", PKT_SRC)
    else:
        rec["pkt_src"] = tunnel_src(pkt)
    return rec


# Suricata's pkt_src of a packet a tunnel decoder made (decode.c PktSrcToString), by
# (outer header is IPv4, outer protocol)
_TUNNEL_SRC = {(True, 47): "gre tunnel", (False, 47): "gre tunnel", (True, 4): "ipv4 tunnel",
               (True, 41): "ipv4 tunnel", (False, 4): "ipv6 tunnel", (False, 41): "ipv6 tunnel"}


def tunnel_src(pkt: Any) -> str:
    """pkt_src of a tunnelled packet: the decoder that found it ("ipv4 tunnel", ...)."""
    tunnel = pkt.tunnel
    if len(tunnel) > 5:             # a UDP tunnel names its decoder (decode/udptunnel.py)
        return tunnel[5]
    return _TUNNEL_SRC.get((len(tunnel[0]) == 4, tunnel[2]), PKT_SRC)


def host_header(event_type: str, ts: float, pkt: HostPacket) -> dict[str, Any]:
    """The head of a record about hosts, not one packet (`HostPacket`: anomaly alerts).

    Only what applies: the source; the destination, protocol and ports when
    the finding has them. No flow_id (there is no flow) and no pkt_src (no
    packet was captured as this record's own).
    """
    rec: dict[str, Any] = {"timestamp": format_record_time(ts)}
    if pkt.pcap_cnt:
        rec["pcap_cnt"] = pkt.pcap_cnt
    rec["event_type"] = event_type
    proto = pkt.proto
    ports = proto in PORT_PROTOS
    rec["src_ip"] = format_ip(pkt.src)
    if ports and pkt.sp:
        rec["src_port"] = pkt.sp
    if pkt.dst:
        rec["dest_ip"] = format_ip(pkt.dst)
        if ports and pkt.dp:
            rec["dest_port"] = pkt.dp
    if proto:
        rec["proto"] = PROTO_TEXT[proto & 0xFF]
    rec["ip_v"] = pkt.ip_version
    return rec


def flow_header(event_type: str, ts: float, flow: Any) -> dict[str, Any]:
    """The head of a flow-level record: src is the client (Suricata's CreateEveHeaderFromFlow)."""
    proto = flow.proto
    client, server, _ = flow.eve or flow_texts(flow)
    rec: dict[str, Any] = {"timestamp": format_record_time(ts), "flow_id": flow.flow_id,
                           "event_type": event_type}
    if flow.vlan:
        rec["vlan"] = list(flow.vlan)
    rec["src_ip"] = client
    if proto in PORT_PROTOS:
        rec["src_port"] = flow.client_port
    rec["dest_ip"] = server
    if proto in PORT_PROTOS:
        rec["dest_port"] = flow.server_port
    if flow.ip_version:
        rec["ip_v"] = flow.ip_version
    rec["proto"] = PROTO_TEXT[proto & 0xFF]
    return rec


def flow_state(flow: Any) -> str:
    """Suricata's flow-level state: new, established or closed (the flow table keeps it)."""
    state = getattr(flow, "state", None)
    if state:
        return state
    if flow.tcp_state == "closed":
        return "closed"
    return "established" if flow.established else "new"


# eve-log alert `reference: yes` (Suricata's metadata.rule.reference, default off): the
# rule's references as URLs in the alert; one switch per process, as ipv6-compress
_REFERENCES = [False]


def alert_object(alert: Alert) -> dict[str, Any]:
    """The ``alert{}`` object as a dict (Suricata's AlertJsonHeader order)."""
    body: dict[str, Any] = {
        "action": alert.action,
        "gid": alert.gid,
        "signature_id": alert.signature_id,
        "rev": alert.rev,
        "signature": alert.signature,
        "category": alert.category,
        "severity": alert.severity,
    }
    if alert.references and _REFERENCES[0]:
        body["references"] = list(alert.references)
    if alert.metadata:
        body["metadata"] = alert.metadata
    return body


def alert_fragment(alert: Alert) -> orjson.Fragment:
    """The ``alert{}`` object already serialised, made once per `Alert` and kept on it.

    Every event of a rule and action shares one Alert (event.py), so the
    writer serialises its 7-8 fields once instead of building and dumping a
    dict per event; orjson copies a Fragment's bytes as they are, so the line
    is byte-identical to dumping `alert_object`. Alerts are frozen; a copy
    made by `dataclasses.replace` (raised severity) gets its own.
    """
    frag = alert.eve
    if frag is None:
        frag = orjson.Fragment(_DUMPS(alert_object(alert)))
        object.__setattr__(alert, "eve", frag)      # frozen dataclass: the cache slot only
    return frag


def alert_json(alert: Alert) -> bytes:
    """The ``alert{}`` object serialised, as bytes, made once per `Alert` and kept on it
    (`Alert.eve_json`): what the compiled line writer splices in (`fields.alert_line`)."""
    data = alert.eve_json
    if data is None:
        data = _DUMPS(alert_object(alert))
        object.__setattr__(alert, "eve_json", data)     # frozen dataclass: the cache slot only
    return data


# How a renderer writes the alert object: `alert_object` (a dict, for `render`)
# or `alert_fragment` (pre-serialised, for the file writer).
AlertForm = Callable[[Alert], Any]


def _alert(event: Event, alert_form: AlertForm) -> dict[str, Any]:
    pkt, flow, alert = event.pkt, event.flow, event.alert
    if (flow is not None and alert is not None and pkt is not None and pkt.tunnel is None
            and pkt.proto in USUAL_PROTOS and pkt.pcap_cnt and pkt.ip_version and not pkt.vlan
            and pkt.__class__ is not HostPacket):
        return _usual_alert(event.ts, pkt, flow, alert_form(alert))
    if pkt is None:                      # an engine alert about a flow, not a packet
        rec = flow_header("alert", event.ts, flow) if flow is not None else _bare("alert", event.ts)
    elif pkt.__class__ is HostPacket:    # an engine alert about hosts
        rec = host_header("alert", event.ts, pkt)
    else:
        rec = packet_header("alert", event.ts, pkt, flow)
    if alert is not None:
        rec["alert"] = alert_form(alert)
    if pkt is not None and pkt.tunnel is not None:
        outer = pkt.tunnel
        outer_src, outer_dst, outer_proto = outer[0], outer[1], outer[2]
        tunnel: dict[str, Any] = {
            "src_ip": format_ip(outer_src), "src_port": outer[3] if len(outer) > 3 else 0,
            "dest_ip": format_ip(outer_dst), "dest_port": outer[4] if len(outer) > 4 else 0,
            # nested tunnels: detect/tunnel.py puts the root's addresses and the depth here
            "proto": PROTO_TEXT[outer_proto & 0xFF], "depth": outer[7] if len(outer) > 7 else 1,
        }
        if pkt.pcap_cnt:
            tunnel["pcap_cnt"] = pkt.pcap_cnt
        tunnel["pkt_src"] = PKT_SRC
        rec["tunnel"] = tunnel
    if flow is not None:
        if flow.app_proto:
            rec["app_proto"] = flow.app_proto
        if pkt is not None:
            rec["direction"] = "to_server" if pkt.to_server else "to_client"
        # Suricata's EveAddFlow fields (pkts/bytes per direction, start), then the
        # client/server: one dict display, as in _flow
        client, server, start = flow.eve or flow_texts(flow)
        sub = {
            "pkts_toserver": flow.pkts_toserver,
            "pkts_toclient": flow.pkts_toclient,
            "bytes_toserver": flow.bytes_toserver,
            "bytes_toclient": flow.bytes_toclient,
            "start": start,
            "src_ip": client,
            "dest_ip": server,
        }
        if flow.proto in PORT_PROTOS:
            sub["src_port"] = flow.client_port
            sub["dest_port"] = flow.server_port
        rec["flow"] = sub
    return rec


def _usual_alert(ts: float, pkt: Any, flow: Any, alert: Any) -> dict[str, Any]:
    """`_alert` of the usual case (a TCP/UDP/SCTP packet of a flow, not tunnelled, no
    VLAN): the same record as the general path, in two dict displays, and the
    packet's address text from the flow's when they are the flow's (always, but
    for ICMP errors quoting another flow's packet)."""
    client, server, start = flow.eve or flow_texts(flow)
    src, dst = pkt.src, pkt.dst
    fclient, fserver = flow.client, flow.server
    if src == fclient and dst == fserver:
        src_ip, dest_ip = client, server
    elif src == fserver and dst == fclient:
        src_ip, dest_ip = server, client
    else:
        src_ip, dest_ip = format_ip(src), format_ip(dst)
    rec = {"timestamp": format_record_time(ts), "flow_id": flow.flow_id, "pcap_cnt": pkt.pcap_cnt,
           "event_type": "alert", "src_ip": src_ip, "src_port": pkt.sp,
           "dest_ip": dest_ip, "dest_port": pkt.dp, "proto": PROTO_TEXT[pkt.proto],
           "ip_v": pkt.ip_version, "pkt_src": PKT_SRC, "alert": alert}
    app_proto = flow.app_proto
    if app_proto:
        rec["app_proto"] = app_proto
    rec["direction"] = "to_server" if pkt.to_server else "to_client"
    if flow.proto in PORT_PROTOS:
        rec["flow"] = {"pkts_toserver": flow.pkts_toserver, "pkts_toclient": flow.pkts_toclient,
                       "bytes_toserver": flow.bytes_toserver, "bytes_toclient": flow.bytes_toclient,
                       "start": start, "src_ip": client, "dest_ip": server,
                       "src_port": flow.client_port, "dest_port": flow.server_port}
    else:
        rec["flow"] = {"pkts_toserver": flow.pkts_toserver, "pkts_toclient": flow.pkts_toclient,
                       "bytes_toserver": flow.bytes_toserver, "bytes_toclient": flow.bytes_toclient,
                       "start": start, "src_ip": client, "dest_ip": server}
    return rec


def _flow(event: Event, alert_form: AlertForm) -> dict[str, Any]:
    """The flow record. Written once per flow, so on flow-heavy traffic it is the
    output's hot path: one dict display instead of helper calls and item stores.
    With the closure timestamp formatter: 100k TCP flow records rendered and
    serialised in 6.0 us each (min of 6 runs), 7.3 us before (process time)."""
    flow = event.flow
    proto = flow.proto
    start = flow.start
    last = flow.last_seen
    ts = format_timestamp
    client, server, start_text = flow.eve or flow_texts(flow)
    counters = {
        "pkts_toserver": flow.pkts_toserver,
        "pkts_toclient": flow.pkts_toclient,
        "bytes_toserver": flow.bytes_toserver,
        "bytes_toclient": flow.bytes_toclient,
        "start": start_text,
        "end": ts(last),
        "age": int(last) - int(start),
        "state": flow.state or flow_state(flow),     # the flow table keeps it: no call
        "reason": flow.end_reason or "unknown",
        "alerted": bool(flow.alerted),
    }
    if flow.action is not None and flow.action in ("drop", "pass", "accept"):
        counters["action"] = flow.action
    elif flow.action == BYPASS:
        counters = bypassed_flow_counters(counters)
    if flow.exception_policy is not None:   # after action, as Suricata writes it
        counters["exception_policy"] = [{"target": t, "policy": p} for t, p in flow.exception_policy]
    if proto in PORT_PROTOS:
        rec: dict[str, Any] = {
            "timestamp": format_record_time(event.ts), "flow_id": flow.flow_id, "event_type": "flow",
            "src_ip": client, "src_port": flow.client_port,
            "dest_ip": server, "dest_port": flow.server_port,
            "ip_v": flow.ip_version, "proto": PROTO_TEXT[proto],
        }
        if flow.vlan:               # Suricata writes vlan right after event_type
            rec = _with_vlan(rec, flow.vlan)
    else:
        rec = flow_header("flow", event.ts, flow)
        icmp = flow.icmp
        if icmp is not None:            # as Suricata: after proto, then the first reply's if any
            rec["icmp_type"], rec["icmp_code"] = icmp[0], icmp[1]
            if len(icmp) == 4:
                rec["response_icmp_type"], rec["response_icmp_code"] = icmp[2], icmp[3]
    if flow.app_proto:
        rec["app_proto"] = flow.app_proto
    rec["flow"] = counters
    if proto == 6:
        flags = (flow.tcp_flags_ts & 0xFF) | (flow.tcp_flags_tc & 0xFF) << 8
        state = flow.tcp_state
        if alert_form is alert_fragment:        # the file writer: the object pre-serialised
            by_flags = _TCP_FRAGMENTS.get(state)
            if by_flags is None:
                by_flags = _TCP_FRAGMENTS[state] = {}
            frag = by_flags.get(flags)
            if frag is None:
                frag = by_flags[flags] = orjson.Fragment(_DUMPS(tcp_object(flags, state)))
            rec["tcp"] = frag
        else:
            rec["tcp"] = tcp_object(flags, state)
    return rec


# The flow record's tcp{} serialised, by TCP state and (client flags | server flags << 8):
# it depends on nothing else, and a capture shows few combinations (about 60 on the
# 1M bench capture), so each is serialised once instead of a dict of ~10 items per
# TCP flow record. At most 11 states x 65,536 flag pairs, in practice far fewer.
_TCP_FRAGMENTS: dict[str, dict[int, orjson.Fragment]] = {}


def tcp_json(flags: int, state: str) -> bytes:
    """`tcp_object` serialised, kept per (state, flags) as `_TCP_FRAGMENTS` is: the compiled
    flow line writer's ``tcp{}`` (`fields.flow_line`)."""
    by_flags = _TCP_JSON.get(state)
    if by_flags is None:
        by_flags = _TCP_JSON[state] = {}
    data = by_flags.get(flags)
    if data is None:
        data = by_flags[flags] = _DUMPS(tcp_object(flags, state))
    return data


_TCP_JSON: dict[str, dict[int, bytes]] = {}


def tcp_object(flags: int, state: str) -> dict[str, Any]:
    """The flow record's ``tcp{}``: `flags` is the client's flags | the server's << 8."""
    ts_flags = flags & 0xFF
    tc_flags = flags >> 8
    both = ts_flags | tc_flags
    tcp = {"tcp_flags": _HEX2[both], "tcp_flags_ts": _HEX2[ts_flags], "tcp_flags_tc": _HEX2[tc_flags]}
    tcp.update(_TCP_FLAG_ITEMS[both])
    if state and state != "none":
        tcp["state"] = state
    return tcp


def _with_vlan(rec: dict[str, Any], vlan: tuple[int, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in rec.items():
        out[key] = value
        if key == "event_type":
            out["vlan"] = list(vlan)
    return out


def _drop(event: Event, alert_form: AlertForm) -> dict[str, Any]:
    """Suricata's drop record; `event.alert` is the rule that dropped this packet, if one did."""
    pkt, flow = event.pkt, event.flow
    rec = packet_header("drop", event.ts, pkt, flow)
    if flow is not None:
        rec["direction"] = "to_server" if pkt.to_server else "to_client"
    drop: dict[str, Any] = {}
    if pkt.ip_version == 4:
        drop.update(len=pkt.ip_len, tos=pkt.tos, ttl=pkt.ttl, ipid=pkt.ip_id)
    elif pkt.ip_version == 6:
        drop.update(len=max(pkt.ip_len - 40, 0), tc=pkt.tos, hoplimit=pkt.ttl)
    proto = pkt.proto
    if proto == 6 and pkt.l4_off >= 0:
        flags = pkt.tcp_flags
        drop.update(tcpseq=pkt.seq, tcpack=pkt.ack, tcpwin=pkt.win,
                    syn=bool(flags & 0x02), ack=bool(flags & 0x10), psh=bool(flags & 0x08),
                    rst=bool(flags & 0x04), urg=bool(flags & 0x20), fin=bool(flags & 0x01))
    elif proto == 17 and pkt.l4_off >= 0:
        drop["udplen"] = pkt.payload_len + 8
    elif proto in ICMP_PROTOS and pkt.icmp_id >= 0:
        drop.update(icmp_id=pkt.icmp_id, icmp_seq=pkt.icmp_seq)
    reason = pkt.drop_reason
    if reason is None:
        if event.alert is not None:
            reason = "rules"
        elif flow is not None and flow.exception_policy and dropped_by_policy(flow):
            reason = EP_FLOW_DROP_REASON
        else:
            reason = "flow drop"
    drop["reason"] = reason
    rec["drop"] = drop
    if event.alert is not None:
        rec["alert"] = alert_form(event.alert)
    return rec


def _generic(event: Event, alert_form: AlertForm) -> dict[str, Any]:
    """anomaly, and any other packet/flow event: the header, then `extra`."""
    if event.pkt is not None:
        return packet_header(event.event_type, event.ts, event.pkt, event.flow)
    if event.flow is not None:
        return flow_header(event.event_type, event.ts, event.flow)
    return _bare(event.event_type, event.ts)


def _bare(event_type: str, ts: float) -> dict[str, Any]:
    return {"timestamp": format_record_time(ts), "event_type": event_type}


def _stats(event: Event, alert_form: AlertForm) -> dict[str, Any]:
    return _bare("stats", event.ts)


# event_type -> record builder. Adding an event type is one function and one line here.
RENDERERS: dict[str, Callable[[Event, AlertForm], dict[str, Any]]] = {
    "alert": _alert,
    "drop": _drop,
    "flow": _flow,
    "stats": _stats,
    "anomaly": _generic,
}


def _alert_line(event: Event) -> bytes | None:
    alert = event.alert
    if alert is None:
        return None
    return alert_line(event, alert.eve_json or alert_json(alert), HostPacket)   # type: ignore[misc]


def _flow_line(event: Event) -> bytes | None:
    return flow_line(event, flow_state, tcp_json)      # type: ignore[misc]


# event_type -> its compiled whole-line writer (fields.py built): the same bytes as
# RENDERERS' record through orjson, or None for a record not of the usual shape.
LINE_WRITERS: dict[str, Callable[[Event], bytes | None]] = (
    {"alert": _alert_line, "flow": _flow_line} if FIELDS_LINES else {})
if FIELDS_LINES:
    set_line_hooks(HostPacket, alert_json, flow_state, tcp_json)      # type: ignore[misc]


def _has_vars(event: Event) -> bool:
    """Does the record of `event` carry `traffic`/`metadata` (fields.py eve_vars)?"""
    flow = event.flow
    if flow is not None and (flow.flowbits or flow.flowints):
        return True
    pkt = event.pkt
    return pkt is not None and bool(getattr(pkt, "pktvars", None))


def with_vars(rec: dict[str, Any], event: Event) -> dict[str, Any]:
    """`rec` with Suricata's `traffic` and `metadata` (the flow's flowbits, flowints and
    flowvars, the packet's pktvars) after its head, before `community_id` and the first
    object, where Suricata's EveAddCommonOptions writes them."""
    if not _has_vars(event):
        return rec
    alert = event.alert
    if alert is not None and "alert" in rec and event.pkt is not None:
        ctx = alert_context(event.pkt, alert.gid, alert.signature_id)
        if ctx is not None:
            rec["alert"] = {**alert_object(alert), "context": ctx}
    traffic, meta = eve_vars(event.pkt, event.flow)
    if traffic is None and meta is None:
        return rec
    keys = list(rec)
    at = next((i for i, k in enumerate(keys) if k == "community_id" or rec[k].__class__ in _OBJECTS),
              len(keys))
    out = {k: rec[k] for k in keys[:at]}
    if traffic is not None:
        out["traffic"] = traffic
    if meta is not None:
        out["metadata"] = meta
    for k in keys[at:]:
        out[k] = rec[k]
    return out


def render(event: Event) -> dict[str, Any]:
    """The EVE record for `event` as a dict of plain values (what one line of eve.json holds)."""
    rec = RENDERERS.get(event.event_type, _generic)(event, alert_object)
    if event.extra:
        rec.update(event.extra)
    return with_vars(rec, event)


def encode(event: Event) -> bytes:
    """One line of eve.json for `event`, newline included: `render`'s record serialised,
    with the alert object taken pre-serialised from the Alert (`alert_fragment`)."""
    rec = RENDERERS.get(event.event_type, _generic)(event, alert_fragment)
    if event.extra:
        rec.update(event.extra)
    return _DUMPS(with_vars(rec, event), option=_NEWLINE)


def _switch(cfg: Mapping[str, Any], name: str, section: str = "alert") -> bool:
    value = cfg.get(name, False)
    if not isinstance(value, bool):
        raise ConfigError(f"expected true or false, got {value!r}", f"outputs.eve-log.{section}.{name}")
    return value


_PRINTABLE = bytes(c if 32 <= c < 127 or c in (10, 13) else 46 for c in range(256))    # else "."


def _payload(rec: dict[str, Any], data: bytes) -> None:
    rec["payload"] = base64.b64encode(data).decode()


def _payload_printable(rec: dict[str, Any], data: bytes) -> None:
    # Suricata's PrintStringsToBuffer: printable ASCII, CR and LF kept, every other byte "."
    rec["payload_printable"] = data.translate(_PRINTABLE).decode()


DEFAULT_PAYLOAD_BUFFER = 4096       # Suricata's JSON_STREAM_BUFFER_SIZE

# Protocols whose parsers keep already inspected stream data for raw inspection (Suricata's
# StreamTcpReassemblySetMinInspectDepth: HTTP's body inspect windows, SMTP's): an alert on
# their stream logs that data too, not only the bytes new to this packet's window
KEEPS_INSPECTED = frozenset(("http", "http1", "smtp"))


def logged_payload(pkt: Any, alert: Alert | None, limit: int) -> tuple[bytes, int]:
    """What an alert's payload/payload_printable show, and its `stream` field (Suricata's
    AlertJsonStreamData). A match on a TCP stream (a stream rule on a packet whose data went
    into the stream, or an app-layer transaction rule) logs the stream data it was made on,
    the packet's inspection window (stream/tcp.py), at most `limit` bytes, with Suricata's
    "[N bytes missing]" where a gap precedes it; stream 1. Everything else logs the
    packet's payload; stream 0. No stream data (a transaction rule on a packet that added
    none) falls back to the payload, stream still 1, as Suricata."""
    kind = alert.match_on if alert is not None else MATCH_PACKET
    if pkt.proto != 6 or kind == MATCH_PACKET or (kind == MATCH_STREAM and not pkt.stream_added):
        return pkt.payload, 0
    log = getattr(pkt, "log_payload", None)     # a flow-end pseudo packet: its direction's stream
    if log is not None:
        return log[:limit], 1
    window = pkt.stream_data
    if not window or pkt.stream_to_server != pkt.to_server:
        return pkt.payload, 1
    old = pkt.stream_old
    if old and old < len(window):
        flow = pkt.flow
        if flow is None or flow.app_proto not in KEEPS_INSPECTED:
            # Suricata logs the segments its stream still holds, and after each packet it
            # prunes those both the app layer and raw inspection are done with (the left edge
            # of StreamTcpPruneSession): the bytes inspected before this window are gone,
            # unless the protocol asked to keep a minimal inspect depth of them
            window = window[old:]
    gap = getattr(pkt, "log_gap", 0)
    if gap:
        window = b"[%d bytes missing]" % gap + window
    return window[:limit], 1


# Suricata's names of the link types it decodes (util-datalink.c), as `packet_info.linktype_name`
LINKTYPE_NAMES: dict[int, str] = {
    0: "NULL", 1: "EN10MB", 9: "PPP", 12: "RAW", 101: "RAW2", 104: "C_HDLC", 113: "LINUX_SLL",
    228: "IPv4", 229: "IPv6", 276: "LINUX_SLL2", 778: "GRE_RAW"}


def _packet(rec: dict[str, Any], pkt: Any) -> None:
    data, linktype = pkt.data, pkt.linktype
    root = getattr(pkt, "root", None)
    if root is not None and root.ip_off >= 0 and root.tunnel is None:
        # a reassembled datagram: Suricata logs it behind the link header of the capture
        # (the fragment's bytes before its IP header) with the capture's link type
        data, linktype = root.data[:root.ip_off] + data, root.linktype
    elif root is not None and root.ip_off >= 0 and len(root.tunnel) > 6:
        # ... of fragments a tunnel carried: behind the tunnel packet's own header (PPP in
        # GRE, say), link type RAW, as Suricata logs a tunnel packet
        data, linktype = root.data[root.tunnel[6]:root.ip_off] + data, 12
    elif pkt.tunnel is not None and len(pkt.tunnel) > 6:
        # a packet a tunnel carried: Suricata logs the tunnel packet itself, link type RAW
        data, linktype = data[pkt.tunnel[6]:], 12
    rec["packet"] = base64.b64encode(data).decode()
    info: dict[str, Any] = {"linktype": linktype}
    name = LINKTYPE_NAMES.get(linktype)
    if name is not None:
        info["linktype_name"] = name
    rec["packet_info"] = info


def _payload_buffer_size(alert_cfg: Mapping[str, Any]) -> int:
    """outputs.eve-log.alert.payload-buffer-size: the most stream data an alert logs."""
    from netsentry.stream.settings import parse_size
    key = "outputs.eve-log.alert.payload-buffer-size"
    size = parse_size(alert_cfg.get("payload-buffer-size", DEFAULT_PAYLOAD_BUFFER), key)
    if size <= 0:
        raise ConfigError(f"expected a size above 0 such as 4kb, got {alert_cfg.get('payload-buffer-size')!r}", key)
    return size


_REJECT_TARGETS = {"rejectdst": "to_server", "rejectboth": "both"}


def _verdict(event: Event, ips: bool, firewall: bool = False) -> dict[str, Any]:
    """Suricata's EveAddVerdict: a rejected packet gives its reject's target and kind, with
    action drop in IPS mode and alert in IDS mode (the reject is sent, nothing is held back);
    a dropped packet gives drop; in firewall mode every other packet was accepted (the
    firewall fails closed): accept; a passed flow pass, else alert."""
    pkt, flow = event.pkt, event.flow
    verdict = getattr(pkt, "verdict", None)
    if verdict == "reject":
        target = _REJECT_TARGETS.get(getattr(pkt, "reject_action", None) or "", "to_client")
        kind = "tcp-reset" if getattr(pkt, "proto", 0) == 6 else "icmp-prohib"
        return {"action": "drop" if ips else "alert", "reject_target": target, "reject": [kind]}
    if verdict == "drop":
        return {"action": "drop"}
    if firewall:
        return {"action": "accept"}
    if flow is not None and getattr(flow, "action", None) == "pass":
        return {"action": "pass"}
    alert = event.alert
    if alert is not None and (alert.gid, alert.signature_id) in PASS_ALERT_RULES:
        return {"action": "pass"}       # a pass rule's own alert (`pass ...; alert;`)
    return {"action": "alert"}


def _ether(rec: dict[str, Any], pkt: Any) -> None:
    """`ether: {src_mac, dest_mac}` of a packet captured with an Ethernet header."""
    if pkt is None or pkt.__class__ is HostPacket or pkt.linktype != 1 or len(pkt.data) < 14:
        return
    d = pkt.data
    rec["ether"] = {"src_mac": d[6:12].hex(":"), "dest_mac": d[0:6].hex(":")}


# outputs.eve-log.alert.<option> -> what it adds to an alert record, in Suricata's order: the
# payload options (given `logged_payload`'s bytes; then `stream`), then the packet
PAYLOAD_OPTIONS: dict[str, Callable[[dict[str, Any], bytes], None]] = {
    "payload": _payload,
    "payload-length": lambda rec, data: rec.__setitem__("payload_length", len(data)),   # the logged bytes'
    "payload-printable": _payload_printable,
}
ALERT_OPTIONS: dict[str, Callable[[dict[str, Any], Any], None]] = {
    **PAYLOAD_OPTIONS,
    "packet": _packet,
}


class EveLog(Output):
    """Writes EVE records to ``LOGDIR/<filename>`` through one large write buffer."""

    name = "eve-log"

    def __init__(self, cfg: Mapping[str, Any], ctx: OutputContext) -> None:
        # every setting is checked before the file is opened (and truncated)
        self.event_types = check_event_types(list(cfg.get("types", [])), "outputs.eve-log.types")
        # Suricata's eve-log `metadata` (default yes): traffic/metadata from the flow's and
        # packet's variables in every record (with_vars)
        metadata = cfg.get("metadata", True)
        if not isinstance(metadata, bool):
            raise ConfigError(f"expected true or false, got {metadata!r}", "outputs.eve-log.metadata")
        self._metadata = metadata
        drop_cfg = cfg.get("drop") or {}
        self._drop_alerts = bool(drop_cfg.get("alerts", True))
        # Suricata's `verdict: yes` of the alert and drop types: the packet's final verdict
        self._verdict = tuple(t for t, sec in (("alert", cfg.get("alert") or {}), ("drop", drop_cfg))
                              if _switch(sec, "verdict", t))
        self._ips = bool(ctx.ips)
        # firewall mode: told by the sensor, whose rule set decides it (Sensor.attach_outputs)
        self.firewall_mode = False
        flows = drop_cfg.get("flows", "start")
        if flows not in ("start", "all"):       # read by the sensor, which logs the drops
            raise ConfigError(f"expected 'start' or 'all', got {flows!r}", "outputs.eve-log.drop.flows")
        self._community = None
        community = cfg.get("community-id", False)
        if not isinstance(community, bool):
            raise ConfigError(f"expected true or false, got {community!r}", "outputs.eve-log.community-id")
        if community:
            from netsentry.output.community_id import CommunityId
            self._community = CommunityId(cfg.get("community-id-seed", 0))
        # Suricata 8's eve-log `ipv6-compress`: RFC 5952 addresses (fields.set_ipv6_compress)
        ipv6_compress = cfg.get("ipv6-compress", False)
        if not isinstance(ipv6_compress, bool):
            raise ConfigError(f"expected true or false, got {ipv6_compress!r}", "outputs.eve-log.ipv6-compress")
        set_ipv6_compress(ipv6_compress)
        pcap_file = cfg.get("pcap-file", False)
        if not isinstance(pcap_file, bool):
            raise ConfigError(f"expected true or false, got {pcap_file!r}", "outputs.eve-log.pcap-file")
        self._pcap_file = pcap_file
        # Suricata's eve-log alert options: types: [alert: {payload, payload-printable, packet}]
        # are spelled outputs.eve-log.alert.<option> here; `host` is the top-level sensor-name
        alert_cfg = cfg.get("alert") or {}
        self._alert_options = tuple(name for name in ALERT_OPTIONS if _switch(alert_cfg, name))
        # Suricata's alert `metadata: no`: alerts without the flow, app-layer and rule metadata
        meta = alert_cfg.get("metadata", True)
        if not isinstance(meta, bool):
            raise ConfigError(f"expected true or false, got {meta!r}", "outputs.eve-log.alert.metadata")
        self._alert_bare = not meta
        _REFERENCES[0] = _switch(alert_cfg, "reference")
        self._payload_options = tuple(PAYLOAD_OPTIONS[n] for n in self._alert_options if n in PAYLOAD_OPTIONS)
        self._packet_option = "packet" in self._alert_options
        # read by the sensor: a stream match's payload is its inspection window, so the
        # stream stage keeps the whole window in front of new data (stream/tcp.py full_tail)
        self.logs_stream_payload = bool(self._payload_options)
        self._payload_limit = _payload_buffer_size(alert_cfg)
        # outputs.eve-log.alert.xff: the X-Forwarded-For client address (output/xff.py)
        from netsentry.output.xff import Xff
        self._xff = Xff.from_config(alert_cfg.get("xff"), "outputs.eve-log.alert.xff")
        # Suricata's outputs.eve-log.ethernet: the packet's MAC addresses in alert and drop records
        self._ethernet = cfg.get("ethernet", False)
        if not isinstance(self._ethernet, bool):
            raise ConfigError(f"expected true or false, got {self._ethernet!r}", "outputs.eve-log.ethernet")
        self._host = cfg.get("sensor-name") or ""
        if not isinstance(self._host, str):
            raise ConfigError(f"expected a name, got {self._host!r}", "outputs.eve-log.sensor-name")
        self._source: Any = None
        self._live: Any = None          # a live source with `.iface` (attach_source)
        self._set_options()
        integrity = IntegrityConfig(cfg, "outputs.eve-log")
        filename = str(cfg.get("filename", "eve.json"))
        if not filename.strip() or filename.endswith("/") or Path(filename).name in ("", ".", ".."):
            # "" would make the log directory itself the output file
            raise ConfigError(f"expected a file name, got {filename!r}", "outputs.eve-log.filename")
        self.path = Path(ctx.logdir) / filename
        mode = "ab" if cfg.get("append", False) else "wb"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(f"cannot open {self.path}: {exc.strerror or exc}") from None
        self._file = self._open(mode)
        self._write = self._file.write
        self._count = 0
        self.reopened = 0

        # outputs.eve-log.integrity: each line also chained into <filename>.chain (output/integrity.py)
        self.chain: ChainWriter | None = None
        self._buf: LineBuffer | None = None
        if integrity.enabled:
            self.chain = ChainWriter(self.path, integrity, self.flush, offset=self._file.tell(),
                                     append=mode == "ab")
            self._write = self._chained_write
        elif FIELDS_LINES:
            # compiled: every line goes through one C block, handed to the file ~1 MiB at a
            # time (fields.LineBuffer); the usual records are written straight into it
            self._buf = LineBuffer(self._file.write)
            self._write = self._buf.add_line
        # `_write` as set here; anything else in its place (hoststate.py's renderer swaps in
        # a list's append for one call) takes the path that calls `_write` for every line
        self._direct = self._write

    @property
    def count(self) -> int:
        """Records written (a test and hoststate.py's renderer read and restore it)."""
        return self._count + (self._buf.lines if self._buf is not None else 0)

    @count.setter
    def count(self, value: int) -> None:
        self._count = value - (self._buf.lines if self._buf is not None else 0)

    def _open(self, mode: str) -> Any:
        try:
            # 1 MiB buffer: the file sees few large writes instead of one per event.
            return open(self.path, mode, buffering=1 << 20)  # noqa: SIM115 - closed in close()/reopen()
        except OSError as exc:
            raise OSError(f"cannot open {self.path}: {exc.strerror or exc}") from None

    def reopen(self) -> None:
        """Reopen ``path`` after logrotate renamed the file: every record written
        so far is flushed into the old file, every later one goes to the new.

        Always in append mode (a SIGHUP without a rotation must not truncate),
        and the new file is opened before the old one is closed: if it cannot be
        opened (directory gone, disk full) the error is logged and records keep
        going to the old file rather than nowhere.
        """
        if self._file.closed:
            return
        try:
            new = self._open("ab")
        except OSError as exc:
            from netsentry.log import get_logger
            get_logger().error("eve-log reopen failed, still writing the previous file",
                               path=str(self.path), error=str(exc))
            return
        old = self._file
        if self._buf is not None:
            self._buf.drain()           # gathered lines belong to the old file
            self._buf.sink = new.write
            self._file = new
        else:
            self._file, self._write = new, new.write
        self._direct = self._write
        old.close()                 # every record so far is in the old file now
        self.reopened += 1
        self._chain_reopened()      # integrity: sign the old chain, chain the new file's lines

    def emit(self, event: Event) -> None:
        # `encode` inlined: one call fewer per event on the output's hot path. With no
        # option that changes records (the default), a record is one renderer call and
        # one dumps: `_options` says whether `_with_options` has anything to do.
        # Compiled (`_lines`: fields.py built, no option set), the usual alert and flow
        # records are written as whole lines in C (`fields.record_line`, which calls
        # `LINE_WRITERS`' C functions); None means "not the usual shape" and the dicts
        # below write it.
        if self._lines and not event.extra and not (self._metadata and _has_vars(event)):
            buf = self._buf
            if buf is not None and self._write is self._direct:
                if buf.add_event(event):    # written into the block (counted there)
                    return
            else:
                line = record_line(event)       # type: ignore[misc]
                if line is not None:
                    self._write(line)
                    self._count += 1
                    return
        rec = RENDERERS.get(event.event_type, _generic)(event, alert_fragment)
        if event.extra:
            rec.update(event.extra)
        if self._options:
            rec = self._with_options(rec, event)
        if self._metadata:
            rec = with_vars(rec, event)
        self._write(_DUMPS(rec, option=_NEWLINE))
        self._count += 1

    def _set_options(self) -> None:
        """`_options`: whether any configured option changes a record (after every
        setting that `_with_options` reads; `attach_source` sets two of them)."""
        self._options = bool(not self._drop_alerts or self._community is not None or self._alert_options
                             or self._alert_bare
                             or self._xff is not None or self._verdict or self._ethernet or self._host
                             or self._live is not None or self._source is not None)
        self._lines = FIELDS_LINES and not self._options

    def _with_options(self, rec: dict[str, Any], event: Event) -> dict[str, Any]:
        """The record with what the configured options add, in Suricata's order."""
        etype = event.event_type
        if etype == "drop" and not self._drop_alerts:
            rec.pop("alert", None)          # outputs.eve-log.drop.alerts: false
        if self._alert_bare and etype == "alert":
            rec.pop("flow", None)
            if event.extra:
                for key in event.extra:
                    # (a firewall alert's extra carries its `alert` object: detect/firewall.py)
                    if key != "tx_id" and key != "tx_guessed" and key != "alert":
                        rec.pop(key, None)
            alert = rec.get("alert")
            if isinstance(alert, dict):
                alert.pop("metadata", None)
        if self._community is not None:
            rec = self._with_community_id(rec, event)
        if self._alert_options and etype == "alert":
            pkt = event.pkt
            if pkt is not None and pkt.__class__ is not HostPacket:
                if self._payload_options:
                    data, stream = logged_payload(pkt, event.alert, self._payload_limit)
                    for option in self._payload_options:
                        option(rec, data)
                    rec["stream"] = stream
                if self._packet_option:
                    _packet(rec, pkt)
        if self._xff is not None and etype == "alert":
            rec = self._xff.apply(rec, event, alert_object)
        if self._verdict and etype in self._verdict:
            rec["verdict"] = _verdict(event, self._ips, self.firewall_mode)
        if self._ethernet and (etype == "alert" or etype == "drop" or etype == "anomaly"):
            _ether(rec, event.pkt)
        if self._host:
            rec["host"] = self._host
        if self._live is not None and event.pkt is not None and event.pkt.__class__ is not HostPacket:
            rec["in_iface"] = self._live.iface          # live capture: the packet's interface
        if self._source is not None:
            rec["pcap_filename"] = self._source.path     # last, as Suricata writes it
        return rec

    def attach_source(self, source: Any) -> None:
        """``pcap-file: true``: name the capture file being read in every record (the
        file of the packet for packet records; for records written when a flow ends,
        the file being read at that moment, as Suricata's pcap_filename)."""
        if self._pcap_file and hasattr(source, "path"):
            self._source = source
        # live AF_PACKET capture: records about a packet name its interface (in_iface), as Suricata
        self._live = source if isinstance(getattr(source, "iface", None), str) else None
        self._set_options()

    def _with_community_id(self, rec: dict[str, Any], event: Event) -> dict[str, Any]:
        """`rec` with ``community_id`` after its head (the endpoint fields), before the
        first object (``alert``, ``flow``, ...), where Suricata writes it."""
        if event.flow is not None:
            cid = self._community.of_flow(event.flow)      # type: ignore[union-attr]
        elif event.pkt is not None:
            cid = self._community.of_packet(event.pkt)     # type: ignore[union-attr]
        else:
            return rec                                     # stats: no endpoints
        if cid is None:
            return rec
        keys = list(rec)
        at = next((i for i, k in enumerate(keys) if rec[k].__class__ in _OBJECTS), len(keys))
        out = {k: rec[k] for k in keys[:at]}
        out["community_id"] = cid
        for k in keys[at:]:
            out[k] = rec[k]
        return out

    def _chained_write(self, line: bytes) -> None:
        self._file.write(line)
        self.chain.add(line)        # type: ignore[union-attr]

    def flush(self) -> None:
        if not self._file.closed:
            if self._buf is not None:
                self._buf.drain()
            self._file.flush()

    def _chain_reopened(self) -> None:
        """The chain's part of a reopen: sign the chain into the old side file and go on
        in a new one (`ChainWriter.reopen`), and chain the new file's lines again."""
        if self.chain is not None:
            self._write = self._chained_write
            self.chain.reopen(self._file.tell())

    def close(self) -> None:
        if not self._file.closed:
            if self._buf is not None:
                self._buf.drain()
            self._file.flush()
            if self.chain is not None:
                self.chain.close()      # the shutdown checkpoint, after the last line is on disk
            self._file.close()


@register("eve-log")
def _open(cfg: Mapping[str, Any], ctx: OutputContext) -> Output:
    return EveLog(cfg, ctx)
