"""`bypass` (Suricata's detect-bypass.c): once the rule matches, stop inspecting its flow.

A post-match keyword: after the whole rule matched (and alerted, unless
`noalert`), the flow is bypassed locally (detect/bypass.py): later packets
of it skip stream, app layer, detection and records. Suricata refuses it
with `filestore` in the same rule (a file cannot be stored from a flow
nobody reads any more).
"""

from __future__ import annotations

from netsentry.detect.bypass import bypass_flow
from netsentry.rules.errors import RuleError
from netsentry.rules.registry import RuleBuilder, keyword


@keyword("bypass", value="none", help="bypass; stop inspecting the flow once the rule matched")
def bypass(b: RuleBuilder, arg: str | None) -> None:
    if "filestore" in b.seen:
        raise RuleError("bypass can't work with the filestore keyword")
    fw = getattr(b.sig, "firewall", None)
    if fw is not None and fw.is_fw:
        # Suricata 8: a firewall rule decides accept/drop, it never bypasses
        raise RuleError("keyword 'bypass' is not allowed in firewall mode")
    if bypass_flow not in b.post_actions:
        b.post_actions.append(bypass_flow)
