"""The `Signature`: one loaded rule, compiled once into checks the hot path calls.

The detect engine (src/netsentry/detect/) sees only this class and `Content`:
it groups signatures by `proto`/`ip_proto` and port `ranges()`, feeds
`fast_pattern` to its multi-pattern prefilter, and for each candidate calls
`header_match` then `match` then (on an alert) `post_match`.

Why checks are stored as flat tuples of callables: the parser does all text
work once per rule, so verifying a candidate costs a few attribute loads and
calls, never string handling (see STYLE.md, "the parser turns text into
checks once").

Evaluation order inside `match` follows Suricata's lists, cheapest first:
packet checks (`flow`, header keywords, `dsize`, `flowbits` checks), then the
payload inspection chain (contents, pcre, byte_*, isdataat in rule order with
Suricata's relative semantics and backtracking), then `flowint` operations in
rule order (Suricata runs flowint in its match list, so an increment is seen
by a later flowint comparison in the same rule). `post_match` applies the
flowbits side effects (set/unset/toggle), which Suricata runs only after the
whole signature matched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from netsentry.rules.addresses import AddressMatcher
from netsentry.rules.ports import PortMatcher

if TYPE_CHECKING:  # pragma: no cover
    from netsentry.decode.packet import Packet
    from netsentry.flow.flow import Flow
    from netsentry.rules.inspect import Content

# header protocol -> IP protocol number; None means "any IP protocol".
PROTO_NUMBERS: dict[str, int | None] = {
    "ip": None,
    "ipv4": None,     # any IP protocol over IPv4 (version checked in match)
    "ipv6": None,
    "pkthdr": None,
    "ether": None,    # any frame with an Ethernet header, IP or not (Suricata 9)
    "arp": None,      # valid ARP frames only: never an IP packet
    "tcp": 6,
    "tcp-pkt": 6,
    "tcp-stream": 6,
    "udp": 17,
    "icmp": 1,        # Suricata's `icmp` matches ICMPv4 and ICMPv6; see Signature.ip_protos
    "icmpv4": 1,
    "icmpv6": 58,
    "sctp": 132,
    "igmp": 2,
}

ACTIONS = ("alert", "drop", "reject", "rejectsrc", "rejectdst", "rejectboth", "pass")

PacketCheck = Callable[["Packet", "Flow | None"], bool]


@dataclass(slots=True)
class Threshold:
    """A parsed `threshold:` or `detection_filter:` option (applied by detect/).

    kind:      "limit" | "threshold" | "both" for threshold; "detection_filter"
    track:     "by_src" | "by_dst" | "by_rule" | "by_both" (| "by_flow")
    unique_on: None, "src_port" or "dst_port" (detection_filter only)
    """

    kind: str
    track: str
    count: int
    seconds: int
    unique_on: str | None = None
    multiplier: int = 0            # type backoff: alert on count, count*m, count*m*m, ... (Suricata 8)

    @property
    def type(self) -> str:
        """Suricata's word for `kind` (threshold:type ...)."""
        return self.kind


@dataclass(slots=True, eq=False)
class Signature:
    # --- header ---------------------------------------------------------------
    action: str
    proto: str                     # header protocol as written: tcp, udp, ip, icmp, tcp-pkt, ...
    src: AddressMatcher
    sp: PortMatcher
    dst: AddressMatcher
    dp: PortMatcher
    bidirectional: bool = False    # `<>`
    # --- meta -----------------------------------------------------------------
    sid: int = 0
    gid: int = 1
    rev: int = 0
    msg: str = ""
    classtype: str | None = None
    priority: int | None = None    # explicit `priority:` (None when absent)
    severity: int = 3              # effective: priority:, else classtype's, else 3
    class_description: str = ""    # classification.config description (EVE `category`)
    metadata: dict[str, list[str]] = field(default_factory=dict)
    references: list[tuple[str, str]] = field(default_factory=list)  # (system, id); url via RuleSet.references
    reference_urls: tuple[str, ...] = ()     # EVE's alert.references (rules/keywords/meta.py reference)
    target: str | None = None      # "src_ip" / "dest_ip"
    noalert: bool = False          # `noalert;` or `flowbits:noalert;`
    force_alert: bool = False      # `alert;`: alert even when the action does not (a pass rule)
    # `tag:` specs (scope, count, metric, direction). Parsed and checked; the tagged packets
    # are not logged yet (Suricata's EVE "packet" records), the rule itself alerts as usual.
    tags: list[tuple[str, int, str, str]] = field(default_factory=list)
    prefilter: bool = False        # `prefilter;` hint: use fast_pattern as prefilter
    # --- where it came from -----------------------------------------------------
    file: str = ""
    line: int = 0
    raw: str = ""
    # --- compiled checks (set by the parser) ------------------------------------
    fast_pattern: Content | None = None
    contents: tuple[Content, ...] = ()       # every content of the rule, in order (all buffers)
    flowbits_set: frozenset[str] = frozenset()      # names set/unset/toggled on match
    flowbits_checked: frozenset[str] = frozenset()  # names read by isset/isnotset
    flowints_set: frozenset[str] = frozenset()      # flowint names changed (=, +, -) on match
    flowints_checked: frozenset[str] = frozenset()  # flowint names compared or tested (isset/notset)
    threshold: Threshold | None = None
    detection_filter: Threshold | None = None
    needs_stream: bool = False     # tcp-stream or flow:only_stream: match reassembled data only
    pkt_only: bool = False         # tcp-pkt or flow:no_stream: match packets only
    # a stream rule that also inspects the packet when the stream has no match (Suricata's
    # SIG_FLAG_REQUIRE_PACKET with SIG_FLAG_REQUIRE_STREAM): detect/stream.py `packet_too`
    pkt_too: bool = False
    pd_only: bool = False          # protocol-detection-only (app-layer-protocol alone): see pkt.pd_done
    # a rule of only a plain `app-layer-state` hook: fn(tx, to_server) true while the tx is at
    # exactly that state, where a match does not finish the rule with the tx (txdetect)
    tx_at_hook: Any = None
    # TCP flag bytes its `flags:` checks accept (None: no flags check). A necessary
    # condition only (the check itself stays in packet_checks): detect's flags prefilter.
    tcp_flags_ok: frozenset[int] | None = None
    flow_to_server: bool | None = None   # flow:to_server -> True, to_client -> False, else None
    flow_established: bool | None = None  # flow:established -> True, not_established -> False
    packet_checks: tuple[PacketCheck, ...] = ()   # run first, in order; all must be true
    iponly_checks: int = 0         # how many packet_checks keep a rule IP-only (hostbits/xbits isset)
    payload_chain: Any = None      # rules.inspect.Chain for the packet payload, or None
    final_checks: tuple[PacketCheck, ...] = ()    # flowint operations, in rule order
    post_actions: tuple[Callable[[Packet, Flow | None], None], ...] = ()
    # --- app layer (set by the parser when the rule inspects transactions) -----------
    app_proto: str | None = None   # http, dns, tls: from the header or from the buffers it uses
    tx_rule: bool = False          # inspected per transaction (detect/txdetect.py), not per packet
    tx_chains: tuple[Any, ...] = ()    # (buffer name, transforms, Chain) per sticky buffer
    tx_checks: tuple[Any, ...] = ()    # (proto, direction, fn(tx, to_server)) urilen, ssl_state, ...
    tx_direction: int | None = None    # 0: request side, 1: response side, None: either
    tx_both: bool = False              # `=>`: request and response of one transaction (Suricata 8)
    tx_fast_pattern: Content | None = None   # the prefilter content of a tx rule (any buffer)
    # Suricata 8's action scopes, secondary actions and rule hook (detect/firewall.py FwAction)
    firewall: Any = None

    # ---------------------------------------------------------------------------------
    @property
    def ip_proto(self) -> int | None:
        """IP protocol number the header names, None for `ip`/`pkthdr` (any)."""
        return PROTO_NUMBERS.get(self.proto)

    @property
    def ip_protos(self) -> tuple[int, ...] | None:
        """All IP protocol numbers this rule applies to (None: any). `icmp` is v4 and v6."""
        if self.proto == "icmp":
            return (1, 58)
        p = PROTO_NUMBERS.get(self.proto)
        return None if p is None else (p,)

    @property
    def is_ip_only(self) -> bool:
        """True when the rule has no payload, packet or flow checks (Suricata's IP-only rules).
        Ports do not matter (Suricata 8's SignatureIsIPOnly has no port test): `pass tcp any
        any -> any 22 (...)` is IP-only, so its pass applies to the whole flow."""
        return (len(self.packet_checks) <= self.iponly_checks and self.payload_chain is None
                and not self.final_checks)

    _header_any: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        self.compile()

    def compile(self) -> None:
        """Refresh derived hot-path flags after the parser filled the fields."""
        self._header_any = (self.src.is_any and self.dst.is_any and self.sp.is_any and self.dp.is_any)

    # header_match/match are plain methods on purpose: the engine calls them
    # for varying signatures from one call site, and CPython specializes a
    # method call on the class, whereas per-signature closures (tried: one
    # closure per rule, each testing only what its rule constrains) defeat
    # that cache and measured ~15% slower per candidate over the 2351 ET Open
    # rules with a fast pattern (header 0.55 vs 0.9 us, match 2.2 vs 2.7 us).
    def header_match(self, pkt: Packet, flow: Flow | None) -> bool:
        """Addresses and ports, both ways for `<>` (the protocol is the engine's grouping)."""
        if self._header_any:
            return True
        src, dst = pkt.src, pkt.dst
        if (self.src.contains(src) and self.dst.contains(dst)
                and self.sp.contains(pkt.sp) and self.dp.contains(pkt.dp)):
            return True
        if self.bidirectional:
            return (self.src.contains(dst) and self.dst.contains(src)
                    and self.sp.contains(pkt.dp) and self.dp.contains(pkt.sp))
        return False

    def match(self, pkt: Packet, flow: Flow | None) -> bool:
        """Every check after the header, in Suricata's order; True if the rule matches.

        Correct on its own: the prefilter's fast-pattern hit is only a hint and
        the fast pattern is verified again here.
        """
        for check in self.packet_checks:
            if not check(pkt, flow):
                return False
        chain = self.payload_chain
        if chain is not None and not chain.run(pkt.payload):
            return False
        for check in self.final_checks:
            if not check(pkt, flow):
                return False
        return True

    def post_match(self, pkt: Packet, flow: Flow | None) -> None:
        """Side effects of a match: flowbits set/unset/toggle."""
        for act in self.post_actions:
            act(pkt, flow)

    def __repr__(self) -> str:
        return f"<Signature {self.gid}:{self.sid}:{self.rev} {self.action} {self.proto} {self.msg!r}>"
