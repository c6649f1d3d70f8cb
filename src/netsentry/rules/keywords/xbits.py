"""hostbits and xbits: bits kept per host or per address pair, across flows (Suricata 7/8).

    hostbits:<set|unset|toggle|isset|isnotset>,<name>[,<src|dst>];   expire 300 s
    hostbits:noalert;
    xbits:<set|unset|toggle|isset|isnotset>,<name>,track <ip_src|ip_dst|ip_pair>[,expire <seconds>];
    xbits:noalert;                                                  expire default 30 s

As Suricata (detect-hostbits.c, detect-xbits.c): `isset`/`isnotset` are
checks of the packet (run in `match`), `set`/`unset`/`toggle` run only after
the whole rule matched. `hostbits` direction `both` is refused as Suricata
refuses it ("not implemented"). `xbits ... track tx` keeps the bit on the
transaction the rule matched (Suricata's tx bits, detect-xbits.c / tx-bit.c):
only `set` and `isset` (as Suricata), `isset` on a rule with an app-layer
hook; `isset` is a transaction check (the rule inspects transactions), `set`
acts on the transaction of the match; the bit goes with its transaction. Both keywords keep a rule "IP-only" (Suricata's
SIGMATCH_IPONLY_COMPAT): such a rule is still inspected once per flow
direction. The bits live in one `XBitStore` per loaded rule set.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from netsentry.detect.xbits import XBitStore, pair_key
from netsentry.rules.errors import RuleError
from netsentry.rules.registry import RuleBuilder, keyword, unquote

if TYPE_CHECKING:  # pragma: no cover
    from netsentry.decode.packet import Packet
    from netsentry.flow.flow import Flow

HOSTBITS_EXPIRE = 300          # Suricata's fixed hostbits expiry
XBITS_EXPIRE = 30              # DETECT_XBITS_EXPIRE_DEFAULT
CMDS = ("set", "unset", "toggle", "isset", "isnotset")
_HOSTBITS_RE = re.compile(r"^([a-z]+)(?:\s*,\s*([^\s,]+))?\s*(?:\s*,\s*([^,\s]+))?\s*(.+)?$")

# track -> function of the packet giving the store key
_KEYS: dict[str, Callable[[Any], Any]] = {
    "ip_src": lambda pkt: pkt.src,
    "ip_dst": lambda pkt: pkt.dst,
    "ip_pair": lambda pkt: pair_key(pkt.src, pkt.dst),
}
TRACK_KEYS = _KEYS          # public name (hoststate.py keys forwarded operations the same way)


class XBitOp(NamedTuple):
    """One hostbits/xbits operation of a rule: `cmd` on bit `name` of the `track` key."""

    cmd: str
    name: str
    track: str          # ip_src, ip_dst, ip_pair
    expire: int


def _store(b: RuleBuilder) -> XBitStore:
    """The rule set's bit table (one per load; a builder without an environment gets its own)."""
    env_state = getattr(b.env, "state", None)
    if env_state is None:
        return b.extra.setdefault("xbits_store", XBitStore())
    return env_state.setdefault("xbits", XBitStore())


# the transaction the rule being verified is looking at: a tx rule's own transaction
# check (below) records it just before its buffers are verified, and the rule's
# set/unset/toggle run right after its match, before any other rule is verified
_TX_OF_MATCH: list[Any] = [None]


def _tx_mark(tx: Any, to_server: bool) -> bool:
    _TX_OF_MATCH[0] = tx
    return True


def _attach_tx(b: RuleBuilder, cmd: str, name: str) -> None:
    """`xbits:<set|isset>,<name>,track tx` (the two Suricata supports)."""
    if cmd not in ("set", "isset"):
        raise RuleError("xbits: 'track tx' supports only set and isset")
    if cmd == "isset":
        fw = getattr(b.sig, "firewall", None)
        if fw is None or fw.hook is None or fw.hook.kind != "app":
            raise RuleError("xbits: 'isset' with 'track tx' needs an app-layer hook in the rule header "
                            "(http1:request_headers ...)")
        def check(tx: Any, to_server: bool) -> bool:
            bits = tx.bits
            return bits is not None and name in bits
        b.tx_checks.append((None, None, check))
        return
    if not any(fn is _tx_mark for _p, _d, fn in b.tx_checks):
        b.tx_checks.append((None, None, _tx_mark))

    def act(pkt: Any, flow: Any) -> None:
        tx = _TX_OF_MATCH[0]
        if tx is None:
            return
        bits = tx.bits
        if bits is None:
            tx.bits = {name}
        else:
            bits.add(name)
    b.post_actions.append(act)


def _attach(b: RuleBuilder, cmd: str, name: str, track: str, expire: int) -> None:
    store = _store(b)
    key_of = _KEYS[track]
    if cmd == "isset":
        fn = lambda pkt, f: store.isset(key_of(pkt), name, pkt.ts)          # noqa: E731
        b.packet_checks.append(fn)
        b.sig.iponly_checks += 1
    elif cmd == "isnotset":
        fn = lambda pkt, f: not store.isset(key_of(pkt), name, pkt.ts)      # noqa: E731
        b.packet_checks.append(fn)
        b.sig.iponly_checks += 1
    elif cmd == "set":
        fn = lambda pkt, f: store.set(key_of(pkt), name, pkt.ts + expire)   # noqa: E731
        b.post_actions.append(fn)
    elif cmd == "unset":
        fn = lambda pkt, f: store.unset(key_of(pkt), name)                   # noqa: E731
        b.post_actions.append(fn)
    else:
        fn = lambda pkt, f: store.toggle(key_of(pkt), name, pkt.ts + expire)  # noqa: E731
        b.post_actions.append(fn)
    # what the check or action is, for the worker runtime (hoststate.py): with N
    # workers the bits of a host live in one process, so a worker swaps these
    # closures for ones that forward the operation instead of doing it
    fn.xbit = XBitOp(cmd, name, track, expire)         # type: ignore[attr-defined]


@keyword("hostbits", help="hostbits:set|unset|toggle|isset|isnotset,name[,src|dst]; hostbits:noalert;")
def hostbits(b: RuleBuilder, arg: str | None) -> None:
    text = unquote(arg, "hostbits").strip()
    m = _HOSTBITS_RE.match(text)
    if m is None or m.group(4):
        raise RuleError(f"hostbits: '{text}' is not a valid setting (action,name[,src|dst])")
    cmd, name, direction = m.group(1), m.group(2), m.group(3)
    if cmd == "noalert":
        if name:
            raise RuleError("hostbits: noalert takes no name")
        b.sig.noalert = True
        return
    if cmd not in CMDS:
        raise RuleError(f"hostbits: unknown action '{cmd}' (expected {', '.join(CMDS)} or noalert)")
    if not name:
        raise RuleError(f"hostbits: '{cmd}' needs a name")
    if direction == "both":
        raise RuleError("hostbits: direction 'both' is not implemented (in Suricata either): use src or dst")
    if direction not in (None, "src", "dst"):
        raise RuleError(f"hostbits: unknown direction '{direction}' (expected src or dst)")
    _attach(b, cmd, name, "ip_dst" if direction == "dst" else "ip_src", HOSTBITS_EXPIRE)


@keyword("xbits", help="xbits:set|unset|toggle|isset|isnotset,name,track ip_src|ip_dst|ip_pair[,expire N];")
def xbits(b: RuleBuilder, arg: str | None) -> None:
    text = unquote(arg, "xbits").strip()
    parts = [p.strip() for p in text.split(",")]
    parts = [p for p in parts if p]
    if parts and parts[0] == "noalert":
        if len(parts) != 1:
            raise RuleError("xbits: noalert takes nothing else")
        b.sig.noalert = True
        return
    if len(parts) < 2 or parts[0] not in CMDS:
        raise RuleError(f"xbits: expected <{'|'.join(CMDS)}>,<name>,track <ip_src|ip_dst|ip_pair>[,expire N], "
                        f"got '{text}'")
    cmd, name = parts[0], parts[1]
    if " " in name:
        raise RuleError(f"xbits: invalid name '{name}'")
    track: str | None = None
    expire: int | None = None
    for opt in parts[2:]:
        key, _, val = opt.partition(" ")
        val = val.strip()
        if key == "track" and track is None:
            if val not in _KEYS and val != "tx":
                raise RuleError(f"xbits: invalid tracker '{val}' (expected ip_src, ip_dst, ip_pair or tx)")
            track = val
        elif key == "expire" and expire is None:
            if not val.isdigit() or int(val) == 0 or int(val) > 0xFFFFFFFF:
                raise RuleError(f"xbits: invalid expire value '{val}' (seconds, 1 or more)")
            expire = int(val)
        else:
            raise RuleError(f"xbits: unexpected '{opt}' (track and expire, each once)")
    if track is None:
        raise RuleError("xbits: 'track ip_src|ip_dst|ip_pair' is required (or 'track tx')")
    if track == "tx":
        _attach_tx(b, cmd, name)          # (an expire is read and has no use: the bit goes with the tx)
        return
    _attach(b, cmd, name, track, XBITS_EXPIRE if expire is None else expire)
