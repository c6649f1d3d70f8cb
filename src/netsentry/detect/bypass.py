"""Local bypass (Suricata's `bypass` keyword and PacketBypassCallback without capture offload).

When a rule with `bypass` matches, its flow is *bypassed*: the packet that
matched finishes its way through the pipeline, and every later packet of the
flow only updates the flow's counters (flow table) and is accepted; no stream
reassembly, app-layer parsing, detection or transaction record for it
(Suricata's flow worker returns right after FlowHandlePacketUpdate for a
FLOW_STATE_LOCAL_BYPASSED flow). The flow record says so: ``state``
``bypassed``, ``bypass`` ``local``. (Suricata's ``flow_bypassed.local_pkts``
and ``local_bytes`` counters are not kept.)

The mark is ``flow.action = "bypass"``, a value next to ``drop`` and ``pass``
that the capture loop's `bypass` part tests (capture_loop.py), built into the
loop only when a loaded rule uses the keyword.
"""

from __future__ import annotations

from typing import Any

BYPASS = "bypass"


def bypass_flow(pkt: Any, flow: Any) -> None:
    """The keyword's post-match action: bypass the packet's flow (once; never a dropped one,
    and not from the flow-end pseudo packet, which is no packet of the flow's traffic)."""
    if flow is None or not pkt.pcap_cnt:
        return
    if flow.action is None or flow.action == "pass":
        flow.action = BYPASS


def uses_bypass(ruleset: Any) -> bool:
    """Whether a rule of `ruleset` has the `bypass` keyword (so the loop needs its part)."""
    if ruleset is None:
        return False
    return any(bypass_flow in s.post_actions for s in getattr(ruleset, "signatures", ()))


def flow_counters(counters: dict[str, Any]) -> dict[str, Any]:
    """A bypassed flow's ``flow{}`` object: ``state`` ``bypassed`` and ``bypass`` ``local``
    right after it (Suricata's output-json-flow.c order), the rest as it was."""
    out: dict[str, Any] = {}
    for key, value in counters.items():
        if key == "state":
            out["state"] = "bypassed"
            out["bypass"] = "local"
        else:
            out[key] = value
    return out
