"""Rule hooks (Suricata 8): the ``proto:hook`` form of a rule header's protocol field.

One small table shared by the normal rule set (`alert`/`drop` rules with a hook:
owner `dsets`) and the firewall rule set (`detect/firewall.py`: owner `fw`), so
both read a hook name the same way Suricata's SigParseProtoHookPkt /
SigParseProtoHookApp do:

- a packet hook on an IP-level protocol (``tcp:flow_start``, ``ip:pre_flow``,
  ``udp:pre_stream``, ``tcp:all``);
- an app-layer hook on an app protocol: one of the named progress states the
  protocol registered (`applayer/registry.py` ``STATES``: ``http1:request_body``,
  ``tls:client_hello_done``), or the generic ``request_started`` /
  ``request_complete`` / ``response_started`` / ``response_complete`` that every
  protocol has (started: the transaction exists, progress 0; complete: the
  side's last state). A name found among the to-server states makes the rule
  to-server, else among the to-client ones to-client (Suricata looks the
  to-server table first).

``parse_hook("http1", "request_body")`` -> `Hook`, or `RuleError`. The hook's
meaning at run time (when a rule with it is inspected) is each rule set's own.
"""

from __future__ import annotations

from dataclasses import dataclass

from netsentry.rules.errors import RuleError

# Suricata's SignatureHookPkt names (detect-parse.c HookPktFromString)
PKT_HOOKS = ("flow_start", "pre_flow", "pre_stream", "all")
# the header protocols a packet hook may follow
PKT_HOOK_PROTOCOLS = frozenset({"ip", "tcp", "udp", "icmp", "icmpv4", "icmpv6", "sctp", "ipv4", "ipv6"})
# header spelling -> the protocol name the app layer registered its states under
_APP_NAMES = {"http1": "http", "http": "http", "ssl": "tls", "tls": "tls", "dns": "dns", "ssh": "ssh",
              "doh2": "http2"}
# protocols whose transactions are of several types, each with its own states: a hook names
# the type (``http2:stream:request_headers``, ``http2:global:request_started``; Suricata's
# sub-states, detect-parse.c). None: the protocol's registered states; else the type's own
SUB_STATES: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]] | None]] = {
    "http2": {"stream": None,
              "global": (("request_started", "request_complete"), ("response_started", "response_complete"))},
}


@dataclass(frozen=True, slots=True)
class Hook:
    kind: str                 # "pkt" or "app"
    name: str                 # the hook as written after the ':' (without a leading '<')
    proto: str = ""           # app hooks: the app protocol (registry name: "http", "tls")
    to_server: bool = True    # app hooks: the side whose progress the hook names
    progress: int = 0         # app hooks: the state index (STATES); -1: the side's last state
    lte: bool = False         # '<' before the name: this state and every earlier one (firewall)
    sub: str | None = None    # app hooks of a protocol with sub-states: the transaction type


def tx_sub(proto: str, tx: object) -> str | None:
    """The sub-state (transaction type) of `tx`, for a protocol that has them."""
    if proto == "http2":
        return "stream" if getattr(tx, "glob", None) is None else "global"
    return None


def sub_states(proto: str, sub: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The (to-server, to-client) state names of transaction type `sub` of `proto`."""
    own = SUB_STATES.get(proto, {}).get(sub)
    return own if own is not None else app_states(proto)


def app_states(proto: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The (to-server, to-client) state names an app protocol registered, or None."""
    from netsentry.applayer.registry import STATES, load_protocols
    load_protocols()
    st = STATES.get(_APP_NAMES.get(proto, proto))
    return (st[0], st[1]) if st is not None else None


def parse_hook(proto: str, hook: str) -> Hook:
    """The hook `hook` written after header protocol `proto` (``tcp:flow_start`` ->
    ("tcp", "flow_start")). Unknown names are rule errors, as in Suricata."""
    sub = None
    if ":" in hook:
        sub, _, hook = hook.partition(":")
        if not sub:
            raise RuleError(f"invalid tx type specification '{proto}:{sub}:{hook}'")
    lte = hook.startswith("<")
    name = hook[1:] if lte else hook
    if not name:
        raise RuleError(f"invalid hook specification '{proto}:{hook}'")
    if proto in PKT_HOOK_PROTOCOLS:
        if sub is not None:
            raise RuleError(f"sub states are not supported for packet hooks: '{proto}:{sub}:{hook}'")
        if name not in PKT_HOOKS:
            raise RuleError(f"unknown pkt hook '{name}' (one of {', '.join(PKT_HOOKS)})")
        return Hook("pkt", name, lte=lte)
    app = _APP_NAMES.get(proto, proto)
    subs = SUB_STATES.get(app)
    if sub is not None:
        if subs is None:
            raise RuleError(f"sub states are only supported for {', '.join(sorted(SUB_STATES))}: "
                            f"'{proto}:{sub}:{hook}'")
        if sub not in subs:
            raise RuleError(f"unknown {proto} tx type '{sub}' (one of {', '.join(subs)})")
        states = sub_states(app, sub)
    elif subs is not None:
        raise RuleError(f"protocol {proto} requires a sub state: {proto}:<{'|'.join(subs)}>:{name}")
    else:
        states = app_states(proto)
    if name in ("request_started", "response_started"):
        return Hook("app", name, app, name.startswith("request"), 0, lte, sub)
    if name in ("request_complete", "response_complete"):
        return Hook("app", name, app, name.startswith("request"), -1, lte, sub)
    if states is None:
        raise RuleError(f"protocol '{proto}' has no named states for hook '{name}'")
    for to_server, names in ((True, states[0]), (False, states[1])):
        if name in names:
            return Hook("app", name, app, to_server, names.index(name), lte, sub)
    raise RuleError(f"unknown hook '{name}' for protocol '{proto}'")
