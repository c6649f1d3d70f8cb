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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
    multi: bool = False         # the getter returns a sequence of buffers; the rule matches if one does


BUFFERS: dict[str, Buffer] = {}


def register_buffer(name: str, getter: Getter, packet_only: bool = True, multi: bool = False) -> None:
    """Make `name` a buffer payload keywords may inspect (call once, at import).

    `multi`: a multi-instance buffer (Suricata's DetectBufferTypeSupportsMultiInstance,
    e.g. `sctp.chunk_data`, one instance per DATA chunk): the getter returns a sequence
    (None or empty: no buffer) and the buffer's keywords match when they match in one."""
    if name in BUFFERS:
        raise ValueError(f"inspection buffer {name!r} registered twice")
    BUFFERS[name] = Buffer(name, getter, packet_only, multi)


def is_supported(name: str) -> bool:
    return name == "pkt_data" or name in BUFFERS


def _transformed(getter: Getter, transforms: tuple[Any, ...], multi: bool) -> Getter:
    """`getter` with the rule's transforms applied to what it returns (each instance of a
    multi-instance buffer on its own), as Suricata's transformed packet buffers
    (`tcp.hdr; to_md5; ...`, `ipv4.hdr; subslice:9,1; ...`)."""
    from netsentry.rules.keywords.applayer import apply_transforms

    def get(pkt: Packet, flow: Flow | None) -> Any:
        buf = getter(pkt, flow)
        if buf is None:
            return None
        if multi:
            return [apply_transforms(bytes(one), transforms) for one in buf]
        return apply_transforms(bytes(buf), transforms)
    return get


def _any_instance(run: Callable[..., bool]) -> Callable[..., bool]:
    """A multi-instance buffer's chain: true when it matches one of the instances."""
    def run_any(bufs: Sequence[bytes], det: Any = None) -> bool:
        if det is None:
            return any(run(buf) for buf in bufs)
        return any(run(buf, det) for buf in bufs)
    return run_any


def buffer_checks(b: RuleBuilder) -> list[Callable[[Packet, Flow | None], bool]]:
    """The check that inspects the registered buffers a rule uses (none: an empty list).

    As Suricata's packet inspect engines: after the packet payload, each
    buffer in the order the rule first named it; a packet without one of the
    buffers does not match (GetData returns NULL). The buffers share the
    byte_extract/byte_math variables (Suricata keeps them per thread for the
    whole rule), so `ipv4.hdr; byte_extract:...,x; tcp.hdr; byte_test:...,x`
    works; a variable set in pkt_data is not seen here (that chain runs apart)."""
    from netsentry.rules.inspect import Chain, Det

    stages: list[tuple[Getter, Callable[..., bool]]] = []
    for key, items in b.buffer_items.items():
        # a buffer with transforms is keyed (name, (transform, arg), ...) by the builder
        name, transforms = (key, ()) if isinstance(key, str) else (key[0], tuple(key[1:]))
        if name == "pkt_data" or not items or name not in BUFFERS:
            continue    # the payload runs apart; app-layer buffers are per transaction (applayer/)
        spec = BUFFERS[name]
        if spec.packet_only:
            b.sig.pkt_only = True
        run = Chain(items, len(b.variables), buffer=name).run
        getter = _transformed(spec.getter, transforms, spec.multi) if transforms else spec.getter
        stages.append((getter, _any_instance(run) if spec.multi else run))
    if not stages:
        return []
    nvars = len(b.variables)
    if len(stages) == 1 and not nvars:
        getter, run = stages[0]

        def check_one(pkt: Packet, flow: Flow | None) -> bool:
            buf = getter(pkt, flow)
            return buf is not None and run(buf)
        return [check_one]

    def check(pkt: Packet, flow: Flow | None) -> bool:
        shared = [0] * nvars
        for getter, run in stages:
            buf = getter(pkt, flow)
            if buf is None:
                return False
            det = Det(0)
            det.vars = shared
            if not run(buf, det):
                return False
        return True
    return [check]
