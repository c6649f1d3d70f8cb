"""Rule hooks on the normal (threat-detection) rule set: what ``alert http1:request_body``
or ``alert tcp:flow_start`` means outside firewall mode (Suricata 8, detect-parse.c
SigParseProtoHookApp / SigParseProtoHookPkt and detect.c's hook handling).

The hook name is read by `rules/hooks.py` (shared with the firewall rule set,
`detect/firewall.py`); here it becomes conditions on the rule:

- an **app-layer hook** (``proto:state``): the rule is a transaction rule of that
  protocol and side, inspected once the side's progress reached the state (the
  generic ``*_started`` is progress 0, ``*_complete`` the side's last state). As
  in Suricata, a rule whose only condition is the hook re-matches on each update
  of the transaction while it is exactly at that state (``response_body`` alerts
  on each piece of body) and is done once the transaction moved past it; a rule
  with buffers or other transaction keywords is done with the transaction once it
  matched (the `app-layer-state` keyword's hook semantics, rules/keywords/applayer.py).
- a **packet hook**: ``flow_start`` matches the first packet of each direction of a
  flow (the packet that starts it and the first reply); ``pre_flow``,
  ``pre_stream`` and ``all`` name points in Suricata's firewall pipeline that the
  normal rule set has no separate stage for, so such a rule is inspected as a plain
  packet rule on every packet.
"""

from __future__ import annotations

from typing import Any

from netsentry.rules.errors import RuleError
from netsentry.rules.hooks import Hook, parse_hook


def split_hook(proto: str) -> tuple[str, Hook | None]:
    """The header's protocol field -> (protocol, hook or None): ``tcp:flow_start``."""
    if ":" not in proto:
        return proto, None
    base, _, name = proto.partition(":")
    return base, parse_hook(base, name)


def apply_hook(b: Any, hook: Hook | None) -> None:
    """Give the rule under construction (`RuleBuilder`) its hook's conditions."""
    if hook is None:
        return
    if hook.kind == "pkt":
        if hook.name == "flow_start":
            b.packet_checks.append(_first_of_direction)
            b.sig.pkt_only = True
        return
    from netsentry.applayer.registry import ALIASES, STATES, TO_CLIENT, TO_SERVER
    from netsentry.rules.keywords.applayer import _state_hook, tx_check
    proto = b.sig.app_proto or hook.proto
    proto = ALIASES.get(proto, proto)
    states = STATES.get(proto)
    if states is None:
        raise RuleError(f"rule hook '{hook.name}': protocol '{proto}' has no transaction states")
    ts_names, tc_names, progress = states
    if hook.sub is not None:
        # a transaction type of its own (http2 "global": one frame of the connection,
        # complete on its one side at once): the hook applies to that type only
        from netsentry.rules.hooks import sub_states, tx_sub
        own = sub_states(proto, hook.sub)
        if own is not None and own != (ts_names, tc_names):
            ts_names, tc_names = own
            want = hook.sub
            progress = _sub_progress(proto, want, len(ts_names) - 1)
        else:
            want = hook.sub
            inner = progress
            progress = lambda tx, side, _p=inner, _w=want, _pr=proto: (     # noqa: E731
                _p(tx, side) if tx_sub(_pr, tx) == _w else -1)
    names = ts_names if hook.to_server else tc_names
    n = len(names) - 1 if hook.progress < 0 else hook.progress
    side = hook.to_server
    tx_check(b, proto, TO_SERVER if side else TO_CLIENT, lambda tx, ts: progress(tx, side) >= n)
    b.extra["app_state_hook"] = lambda tx, ts: progress(tx, side) == n
    b.extra.setdefault("finishers", []).append(_state_hook)


def _sub_progress(proto: str, sub: str, last: int) -> Any:
    """The progress of a one-sided transaction type (http2 global): complete on its own
    side, -1 (no state) elsewhere and on other types."""
    from netsentry.rules.hooks import tx_sub

    def progress(tx: Any, side: bool) -> int:
        if tx_sub(proto, tx) != sub or getattr(tx, "glob", None) != int(side):
            return -1
        return last
    return progress


def _first_of_direction(pkt: Any, flow: Any) -> bool:
    """`flow_start`: the flow's first packet in this packet's direction."""
    if flow is None:
        return True
    return (flow.pkts_toserver if pkt.to_server else flow.pkts_toclient) == 1
