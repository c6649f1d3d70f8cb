"""Exception policies: what the sensor does to traffic it cannot handle normally, as Suricata's.

An exception is a condition where the sensor would lose sight of traffic
(a memory cap reached, a TCP session picked up in the middle). In IPS mode
the safe answer is usually to fail closed, in IDS mode to carry on; the
policy makes that a decision of the admin, per condition, with Suricata's
names and defaults (doc/userguide/configuration/exception-policies.rst):

- ``exception-policy`` (the master switch, default ``auto``): the policy of
  every condition not set on its own. ``auto`` is ``drop-flow`` in IPS mode
  (``drop-packet`` where a condition can only act on the packet) and
  ``ignore`` in IDS mode; drop policies given to the master switch in IDS
  mode become ``ignore``.
- per condition: ``stream.midstream-policy`` (a TCP session whose first
  packet seen is not its SYN). With ``stream.midstream: true`` only
  ``ignore`` and ``pass-flow`` make sense and ``auto`` is ``ignore``: the
  admin asked for midstream sessions to be picked up.

Values: ``drop-flow`` (drop this and every later packet of the flow),
``drop-packet``, ``reject`` / ``rejectboth`` (drop-flow, and a reject
response), ``pass-flow`` / ``bypass`` (no more inspection of the flow),
``pass-packet``, ``ignore``.

When a condition is met, the policy is applied to the packet and flow,
counted (``exception_policy.tcp.midstream.drop_flow``, Suricata 8's counter
names; a condition whose policy is not ignore has its counter from the start, at 0), logged once per condition in
the daemon's log, and written to the flow record as
``flow.exception_policy: [{"target": "stream_midstream", "policy": "ignore"}]``
(also for ``ignore``, as Suricata does).

The memory caps (`CONDITIONS`, one row each: key, flow-record target,
counter, scope), each applied at the point its stage hits the cap:

- ``flow.memcap-policy``: the flow table is at ``flow.max-flows`` and a
  packet would start a new flow (`FlowTable(on_full=)`). Left unset, the
  table reuses: it frees its longest-idle flows, as Suricata reuses flows
  before its memcap policy applies, and the condition never occurs (the
  master switch alone does not change that).
  Set, the table no longer evicts at the cap and the packet meets the
  policy without a flow (``ignore``: inspected as a packet only): a packet
  condition (``drop-flow`` acts as ``drop-packet``). Counted in
  ``flow.memcap`` as well.
- ``defrag.memcap-policy``: a fragment finds ``defrag.memcap``,
  ``defrag.max-frags`` or ``defrag.trackers`` exhausted
  (`Defragmenter.on_memcap`); a packet condition (defragmentation runs
  before the flow lookup).
- ``stream.reassembly.memcap-policy``: a segment that would wait out of
  order finds ``stream.reassembly.memcap`` reached (`StreamEngine.on_memcap`);
  a flow condition.
- ``app-layer.error-policy``: an app-layer parser gives up on a direction
  because the bytes are not its protocol any more (`ParserError`,
  `AppLayer.on_error`); a flow condition.

A full NFQUEUE is the kernel's to handle, by ``nfq.fail-open`` (accept or
drop the packet, see docs/daemon.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from netsentry.config import ConfigError, get

POLICIES = ("auto", "drop-packet", "drop-flow", "reject", "rejectboth", "bypass", "pass-packet",
            "pass-flow", "ignore")
# EVE and stats spell them with underscores (Suricata's ExceptionPolicyEnumToString, JSON form)
JSON_NAMES = {"drop-packet": "drop_packet", "drop-flow": "drop_flow", "reject": "reject",
              "rejectboth": "reject_both", "bypass": "bypass", "pass-packet": "pass_packet",
              "pass-flow": "pass_flow", "ignore": "ignore"}
# a packet-only condition turns a flow policy into its packet form (Suricata's PickPacketAction)
_PACKET_FORM = {"drop-flow": "drop-packet", "pass-flow": "pass-packet", "bypass": "ignore"}

TH_SYN, TH_RST, TH_ACK = 0x02, 0x04, 0x10
MIDSTREAM_COUNTER = "exception_policy.tcp.midstream"


def _parse(value: Any, key: str) -> str:
    if not isinstance(value, str) or value not in POLICIES:
        raise ConfigError(f"expected one of {', '.join(POLICIES)}, got {value!r}", key)
    return value


def _auto(ips: bool, midstream_enabled: bool, flow_scope: bool) -> str:
    if ips and not midstream_enabled:
        return "drop-flow" if flow_scope else "drop-packet"
    return "ignore"


def master_policy(config: Mapping[str, Any], ips: bool) -> str:
    """The master switch as configured (``auto`` kept: each condition resolves it for itself)."""
    policy = _parse(get(config, "exception-policy", "auto"), "exception-policy")
    if not ips and policy in ("drop-packet", "drop-flow"):
        return "ignore"         # nothing to drop in IDS mode
    return policy


def packet_policy(config: Mapping[str, Any], key: str, ips: bool) -> str:
    """A condition that can only act on the packet (e.g. a memcap with no flow to act on)."""
    value = get(config, key, "") or ""
    if value:
        policy = _parse(value, key)
        if policy == "auto":
            policy = _auto(ips, False, False)
    else:
        policy = master_policy(config, ips)
        if policy == "auto":
            policy = _auto(ips, False, False)
    return _PACKET_FORM.get(policy, policy)


def midstream_policy(config: Mapping[str, Any], ips: bool) -> str:
    """``stream.midstream-policy``, or the master switch's, checked as Suricata checks it."""
    key = "stream.midstream-policy"
    enabled = bool(get(config, "stream.midstream", False))
    value = get(config, key, "") or ""
    if value:
        policy = _parse(value, key)
        if policy == "auto":
            policy = _auto(ips, enabled, True)
        elif enabled and policy not in ("ignore", "pass-flow"):
            raise ConfigError(f"{policy!r} is not valid while stream.midstream is true "
                              "(midstream sessions are picked up): use pass-flow or ignore", key)
        if not ips and policy == "drop-flow":
            raise ConfigError("drop-flow is not valid in IDS mode", key)
    else:
        policy = master_policy(config, ips)
        if policy == "auto":
            policy = _auto(ips, enabled, True)
        if policy in ("drop-packet", "pass-packet"):
            raise ConfigError(f"exception-policy: {policy} cannot act on a midstream session (a flow "
                              "condition); set stream.midstream-policy", key)
    if policy in ("drop-packet", "pass-packet"):
        raise ConfigError(f"{policy} is not valid for midstream sessions (a flow condition)", key)
    return policy


def condition_policy(config: Mapping[str, Any], key: str, ips: bool, flow_scope: bool) -> str:
    """A memcap or error condition's policy: its own key, else the master switch.

    A packet condition turns flow policies into their packet form; in IDS mode a policy
    that drops (set on the condition itself) is a configuration error, as nothing can be
    dropped there."""
    value = get(config, key, "") or ""
    if value:
        policy = _parse(value, key)
        if policy == "auto":
            policy = _auto(ips, False, flow_scope)
        elif not ips and policy in _DROPPING:
            raise ConfigError(f"{policy} is not valid in IDS mode (nothing is dropped there)", key)
    else:
        policy = master_policy(config, ips)
        if policy == "auto":
            policy = _auto(ips, False, flow_scope)
        elif not ips and policy in _DROPPING:
            policy = "ignore"
    return policy if flow_scope else _PACKET_FORM.get(policy, policy)


_DROPPING = ("drop-packet", "drop-flow", "reject", "rejectboth")
# the policies that take their packet out of detection (Suricata's ExceptionPolicyApply:
# every policy but ignore; reject only in IPS mode, where it falls through to drop-flow)
_NO_INSPECTION = frozenset({"drop-packet", "drop-flow", "pass-packet", "pass-flow", "bypass"})

# EVE drop.reason of the packet a policy drops, by target (Suricata's PacketDropReason
# that each ExceptionPolicyApply call site passes); the flow's later packets are logged
# as "exception policy flow drop" (EP_FLOW_DROP_REASON, output/eve.py)
DROP_REASONS = {
    "stream_midstream": "stream midstream",
    "flow_memcap": "flow memcap",
    "defrag_memcap": "defrag memcap",
    "stream_reassembly_memcap": "stream reassembly",
    "app_layer_error": "applayer error",
}
EP_FLOW_DROP_REASON = "exception policy flow drop"
FLOW_DROPPING = frozenset({"drop_flow", "reject", "reject_both"})   # JSON_NAMES of the policies that drop a flow


def dropped_by_policy(flow: Any) -> bool:
    """Was `flow` dropped by an exception policy (Suricata's FLOW_ACTION_BY_EXCEPTION_POLICY),
    not by a rule? Read from the policies the flow record lists."""
    applied = getattr(flow, "exception_policy", None)
    return bool(applied) and any(policy in FLOW_DROPPING for _target, policy in applied)


@dataclass(frozen=True)
class Condition:
    """One memory cap or error a stage can hit (Suricata's exception policy of that name)."""

    key: str            # the policy's configuration key
    target: str         # its name in the flow record's exception_policy list
    counter: str        # stats: <counter>.<policy>
    flow_scope: bool    # the policy can act on the flow (else on the packet only)


# Suricata's keys and flow-record targets, Suricata 8's counter names (exception-policies.rst)
CONDITIONS = {
    "flow_memcap": Condition("flow.memcap-policy", "flow_memcap", "exception_policy.flow.memcap", False),
    "defrag_memcap": Condition("defrag.memcap-policy", "defrag_memcap", "exception_policy.defrag.memcap", False),
    "stream_reassembly_memcap": Condition("stream.reassembly.memcap-policy", "stream_reassembly_memcap",
                                          "exception_policy.tcp.reassembly", True),
    "app_layer_error": Condition("app-layer.error-policy", "app_layer_error",
                                 "exception_policy.app_layer.error", True),
}


class ExceptionPolicies:
    """The resolved policies of one run, applied by the stages' hooks (see the module doc)."""

    def __init__(self, config: Mapping[str, Any], ips: bool) -> None:
        self.ips = ips
        self.midstream = midstream_policy(config, ips)
        self.policies = {name: condition_policy(config, c.key, ips, c.flow_scope)
                         for name, c in CONDITIONS.items()}
        # flow reuse unless the admin asked for a flow memcap policy (module doc)
        self.flow_reuse = not (get(config, "flow.memcap-policy", "") or "")
        # a condition whose policy is not ignore has its counter at 0 from the start (Suricata
        # registers it only then: no counter means the condition is ignored)
        self.counts: dict[str, int] = {}
        if self.midstream != "ignore":
            self.counts[f"{MIDSTREAM_COUNTER}.{JSON_NAMES[self.midstream]}"] = 0
        for name, c in CONDITIONS.items():
            if self.policies[name] != "ignore" and not (name == "flow_memcap" and self.flow_reuse):
                self.counts[f"{c.counter}.{JSON_NAMES[self.policies[name]]}"] = 0
        self._logged: set[str] = set()

    def attach(self, defrag: Any, stream: Any, applayer: Any) -> None:
        """Hook the stages that hit caps (the flow table's hook is given at its construction:
        `on_flow_full`, when `flow_reuse` is off)."""
        if defrag is not None:
            defrag.on_memcap = self.on_defrag_memcap
        if stream is not None:
            stream.on_memcap = self.on_reassembly_memcap
        if applayer is not None:
            applayer.on_error = self.on_applayer_error

    def _condition(self, name: str, pkt: Any, flow: Any) -> None:
        c = CONDITIONS[name]
        self.apply(c.target, self.policies[name], c.counter, pkt, flow)

    def on_flow_full(self, pkt: Any) -> bool:
        """FlowTable's on_full: the table is at max-flows. False: the packet gets no flow."""
        self.counts["flow.memcap"] = self.counts.get("flow.memcap", 0) + 1
        self._condition("flow_memcap", pkt, None)
        return False

    def on_defrag_memcap(self, pkt: Any) -> None:
        """Defragmenter: a fragment that found the defrag memcap, max-frags or trackers used up."""
        self._condition("defrag_memcap", pkt, None)

    def on_reassembly_memcap(self, pkt: Any, flow: Any) -> None:
        """StreamEngine: an out-of-order segment that found stream.reassembly.memcap reached."""
        self._condition("stream_reassembly_memcap", pkt, flow)

    def on_applayer_error(self, flow: Any, pkt: Any) -> None:
        """AppLayer: a parser gave up on a direction (ParserError)."""
        self._condition("app_layer_error", pkt, flow)

    def on_new_flow(self, flow: Any, pkt: Any) -> None:
        """Once per new flow (FlowTable's on_new): a TCP flow whose first packet is neither a
        SYN nor a RST is a session picked up in the middle (Suricata: an ACK, SYN-ACK or FIN
        with no session)."""
        if flow.proto != 6:
            return
        flags = pkt.tcp_flags
        if flags & TH_RST or (flags & TH_SYN and not flags & TH_ACK):
            return
        self.apply("stream_midstream", self.midstream, MIDSTREAM_COUNTER, pkt, flow)

    def apply(self, target: str, policy: str, counter: str, pkt: Any, flow: Any) -> None:
        """Apply `policy` for condition `target` to `pkt` (and its `flow`)."""
        if flow is not None:
            applied = flow.exception_policy
            entry = (target, JSON_NAMES[policy])
            if applied is None:
                flow.exception_policy = [entry]
            elif entry not in applied:
                applied.append(entry)
        if policy == "ignore":
            return
        name = f"{counter}.{JSON_NAMES[policy]}"
        self.counts[name] = self.counts.get(name, 0) + 1
        if target not in self._logged:
            self._logged.add(target)
            from netsentry.log import get_logger
            get_logger().warning("exception policy applied", target=target, policy=policy,
                                 ips=self.ips, note="logged once per condition; see stats " + counter)
        if pkt is not None and (policy in _NO_INSPECTION or (self.ips and policy in ("reject", "rejectboth"))):
            # Suricata's DecodeSetNoPacketInspectionFlag: detection skips this one packet
            # (its packet and transaction rules); read by detect/engine.py and txdetect.py
            pkt.no_inspect = True
        if self.ips and pkt is not None and policy in _DROPPING and pkt.drop_reason is None:
            pkt.drop_reason = DROP_REASONS.get(target)
        if policy in ("drop-flow", "reject", "rejectboth"):
            if self.ips and flow is not None:
                flow.action = "drop"
            if self.ips and pkt is not None:
                if policy == "drop-flow":
                    pkt.verdict = "drop"
                else:
                    pkt.verdict = "reject"
                    pkt.reject_action = policy      # respond/verdict.py: who gets the reject
        elif policy == "drop-packet":
            if self.ips and pkt is not None:
                pkt.verdict = "drop"
        elif policy in ("pass-flow", "bypass"):
            if flow is not None:
                flow.action = "pass"

    def stats(self) -> dict[str, int]:
        return dict(self.counts)
