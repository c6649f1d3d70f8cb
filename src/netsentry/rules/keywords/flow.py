"""Flow keywords: flow, flowbits, flowint, stream_size.

`flow` checks direction and state; `flowbits` checks run in `match`, their
set/unset/toggle side effects in `post_match` (Suricata applies them only
after the whole rule matched). `flowint` likewise, as Suricata's
detect-flowint.c: comparisons and isset/notset are checks at the end of
`match`; `=`, `+` and `-` change the variable in `post_match`, so they
happen only when the whole rule matched and a check in the same rule sees
the value from before (``flowint:c,+,1; flowint:c,>,3;`` compares first).
A target variable that is not set counts as 0; `+` on an unset variable
sets it, `-` on one leaves it unset. Rules that change a flowint are
evaluated before rules that only read one (detect/actions.py). A rule
whose packet has no flow never matches flow/flowbits/flowint/stream_size
checks, as in Suricata.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

from netsentry.rules.errors import RuleError, UnsupportedError
from netsentry.rules.numeric import parse_uint
from netsentry.rules.registry import RuleBuilder, keyword, parse_int, unquote

_FLOW_OPTS = {
    "to_server": ("dir", True), "from_client": ("dir", True),
    "to_client": ("dir", False), "from_server": ("dir", False),
    "established": ("state", True), "not_established": ("state", False),
    "stateless": ("stateless", True),
    "only_stream": ("stream", "only"), "no_stream": ("stream", "no"),
    "only_frag": ("frag", "only"), "no_frag": ("frag", "no"),
}


def _any_packet(pkt: object, f: object) -> bool:
    """`flow:stateless`: matches every packet, with a flow or without."""
    return True


@keyword("flow", help="flow:established|not_established|stateless,to_server|to_client,only_stream|no_stream;")
def flow(b: RuleBuilder, arg: str | None) -> None:
    if "flow" in b.seen:
        raise RuleError("'flow' given more than once")
    got: dict[str, object] = {}
    for opt in (o.strip().lower() for o in unquote(arg, "flow").split(",")):
        if opt not in _FLOW_OPTS:
            raise RuleError(f"flow: unknown option '{opt}'")
        kind, val = _FLOW_OPTS[opt]
        if kind in got and got[kind] != val:
            raise RuleError(f"flow: '{opt}' conflicts with an earlier option")
        got[kind] = val
    if "frag" in got:
        raise UnsupportedError("flow: only_frag/no_frag not supported yet (no defragmentation)",
                               category="flow:only_frag/no_frag not supported yet")
    direction = got.get("dir")
    state = got.get("state")
    sig = b.sig
    sig.flow_to_server = direction  # type: ignore[assignment]
    sig.flow_established = state    # type: ignore[assignment]
    if got.get("stream") == "only":
        sig.needs_stream = True
    elif got.get("stream") == "no":
        sig.pkt_only = True
    if got.get("stateless"):
        # Suricata keeps a flow match for `stateless` (only no option or a bare direction
        # leaves none), so the rule is a packet rule, not IP-only: its pass or drop acts on
        # the packet, not the flow (ruletype.py; suricata-verify firewall-06)
        b.packet_checks.append(_any_packet)
    if direction is None and state is None:
        return
    if direction is not None and state is not None:
        want_dir, want_state = bool(direction), bool(state)
        b.packet_checks.append(lambda pkt, f: f is not None and pkt.to_server is want_dir
                               and f.established is want_state)
    elif direction is not None:
        want_dir = bool(direction)
        b.packet_checks.append(lambda pkt, f: f is not None and pkt.to_server is want_dir)
    else:
        want_state = bool(state)
        b.packet_checks.append(lambda pkt, f: f is not None and f.established is want_state)


# --- flowbits --------------------------------------------------------------------------

def _names(text: str, what: str) -> tuple[list[str], str]:
    """`a`, `a|b` (any) or `a&b` (all) -> (names, "|" or "&")."""
    if "|" in text and "&" in text:
        raise RuleError(f"{what}: cannot mix '|' and '&' in '{text}'")
    sep = "|" if "|" in text else "&"
    names = [n.strip() for n in text.split(sep)]
    if any(not n or " " in n for n in names):
        raise RuleError(f"{what}: invalid flowbit name in '{text}'")
    return names, sep


def _isset(names: list[str], any_of: bool) -> Callable[..., bool]:
    if len(names) == 1:
        name = names[0]
        return lambda pkt, f: f is not None and f.flowbits is not None and name in f.flowbits
    if any_of:
        return lambda pkt, f: (f is not None and f.flowbits is not None
                               and any(n in f.flowbits for n in names))
    return lambda pkt, f: (f is not None and f.flowbits is not None
                           and all(n in f.flowbits for n in names))


def _isnotset(names: list[str], any_of: bool) -> Callable[..., bool]:
    if len(names) == 1:
        name = names[0]
        return lambda pkt, f: f is not None and (f.flowbits is None or name not in f.flowbits)
    if any_of:
        return lambda pkt, f: f is not None and (f.flowbits is None or any(n not in f.flowbits for n in names))
    return lambda pkt, f: f is not None and (f.flowbits is None or all(n not in f.flowbits for n in names))


def _setter(names: list[str], cmd: str) -> Callable[..., None]:
    def act(pkt, f) -> None:
        if f is None:
            return
        bits = f.flowbits
        if bits is None:
            if cmd == "unset":
                return
            # a dict, not a set: EVE's metadata.flowbits lists the bits in the order
            # they were set, as Suricata does (output/fields.py eve_vars)
            bits = f.flowbits = {}
        for n in names:
            if cmd == "set":
                bits[n] = None
            elif cmd == "unset":
                bits.pop(n, None)
            elif n in bits:
                del bits[n]
            else:
                bits[n] = None
    return act


@keyword("flowbits", help="flowbits:set|unset|toggle|isset|isnotset,name[|name|&name]; flowbits:noalert;")
def flowbits(b: RuleBuilder, arg: str | None) -> None:
    text = unquote(arg, "flowbits").strip()
    cmd, _, rest = text.partition(",")
    cmd = cmd.strip().lower()
    rest = rest.strip()
    if cmd == "noalert":
        if rest:
            raise RuleError("flowbits: noalert takes no name")
        b.sig.noalert = True
        return
    if cmd not in ("set", "unset", "toggle", "isset", "isnotset"):
        raise RuleError(f"flowbits: unknown command '{cmd}'")
    if not rest:
        raise RuleError(f"flowbits: '{cmd}' needs a name")
    names, sep = _names(rest, "flowbits")
    if cmd in ("isset", "isnotset"):
        b.flowbits_checked.update(names)
        check = _isset if cmd == "isset" else _isnotset
        b.packet_checks.append(check(names, sep == "|"))
    else:
        if sep == "|" and len(names) > 1:
            raise RuleError(f"flowbits: '{cmd}' cannot use '|' (or); use '&' for several names")
        b.flowbits_set.update(names)
        b.post_actions.append(_setter(names, cmd))


# --- flowint ---------------------------------------------------------------------------------

_CMP = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
        ">": operator.gt, ">=": operator.ge}
U32 = (1 << 32) - 1


@keyword("flowint", help="flowint:name,=|+|-|==|!=|<|<=|>|>=,value|var; flowint:name,isset|notset;")
def flowint(b: RuleBuilder, arg: str | None) -> None:
    parts = [p.strip() for p in unquote(arg, "flowint").split(",")]
    if len(parts) < 2 or not parts[0]:
        raise RuleError(f"flowint: expected 'name,op[,value]', got '{arg}'")
    name, op = parts[0], parts[1]
    if op in ("isset", "notset", "isnotset"):
        if len(parts) != 2:
            raise RuleError(f"flowint: '{op}' takes no value")
        want = op == "isset"
        b.final_checks.append(lambda pkt, f: f is not None and
                              ((f.flowints is not None and name in f.flowints) is want))
        b.flowints_checked.add(name)
        return
    if len(parts) != 3 or not parts[2]:
        raise RuleError(f"flowint: '{op}' needs a value")
    target_text = parts[2]
    if target_text[0].isdigit():
        const = parse_int(target_text, "flowint value", 0, U32)

        def target(ints: dict[str, int]) -> int:
            return const
    else:
        other = target_text

        def target(ints: dict[str, int]) -> int:
            return ints.get(other, 0)           # Suricata: a target that is not set counts as 0

    if op in _CMP:
        cmp = _CMP[op]

        def check(pkt, f) -> bool:
            ints = f.flowints if f is not None else None
            if ints is None or name not in ints:
                return False
            return cmp(ints[name], target(ints))
        b.final_checks.append(check)
        b.flowints_checked.add(name)
        return
    if op not in ("=", "+", "-"):
        raise RuleError(f"flowint: unknown operator '{op}'")

    def modify(pkt, f) -> None:
        if f is None:
            return
        ints = f.flowints
        if ints is None:
            ints = f.flowints = {}
        t = target(ints)
        cur = ints.get(name)
        if op == "=":
            ints[name] = t
        elif op == "+":
            ints[name] = t if cur is None else (cur + t) & U32   # add to unset: initialise
        elif cur is not None:                                     # subtract from unset: nothing
            ints[name] = (cur - t) & U32
    b.post_actions.append(modify)
    b.flowints_set.add(name)


# --- stream_size -------------------------------------------------------------------------

_SS_OPS = {"<": operator.lt, ">": operator.gt, "=": operator.eq, "!=": operator.ne,
           "<=": operator.le, ">=": operator.ge}


@keyword("stream_size", help="stream_size:server|client|both|either,<|>|=|!=|<=|>=,N; TCP bytes sent per side")
def stream_size(b: RuleBuilder, arg: str | None) -> None:
    parts = [p.strip() for p in unquote(arg, "stream_size").split(",")]
    if len(parts) != 3:
        raise RuleError(f"stream_size: expected 'side,op,value', got '{arg}'")
    side, op, val = parts
    if side not in ("server", "client", "both", "either"):
        raise RuleError(f"stream_size: unknown side '{side}'")
    cmp = _SS_OPS.get(op)
    if cmp is None:
        raise RuleError(f"stream_size: unknown operator '{op}'")
    n = parse_int(val, "stream_size value", 0, U32)

    def size(isn, nxt) -> int | None:
        return None if isn is None or nxt is None else (nxt - isn) & U32

    def check(pkt, f) -> bool:
        if f is None or pkt.proto != 6:
            return False
        c = size(f.client_isn, f.client_next_seq)
        s = size(f.server_isn, f.server_next_seq)
        cm = c is not None and cmp(c, n)
        sm = s is not None and cmp(s, n)
        if side == "client":
            return cm
        if side == "server":
            return sm
        if side == "both":
            return cm and sm
        return cm or sm
    b.packet_checks.append(check)


# --- flow.pkts / flow.bytes (Suricata 8; the _toserver/_toclient forms are Suricata 7's) ---

_FLOW_DIRS = ("toserver", "toclient", "either", "both")


def _flow_counter(b: RuleBuilder, arg: str | None, what: str, direction: str | None, bits: int,
                  to_server: str, to_client: str) -> None:
    """flow.pkts:DIR,[op]N (DIR toserver, toclient, either, both) or flow.pkts_DIR:[op]N.

    The counters include the current packet, as Suricata updates the flow
    before detection; a packet without a flow never matches."""
    text = unquote(arg, what).strip()
    if direction is None:
        direction, sep, text = text.partition(",")
        direction = direction.strip()
        if not sep or direction not in _FLOW_DIRS:
            raise RuleError(f"{what}: expected DIRECTION,VALUE with DIRECTION one of {', '.join(_FLOW_DIRS)}")
    pred = parse_uint(text, what, bits)
    if direction == "toserver":
        b.packet_checks.append(lambda pkt, f: f is not None and pred(getattr(f, to_server)))
    elif direction == "toclient":
        b.packet_checks.append(lambda pkt, f: f is not None and pred(getattr(f, to_client)))
    elif direction == "either":
        b.packet_checks.append(lambda pkt, f: f is not None and (pred(getattr(f, to_client))
                                                                 or pred(getattr(f, to_server))))
    else:
        b.packet_checks.append(lambda pkt, f: f is not None and pred(getattr(f, to_client))
                               and pred(getattr(f, to_server)))


def _register_flow_counters() -> None:
    for base, bits, ts, tc in (("flow.pkts", 32, "pkts_toserver", "pkts_toclient"),
                               ("flow.bytes", 64, "bytes_toserver", "bytes_toclient")):
        def generic(b: RuleBuilder, arg: str | None, base: str = base, bits: int = bits, ts: str = ts,
                    tc: str = tc) -> None:
            _flow_counter(b, arg, base, None, bits, ts, tc)
        keyword(base, help=f"{base}:toserver|toclient|either|both,[op]N; the flow's counter so far")(generic)
        for d in ("toserver", "toclient"):
            def legacy(b: RuleBuilder, arg: str | None, base: str = base, bits: int = bits, ts: str = ts,
                       tc: str = tc, d: str = d) -> None:
                _flow_counter(b, arg, f"{base}_{d}", d, bits, ts, tc)
            keyword(f"{base}_{d}", help=f"{base}_{d}:[op]N; the flow's {d} counter so far")(legacy)


_register_flow_counters()


@keyword("flow.age", help="flow.age:[op]N; seconds since the flow's first packet")
def flow_age(b: RuleBuilder, arg: str | None) -> None:
    """Suricata's detect-flow-age.c: whole seconds of the packet's time minus the flow's start."""
    pred = parse_uint(unquote(arg, "flow.age"), "flow.age", 32)
    b.packet_checks.append(lambda pkt, f: f is not None and pred(int(pkt.ts) - int(f.start)))
