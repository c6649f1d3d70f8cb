"""The keyword table: name -> setup function, filled by `@keyword` in rules/keywords/*.

As in Suricata's `sigmatch_table`, a keyword's setup function receives the
rule under construction (`RuleBuilder`) and the option's value, parses the
value once and attaches what it needs: a packet check, an inspection item for
the current buffer, a modifier on the last content, a post-match action, or
meta data. The parser knows nothing about individual keywords, so adding one
touches only its family module (and that module's test file).
"""

from __future__ import annotations

import re

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from netsentry.rules.buffers import is_supported
from netsentry.rules.errors import RuleError, UnsupportedError
from netsentry.rules.inspect import Content, Item, Value

if TYPE_CHECKING:  # pragma: no cover
    from netsentry.rules.signature import Signature

Setup = Callable[["RuleBuilder", "str | None"], None]

# value: "required" (keyword:value;), "none" (keyword;), "optional"
VALUE_KINDS = ("required", "none", "optional")


@dataclass(frozen=True, slots=True)
class Keyword:
    name: str
    setup: Setup
    value: str = "required"
    help: str = ""
    family: str = ""


KEYWORDS: dict[str, Keyword] = {}

FAMILIES = ("meta", "payload", "byte", "header", "hdr_buffers", "events", "flow", "xbits", "threshold", "applayer", "base64", "files",
            "sctp", "bypass", "asn1", "header8", "session", "mail_ftp",
            "sip", "llmnr", "template", "datasets", "entropy", "http2", "dcerpc", "pgsql", "ldap", "enip", "modbus", "dnp3", "ike",
            "mqtt", "ntp", "snmp", "krb5", "dhcp", "rfb", "websocket", "lua", "iprep",
            "nfs", "quic")
_loaded = False


def keyword(name: str, *aliases: str, value: str = "required", help: str = "") -> Callable[[Setup], Setup]:
    """Register `fn` as the setup of keyword `name` (and its aliases)."""
    if value not in VALUE_KINDS:
        raise ValueError(f"keyword {name}: value must be one of {VALUE_KINDS}")

    def deco(fn: Setup) -> Setup:
        family = fn.__module__.rsplit(".", 1)[-1]
        for n in (name, *aliases):
            if n in KEYWORDS:
                raise ValueError(f"keyword {n!r} registered twice ({KEYWORDS[n].family}, {family})")
            KEYWORDS[n] = Keyword(n, fn, value, help, family)
        return fn

    return deco


def lookup(name: str) -> Keyword | None:
    if not _loaded:
        load_families()
    return KEYWORDS.get(name.lower())


def load_families() -> None:
    """Import every keyword family module so its decorators run (once)."""
    global _loaded
    if _loaded:
        return
    for fam in FAMILIES:
        importlib.import_module(f"netsentry.rules.keywords.{fam}")
    _loaded = True


def unquote(arg: str | None, what: str, *, mandatory: bool = False) -> str:
    """Strip one pair of double quotes (Suricata's SIGMATCH_QUOTES_*)."""
    if arg is None:
        raise RuleError(f"{what}: missing value")
    s = arg.strip()
    if len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        return s[1:-1]
    if mandatory:
        raise RuleError(f"{what}: value must be in double quotes: {arg!r}")
    return s


_INT = re.compile(r"-?(?:0[xX][0-9a-fA-F]+|[0-9]+)")
_DECIMAL = re.compile(r"-?[0-9]+")


def parse_int(text: str, what: str, lo: int | None = None, hi: int | None = None,
              decimal: bool = False) -> int:
    """A rule number: decimal, or 0x hex where Suricata reads base 0 (`decimal=False`).

    Checked against a pattern first: Python's int() also takes ``1_000``,
    ``+5`` and non-ASCII digits, which Suricata's strtoul-based parsers refuse.
    """
    t = text.strip()
    if not (_DECIMAL if decimal else _INT).fullmatch(t):
        raise RuleError(f"{what}: invalid number '{t}'" + (" (decimal only)" if decimal else ""))
    v = int(t, 16) if "x" in t.lower() else int(t, 10)
    if lo is not None and v < lo or hi is not None and v > hi:
        rng = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise RuleError(f"{what}: {v} out of range ({rng})")
    return v


_APP_BUFFERS: dict[str, Any] | None = None


def _app_buffers() -> dict[str, Any]:
    # Once per process: the import machinery behind load_protocols, asked for every payload
    # keyword of every rule, was 15% of parsing ET Open (cProfile: 2.2 of 15 s).
    global _APP_BUFFERS
    if _APP_BUFFERS is None:
        from netsentry.applayer.registry import BUFFERS, load_protocols
        load_protocols()
        _APP_BUFFERS = BUFFERS
    return _APP_BUFFERS


class Instance(int):
    """The last element of a `buffer_items` key for the second and later instance of a
    multi-instance buffer (select_buffer); `finish` drops it from the transforms."""


def _base(key: Any) -> str:
    return key if isinstance(key, str) else key[0]


def _multi_instance(name: str) -> bool:
    buf = _app_buffers().get(name)
    return buf is not None and buf.multi


@dataclass(eq=False)
class RuleBuilder:
    """State of one rule while its options are set up, then `finish`ed into the Signature."""

    sig: Signature
    env: Any = None                          # loader.LoadEnv: classifications, references
    buffer: str = "pkt_data"                 # current sticky buffer
    items: list[Item] = field(default_factory=list)
    contents: list[Content] = field(default_factory=list)
    variables: dict[str, int] = field(default_factory=dict)   # byte_extract/byte_math name -> slot
    packet_checks: list[Any] = field(default_factory=list)
    final_checks: list[Any] = field(default_factory=list)
    post_actions: list[Any] = field(default_factory=list)
    flowbits_set: set[str] = field(default_factory=set)
    flowbits_checked: set[str] = field(default_factory=set)
    flowints_set: set[str] = field(default_factory=set)
    flowints_checked: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)   # keywords given so far (for "only once" checks)
    extra: dict[str, Any] = field(default_factory=dict)   # family-private state
    # app-layer: inspection items per sticky buffer (key: buffer name plus its transforms),
    # checks on a transaction (urilen, ssl_state, ...), the app protocol rules and buffers need
    buffer_items: dict[Any, list[Item]] = field(default_factory=dict)
    transforms: list[Any] = field(default_factory=list)  # of the current sticky buffer
    tx_checks: list[Any] = field(default_factory=list)
    app_protos: set[str] = field(default_factory=set)

    last_list: list[Item] | None = None  # the list the latest content/pcre went to (modifiers apply there)
    instance: Instance | None = None     # the current buffer's instance past the first (multi-instance buffers)

    def select_buffer(self, name: str) -> None:
        """Make `name` the sticky buffer later payload keywords inspect (`pkt_data` for the payload).

        The payload's items stay in `items` until `finish`; a sticky buffer gets its own
        list, shared by every selection of the same buffer with the same transforms
        (Suricata: one list per buffer and transform set, so a content after a second
        `http.uri;` is relative to the first's). Packet header buffers (`ipv4.hdr`, ...,
        rules/buffers.py) and app-layer buffers (applayer/registry.py) work alike."""
        if self.buffer == "pkt_data":
            self.buffer_items["pkt_data"] = self.items
        self.buffer = name
        self.transforms = []
        key: Any = name
        if self.buffer_items.get(name) and _multi_instance(name):
            # Suricata (SCDetectBufferSetActiveList): a multi-instance buffer (file.data,
            # file.name, http.request_header, tls.certs, ...) selected again starts a new
            # instance, which may match another file / header / cert than the first
            key = (name, Instance(sum(1 for k in self.buffer_items if _base(k) == name)))
        self.items = self.last_list = self.buffer_items.setdefault(key, [])
        self.instance = key[1] if isinstance(key, tuple) else None

    set_buffer = select_buffer

    def buffer_supported(self) -> bool:
        """Whether payload keywords may inspect the current buffer: the packet payload,
        a packet header buffer (rules/buffers.py) or an app-layer buffer (applayer/)."""
        return is_supported(self.buffer) or self.buffer in _app_buffers() or self.buffer == "base64_data"

    def add_transform(self, transform: Any) -> None:
        """A transform of the current sticky buffer: the keywords after it inspect the
        transformed buffer. As Suricata (DetectBufferGetActiveList), keywords written
        before it keep inspecting the buffer as it was: `http.uri; content:"/?a=";
        from_base64:offset 4; content:"x"` matches the raw URI, then the decoded one."""
        inst = (self.instance,) if self.instance is not None else ()
        key = (self.buffer, *self.transforms, *inst) if self.transforms or inst else self.buffer
        self.transforms.append(transform)
        new_key = (self.buffer, *self.transforms, *inst)
        if not self.items and self.buffer_items.get(key) is self.items:
            del self.buffer_items[key]
        target = self.buffer_items.setdefault(new_key, [])
        self.items = self.last_list = target

    def to_buffer(self, content: Item, name: str) -> None:
        """Move `content` (just added to the current list) to buffer `name`'s list:
        the legacy modifiers (`content:"x"; http_uri;`), Suricata's list move."""
        for lst in (self.items, self.last_list or []):
            for i in range(len(lst) - 1, -1, -1):
                if lst[i] is content:
                    del lst[i]
                    break
        target = self.buffer_items.setdefault(name, [])
        if content.relative:
            for it in reversed(target):
                if it.can_be_relative_to:
                    it.relative_next = True
                    break
        target.append(content)
        self.last_list = target

    # --- payload helpers used by keyword families -----------------------------------
    def add_item(self, item: Item) -> None:
        """Append an inspection item; a relative one marks its anchor as `relative_next`."""
        target = self.items
        if item.relative and not item.can_be_relative_to and self.last_list is not None:
            target = self.last_list    # byte_*/isdataat relative to a content moved by a legacy modifier
        if item.relative:
            for it in reversed(target):
                if it.can_be_relative_to:
                    it.relative_next = True
                    break
        target.append(item)
        self.last_list = target

    def last_anchor(self) -> Item | None:
        """The last content or pcre of the current buffer (what `relative` refers to)."""
        for it in reversed(self.last_list if self.last_list is not None else self.items):
            if it.can_be_relative_to:
                return it
        return None

    def last_content(self, keyword: str) -> Content:
        """The content a modifier like `nocase`/`depth` applies to, or a RuleError."""
        for it in reversed(self.last_list if self.last_list is not None else self.items):
            if isinstance(it, Content):
                return it
        raise RuleError(f"'{keyword}' needs a preceding content")

    def value(self, text: str, what: str, lo: int | None = None, hi: int | None = None) -> Value:
        """A number, or the name of a byte_extract/byte_math variable defined earlier."""
        t = text.strip()
        if t and (t[0].isalpha() or t[0] == "_"):
            slot = self.variables.get(t)
            if slot is None:
                raise RuleError(f"{what}: unknown variable '{t}' (not set by an earlier byte_extract/byte_math)")
            return Value(slot=slot, name=t)
        return Value(const=parse_int(t, what, lo, hi))

    def define_variable(self, name: str, what: str) -> int:
        if not name or not (name[0].isalpha() or name[0] == "_") or not name.replace("_", "").replace(".", "").isalnum():
            raise RuleError(f"{what}: invalid variable name '{name}'")
        if name in self.variables:
            return self.variables[name]
        slot = self.variables[name] = len(self.variables)
        return slot

    def require_packet_buffer(self, keyword: str) -> None:
        """Payload keywords work on pkt_data, the packet header buffers (rules/buffers.py)
        and the app-layer buffers registered in applayer/."""
        if not self.buffer_supported():
            raise UnsupportedError(f"app-layer buffer '{self.buffer}' not supported yet",
                                   category=f"app-layer buffer '{self.buffer}' not supported yet")
