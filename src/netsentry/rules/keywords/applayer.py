"""App-layer keywords: sticky buffers, legacy content modifiers, transaction keywords, transforms.

Every buffer registered by a protocol module in applayer/ (`applayer.registry.BUFFERS`)
becomes a sticky-buffer keyword (`http.uri;`) and, where Suricata has one, a legacy
modifier that moves the content before it (`content:"x"; http_uri;`). Names Suricata
has but netsentry does not parse stay registered with the precise reason, so
`rules check` can say which feature would unlock how many rules.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from netsentry.applayer.registry import (ABSENT, ABSENT_OR, ALIASES, BOTH, BUFFERS, DERIVERS, INSPECTED_AS, PROTOCOLS,
                                         TO_CLIENT, TO_SERVER, load_protocols)
from netsentry.rules.errors import RuleError, UnsupportedError
from netsentry.rules.inspect import Content
from netsentry.rules.numeric import parse_multi_uint, parse_uint
from netsentry.rules.registry import RuleBuilder, keyword, unquote

load_protocols()

# Sticky buffers (Suricata 6/7 names and their legacy aliases).
STICKY_BUFFERS = (
    "http.uri", "http.uri.raw", "http.method", "http.request_line", "http.request_body",
    "http.response_body", "http.header", "http.header.raw", "http.header_names", "http.cookie",
    "http.user_agent", "http.host", "http.host.raw", "http.accept", "http.accept_enc",
    "http.accept_lang", "http.connection", "http.content_type", "http.content_len",
    "http.referer", "http.protocol", "http.start", "http.stat_code", "http.stat_msg",
    "http.response_line", "http.location", "http.server", "http.request_header",
    "http.response_header", "http2.header_name", "http2.header", "file.data", "file_data",
    "file.name", "dns.query", "dns_query", "dns.answer.name", "dns.queries.rrname",
    "tls.sni", "tls_sni", "tls.cert_subject", "tls_cert_subject", "tls.cert_issuer",
    "tls_cert_issuer", "tls.cert_serial", "tls_cert_serial", "tls.cert_fingerprint",
    "tls_cert_fingerprint", "tls.certs", "tls.subjectaltname", "tls.random", "tls.random_time",
    "tls.random_bytes", "ja3.hash", "ja3_hash", "ja3.string", "ja3_string", "ja3s.hash",
    "ja3s.string", "ja4.hash", "ssh.proto", "ssh_proto", "ssh.software", "ssh_software",
    "ssh.hassh", "ssh.hassh.server", "ssh.hassh.string", "ssh.hassh.server.string",
    "smb.named_pipe", "smb.share", "smb_named_pipe", "smb_share", "smb.ntlmssp_user", "smb.ntlmssp_domain",
    "krb5.cname", "krb5.sname", "sip.method", "sip.uri",
    "sip.request_line", "sip.stat_code", "sip.stat_msg", "sip.response_line", "sip.protocol",
    "smtp.helo", "smtp.mail_from", "smtp.rcpt_to",
    "ftp.command", "ftp.command_data", "quic.sni", "quic.ua", "quic.version", "quic.cyu.hash",
    "email.from", "email.subject", "email.to", "email.cc", "snmp.community", "snmp.usm",
    "mqtt.connect.clientid", "mqtt.publish.topic", "mqtt.publish.message", "rfb.name",
    "http.request_header", "dnp3_data", "tls.alpn", "http.response_body", "dns.response.rrname",
    "dns.query.name", "dns.answers.rrname", "dns.authorities.rrname", "dns.additionals.rrname", "ldap.request.dn",
    "ldap.responses.dn", "smtp.data", "pop3.command", "imap.command",
)

# Old-style content modifiers -> the buffer they move the previous content to.
CONTENT_MODIFIERS = {
    "http_uri": "http.uri", "http_raw_uri": "http.uri.raw", "http_method": "http.method",
    "http_header": "http.header", "http_raw_header": "http.header.raw",
    "http_cookie": "http.cookie", "http_raw_cookie": "http.cookie",
    "http_user_agent": "http.user_agent", "http_host": "http.host",
    "http_raw_host": "http.host.raw", "http_client_body": "http.request_body",
    "http_server_body": "http.response_body", "http_stat_code": "http.stat_code",
    "http_stat_msg": "http.stat_msg", "http_request_line": "http.request_line",
    "http_response_line": "http.response_line", "http_content_type": "http.content_type",
    "http_content_len": "http.content_len", "http_referer": "http.referer",
    "http_accept": "http.accept", "http_accept_enc": "http.accept_enc",
    "http_accept_lang": "http.accept_lang", "http_connection": "http.connection",
    "http_protocol": "http.protocol", "http_start": "http.start",
    "http_header_names": "http.header_names", "http_location": "http.location",
    "http_server": "http.server", "uricontent": "http.uri",
}

# Keywords with no buffer of their own: (value kind, reason category).
OTHER = {
    "ssh.protoversion": "app-layer keyword", "ssh.softwareversion": "app-layer keyword",
    "filemagic": "file keyword",
    "geoip": "keyword", "replace": "keyword", "flowvar": "keyword", "pktvar": "keyword",
    "tcp.flags.ack": "keyword",
    "http.response_body.raw": "app-layer keyword",
    "config": "keyword",
    "template2": "keyword", "rpc": "keyword", "id_ext": "keyword",
    "bsize.raw": "keyword", "uri": "keyword",
}


# --- sticky buffers and legacy modifiers ------------------------------------------------------

def _unsupported_buffer(name: str):
    def setup(b: RuleBuilder, arg: str | None) -> None:
        b.buffer = name      # later payload keywords are skipped: the reason is given once
        raise UnsupportedError(f"app-layer buffer '{name}' not supported yet",
                               category=f"app-layer buffer '{name}' not supported yet")
    return setup


ANY_PROTO = "any"       # `file.data@any`: a buffer several protocols have, on a rule naming none


def _any_proto_getter(base: Any, variants: dict[str, Any]) -> Any:
    """The getter of `name@any`: the variant of the transaction's own protocol, on the side
    that variant has; one value or a list, always as a list (a multi-buffer)."""
    def get(tx: Any, to_server: bool) -> Any:
        buf = variants.get(tx.proto, base if tx.proto == base.proto else None)
        if buf is None or (buf.direction == TO_SERVER and not to_server) or (
                buf.direction == TO_CLIENT and to_server):
            return None
        v = buf.getter(tx, to_server)
        if v is None or buf.multi:
            return v
        return [v]
    return get


def _register_any_proto() -> None:
    """Suricata registers a file keyword's inspection for every protocol that carries files
    when the rule names none (`alert tcp ... (file.data; ...)` inspects SMTP attachments,
    FTP data and HTTP bodies alike): for each buffer with `name@proto` variants, one
    `name@any` that dispatches on the transaction's protocol."""
    from netsentry.applayer.registry import register_buffer
    bases: dict[str, dict[str, Any]] = {}
    for key, buf in list(dict.items(BUFFERS)):
        base, at, proto = key.partition("@")
        if at and proto != ANY_PROTO and base in BUFFERS:
            bases.setdefault(base, {})[proto] = buf
    for base, variants in bases.items():
        if all(p in INSPECTED_AS for p in variants):
            continue    # only HTTP/2's view of an HTTP buffer (http.uri@http2): an `alert http` buffer
        b0 = BUFFERS[base]
        register_buffer(f"{b0.name}@{ANY_PROTO}", "", BOTH, _any_proto_getter(b0, variants), multi=True)


_register_any_proto()


def _sticky(name: str):
    def setup(b: RuleBuilder, arg: str | None) -> None:
        buf = BUFFERS[name]
        # a buffer several protocols have (file.data, file.name): the variant of the rule's
        # protocol, registered by its module as `name@proto` (applayer/smtp.py, ftp.py); a
        # rule that names no protocol (yet) inspects every protocol's (`name@any`)
        proto = b.sig.app_proto or next(iter(b.app_protos), None)
        if proto is not None and proto != buf.proto:
            buf = dict.get(BUFFERS, f"{buf.name}@{proto}", buf)
        elif proto is None and not arg and f"{buf.name}@{ANY_PROTO}" in BUFFERS:
            b.select_buffer(f"{buf.name}@{ANY_PROTO}")
            return
        if arg:
            # Suricata 8: a buffer of both sides pinned to one (`file.data: to_client;`)
            side = arg.strip()
            if side not in ("to_client", "to_server") or buf.direction != BOTH:
                raise RuleError(f"'{name}' takes no value or, for a buffer of both directions, "
                                f"to_client / to_server; got '{arg}'")
            buf = pinned_buffer(buf, side == "to_server")
        b.select_buffer(buf.name)
        b.app_protos.add(buf.proto)
    return setup


def pinned_buffer(buf: Any, to_server: bool) -> Any:
    """`buf` read from one side only, registered once as `name:to_server` / `name:to_client`."""
    pinned = f"{buf.name}:{'to_server' if to_server else 'to_client'}"
    if pinned not in BUFFERS:
        _register_pinned(buf, to_server)
    return BUFFERS[pinned]


def _register_pinned(buf: Any, to_server: bool) -> None:
    from netsentry.applayer.registry import TO_CLIENT, TO_SERVER, register_buffer
    pinned = f"{buf.name}:{'to_server' if to_server else 'to_client'}"
    getter = buf.getter
    register_buffer(pinned, buf.proto, TO_SERVER if to_server else TO_CLIENT,
                    lambda tx, ts: getter(tx, to_server), multi=buf.multi)


DERIVERS["to_server"] = lambda buf: _register_pinned(buf, True)
DERIVERS["to_client"] = lambda buf: _register_pinned(buf, False)


def _unsupported_modifier(name: str, buffer: str):
    def setup(b: RuleBuilder, arg: str | None) -> None:
        raise UnsupportedError(f"content modifier '{name}' (app-layer buffer '{buffer}') not supported yet",
                               category=f"app-layer buffer '{buffer}' not supported yet")
    return setup


def _modifier(name: str, buffer: str):
    def setup(b: RuleBuilder, arg: str | None) -> None:
        c = b.last_content(name)
        if c.buffer != "pkt_data":
            raise RuleError(f"'{name}': the content before it is already in buffer '{c.buffer}'")
        if b.buffer != "pkt_data":
            raise RuleError(f"'{name}' cannot be used with the sticky buffer '{b.buffer}' active")
        buf = BUFFERS[buffer]
        c.buffer = buf.name
        b.to_buffer(c, buf.name)
        b.app_protos.add(buf.proto)
    return setup


def _other(name: str, kind: str):
    def setup(b: RuleBuilder, arg: str | None) -> None:
        raise UnsupportedError(f"{kind} '{name}' not supported yet",
                               category=f"{kind} '{name}' not supported yet")
    return setup


for _name in dict.fromkeys(STICKY_BUFFERS + ("http.request_header", "http.response_header", "ja3s.hash",
                                             "ja3s.string")):
    if _name in BUFFERS:
        keyword(_name, value="optional", help=f"{_name}; sticky buffer ({BUFFERS[_name].proto})")(_sticky(_name))
    else:
        keyword(_name, value="optional", help=f"{_name}; app-layer sticky buffer (not supported yet)")(
            _unsupported_buffer(_name))
# Suricata's content modifiers proper; its other underscore names (http_request_line,
# http_header_names, http_accept, ...) are sticky-buffer aliases (SIGMATCH_INFO_STICKY_BUFFER).
LEGACY_MODIFIERS = frozenset({
    "http_uri", "http_raw_uri", "http_method", "http_header", "http_raw_header", "http_cookie",
    "http_raw_cookie", "http_user_agent", "http_host", "http_raw_host", "http_client_body",
    "http_server_body", "http_stat_code", "http_stat_msg"})

for _name, _buf in CONTENT_MODIFIERS.items():
    if _name == "uricontent":
        continue
    if _name not in LEGACY_MODIFIERS and _buf in BUFFERS:
        keyword(_name, value="optional", help=f"{_name}; sticky buffer, the same as {_buf}")(_sticky(_buf))
    elif _buf in BUFFERS:
        keyword(_name, value="none", help=f"{_name}; moves the previous content to {_buf}")(_modifier(_name, _buf))
    else:
        keyword(_name, value="optional", help=f"{_name}; content modifier (not supported yet)")(
            _unsupported_modifier(_name, _buf))
for _name, _kind in OTHER.items():
    keyword(_name, value="optional", help=f"{_name} (not supported yet)")(_other(_name, _kind))


@keyword("uricontent", help='uricontent:"x"; content in http.uri (legacy)')
def uricontent(b: RuleBuilder, arg: str | None) -> None:
    from netsentry.rules.keywords.payload import content
    if b.buffer != "pkt_data":
        raise RuleError(f"'uricontent' cannot be used with the sticky buffer '{b.buffer}' active")
    content(b, arg)
    c = b.contents[-1]
    c.buffer = "http.uri"
    b.to_buffer(c, "http.uri")
    b.app_protos.add("http")


@keyword("absent", value="optional", help="absent[: or_else]; the sticky buffer is not there (or_else: "
         "or the keywords after it on the buffer match)")
def absent(b: RuleBuilder, arg: str | None) -> None:
    """Suricata 8's `absent`: true when the current sticky buffer is missing once its side
    of the transaction is complete. Plain, the buffer takes no other keyword; with
    `or_else` the keywords that follow must match when the buffer is there."""
    name = b.buffer
    buf = BUFFERS.get(name)
    if buf is None or b.transforms:
        raise RuleError("absent: needs a sticky app-layer buffer (without transforms) before it")
    mode = (arg or "").strip()
    if mode not in ("", "or_else"):
        raise RuleError(f"absent: expected nothing or 'or_else', got '{mode}'")
    if b.items:
        raise RuleError(f"absent: must come right after '{name}', before its other keywords")
    getter, multi = buf.getter, buf.multi

    def missing(tx: Any, to_server: bool) -> bool:
        v = getter(tx, to_server)
        return (v is None or (multi and not v)) and _settled(tx, name, to_server)

    if not mode:
        tx_check(b, buf.proto, buf.direction, missing)
        return
    pinned = name + ABSENT_OR
    if pinned not in BUFFERS:
        _register_or_absent(buf)
    b.select_buffer(pinned)


def _settled(tx: Any, name: str, to_server: bool) -> bool:
    """Buffer `name` can no longer appear on this side: the transaction's own progress
    rule (HttpTx.settled: a header buffer once the headers are in), else its side is done."""
    own = getattr(tx, "settled", None)
    return own(name, to_server) if own is not None else bool(tx.done[int(to_server)])


def _register_or_absent(buf: Any) -> None:
    """`NAME:or_absent`: the buffer, or ABSENT once it certainly will not appear."""
    from netsentry.applayer.registry import register_buffer
    getter, multi, name = buf.getter, buf.multi, buf.name

    def or_absent(tx: Any, to_server: bool) -> Any:
        v = getter(tx, to_server)
        if v is None or (multi and not v):
            return ABSENT if _settled(tx, name, to_server) else None
        return v
    register_buffer(name + ABSENT_OR, buf.proto, buf.direction, or_absent, multi=multi)


DERIVERS[ABSENT_OR[1:]] = _register_or_absent


# Suricata's frame protocol prefixes of the app-layer protocols (rule header / BUFFERS name)
_FRAME_PREFIX = {"http": "http1", "dns": "dns"}


@keyword("frame", help="frame:[PROTO.]NAME; sticky buffer of an app-layer frame (http1.request, dns.pdu, ...)")
def frame(b: RuleBuilder, arg: str | None) -> None:
    """Suricata's `frame`: a protocol data unit as a sticky buffer. Here the frames are
    rebuilt per transaction (HTTP/1 request/response and their line, headers, body; a
    DNS message); a bare NAME takes the rule header's protocol."""
    text = unquote(arg, "frame").strip().lower()
    proto = b.sig.app_proto or next(iter(b.app_protos), None) or b.sig.proto
    own = f"{_FRAME_PREFIX.get(proto, proto)}.{text}"
    if "." not in text or ("frame:" + text not in BUFFERS and "frame:" + own in BUFFERS):
        # a bare NAME, or a dotted one that is the rule's protocol's (SIP's `request.line`)
        text = own
    name = "frame:" + text
    if name not in BUFFERS:
        b.buffer = name
        raise UnsupportedError(f"frame '{text}' not supported yet", category=f"frame '{text}' not supported yet")
    buf = BUFFERS[name]
    b.select_buffer(name)
    b.app_protos.add(buf.proto)


# --- transaction keywords -------------------------------------------------------------------------

def tx_check(b: RuleBuilder, proto: str, direction: int | None, fn: Any) -> None:
    """A check on a transaction of `proto` (`fn(tx, to_server) -> bool`), inspected in `direction`
    (0 to server, 1 to client, BOTH each way, None: no preference of its own, so a rule of
    only such checks is inspected on the request side)."""
    b.tx_checks.append((proto, direction, fn))
    b.app_protos.add(proto)


@keyword("urilen", help="urilen:N|<N|>N|A<>B[,raw|norm]; length of the request URI (normalised by default)")
def urilen(b: RuleBuilder, arg: str | None) -> None:
    text = unquote(arg, "urilen")
    value, _, kind = text.partition(",")
    kind = kind.strip() or "norm"      # Suricata: the normalised URI unless `raw` is given
    if kind not in ("raw", "norm"):
        raise RuleError(f"urilen: expected 'raw' or 'norm' after the number, got '{kind}'")
    pred = parse_uint(value.replace(" ", ""), "urilen", 16)
    raw = kind == "raw"

    def check(tx: Any, ts: bool) -> bool:
        if tx.proto == "http2":         # HTTP/2: the :path (Suricata's urilen on the http.uri buffer)
            uri = tx.first(b":path", True)
        else:
            uri = tx.uri_raw if raw else tx.uri
        return uri is not None and pred(len(uri))
    check.http2 = True                  # type: ignore[attr-defined]  # reads HTTP/2 transactions too
    tx_check(b, "http", 0, check)


_ALPROTO_MODES = frozenset({"direction", "final", "original", "either", "to_server", "to_client"})
# keywords a protocol-detection-only rule may carry besides app-layer-protocol (Suricata's
# SignatureIsPDOnly: flow direction, flowbits set, and no sigmatch at all: the meta keywords)
_PD_ONLY_COMPAT = frozenset({
    "app-layer-protocol", "flow", "flowbits", "msg", "sid", "rev", "gid", "classtype", "priority",
    "metadata", "reference", "target", "prefilter", "noalert", "tag", "requires"})


@keyword("app-layer-protocol", help="app-layer-protocol:[!]NAME[|NAME...][,exact][,final|original|either|"
         "to_server|to_client]")
def app_layer_protocol(b: RuleBuilder, arg: str | None) -> None:
    """The flow's detected app-layer protocol (detect-app-layer-protocol.c). A rule whose
    only condition is this keyword (plus flow direction / flowbits set) is Suricata's
    "protocol detection only" rule: it is inspected only on the packets on which protocol
    detection completed for a direction (`pkt.pd_done`, set by applayer/state.py), so
    it alerts once per direction, not on every packet of the flow."""
    text = unquote(arg, "app-layer-protocol")
    names, *quals = [t.strip() for t in text.split(",")]
    names = names.lower()
    negated = names.startswith("!")
    if negated:
        names = names[1:].strip()
    exact, mode = False, None
    for q in quals:
        if q == "exact":
            exact = True
        elif q in _ALPROTO_MODES:
            if mode is not None:
                raise RuleError(f"app-layer-protocol: more than one mode in '{text}'")
            mode = q
        else:
            raise RuleError(f"app-layer-protocol: unknown mode '{q}'")
    from netsentry.rules.parser import APP_LAYER_PROTOCOLS
    wants = set()
    for name in names.split("|"):
        name = name.strip()
        if not name:
            raise RuleError(f"app-layer-protocol: empty protocol in '{text}'")
        if name not in APP_LAYER_PROTOCOLS and name not in ("failed", "unknown", "http1"):
            raise RuleError(f"app-layer-protocol: unknown protocol '{name}'")
        if name == "unknown" and negated:
            raise RuleError("app-layer-protocol: 'unknown' cannot be negated")
        if name == "http" and exact:
            raise RuleError("app-layer-protocol: 'http' with 'exact' never matches (use http1 or http2)")
        wants.add(ALIASES.get(name, name))
    want = frozenset(wants)
    # Suricata's non-exact match treats doh2 as also being dns and http2
    fuzzy = not exact and bool(want & {"dns", "http2"})
    # ... and `http` names HTTP/1 and HTTP/2 alike (`http1` is HTTP/1 only: ALIASES)
    also_h2 = not exact and "http" in want and "http1" not in names.split("|")

    side = {"to_server": 1, "to_client": 0}.get(mode or "")
    if mode == "direction":
        mode = None

    def check(pkt: Any, flow: Any) -> bool:
        if flow is None:
            return False
        proto = flow.app_proto
        if proto is None:
            st = flow.app
            if st is not None and st.failed:
                proto = "failed"
            else:
                # detection still running: only `unknown` matches, a negation never
                return "unknown" in want and not negated
        if mode is None or side is not None:
            # one direction's own protocol (Suricata's alproto_ts / alproto_tc; without a
            # mode, the packet's direction's): another protocol than the flow's when that
            # side's first bytes were another's, and, on TCP, unknown until that side sent
            # its first bytes (an ACK from the server before its banner)
            st = flow.app
            if st is not None:
                ts = (pkt.to_server != st.reversed) if side is None else bool(side)
                if (flow.proto == 6 and not (st.seen & (1 << (ts != st.reversed)))
                        and not (st.done and st.dir_protos is None)):
                    return "unknown" in want and not negated
                dir_protos = st.dir_protos
                if dir_protos is not None:
                    proto = dir_protos[ts]
        hit = proto in want or (fuzzy and proto == "doh2") or (also_h2 and proto in ("http2", "doh2"))
        if mode in ("original", "either"):
            # the protocol the flow was detected as before a change (h2c: http), else its own
            st = flow.app
            orig = getattr(st.parser, "original_proto", None) if st is not None else None
            if orig is not None:
                was = orig in want or (also_h2 and orig == "http2")
                hit = was if mode == "original" else (hit or was)
        return hit != negated
    if want & {"http2", "doh2"} or fuzzy or mode in ("original", "either"):
        # protocols only parsing reveals (h2c upgrade, DNS over HTTP/2): those parsers run
        # for this rule even when no transaction rule reads them (Sensor._set_app_consumers)
        check.parsers = ("http", "http2")       # type: ignore[attr-defined]
    b.packet_checks.append(check)
    checks = b.extra.setdefault("alproto_checks", [])
    checks.append(check)
    if len(checks) == 1:
        b.extra.setdefault("finishers", []).append(_pd_only)


def _pd_only(b: RuleBuilder) -> None:
    """Settle whether the rule is protocol-detection-only (SignatureIsPDOnly) and, if so,
    make its app-layer-protocol checks need a packet on which detection completed."""
    sig = b.sig
    fw = getattr(sig, "firewall", None)
    if fw is not None and fw.hook is not None:
        return      # an explicit hook (tcp:all) means no PD-only, as in Suricata
    if (sig.app_proto is not None or b.app_protos or b.tx_checks or b.contents
            or any(items for items in b.buffer_items.values()) or b.items
            or b.flowbits_checked or b.flowints_set or b.flowints_checked
            or sig.flow_established is not None or not b.seen <= _PD_ONLY_COMPAT):
        return
    sig.pd_only = True
    for check in b.extra["alproto_checks"]:
        i = next(i for i, c in enumerate(b.packet_checks) if c is check)
        b.packet_checks[i] = _on_pd_packet(check)


def _on_pd_packet(check: Any) -> Any:
    def pd_check(pkt: Any, flow: Any) -> bool:
        return bool(getattr(pkt, "pd_done", 0)) and check(pkt, flow)
    if hasattr(check, "parsers"):
        pd_check.parsers = check.parsers        # type: ignore[attr-defined]
    return pd_check


@keyword("app-layer-state", help="app-layer-state:[<|>]STATE; a transaction's progress, e.g. "
         "app-layer-state:<client_hello_done; (tls), request_headers (http)")
def app_layer_state(b: RuleBuilder, arg: str | None) -> None:
    """Suricata 8's detect-app-layer-state.c: the state names of the rule header's protocol
    (applayer STATES); `<S` / `>S` match while that side's progress is before / past S,
    a plain S once it reached S. The state says the side the rule inspects."""
    from netsentry.applayer.registry import STATES, TO_CLIENT, TO_SERVER
    proto = b.sig.app_proto or next(iter(b.app_protos), None)
    if proto is None:
        raise RuleError("app-layer-state: needs an app-layer protocol in the rule header (alert tls ...)")
    proto = ALIASES.get(proto, proto)
    states = STATES.get(proto)
    if states is None:
        raise RuleError(f"app-layer-state: protocol '{proto}' has no named states")
    text = unquote(arg, "app-layer-state").strip()
    mode = text[:1] if text[:1] in "<>" else ""
    name = text[len(mode):].strip()
    ts_names, tc_names, progress = states
    if name in ts_names:
        direction, n = TO_SERVER, ts_names.index(name)
    elif name in tc_names:
        direction, n = TO_CLIENT, tc_names.index(name)
    else:
        raise RuleError(f"app-layer-state: unknown {proto} state '{name}' (one of {', '.join(ts_names + tc_names)})")
    side = direction == TO_SERVER
    if mode == "<":
        tx_check(b, proto, direction, lambda tx, ts: progress(tx, side) < n)
    elif mode == ">":
        tx_check(b, proto, direction, lambda tx, ts: progress(tx, side) > n)
    else:
        tx_check(b, proto, direction, lambda tx, ts: progress(tx, side) >= n)
        b.extra["app_state_hook"] = lambda tx, ts: progress(tx, side) == n
        b.extra.setdefault("finishers", []).append(_state_hook)


def _state_hook(b: RuleBuilder) -> None:
    """A rule whose only transaction condition is a plain state (no buffer, no other tx
    keyword) is a hook rule: at exactly that state its match does not finish it."""
    if len(b.tx_checks) == 1 and not any(items for key, items in b.buffer_items.items() if key != "pkt_data"):
        b.sig.tx_at_hook = b.extra["app_state_hook"]


_DATE = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?(?:T(\d{2}))?(?::(\d{2}))?(?::(\d{2}))?$")


def _date(text: str, what: str) -> int:
    import calendar
    m = _DATE.match(text.strip())
    if not m:
        raise RuleError(f"{what}: invalid date '{text.strip()}' (YYYY[-MM[-DD[THH[:MM[:SS]]]]])")
    y, mo, d, h, mi, s = (int(g) if g else None for g in m.groups())
    return calendar.timegm((y, mo or 1, d or 1, h or 0, mi or 0, s or 0, 0, 0, 0))


def _cert_date(attr: str, name: str):
    def setup(b: RuleBuilder, arg: str | None) -> None:
        text = unquote(arg, name).strip()
        if "<>" in text:
            lo, hi = (_date(t, name) for t in text.split("<>", 1))
            pred = lambda v: lo < v < hi  # noqa: E731
        elif text[:1] in "<>":
            op, v = text[0], _date(text[1:], name)
            pred = (lambda x: x < v) if op == "<" else (lambda x: x > v)
        else:
            v = _date(text, name)
            pred = lambda x: x == v  # noqa: E731
        tx_check(b, "tls", 1, lambda tx, ts: bool(tx.certs) and pred(getattr(tx.certs[0], attr)))
    return setup


keyword("tls_cert_notbefore", "tls.cert_notbefore", help="tls_cert_notbefore:[<>]DATE; first cert's notBefore")(
    _cert_date("not_before", "tls_cert_notbefore"))
keyword("tls_cert_notafter", "tls.cert_notafter", help="tls_cert_notafter:[<>]DATE; first cert's notAfter")(
    _cert_date("not_after", "tls_cert_notafter"))

_TLS_VERSIONS = {"sslv2": 0x0200, "sslv3": 0x0300, "tls1.0": 0x0301, "tls1.1": 0x0302, "tls1.2": 0x0303,
                 "tls1.3": 0x0304}


@keyword("tls.version", help="tls.version:1.2|0x0303; the negotiated version")
def tls_version(b: RuleBuilder, arg: str | None) -> None:
    text = unquote(arg, "tls.version").strip().lower()
    names = {"1.0": 0x0301, "1.1": 0x0302, "1.2": 0x0303, "1.3": 0x0304, "ssl3": 0x0300, "ssl2": 0x0200}
    if text in names:
        v = names[text]
    else:
        try:
            v = int(text, 16) if text.startswith("0x") else int(text)
        except ValueError:
            raise RuleError(f"tls.version: invalid version '{text}'") from None
    # each side's own version, as Suricata's detect-tls-version.c (the client's on the way
    # to the server: its record header's until its hello's), TLS 1.3 drafts as 1.3
    def version_of(tx: Any, ts: Any) -> bool:
        have = tx.conn_version[1 if ts else 0]
        if have >> 8 == 0x7F and v >> 8 != 0x7F:
            have = 0x0304
        return have == v
    tx_check(b, "tls", None, version_of)


@keyword("ssl_version", "ssl.version", help="ssl_version:[!]sslv3,tls1.0,...; any of the versions")
def ssl_version(b: RuleBuilder, arg: str | None) -> None:
    """Suricata's detect-ssl-version.c: each side's own version (the client's on the way to
    the server, the server's back), matched against the list; a '!' on any item negates the
    whole match; a version outside the known ones never matches."""
    wanted: set[int] = set()
    negate = False
    for part in unquote(arg, "ssl_version").split(","):
        p = part.strip().lower()
        if p.startswith("!"):
            negate = True
        p = p.lstrip("!").strip()
        if p not in _TLS_VERSIONS:
            raise RuleError(f"ssl_version: unknown version '{p}' (one of {', '.join(_TLS_VERSIONS)})")
        wanted.add(_TLS_VERSIONS[p])

    def check(tx: Any, ts: bool) -> bool:
        v = tx.conn_version[int(ts)]
        if (v & 0xFF00) == 0x7F00:
            v = 0x0304                   # a TLS 1.3 draft
        if v not in _KNOWN_SSL_VERSIONS:
            return False
        return (v in wanted) != negate
    tx_check(b, "tls", BOTH, check)


_KNOWN_SSL_VERSIONS = frozenset(_TLS_VERSIONS.values())


_STATES = {"client_hello": 1, "server_hello": 2, "client_keyx": 4, "server_keyx": 8, "unknown": 16}


@keyword("ssl_state", help="ssl_state:[!]client_hello|server_hello|client_keyx|server_keyx|unknown[,...]")
def ssl_state(b: RuleBuilder, arg: str | None) -> None:
    conds = []
    for part in re.split(r"[,|]", unquote(arg, "ssl_state")):
        p = part.strip().lower()
        neg = p.startswith("!")
        p = p.lstrip("!").strip()
        if p not in _STATES:
            raise RuleError(f"ssl_state: unknown state '{p}'")
        conds.append((_STATES[p], neg))
    tx_check(b, "tls", None, lambda tx, ts: all(bool(tx.state & bit) != neg for bit, neg in conds))


@keyword("tls.store", value="none", help="tls.store; ignored (netsentry stores no certificates)")
def tls_store(b: RuleBuilder, arg: str | None) -> None:
    from netsentry.log import get_logger
    get_logger().warning("tls.store ignored: certificates are not stored", sid=b.sig.sid or None)
    b.app_protos.add("tls")


def _tls_legacy(name: str, attr: str):
    def setup(b: RuleBuilder, arg: str | None) -> None:
        text = unquote(arg, name)
        neg = text.startswith("!")
        needle = text.lstrip("!").encode()
        if attr == "fingerprint":
            needle = needle.lower()        # Suricata lowercases the fingerprint it compares

        def check(tx: Any, ts: bool) -> bool:
            if not tx.certs:
                return False
            v = getattr(tx.certs[0], attr)
            if isinstance(v, str):
                v = v.encode()
            return (needle in v) != neg
        tx_check(b, "tls", 1, check)
    return setup


keyword("tls.subject", help='tls.subject:"CN=x"; substring of the certificate subject')(
    _tls_legacy("tls.subject", "subject"))
keyword("tls.issuerdn", help='tls.issuerdn:"CN=x"; substring of the certificate issuer')(
    _tls_legacy("tls.issuerdn", "issuer"))
keyword("tls.fingerprint", help='tls.fingerprint:"aa:bb:.."; the certificate SHA-1')(
    _tls_legacy("tls.fingerprint", "fingerprint"))


# The app-layer events the parsers raise, per protocol (Suricata's names), with the side of
# the transaction each is inspected on (0 request, 1 response, BOTH each message's own side,
# None no preference); a rule on an event of another protocol, or on one netsentry's parser
# never raises, is reported as unsupported.
def _app_layer_events() -> dict[str, dict[str, int | None]]:
    from netsentry.applayer import http, smb, ssh, tls
    dns = ("malformed_data", "not_a_request", "not_a_response", "z_flag_set", "invalid_opcode",
           "name_too_long", "infinite_loop", "too_many_labels", "invalid_additionals",
           "invalid_authorities")
    return {"dns": {name: BOTH for name in dns}, "http": dict(http.EVENTS), "tls": dict(tls.EVENTS),
            "ssh": dict(ssh.EVENTS), "smb": dict(smb.EVENTS)}


APP_LAYER_EVENTS = _app_layer_events()


@keyword("app-layer-event", help="app-layer-event:PROTO.EVENT; an anomaly the protocol's parser found")
def app_layer_event(b: RuleBuilder, arg: str | None) -> None:
    text = unquote(arg, "app-layer-event").strip().lower()
    proto, dot, name = text.partition(".")
    if not dot or not name:
        if text.startswith("applayer_"):
            from netsentry.applayer.state import APPLAYER_EVENTS
            full = "applayer." + text
            if full not in APPLAYER_EVENTS:
                raise UnsupportedError(f"app-layer-event: generic event '{text}' is not raised by netsentry",
                                       category="app-layer-event not raised by netsentry")
            # a packet's event (protocol detection raises it on the packet it looked at)
            b.packet_checks.append(lambda pkt, f: pkt.events is not None and full in pkt.events)
            return
        raise RuleError(f"app-layer-event: expected PROTO.EVENT, got '{text}'")
    proto = ALIASES.get(proto, proto)
    known = APP_LAYER_EVENTS.get(proto)
    if known is None or name not in known:
        raise UnsupportedError(f"app-layer-event: event '{text}' is not raised by netsentry's parsers",
                               category="app-layer-event not raised by netsentry")
    tx_check(b, proto, known[name], lambda tx, ts: tx.events is not None and name in tx.events)


@keyword("dns.opcode", help="dns.opcode:[!]N|<N|>N|A-B; the DNS header opcode")
def dns_opcode(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint(unquote(arg, "dns.opcode"), "dns.opcode", 8)

    def check(tx: Any, ts: bool) -> bool:
        m = tx.request if ts else tx.response
        return m is not None and pred(m.opcode)
    tx_check(b, "dns", BOTH, check)


@keyword("dns.rcode", help="dns.rcode:[!]N|<N|>N|A-B; the DNS header response code")
def dns_rcode(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint(unquote(arg, "dns.rcode"), "dns.rcode", 8)

    def check(tx: Any, ts: bool) -> bool:
        m = tx.request if ts else tx.response
        return m is not None and pred(m.flags & 0xF)
    tx_check(b, "dns", BOTH, check)


@keyword("tls.cert_chain_len", help="tls.cert_chain_len:[op]N; how many certificates the server sent")
def tls_cert_chain_len(b: RuleBuilder, arg: str | None) -> None:
    pred = parse_uint(unquote(arg, "tls.cert_chain_len"), "tls.cert_chain_len", 32)
    # the server's Certificate message: a handshake without one is not matched
    tx_check(b, "tls", 1, lambda tx, ts: bool(tx.certs) and pred(len(tx.certs)))


def _rrtype_numbers() -> dict[str, int]:
    from netsentry.applayer.dns import RRTYPES
    return {name: num for num, name in RRTYPES.items()}


_RRTYPE_NUMBERS = _rrtype_numbers()


@keyword("dns.rrtype", help="dns.rrtype:TYPE[,INDEX[,START:END]]; the record types: a request's "
         "queries, a response's answers (Suricata's multi-integer syntax; TYPE a number or a name)")
def dns_rrtype(b: RuleBuilder, arg: str | None) -> None:
    text = unquote(arg, "dns.rrtype")
    head, comma, rest = text.partition(",")
    name = head.strip().lstrip("!<>=").strip().upper()
    if name and not name.isdigit():
        number = _RRTYPE_NUMBERS.get(name)
        if number is None:
            raise RuleError(f"dns.rrtype: unknown record type '{head.strip()}'")
        head = head.replace(head.strip().lstrip("!<>=").strip(), str(number))
    pred = parse_multi_uint(head + comma + rest, "dns.rrtype", 16)

    def check(tx: Any, ts: bool) -> bool:
        # Suricata's dns_rrtype_match: to the server the queries' types, to the client the
        # answers' (a response's question is an echo of the request's)
        if ts:
            m = tx.request
            return m is not None and pred([t for _, t in m.queries])
        m = tx.response
        return m is not None and pred([rr[1] for rr in m.answers])
    tx_check(b, "dns", BOTH, check)


# --- transforms ------------------------------------------------------------------------------------

def _dotprefix(d: bytes, arg: Any) -> bytes:
    return b"." + d if d else d      # Suricata leaves an empty buffer empty


def _strip_ws(d: bytes, arg: Any) -> bytes:
    return re.sub(rb"[ \t\n\v\f\r]", b"", d)


def _compress_ws(d: bytes, arg: Any) -> bytes:
    return re.sub(rb"[ \t\n\v\f\r]+", lambda m: m.group(0)[:1], d)


_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


def _url_decode(d: bytes, arg: Any) -> bytes:
    """Suricata's url_decode transform: `%XX` decoded, `+` a space; a broken escape is
    written as it came (`%`, the digit read so far, the byte that broke it) and the
    byte that broke it does not start a new escape (`%%41` stays `%%41`)."""
    if b"%" not in d:
        return d.replace(b"+", b" ")
    out = bytearray()
    i, n = 0, len(d)
    while i < n:
        c = d[i]
        if c == 0x25:                                   # '%'
            if i + 1 < n and d[i + 1] in _HEX_DIGITS:
                if i + 2 < n and d[i + 2] in _HEX_DIGITS:
                    out.append(int(d[i + 1:i + 3], 16))
                else:
                    out += d[i:i + 3]                   # '%', the digit, the breaker (or the end)
                i += 3
            else:
                out += d[i:i + 2]                       # '%' and the breaker (or the end)
                i += 2
            continue
        out.append(0x20 if c == 0x2B else c)
        i += 1
    return bytes(out)


def _strip_pseudo(d: bytes, arg: Any) -> bytes:
    return b"\r\n".join(line for line in d.split(b"\r\n") if not line.startswith(b":"))


def _header_lowercase(d: bytes, arg: Any) -> bytes:
    """Suricata's header_lowercase: each line's name, up to its first ':', in lower case
    (a line without one entirely); lines end at '\n', the values keep their case."""
    out = []
    for line in d.split(b"\n"):
        name, sep, value = line.partition(b":")
        out.append(name.lower() + sep + value)
    return b"\n".join(out)


def _xor(d: bytes, arg: tuple[int, bytes | None, int, int]) -> bytes:
    """Suricata's xor: bytes before `offset` are kept, the rest is XORed with the key,
    which is static or (Suricata 9) `extract <nbytes> <at>`, read from the buffer itself
    before decoding. A key or offset beyond the buffer leaves the buffer as it is."""
    offset, key, nbytes, at = arg
    if offset > len(d):
        return d
    if key is None:
        if at + nbytes > len(d):
            return d
        key = d[at:at + nbytes]
    n = len(key)
    return d[:offset] + bytes(c ^ key[i % n] for i, c in enumerate(d[offset:]))


def _parse_xor(text: str) -> tuple[int, bytes | None, int, int]:
    """`"hexkey"`, `offset N,"hexkey"`, `extract NBYTES AT`, `offset N,extract NBYTES AT`."""
    text = text.strip()
    offset = 0
    m = re.match(r"offset(?:\s+|$)", text)
    if m:
        num, comma, text = text[m.end():].partition(",")
        if not comma:
            raise RuleError("xor: 'offset' needs 'offset <N>,<key>'")
        if not num.strip().isdigit():
            raise RuleError(f"xor: invalid offset value '{num.strip()}'")
        offset = int(num)
        text = text.strip()
    m = re.match(r"extract(?:\s+|$)", text)
    if m:
        loc = re.fullmatch(r"(\d+)\s+(\d+)", text[m.end():].strip())
        if loc is None or not 0 < int(loc.group(1)) <= 255 or int(loc.group(2)) > 0xFFFF:
            raise RuleError(f"xor: 'extract' needs 'extract <nbytes 1-255> <offset>', got '{text}'")
        return offset, None, int(loc.group(1)), int(loc.group(2))
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    if not re.fullmatch(r"(?:[0-9a-fA-F]{2}){1,255}", text):
        raise RuleError(f"xor: key must be hex bytes, got '{text}'")
    return offset, bytes.fromhex(text), 0, 0


_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_VALUE = {c: i for i, c in enumerate(_B64)}


def _b64_decode_lenient(d: bytes, skip_invalid: bool) -> bytes:
    """RFC 4648 (stop at the first byte outside the alphabet) or RFC 2045 (skip such
    bytes) decoding; both stop at padding and decode a trailing partial quantum."""
    out = bytearray()
    acc = nbits = 0
    for c in d:
        v = _B64_VALUE.get(c)
        if v is None:
            if c == 0x3D or not skip_invalid:       # '=' ends the data in both modes
                break
            continue
        acc = (acc << 6) | v
        nbits += 6
        if nbits >= 8:
            nbits -= 8
            out.append((acc >> nbits) & 0xFF)
    return bytes(out)


def _from_base64(d: bytes, arg: tuple[int, int, str]) -> bytes:
    """Suricata's from_base64: decode `bytes` bytes from `offset` (an offset or length that
    does not fit leaves the buffer as it is; so does decoding to nothing)."""
    nbytes, offset, mode = arg
    if offset:
        if offset >= len(d):
            return d
        data = d[offset:]
    else:
        data = d
    if nbytes:
        if nbytes >= len(data):
            return d
        data = data[:nbytes]
    if not data:
        return d
    if mode == "strict":
        import binascii
        try:
            out = binascii.a2b_base64(data, strict_mode=True)
        except (binascii.Error, ValueError):
            out = b""
    else:
        out = _b64_decode_lenient(data, skip_invalid=mode == "rfc2045")
    return out if out else d


def _parse_from_base64(text: str | None) -> tuple[int, int, str]:
    nbytes = offset = 0
    mode = "rfc4648"
    seen: set[str] = set()
    for part in (text or "").split(","):
        words = part.split()
        if not words:
            if text and text.strip():
                raise RuleError(f"from_base64: empty option in '{text}'")
            continue
        if len(words) != 2 or words[0] in seen:
            raise RuleError(f"from_base64: bad option '{part.strip()}' (bytes N, offset N, mode M)")
        key, val = words
        seen.add(key)
        if key in ("bytes", "offset"):
            if not val.isdigit():
                raise UnsupportedError(f"from_base64: {key} '{val}' is not a number (byte variables not supported yet)",
                                       category="from_base64 with a byte variable not supported yet")
            if key == "bytes":
                nbytes = int(val)
            else:
                offset = int(val)
        elif key == "mode":
            if val.lower() not in ("strict", "rfc4648", "rfc2045"):
                raise RuleError(f"from_base64: unknown mode '{val}' (strict, rfc4648, rfc2045)")
            mode = val.lower()
        else:
            raise RuleError(f"from_base64: unknown option '{key}' (bytes, offset, mode)")
    return nbytes, offset, mode


def _pcrexform(d: bytes, rx: re.Pattern[bytes]) -> bytes:
    """Suricata's pcrexform: the buffer becomes the regex's first capture (no match: unchanged)."""
    m = rx.search(d)
    if m is None or m.group(1) is None:
        return d
    return m.group(1)


def _decompress(d: bytes, arg: tuple[int, int]) -> bytes:
    """gunzip / zlib_deflate: at most `max-size` decompressed bytes; a stream that does
    not decompress makes the buffer empty (Suricata truncates it to 0)."""
    import zlib
    wbits, max_size = arg
    if not d:
        return d
    try:
        return zlib.decompressobj(wbits).decompress(d, max_size)
    except zlib.error:
        return b""


def _parse_decompress(name: str, text: str | None) -> tuple[int, int]:
    max_size = 1024
    if text and text.strip():
        m = re.fullmatch(r"\s*max-size\s+(\d+)\s*([KMG]i?B)?\s*", text)
        if m is None:
            raise RuleError(f"{name}: expected 'max-size N', got '{text}'")
        unit = {"": 1, "KB": 1000, "KIB": 1024, "MB": 10**6, "MIB": 1 << 20, "GB": 10**9, "GIB": 1 << 30}
        max_size = int(m.group(1)) * unit[(m.group(2) or "").upper()]
        if not 0 < max_size <= 1 << 30:
            raise RuleError(f"{name}: max-size must be 1 .. 1GiB, got '{text.strip()}'")
    return (31 if name == "gunzip" else 15), max_size


def _parse_subslice(text: str | None) -> tuple[int, int | None, bool]:
    """`offset[, nbytes][, truncate]` (Suricata's subslice transform)."""
    parts = [p.strip() for p in (text or "").split(",")]
    truncate = len(parts) > 1 and parts[-1].lower() == "truncate"
    if truncate:
        parts = parts[:-1]
    if not 1 <= len(parts) <= 2 or not all(re.fullmatch(r"[+-]?\d+", p) for p in parts):
        raise RuleError(f"subslice: expected 'offset[, nbytes][, truncate]', got '{text}'")
    if len(parts) == 2 and int(parts[1]) == 0:
        raise RuleError("subslice: nbytes cannot be 0")      # as Suricata's parser
    return int(parts[0]), (int(parts[1]) if len(parts) == 2 else None), truncate


def _subslice(d: bytes, arg: tuple[int, int | None, bool]) -> bytes:
    """A slice of the buffer: a negative offset counts from the end, a negative nbytes ends
    that far from the end; out of range is an empty buffer, or clamped with truncate."""
    offset, nbytes, truncate = arg
    n = len(d)
    if abs(offset) > n and not truncate:
        return b""
    start = min(offset, n) if offset >= 0 else n + max(offset, -n)
    if nbytes is None:
        end = n
    elif nbytes < 0:
        end = n + nbytes
        if end < 0:
            if not truncate:
                return b""
            end = 0
    else:
        end = start + nbytes
        if end > n:
            if not truncate:
                return b""
            end = n
    if end < start:
        start, end = end, start
    return d[start:end]


def _psl(fn_name: str) -> Any:
    def transform(d: bytes, arg: Any) -> bytes:
        from netsentry.rules.keywords import psl
        return getattr(psl, fn_name)(d)
    return transform


TRANSFORMS: dict[str, Any] = {
    "dotprefix": _dotprefix,
    "domain": _psl("domain"),
    "tld": _psl("tld"),
    "subslice": _subslice,
    "strip_whitespace": _strip_ws,
    "compress_whitespace": _compress_ws,
    "to_lowercase": lambda d, a: d.lower(),
    "to_uppercase": lambda d, a: d.upper(),
    "url_decode": _url_decode,
    "strip_pseudo_headers": _strip_pseudo,
    "header_lowercase": _header_lowercase,
    "to_md5": lambda d, a: hashlib.md5(d).digest(),  # noqa: S324 - a rule transform, not security
    "to_sha1": lambda d, a: hashlib.sha1(d).digest(),  # noqa: S324
    "to_sha256": lambda d, a: hashlib.sha256(d).digest(),
    "xor": _xor,
    "from_base64": _from_base64,
    "pcrexform": _pcrexform,
    "gunzip": _decompress,
    "zlib_deflate": _decompress,
}

# transforms whose value is mandatory (the others take none, or an optional one)
_VALUE = {"xor": "required", "pcrexform": "required", "subslice": "required", "from_base64": "optional",
          "gunzip": "optional", "zlib_deflate": "optional"}


def apply_transforms(data: bytes, transforms: tuple[Any, ...]) -> bytes:
    for name, arg in transforms:
        data = TRANSFORMS[name](data, arg)
    return data


def _transform(name: str):
    def setup(b: RuleBuilder, arg: str | None) -> None:
        if b.buffer == "base64_data":
            raise RuleError(f"transform '{name}' cannot apply to base64_data (Suricata: no transforms there)")
        if b.buffer == "pkt_data":
            # Suricata refuses it too (SCDetectSignatureAddTransform): the payload is no
            # sticky buffer, so there is nothing for the transform to apply to
            raise RuleError(f"transform '{name}' must directly follow a sticky buffer "
                            "(the packet payload / pkt_data is none)")
        targ: Any = None
        if name == "xor":
            targ = _parse_xor(arg or "")
        elif name == "from_base64":
            targ = _parse_from_base64(arg)
        elif name in ("gunzip", "zlib_deflate"):
            targ = _parse_decompress(name, arg)
        elif name == "subslice":
            targ = _parse_subslice(arg)
        elif name in ("domain", "tld"):
            from netsentry.rules.keywords import psl
            psl.load(name)
            if arg:
                raise RuleError(f"'{name}' takes no value, got '{arg}'")
        elif name == "pcrexform":
            from netsentry.rules.pcre import compile_pcre
            text = (arg or "").strip()
            if len(text) >= 2 and text[0] == text[-1] == '"':
                text = text[1:-1]
            if not text:
                raise RuleError("pcrexform: needs a regular expression")
            targ = compile_pcre(text, "")
            if targ.groups < 1:
                raise RuleError(f"pcrexform: '{text}' has no capture group (the buffer becomes the first one)")
        elif arg:
            raise RuleError(f"'{name}' takes no value, got '{arg}'")
        b.add_transform((name, targ))
    return setup


for _name in TRANSFORMS:
    keyword(_name, value=_VALUE.get(_name, "optional"),
            help=f"{_name}; transform of the sticky buffer")(_transform(_name))

__all__ = ["TRANSFORMS", "apply_transforms", "tx_check", "Content", "PROTOCOLS"]
