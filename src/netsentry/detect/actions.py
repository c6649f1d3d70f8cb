"""Rule actions: Suricata's evaluation order of signatures and what each action does.

Order (Suricata's detect-engine-sigorder.c, applied as one sort key; equal
keys are ordered by sid, as Suricata's final tie-breaker, then load order):

1. action, by `action-order` (default pass, drop, reject, alert), so a
   matching pass rule is seen before anything it silences;
2. flowbits use: rules that only set a bit, then rules that set and read,
   then rules that only read, then rules without flowbits -- a setter runs
   before a checker of the same packet and the checker sees the bit;
3. flowint use, the same way (rules that change a flowint before rules that
   only compare one);
4. priority (1 first).

What a match does (detect-engine-alert.c, PacketAlertFinalize):

- `pass`: no alert for it or any later rule on this packet, and the flow is
  passed (later packets are not inspected) unless the rule is packet-only
  (`tcp-pkt`, `flow:no_stream`).
- `drop` (IPS): the packet is dropped and so is the flow (later packets are
  dropped without inspection); the alert's action is "blocked". In IDS mode
  a drop rule alerts like `alert` ("allowed").
- `reject*`: as drop, plus the verdict asks respond/ for a reset or ICMP
  unreachable; its alert says "blocked" in both modes, as Suricata's does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from netsentry.rules.signature import Signature

DEFAULT_ACTION_ORDER = ("pass", "drop", "reject", "alert")

# flowbits (and flowint) classes in evaluation order (Suricata: SET 3, SET_READ 2, READ 1, unused -1; higher first)
_FB_SET, _FB_SET_READ, _FB_READ, _FB_NONE = 0, 1, 2, 3

REJECT_ACTIONS = frozenset({"reject", "rejectsrc", "rejectdst", "rejectboth"})

# (gid, sid) of the loaded pass rules that also alert (`pass ...; alert;`): the EVE
# verdict of their alerts is "pass" (Suricata's EveAddVerdict looks at the alert's own
# action), filled by every engine built (detect/engine.py, register_pass_alerts)
PASS_ALERT_RULES: set[tuple[int, int]] = set()


def register_pass_alerts(sigs: Sequence[Signature]) -> None:
    """Remember which rules are pass rules with `alert` (see PASS_ALERT_RULES)."""
    PASS_ALERT_RULES.update((s.gid, s.sid) for s in sigs if s.action == "pass" and s.force_alert)
BLOCKING_ACTIONS = REJECT_ACTIONS | {"drop"}


def action_rank(action: str, order: Sequence[str] = DEFAULT_ACTION_ORDER) -> int:
    """Position of `action` in the action order (reject variants rank as reject)."""
    base = "reject" if action in REJECT_ACTIONS else action
    try:
        return list(order).index(base)
    except ValueError:
        raise ValueError(f"detect.action-order: action {action!r} missing from {list(order)}") from None


def flowbits_class(sig: Signature) -> int:
    return _var_class(bool(sig.flowbits_set), bool(sig.flowbits_checked))


def flowint_class(sig: Signature) -> int:
    return _var_class(bool(sig.flowints_set), bool(sig.flowints_checked))


def _var_class(sets: bool, reads: bool) -> int:
    """Suricata's SET > SET_READ > READ > unused, as ascending sort keys."""
    if sets and reads:
        return _FB_SET_READ
    if sets:
        return _FB_SET
    if reads:
        return _FB_READ
    return _FB_NONE


def order_key(s: Signature, action_order: Sequence[str] = DEFAULT_ACTION_ORDER) -> tuple[int, int, int, int, int]:
    """A rule's place in the evaluation order, comparable across the packet and the
    transaction engines: Suricata sorts both kinds into one list and so one alert queue
    (PacketAlertFinalize walks it in that order)."""
    return (action_rank(s.action, action_order), flowbits_class(s), flowint_class(s), s.severity, s.sid)


def evaluation_order(sigs: Sequence[Signature], action_order: Sequence[str] = DEFAULT_ACTION_ORDER
                     ) -> list[Signature]:
    """`sigs` sorted into the order the engine evaluates (and reports) them."""
    keyed = [(order_key(s, action_order), i, s) for i, s in enumerate(sigs)]
    keyed.sort(key=lambda t: (t[0], t[1]))
    return [s for _k, _i, s in keyed]


def alert_action(action: str, ips: bool) -> str:
    """EVE `alert.action`: "blocked" for reject always, for drop in IPS mode; else "allowed"."""
    if action in REJECT_ACTIONS or (ips and action == "drop"):
        return "blocked"
    return "allowed"


def verdict_of(action: str, ips: bool) -> str | None:
    """The packet verdict a matching rule of `action` asks for (None: accept)."""
    if action in REJECT_ACTIONS:
        return "reject"
    if action == "drop" and ips:
        return "drop"
    return None
