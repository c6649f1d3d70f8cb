"""Payload keywords: content and its modifiers, pcre, isdataat, bsize, dsize, pkt_data.

Semantics follow Suricata's documentation ("Payload Keywords"): modifiers
apply to the content right before them; `depth` counts from `offset`;
`distance`/`within` are relative to the end of the previous content/pcre
match; a relative modifier and an absolute one (`depth`/`offset`) cannot be
mixed on one content; `startswith` is `depth:<len>; offset:0`; negated
contents (`!`) match when the bytes are absent in the window. Values of
offset/depth/distance/within/isdataat may name byte_extract/byte_math
variables. The matching itself lives in rules/inspect.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from netsentry.rules.errors import RuleError, UnsupportedError
from netsentry.rules.inspect import Content, Det, Item, Value
from netsentry.rules.numeric import parse_uint
from netsentry.rules.pcre import compile_pcre, translate
from netsentry.rules.pcre_pcre2 import LIMIT_ERRORS as _PCRE2_LIMIT
from netsentry.rules.pcre_pcre2 import compile_limited
from netsentry.rules.pcre_re2 import compile_re2
from netsentry.rules.pcre_limit import LIMIT as _LIMIT
from netsentry.rules.pcre_limit import PcreTimeout
from netsentry.rules.registry import RuleBuilder, keyword, parse_int, unquote

_HEX = set("0123456789abcdefABCDEF")
_ESCAPABLE = set('\\;":|')


def parse_content_string(text: str, what: str = "content") -> bytes:
    """Suricata content syntax: text, `|41 42|` hex segments, `\\` escapes for `\\ ; " : |`."""
    out = bytearray()
    i, n = 0, len(text)
    in_hex = False
    hexbuf = ""
    while i < n:
        ch = text[i]
        if in_hex:
            if ch == "|":
                if hexbuf:
                    raise RuleError(f"{what}: odd number of hex digits in '{text}'")
                in_hex = False
            elif ch in _HEX:
                hexbuf += ch
                if len(hexbuf) == 2:
                    out.append(int(hexbuf, 16))
                    hexbuf = ""
            elif ch in " \t":
                if hexbuf:
                    raise RuleError(f"{what}: hex digits must come in pairs in '{text}'")
            else:
                raise RuleError(f"{what}: invalid hex character '{ch}' in '{text}'")
        elif ch == "\\":
            if i + 1 >= n or text[i + 1] not in _ESCAPABLE:
                bad = text[i + 1] if i + 1 < n else "end"
                raise RuleError(f"{what}: invalid escape '\\{bad}' in '{text}'")
            out += text[i + 1].encode()
            i += 1
        elif ch == "|":
            in_hex = True
        else:
            # surrogateescape: a non-UTF-8 byte in the rules file stands for itself
            out += ch.encode("utf-8", "surrogateescape")
        i += 1
    if in_hex:
        raise RuleError(f"{what}: unterminated hex segment '|' in '{text}'")
    return bytes(out)


def _negatable(arg: str | None, what: str) -> tuple[bool, str]:
    if arg is None:
        raise RuleError(f"{what}: missing value")
    s = arg.strip()
    negated = s.startswith("!")
    if negated:
        s = s[1:].strip()
    if len(s) < 2 or s[0] != '"' or s[-1] != '"':
        raise RuleError(f"{what}: value must be in double quotes: {arg.strip()!r}")
    return negated, s[1:-1]


@keyword("content", help='content:"text|00 01|"; content:!"x"; bytes to find')
def content(b: RuleBuilder, arg: str | None) -> None:
    b.require_packet_buffer("content")
    negated, text = _negatable(arg, "content")
    pattern = parse_content_string(text)
    if not pattern:
        raise RuleError("content: empty pattern")
    c = Content(pattern=pattern, negated=negated, buffer=b.buffer)
    b.contents.append(c)
    b.add_item(c)


def _modifier(b: RuleBuilder, name: str) -> Content:
    b.require_packet_buffer(name)
    c = b.last_content(name)
    flags = b.extra.setdefault(("modifiers", id(c)), set())
    if name in flags:
        raise RuleError(f"'{name}' given twice for the same content")
    flags.add(name)
    return c


def _no_mix(c: Content, name: str, relative: bool) -> None:
    if c.startswith:
        raise RuleError(f"'{name}' cannot be mixed with startswith on the same content")
    if relative and (c.depth is not None or c.offset is not None):
        raise RuleError(f"can't use a relative keyword like '{name}' with an absolute one "
                        f"(depth/offset) on the same content")
    if not relative and (c.distance is not None or c.within is not None):
        raise RuleError(f"can't use an absolute keyword like '{name}' with a relative one "
                        f"(distance/within) on the same content")


@keyword("nocase", value="none", help="nocase; ASCII case-insensitive content")
def nocase(b: RuleBuilder, arg: str | None) -> None:
    _modifier(b, "nocase").nocase = True


@keyword("rawbytes", value="none", help="rawbytes; accepted, no effect (no normalised buffers)")
def rawbytes(b: RuleBuilder, arg: str | None) -> None:
    _modifier(b, "rawbytes").rawbytes = True


@keyword("depth", help="depth:N|var; search at most N bytes from offset")
def depth(b: RuleBuilder, arg: str | None) -> None:
    c = _modifier(b, "depth")
    _no_mix(c, "depth", False)
    v = b.value(unquote(arg, "depth"), "depth", 0, 65535)
    if not v.is_var:
        if v.const == 0:
            raise RuleError("depth: 0 is not allowed")
        if v.const < len(c.pattern):
            raise RuleError(f"depth {v.const} is smaller than the content length {len(c.pattern)}")
    c.depth = v


@keyword("offset", help="offset:N|var; start searching N bytes into the buffer")
def offset(b: RuleBuilder, arg: str | None) -> None:
    c = _modifier(b, "offset")
    _no_mix(c, "offset", False)
    c.offset = b.value(unquote(arg, "offset"), "offset", 0, 65535)


@keyword("distance", help="distance:N|var; start N bytes after the previous match (may be < 0)")
def distance(b: RuleBuilder, arg: str | None) -> None:
    c = _modifier(b, "distance")
    _no_mix(c, "distance", True)
    c.distance = b.value(unquote(arg, "distance"), "distance", -65535, 65535)
    c.relative = True
    _mark_anchor(b, c)


@keyword("within", help="within:N|var; match must end within N bytes of the previous match")
def within(b: RuleBuilder, arg: str | None) -> None:
    c = _modifier(b, "within")
    _no_mix(c, "within", True)
    v = b.value(unquote(arg, "within"), "within", -65535, 65535)
    if not v.is_var and v.const < len(c.pattern):
        raise RuleError(f"within {v.const} is smaller than the content length {len(c.pattern)}")
    c.within = v
    c.relative = True
    _mark_anchor(b, c)


def _mark_anchor(b: RuleBuilder, c: Content) -> None:
    """The content/pcre before `c` must retry on failure (Suricata's RELATIVE_NEXT)."""
    items = b.last_list if b.last_list is not None else b.items
    idx = next(i for i, it in enumerate(items) if it is c)
    for it in reversed(items[:idx]):
        if it.can_be_relative_to:
            it.relative_next = True
            return


@keyword("startswith", value="none", help="startswith; content at the start of the buffer")
def startswith(b: RuleBuilder, arg: str | None) -> None:
    c = _modifier(b, "startswith")
    if c.depth is not None or c.offset is not None or c.is_relative:
        raise RuleError("startswith cannot be mixed with depth, offset, distance or within")
    c.depth = Value(const=len(c.pattern))
    c.offset = Value(const=0)
    c.startswith = True


@keyword("endswith", value="none", help="endswith; content at the end of the buffer")
def endswith(b: RuleBuilder, arg: str | None) -> None:
    _modifier(b, "endswith").endswith = True


@keyword("fast_pattern", value="optional", help="fast_pattern[:only|:offset,length]; the prefilter content")
def fast_pattern(b: RuleBuilder, arg: str | None) -> None:
    c = _modifier(b, "fast_pattern")
    if any(x.fast_pattern for x in b.contents if x is not c):
        raise RuleError("fast_pattern can be used on only one content in a rule")
    c.fast_pattern = True
    if arg is None or not arg.strip():
        return
    a = unquote(arg, "fast_pattern").strip()
    if a == "only":
        if c.negated:
            raise RuleError("fast_pattern:only cannot be used on a negated content")
        c.fast_pattern_only = True
        return
    parts = a.split(",")
    if len(parts) != 2:
        raise RuleError(f"fast_pattern: expected 'only' or 'offset,length', got '{a}'")
    off = parse_int(parts[0], "fast_pattern offset", 0, 65535)
    length = parse_int(parts[1], "fast_pattern length", 1, 65535)
    if off + length > len(c.pattern):
        raise RuleError(f"fast_pattern: chop {off},{length} is past the end of the "
                        f"{len(c.pattern)}-byte content")
    c.fast_pattern_chop = (off, length)


@keyword("pkt_data", value="none", help="pkt_data; back to the packet payload buffer")
def pkt_data(b: RuleBuilder, arg: str | None) -> None:
    b.select_buffer("pkt_data")


# --- dsize / bsize -------------------------------------------------------------------

_DSIZE_NEEDS_PAYLOAD = re.compile(r"^\s*(?:!(?!.*(?:-|<>))|>|[0-9x]+\s*(?:-|<>))")


@keyword("dsize", help="dsize:[<>!]N|A<>B; payload size of the packet")
def dsize(b: RuleBuilder, arg: str | None) -> None:
    text = unquote(arg, "dsize")
    pred = parse_uint(text, "dsize", 16)
    if _DSIZE_NEEDS_PAYLOAD.match(text):
        # Suricata's signature mask: dsize with !N, >N, >=N or a range requires a
        # payload, so a packet without one never matches (dsize:!9 skips empty ACKs)
        b.packet_checks.append(lambda pkt, flow: pkt.payload_len > 0 and pred(pkt.payload_len))
    else:
        b.packet_checks.append(lambda pkt, flow: pred(pkt.payload_len))
    b.sig.pkt_only = True      # Suricata: dsize only ever matches packets, not the stream


class Bsize(Item):
    """bsize: the length of the inspected buffer."""

    def __init__(self, pred: Callable[[int], bool]) -> None:
        self.pred = pred

    def inspect(self, buf: bytes, blen: int, det: Det) -> bool:
        if not self.pred(blen):
            det.discontinue = True
            return False
        nxt = self.next
        return True if nxt is None else nxt(buf, blen, det)


@keyword("bsize", help="bsize:N|<N|>N|A<>B; length of the buffer")
def bsize(b: RuleBuilder, arg: str | None) -> None:
    b.require_packet_buffer("bsize")
    b.add_item(Bsize(parse_uint(unquote(arg, "bsize"), "bsize", 64)))


# --- isdataat ---------------------------------------------------------------------------

class IsDataAt(Item):
    """isdataat:[!]N[,relative] as Suricata's content inspection evaluates it."""

    def __init__(self, at: Value, relative: bool, negated: bool) -> None:
        self.at = at
        self.relative = relative
        self.negated = negated

    def inspect(self, buf: bytes, blen: int, det: Det) -> bool:
        at = self.at.get(det)
        if self.relative:
            has = det.buffer_offset + at <= blen
            if has == self.negated:
                if not has and not self.at.is_var:
                    det.discontinue = True
                return False
        else:
            has = at < blen
            if has == self.negated:
                det.discontinue = True
                return False
        nxt = self.next
        return True if nxt is None else nxt(buf, blen, det)


@keyword("isdataat", help="isdataat:[!]N[,relative]; is there data at byte N")
def isdataat(b: RuleBuilder, arg: str | None) -> None:
    b.require_packet_buffer("isdataat")
    parts = [p.strip() for p in unquote(arg, "isdataat").split(",")]
    first = parts[0]
    negated = first.startswith("!")
    if negated:
        first = first[1:].strip()
    relative = False
    for p in parts[1:]:
        if p == "relative":
            relative = True
        elif p == "rawbytes":
            pass
        else:
            raise RuleError(f"isdataat: unknown option '{p}'")
    b.add_item(IsDataAt(b.value(first, "isdataat", 0, 65535), relative, negated))


# --- pcre ---------------------------------------------------------------------------------

# Suricata's http modifier flags -> the buffer they select (all app-layer for now).
_PCRE_BUFFER_FLAGS = {
    "U": "http.uri", "I": "http.uri.raw", "P": "http.request_body", "Q": "http.response_body",
    "H": "http.header", "D": "http.header.raw", "M": "http.method", "C": "http.cookie",
    "S": "http.stat_code", "Y": "http.stat_msg", "V": "http.user_agent", "W": "http.host",
    "Z": "http.host.raw", "K": "http.request_line",
}
_PCRE_RE = re.compile(r"^/(.*)/([A-Za-z]*)$", re.S)


# A flow whose packets make one fallback pcre run out of its budget this many
# times no longer runs that rule (a hostile flow would otherwise cost the budget
# on every packet); counted in detect.pcre_flow_disabled. The tables are bounded.
PCRE_STRIKES = 2
_PCRE_FLOW_TABLE_MAX = 65536


class Pcre(Item):
    """One pcre, on the first engine that can run it exactly: RE2 (`linear`,
    pcre_re2.py), else PCRE2 bounded by a step count (`limited`, pcre_pcre2.py),
    else Python's `re` under the CPU-time limit (pcre_limit.py). The last two
    give up on a flow after PCRE_STRIKES budget overruns."""

    can_be_relative_to = True

    def __init__(self, regex: re.Pattern[bytes], relative: bool, negated: bool, anchored: bool,
                 source: str, fast: Any = None, limited: Any = None,
                 spec: tuple[str, str] | None = None) -> None:
        self.regex = regex
        self.relative = relative
        self.negated = negated
        self.source = source
        self.anchored = anchored
        self.spec = spec            # (pattern, flags): what the rule cache stores instead of compiled code
        self.linear = fast is not None
        self.limited = not self.linear and limited is not None
        engine = fast if fast is not None else limited if limited is not None else regex
        self.engine = "re2" if self.linear else "pcre2" if self.limited else "re"
        self._find = engine.match if anchored else engine.search
        self.captures: tuple[tuple[int, str, str], ...] = ()   # (group, kind, name): _captures
        self.captured: list[tuple[str, str, bytes]] | None = None  # the last match's (kind, name, value)
        self.flow_key: Any = None                   # the flow being inspected (set by the rule's gate)
        self.strikes: dict[Any, int] = {}           # flow -> budget overruns
        self.disabled: set[Any] = set()             # flows this pcre is no longer run on

    def __getstate__(self) -> dict[str, Any]:
        """The rule cache (rules/cache.py) stores the pattern, not the compiled regexes:
        re-compiling 4,500 ET Open pcres on every cached start cost ~2 s, while a
        replay's packets reach few of them; each compiles on its first evaluation."""
        state = self.__dict__.copy()
        if self.spec is not None:
            state["regex"] = state["_find"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self._find is None:
            if self.linear or self.limited:
                self._find = self._compile_find
            else:
                # Python's re runs under the CPU-time limit (pcre_limit.py): its compile must
                # not count against the first evaluation's budget, so compile now (these are
                # the pcres neither RE2 nor PCRE2 can run: few or none)
                pattern, flags = self.spec      # type: ignore[misc]
                self.regex = compile_pcre(pattern, flags)
                self._find = self.regex.match if self.anchored else self.regex.search

    def _compile_find(self, subject: Any, start: int) -> Any:
        """The first search of an RE2 or PCRE2 pcre loaded from the rule cache: compile (the
        same engine the rule was loaded with), keep the compiled search, run it."""
        pattern, flags = self.spec       # type: ignore[misc]
        engine: Any = compile_re2(translate(pattern), flags) if self.linear else compile_limited(pattern, flags)
        self._find = engine.match if self.anchored else engine.search
        return self._find(subject, start)

    def _once(self, buf: bytes, blen: int, det: Det) -> bool:
        """One pcre attempt (Suricata's DetectPcrePayloadMatch); updates det on a match."""
        base = det.buffer_offset if self.relative else 0
        if base > blen:
            return self.negated
        start = det.pcre_start - base if det.pcre_start > base else 0
        subject = memoryview(buf)[base:] if base else buf
        if self.linear:
            m = self._find(subject, start)
        elif self.limited:
            try:
                m = self._find(subject, start)
            except _PCRE2_LIMIT:
                # out of steps: no match, as Suricata treats pcre.match-limit
                _LIMIT.timeouts += 1
                det.discontinue = True
                self._strike()
                return False
        else:
            try:
                m = _LIMIT.search(self._find, subject, start)
            except PcreTimeout:
                # out of CPU time (pcre_limit.py): no match, as Suricata treats a match-limit
                # error, and no retry further along the buffer, which would blow up again
                det.discontinue = True
                self._strike()
                return False
        if m is None:
            return self.negated
        if self.negated:
            return False
        det.buffer_offset = base + m.end()
        det.pcre_start = base + m.start() + 1
        if self.captures:
            self._capture(subject, m.start())
        return True

    def _capture(self, subject: Any, at: int) -> None:
        """Keep this match's capture groups for the rule's post-match step (Suricata
        stores them in the thread's var list and applies them if the rule matches).
        The groups come from Python's `re` run at the match's start (RE2/PCRE2 said
        where; the same leftmost-first pattern gives the same groups there)."""
        rx = self.regex
        if rx is None:
            rx = self.regex = compile_pcre(*self.spec)      # type: ignore[misc]
        mm = rx.match(subject, at)
        if mm is None:
            self.captured = None
            return
        self.captured = [(kind, name, bytes(mm.group(g))) for g, kind, name in self.captures
                         if mm.group(g) is not None]

    def _strike(self) -> None:
        key = self.flow_key
        if key is None:
            return
        n = self.strikes.get(key, 0) + 1
        if n < PCRE_STRIKES:
            if len(self.strikes) >= _PCRE_FLOW_TABLE_MAX:
                self.strikes.clear()
            self.strikes[key] = n
            return
        self.strikes.pop(key, None)
        if len(self.disabled) >= _PCRE_FLOW_TABLE_MAX:
            self.disabled.clear()
        self.disabled.add(key)
        _LIMIT.flows_disabled += 1

    def inspect(self, buf: bytes, blen: int, det: Det) -> bool:
        det.budget -= 1
        if det.budget <= 0:
            det.discontinue = True
            return False
        nxt = self.next
        prev_buffer_offset = det.buffer_offset
        det.pcre_start = 0
        while True:
            if not self._once(buf, blen, det):
                return False
            if nxt is None:
                return True
            if not self.relative_next or self.negated:
                return nxt(buf, blen, det)
            prev_start = det.pcre_start
            if nxt(buf, blen, det):
                return True
            if det.discontinue:
                return False
            det.buffer_offset = prev_buffer_offset
            det.pcre_start = prev_start


# --- pcre captures into variables (Suricata's pcre "flow:NAME, pkt:NAME, alert:NAME") ------
CAPTURE_KINDS = ("flow", "pkt", "alert")
CAPTURE_MAX = 8             # Suricata's DETECT_PCRE_CAPTURE_MAX
_CAPTURE_ITEM = re.compile(r"^\s*(flow|pkt|alert)\s*:\s*([A-Za-z0-9_.\-]+)\s*$")
_NAMED_GROUP = re.compile(r"^(flow|pkt|alert)_(.+)$")


def _split_captures(text: str) -> tuple[str, list[tuple[str, str]]]:
    """`/re/flags, flow:a, pkt:b` -> (`/re/flags`, [("flow", "a"), ("pkt", "b")])."""
    end = text.rfind("/")
    if end <= 0 or "," not in text[end:]:
        return text, []
    head, _, rest = text[end:].partition(",")
    out = []
    for part in rest.split(","):
        m = _CAPTURE_ITEM.match(part)
        if not m:
            raise RuleError(f"pcre: capture '{part.strip()}' is not flow:NAME, pkt:NAME or alert:NAME")
        out.append((m.group(1), m.group(2)))
    return text[:end] + head, out


def _captures(regex: re.Pattern[bytes], listed: list[tuple[str, str]]) -> tuple[tuple[int, str, str], ...]:
    """(group number, kind, name) per capture: groups named (?P<flow_x>...), (?P<pkt_x>...)
    or (?P<alert_x>...) first, then the listed names for the groups in order."""
    out: list[tuple[int, str, str]] = []
    for gname, index in sorted(regex.groupindex.items(), key=lambda kv: kv[1]):
        m = _NAMED_GROUP.match(gname)
        if m:
            out.append((index, m.group(1), m.group(2)))
    if listed:
        if len(listed) > regex.groups:
            raise RuleError(f"pcre: {len(listed)} capture names for {regex.groups} capture groups")
        out.extend((i + 1, kind, name) for i, (kind, name) in enumerate(listed))
    if len(out) > CAPTURE_MAX:
        raise RuleError(f"pcre: at most {CAPTURE_MAX} captures, got {len(out)}")
    return tuple(out)


def _store_captures(item: "Pcre", sig: Any) -> Callable[[Any, Any], None]:
    """The rule's post-match step: the pcre's captures become flowvars (kept on the flow,
    in `flow.flowbits` under ("var", NAME) so EVE lists them in the order they were
    first set), pktvars or alert context. Both of the last two go to `pkt.pktvars` as
    (owner, NAME, value): owner None for a pktvar (EVE metadata.pktvars), the rule's
    (gid, sid) for its alert's `alert.context` (output/eve.py with_vars)."""
    def store(pkt: Any, flow: Any) -> None:
        captured = item.captured
        if not captured:
            return
        item.captured = None
        for kind, name, value in captured:
            if kind == "flow":
                if flow is None:
                    continue
                bits = flow.flowbits
                if bits is None:
                    bits = flow.flowbits = {}
                bits[("var", name)] = value
            else:
                if pkt.pktvars is None:
                    pkt.pktvars = []
                pkt.pktvars.append((None if kind == "pkt" else (sig.gid, sig.sid), name, value))
    return store


def swap_greediness(pattern: str) -> str:
    """PCRE's G flag (PCRE_UNGREEDY): every quantifier's greediness inverted, since
    Python's `re`, RE2 and PCRE2-by-pattern have no such switch (`a*` -> `a*?`,
    `a*?` -> `a*`). Escapes and character classes are copied as they are."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            out.append(c)
            if c == "]":
                in_class = False
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":
                out.append("]")
                i += 1
            continue
        quant_end = -1
        if c in "*+?" and not (c == "?" and out and out[-1] == "("):
            quant_end = i + 1
        elif c == "{":
            close = pattern.find("}", i)
            if close > 0 and re.fullmatch(r"\d+(,\d*)?", pattern[i + 1:close]):
                quant_end = close + 1
        if quant_end < 0:
            out.append(c)
            i += 1
            continue
        out.append(pattern[i:quant_end])
        i = quant_end
        if i < n and pattern[i] == "?":
            i += 1                  # lazy -> greedy
        elif i < n and pattern[i] == "+":
            out.append("+")         # possessive: left alone
            i += 1
        else:
            out.append("?")         # greedy -> lazy
    return "".join(out)


def pcre_gate(items: list[Pcre]) -> Callable[[Any, Any], bool]:
    """The packet check placed first in a rule with budgeted (non-RE2) pcres: skip the
    rule on flows where one of them struck out; tell them which flow is inspected."""
    def gate(pkt: Any, flow: Any) -> bool:
        key = flow.flow_id if flow is not None else None
        for item in items:
            if key is not None and key in item.disabled:
                return False
            item.flow_key = key
        return True
    return gate


@keyword("pcre", help='pcre:[!]"/regex/flags"; flags i s m x R (relative) A E B O')
def pcre(b: RuleBuilder, arg: str | None) -> None:
    b.require_packet_buffer("pcre")
    bare = (arg or "").strip()
    if bare.lstrip("!").lstrip().startswith("/"):
        # Suricata also takes the regex unquoted (pcre:/x/U;, suricata-verify UriTestSig22)
        negated, text = bare.startswith("!"), bare.lstrip("!").strip()
    else:
        negated, text = _negatable(arg, "pcre")
    text, capture_list = _split_captures(text)
    m = _PCRE_RE.match(text)
    if not m:
        # Suricata's parse regex is a search from the first unescaped '/': what stands
        # before it is dropped (pcre:"^/GET (.*)$/G" is /GET (.*)$/G; lua-scflowvarget)
        first = re.search(r"(?<!\\)/", text)
        if first is not None and first.start() > 0:
            m = _PCRE_RE.match(text[first.start():])
    if not m:
        raise RuleError(f"pcre: expected \"/regex/flags\", got '{text}'")
    pattern, flags = m.group(1), m.group(2)
    ungreedy = False
    relative = anchored = False
    target = None
    for f in flags:
        if f in _PCRE_BUFFER_FLAGS:
            target = _PCRE_BUFFER_FLAGS[f]
            if b.buffer == target or (f == "Q" and b.buffer == "file.data"):
                target = None        # the flag names the sticky buffer already active
            elif b.buffer != "pkt_data":
                raise RuleError(f"pcre flag '{f}' cannot be used with the sticky buffer '{b.buffer}' active")
            continue
        if f == "R":
            relative = True
        elif f == "A":
            anchored = True
        elif f == "E":
            pattern = re.sub(r"(?<!\\)\$", r"\\z", pattern)
        elif f in "BO":
            pass        # rawbytes (no normalised buffers here); match-limit override
        elif f in "ismx":
            pass
        elif f == "G":
            ungreedy = True
        else:
            raise RuleError(f"pcre: unknown flag '{f}'")
    if ungreedy:
        pattern = swap_greediness(pattern)
    re_flags = "".join(f for f in flags if f in "ismx")
    regex = compile_pcre(pattern, re_flags)
    fast = compile_re2(translate(pattern), re_flags)
    limited = None if fast is not None else compile_limited(pattern, re_flags)
    item = Pcre(regex, relative, negated, anchored, text, fast, limited, (pattern, re_flags))
    captures = _captures(regex, capture_list)
    if captures:
        if negated:
            raise RuleError("pcre: a negated pcre cannot capture (flow:/pkt:/alert: variables)")
        item.captures = captures
        b.post_actions.append(_store_captures(item, b.sig))
    b.add_item(item)
    if not item.linear:
        b.extra.setdefault("budgeted_pcres", []).append(item)
    if target is not None:       # /U /H ...: the pcre inspects that app-layer buffer
        from netsentry.applayer.registry import BUFFERS
        b.to_buffer(item, target)
        b.app_protos.add(BUFFERS[target].proto)
