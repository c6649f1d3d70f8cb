"""Parse one rule's text into a `Signature`: header, option splitting, keyword setup, finish.

Option splitting follows Suricata's `SigParseOptions`, not a quote-tracking
tokenizer: an option ends at the first ``;`` not preceded by a backslash, so
a pcre with an unbalanced quote (ET Open sid 2029732, ``pcre:"/^["']?post/Ri"``)
splits exactly as Suricata splits it. The option name runs to the first
``:``; the rest, trimmed, is the value.

A rule that cannot load raises `RuleError`. Unsupported features (app-layer
protocols, buffers, keywords) do not stop option parsing: every one found is
listed in ``err.features`` so `rules check` can say which feature would
unlock how many rules; the reason shown is the first one.
"""

from __future__ import annotations

import re
from typing import Any

from netsentry.applayer.registry import ABSENT_OR, ALIASES, BUFFERS, BOTH, TO_CLIENT, TO_SERVER
from netsentry.rules.errors import RuleError, UnsupportedError
from netsentry.rules.hook_rules import apply_hook
from netsentry.rules.buffers import BUFFERS as PACKET_BUFFERS
from netsentry.rules.keywords.meta import prescan_requires
from netsentry.rules.buffers import buffer_checks
from netsentry.rules.inspect import Chain, Content
from netsentry.rules.registry import Instance, RuleBuilder, lookup
from netsentry.rules.signature import ACTIONS, PROTO_NUMBERS, Signature

PACKET_PROTOCOLS = frozenset(PROTO_NUMBERS)     # sctp too: decode/sctp.py gives its ports
APP_LAYER_PROTOCOLS = frozenset({
    "http", "http1", "http2", "dns", "tls", "ssl", "smtp", "ftp", "ftp-data", "smb", "ssh",
    "dcerpc", "dhcp", "nfs", "ntp", "tftp", "ikev2", "ike", "krb5", "snmp", "sip", "rfb", "mqtt",
    "modbus", "dnp3", "enip", "imap", "pop3", "quic", "rdp", "bittorrent-dht", "telnet",
    "websocket", "ldap", "pgsql", "template", "irc", "nntp", "smtp-starttls", "doh2",
})
# app-layer protocols netsentry parses -> the IP-level protocol its rules are grouped under
PARSED_APP_PROTOCOLS = {"http": "tcp", "http1": "tcp", "tls": "tcp", "ssl": "tcp", "dns": "ip",
                        "smtp": "tcp", "ftp": "tcp", "ftp-data": "tcp", "ssh": "tcp",
                        "smb": "tcp", "dcerpc": "tcp", "http2": "tcp", "doh2": "tcp",
                        "sip": "ip", "llmnr": "ip", "template": "tcp", "pgsql": "tcp", "ldap": "ip", "enip": "ip", "modbus": "tcp", "dnp3": "tcp", "ike": "udp", "ikev2": "udp",
                        "mqtt": "tcp", "ntp": "udp", "tftp": "udp", "snmp": "udp", "krb5": "ip", "dhcp": "udp", "rfb": "tcp", "websocket": "tcp", "telnet": "tcp",
                        "nfs": "ip", "quic": "udp"}
# The other protocols whose flows also satisfy a rule's protocol (Suricata's AppProtoEquals:
# DCERPC rules see DCERPC carried over SMB)
_APP_PROTO_ALSO = {"dcerpc": frozenset({"smb"}), "http": frozenset({"http2", "doh2"}),
                   "http2": frozenset({"doh2"}), "dns": frozenset({"doh2"})}
# a transaction rule of the key's protocol also inspects the transactions of the listed
# ones, whose parser is another (DCERPC over SMB: the SMB parser's DCERPC transactions).
# HTTP over HTTP/2 and DNS over DoH2 are not here: their transactions carry the rule's
# buffers themselves (applayer/registry.py INSPECTED_AS, detect/txdetect.py)
_TX_APP_PROTO_ALSO = {"dcerpc": frozenset({"smb"})}
DIRECTIONS = ("->", "<>")
_BUFFER_FAMILIES = frozenset({"payload", "byte"})


def split_rule(text: str) -> tuple[str, str]:
    """(header, options-body) of a rule; options-body excludes the parentheses.

    As Suricata's SigParseBasics, the closing parenthesis may be missing: the body is
    what follows '(' with trailing blanks and ')' taken off (a body whose last option
    has no ';' is then refused by `split_options`)."""
    start = text.find("(")
    if start < 0:
        raise RuleError("rule has no options '(...)'")
    end = len(text)
    while end > start + 1 and (text[end - 1] == ")" or text[end - 1].isspace()):
        end -= 1
    return text[:start].strip(), text[start + 1:end]


def split_options(body: str) -> list[tuple[str, str | None]]:
    """Suricata's option splitting: name[:value] up to each unescaped ';'."""
    out: list[tuple[str, str | None]] = []
    i, n = 0, len(body)
    while i < n:
        while i < n and body[i] in " \t\r\n":
            i += 1
        if i >= n:
            break
        j = body.find(";", i)
        while j > i and body[j - 1] == "\\":
            j = body.find(";", j + 1)
        if j < 0:
            raise RuleError(f"option without terminating ';': '{body[i:].strip()}'")
        opt = body[i:j]
        name, sep, value = opt.partition(":")
        name = name.strip(" \t")        # isblank, as Suricata: "\fcontent" is no keyword
        if not name:
            raise RuleError(f"empty option name in '{opt.strip()}'")
        if sep:
            value = value.strip()
            _check_quotes(name, value)
            out.append((name, value))
        else:
            out.append((name, None))
        i = j + 1
    return out


def _check_quotes(name: str, value: str) -> None:
    """Suricata's rule: a value that opens a double quote closes it at its end, i.e.
    before the ';' that ended the option. So ``msg:"oops; content:..."`` (a quote
    never closed) is an error, while ``pcre:"/^["']?post/Ri"`` (a quote inside a
    quoted value) is not. A leading '!' (negation) comes before the quote."""
    v = value[1:].lstrip(" \t") if value.startswith("!") else value
    if v.startswith('"') and (len(v) < 2 or not v.endswith('"')):
        raise RuleError(f"bad option value formatting (possible missing semicolon) for keyword "
                        f"'{name}': '{value}'")


def split_header(header: str) -> list[str]:
    """Whitespace tokens, keeping a bracketed address/port list with spaces in one token."""
    tokens: list[str] = []
    cur = ""
    depth = 0
    for tok in header.split():
        cur = f"{cur} {tok}" if cur else tok
        depth += tok.count("[") - tok.count("]")
        if depth <= 0:
            tokens.append(cur.replace(" ", ""))
            cur, depth = "", 0
    if cur:
        raise RuleError(f"unbalanced '[' in rule header '{header}'")
    return tokens


def _prescan_sid(body: str) -> int | None:
    """The rule's sid, for locating an error, even when option splitting fails later."""
    m = _SID.search(body)
    return int(m.group(1)) if m else None


_SID = re.compile(r'(?:^|;)\s*sid\s*:\s*"?\s*([0-9]{1,10})\s*"?\s*;')


def parse_rule(text: str, env: Any, file: str = "", line: int = 0) -> Signature:
    """One rule (already joined if it spanned lines) -> Signature, or RuleError."""
    sid: int | None = None
    try:
        header, body = split_rule(text)
        sid = _prescan_sid(body)
        options = split_options(body)
        # Suricata: a rule for another version is skipped first
        prescan_requires(options, env.state.get("config") if env is not None else None)
        if env is not None:
            env.state["rule_file"] = file     # keywords reading a file next to the rule (filemd5)
        sig = _parse(header, options, env, text)
        sig.file, sig.line = file, line
        return sig
    except RuleError as e:
        raise e.located(file, line, sid) from None


def _parse(header: str, options: list[tuple[str, str | None]], env: Any, raw: str) -> Signature:
    tokens = split_header(header)
    if len(tokens) != 7:
        raise RuleError(f"rule header needs 7 fields (action proto src sport dir dst dport), "
                        f"got {len(tokens)}: '{header}'")
    action, proto, src, sp, direction, dst, dp = tokens
    # Suricata 8's scoped/multiple actions and rule hooks (detect/firewall.py; imported
    # here: detect/ imports the rules package): the hook is `fw_action.hook`
    from netsentry.detect.firewall import parse_header as parse_fw_header
    action, proto, fw_action = parse_fw_header(action.lower(), proto.lower())
    hook = None
    if action not in ACTIONS:
        raise RuleError(f"unknown action '{action}'")
    unsupported: list[UnsupportedError] = []
    app_proto = None
    http1_only = proto == "http1"       # `http` is HTTP/1 and HTTP/2; `http1` HTTP/1 only
    if proto in PARSED_APP_PROTOCOLS:
        app_proto = ALIASES.get(proto, proto)
        proto = PARSED_APP_PROTOCOLS[proto]
    elif proto in APP_LAYER_PROTOCOLS:
        unsupported.append(UnsupportedError(f"app-layer protocol '{proto}' not supported yet",
                                            category=f"app-layer protocol '{proto}' not supported yet"))
    elif proto not in PACKET_PROTOCOLS:
        raise RuleError(f"unknown protocol '{proto}'")
    transactional = direction == "=>"
    if transactional:
        direction = "->"         # Suricata 8's transactional rule: request and response of one tx
        if app_proto is None:
            unsupported.append(UnsupportedError("direction '=>' needs an app-layer protocol in the header",
                                                category="direction '=>' without app-layer protocol"))
    elif direction not in DIRECTIONS:
        raise RuleError(f"unknown direction '{direction}' (expected -> or <>)")
    sig = Signature(action=action, proto=proto,
                    src=env.addresses.parse(src), sp=env.ports.parse(sp),
                    dst=env.addresses.parse(dst), dp=env.ports.parse(dp),
                    bidirectional=direction == "<>", raw=raw)
    sig.app_proto = app_proto
    sig.tx_both = transactional
    sig.firewall = fw_action
    b = RuleBuilder(sig=sig, env=env)
    if http1_only:
        b.extra["http1_only"] = True
    for name, value in options:
        kw = lookup(name)
        if kw is None:
            raise RuleError(f"unknown keyword '{name}'")
        if kw.value == "required" and (value is None or value == ""):
            raise RuleError(f"'{name}' needs a value")
        if kw.value == "none" and value is not None:
            raise RuleError(f"'{name}' takes no value, got '{value}'")
        if not b.buffer_supported() and kw.family in _BUFFER_FAMILIES and kw.name != "pkt_data":
            continue    # inside an unsupported app-layer buffer: already reported once
        try:
            kw.setup(b, value)
        except UnsupportedError as e:
            if all(u.category != e.category for u in unsupported):
                unsupported.append(e)
        except RuleError:
            if not unsupported:
                raise
            # after an unsupported buffer/protocol, later errors are artefacts of skipping it
        b.seen.add(kw.name)
    if not sig.sid:
        raise RuleError("rule has no sid")
    if not unsupported:
        fw = getattr(sig, "firewall", None)
        if fw is None or not fw.is_fw:      # firewall rules: detect/firewall.py gives hooks meaning
            apply_hook(b, hook or getattr(fw, "hook", None))
    if unsupported:
        first = unsupported[0]
        err = UnsupportedError(first.reason, category=first.category)
        err.features = [u.category for u in unsupported]
        raise err
    finish(b)
    return sig


def strength(pattern: bytes) -> int:
    """Suricata's PatternStrength: rarer-looking bytes score higher, repeats score 1."""
    seen: set[int] = set()
    s = 0
    for c in pattern:
        if c in seen:
            s += 1
            continue
        seen.add(c)
        if 65 <= c <= 90 or 97 <= c <= 122:
            s += 3
        elif 32 <= c <= 126 or c in (0x00, 0x01, 0xFF):
            s += 4
        else:
            s += 6
    return s


def choose_fast_pattern(contents: list[Content]) -> Content | None:
    """Suricata's choice: the `fast_pattern` content, else the longest positive content
    (ties: the higher pattern strength, then the first). Negated contents never."""
    positive = [c for c in contents if not c.negated]
    for c in positive:
        if c.fast_pattern:
            return c
    if not positive:
        return None
    longest = max(len(c.pattern) for c in positive)
    best: Content | None = None
    for c in positive:
        if len(c.pattern) < longest:
            continue
        if best is None or strength(c.pattern) > strength(best.pattern):
            best = c
    return best


def finish(b: RuleBuilder) -> None:
    """Settle derived fields and compile the checks once."""
    sig = b.sig
    for c in b.contents:
        c.prepare()
    pkt_items = b.items if b.buffer == "pkt_data" else b.buffer_items.get("pkt_data", [])
    if pkt_items:
        sig.payload_chain = Chain(pkt_items, len(b.variables))
    b.final_checks[:0] = buffer_checks(b)      # after the payload, as Suricata's packet inspect engines
    for finisher in b.extra.get("finishers", ()):
        finisher(b)                             # a keyword's own settling once the whole rule is known
    sig.contents = tuple(b.contents)
    finish_app_layer(b, pkt_items)
    sig.fast_pattern = choose_fast_pattern([c for c in b.contents if c.buffer == "pkt_data"])
    sig.packet_checks = tuple(b.packet_checks)
    budgeted = b.extra.get("budgeted_pcres")
    if budgeted:            # first: a flow that struck out skips the rule before any other check
        from netsentry.rules.keywords.payload import pcre_gate
        sig.packet_checks = (pcre_gate(budgeted), *sig.packet_checks)
    sig.final_checks = tuple(b.final_checks)
    sig.post_actions = tuple(b.post_actions)
    sig.flowbits_set = frozenset(b.flowbits_set)
    sig.flowbits_checked = frozenset(b.flowbits_checked)
    sig.flowints_set = frozenset(b.flowints_set)
    sig.flowints_checked = frozenset(b.flowints_checked)
    flag_tests = b.extra.get("tcp_flags_tests")
    if flag_tests:
        sig.tcp_flags_ok = frozenset(v for v in range(256) if all(t(v) for t in flag_tests))
    if sig.proto in ("ipv4", "ipv6"):
        version = 4 if sig.proto == "ipv4" else 6
        sig.packet_checks = (lambda pkt, flow: pkt.ip_version == version, *sig.packet_checks)
    if sig.proto == "arp":
        from netsentry.decode.arp import is_arp
        sig.packet_checks = (lambda pkt, flow: is_arp(pkt), *sig.packet_checks)
        sig.pkt_only = True
    elif sig.proto == "ether":
        from netsentry.rules.keywords.hdr_buffers import ether_off
        sig.packet_checks = (lambda pkt, flow: ether_off(pkt) >= 0, *sig.packet_checks)
        sig.pkt_only = True
    if sig.proto == "tcp-pkt":
        sig.pkt_only = True
    elif sig.proto == "tcp-stream":
        sig.needs_stream = True
    from netsentry.detect.stream import packet_too     # (here: detect/ imports rules/)
    sig.pkt_too = packet_too(sig, "stream_size" in b.seen)
    sig.compile()
    if sig.priority is not None:
        sig.severity = sig.priority
    elif "class_priority" in b.extra:
        sig.severity = b.extra["class_priority"]
    else:
        sig.severity = 3


_BEFORE_ESTABLISHED = frozenset({"none", "syn_sent", "syn_recv"})     # Flow.tcp_state names


def engine_proto(want: str, inline: bool = False) -> Any:
    """The packet check of an app-layer rule without buffers (`alert http ... (flow:to_server;)`):
    the flow's protocol is `want` as detection sees it on this packet.

    Suricata (DetectRunSetup) reads the flow's protocol for a TCP packet only once the
    session is established (not for a SYN carrying Fast Open data, whatever that data
    told), and knows it only once the app layer took the bytes that told it: in IDS mode
    that is when their receiver acknowledged them (a later packet than the one that
    carried them; suricata-verify detect-engine-proto, exception-policy-default-02).
    Here the protocol is named on arrival, so the check also asks that those bytes are
    no longer all held back for the acknowledgement (applayer/state.py `_hold`), and,
    for a protocol nobody parses (nothing held: detection only), that the other side
    has answered (its first bytes; before them the flow's state waits for them:
    `AWAIT_OTHER`; for the client's bytes, the server's first packet after its SYN-ACK,
    which acknowledges them), the nearest sign of an acknowledgement such a flow keeps, unless
    the other side sent nothing at all (a one-sided capture, where the app layer parses
    at once too: `_hold`). Inline the app layer takes bytes on arrival: known at once."""
    from netsentry.applayer.state import AWAIT_OTHER
    waiting = () if inline else tuple(AWAIT_OTHER.values())
    also = _APP_PROTO_ALSO.get(want, ())

    def check(pkt: Any, flow: Any) -> bool:
        if flow is None or (flow.app_proto != want and flow.app_proto not in also):
            return False
        if pkt.proto != 6:
            return True
        if flow.tcp_state in _BEFORE_ESTABLISHED:
            return False
        st = flow.app
        if st is None:
            return True
        held = st.held
        if held is None:
            # AWAIT_OTHER's `seen`: the bit (1 << to_server) of the side whose bytes told
            if st not in waiting:
                return True
            if st.seen == 2:
                # the client's bytes told: known once the server acknowledged them, with
                # its first packet after its SYN-ACK (lua-transform-09), or never answering
                n = flow.pkts_toclient
                return n == 0 or n > (1 if flow.tcp_flags_tc & 0x02 else 0)
            return not flow.pkts_toserver
        return bool(st.parser.txs) or not (held[0] or held[1])
    return check


def _http_rule(b: RuleBuilder) -> None:
    """An HTTP rule also inspects HTTP/2 transactions (registry INSPECTED_AS): its checks
    written for HTTP/1 transactions (urilen, app-layer-event:http.*) do not match those;
    an `http1` rule sees no HTTP/2 flow at all."""
    if b.extra.get("http1_only"):
        if b.tx_checks or any(items for key, items in b.buffer_items.items() if key != "pkt_data"):
            b.tx_checks.append(("http", None, lambda tx, ts: True))   # HTTP/1 transactions only (below)
        else:
            b.packet_checks.insert(0, lambda pkt, flow: flow is None or flow.app_proto != "http2")
    b.tx_checks = [(p, d, _on_http1(fn)) if p == "http" and not getattr(fn, "http2", False) else (p, d, fn)
                   for p, d, fn in b.tx_checks]


def _on_http1(fn: Any) -> Any:
    return lambda tx, ts: tx.proto == "http" and fn(tx, ts)


def finish_app_layer(b: RuleBuilder, pkt_items: list) -> None:
    """Settle a rule's app-layer side: its protocol, buffers, transaction checks and direction.

    As Suricata: a rule with a sticky buffer or a transaction keyword is inspected per
    transaction. A rule naming an app protocol in its header with no buffer or
    transaction keyword (`alert http ... (sid:1;)`, with or without payload content)
    is Suricata's "app_layer" rule type: a packet rule that needs the flow's protocol
    to be that one, so it matches every packet of the flow once the protocol is known
    (suricata-verify's rate_filter and exception-policy tests count those matches;
    detect.c checks the signature's alproto against the flow's per packet).
    """
    sig = b.sig
    protos = set(b.app_protos)
    if sig.app_proto is not None:
        protos.add(sig.app_proto)
    if protos == {"http", "http2"} and not b.extra.get("http1_only"):
        protos = {"http2"}              # an `http` rule with an HTTP/2 keyword: HTTP/2 only
    if "doh2" in protos and protos <= {"doh2", "http", "http2", "dns"}:
        protos = {"doh2"}               # DNS over HTTP/2 reads the HTTP/2 and the DNS buffers
    if len(protos) > 1:
        raise RuleError(f"rule mixes app-layer protocols: {', '.join(sorted(protos))}")
    if "http" in protos:
        _http_rule(b)
    chains = []
    for key, items in b.buffer_items.items():
        if key == "pkt_data" or not items:
            continue
        name, transforms = (key, ()) if isinstance(key, str) else (
            key[0], tuple(t for t in key[1:] if not isinstance(t, Instance)))
        if name in PACKET_BUFFERS:
            continue    # ipv4.hdr ...: a packet check (rules/buffers.py buffer_checks), not a transaction's
        chains.append((name, transforms, Chain(items, len(b.variables), buffer=name)))
    sig.tx_chains = tuple(chains)
    sig.tx_checks = tuple(b.tx_checks)
    if protos:
        sig.app_proto = protos.pop()
    if not (chains or b.tx_checks):
        if sig.app_proto is not None:
            want = sig.app_proto
            # into the builder's list: the caller sets sig.packet_checks from it afterwards
            # TCP: only once this packet left the session established (Suricata reads the
            # flow's protocol for a TCP packet with PKT_STREAM_EST only: not for a SYN
            # carrying Fast Open data, whatever that data told)
            inline = bool(b.env.state.get("stream.inline")) if b.env is not None else False
            b.packet_checks.insert(0, engine_proto(want, inline))
        return
    sig.tx_rule = True
    also = _TX_APP_PROTO_ALSO.get(sig.app_proto)
    if also:
        # a DCERPC rule's transactions are also those of DCERPC over SMB (AppProtoEquals):
        # a rule of no one protocol, gated on the flow's
        accept = frozenset((sig.app_proto, *also))
        sig.app_proto = None
        b.packet_checks.insert(0, lambda pkt, flow: flow is not None and flow.app_proto in accept)
    ip_protos = sig.ip_protos
    if ip_protos is not None:
        # the header's IP protocol (`alert udp ... frame:dns.pdu` is not DNS over TCP); the
        # packet engine groups by it, transaction inspection checks it here
        allowed = frozenset(ip_protos)
        b.packet_checks.insert(0, lambda pkt, flow: pkt.proto in allowed)
    if sig.tx_both:
        # `=>`: one alert when the response side of a transaction also matched; the
        # header is the request's direction (client -> server)
        sig.tx_direction = 1
    elif sig.flow_to_server is not None:
        sig.tx_direction = 0 if sig.flow_to_server else 1
    else:
        dirs = {BUFFERS[name].direction for name, _, _ in chains}
        dirs.update(d for _, d, _ in b.tx_checks if d is not None)
        if TO_CLIENT in dirs:
            sig.tx_direction = 1
        elif TO_SERVER in dirs:
            sig.tx_direction = 0
        elif BOTH in dirs:
            sig.tx_direction = None
        else:
            sig.tx_direction = 0    # no buffer or check says a direction: once per request
    # base64_data's contents are found in decoded bytes, never in a buffer the prefilter sees
    # (not in an `absent: or_else` buffer: the rule also matches when that is missing)
    sig.tx_fast_pattern = choose_fast_pattern([c for c in b.contents
                                               if c.buffer != "pkt_data" and c.buffer != "base64_data"
                                               and not c.buffer.endswith(ABSENT_OR)])
