"""Inline verdicts: what the sensor's drop/reject decision does to the packet in the queue.

The sensor calls `InlineVerdicts.on_verdict(pkt)` for every packet whose
``pkt.verdict`` a rule set (drop or reject), and for an accepted packet whose bytes
the stream stage rewrote (``pkt.verdict`` None: the source forwards the new bytes);
every other packet is accepted by the source itself (capture/nfqueue.py). Here the
packet is dropped in the
queue and, for reject rules, the RST / ICMP unreachable goes out to the side(s)
the rule's action names (reject.py). Counted as Suricata's ``ips.rejected``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class InlineVerdicts:
    """The verdict sink of an inline source: drop in the queue, respond to rejects."""

    def __init__(self, source: Any, rejecter: Any, actions: Mapping[tuple[int, int], str]) -> None:
        self.source = source
        self.rejecter = rejecter
        self.actions = actions        # (gid, sid) -> rule action, to tell reject from rejectdst/rejectboth
        self.rejected = 0

    def on_verdict(self, pkt: Any) -> None:
        self.source.verdict(pkt)
        if pkt.verdict == "reject":
            self.rejected += 1
            alert = pkt.drop_alert
            action = "reject"
            if alert is not None:
                action = self.actions.get((alert.gid, alert.signature_id), "reject")
            else:       # an exception policy's reject (exception_policy.py)
                action = getattr(pkt, "reject_action", None) or "reject"
            if self.rejecter is not None:
                self.rejecter.reject(pkt, action)

    def stats(self) -> dict[str, int]:
        counters = {"ips.rejected": self.rejected}
        if self.rejecter is not None:
            counters["netsentry.respond.reject_sent"] = self.rejecter.sent
            counters["netsentry.respond.reject_errors"] = self.rejecter.errors
        return counters
