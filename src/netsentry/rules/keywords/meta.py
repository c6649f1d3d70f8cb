"""Meta keywords: msg sid rev gid classtype priority metadata reference target noalert prefilter.

They describe the rule and never inspect traffic. Severity is settled when
the rule is finished (`priority:` wins over the classtype's priority, default
3), so the order of `classtype` and `priority` in the rule does not matter.
"""

from __future__ import annotations

import re
from typing import Any

from netsentry.rules.errors import RuleError, UnsupportedError
from netsentry.rules.registry import RuleBuilder, keyword, parse_int, unquote


def clean(text: str) -> str:
    """Text for outputs: a non-UTF-8 byte of the rules file becomes U+FFFD (JSON needs valid text)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def unescape(text: str) -> str:
    """Suricata's msg/metadata unescaping: a backslash keeps the next character."""
    text = clean(text)
    if "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            i += 1
            ch = text[i]
        out.append(ch)
        i += 1
    return "".join(out)


def _once(b: RuleBuilder, name: str) -> None:
    if name in b.seen:
        raise RuleError(f"'{name}' given more than once")


@keyword("msg", help='msg:"text"; the alert message')
def msg(b: RuleBuilder, arg: str | None) -> None:
    _once(b, "msg")
    b.sig.msg = unescape(unquote(arg, "msg"))


@keyword("sid", help="sid:N; the rule id (> 0)")
def sid(b: RuleBuilder, arg: str | None) -> None:
    _once(b, "sid")
    b.sig.sid = parse_int(unquote(arg, "sid"), "sid", 1, (1 << 32) - 1, decimal=True)


@keyword("rev", help="rev:N; the rule revision")
def rev(b: RuleBuilder, arg: str | None) -> None:
    _once(b, "rev")
    b.sig.rev = parse_int(unquote(arg, "rev"), "rev", 0, (1 << 32) - 1, decimal=True)


@keyword("gid", help="gid:N; the generator id (default 1)")
def gid(b: RuleBuilder, arg: str | None) -> None:
    _once(b, "gid")
    b.sig.gid = parse_int(unquote(arg, "gid"), "gid", 0, (1 << 32) - 1, decimal=True)


@keyword("classtype", help="classtype:name; from classification.config")
def classtype(b: RuleBuilder, arg: str | None) -> None:
    _once(b, "classtype")
    name = unquote(arg, "classtype").strip()
    table = getattr(b.env, "classifications", None)
    if table is not None:
        entry = table.get(name.lower())
        if entry is None:
            raise RuleError(f"unknown classtype '{name}' (not in classification.config)")
        b.sig.class_description, b.extra["class_priority"] = entry
    b.sig.classtype = name


@keyword("priority", help="priority:1..255; overrides the classtype's priority")
def priority(b: RuleBuilder, arg: str | None) -> None:
    _once(b, "priority")
    b.sig.priority = parse_int(unquote(arg, "priority"), "priority", 1, 255, decimal=True)


@keyword("metadata", help="metadata:key value, key value;")
def metadata(b: RuleBuilder, arg: str | None) -> None:
    text = unquote(arg, "metadata")
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, _, val = part.partition(" ")
        b.sig.metadata.setdefault(key.strip(), []).append(unescape(val.strip()))


@keyword("reference", help="reference:system,id;")
def reference(b: RuleBuilder, arg: str | None) -> None:
    text = unquote(arg, "reference")
    system, sep, ref = text.partition(",")
    if not sep or not system.strip() or not ref.strip():
        raise RuleError(f"reference: expected 'system,id', got '{text}'")
    b.sig.references.append((clean(system.strip().lower()), clean(ref.strip())))
    b.sig.reference_urls = (*b.sig.reference_urls, reference_url(b, system.strip(), clean(ref.strip())))


_SCHEME = re.compile(r'\s*"?\s*([a-zA-Z]+://)(.*)', re.S)


def reference_url(b: RuleBuilder, system: str, ref: str) -> str:
    """The URL EVE writes for a reference (Suricata's DetectReferenceParse): a scheme in the
    reference itself (`url,foobar://host/x`) overrides the system's prefix; else the prefix
    reference.config gives the system; a system it lacks reads as "undefined", as Suricata
    registers an unknown one."""
    ref = ref.strip().strip('"').strip()
    m = _SCHEME.match(ref)
    if m:
        return m.group(1) + m.group(2)
    refs = b.env.references if b.env is not None else {}
    prefix = refs.get(system.lower())
    if prefix is None:
        prefix = next((v for k, v in refs.items() if k.lower() == system.lower()), "undefined")
    return prefix + ref


@keyword("target", help="target:src_ip|dest_ip; which side is the target")
def target(b: RuleBuilder, arg: str | None) -> None:
    val = unquote(arg, "target").strip()
    if val not in ("src_ip", "dest_ip"):
        raise RuleError(f"target: expected src_ip or dest_ip, got '{val}'")
    b.sig.target = val


@keyword("noalert", value="none", help="noalert; match (and set flowbits) without alerting")
def noalert(b: RuleBuilder, arg: str | None) -> None:
    b.sig.noalert = True


@keyword("alert", value="none", help="alert; alert even when the action does not imply it (alert then pass)")
def alert(b: RuleBuilder, arg: str | None) -> None:
    # Suricata's ACTION_ALERT on top of the rule's action: a `pass` rule logs its alert,
    # then passes the packet (and the flow, for a flow-scoped rule) as usual
    b.sig.force_alert = True


# The Suricata version whose rule language netsentry follows, for `requires: version`, and
# the optional features it has (Suricata's `requires: feature`).
COMPAT_VERSION = (9, 0, 0)
FEATURES = frozenset({"ja3", "ja4"})


def _version(text: str) -> tuple[int, int, int]:
    parts = [int(x) for x in text.split(".")] + [0, 0]
    return parts[0], parts[1], parts[2]


@keyword("requires", help="requires: feature F, keyword K, version >= A [< B] [| ...]; load only when met")
def requires(b: RuleBuilder, arg: str | None) -> None:
    """Suricata 7.0.3+'s requires: a rule whose requirements this engine does not meet is
    skipped (with that reason), never an error; a malformed requirement is an error. The
    parser already evaluated it before the rule's header (`check_requires`)."""
    check_requires(unquote(arg, "requires"))


_REQ_KEY = re.compile(r"\s*([A-Za-z0-9_-]*)\s*([^,]*)")
_VERSION_TERM = re.compile(r"\s*(>=|<=|>|<|=)?\s*(\d+(?:\.\d+){0,2})\s*")


def _version_alternatives(value: str) -> list[list[tuple[str, tuple[int, int, int], int]]]:
    """``>= 7.0.3 < 8 | >= 9``: alternatives (OR) of conditions (AND), as Suricata 8."""
    alts = []
    for alt in value.split("|"):
        conds = []
        pos = 0
        alt = alt.strip()
        while pos < len(alt):
            m = _VERSION_TERM.match(alt, pos)
            if m is None or m.end() == pos:
                raise RuleError(f"requires: bad version requirement '{value}'")
            conds.append((m.group(1) or "", _version(m.group(2)), len(m.group(2).split("."))))
            pos = m.end()
        if not conds:
            raise RuleError(f"requires: bad version requirement '{value}'")
        alts.append(conds)
    return alts


def _version_ok(op: str, want: tuple[int, int, int], parts: int) -> bool:
    have = COMPAT_VERSION
    return {">=": have >= want, ">": have > want, "<=": have <= want, "<": have < want,
            "=": have[:parts] == want[:parts], "": have >= want}[op]


def _feature_off(name: str, config: Any) -> bool:
    """A feature the configuration turns off: `ja4` with `app-layer.protocols.tls.ja4-fingerprints:
    no` (Suricata provides the feature only when JA4 is not disabled)."""
    if name != "ja4" or config is None:
        return False
    from netsentry.config import get
    v = get(config, "app-layer.protocols.tls.ja4-fingerprints", "auto")
    return v is False or str(v).strip().lower() in ("no", "false", "off", "0")


def check_requires(text: str, config: Any = None) -> None:
    """Evaluate a `requires` value (Suricata's rust detect/requires.rs): UnsupportedError when
    this engine does not meet it (the rule is skipped: an unknown requirement too, as
    Suricata 8 skips those for forward compatibility), RuleError when it is malformed
    (a key without a value, a bad version expression, two version requirements)."""
    from netsentry.rules.registry import lookup
    unmet: list[str] = []
    versions = 0
    for part in text.split(","):
        if not part.strip():
            continue
        m = _REQ_KEY.fullmatch(part)
        kind, value = (m.group(1).lower(), m.group(2).strip()) if m else ("", "")
        if not kind or not value:
            raise RuleError(f"requires: expected 'feature X', 'keyword X' or 'version OP N', got '{part.strip()}'")
        if kind == "feature":
            if value.lower() not in FEATURES or _feature_off(value.lower(), config):
                unmet.append(f"feature {value}")
        elif kind == "keyword":
            kw = lookup(value)
            if kw is None or kw.help.endswith("(not supported yet)"):
                unmet.append(f"keyword {value}")
        elif kind == "version":
            versions += 1
            if versions > 1:
                raise RuleError("requires: more than one version requirement")
            alts = _version_alternatives(value)
            if not any(all(_version_ok(*c) for c in conds) for conds in alts):
                unmet.append(f"version {value}")
        else:
            unmet.append(f"unknown requirement '{kind} {value}'")
    if unmet:
        raise UnsupportedError(f"requires: not met by netsentry ({', '.join(unmet)})",
                               category="requires: not met")


def prescan_requires(options: list[tuple[str, str | None]], config: Any = None) -> None:
    """Suricata reads `requires` before anything else of a rule, so a rule for another
    version (an unknown protocol, keyword or action) is skipped, not an error."""
    for name, value in options:
        if name.lower() == "requires" and value:
            check_requires(unquote(value, "requires"), config)


_TAG_DEFAULT_COUNT = 256


@keyword("tag", help="tag:session|host[,COUNT,packets|bytes|seconds[,src|dst]]; tag later packets")
def tag(b: RuleBuilder, arg: str | None) -> None:
    """Suricata's tag syntax (detect-tag.c): session or host; count and metric together;
    a direction only for host (default dst). Tagging changes what is logged after the
    alert, never whether the rule alerts."""
    parts = [p.strip() for p in unquote(arg, "tag").split(",")]
    scope = parts[0].lower()
    if scope not in ("session", "host"):
        raise RuleError(f"tag: scope must be session or host, got '{parts[0]}'")
    count, metric, direction = _TAG_DEFAULT_COUNT, "packets", "dst"
    if len(parts) not in (1, 3, 4):
        raise RuleError(f"tag: expected <scope>[,<count>,<metric>[,<direction>]], got '{arg}'")
    if len(parts) >= 3:
        if not parts[1].isdigit():
            raise RuleError(f"tag: count must be a number, got '{parts[1]}'")
        count, metric = int(parts[1]), parts[2].lower()
        if metric not in ("packets", "bytes", "seconds"):
            raise RuleError(f"tag: metric must be packets, bytes or seconds, got '{parts[2]}'")
    if len(parts) == 4:
        if scope != "host":
            raise RuleError("tag: a direction is only for the host scope")
        direction = parts[3].lower()
        if direction not in ("src", "dst"):
            raise RuleError(f"tag: direction must be src or dst, got '{parts[3]}'")
    b.sig.tags.append((scope, count, metric, direction))


@keyword("prefilter", value="none", help="prefilter; a hint to use this rule's fast_pattern as prefilter")
def prefilter(b: RuleBuilder, arg: str | None) -> None:
    b.sig.prefilter = True
