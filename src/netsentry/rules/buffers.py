"""Inspection buffers by name: what a sticky buffer keyword makes later payload keywords inspect.

Suricata keeps one list of inspection keywords per buffer (`pkt_data`, the
packet header buffers `ipv4.hdr` ... `icmpv6.hdr`, the app-layer buffers)
and a `GetData` function per buffer that returns the bytes of that buffer
for a packet (or nothing, when the packet has no such buffer: an IPv6
packet has no `ipv4.hdr`, and a rule inspecting it cannot match).

Here a buffer is registered once with its getter; the rule builder accepts
payload keywords (content, pcre, byte_*, isdataat, bsize) in any registered
buffer and compiles each buffer's list into its own `Chain`; detect/ calls
the getter only for rules that use the buffer. `pkt_data` is the packet
payload, inspected by the engine itself (prefilter, stream window), so it
has no getter here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from netsentry.decode.packet import Packet
    from netsentry.flow.flow import Flow
    from netsentry.rules.registry import RuleBuilder

Getter = Callable[["Packet", "Flow | None"], "bytes | None"]


@dataclass(frozen=True, slots=True)
class Buffer:
    name: str
    getter: Getter
    packet_only: bool = True    # Suricata's SIG_FLAG_REQUIRE_PACKET: never matched on stream data


BUFFERS: dict[str, Buffer] = {}


def register_buffer(name: str, getter: Getter, packet_only: bool = True) -> None:
    """Make `name` a buffer payload keywords may inspect (call once, at import)."""
    if name in BUFFERS:
        raise ValueError(f"inspection buffer {name!r} registered twice")
    BUFFERS[name] = Buffer(name, getter, packet_only)


def is_supported(name: str) -> bool:
    return name == "pkt_data" or name in BUFFERS


def buffer_checks(b: RuleBuilder) -> list[Callable[[Packet, Flow | None], bool]]:
    """One packet check per registered buffer the rule inspects: get the buffer, run its chain.

    A packet without the buffer does not match (Suricata: GetData returns
    NULL, the inspect engine reports no match). Run as packet checks, after
    the rule's cheap header checks; the chains share nothing with the
    pkt_data chain, byte_extract variables included (each Chain has its own)."""
    from netsentry.rules.inspect import Chain

    checks = []
    for name, items in b.buffer_items.items():
        if name == "pkt_data" or not items:
            continue
        spec = BUFFERS[name]
        chain = Chain(items, len(b.variables), buffer=name)
        if spec.packet_only:
            b.sig.pkt_only = True
        checks.append(_check(spec.getter, chain.run))
    return checks


def _check(getter: Getter, run: Callable[[bytes], bool]) -> Callable[[Packet, Flow | None], bool]:
    def check(pkt: Packet, flow: Flow | None) -> bool:
        buf = getter(pkt, flow)
        return buf is not None and run(buf)
    return check
