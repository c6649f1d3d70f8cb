"""Suricata's rule types, as far as they change what the engine does with a rule.

From Suricata's "Rule Types and Categorization" (detect-engine-build.c,
SignatureSetType), the type decides when a rule is inspected and what its
pass/drop action applies to:

| type          | here                                              | inspected          | action scope |
|---------------|---------------------------------------------------|--------------------|--------------|
| ip_only       | no options but addresses (flowbits set allowed),  | once per flow      | flow         |
|               | any ports, no negated address                     | direction          |              |
| like_ip_only  | the same with a negated address                   | every packet       | flow         |
| stream        | tcp/ip with payload inspection, not packet-only   | every packet       | flow when the match is on stream data, else packet |
| app_layer     | an app protocol in the header and nothing else   | every packet of a  | flow         |
|               | (`alert http any any -> any any (sid:1;)`)        | flow of that proto |              |
| packet        | everything else (ttl, flags, dsize, flow:, flowbits isset, tcp-pkt, ...) | every packet | packet |
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from netsentry.detect.stream import stream_capable

if TYPE_CHECKING:  # pragma: no cover
    from netsentry.rules.signature import Signature

IP_ONLY, LIKE_IP_ONLY, STREAM, PACKET = "ip_only", "like_ip_only", "stream", "packet"
APP_LAYER = "app_layer"


def _negated(spec: str, address_vars: Mapping[str, str], seen: tuple[str, ...] = ()) -> bool:
    """Does an address spec contain a negation, also through $VARS ($EXTERNAL_NET is !$HOME_NET)?"""
    if "!" in spec:
        return True
    for part in spec.replace("[", ",").replace("]", ",").split(","):
        part = part.strip()
        if part.startswith("$") and part[1:] not in seen:
            value = address_vars.get(part[1:])
            if value is not None and _negated(str(value), address_vars, seen + (part[1:],)):
                return True
    return False


def rule_type(sig: Signature, address_vars: Mapping[str, str] | None = None) -> str:
    if sig.is_ip_only and not sig.pkt_only and not sig.needs_stream and sig.proto not in ("tcp-pkt", "tcp-stream"):
        vars_ = address_vars or {}
        if _negated(sig.src.text, vars_) or _negated(sig.dst.text, vars_):
            return LIKE_IP_ONLY
        return IP_ONLY
    if stream_capable(sig):
        return STREAM
    if (sig.app_proto is not None and not sig.tx_rule and sig.payload_chain is None
            and len(sig.packet_checks) == 1 and not sig.final_checks):
        # Suricata's SIG_TYPE_APPLAYER: no payload, packet or buffer keyword, only the
        # protocol check rules/parser.py's finish_app_layer added
        return APP_LAYER
    return PACKET


def flow_scoped(sig: Signature) -> bool:
    """A threat-detection rule whose pass/drop/reject applies to the flow whatever its
    type here (detect/engine.py `_flow_scope`): its action field names the flow scope
    (`pass:flow`, `drop:flow`: Suricata's ACTION_SCOPE_FLOW), or it is a protocol
    detection only rule (SIG_TYPE_PDONLY, whose flow_action is the flow's)."""
    if sig.action not in ("pass", "drop", "reject", "rejectsrc", "rejectdst", "rejectboth"):
        return False
    if getattr(sig, "pd_only", False):
        return True         # SIG_TYPE_PDONLY: its action is the flow's (signature_properties)
    fw = getattr(sig, "firewall", None)
    return fw is not None and not fw.is_fw and fw.scope == "flow"

