"""decode-event, engine-event, stream-event: match a packet by the events its decoding raised.

As Suricata's detect-engine-event.c: `decode-event:ipv4.trunc_pkt` is
`engine-event:decoder.ipv4.trunc_pkt`, and `stream-event:x` is
`engine-event:stream.x` (with Suricata's two legacy spellings of the
SYN/ACK-resend events). Names are case-insensitive. The match is a
membership test on `pkt.events` (which holds decoder event names without
the `decoder.` prefix, as decode/events.py spells them).

Suricata refuses a name it does not know; here a decoder event netsentry's
decoders never raise is reported as unsupported (the rule is skipped with
that reason, never silently dead), while `stream.*` names are accepted: the
stream stage owns them.
"""

from __future__ import annotations

import re

from netsentry.decode import events as _events
from netsentry.rules.errors import RuleError, UnsupportedError
from netsentry.rules.registry import RuleBuilder, keyword, unquote

DECODER_EVENTS = frozenset(v for k, v in vars(_events).items() if k.isupper() and isinstance(v, str))
_NAME = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)+$")
_STREAM_ALIASES = {"est_synack_resend_with_different_ack": "est_synack_resend_with_diff_ack",
                   "3whs_synack_resend_with_different_ack": "3whs_synack_resend_with_diff_ack"}


def _attach(b: RuleBuilder, full: str, keyword_name: str) -> None:
    if not _NAME.match(full):
        raise RuleError(f"{keyword_name}: invalid event name '{full}'")
    if full.startswith("decoder."):
        name = full[len("decoder."):]
        if name not in DECODER_EVENTS:
            raise UnsupportedError(f"{keyword_name}: decoder event '{name}' is not raised by netsentry's decoders",
                                   category="decode-event not raised by netsentry")
    elif full.startswith("stream."):
        name = full
    else:
        raise RuleError(f"{keyword_name}: unknown event '{full}' (expected decoder.* or stream.*)")
    b.packet_checks.append(lambda pkt, f: pkt.events is not None and name in pkt.events)


@keyword("decode-event", help="decode-event:ipv4.trunc_pkt; a decoder event of this packet")
def decode_event(b: RuleBuilder, arg: str | None) -> None:
    _attach(b, "decoder." + unquote(arg, "decode-event").strip().lower(), "decode-event")


@keyword("engine-event", help="engine-event:decoder.ipv4.trunc_pkt|stream.x; any engine event of this packet")
def engine_event(b: RuleBuilder, arg: str | None) -> None:
    _attach(b, unquote(arg, "engine-event").strip().lower(), "engine-event")


@keyword("stream-event", help="stream-event:3whs_async_wrong_seq; a TCP stream event of this packet")
def stream_event(b: RuleBuilder, arg: str | None) -> None:
    name = unquote(arg, "stream-event").strip().lower()
    _attach(b, "stream." + _STREAM_ALIASES.get(name, name), "stream-event")
