"""The app-layer registry: protocols (probe + parser) and the named buffers rules inspect.

As Suricata's app-layer registration (app-layer-parser.c, app-layer-detect-proto.c)
and its inspection-buffer registration (DetectAppLayerInspectEngineRegister), each
protocol module registers here, once, at import:

- a `Protocol`: its name (as EVE's `app_proto` and the rule header write it), the
  IP protocols it runs over, a probe that recognises it from the first bytes of
  either direction (not from the port), and a parser factory (one parser per flow);
- its `Buffer`s: name (`http.uri`), protocol, the direction of the transaction the
  buffer belongs to, and a getter returning the buffer of one transaction.

The detection engine knows buffer names and getters only; it never knows a protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from netsentry.config import ConfigError, get

# Buffer.direction: which side of a transaction carries it.
TO_SERVER, TO_CLIENT, BOTH = 0, 1, 2

# A probe looks at the first bytes of one direction: True (this protocol), False
# (certainly not), None (too few bytes to say).
Probe = Callable[[bytes, bool], "bool | None"]


@dataclass(frozen=True, slots=True)
class Protocol:
    name: str
    ipprotos: tuple[int, ...]
    probe: Probe
    parser: Callable[[], Any]            # one per flow: .parse(data, to_server, pkt) -> None
    ports: tuple[int, ...] = ()          # probing-parser ports: for UDP a port hit is enough
    # the IP protocols on which a port hit decides a probe that cannot say yet (None):
    # Suricata's probing parsers by port (DNS over TCP on 53: a message longer than the
    # first segment has only its header to go by)
    port_decides: tuple[int, ...] = (17,)
    # a probe of its own for TCP streams (DNS: the length prefix may announce a message
    # longer than what is here), else `probe` for both
    tcp_probe: Probe | None = None
    # the protocol's settings from the whole configuration (its `app-layer.protocols.NAME`
    # keys, the eve-log options its records follow), given to `parser(settings)`; None: the
    # parser takes no settings (AppLayer.settings)
    configure: Callable[[Any], Any] | None = None
    # the rules are known: `rules_known(settings, buffer names the rules read)` settles what
    # the settings leave to them (SMTP's `body-md5: auto`, SSH's hassh turned on by a rule
    # on a hassh buffer); AppLayer.set_rule_buffers
    rules_known: Callable[[Any, frozenset[str]], None] | None = None
    # UDP: `answer_first(data)` says a flow's first datagram is the server's answer, and the
    # flow runs the other way round (Suricata's probing parsers' rdir; LLMNR)
    answer_first: Callable[[bytes], bool] | None = None
    # probed only on its detection ports (Suricata's probing parsers registered by port with
    # no pattern: MQTT, NTP, TFTP, krb5, SNMP...): a probe that says yes to most binary
    # data must not claim flows elsewhere, and costs other ports nothing
    ports_only: bool = False


@dataclass(frozen=True, slots=True)
class Buffer:
    """A named inspection buffer. `getter(tx, to_server)` returns bytes, None (not
    there yet / absent), or a list of bytes for a multi-buffer (`http.request_header`)."""

    name: str
    proto: str
    direction: int
    getter: Callable[[Any, bool], Any]
    multi: bool = False


class _Absent(bytes):
    """The type of ABSENT."""


# What the getter of an `absent: or_else` buffer (rules/keywords/applayer.py) returns when
# the buffer is certainly not there (its side of the transaction is complete): detection
# then counts that buffer's checks as matched (Suricata 8's `absent`)
ABSENT = _Absent()
ABSENT_OR = ":or_absent"       # the suffix of those buffers' names (a DERIVERS suffix)

class _Buffers(dict):
    """The buffer table. A buffer derived from another by a rule keyword (`name:to_client`,
    `name:or_absent`) is registered when a rule first asks for it; a ruleset loaded from
    the rule cache (rules/cache.py) parsed no rule, so a derived name is made here on its
    first lookup by the deriver registered for its suffix (`DERIVERS`)."""

    def __missing__(self, name: str) -> Buffer:
        base, sep, suffix = name.rpartition(":")
        derive = DERIVERS.get(suffix) if sep else None
        if derive is None or base not in self:
            raise KeyError(name)
        derive(self[base])
        return dict.__getitem__(self, name)


PROTOCOLS: dict[str, Protocol] = {}
# Protocols whose parser never asks for raw stream inspection as its messages complete
# (Suricata's SMB): their flows' bytes reach stream rules at chunk size, close or end, even
# where nothing here parses them (stream/tcp.py `_app_trigger`)
NO_RAW_TRIGGER: set[str] = set()
BUFFERS: dict[str, Buffer] = _Buffers()
# suffix -> fn(base Buffer) that registers the derived buffer `base.name + ":" + suffix`
DERIVERS: dict[str, Callable[[Buffer], None]] = {}
# rule header / app-layer-protocol names that mean another registered name
ALIASES = {"http1": "http", "ssl": "tls"}


class ParserError(Exception):
    """Raised by a parser that gives up on a direction because its bytes are not the
    protocol any more (Suricata's APP_LAYER_ERROR). The parser has already put itself
    in the state it continues from; the app layer counts the error
    (``app_layer.error.<proto>.parser``) and calls `AppLayer.on_error(flow, pkt)`, the
    ``app-layer.error-policy`` (exception_policy.py). A raise costs nothing until it
    happens, where a returned status would be a test per parse call."""


class ProtocolChange(Exception):
    """Raised by a parser whose flow now carries another protocol (SMTP's STARTTLS accepted:
    TLS follows; Suricata's AppLayerRequestProtocolChange), once its own state is final.
    The app layer detects the flow's protocol again on the next bytes (`expect`: the one
    announced; another one found raises applayer_unexpected_protocol) and keeps the old
    parser's transactions until then. Raised, not returned: no cost per parse call.

    `parser`: a change to a protocol that is certain (HTTP's 101 to h2c), whose new parser
    the old one made (it carries the old transactions on): the app layer puts it in place
    at once, with no detection, so the bytes already waiting go to it."""

    def __init__(self, expect: str, parser: Any = None) -> None:
        super().__init__(expect)
        self.expect = expect
        self.parser = parser


class Incomplete(Exception):
    """Raised by a parser given bytes that only add to a message whose header said how
    long it is, before the message is all in (Suricata's parsers return "incomplete, N
    bytes needed", and the parser is not called again until they are there): the bytes
    are kept, but the packet is no app-layer update of the flow (firewall hooks and
    transaction rules do not look at it). Raised only then: no cost per parse call."""


class Encrypted(Exception):
    """Raised by a parser at the end of the bytes in which its session turned encrypted
    (TLS: the first application-data record; SSH: both sides' NEWKEYS), when its
    ``app-layer.protocols.NAME.encryption-handling`` is not ``full``. As Suricata's
    APP_LAYER_PARSER_NO_INSPECTION(_PAYLOAD): from the flow's next packet on, packet and
    stream payload are not inspected (``track-only``, the default: transactions, their
    buffers and events still are), or the flow is bypassed (``bypass``). There is no point
    in pattern matching bytes known to be encrypted. Raised once, after the parser has
    read all it was given: no cost per parse call."""

    def __init__(self, bypass: bool) -> None:
        super().__init__("bypass" if bypass else "track-only")
        self.bypass = bypass


ENCRYPTION_HANDLING = ("track-only", "bypass", "full")


def encryption_handling(config: Any, proto: str) -> str:
    """``app-layer.protocols.PROTO.encryption-handling`` (Suricata's names; its deprecated
    ``default`` is ``track-only``, as is no setting). An unknown value is a configuration
    error with the key path. (Suricata's older ``tls.no-reassemble`` is translated by
    suricata_config.py.)"""
    key = f"app-layer.protocols.{proto}.encryption-handling"
    value = str(get(config, key, "track-only")).lower()
    if value == "default":
        return "track-only"
    if value not in ENCRYPTION_HANDLING:
        raise ConfigError(f"{value!r} is not one of {', '.join(ENCRYPTION_HANDLING)}", key)
    return value


# A protocol's named transaction states (Suricata's GetStateIdByName, `app-layer-state`):
# proto -> (to-server state names, to-client state names, progress(tx, to_server) -> the
# index of the state that side of the transaction reached)
STATES: dict[str, tuple[tuple[str, ...], tuple[str, ...], Callable[[Any, bool], int]]] = {}
# Suricata's generic names, for a protocol whose sides are either in progress or complete
GENERIC_STATES = (("request_started", "request_complete"), ("response_started", "response_complete"))

# Expected flows (Suricata's AppLayerExpectationCreate): a parser that announces another
# connection (FTP's PORT/PASV before RETR) registers it here by (one end's address, the other
# end's address, the port the connection goes to). The first TCP flow between those two
# hosts (either way round) to that port is that protocol without probing; `init(parser,
# flipped)` tells its new parser what it carries (flipped: the flow's client is the end
# registered second). Bounded: the oldest goes first.
EXPECTATIONS: dict[tuple[bytes, bytes, int], tuple[str, Callable[[Any, bool], None]]] = {}
EXPECTATIONS_MAX = 4096
# protocol -> the protocols whose parsers make its flows (ftp-data needs FTP's commands parsed)
FEEDS: dict[str, tuple[str, ...]] = {"ftp-data": ("ftp",),
                                     # `alert http` rules and `http` records read HTTP/2 too; an
                                     # HTTP/2 flow may start as HTTP/1 (h2c upgrade)
                                     "http": ("http2",), "http2": ("http",),
                                     # DNS over HTTP/2 (doh2) comes out of HTTP/2 streams
                                     "dns": ("http2",), "doh2": ("http2", "http"),
                                     # WebSocket comes out of an HTTP/1 upgrade
                                     "websocket": ("http",)}
# protocols whose parser may hand its flow to another one (ProtocolChange: SMTP's STARTTLS):
# parsed whenever any protocol's transactions are read, since any may follow
CHANGERS: set[str] = set()
# protocol -> the rule protocols whose transaction rules also inspect its transactions
# (Suricata's AppProtoEquals: an `alert http` rule sees HTTP/2); such a rule reads buffer
# NAME of the transaction's protocol as its variant `NAME@proto`, none when there is none
# (detect/txdetect.py)
INSPECTED_AS: dict[str, tuple[str, ...]] = {"http2": ("http",), "doh2": ("http2", "http", "dns")}


def expect(a: bytes, b: bytes, port: int, proto: str, init: Callable[[Any, bool], None]) -> None:
    if len(EXPECTATIONS) >= EXPECTATIONS_MAX:
        EXPECTATIONS.pop(next(iter(EXPECTATIONS)))
    EXPECTATIONS[(a, b, port)] = (proto, init)


def take_expectation(client: bytes, server: bytes, port: int) -> tuple[str, Callable[[Any, bool], None], bool] | None:
    """The expectation a new flow fulfils (it is used up), with whether it runs the other
    way round from how it was registered; None when there is none."""
    hit = EXPECTATIONS.pop((client, server, port), None)
    if hit is not None:
        return hit[0], hit[1], False
    hit = EXPECTATIONS.pop((server, client, port), None)
    if hit is not None:
        return hit[0], hit[1], True
    return None


def register_protocol(proto: Protocol) -> None:
    PROTOCOLS[proto.name] = proto


def register_states(proto: str, to_server: tuple[str, ...], to_client: tuple[str, ...],
                    progress: Callable[[Any, bool], int]) -> None:
    STATES[proto] = (to_server, to_client, progress)


def register_buffer(name: str, proto: str, direction: int, getter: Callable[[Any, bool], Any],
                    *aliases: str, multi: bool = False) -> None:
    for n in (name, *aliases):
        BUFFERS[n] = Buffer(name, proto, direction, getter, multi)


def load_protocols() -> None:
    """Import every protocol module so its registrations run (once)."""
    from netsentry.applayer import dns, http, ssh, tls  # noqa: F401
    # after the others: in the probing order of ports none of them names, the common
    # protocols' probes come first (ftp, smtp: bench-1m's flows are HTTP, TLS, DNS)
    from netsentry.applayer import ftp, smb, smtp  # noqa: F401
    from netsentry.applayer import sip  # noqa: F401
    from netsentry.applayer import llmnr  # noqa: F401
    from netsentry.applayer import template  # noqa: F401
    from netsentry.applayer import http2  # noqa: F401
    from netsentry.applayer import pgsql  # noqa: F401
    from netsentry.applayer import ldap  # noqa: F401
    from netsentry.applayer import enip  # noqa: F401
    from netsentry.applayer import modbus  # noqa: F401
    from netsentry.applayer import dnp3  # noqa: F401
    from netsentry.applayer import ike  # noqa: F401
    from netsentry.applayer import dhcp, krb5, mqtt, ntp, rfb, snmp, telnet, tftp, websocket  # noqa: F401
    from netsentry.applayer import nfs, quic  # noqa: F401
