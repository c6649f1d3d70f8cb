"""`tcp.session` (Suricata 8): match the phase of the packet's TCP session.

``tcp.session:PHASE[,PHASE]...`` with the phases ``setup`` (the packet is not
established: flow:not_established), ``established`` (flow:established, which
stays true while the session closes) and ``closing`` (the session is in
fin_wait1/2, time_wait, last_ack, close_wait or closing; ``closed`` is no
phase). Phases are OR'ed; tokens are lowercase, unique, comma-separated with no
empty ones. Never matches a packet without a TCP flow; a rule whose protocol
cannot be TCP is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netsentry.rules.errors import RuleError
from netsentry.rules.registry import RuleBuilder, keyword, unquote

if TYPE_CHECKING:  # pragma: no cover
    from netsentry.decode.packet import Packet
    from netsentry.flow.flow import Flow

SETUP, ESTABLISHED, CLOSING = 1, 2, 4
_PHASES = {"setup": SETUP, "established": ESTABLISHED, "closing": CLOSING}
_CLOSING_STATES = frozenset(("fin_wait1", "fin_wait2", "time_wait", "last_ack", "close_wait", "closing"))
_MAX_ARG = 32


def parse_phases(text: str) -> int:
    """The phase bits of a tcp.session value, or a RuleError saying what is wrong."""
    what = "tcp.session"
    if not text:
        raise RuleError(f"{what}: needs a comma-separated subset of setup, established, closing")
    if len(text) > _MAX_ARG:
        raise RuleError(f"{what}: argument too long ({len(text)} > {_MAX_ARG})")
    if text[0] == "," or text[-1] == "," or ",," in text:
        raise RuleError(f"{what}: empty token in '{text}'")
    bits = 0
    for token in text.split(","):
        flag = _PHASES.get(token)
        if flag is None:
            raise RuleError(f"{what}: unknown token '{token}' in '{text}' (setup, established, closing)")
        if bits & flag:
            raise RuleError(f"{what}: duplicate token '{token}' in '{text}'")
        bits |= flag
    return bits


@keyword("tcp.session", help="tcp.session:setup|established|closing[,...]; phase of the TCP session")
def tcp_session(b: RuleBuilder, arg: str | None) -> None:
    protos = b.sig.ip_protos
    if protos is not None and 6 not in protos:
        raise RuleError("tcp.session: requires a TCP rule")
    want = parse_phases(unquote(arg, "tcp.session").strip())

    def check(pkt: Packet, flow: Flow | None) -> bool:
        if flow is None or flow.proto != 6:
            return False
        phase = ESTABLISHED if flow.established else SETUP
        if flow.tcp_state in _CLOSING_STATES:
            phase |= CLOSING
        return bool(phase & want)
    b.packet_checks.append(check)
