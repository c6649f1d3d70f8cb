"""The sensor: the pipeline wired once from the configuration, and the capture loop.

source -> decode -> flow -> signature engine -> anomaly engine -> asset
enrichment -> outputs. The capture loop in `Sensor.run` is the only loop;
engines don't know where packets come from, outputs don't know who made an
event. Stages that are off (no rules, ``anomaly.enabled: false``, no assets,
no output wanting an event type) are left out of the loop (capture_loop.py:
absent from the pure-Python loop, a C flag in the compiled one), so they cost
nothing per packet.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from netsentry.capture import CaptureError
from netsentry.config import ConfigError, get
from netsentry.decode import Decoder, udptunnel
from netsentry.detect.bypass import uses_bypass
from netsentry.detect.tunnel import TunnelLayers, inspect_layers
from netsentry.event import Event
from netsentry.flow import FlowConfigError, FlowTable
from netsentry.gcpolicy import capture_gc
from netsentry.lifecycle import unguard
from netsentry.applayer.records import RECORD_TYPES, tx_records
from netsentry.capture_loop import LOOP_PARTS, PROGRESS_EVERY, loop_for  # noqa: F401 - re-exported
from netsentry.output import EVENT_TYPES, Output
from netsentry.output.stats import merge_counters, stats_event

Record = tuple[float, bytes, int, int]
ProgressCallback = Callable[[int], None]

@dataclass
class RunResult:
    """What one run saw: the figures the replay summary and the tests read."""

    packets: int = 0
    elapsed: float = 0.0                 # seconds from the first packet read to the end of finish()
    last_ts: float | None = None
    flows: int = 0
    alerts: int = 0                      # signature alerts (the anomaly engine's are in anomaly_alerts)
    # (gid, sid) -> [signature, count]
    alerts_by_signature: dict[tuple[int, int], list[Any]] = field(default_factory=dict)
    anomaly_alerts: Counter[str] = field(default_factory=Counter)
    drops: int = 0
    counters: dict[str, int | float] = field(default_factory=dict)
    capture_error: CaptureError | None = None


def rule_paths(config: Mapping[str, Any]) -> list[str]:
    """``rule-files`` resolved against ``default-rule-path`` (absolute paths stay as given),
    after, in firewall mode, the firewall rule files (detect/firewall.py rule_paths)."""
    from netsentry.detect.firewall import rule_paths as firewall_paths
    base = str(config.get("default-rule-path") or ".")
    return firewall_paths(config) + [os.path.join(base, str(name)) for name in config.get("rule-files") or []]


# The capture loop lives in capture_loop.py (compiled with the other per-packet
# modules; its pure-Python form is specialised per configuration from the same source).
build_loop = loop_for

class Sensor:
    """Builds every stage from `config` and runs captures through them.

    `outputs` are already open; the sensor closes them in `finish`. Inline
    (IPS) mode is ``stream.inline: true`` (``replay --simulate-ips`` sets
    it): drop rules then set ``pkt.verdict`` and the sensor counts and logs
    the drops.
    """

    @property
    def _now(self) -> float:
        """Packet time of the latest packet (live mode: or the wall clock of the last tick).
        Kept in `_clock`, a one-item list, which the capture loop stores into per packet:
        a list item store is a few C instructions where an attribute store on this class
        costs a type lookup and an instance-dict store (~300 instructions; bench/README.md,
        "perfst")."""
        return self._clock[0]

    @_now.setter
    def _now(self, value: float) -> None:
        self._clock[0] = value

    def __init__(self, config: Mapping[str, Any], outputs: list[Output], ruleset: Any = None) -> None:
        self.config = config
        self.inline = bool(get(config, "stream.inline", False))
        self.result = RunResult()
        self._started = time.monotonic()          # stats uptime counts from here
        self._run_started: float | None = None     # the summary's elapsed/packets-per-second from here
        # packet time of the latest packet (flow records use it): `_now`, kept in a one-item
        # list the capture loop stores into per packet (capture_loop.py, flow-records)
        self._clock: list[float] = [0.0]
        self._drop_logged: set[tuple[int, bool]] = set()
        self._log_all_drops = get(config, "outputs.eve-log.drop.flows", "start") == "all"

        self._emitters: dict[str, list[Callable[[Event], None]]] = {}
        self.attach_outputs(outputs)

        # --- stages
        self.decoder = Decoder(checksums=bool(get(config, "decoder.checksum-validation", False)),
                               udp_tunnels=udptunnel.build(get(config, "decoder")))
        from netsentry.exception_policy import ExceptionPolicies
        self.exceptions = ExceptionPolicies(config, self.inline)
        self.flows = self._build_flow_table(config)
        self.ruleset = ruleset
        self.signatures = self._build_signature_engine(config, ruleset)
        self._tell_firewall_mode()
        # stream/: defragmentation before the flow lookup, TCP reassembly after it
        self.defrag, self.stream = self._build_stream_stage(config, self.decoder, self.signatures is not None)
        self._fit_stream_windows()
        self.anomaly = self._build_anomaly_engine(config)
        self.applayer = self._build_applayer(config)
        if self.applayer is not None and self.stream is not None:
            self.attach_applayer(self.applayer)        # reassembled TCP bytes reach the parsers
            self.applayer.on_encrypted = self._detect_log_flush
        self._tx_detect = getattr(self.signatures, "tx", None) if self.applayer is not None else None
        self._set_app_consumers()
        self.exceptions.attach(self.defrag, self.stream, self.applayer)    # memcap / error hooks
        # looked up once: the flow table calls _flow_ended for every flow
        self._anomaly_flow_end = getattr(self.anomaly, "on_flow_end", None)
        self.assets = self._build_asset_map(config)
        from netsentry.output.ratelimit import from_config as alert_rate_limit
        self.alert_limit = alert_rate_limit(config)     # None when off (the default)
        from netsentry.detect.alertqueue import AlertQueue, AlertSink, alert_max_setting
        from netsentry.detect.engine import detect_settings
        # packet-alert-max (detect/alertqueue.py); a packet's rule alerts wait in _held
        # while its transaction rules still run, so the cap ranks both together
        self.alert_queue = AlertQueue(alert_max_setting(config), detect_settings(config)[1])
        self._alert_sink = AlertSink(self, self.alert_queue)
        self._held: list[Event] | None = None
        # live mode (daemon.py): more counters for the stats record (the packet
        # source's, reloads, control), and where an inline packet's verdict goes (the NFQUEUE source)
        self.counter_sources: list[Callable[[], Mapping[str, int | float]]] = []
        self.verdict_sink: Callable[[Any], None] | None = None
        # daemon operations (respond/responder.py, reload.py): the block list and a
        # ruleset waiting to be swapped in between two packets
        self.responder: Any = None
        self.live = False                   # run() re-enters the loop after a swap
        self._interrupt: list[int] = []
        self._pending_swap: tuple[Any, Any] | None = None
        self._in_loop = False
        self._carry: Record | None = None    # the packet read when a swap ended the loop
        self._tunnel_layers: TunnelLayers | None = None   # on_tunnel's decoder of outer layers

    def attach_outputs(self, outputs: list[Output]) -> None:
        """Set the outputs (before `run`). The CLI builds the stages first, so a
        configuration error stops start-up before eve.json is opened and truncated."""
        self.outputs = outputs
        self._tell_firewall_mode()
        # one emitter list per event type; an empty list means nobody wants that type
        for event_type in EVENT_TYPES:
            self._emitters[event_type] = [o.emit for o in outputs if o.wants(event_type)]
        # transaction records are built only when some output takes them
        self._app_records = any(self._emitters[t] for t in RECORD_TYPES)
        self._set_app_consumers()
        self._fit_stream_windows()

    def _tell_firewall_mode(self) -> None:
        """Firewall mode is the rule set's (detect/firewall.py firewall_mode): an output that
        asks (EVE's verdict: "accept" for a packet the firewall accepted) is told on attach,
        on build and on each rule swap."""
        fw = getattr(getattr(self, "signatures", None), "firewall", None) is not None
        for out in getattr(self, "outputs", None) or ():
            if hasattr(out, "firewall_mode"):
                out.firewall_mode = fw

    def _fit_stream_windows(self) -> None:
        """Tell the stream stage how much inspected data its windows keep: what the rules
        read back, or the whole window when an eve-log writes a stream match's window as
        its payload (outputs are attached after the stages: daemon.py, cli.py)."""
        stream = getattr(self, "stream", None)
        if stream is None:
            return
        stream.full_tail = any(getattr(out, "logs_stream_payload", False) for out in self.outputs)
        stream.set_detection(self.signatures)

    def _set_app_consumers(self) -> None:
        """Tell the app layer which protocols' transactions are read (tx rules, records)."""
        applayer = getattr(self, "applayer", None)
        if applayer is None:
            return
        tx = getattr(self, "_tx_detect", None)
        protos = {s.app_proto for s in tx.sigs} if tx is not None else set()
        # firewall mode: the app-layer hooks of the firewall rules read transactions too
        fw_protos = getattr(getattr(getattr(self, "signatures", None), "firewall", None), "app_protos", ())
        protos |= set(fw_protos)
        # packet alerts naming a transaction (detect/txdetect.py TxGuess): any protocol's
        # with detect.guess-applayer-tx, else those of the UDP app-layer rules
        guess = getattr(getattr(self, "signatures", None), "guess", None)
        if guess is not None:
            protos |= guess.protos
        # protocols an app-layer-protocol check can only see parsed (h2c, doh2): its `parsers`
        protos |= {p for s in getattr(self.ruleset, "signatures", None) or () for c in s.packet_checks
                   for p in getattr(c, "parsers", ())}
        # encrypted sessions stop payload inspection (encryption-handling): known only parsed
        if getattr(self, "signatures", None) is not None:
            protos |= applayer.encryption_watch()
        applayer.set_consumers(None if guess is not None and guess.guess else
                               frozenset(protos | {p for t, p in RECORD_TYPES.items() if self._emitters[t]}))
        applayer.set_pd_marks(any(s.pd_only for s in getattr(self.ruleset, "signatures", None) or ()))
        applayer.set_rule_buffers(frozenset(c[0] for s in (tx.sigs if tx is not None else ()) for c in s.tx_chains))

    # --- wiring (the optional stages are imported only when configured) ----------

    def _build_flow_table(self, config: Mapping[str, Any]) -> FlowTable:
        flow_cfg = dict(config.get("flow") or {})
        flow_cfg["midstream"] = bool(get(config, "stream.midstream", False))
        flow_cfg["vlan-tracking"] = get(config, "vlan.use-for-tracking", True)
        try:
            return FlowTable(flow_cfg, self._flow_ended, self.exceptions.on_new_flow,
                             None if self.exceptions.flow_reuse else self.exceptions.on_flow_full)
        except FlowConfigError as exc:
            raise ConfigError(str(exc)) from None

    @staticmethod
    def _build_signature_engine(config: Mapping[str, Any], ruleset: Any) -> Any:
        from netsentry.detect.engine import detect_settings
        from netsentry.detect.firewall import firewall_mode
        fw_mode = ruleset is not None and firewall_mode(config, ruleset)
        if ruleset is None or not (getattr(ruleset, "signatures", None) or fw_mode):
            detect_settings(config)      # still checked: a typo must not wait for the first rule
            return None                  # no rules: no signature stage at all
        if fw_mode and get(config, "firewall.enabled", False) is not True:
            # a rule file named firewall.rules: firewall mode even without a firewall rule
            # (detect/firewall.py split_firewall reads firewall.enabled)
            config = {**config, "firewall": {**(config.get("firewall") or {}), "enabled": True}}
        from netsentry.rules.cache import engine_for
        return engine_for(ruleset, config)     # the rule cache's stored engine, or a new build

    @staticmethod
    def _build_applayer(config: Mapping[str, Any]) -> Any:
        if not get(config, "app-layer.enabled", True):
            return None
        from netsentry.applayer import AppLayer
        return AppLayer(config)

    @staticmethod
    def _build_stream_stage(config: Mapping[str, Any], decoder: Decoder, windows: bool) -> tuple[Any, Any]:
        from netsentry.stream import Defragmenter, DefragSettings, HostOS, StreamEngine, StreamSettings
        dsettings = DefragSettings.from_config(config)
        ssettings = StreamSettings.from_config(config)
        hosts = HostOS(config)
        defrag = Defragmenter(dsettings, decoder.decode, hosts) if dsettings.enabled else None
        stream = StreamEngine(ssettings, windows=windows, hosts=hosts) if ssettings.enabled else None
        return defrag, stream

    def use_anomaly_engine(self, engine: Any) -> None:
        """Put another anomaly stage in place before `run` (worker i of N: hoststate.py's
        observer, which forwards what it sees to the one process that judges)."""
        self.anomaly = engine
        self._anomaly_flow_end = getattr(engine, "on_flow_end", None)

    def attach_applayer(self, applayer: Any) -> None:
        """The app layer's `feed(flow, to_server, data, pkt)` gets each new in-order TCP byte once."""
        if self.stream is not None:
            self.stream.attach_applayer(applayer)
            applayer.tcp_from_stream = True

    @staticmethod
    def _build_anomaly_engine(config: Mapping[str, Any]) -> Any:
        if not get(config, "anomaly.enabled", False):
            return None
        from netsentry.anomaly import AnomalyEngine
        return AnomalyEngine(config)

    @staticmethod
    def _build_asset_map(config: Mapping[str, Any]) -> Any:
        if not config.get("assets"):
            return None
        from netsentry.assets import AssetMap
        return AssetMap(config)

    # --- the capture loop --------------------------------------------------------

    def run(self, source: Iterable[Record], progress: ProgressCallback | None = None) -> RunResult:
        """Process every record of `source`. Capture damage ends the run cleanly:
        the error is kept in ``result.capture_error`` for the caller to report after `finish`."""
        res = self.result
        if self._run_started is None:
            self._run_started = time.monotonic()
        # sources that know their position (capture files) drive the progress bar
        report = progress is not None and hasattr(source, "bytes_read")
        parts = self.loop_parts(report)
        if hasattr(source, "pcap_cnt"):
            parts |= {"sharded"}
        inner, guard = unguard(source)
        if guard is not None:
            parts |= {"guarded"}        # the loop tests the lifecycle itself (capture_loop.py)
        loop = build_loop(parts)
        for out in self.outputs:
            out.attach_source(source)
        self._source_stats = getattr(source, "stats", None)     # the packet source's own counters
        state = [res.packets, self._now]
        base = records = iter(inner) if self.live else inner     # one iterator across loop re-entries
        self._in_loop = self.live
        try:
            while True:
                with capture_gc():      # flows outlive the collector's young generations (gcpolicy.py)
                    loop(records, state, self, self.decoder.decode, self.flows.update,
                         self._packet_inspect() if "signatures" in parts else None,
                         self.anomaly.inspect_due if "anomaly" in parts else None,
                         self._loop_on_events(), self._on_verdict, self._on_decoder_events, progress,
                         self.defrag.add if "defrag" in parts else None,
                         self._stream_stage() if "stream" in parts else None,
                         self.applayer.packet if "applayer" in parts else None, self._on_app,
                         self.responder.blocklist.entries if "blocklist" in parts else None,
                         self.responder.on_blocked if "blocklist" in parts else None,
                         self._interrupt,
                         self._app_gate() if "applayer" in parts else None, guard)
                if not self._interrupt:
                    break
                # the loop stopped between two packets for a swap (capture_gc's exit
                # and re-entry collect the old ruleset's cycles); go on with the new stages
                self._interrupt.clear()
                self._apply_swap()
                parts = self.loop_parts(report) | (parts & {"sharded", "guarded"})
                loop = build_loop(parts)
                carry, self._carry = self._carry, None
                # the packet taken from the source when the swap was seen goes first (chained
                # onto the one base iterator each time, so reloads never nest iterators)
                records = base if carry is None else chain((carry,), base)
        except CaptureError as exc:
            res.capture_error = exc
        finally:
            self._in_loop = False
            self._interrupt.clear()
            self._apply_swap()           # a swap asked for during the last packet
            res.packets, ts = state
            if res.packets:
                res.last_ts = ts
                self._now = max(self._now, ts)     # live mode's tick may have moved the clock past it
        if report:
            progress(source.bytes_read)  # type: ignore[attr-defined,misc]
        return res

    def loop_parts(self, progress: bool = False) -> frozenset[str]:
        """Which optional parts of the capture loop this configuration needs (see capture_loop.py)."""
        parts = set()
        if self._emitters["flow"]:
            parts.add("flow-records")
        if self._emitters["anomaly"]:
            parts.add("decoder-anomalies")
        if self.signatures is not None:
            parts.add("signatures")
        if self.anomaly is not None:
            parts.add("anomaly")
        if self.inline:
            parts.add("inline")
            if self.signatures is None:
                # the signature engine keeps dropped flows dropped; without rules a flow
                # can still be dropped by an exception policy (exception_policy.py)
                parts.add("flow-verdicts")
        # the stream stage only when someone reads what it makes: reassembled datagrams
        # feed every later stage, the TCP streams only detection and the app layer
        if self.defrag is not None and parts:
            parts.add("defrag")
        if self.applayer is not None and (self.signatures is not None or any(
                self._emitters[t] for t in ("flow", *RECORD_TYPES))):
            parts.add("applayer")        # someone reads app_proto, transactions or their records
        if self.stream is not None and (self.signatures is not None or "applayer" in parts):
            parts.add("stream")
        if progress:
            parts.add("progress")
        if self.responder is not None:
            parts.add("blocklist")
        if self.live:
            parts.add("live")
        if self.signatures is not None:
            parts.add("tunnels")         # detect/tunnel.py: a tunnel's outer packets are inspected too
        if self.signatures is not None and uses_bypass(self.ruleset):
            parts.add("bypass")          # rules/keywords/bypass.py: bypassed flows skip the rest
        if "applayer" in parts and any(
                self.applayer.settings.get(p, {}).get("encryption-handling") == "bypass" for p in ("tls", "ssh")):
            parts.add("bypass")          # encryption-handling: bypass (applayer/registry.py Encrypted)
        return frozenset(parts)

    def _app_gate(self) -> tuple[int, int] | None:
        """The app layer's packet gate for the loop (None: every packet gets the call)."""
        gate = getattr(self.applayer, "packet_gate", None)
        return gate() if gate is not None else None

    # --- rule reload (reload.py builds the new set; the swap happens here) ----------

    def swap_ruleset(self, ruleset: Any, engine: Any) -> None:
        """Put `ruleset` and its built `engine` (None: no rules) in place between two packets.

        Outside a running loop the swap is immediate; inside one (called from the
        lifecycle's poll between packets) the loop ends after the current packet and
        `run` re-enters it with the new engine, so no packet is skipped or inspected twice."""
        self._pending_swap = (ruleset, engine)
        if self._in_loop:
            self._interrupt.append(1)
        else:
            self._apply_swap()

    def _apply_swap(self) -> None:
        if self._pending_swap is None:
            return
        self.ruleset, self.signatures = self._pending_swap
        self._pending_swap = None
        self._tell_firewall_mode()
        # Flows keep the engine that inspected them (flow.detect) until their next
        # packet; forget it now so the old ruleset is freed at once, not at their timeout.
        for flow in self.flows.live_flows():
            flow.detect = None
        if self.stream is not None:
            # built at start-up without rules, the stream stage made no inspection windows:
            # a reload from no rules to rules needs them (and the loop's stream part, loop_parts)
            self._fit_stream_windows()
        # transaction rules live in the engine too: the app layer parses what the new set reads
        self._tx_detect = getattr(self.signatures, "tx", None) if self.applayer is not None else None
        self._set_app_consumers()
        if self.responder is not None:
            self.responder.ruleset_changed(self.ruleset)

    # --- per-event work (off the common path: only packets that produced something) ---

    def _stream_stage(self) -> Any:
        """The stream stage the loop calls: the firewall's `pre_stream` table before it
        when the firewall rule set has one (detect/firewall.py), else `stream.update`."""
        fw = getattr(self.signatures, "firewall", None)
        if fw is not None and fw.has_pre_stream:
            return fw.stream_stage(self.stream.update, getattr(self.exceptions, "on_new_flow", None))
        return self.stream.update

    def _loop_on_events(self) -> Callable[[list[Event], Any, Any, bool], None]:
        """The loop's `on_events`: the alert sink's C entry (detect/alertqueue.py
        `AlertSink.deliver`), which hands the common case on and everything else to
        `_on_events`; `_on_events` itself when the sink has no such entry (a stand-in)."""
        return getattr(self._alert_sink, "deliver", None) or self._on_events

    def _on_events(self, events: list[Event], pkt: Any, flow: Any, from_anomaly: bool) -> None:
        if not from_anomaly and pkt is not None:
            # IPS: Suricata parses the app layer on the packet itself, so its packet and
            # transaction rules share one alert queue and one verdict: hold these for
            # _on_app, next in this packet. IDS: it parses when the data is ACKed, a later
            # packet, so the two are capped (and their verdicts read) apart.
            if (self.inline and self._tx_detect is not None and flow is not None
                    and (app := flow.app) is not None and app.dirty):
                self._held = events
                return
            # the common case (no responder, rate limit or asset map; only rule alerts)
            # handed on in C: detect/alertqueue.py AlertSink, this method's reference
            if self._alert_sink.take(events, self.signatures):
                return
            events = self.alert_queue.admit(events, self.signatures)
        res = self.result
        emitters = self._emitters
        enrich = self.assets.enrich if self.assets is not None else None
        limit = self.alert_limit.admit if self.alert_limit is not None else None
        for event in events:
            etype = event.event_type
            alert = event.alert
            if etype == "alert" and alert is not None:
                if self.responder is not None:
                    self.responder.on_alert(event, from_anomaly)
                if from_anomaly:
                    res.anomaly_alerts[alert.signature] += 1
                else:
                    res.alerts += 1
                    key = (alert.gid, alert.signature_id)
                    entry = res.alerts_by_signature.get(key)
                    if entry is None:
                        res.alerts_by_signature[key] = [alert.signature, 1]
                    else:
                        entry[1] += 1
                # the event's own flow: an anomaly alert concerns a host, not the flow
                # of the packet that happened to close its window
                if event.flow is not None:
                    event.flow.alerted = True
                if limit is not None and not limit(event):
                    continue        # counted, matched, verdict untouched: only not written
                if enrich is not None:
                    enrich(event)
            elif etype == "anomaly" and from_anomaly:
                name = alert.signature if alert is not None else str((event.extra or {}).get("anomaly", etype))
                res.anomaly_alerts[name] += 1
            for emit in emitters.get(etype, ()):
                emit(event)

    def on_tunnel(self, pkt: Any) -> None:
        """The capture loop's `tunnels` part: the outer packets of `pkt`'s frame (GRE,
        IP-in-IP, VXLAN...) go through flow and signature inspection before the inner
        packet does, as Suricata's root packet (detect/tunnel.py)."""
        layers = self._tunnel_layers
        if layers is None:
            layers = self._tunnel_layers = TunnelLayers(self.decoder)
        inspect_layers(layers, pkt, self.flows.update, self.signatures.inspect, self._on_events)

    def _on_verdict(self, pkt: Any, flow: Any) -> None:
        """IPS: count the drop and log it as Suricata's drop log does (flows: start):
        once per direction of a dropped flow, plus every packet a rule dropped itself."""
        if not self.inline:
            return
        if pkt.verdict is None:
            # accepted, with bytes the stream stage rewrote (capture_loop.py): the source
            # forwards the packet as inspected; nothing to count or log
            if self.verdict_sink is not None:
                self.verdict_sink(pkt)
            return
        root = pkt.root
        if root is not None and root.verdict is None:
            # a reassembled datagram's verdict is its last fragment's: that is the
            # captured packet an inline source accepts or drops
            root.verdict = pkt.verdict
        if self.verdict_sink is not None:
            self.verdict_sink(pkt)
        self.result.drops += 1
        if not self._emitters["drop"]:
            return
        drop_alert = pkt.drop_alert      # the rule that dropped this packet (even a noalert one)
        by_rule = drop_alert is not None
        if flow is not None and not self._log_all_drops:
            log = by_rule
            if flow.action == "drop":
                key = (flow.flow_id, bool(pkt.to_server))
                if key not in self._drop_logged:
                    self._drop_logged.add(key)
                    log = True
            if not log:
                return
        event = Event("drop", pkt.ts, pkt, flow, drop_alert)
        for emit in self._emitters["drop"]:
            emit(event)

    def _on_decoder_events(self, pkt: Any, flow: Any) -> None:
        """Decoder events as Suricata's anomaly records (type decode). The stream stage's
        events (``stream.*``) share `pkt.events` so `stream-event` rules see them; Suricata
        logs those only with the anomaly type `stream` enabled, which netsentry does not have."""
        for name in pkt.events:
            if name.startswith(("stream.", "applayer.")):
                continue
            if not name.startswith("decoder."):
                name = "decoder." + name
            event = Event("anomaly", pkt.ts, pkt, flow,
                          extra={"anomaly": {"type": "decode", "event": name}})
            for emit in self._emitters["anomaly"]:
                emit(event)

    def _packet_inspect(self) -> Any:
        """The packet engine's `inspect`, with the transaction its alerts name where the
        ruleset or `detect.guess-applayer-tx` asks for one (detect/txdetect.py TxGuess)."""
        sigs = self.signatures
        guess = getattr(sigs, "guess", None)
        return sigs.inspect if guess is None or self.applayer is None else guess.inspector(sigs.inspect)

    def _on_app(self, pkt: Any, flow: Any) -> None:
        """After detection: transaction rules on what the app layer parsed, then the
        transaction records (http, dns, tls) that are complete. Only for packets that
        moved a transaction on (`AppState.dirty`)."""
        st = flow.app
        if not st.dirty:
            return
        st.dirty = False
        held, self._held = self._held, None      # this packet's rule alerts (_on_events)
        if self._tx_detect is not None and not pkt.checksum_bad:
            sigs = self.signatures
            fresh = flow.action == "drop" and sigs is not None and sigs.dropped_by_rules(pkt)
            # (the view is needed only where an ACK released this side's bytes: most packets
            # are inspected as they are, without the call)
            tpkt = pkt if st.released is None else self.applayer.tx_packet(pkt, flow)
            events = self._tx_detect.inspect(tpkt, flow, fresh)
            if held:
                events = held + events if events else held
            # one queue in rule order: a pass stops it (detect/engine.py settle_pass)
            if sigs is not None:
                events = sigs.settle_pass(pkt, flow, events, tpkt)
            if events:
                self._on_events(events, pkt, flow, False)
        if self._app_records:
            self._log_txs(flow, pkt, False)
        st.release_done(self._app_records)

    def _log_txs(self, flow: Any, pkt: Any, final: bool) -> None:
        ts = pkt.ts if pkt is not None else max(self._now, flow.last_seen)
        emitters = self._emitters
        for event in tx_records(flow, pkt, ts, final):
            for emit in emitters.get(event.event_type, ()):
                emit(event)

    def _detect_log_flush(self, flow: Any, pkt: Any) -> None:
        """The app layer found the flow's session encrypted (applayer/registry.py Encrypted):
        its stream data detection has not seen yet is inspected now, on pseudo packets,
        before payload inspection stops (Suricata's StreamTcpDetectLogFlush, pkt_src
        "stream (detect/log)")."""
        if self.stream is None or self.signatures is None or not flow.stream:
            return
        inspect = self._packet_inspect()
        pkts = self.stream.flush(flow)
        fw = getattr(self.signatures, "firewall", None)
        if fw is not None:
            pkts = fw.detect_log_packets(flow, pkts, pkt, self.inline, self.applayer.settings)   # detect/firewall.py
        for p in pkts:
            p.pkt_src = "stream (detect/log)"
            if pkt is not None:
                p.ts = pkt.ts
            events = inspect(p, flow)
            if events:
                # its own packet's alerts, never held for this packet's transactions (no
                # flow given: the inline hold in _on_events is for the packet being processed)
                self._on_events(events, p, None, False)

    def _flow_ended(self, flow: Any) -> None:
        """FlowTable's on_end: timeout, eviction or shutdown."""
        self.result.flows += 1
        fw = getattr(self.signatures, "firewall", None)
        if fw is not None:
            fw.flow_ended(flow)     # detect/firewall.py: its per-flow state goes with the flow
        if self.stream is not None:
            if flow.stream and self.signatures is not None:
                # stream data detection has not seen yet: inspected now, before the flow's
                # records (Suricata's flow-timeout pseudo packets). Most flows have none:
                # the inspect function is looked up only for those that do
                pkts = self.stream.flush(flow)
                if pkts:
                    inspect = self._packet_inspect()
                    for pkt in pkts:
                        events = inspect(pkt, flow)
                        if events:
                            self._on_events(events, pkt, flow, False)
            self.stream.on_flow_end(flow)
        if flow.app is not None and flow.app.parser is not None and self.applayer is not None:
            # IDS: bytes still waiting for an ACK are parsed now; their transactions are
            # inspected on flow-end pseudo packets (Suricata's flow timeout)
            for pkt in self.applayer.flow_end(flow) or ():
                events = self._tx_detect.inspect(pkt, flow) if self._tx_detect is not None else None
                if events:
                    self._on_events(events, pkt, flow, False)
            if self._app_records:
                self._log_txs(flow, None, True)
        if self._anomaly_flow_end is not None:
            self._anomaly_flow_end(flow)
        if self._drop_logged:
            self._drop_logged.discard((flow.flow_id, True))
            self._drop_logged.discard((flow.flow_id, False))
        emitters = self._emitters["flow"]
        if emitters:
            # the later of packet time and the flow's last packet (max() without the call);
            # `_now`'s list read directly: no property call per flow record
            now, last = self._clock[0], flow.last_seen
            event = Event("flow", now if now >= last else last, None, flow)
            for emit in emitters:
                emit(event)

    def reopen_outputs(self) -> None:
        """SIGHUP: every output reopens its file (logrotate). Main thread, between packets."""
        for out in self.outputs:
            out.reopen()

    # --- the end -----------------------------------------------------------------

    def counters(self) -> dict[str, int | float]:
        """Every stage's counters under Suricata's dotted names, plus the sensor's own."""
        stages = [self.decoder, self.defrag, self.stream, self.flows, self.signatures, self.anomaly,
                  self.applayer, self.exceptions, self.alert_limit, self.alert_queue]
        counters = merge_counters(s.stats() for s in stages if s is not None and hasattr(s, "stats"))
        source_stats = getattr(self, "_source_stats", None)
        if source_stats is not None:
            counters.update(source_stats())
        for out in self.outputs:            # network outputs: queue depth, sent, dropped, reconnects
            if hasattr(out, "stats"):
                counters.update(out.stats())
        counters.setdefault("detect.alert", self.result.alerts)
        if self.responder is not None:
            counters.update(self.responder.stats())
        for more in self.counter_sources:
            counters.update(more())
        if self.inline:
            # decoder.pkts is live; result.packets is only set when the loop returns
            packets = int(counters.get("decoder.pkts", self.result.packets))
            counters["ips.accepted"] = packets - self.result.drops
            counters["ips.blocked"] = self.result.drops
        return counters

    def tick(self, now: float) -> None:
        """Live mode's wake-up (at least once a second, traffic or not): time out
        flows and close the anomaly engine's seconds as of wall-clock `now`, as a
        packet of that time would, so a quiet link still ends flows and windows."""
        if now <= self._now:
            return
        self._now = now
        self.flows.expire(now)
        if self.anomaly is not None:
            events = self.anomaly.tick(now)
            if events:
                self._on_events(events, None, None, True)

    def write_stats(self, now: float) -> None:
        """One EVE stats record of every counter so far (live mode: every stats.interval)."""
        emitters = self._emitters["stats"]
        if emitters:
            event = stats_event(now, time.monotonic() - self._started, self.counters())
            for emit in emitters:
                emit(event)

    def finish(self, lifecycle: Any = None) -> RunResult:
        """Flush flows (flow records), write the stats record, close the outputs.

        With a `lifecycle` (netsentry.lifecycle.Lifecycle), the flush runs in its
        `flushing()` phase: a second stop signal may cut it short, but the stats
        record is still written, with ``netsentry.interrupted: true``."""
        res = self.result
        try:
            with lifecycle.flushing() if lifecycle is not None else nullcontext():
                self.flows.flush("shutdown")
                if self.defrag is not None:
                    self.defrag.flush()          # unfinished datagrams: counted as timed out
                if self.anomaly is not None:
                    # the second in progress is judged, baselines saved (anomaly.state-file)
                    events = self.anomaly.close()
                    if events:
                        self._on_events(events, None, None, True)
            now = time.monotonic()
            res.elapsed = now - (self._run_started if self._run_started is not None else self._started)
            res.counters = self.counters()
            emitters = self._emitters["stats"]
            if emitters:
                event = stats_event(time.time(), now - self._started, res.counters)   # wall clock: stats_event
                if lifecycle is not None and lifecycle.interrupted:
                    event.extra["netsentry"] = {"interrupted": True}   # type: ignore[index]
                for emit in emitters:
                    emit(event)
        finally:
            for out in self.outputs:
                out.close()
            if self.signatures is not None:
                # datasets with `save`/`state` are written back (Suricata's DatasetsSave at exit)
                from netsentry.log import get_logger
                from netsentry.rules.keywords.datasets import save_all
                for message in save_all():
                    get_logger().warning(message)
        return res
