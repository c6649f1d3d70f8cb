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
counted (``tcp.midstream_exception_policy.drop_flow``, Suricata's counter
names, only for a policy other than ignore), logged once per condition in
the daemon's log, and written to the flow record as
``flow.exception_policy: [{"target": "stream_midstream", "policy": "ignore"}]``
(also for ``ignore``, as Suricata does).

Other caps: the flow table frees its longest-idle flow when ``flow.max-flows``
is reached (Suricata's flow-reuse), so a "no flow could be freed" condition
cannot occur; a full NFQUEUE is the kernel's to handle, by ``nfq.fail-open``
(accept or drop the packet, see docs/daemon.md).
"""

from __future__ import annotations

from collections.abc import Mapping
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


class ExceptionPolicies:
    """The resolved policies of one run, applied by the flow table's new-flow hook."""

    def __init__(self, config: Mapping[str, Any], ips: bool) -> None:
        self.ips = ips
        self.midstream = midstream_policy(config, ips)
        self.counts: dict[str, int] = {}
        self._logged: set[str] = set()

    def on_new_flow(self, flow: Any, pkt: Any) -> None:
        """Once per new flow (FlowTable's on_new): a TCP flow whose first packet is neither a
        SYN nor a RST is a session picked up in the middle (Suricata: an ACK, SYN-ACK or FIN
        with no session)."""
        if flow.proto != 6:
            return
        flags = pkt.tcp_flags
        if flags & TH_RST or (flags & TH_SYN and not flags & TH_ACK):
            return
        self.apply("stream_midstream", self.midstream, "tcp.midstream_exception_policy", pkt, flow)

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
        if policy in ("drop-flow", "reject", "rejectboth"):
            if self.ips and flow is not None:
                flow.action = "drop"
            if self.ips:
                if policy == "drop-flow":
                    pkt.verdict = "drop"
                else:
                    pkt.verdict = "reject"
                    pkt.reject_action = policy      # respond/verdict.py: who gets the reject
        elif policy == "drop-packet":
            if self.ips:
                pkt.verdict = "drop"
        elif policy in ("pass-flow", "bypass"):
            if flow is not None:
                flow.action = "pass"

    def stats(self) -> dict[str, int]:
        return dict(self.counts)
