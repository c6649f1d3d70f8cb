"""Firewall mode (Suricata 8): a separate rule set evaluated before the threat-detection rules.

Suricata's design (doc/userguide/firewall/firewall-design.rst, detect.c):

- Firewall rules have an explicit action scope and an explicit hook:
  ``accept:hook tcp:all ...``, ``drop:flow tcp:flow_start ...``,
  ``accept:tx http1:request_line ... http.uri; ...``. The primary action is ``accept``
  (scopes ``packet``, ``flow``, ``hook``, ``tx``), ``drop`` or ``reject*`` (``packet``,
  ``flow``); secondary actions after a comma: ``alert`` (an alert when the rule matches)
  and ``pass``/``pass:flow`` (applies to the threat-detection rules only).
- Rules are evaluated in file order per table, the first deciding match wins:
  packet tables ``packet:pre_flow``, ``packet:pre_stream`` (default ``accept:hook``) and
  ``packet:filter`` (the ``flow_start`` and ``all`` hooks; default ``drop:packet``), then,
  for a packet that moved an app-layer transaction, ``app:filter``: every state (hook) of
  the transaction the packet's side reached since the last packet, each needing an accept
  (default ``drop:flow``). ``accept:hook`` goes on to the next table / state,
  ``accept:tx`` accepts the rest of that transaction's side, ``accept:flow`` every later
  packet of the flow (the firewall is skipped for them), ``accept:packet`` this packet.
  ``<state`` in the hook (``tls:<client_hello_done``) registers the rule at that state and
  every earlier one, where it acts as ``accept:hook``.
- A packet the firewall dropped never reaches the threat-detection rules (``drop.reason``
  "firewall rules", "firewall default packet policy", "firewall default app policy", and
  "firewall flow drop" for the later packets of a flow the firewall dropped); an accepted
  one does, and their drops, passes and alerts work as without a firewall.
- Default policies: ``firewall.policies.packet.filter`` (also ``pre-flow``, ``pre-stream``)
  and ``firewall.policies.app.<proto>.<state>`` (``request-started``...): a list, the first
  item the action (``accept:hook``, ``drop:flow``, ...), ``alert`` to alert when it applies
  (sid 2201000 "SURICATA FW default packet policy", 2201001 "SURICATA FW default app policy").

Which rules are the firewall set: the rules whose primary action is ``accept``, or a
scoped ``drop``/``reject`` on a rule hook (the shape Suricata requires of firewall rules and
that its threat-detection rules never take together), and every rule of a file named
``firewall.rules`` (suricata-verify's convention for ``--firewall-rules-exclusive``).

Entry points: `parse_header` (rules/parser.py: action and hook syntax), `split_firewall`
and `Firewall.inspector` (detect/engine.py: the firewall runs first in `inspect`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from netsentry.config import ConfigError, get
from netsentry.event import MATCH_PACKET, MATCH_TX, Alert, Event
from netsentry.rules.errors import RuleError
from netsentry.rules.hooks import SUB_STATES, tx_sub

FW_REJECTS = ("reject", "rejectsrc", "rejectdst", "rejectboth")
_SCOPES = {"accept": ("packet", "flow", "hook", "tx"), "drop": ("packet", "flow"), "pass": ("packet", "flow"),
           **{r: ("packet", "flow") for r in FW_REJECTS}}
_TD_ACTIONS = ("alert", "drop", "pass", *FW_REJECTS)

# drop.reason values (Suricata's decode.c PacketDropReasonToString)
REASON_RULES = "firewall rules"
REASON_PACKET_POLICY = "firewall default packet policy"
REASON_APP_POLICY = "firewall default app policy"
REASON_FLOW_DROP = "firewall flow drop"
REASON_PRE_STREAM = "firewall pre stream hook"
REASON_PRE_FLOW = "firewall pre flow hook"
_TABLE_REASON = {"pre_stream": REASON_PRE_STREAM, "pre_flow": REASON_PRE_FLOW}

# packet tables, in evaluation order; their hooks; default policies (design doc's table)
_PKT_TABLES = ("pre_flow", "pre_stream", "filter")
_TABLE_OF_HOOK = {"pre_flow": "pre_flow", "pre_stream": "pre_stream", "flow_start": "filter", "all": "filter"}
_DEFAULT_PKT_POLICY = {"pre_flow": ("accept", "hook"), "pre_stream": ("accept", "hook"), "filter": ("drop", "packet")}


@dataclass(frozen=True, slots=True)
class FwAction:
    """A rule's action field: the primary action and scope, the secondary actions, its hook."""

    action: str                         # accept, drop, reject*, alert, pass
    scope: str | None                   # packet, flow, hook, tx (None: not written)
    secondary: tuple[tuple[str, str | None], ...] = ()
    hook: Any = None                    # rules/hooks.py Hook, or None
    is_fw: bool = False                 # a firewall rule by its shape (module docstring)

    @property
    def alerts(self) -> bool:
        return any(a == "alert" for a, _s in self.secondary)

    @property
    def pass_flow(self) -> bool:
        return any(a == "pass" for a, _s in self.secondary)


def _one_action(text: str) -> tuple[str, str | None]:
    name, _, scope = text.partition(":")
    name = name.strip()
    scope = scope.strip() or None
    if name not in _SCOPES and name != "alert" and name != "config":
        raise RuleError(f"unknown action '{text}'")
    if scope is not None:
        if name not in _SCOPES or scope not in _SCOPES[name]:
            raise RuleError(f"action '{name}' has no scope '{scope}'")
    return name, scope


def parse_header(action: str, proto: str) -> tuple[str, str, FwAction | None]:
    """The parser's hook: Suricata 8's action field (``accept:flow,alert``) and protocol
    field with a hook (``tcp:flow_start``, ``http1:request_line``).

    Returns the action the rest of the parser (and the threat-detection engine) reads, the
    protocol without its hook, and the FwAction (None for a plain rule)."""
    if ":" not in action and "," not in action and ":" not in proto and action != "accept":
        return action, proto, None
    parts = [p for p in action.split(",")]
    prim, scope = _one_action(parts[0])
    secondary = tuple(_one_action(p) for p in parts[1:])
    hook = None
    if ":" in proto:
        from netsentry.rules.hooks import parse_hook
        base, _, name = proto.partition(":")
        hook = parse_hook(base, name)       # a sub-state too: http2:global:request_started
        proto = base
    is_fw = prim == "accept" or (scope is not None and hook is not None and prim in ("drop", *FW_REJECTS))
    if prim == "accept" and scope is None:
        raise RuleError("firewall action 'accept' needs a scope (accept:packet, :flow, :hook or :tx)")
    if is_fw and hook is None:
        raise RuleError(f"firewall rule needs an explicit hook in its protocol ('{proto}:all', ...)")
    if prim == "config":
        raise RuleError("action 'config' not supported")
    # a threat-detection rule with a hook: the parser gives it the hook's meaning in the
    # normal rule set (rules/hook_rules.py apply_hook, through FwAction.hook)
    if is_fw:
        base_action = "alert"           # never seen by the threat-detection engine
    elif prim == "accept" or prim not in _TD_ACTIONS:
        raise RuleError(f"unknown action '{action}'")
    else:
        base_action = prim
    return base_action, proto, FwAction(prim, scope, secondary, hook, is_fw)


def is_firewall_rule(sig: Any) -> bool:
    fw = getattr(sig, "firewall", None)
    if fw is None:
        return False
    return fw.is_fw or (fw.hook is not None and os.path.basename(sig.file or "") == "firewall.rules")


def split_firewall(sigs: Sequence[Any], config: Mapping[str, Any] | None, ips: bool,
                   files: Sequence[str] = ()) -> tuple[list[Any], Firewall | None]:
    """The engine's hook: (threat-detection rules, the Firewall or None outside firewall
    mode). Firewall mode: a firewall rule, `firewall.enabled`, or a rule file named
    firewall.rules (suricata-verify's --firewall-rules-exclusive) even with no rule in it;
    then the default policies decide what no rule does."""
    fw_sigs = [s for s in sigs if is_firewall_rule(s)]
    if not fw_sigs and not _mode_on(config, files):
        return list(sigs), None
    td = [s for s in sigs if not is_firewall_rule(s)]
    return td, Firewall(fw_sigs, config or {}, ips)


def _mode_on(config: Mapping[str, Any] | None, files: Sequence[str]) -> bool:
    return get(config or {}, "firewall.enabled", False) is True or any(
        os.path.basename(str(f)) == "firewall.rules" for f in files)


def rule_paths(config: Mapping[str, Any] | None) -> list[str]:
    """Suricata 8's firewall rule files: ``firewall.rule-files`` (a list, or the items
    ``--set firewall.rule-files.N=FILE`` gives) resolved against ``firewall.rule-path``,
    loaded before the threat-detection rules, only with ``firewall.enabled``."""
    fw = (config or {}).get("firewall")
    if not isinstance(fw, Mapping) or fw.get("enabled") is not True:
        return []
    files = fw.get("rule-files") or []
    if isinstance(files, Mapping):
        files = [files[k] for k in sorted(files, key=lambda k: int(k) if str(k).isdigit() else 0)]
    elif isinstance(files, str):
        files = [files]
    base = str(fw.get("rule-path") or (config or {}).get("default-rule-path") or ".")
    return [os.path.join(base, str(name)) for name in files if name]


def firewall_mode(config: Mapping[str, Any] | None, ruleset: Any) -> bool:
    """Firewall mode without any rule (the sensor builds a detection engine for it)."""
    return _mode_on(config, [f.path for f in getattr(ruleset, "files", ())])


def _policy(value: Any, key: str) -> tuple[str, str, bool]:
    """A configured policy list (``["drop:flow", "alert"]``) -> (action, scope, alert)."""
    items = [value] if isinstance(value, str) else list(value or [])
    if not items or not all(isinstance(i, str) for i in items):
        raise ConfigError(f"expected a list of actions, got {value!r}", key=key)
    try:
        prim, scope = _one_action(items[0])
        rest = [_one_action(i) for i in items[1:]]
    except RuleError as exc:
        raise ConfigError(str(exc), key=key) from None
    if prim not in ("accept", "drop", *FW_REJECTS) or scope is None:
        raise ConfigError(f"policy needs a scoped accept/drop/reject first, got {items[0]!r}", key=key)
    return prim, scope, any(a == "alert" for a, _ in rest)


def _alert(sid: int, msg: str, action: str, match_on: int, s: Any = None) -> Alert:
    if s is None:
        return Alert(sid, msg, 1, 1, "", 3, action, None, match_on)
    return Alert(s.sid, s.msg, s.gid, s.rev, s.class_description, s.severity, action, s.metadata or None, match_on)


class _FlowFw:
    """A flow's firewall state: accepted/dropped by the firewall, per transaction side the
    next state to evaluate and whether `accept:tx` took the rest of it."""

    __slots__ = ("accepted", "dropped", "next_hook", "tx_accepted", "matched", "unseen")

    def __init__(self) -> None:
        self.accepted = False
        self.dropped = False
        self.next_hook: dict[tuple[int, bool], int] = {}     # the last state evaluated
        self.tx_accepted: set[tuple[int, bool]] = set()
        # (tx id, side, rule) of the rules with transaction conditions that matched: as
        # Suricata keeps their inspection state, they are not evaluated on that tx again
        # (a rule with none, a bare hook rule, matches again on each update of its state)
        self.matched: set[tuple[int, bool, int]] | None = None
        # the pre_stream table dropped the flow's first packet: the stream engine has seen
        # none of it, so the next packet is the session's first (a SYN/ACK: midstream)
        self.unseen = False


# protocols whose transactions Suricata keeps one per direction: accept:tx is that side's
_TX_PER_DIRECTION = frozenset({"dns"})

# decisions of a rule / policy
_NONE, _ACCEPT_HOOK, _ACCEPT, _DROP = 0, 1, 2, 3


class Firewall:
    """The firewall rule set of one engine, with its default policies and per-flow state."""

    def __init__(self, sigs: Sequence[Any], config: Mapping[str, Any], ips: bool) -> None:
        self.ips = ips
        self.sigs = list(sigs)
        self._order = {id(sig): i for i, sig in enumerate(self.sigs)}
        # the rules' own detection_filter counts (by their place in self.sigs)
        self._thresholds: Any = None
        if any(sig.detection_filter is not None for sig in self.sigs):
            from netsentry.detect.threshold import ThresholdState
            self._thresholds = ThresholdState(self.sigs)
        # the app filter's rule alerts of the packet being inspected: (rule order, tx id,
        # whether it ends the packet's firewall verdict, event)
        self._app_alerts: list[tuple[tuple[int, int], int, bool, Event]] | None = None
        self.pkt_tables: dict[str, list[Any]] = {t: [] for t in _PKT_TABLES}
        # (app proto, to_server, sub-state) -> hook index -> [(sig, full)] in file order; full
        # False: an LTE rule at a state before its own (a match there is an accept:hook)
        self.app_rules: dict[tuple[str, bool, str | None], dict[int, list[tuple[Any, bool]]]] = {}
        self.app_protos: set[str] = set()
        # an app filter rule's place in the alert queue: by the state of its hook, then file
        # order (Suricata's SCSigOrderByAppFirewall)
        self._app_rank: dict[int, tuple[int, int]] = {}
        for s in self.sigs:
            hook = s.firewall.hook
            if hook.kind == "pkt":
                self.pkt_tables[_TABLE_OF_HOOK[hook.name]].append(s)
                continue
            proto = hook.proto
            self.app_protos.add(proto)
            last = self.hook_count(proto, hook.to_server, hook.sub) - 1
            at = last if hook.progress < 0 else hook.progress
            table = self.app_rules.setdefault((proto, hook.to_server, hook.sub), {})
            self._app_rank[id(s)] = (at, self._order[id(s)])
            for h in range(0 if hook.lte else at, at + 1):
                table.setdefault(h, []).append((s, h == at))
        # default policies
        self.pkt_policy = {t: (*_DEFAULT_PKT_POLICY[t], False) for t in _PKT_TABLES}
        pkt_cfg = get(config, "firewall.policies.packet", None) or {}
        if isinstance(pkt_cfg, Mapping):
            for name, value in pkt_cfg.items():
                table = str(name).replace("-", "_")
                if table not in self.pkt_policy:
                    raise ConfigError(f"unknown packet hook {name!r} ({', '.join(_PKT_TABLES)})",
                                      key=f"firewall.policies.packet.{name}")
                self.pkt_policy[table] = _policy(value, f"firewall.policies.packet.{name}")
        self.app_policy: dict[tuple[str, bool, str | None, int], tuple[str, str, bool]] = {}
        app_cfg = get(config, "firewall.policies.app", None) or {}
        if isinstance(app_cfg, Mapping):
            for proto, states in app_cfg.items():
                if not isinstance(states, Mapping):
                    continue
                for state, value in states.items():
                    if isinstance(value, Mapping):
                        # a sub-state's policies (http2: global / stream)
                        for sub_state, sub_value in value.items():
                            self._app_policy_row(str(proto), f"{state}:{sub_state}", sub_value)
                        continue
                    self._app_policy_row(str(proto), str(state), value)
        self._flows: dict[int, _FlowFw] = {}
        self._allowed: dict[int, Alert] = {}
        self._blocked: dict[int, Alert] = {}
        self._tx_allowed: dict[int, Alert] = {}
        self._tx_blocked: dict[int, Alert] = {}
        self.stats_accepted = 0
        self.stats_blocked = 0
        # the pre_stream table runs before the stream stage (`stream_stage`): its decision
        # on the packet the stream stage last saw, taken up again by `packet`
        self._pre: tuple[Any, int, list[Event]] | None = None
        self._bodies: dict[tuple[Any, ...], dict[str, Any]] = {}    # alert objects with `engine`
        self._reason = REASON_RULES
        # the transactions the app filter found moved on this packet, and the side's bit
        self._moved: list[Any] = []
        self._moved_bit = 0
        # transactions whose threat-detection rules this packet skips: a default app
        # policy accepted them (accept:flow, accept:tx, accept:hook at the state the last
        # transaction is in) where no firewall rule was there to evaluate (`_app_filter`)
        self._td_skip: list[Any] = []
        # no transaction rules run after the firewall (FirewallInspect): the firewall
        # consumes the transactions' update bits itself
        self.clear_updates = False
        # ids of the detect/log flush pseudo packets the packet filter sees (detect_log_packets)
        self._pseudo: set[int] = set()
        self.has_pre_stream = bool(self.pkt_tables["pre_stream"]) or (
            self.pkt_policy["pre_stream"][:2] != _DEFAULT_PKT_POLICY["pre_stream"])

    def _app_policy_row(self, proto: str, state: str, value: Any) -> None:
        from netsentry.rules.hooks import parse_hook
        try:
            hook = parse_hook(proto, state.replace("-", "_"))
        except RuleError:
            return                      # a protocol or state netsentry does not parse
        last = self.hook_count(hook.proto, hook.to_server, hook.sub) - 1
        at = last if hook.progress < 0 else hook.progress
        self.app_policy[(hook.proto, hook.to_server, hook.sub, at)] = _policy(
            value, f"firewall.policies.app.{proto}.{state.replace(':', '.')}")

    # --- tables ------------------------------------------------------------------------

    @staticmethod
    def hook_count(proto: str, to_server: bool, sub: str | None = None) -> int:
        from netsentry.rules.hooks import app_states, sub_states
        st = app_states(proto) if sub is None else sub_states(proto, sub)
        return len(st[0 if to_server else 1]) if st is not None else 2

    @staticmethod
    def progress(proto: str, tx: Any, to_server: bool, sub: str | None = None) -> int:
        if sub == "global":
            return 1                    # one frame of the connection: complete at once
        from netsentry.applayer.registry import STATES
        st = STATES.get(proto)
        if st is not None:
            return int(st[2](tx, to_server))
        return int(bool(tx.done[int(to_server)]))

    def inspector(self, engine: Any) -> FirewallInspect:
        return FirewallInspect(self, engine)

    # --- alerts ------------------------------------------------------------------------

    def _rule_alert(self, s: Any, blocked: bool, tx: bool) -> Alert:
        cache = (self._tx_blocked if blocked else self._tx_allowed) if tx else (
            self._blocked if blocked else self._allowed)
        key = id(s)
        a = cache.get(key)
        if a is None:
            a = cache[key] = _alert(0, "", "blocked" if blocked else "allowed", MATCH_TX if tx else MATCH_PACKET, s)
        return a

    # --- per packet --------------------------------------------------------------------

    def packet(self, pkt: Any, flow: Any) -> tuple[bool, list[Event] | None]:
        """Run the firewall on `pkt`. (stop, events): stop when the packet was dropped (the
        threat-detection rules do not see it); events: the firewall's alerts."""
        events: list[Event] = []
        st = None
        pre = self._pre
        first = 0
        if pre is not None:
            self._pre = None
            if pre[0] is pkt:
                if pre[1] == _DROP:
                    self.stats_blocked += 1
                    pkt.no_inspect = True
                    return True, pre[2] or None
                events = pre[2]
                first = _PKT_TABLES.index("filter") if pre[1] == _ACCEPT_HOOK else len(_PKT_TABLES)
        if flow is not None:
            fid = flow.flow_id
            st = self._flows.get(fid)
            if st is None:
                st = self._flows[fid] = _FlowFw()
            if flow.action == "drop":
                if self.ips:
                    pkt.verdict = "drop"
                    if st.dropped and pkt.drop_reason is None:
                        pkt.drop_reason = REASON_FLOW_DROP
                pkt.no_inspect = True
                return True, None
            if st.accepted:
                self.stats_accepted += 1
                return False, None
        decided = _NONE if first < len(_PKT_TABLES) else _ACCEPT
        for table in _PKT_TABLES[first:]:
            d = self._packet_table(table, pkt, flow, st, events)
            if d == _ACCEPT_HOOK:
                continue
            decided = d
            break
        if decided == _NONE:
            decided = _ACCEPT_HOOK
        if decided == _ACCEPT_HOOK:
            mark = len(events)
            self._app_alerts = []
            self._moved.clear()
            skip = self._td_skip
            if skip:
                skip.clear()
            decided = self._app_filter(pkt, flow, st, events)
            if len(self._app_alerts) > 1:
                self._settle_app_alerts(events, mark)
            self._app_alerts = None
            if decided == _NONE:
                decided = self._packet_policy("filter", pkt, flow, st, events, final=True)
            if self._moved and (decided == _DROP or self.clear_updates):
                # the transaction rules will not look at this packet (dropped, or there are
                # none): its updates are consumed here, so a later packet that moves nothing
                # does not find them (TxDetect.inspect clears them otherwise)
                clear = ~self._moved_bit
                for tx in self._moved:
                    tx.updated &= clear
                self._moved.clear()
            if skip and decided != _DROP:
                # Suricata (detect.c, DetectTxFirewallNoRulesApplyPolicies): with no firewall
                # rule among a transaction's candidates, the default policies of the states it
                # reached are applied first; an accept that skips the rest of the firewall
                # (flow or tx scope, or hook scope applying to the packet) skips that
                # transaction's rules on this packet too, without storing its progress: its
                # next update is inspected as usual
                clear = ~self._moved_bit
                for tx in skip:
                    tx.updated &= clear
                skip.clear()
        if decided == _DROP:
            self.stats_blocked += 1
            pkt.no_inspect = True
            return True, events or None
        self.stats_accepted += 1
        return False, events or None

    def pseudo_packet(self, pkt: Any, flow: Any) -> tuple[bool, list[Event] | None]:
        """A detect/log flush pseudo packet (detect_log_packets) through the packet filter
        rules: their alerts, and whether a drop stops the threat-detection rules. Not a
        wire packet: no default policy ends it, no counter counts it, no verdict is taken."""
        if flow is not None and flow.action == "drop":
            return True, None
        st = self._flows.get(flow.flow_id) if flow is not None else None
        if st is not None and st.accepted:
            return False, None
        events: list[Event] = []
        ips, self.ips = self.ips, False        # no verdict on a packet nobody forwards
        try:
            d = _NONE
            for s in self.pkt_tables["filter"]:
                if self._pkt_match(s, pkt, flow):
                    d = self._decide(s, pkt, flow, None, events, None, None, True)
                    if d != _NONE:
                        break
        finally:
            self.ips = ips
        return d == _DROP, events or None

    def stream_stage(self, update: Any, on_first: Any = None) -> Any:
        """The stream stage behind the `pre_stream` table (Suricata's PreStreamHook, run
        before StreamTcp): a TCP packet the table drops is never seen by the stream
        engine (nor, so, by the app layer); its decision and alerts wait for `packet`.
        `on_first(flow, pkt)`: the exception policies' new-session check, called for the
        packet that reaches the stream engine first after the flow's first was dropped
        (the SYN dropped, the SYN/ACK is a session picked up midstream)."""
        def stage(pkt: Any, flow: Any) -> None:
            st = None
            if flow is not None:
                if flow.action == "drop":
                    update(pkt, flow)
                    return
                st = self._flows.get(flow.flow_id)
                if st is None:
                    st = self._flows[flow.flow_id] = _FlowFw()
                if st.accepted:
                    update(pkt, flow)
                    return
            events: list[Event] = []
            d = self._packet_table("pre_stream", pkt, flow, st, events)
            self._pre = (pkt, d, events)
            if d == _DROP:
                if st is not None and flow.pkts_toserver + flow.pkts_toclient == 1:
                    st.unseen = True
                return
            if st is not None and st.unseen:
                st.unseen = False
                if on_first is not None:
                    on_first(flow, pkt)
            update(pkt, flow)
        return stage

    def _packet_table(self, table: str, pkt: Any, flow: Any, st: _FlowFw | None, events: list[Event]) -> int:
        rules = self.pkt_tables[table]
        self._reason = _TABLE_REASON.get(table, REASON_RULES)
        for s in rules:
            if not self._pkt_match(s, pkt, flow):
                continue
            d = self._decide(s, pkt, flow, st, events, None, None, True)
            if d != _NONE:
                self._reason = REASON_RULES
                return d
        self._reason = REASON_RULES
        if not rules and table != "filter":
            return _ACCEPT_HOOK
        return self._packet_policy(table, pkt, flow, st, events, final=False)

    def _filtered(self, s: Any, pkt: Any, flow: Any) -> bool:
        """A matching rule with `detection_filter` decides only once its count is passed in
        its window (a SYN flood drop after N SYNs): until then it is no match, and the
        next rule or the default policy decides."""
        from netsentry.detect.threshold import NO_MATCH
        return self._thresholds.check(self._order[id(s)], pkt, flow) == NO_MATCH

    def _pkt_match(self, s: Any, pkt: Any, flow: Any) -> bool:
        protos = s.ip_protos
        if protos is not None and pkt.proto not in protos:
            return False
        if s.firewall.hook.name == "flow_start":
            if flow is None:
                return False
            if (flow.pkts_toserver if pkt.to_server else flow.pkts_toclient) != 1:
                return False
        if not s.header_match(pkt, flow) or not s.match(pkt, flow):
            return False
        if s.detection_filter is not None and self._filtered(s, pkt, flow):
            return False
        if s.post_actions:
            s.post_match(pkt, flow)
        return True

    def _packet_policy(self, table: str, pkt: Any, flow: Any, st: _FlowFw | None, events: list[Event],
                       final: bool) -> int:
        action, scope, alert = self.pkt_policy[table]
        if action == "accept":
            if alert:
                a = _alert(2201000, "SURICATA FW default packet policy", "allowed", MATCH_PACKET)
                events.append(Event("alert", pkt.ts, pkt, flow, a,
                                    extra=self._fw_extra(a, None, _PKT_HOOK_NAME[table],
                                                         _policy_text(action, scope, alert))))
            if scope == "hook" and not final:
                return _ACCEPT_HOOK
            if scope == "flow" and st is not None:
                st.accepted = True
            return _ACCEPT
        alert_obj = _alert(2201000, "SURICATA FW default packet policy", "blocked", MATCH_PACKET)
        self._drop(pkt, flow, st, action, scope, REASON_PACKET_POLICY, alert_obj if alert else None)
        if alert:
            events.append(Event("alert", pkt.ts, pkt, flow, alert_obj,
                                extra=self._fw_extra(alert_obj, None, _PKT_HOOK_NAME[table],
                                                     _policy_text(action, scope, alert))))
        return _DROP

    def _drop(self, pkt: Any, flow: Any, st: _FlowFw | None, action: str, scope: str | None,
              reason: str, alert: Alert | None) -> None:
        if not self.ips:
            return
        pkt.verdict = "reject" if action in FW_REJECTS else "drop"
        if action in FW_REJECTS:
            pkt.reject_action = action
        if pkt.drop_reason is None:
            pkt.drop_reason = reason
        if alert is not None and pkt.drop_alert is None:
            pkt.drop_alert = alert
        if scope == "flow" and flow is not None:
            flow.action = "drop"
            if st is not None:
                st.dropped = True

    def _decide(self, s: Any, pkt: Any, flow: Any, st: _FlowFw | None, events: list[Event],
                tx: Any, key: Any, full: bool) -> int:
        """What a matching firewall rule does (packet or app table)."""
        fa = s.firewall
        prim, scope = fa.action, fa.scope
        if prim == "accept":
            if not full:
                return _ACCEPT_HOOK     # an LTE rule before its own state
            if (fa.alerts or s.force_alert) and not s.noalert:
                a = self._rule_alert(s, False, tx is not None)
                ev = Event("alert", pkt.ts, pkt, flow, a, extra=self._fw_extra(a, tx, _rule_hook(s), _rule_policy(s)))
                events.append(ev)
                if tx is not None and self._app_alerts is not None:
                    self._app_alerts.append((self._app_rank.get(id(s), (0, 0)), tx.tx_id,
                                             scope != "hook" or self._at_last(flow, tx, s), ev))
            if fa.pass_flow and flow is not None and flow.action is None:
                flow.action = "pass"    # the threat-detection rules skip the flow
            if scope == "hook":
                return _ACCEPT_HOOK
            if scope == "tx" and st is not None and key is not None:
                st.tx_accepted.add(key if flow.app_proto in _TX_PER_DIRECTION else (key[0], None))
                return _ACCEPT_HOOK if tx is not None else _ACCEPT
            if scope == "flow" and st is not None:
                st.accepted = True
            return _ACCEPT
        if prim == "drop" or prim in FW_REJECTS:
            alert = self._rule_alert(s, True, tx is not None)
            self._drop(pkt, flow, st, prim, scope, self._reason if tx is None else REASON_RULES, alert)
            if (fa.alerts or s.force_alert) and not s.noalert:
                ev = Event("alert", pkt.ts, pkt, flow, alert,
                           extra=self._fw_extra(alert, tx, _rule_hook(s), _rule_policy(s)))
                events.append(ev)
                if tx is not None and self._app_alerts is not None:
                    self._app_alerts.append((self._app_rank.get(id(s), (0, 0)), tx.tx_id, True, ev))
            return _DROP
        return _NONE

    def _settle_app_alerts(self, events: list[Event], mark: int) -> None:
        """Suricata's alert queue for one packet (PacketAlertFinalizeProcessQueue): the app
        filter's rule alerts in rule order, a rule's on the newest transaction first; after
        one that settles the packet (an accept other than accept:hook, an accept:hook at the
        state the packet's last transaction is in, a drop) the rest are not logged."""
        queue = sorted(self._app_alerts, key=lambda a: (a[0], -a[1]))
        keep: set[int] = set()
        for order, _tx_id, final, ev in queue:
            keep.add(id(ev))
            if final:
                break
        ours = {id(a[3]) for a in self._app_alerts}
        events[mark:] = [e for e in events[mark:] if id(e) not in ours or id(e) in keep]

    # --- app:filter ----------------------------------------------------------------------

    def _app_filter(self, pkt: Any, flow: Any, st: _FlowFw | None, events: list[Event]) -> int:
        """The app-layer states the packet's side of each transaction reached (module
        docstring). Accept when there is nothing to evaluate (no flow, no app layer, TCP
        not established, no transaction update), as Suricata's default accept."""
        if flow is None or st is None:
            return _ACCEPT
        app = flow.app
        if app is None or app.parser is None or not app.dirty:
            return _ACCEPT
        if pkt.proto == 6 and (not flow.established or not pkt.payload_len):
            # Suricata inspects a side's transactions on a packet that updated that side
            # (FLOW_TS/TC_APP_UPDATED): inline, the packet's own data; a bare ACK or FIN
            # does not (a reply that completed the request side waits for client data)
            return _ACCEPT
        proto = flow.app_proto or ""
        to_server = bool(pkt.to_server) != app.reversed
        txs = app.parser.txs
        n = len(txs)
        has_subs = proto in SUB_STATES
        nhooks = self.hook_count(proto, to_server)
        table = self.app_rules.get((proto, to_server, None), {})
        per_side = proto in _TX_PER_DIRECTION
        bit = 1 if to_server else 2
        sub = None
        moved = self._moved        # (emptied by `packet` before each app filter run)
        self._moved_bit = bit
        for i in range(n):
            tx = txs[i]
            upd = tx.updated & bit
            if has_subs:
                sub = tx_sub(proto, tx)
                if sub == "global" and tx.glob != int(to_server):
                    continue    # a frame of the other side: its transaction has no state here
                nhooks = self.hook_count(proto, to_server, sub)
                table = self.app_rules.get((proto, to_server, sub), {})
            key = (tx.tx_id, to_server)
            # accept:tx takes the whole transaction (both sides), except where Suricata
            # keeps a transaction per direction (DNS): that side only
            if (key if per_side else (tx.tx_id, None)) in st.tx_accepted:
                continue
            # the states reached since the last packet; the one the side is still in
            # (not left yet: a TLS hello in several segments) again on each packet moving it
            done = st.next_hook.get(key, -1)
            prog = min(self.progress(proto, tx, to_server, sub), nhooks - 1)
            if prog < done or prog == done == nhooks - 1:
                continue        # nothing new, or the side was complete already
            if not upd:
                # not moved by this side's bytes (a DNS request's transaction on the answer),
                # unless the other side's moved on a state of this side inspected before
                # (SSH: the client's NEWKEYS finishes both): Suricata inspects a side's
                # transactions on each update of that side, from the state it was last
                # inspected in
                if done < 0 or prog <= done:
                    continue
            else:
                moved.append(tx)
            # (from the state the side was in when last inspected: Suricata's
            # detect_progress_orig, whose rules are inspected again)
            first = done if done >= 0 else 0
            # no firewall rule at the states reached: the default policies decide alone
            no_rules = True
            for h in range(first, prog + 1):
                if table.get(h):
                    no_rules = False
                    break
            for h in range(first, prog + 1):
                d = _NONE
                accepted_before = False
                for s, full in table.get(h, ()):
                    stateful = full and (s.tx_chains or s.tx_checks)
                    if stateful and st.matched is not None and (tx.tx_id, to_server, id(s)) in st.matched:
                        accepted_before = accepted_before or s.firewall.action == "accept"
                        continue
                    if not self._app_match(s, pkt, flow, tx, to_server, full):
                        continue
                    if stateful:
                        if st.matched is None:
                            st.matched = set()
                        st.matched.add((tx.tx_id, to_server, id(s)))
                    d = self._decide(s, pkt, flow, st, events, tx, key, full)
                    if d != _NONE:
                        break
                if d == _NONE and accepted_before:
                    # the state was accepted on an earlier packet by a rule that is done
                    # with the transaction (its match is kept): the state stays accepted
                    d = _ACCEPT_HOOK
                if d == _NONE:
                    d = self._app_policy(proto, to_server, sub, h, pkt, flow, st, events, tx, key)
                    if no_rules and d != _DROP and self._policy_skips_td(proto, to_server, sub, h, prog,
                                                                         flow, tx):
                        self._td_skip.append(tx)
                if d == _DROP or d == _ACCEPT:
                    # the state was inspected: a packet that moves nothing here does not
                    # inspect it again (a dropped trap's rule does not match the next one's)
                    st.next_hook[key] = h
                    return d
                if (key if per_side else (tx.tx_id, None)) in st.tx_accepted:
                    break
                st.next_hook[key] = h
        return _ACCEPT

    def _policy_skips_td(self, proto: str, to_server: bool, sub: str | None, hook: int, prog: int,
                         flow: Any, tx: Any) -> bool:
        """The default app policy accepted at `hook` and that accept ends the firewall's
        part for the transaction on this packet (DetectFirewallApplyDefaultPolicies' SKIP):
        flow or tx scope, or hook scope at the state the flow's last transaction is in."""
        scope = self.app_policy.get((proto, to_server, sub, hook), ("drop", "flow", False))[1]
        if scope == "flow" or scope == "tx":
            return True
        txs = flow.app.parser.txs
        return scope == "hook" and hook == prog and bool(txs) and txs[-1] is tx

    def _at_last(self, flow: Any, tx: Any, s: Any) -> bool:
        """accept:hook applies to the packet: `tx` is the flow's last transaction and the
        rule's state is the one the transaction is in (ApplyAcceptToPacket)."""
        txs = flow.app.parser.txs
        if not txs or txs[-1] is not tx:
            return False
        hook = s.firewall.hook
        to_server = hook.to_server
        nhooks = self.hook_count(hook.proto, to_server, hook.sub)
        at = nhooks - 1 if hook.progress < 0 else hook.progress
        return at == min(self.progress(hook.proto, tx, to_server, hook.sub), nhooks - 1)

    def _app_match(self, s: Any, pkt: Any, flow: Any, tx: Any, to_server: bool, full: bool) -> bool:
        from netsentry.detect.txdetect import HEADER_FULL, TxDetect
        if not full:
            return s.header_match(pkt, flow)
        if not TxDetect._match(s, pkt, flow, tx, to_server, HEADER_FULL):
            return False
        if s.detection_filter is not None and self._filtered(s, pkt, flow):
            return False
        if s.post_actions:
            s.post_match(pkt, flow)
        return True

    def _app_policy(self, proto: str, to_server: bool, sub: str | None, hook: int, pkt: Any, flow: Any,
                    st: _FlowFw, events: list[Event], tx: Any, key: Any) -> int:
        action, scope, alert = self.app_policy.get((proto, to_server, sub, hook), ("drop", "flow", False))
        if action == "accept":
            if alert:
                a = _alert(2201001, "SURICATA FW default app policy", "allowed", MATCH_TX)
                events.append(Event("alert", pkt.ts, pkt, flow, a,
                                    extra=self._fw_extra(a, tx, _app_hook_name(proto, to_server, sub, hook),
                                                         _policy_text(action, scope, alert))))
            if scope == "flow":
                st.accepted = True
                return _ACCEPT
            if scope == "tx":
                st.tx_accepted.add(key if proto in _TX_PER_DIRECTION else (key[0], None))
            return _ACCEPT_HOOK
        alert_obj = _alert(2201001, "SURICATA FW default app policy", "blocked", MATCH_TX)
        self._drop(pkt, flow, st, action, scope, REASON_APP_POLICY, alert_obj if alert else None)
        if alert:
            events.append(Event("alert", pkt.ts, pkt, flow, alert_obj,
                                extra=self._fw_extra(alert_obj, tx, _app_hook_name(proto, to_server, sub, hook),
                                                     _policy_text(action, scope, alert))))
        return _DROP

    def _fw_extra(self, alert: Alert, tx: Any, hook: str | None, policy: str) -> dict[str, Any]:
        """A firewall alert's EVE additions (Suricata's AlertJsonHeader in firewall mode and
        AlertJsonAddFirewall): `alert.engine` "fw" and the `firewall` object (the hook the
        rule or policy is at, its policy), with the transaction's objects."""
        extra = _tx_extra(tx) or {}
        key = (alert.signature_id, alert.gid, alert.action, alert.signature)
        body = self._bodies.get(key)
        if body is None:
            from netsentry.output.eve import alert_object
            obj = alert_object(alert)
            body = self._bodies[key] = {"action": obj.pop("action"), "engine": "fw", **obj}
        extra["alert"] = body
        fw: dict[str, Any] = {"hook": hook} if hook else {}
        if policy:
            fw["policy"] = policy
        extra["firewall"] = fw
        return extra

    def detect_log_packets(self, flow: Any, pkts: list[Any], parent: Any, inline: bool,
                           settings: Mapping[str, Any] | None = None) -> list[Any]:
        """The pseudo packets of a detect/log flush (the session went encrypted: Suricata's
        StreamTcpDetectLogFlush) in firewall mode: one per direction whether or not stream
        data waits in it, IDS the parent packet's direction first and inline the other,
        each direction's first going through the packet filter (`FirewallInspect`), as
        Suricata's run the whole detection, `tcp:all` rules with them (a flow-end pseudo
        packet skips packet rules, and so the firewall's). Only where Suricata's parser turns
        all inspection off (APP_LAYER_PARSER_NO_INSPECTION: SSH's track-only and bypass, TLS's
        bypass; TLS's track-only turns off payload inspection only, and flushes nothing)."""
        from netsentry.stream.tcp import StreamEndPacket
        if flow.app_proto == "tls" and ((settings or {}).get("tls") or {}).get("encryption-handling") != "bypass":
            return pkts
        first = bool(parent.to_server) if parent is not None else True
        if inline:
            first = not first
        out: list[Any] = []
        for to_server in (first, not first):
            mine = [p for p in pkts if bool(p.to_server) == to_server]
            if not mine:
                mine = [StreamEndPacket.make(flow, to_server, 0, b"", b"")]
            self._pseudo.add(id(mine[0]))
            out.extend(mine)
        return out

    def flow_ended(self, flow: Any) -> None:
        """The flow ended (Sensor's flow-end hook): its firewall state goes with it, so a
        long-running sensor keeps state for live flows only."""
        self._flows.pop(flow.flow_id, None)

    def stats(self) -> dict[str, int]:
        return {"firewall.accepted": self.stats_accepted, "firewall.blocked": self.stats_blocked}


_PKT_HOOK_NAME = {"filter": "packet:filter", "pre_flow": "packet:pre_flow", "pre_stream": "packet:pre_stream"}


def _policy_text(action: str, scope: str | None, alert: bool, pass_flow: bool = False) -> str:
    """Suricata's DetectFirewallPolicyToString: ``accept:hook,alert``, ``drop:flow``."""
    name = "rejectsrc" if action == "reject" else action
    text = f"{name}:{scope or 'auto'}"
    if pass_flow:
        text += ",pass:flow"
    if alert:
        text += ",alert"
    return text


def _rule_policy(s: Any) -> str:
    fa = s.firewall
    return _policy_text(fa.action, fa.scope, bool(fa.alerts or s.force_alert), fa.pass_flow)


def _app_hook_name(proto: str, to_server: bool, sub: str | None, at: int) -> str | None:
    """``http:request_line``: the protocol and the name of state `at` (None when the
    protocol names no states)."""
    from netsentry.rules.hooks import app_states, sub_states
    st = app_states(proto) if sub is None else sub_states(proto, sub)
    if st is None:
        return None
    names = st[0 if to_server else 1]
    return f"{proto}:{names[min(at, len(names) - 1)]}" if names else None


def _rule_hook(s: Any) -> str | None:
    hook = s.firewall.hook
    if hook.kind == "pkt":
        return _PKT_HOOK_NAME[_TABLE_OF_HOOK[hook.name]]
    at = hook.progress
    if at < 0:
        at = Firewall.hook_count(hook.proto, hook.to_server, hook.sub) - 1
    return _app_hook_name(hook.proto, hook.to_server, hook.sub, at)


def _tx_extra(tx: Any) -> Any:
    if tx is None:
        return None
    from netsentry.detect.txdetect import alert_extra
    extra = alert_extra(tx)
    sub = tx_sub(tx.proto, tx)
    if sub is not None:
        extra["sub_state"] = sub        # the transaction type of a protocol with sub-states
    return extra


class FirewallInspect:
    """The engine's `inspect` in firewall mode: the firewall first, then (for a packet it
    did not drop) the threat-detection rules; the alerts of both, firewall's first."""

    __slots__ = ("fw", "engine", "td_flow_drops")

    def __init__(self, fw: Firewall, engine: Any) -> None:
        self.fw = fw
        self.engine = engine
        fw.clear_updates = getattr(engine, "tx", None) is None
        # threat-detection rules written `drop:flow`: their drop takes the flow whatever
        # their rule type (a `tcp-pkt` rule's drop is otherwise the packet's alone)
        self.td_flow_drops = frozenset((s.gid, s.sid) for s in engine.sigs
                                       if s.firewall is not None and not s.firewall.is_fw
                                       and s.firewall.scope == "flow" and s.action != "pass")

    def __call__(self, pkt: Any, flow: Any) -> list[Event] | None:
        from netsentry.stream.tcp import StreamEndPacket
        if pkt.__class__ is StreamEndPacket:
            fw = self.fw
            if fw._pseudo and id(pkt) in fw._pseudo:
                fw._pseudo.discard(id(pkt))
                stop, events = fw.pseudo_packet(pkt, flow)
                if stop:
                    return events
                td = type(self.engine).inspect(self.engine, pkt, flow)
                if events is None:
                    return td
                if td:
                    events.extend(td)
                return events
            return type(self.engine).inspect(self.engine, pkt, flow)
        stop, events = self.fw.packet(pkt, flow)
        if stop:
            return events
        td = type(self.engine).inspect(self.engine, pkt, flow)
        if pkt.verdict is not None:
            dropper = pkt.drop_alert
            if (dropper is not None and flow is not None and self.td_flow_drops
                    and (dropper.gid, dropper.signature_id) in self.td_flow_drops):
                flow.action = "drop"
            if events is not None:
                # the threat-detection rules dropped what the firewall's app filter accepted:
                # those accept alerts are discarded (Suricata's firewall_discarded); the
                # packet filter's stand
                events = [e for e in events if e.alert is None or e.alert.action != "allowed"
                          or e.alert.match_on != MATCH_TX] or None
        if events is None:
            return td
        if td:
            events.extend(td)
        return events

    def __reduce__(self) -> Any:
        return FirewallInspect, (self.fw, self.engine)
