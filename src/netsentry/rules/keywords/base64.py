"""base64_decode and base64_data: inspect base64-encoded data found inside a buffer.

Suricata (detect-base64-decode.c, detect-base64-data.c,
detect-engine-content-inspection.c): `base64_decode[:bytes N][, offset N][, relative]`
is an item of the current buffer's inspection list. It decodes up to `bytes`
bytes (default: the rest of the buffer) starting `offset` bytes after the
buffer's start, or after the previous content/pcre match with `relative`,
in RFC 4648 mode (decoding stops at the first byte outside the alphabet).
`base64_data` then makes the decoded bytes the buffer the following payload
keywords inspect, as a buffer of its own (offsets count from its start).

Semantics copied from Suricata's engine:
- nothing decoded (offset past the end, no base64 at all) is no match;
- the decoded list is terminal: when it matches, the rule's buffer matched,
  keywords after `base64_decode` in the outer buffer are never reached;
- `base64_decode` without a `base64_data` list never matches;
- the decoded contents are never the rule's fast pattern (Suricata has no
  multi-pattern engine for this list).

`http.cookie; content:"foobar="; base64_decode:relative; base64_data;
content:"|9e|"; startswith;`
"""

from __future__ import annotations

import re

from netsentry.rules.errors import RuleError
from netsentry.rules.inspect import Chain, Det, Item
from netsentry.rules.keywords.applayer import _b64_decode_lenient
from netsentry.rules.registry import RuleBuilder, keyword, parse_int

BASE64_DATA = "base64_data"      # the buffer name later payload keywords see
_MAX_BYTES = 65535               # Suricata parses `bytes` as a uint16

_OPTION = re.compile(r"\s*(bytes|offset)\s+(\S+)\s*|\s*(relative)\s*")


class Base64Decode(Item):
    """The decoding step of a buffer's list, with the `base64_data` list it feeds."""

    def __init__(self, nbytes: int, offset: int, relative: bool) -> None:
        self.nbytes = nbytes
        self.offset = offset
        self.relative = relative
        self.data_items: list[Item] = []     # the base64_data keywords, in rule order
        self._chain: Chain | None = None

    def inspect(self, buf: bytes, blen: int, det: Det) -> bool:
        start = det.buffer_offset if self.relative else 0
        if self.offset:
            if self.offset >= blen - start:
                return False
            start += self.offset
        end = blen if not self.nbytes else min(blen, start + self.nbytes)
        if start >= end or not self.data_items:
            return False
        decoded = _b64_decode_lenient(buf[start:end], skip_invalid=False)
        if not decoded:
            return False
        chain = self._chain
        if chain is None:       # wired on first use: the list is complete once the rule parsed
            chain = self._chain = Chain(self.data_items, 0, buffer=BASE64_DATA)
        inner = Det(0)
        inner.vars = det.vars           # byte_extract variables are per rule, not per buffer
        inner.budget = det.budget
        ok = chain.run(decoded, inner)
        det.budget = inner.budget
        return ok                       # terminal, as Suricata's "final_match"

    def __getstate__(self) -> dict:
        # the rule cache pickles rules; the chain is rebuilt from the items on first use
        state = dict(self.__dict__)
        state["_chain"] = None
        return state


def parse_base64_decode(text: str | None) -> tuple[int, int, bool]:
    """`bytes N`, `offset N`, `relative` in any order, comma separated; all optional."""
    nbytes = offset = 0
    relative = False
    seen: set[str] = set()
    if text is None or not text.strip():
        return nbytes, offset, relative
    for part in text.split(","):
        m = _OPTION.fullmatch(part)
        if m is None:
            raise RuleError(f"base64_decode: bad option '{part.strip()}' (bytes N, offset N, relative)")
        key = m.group(1) or m.group(3)
        if key in seen:
            raise RuleError(f"base64_decode: '{key}' given twice")
        seen.add(key)
        if key == "relative":
            relative = True
        elif key == "bytes":
            nbytes = parse_int(m.group(2), "base64_decode bytes", 1, _MAX_BYTES, decimal=True)
        else:
            offset = parse_int(m.group(2), "base64_decode offset", 0, (1 << 32) - 1, decimal=True)
    return nbytes, offset, relative


@keyword("base64_decode", value="optional",
         help="base64_decode[:bytes N][,offset N][,relative]; decode base64 for base64_data")
def base64_decode(b: RuleBuilder, arg: str | None) -> None:
    if b.buffer == BASE64_DATA:
        raise RuleError("base64_decode cannot inspect base64_data (decoded data is not decoded again)")
    b.require_packet_buffer("base64_decode")
    nbytes, offset, relative = parse_base64_decode(arg)
    if relative and b.last_anchor() is None:
        raise RuleError("base64_decode: 'relative' needs a preceding content or pcre in the buffer")
    if "base64_decode" in b.extra:
        raise RuleError("base64_decode can be used once per rule (one base64_data buffer)")
    dec = Base64Decode(nbytes, offset, relative)
    b.add_item(dec)
    b.extra["base64_decode"] = dec


@keyword(BASE64_DATA, value="none", help="base64_data; inspect the bytes base64_decode decoded")
def base64_data(b: RuleBuilder, arg: str | None) -> None:
    dec = b.extra.get("base64_decode")
    if dec is None:
        raise RuleError("base64_data needs a base64_decode before it")
    if b.buffer == "pkt_data":
        b.buffer_items["pkt_data"] = b.items
    b.buffer = BASE64_DATA
    b.transforms = []
    b.items = b.last_list = dec.data_items
