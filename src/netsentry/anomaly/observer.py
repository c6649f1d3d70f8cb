"""A worker's anomaly stage when the host judge decides (hoststate.py): the engine's
per-packet bookkeeping, and at each second's end its fold into per-host sums, sent
to the parent instead of judged. Compiled (setup.py COMPILED_MODULES): the fold
runs over every flow touched in a second, in every worker.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping
from typing import Any

from netsentry.anomaly.flood import HALF_OPEN_STATES
from netsentry.anomaly.flowstate import FlowState
from netsentry.decode.packet import Packet
from netsentry.flow.flow import Flow

DNS_FLOW = -math.inf       # anomaly/engine.py DNS_FLOW: every packet of a DNS flow is looked at
DNS_MSG_MAX = 600          # a query's question fits (name <= 255 bytes); the rest is not read
PEND_HALF_OPEN = 1         # worker side, FlowState.flags: syn-flood may still release this bare SYN
PEND_SYN_PROBE = 2         # ... port-scan may still see this SYN probe complete its handshake
ROW_END, ROW_NEW, ROW_DNS = 0, 1, 2   # kinds of row, in one packet's order: row[0] = pcap_cnt * 4 + kind
FLAGGED_WIDTH = 6          # fields of one pending flow's row (ObservingEngine.take)
LID_STEP = 1 << 16         # worker i numbers its flows i, i + LID_STEP, ...: one dict key per flow in
                           # the parent, and the worker is `lid % LID_STEP` (workers < LID_STEP)


class ObservingEngine:
    """The anomaly stage of worker i of N: the engine's per-packet bookkeeping and its
    per-second fold into per-host sums; no judging.

    Same contract as AnomalyEngine for the capture loop (`inspect_due` when
    ``ts >= flow.anomaly_due``, `on_flow_end`, `tick`, `close`); what it saw
    goes to the parent through the `WorkerLink`, pre-aggregated (`take`).

    Per-flow state (``flow.anomaly``, a `FlowState`, as the engine's): the counters
    already folded, the flow's *pending* bits in ``flags`` (PEND_*: which of the
    judge's per-flow decisions are still open for it, see `take`), the second it
    was queued in (``queued``, DNS flows), its traffic-spike ``scope`` and its
    number (``lid``)."""

    def __init__(self, config: Mapping[str, Any], link: Any) -> None:
        """`link`: the worker's hoststate.WorkerLink (its `advance` closes seconds, its
        lists take the new flows, ends and DNS queries)."""
        from netsentry.anomaly import settings
        from netsentry.anomaly.detector import DETECTORS
        sec = settings.load(config)

        def on(name: str) -> bool:
            cls = DETECTORS.get(name)
            return cls is not None and any(sec.sub(n).flag("enabled") for n in cls.names)
        self.dns_on = on("dns-query-flood")
        # which per-flow decisions the judge makes (only their flows are sent per flow)
        self._half_open = on("syn-flood")
        self._syn_probe = on("port-scan")
        self.spike_on = on("traffic-spike")
        self._scope: Any = None
        if self.spike_on:
            from netsentry.anomaly import spike
            self._scope = spike.scope_of(config, sec.sub("traffic-spike"))
        self.link = link
        link.observer = self
        link.own_closes = False
        self._tick = -1
        self._tick_end = -math.inf
        self._touched: list[Any] = []
        self._touch_cnt: list[int] = []
        self._loose: dict[tuple[bytes, int], int] = {}
        self._lid = link.index        # flow numbers unique across workers: see LID_STEP
        self.flow_rows = 0            # per-flow rows sent for the judge's per-flow decisions

    def rolled(self, tick: int, tick_end: float) -> None:
        self._tick = tick
        self._tick_end = tick_end

    def inspect(self, pkt: Any, flow: Any) -> None:
        if flow is not None and pkt.ts < flow.anomaly_due:
            return None
        return self.inspect_due(pkt, flow)

    def inspect_due(self, pkt: Packet, flow: Flow | None) -> None:
        # typed (observer.pxd): the packet's, the flow's and its state's fields are struct
        # members in the compiled build
        st: FlowState
        if pkt.ts >= self._tick_end:
            self.link.advance(pkt.ts, pkt.pcap_cnt)
        if flow is None:
            if pkt.ip_version:
                k = (pkt.dst, pkt.proto)
                self._loose[k] = self._loose.get(k, 0) + 1
            return None
        st = flow.anomaly
        if st is None:
            proto = flow.proto
            first = pkt.tcp_flags if proto == 6 else pkt.icmp_type
            lid = self._lid
            self._lid = lid + LID_STEP
            pending = 0
            if proto == 6 and first & 0x12 == 0x02:         # a bare SYN (ACK clear)
                if self._half_open:
                    pending = PEND_HALF_OPEN
                if self._syn_probe and first & 0x2F == 0x02:  # port-scan's SYN probe (scan.py)
                    pending |= PEND_SYN_PROBE
            scope = 0
            if self.spike_on:
                sc = self._scope
                scope = 3 if sc is None else sc.mask(flow.client, flow.server)
            st = FlowState(self._tick, first)
            st.flags = pending
            st.scope = scope
            st.lid = lid
            flow.anomaly = st
            self._touched.append(flow)
            self._touch_cnt.append(pkt.pcap_cnt)
            # the judge keeps a stand-in only while a per-flow decision is pending (lid -1: none)
            self.link.new.append((pkt.pcap_cnt << 2 | ROW_NEW, lid if pending else -1, proto, flow.client, flow.server,
                                  flow.client_port, flow.server_port, first))
            if flow.server_port == 53 and (proto == 17 or proto == 6) and self.dns_on:
                flow.anomaly_due = DNS_FLOW
                if pkt.to_server:
                    self._query(pkt)
            else:
                flow.anomaly_due = self._tick_end
        elif flow.anomaly_due == DNS_FLOW:
            if st.queued != self._tick:
                st.queued = self._tick
                self._touched.append(flow)
                self._touch_cnt.append(pkt.pcap_cnt)
            if pkt.to_server:
                self._query(pkt)
        elif flow.anomaly_due != self._tick_end:
            flow.anomaly_due = self._tick_end
            self._touched.append(flow)
            self._touch_cnt.append(pkt.pcap_cnt)
        return None

    def _query(self, pkt: Any) -> None:
        off = pkt.payload_off
        msg = bytes(pkt.data[off:off + min(pkt.payload_len, DNS_MSG_MAX)])
        self.link.dns.append((pkt.pcap_cnt << 2 | ROW_DNS, pkt.src, pkt.dst, pkt.proto, msg))

    def on_flow_end(self, flow: Any) -> None:
        st: FlowState = flow.anomaly
        if st is not None and st.flags:     # pending: only the judge's per-flow decisions need it
            self.link.ends.append((getattr(self.link.source, "pcap_cnt", 0) << 2 | ROW_END, st.lid))

    def take(self) -> tuple[list[tuple], tuple]:
        """The second that ends now: loose packets per destination, and the touched flows
        folded as the engine's `_account` folds them, but per host (sums that add up
        across workers) instead of per flow:

        ``(pin, hosts, flagged, talk)``, flat lists:
          pin      key, proto, address, packets   packets received per (protocol, address)
          hosts    key, address, bytes << 32 | packets   traffic-spike's per-host sums
                   (only hosts in its scope)
          flagged  cnt, lid, pkts_toserver, pkts_toclient, established, tcp_state
                   flows whose per-flow decision is pending (a bare SYN's half-open
                   release, a SYN probe's "completed the handshake")
          talk     pickled: cnt, client, server, proto, server_port, packets to server,
                   packets to client, per flow with packets: read by the judge only
                   in a second with a flood candidate or a spike (top talkers, peers),
                   so it stays bytes otherwise

        `key` orders the judge's merge as one process inserts (2 * the packet that
        touched the flow first in the second, + which end): dict order, and so the
        baselines' and the state file's order, stay those of one process."""
        st: FlowState
        f: Flow
        loose = [(dst, proto, n) for (dst, proto), n in self._loose.items()]
        self._loose = {}
        touched, cnts = self._touched, self._touch_cnt
        self._touched = []
        self._touch_cnt = []
        if not touched:
            return loose, ()
        pin: dict[int, dict[bytes, int]] = {}
        keys: dict[int, dict[bytes, int]] = {}
        hosts: dict[bytes, int] = {}
        hkeys: dict[bytes, int] = {}
        flagged: list[Any] = []
        talk: list[Any] = []
        last_proto = -1
        m: dict[bytes, int] = {}
        km: dict[bytes, int] = {}
        for f, cnt in zip(touched, cnts):
            st = f.anomaly
            a = f.pkts_toserver
            b = f.pkts_toclient
            dts = a - st.pts
            dtc = b - st.ptc
            st.pts = a
            st.ptc = b
            proto = f.proto
            if proto != last_proto:
                last_proto = proto
                m = pin.get(proto)
                if m is None:
                    m = pin[proto] = {}
                    km = keys[proto] = {}
                else:
                    km = keys[proto]
            key = cnt << 1
            if dts:
                h = f.server
                v = m.get(h)
                if v is None:
                    m[h] = dts
                    km[h] = key
                else:
                    m[h] = v + dts
            if dtc:
                h = f.client
                v = m.get(h)
                if v is None:
                    m[h] = dtc
                    km[h] = key | 1
                else:
                    m[h] = v + dtc
            scope = st.scope
            if scope:
                c = f.bytes_toserver
                d = f.bytes_toclient
                db = c - st.bts + d - st.btc
                st.bts = c
                st.btc = d
                v = db << 32 | (dts + dtc)
                if scope & 1:
                    h = f.client
                    w = hosts.get(h)
                    if w is None:
                        hosts[h] = v
                        hkeys[h] = key
                    else:
                        hosts[h] = w + v
                if scope & 2:
                    h = f.server
                    w = hosts.get(h)
                    if w is None:
                        hosts[h] = v
                        hkeys[h] = key | 1
                    else:
                        hosts[h] = w + v
            pending = st.flags
            if pending:
                state = f.tcp_state
                est = f.established
                flagged += (cnt, st.lid, a, b, est, state)
                # the judge clears the flow's flag on this row when the condition holds:
                # from then on it reads nothing more of the flow (flood.py, scan.py)
                if pending & PEND_HALF_OPEN and state not in HALF_OPEN_STATES:
                    pending &= ~PEND_HALF_OPEN
                if pending & PEND_SYN_PROBE and (est or (a >= 3 and b >= 1)):
                    pending &= ~PEND_SYN_PROBE
                st.flags = pending
            if dts or dtc:
                talk += (cnt, f.client, f.server, proto, f.server_port, dts, dtc)
        pin_flat: list[Any] = []
        for proto, m in pin.items():
            km = keys[proto]
            for h, n in m.items():
                pin_flat += (km[h], proto, h, n)
        host_flat: list[Any] = []
        for h, v in hosts.items():
            host_flat += (hkeys[h], h, v)
        self.flow_rows += len(flagged) // FLAGGED_WIDTH
        return loose, (pin_flat, host_flat, flagged, pickle.dumps(talk, pickle.HIGHEST_PROTOCOL))

    def tick(self, now: float) -> None:
        """Live: wall clock `now` with no packet closes the second as a packet would."""
        self.link.tick(now)

    def flush(self, now: float | None = None) -> None:
        return None

    def close(self) -> None:
        self.link.close()
        return None

    def misbehaving_sources(self, now: float | None = None) -> set[bytes]:
        return set()        # the judge holds them (IPS block list: the runtime asks it)

    def stats(self) -> dict[str, int]:
        return {}           # every anomaly.* counter is the judge's
