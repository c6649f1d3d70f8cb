"""Lua in rules (Suricata 8, detect-lua.c, detect-transform-luaxform.c, util-lua-*.c):
the `lua` keyword (and its old name `luajit`) and the `luaxform` transform, on the
`lupa` library's Lua 5.4.

``lua:[!]<script>;`` loads the script (beside the rule file, else in
`default-rule-path`, else as given), runs it once at load time to check it
(``init(args)`` must exist and return a table; its keys ``packet``/``payload``
ask for a packet / a non-empty payload, ``buffer`` for the sticky buffer as
``args["buffer"]``; the old protocol keys ``http.*``, ``dns.*``... are refused as
in Suricata 8: use a sticky buffer or rule hook instead), then keeps one Lua
state per process whose ``match(args)`` decides: the number 1 matches, anything
else does not (``!`` inverts it, including a script error). With no sticky buffer
the script runs per packet after the payload keywords (Suricata's packet match
list); after a sticky buffer it runs as part of that buffer's inspection, on a
non-empty buffer.

``luaxform:<script>[, arg]...;`` makes the buffer ``transform(input, args)``'s
first result cut to its second (a script returning anything but two values, nil,
or a count of 0 leaves the buffer as it was); the arguments are the rule's
comma-separated texts as written (Suricata does not strip them).

The sandbox (``security.lua``): only Suricata's allow-list of the base, table,
string, math and utf8 libraries (other functions of those libraries raise
"Blocked Lua function called: NAME"; io, os, debug, package, coroutine are
absent), ``require`` serves only the ``suricata.*`` libraries, an instruction
limit (``max-instructions``, default 500000, counted in steps of 100 as
Suricata's hook does) and a memory limit (``max-bytes``, default 500000, the
script's own allocations). ``allow-restricted-functions: true`` opens the whole
standard library instead; ``allow-rules: false`` refuses Lua rules (they are on by
default in Suricata 8). A script failing at run time (error, limit) counts in
``detect.lua.*`` stats and is logged once per kind, never stops the sensor.

Libraries (rules/keywords/lua_libs.lua): suricata.packet, flow, flowvar, flowint,
log, base64, hashlib, dataset, config, util, http, dns, tls, ssh, ntp (transaction
accessors read our buffers), bytevar is not provided.
"""

from __future__ import annotations

import base64 as _b64
import binascii
import hashlib
import logging
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from netsentry.rules.errors import RuleError
from netsentry.rules.inspect import Det, Item
from netsentry.rules.registry import RuleBuilder, keyword

log = logging.getLogger("netsentry.lua")

DEFAULT_MAX_BYTES = 500000
DEFAULT_MAX_INSTRUCTIONS = 500000
HOOK_STEP = 100          # Suricata counts instructions per hook call of 100
MAX_FLOWVARS = 15        # DETECT_LUA_MAX_FLOWVARS / FLOWINTS
MAX_FLOWINTS = 15

# stats (Suricata's detect.lua.* counters)
STATS: dict[str, int] = {"errors": 0, "blocked_function_errors": 0, "instruction_limit_errors": 0,
                         "memory_limit_errors": 0}

_BASE_ALLOWED = ("assert", "ipairs", "next", "pairs", "print", "rawequal", "rawlen", "select", "tonumber",
                 "tostring", "type", "warn", "rawget", "rawset", "error")
_ALLOWED = {
    "table": ("concat", "insert", "move", "pack", "remove", "sort", "unpack"),
    "string": ("byte", "char", "dump", "find", "format", "gmatch", "gsub", "len", "lower", "match", "pack",
               "packsize", "rep", "reverse", "sub", "unpack", "upper"),
    "math": ("abs", "acos", "asin", "atan", "atan2", "ceil", "cos", "cosh", "deg", "exp", "floor", "fmod",
             "frexp", "ldexp", "log", "log10", "max", "min", "modf", "pow", "rad", "random", "randomseed",
             "sin", "sinh", "sqrt", "tan", "tanh", "tointeger", "type", "ult"),
    "utf8": ("offset", "len", "codes", "char", "codepoint"),
}

_LIBS_FILE = Path(__file__).with_name("lua_libs.lua")


def _lupa() -> Any:
    try:
        import lupa.lua54 as lua54
    except ImportError:
        raise RuleError("Lua rules need the 'lupa' package (pip install lupa), which is not installed") from None
    return lua54


def _truthy(v: Any) -> bool:
    return v is True or str(v).strip().lower() in ("yes", "true", "on", "1")


class Settings:
    """`security.lua` as read at rule load."""

    __slots__ = ("allow_rules", "max_bytes", "max_instructions", "restricted", "rule_path")

    def __init__(self, config: Any) -> None:
        from netsentry.config import get
        cfg = config or {}
        allow = get(cfg, "security.lua.allow-rules", None)
        self.allow_rules = True if allow is None else _truthy(allow)
        self.max_bytes = int(get(cfg, "security.lua.max-bytes", None) or DEFAULT_MAX_BYTES)
        self.max_instructions = int(get(cfg, "security.lua.max-instructions", None) or DEFAULT_MAX_INSTRUCTIONS)
        self.restricted = _truthy(get(cfg, "security.lua.allow-restricted-functions", False) or False)
        self.rule_path = str(get(cfg, "default-rule-path", "") or "")

    def key(self) -> tuple[Any, ...]:
        return (self.max_bytes, self.max_instructions, self.restricted)


def _settings(b: RuleBuilder) -> Settings:
    config = b.env.state.get("config") if b.env is not None else None
    return Settings(config)


def script_path(b: RuleBuilder, name: str, rule_path: str) -> str:
    """Suricata's DetectLoadCompleteSigPath: beside the rule file, then default-rule-path."""
    if os.path.isabs(name):
        return name
    rule_file = b.env.state.get("rule_file") if b.env is not None else None
    candidates = []
    if rule_file:
        candidates.append(os.path.join(os.path.dirname(rule_file), name))
    if rule_path:
        candidates.append(os.path.join(rule_path, name))
    for c in candidates:
        if os.path.isfile(c):
            return c
    return candidates[-1] if candidates else name


class LuaScriptError(Exception):
    """A script failed at load (`couldn't load file`, `no init function`...)."""


class Context:
    """What the libraries read during one call: the packet, flow, transaction, buffer."""

    __slots__ = ("pkt", "flow", "tx", "to_server")

    def __init__(self) -> None:
        self.pkt: Any = None
        self.flow: Any = None
        self.tx: Any = None
        self.to_server = True


class Sandbox:
    """One Lua state running one script, with the limits and the libraries."""

    def __init__(self, path: str, settings_key: tuple[Any, ...], registered: dict[str, set[str]] | None = None
                 ) -> None:
        max_bytes, max_instructions, restricted = settings_key
        lua54 = _lupa()
        self.path = path
        self.ctx = Context()
        self.sig: Any = None          # the rule (suricata.rule), set by LuaScript
        _ACTIVE[0] = True
        self.registered = registered if registered is not None else {"flowvar": set(), "flowint": set()}
        self.blocked = False
        rt = lua54.LuaRuntime(encoding=None, register_eval=False, register_builtins=False,
                              unpack_returned_tuples=True, max_memory=1 << 40,
                              attribute_filter=_deny_attributes)
        self.rt = rt
        self.LuaError = lua54.LuaError
        self.LuaMemoryError = lua54.LuaMemoryError
        g = rt.globals()
        g.python = None
        try:
            setup = rt.execute(_LIBS_FILE.read_bytes())
            state = setup(_Bridge(self).table(rt), max_instructions, HOOK_STEP, restricted,
                          rt.table_from([n.encode() for n in _BASE_ALLOWED]),
                          rt.table_from({lib.encode(): rt.table_from([n.encode() for n in names])
                                         for lib, names in _ALLOWED.items()}))
        except lua54.LuaError as e:      # pragma: no cover - our own glue failing
            raise LuaScriptError(f"sandbox setup failed: {_text(e)}") from None
        self.reset_counter = state[b"reset"]
        self.limit_hit = state[b"limit_hit"]
        self.blocked_hit = state[b"blocked_hit"]
        self.call = state[b"call"]
        base = rt.get_memory_used()
        self.max_bytes = max_bytes
        rt.set_max_memory(base + max_bytes if max_bytes > 0 else 0)
        try:
            with open(path, "rb") as fh:
                source = fh.read()
        except OSError as e:
            raise LuaScriptError(f"couldn't load file: cannot open {path}: {e.strerror or e}") from None
        try:
            chunk = state[b"load"](source, b"@" + path.encode())
        except self.LuaError as e:
            raise LuaScriptError(f"couldn't load file: {_text(e)}") from None
        ok, err = self._protected(chunk)
        if not ok:
            raise LuaScriptError(f"couldn't prime file: {err}")
        self.g = g

    def _protected(self, fn: Any, *args: Any) -> tuple[bool, Any]:
        """Call `fn` under the limits: (True, first result) or (False, error text)."""
        self.reset_counter()
        try:
            res = self.call(fn, *args)
        except self.LuaMemoryError:
            return False, "memory limit exceeded"
        except self.LuaError as e:
            return False, _text(e)
        if isinstance(res, tuple):
            if not res[0]:
                err = _text(res[1] if len(res) > 1 else "error")
                return False, "memory limit exceeded" if err == "not enough memory" else err
            return True, res[1:]
        return bool(res), ()

    def function(self, name: str) -> Any:
        fn = self.g[name.encode()]
        return fn if self.rt.eval("type")(fn) == b"function" else None

    def thread_init(self) -> None:
        fn = self.function("thread_init")
        if fn is not None:
            ok, err = self._protected(fn)
            if not ok:
                raise LuaScriptError(f"couldn't run script 'thread_init' function: {err}")

    def run(self, fn: Any, *args: Any) -> tuple[bool, tuple[Any, ...]]:
        """Call `fn` at detection time: errors are counted and logged once per kind."""
        ok, res = self._protected(fn, *args)
        if ok:
            return True, res
        kind = "error"
        if self.blocked_hit():
            kind = "blocked_function_errors"
        elif self.limit_hit():
            kind = "instruction_limit_errors"
        elif res == "memory limit exceeded":
            kind = "memory_limit_errors"
        if kind != "error":
            STATS[kind] += 1
        STATS["errors"] += 1
        key = (self.path, kind)
        if key not in _LOGGED:
            _LOGGED.add(key)
            log.warning("Lua script failed to run successfully: %s", res)
        return False, ()


_LOGGED: set[tuple[str, str]] = set()
_B64_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def _deny_attributes(obj: Any, name: Any, is_setting: bool) -> Any:
    raise AttributeError("Python attributes are not accessible from Lua")


def _text(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, BaseException) and v.args:
        return _text(v.args[0])
    return str(v)


def _b(v: Any) -> bytes:
    if v is None:
        return b""
    if isinstance(v, bytes):
        return v
    if isinstance(v, (bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v).encode()


def _addr(a: bytes) -> bytes:
    import ipaddress
    if len(a) == 4:
        return str(ipaddress.IPv4Address(a)).encode()
    if len(a) == 16:
        return str(ipaddress.IPv6Address(a)).encode()
    return b""


def _iso(ts: float) -> bytes:
    d = datetime.fromtimestamp(ts, timezone.utc).astimezone()
    return d.strftime("%Y-%m-%dT%H:%M:%S.%f%z").encode()


def _legacy(ts: float) -> bytes:
    d = datetime.fromtimestamp(ts, timezone.utc).astimezone()
    return d.strftime("%m/%d/%Y-%H:%M:%S.%f").encode()


class _Bridge:
    """The Python side of the suricata.* libraries: plain functions of plain values
    (bytes, numbers, None, tuples), reading the sandbox's current Context."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb

    def table(self, rt: Any) -> Any:
        names = [n for n in dir(self) if n.startswith("f_")]
        return rt.table_from({n[2:].encode(): getattr(self, n) for n in names})

    # --- packet ---------------------------------------------------------------------
    def _pkt(self) -> Any:
        return self.sb.ctx.pkt

    def f_has_packet(self) -> bool:
        return self.sb.ctx.pkt is not None

    def f_pkt_payload(self) -> bytes:
        p = self._pkt()
        return bytes(p.payload) if p is not None and p.payload_len else b""

    def f_pkt_packet(self) -> bytes:
        p = self._pkt()
        return bytes(p.data) if p is not None else b""

    def f_pkt_ts(self) -> tuple[int, int]:
        p = self._pkt()
        ts = p.ts if p is not None else 0.0
        sec = int(ts)
        return sec, int(round((ts - sec) * 1e6))

    def f_pkt_pcap_cnt(self) -> int:
        p = self._pkt()
        return p.pcap_cnt if p is not None else 0

    def f_pkt_timestring(self, iso: bool) -> bytes:
        p = self._pkt()
        return (_iso if iso else _legacy)(p.ts if p is not None else 0.0)

    def f_pkt_tuple(self) -> tuple[Any, ...]:
        p = self._pkt()
        if p is None or not p.ip_version:
            return (None, "packet has no ip")
        head = (p.ip_version, _addr(p.src), _addr(p.dst), p.proto)
        if p.proto in (6, 17, 132):
            return (*head, p.sp, p.dp)
        if p.proto in (1, 58):
            return (*head, p.icmp_type, p.icmp_code)
        return head

    def f_pkt_port(self, dst: bool) -> tuple[Any, ...]:
        p = self._pkt()
        if p is None or p.proto not in (6, 17, 132):
            return (None, b"dp only available for tcp, udp and sctp" if dst
                    else b"sp only available for tcp, udp and sctp")
        return (p.dp if dst else p.sp,)

    # --- flow -----------------------------------------------------------------------
    def f_has_flow(self) -> bool:
        return self.sb.ctx.flow is not None

    def f_flow_tuple(self) -> tuple[Any, ...]:
        f = self.sb.ctx.flow
        if f is None:
            return (None, b"no flow")
        ver = 4 if len(f.client) == 4 else 6
        return (ver, _addr(f.client), _addr(f.server), f.proto, f.client_port, f.server_port)

    def f_flow_app_proto(self) -> tuple[Any, ...]:
        f = self.sb.ctx.flow
        proto = _b(getattr(f, "app_proto", None) or "unknown") if f is not None else b"unknown"
        return (proto, proto, proto, proto, proto)

    def f_flow_timestamps(self) -> tuple[int, int, int, int]:
        f = self.sb.ctx.flow
        start = float(getattr(f, "start", 0.0) or getattr(f, "first_ts", 0.0) or 0.0) if f is not None else 0.0
        last = float(getattr(f, "last_ts", 0.0) or start) if f is not None else 0.0
        return (int(start), int(last), int((start % 1) * 1e6), int((last % 1) * 1e6))

    def f_flow_timestring(self, iso: bool) -> bytes:
        f = self.sb.ctx.flow
        start = float(getattr(f, "start", 0.0) or getattr(f, "first_ts", 0.0) or 0.0) if f is not None else 0.0
        return (_iso if iso else _legacy)(start)

    def f_flow_has_alerts(self) -> bool:
        f = self.sb.ctx.flow
        return bool(getattr(f, "alerted", False)) if f is not None else False

    def f_flow_id(self) -> int:
        f = self.sb.ctx.flow
        return int(getattr(f, "flow_id", 0) or 0) if f is not None else 0

    def f_flow_stats(self) -> tuple[int, int, int, int]:
        f = self.sb.ctx.flow
        if f is None:
            return (0, 0, 0, 0)
        g = lambda n: int(getattr(f, n, 0) or 0)      # noqa: E731
        return (g("pkts_toserver"), g("bytes_toserver"), g("pkts_toclient"), g("bytes_toclient"))

    # --- flowvar / flowint --------------------------------------------------------------
    def f_flowvar_get(self, name: bytes) -> Any:
        f = self.sb.ctx.flow
        if f is None or f.flowbits is None:
            return None
        v = f.flowbits.get(("var", _text(name)))
        return None if v is None else _b(v)

    def f_flowvar_set(self, name: bytes, value: Any, length: Any) -> None:
        f = self.sb.ctx.flow
        if f is None:
            return
        data = _b(value)
        if length is not None:
            data = data[:max(0, int(length))]
        if f.flowbits is None:
            f.flowbits = {}
        f.flowbits[("var", _text(name))] = data

    def f_flowint_get(self, name: bytes) -> Any:
        f = self.sb.ctx.flow
        if f is None or f.flowints is None:
            return None
        return f.flowints.get(_text(name))

    def f_flowint_set(self, name: bytes, value: Any) -> Any:
        f = self.sb.ctx.flow
        if f is None:
            return None
        if f.flowints is None:
            f.flowints = {}
        v = int(value) & 0xFFFFFFFF
        f.flowints[_text(name)] = v
        return v

    def f_register(self, kind: bytes, name: bytes) -> Any:
        names = self.sb.registered.setdefault(_text(kind), set())
        limit = MAX_FLOWVARS if kind == b"flowvar" else MAX_FLOWINTS
        if _text(name) not in names and len(names) >= limit:
            return (None, f"too many {_text(kind)}s registered".encode())
        names.add(_text(name))
        return (True,)

    # --- log ------------------------------------------------------------------------
    def f_log(self, level: bytes, msg: Any) -> None:
        text = _text(msg)
        lvl = {b"error": logging.ERROR, b"warning": logging.WARNING, b"notice": logging.INFO,
               b"info": logging.INFO}.get(level, logging.DEBUG)
        log.log(lvl, "%s", text)

    def f_print(self, text: bytes) -> None:
        try:
            sys.stdout.write(_text(text) + "\n")
        except (OSError, ValueError):
            pass

    # --- base64 / hashlib ----------------------------------------------------------------
    def f_b64(self, op: bytes, data: Any) -> Any:
        d = _b(data)
        try:
            if op == b"encode":
                return _b64.b64encode(d)
            if op == b"encode_nopad":
                return _b64.b64encode(d).rstrip(b"=")
            if op == b"decode":
                return _b64.b64decode(d, validate=True)
            if op == b"decode_nopad":
                if d.endswith(b"="):
                    return None
                return _b64.b64decode(d + b"=" * (-len(d) % 4), validate=True)
            if op == b"decode_padopt":
                d = d.rstrip(b"=")
                return _b64.b64decode(d + b"=" * (-len(d) % 4), validate=True)
            if op == b"decode_rfc4648":
                # strict: the valid characters before the first other one, a partial
                # last quantum decoded as far as it goes ("d3 d3" -> "w")
                n = 0
                while n < len(d) and d[n] in _B64_CHARS:
                    n += 1
                d = d[:n]
                d = d[:len(d) - (len(d) % 4 == 1)]
                return _b64.b64decode(d + b"=" * (-len(d) % 4))
            if op == b"decode_rfc2045":
                d = bytes(c for c in d if c not in b" \t\r\n")
                return _b64.b64decode(d + b"=" * (-len(d.rstrip(b"=")) % 4 if not d.endswith(b"=") else 0))
        except (binascii.Error, ValueError):
            return None
        return None

    def f_hash(self, algo: bytes, data: Any, hexed: bool) -> bytes:
        h = hashlib.new(_text(algo), _b(data))
        return h.hexdigest().encode() if hexed else h.digest()

    def f_hasher_new(self, algo: bytes) -> Any:
        return hashlib.new(_text(algo))

    def f_hasher_update(self, h: Any, data: Any) -> None:
        h.update(_b(data))

    def f_hasher_final(self, h: Any, hexed: bool) -> bytes:
        return h.hexdigest().encode() if hexed else h.digest()

    # --- dataset ------------------------------------------------------------------------
    def f_dataset_find(self, name: bytes) -> Any:
        from netsentry.rules.keywords import datasets
        if datasets.SETS.get(_text(name)) is None:
            return (None, b"dataset not found")
        return (True,)

    def f_dataset_op(self, name: bytes, op: bytes, data: Any, length: Any) -> Any:
        from netsentry.rules.keywords import datasets
        ds = datasets.SETS.get(_text(name))
        if ds is None:
            return (-1, b"dataset not found")
        d = _b(data)
        if length is not None:
            d = d[:max(0, int(length))]
        key = ds.key(d)
        if key is None:
            return (-1, b"invalid data for the dataset type")
        if op == b"add":
            return (1 if ds.add(key) else 0,)
        return (1 if key in ds.values else 0,)

    # --- config / util ------------------------------------------------------------------
    def f_thread_info(self) -> tuple[int, bytes, bytes]:
        """Suricata names its detection threads W#01...; ours is the process (worker)."""
        return (os.getpid(), b"W#01", b"worker")

    def f_log_path(self) -> bytes:
        from netsentry.rules.keywords import datasets
        return _b(datasets._CONFIG.get("data_dir") or os.getcwd())

    # --- transactions -------------------------------------------------------------------
    def f_tx(self, proto: bytes) -> Any:
        """Whether the current (or, for a packet rule, the flow's latest) transaction is `proto`."""
        tx = self._tx(_text(proto))
        return tx is not None

    def _tx(self, proto: str) -> Any:
        ctx = self.sb.ctx
        tx = ctx.tx
        if tx is not None and getattr(tx, "proto", None) == proto:
            return tx
        f = ctx.flow
        app = getattr(f, "app", None) if f is not None else None
        parser = getattr(app, "parser", None) if app is not None else None
        txs = getattr(parser, "txs", None) if parser is not None else None
        if not txs:
            return None
        for t in reversed(txs):
            if getattr(t, "proto", None) == proto:
                return t
        return None

    def f_tx_buffer(self, proto: bytes, name: bytes, to_server: Any) -> Any:
        tx = self._tx(_text(proto))
        if tx is None:
            return None
        from netsentry.detect.txdetect import get_buffer
        try:
            v = get_buffer(tx, _text(name), (), bool(to_server) if to_server is not None
                           else self.sb.ctx.to_server)
        except (KeyError, AttributeError):
            return None
        if v is None:
            return None
        if isinstance(v, list):
            return self.sb.rt.table_from([bytes(x) for x in v])
        return bytes(v)

    def f_rule(self, what: bytes) -> Any:
        """suricata.rule: the rule running the script (util-lua-sig.c)."""
        sig = self.sb.sig
        if sig is None:
            return None
        if what == b"action":
            return _b(sig.action)
        if what == b"priority":
            return sig.severity
        if what == b"msg":
            return _b(sig.msg) if sig.msg else None
        if what == b"class_description":
            return _b(sig.class_description) if sig.class_description else None
        if what in (b"sid", b"rev", b"gid"):
            return getattr(sig, _text(what))
        return None

    def f_dns(self, what: bytes) -> Any:
        """suricata.dns (rust/src/dns/lua.rs): the transaction's message."""
        tx = self._tx("dns")
        m = getattr(tx, "message", None) if tx is not None else None
        if m is None:
            return None
        from netsentry.applayer.dns import RCODES, RRTYPES
        rt = self.sb.rt
        if what == b"txid":
            return m.id
        if what == b"rcode":
            return m.flags & 0xF
        if what == b"rcode_string":
            return _b(RCODES.get(m.flags & 0xF, str(m.flags & 0xF)))
        if what == b"recursion_desired":
            return bool(m.flags & 0x0100)
        if what == b"rrname":
            return bytes(m.queries[0][0]) if m.queries else None
        if what == b"queries":
            return rt.table_from({i: rt.table_from({b"type": _b(RRTYPES.get(t, str(t))), b"rrname": bytes(n)})
                                  for i, (n, t) in enumerate(m.queries)})
        if what in (b"answers", b"authorities"):
            rrs = m.answers if what == b"answers" else m.authorities
            out = {}
            for i, (n, t, ttl, rdata) in enumerate(rrs):
                d: dict[bytes, Any] = {b"type": _b(RRTYPES.get(t, str(t))), b"ttl": ttl, b"rrname": bytes(n)}
                if t in (1, 28) and len(rdata) in (4, 16):
                    d[b"addr"] = _addr(bytes(rdata))
                out[i] = rt.table_from(d)
            return rt.table_from(out)
        return None

    def f_tls_version(self, client: bool) -> Any:
        """suricata.tls get_client_version / get_server_version: the hello's version name."""
        tx = self._tx("tls")
        if tx is None:
            return None
        from netsentry.applayer.tls import VERSIONS
        v = getattr(tx, "client_version" if client else "server_version", None)
        if not v:
            return None
        return _b(VERSIONS.get(v, "UNDETERMINED"))

    def f_tx_attr(self, proto: bytes, name: bytes) -> Any:
        tx = self._tx(_text(proto))
        if tx is None:
            return None
        v = getattr(tx, _text(name), None)
        if callable(v):
            return None
        if isinstance(v, (bytes, bytearray, memoryview, str)):
            return _b(v)
        if isinstance(v, (bool, int, float)):
            return v
        return None


def _mark(b: RuleBuilder) -> None:
    """The load reads script files the rule cache's key does not cover: no cache entry."""
    if b.env is not None:
        b.env.state["lua_used"] = True


# --- one script per rule, one Lua state per process ---------------------------------------

class LuaScript:
    """A `lua` keyword's script: checked at load, run from a per-process Lua state."""

    def __init__(self, path: str, negated: bool, settings_key: tuple[Any, ...], flags: frozenset[str],
                 buffer_name: str | None, sig: Any = None) -> None:
        self.sig = sig
        self.path = path
        self.negated = negated
        self.settings_key = settings_key
        self.flags = flags
        self.buffer_name = buffer_name
        self._sb: Sandbox | None = None
        self._failed = False
        self._pending: tuple[Any, Any] = (None, None)
        self._tx: Any = None

    def __reduce__(self) -> Any:          # the rule cache: the state is made again on first use
        return (LuaScript, (self.path, self.negated, self.settings_key, self.flags, self.buffer_name, self.sig))

    def sandbox(self) -> Sandbox | None:
        sb = self._sb
        if sb is None and not self._failed:
            try:
                sb = Sandbox(self.path, self.settings_key)
                sb.sig = self.sig
                sb.thread_init()
                sb.match_fn = sb.function("match")
            except (LuaScriptError, RuleError) as e:
                self._failed = True
                log.error("lua: %s", e)
                return None
            self._sb = sb
        return sb

    def stash(self, pkt: Any, flow: Any) -> bool:
        self._pending = (pkt, flow)
        return True

    def stash_tx(self, tx: Any, to_server: bool) -> bool:
        self._tx = tx
        return True

    def match_hook(self, pkt: Any, flow: Any) -> bool:
        """A rule hook's script (`alert dns:request_complete ... lua:...`): the transaction
        the hook's check just passed."""
        tx, self._tx = self._tx, None
        return self._call(pkt, flow, tx, None)

    def _call(self, pkt: Any, flow: Any, tx: Any, buffer: bytes | None) -> bool:
        sb = self.sandbox()
        if sb is None or sb.match_fn is None:
            return self.negated
        ctx = sb.ctx
        ctx.pkt, ctx.flow, ctx.tx = pkt, flow, tx
        ctx.to_server = bool(getattr(pkt, "to_server", True)) if pkt is not None else True
        args = sb.rt.table()
        if pkt is not None and buffer is None:
            # what Suricata before 8 passed when init asked for it (scripts written for 7)
            if "payload" in self.flags:
                args[b"payload"] = bytes(pkt.payload) if pkt.payload_len else b""
            if "packet" in self.flags:
                args[b"packet"] = bytes(pkt.data)
        if buffer is not None:
            args[b"offset"] = 1
            if self.buffer_name:
                args[self.buffer_name.encode()] = buffer
        try:
            ok, res = sb.run(sb.match_fn, args)
        finally:
            ctx.pkt = ctx.flow = ctx.tx = None
        matched = ok and bool(res) and isinstance(res[0], (int, float)) and not isinstance(res[0], bool) \
            and int(res[0]) == 1
        return matched is not self.negated

    def match_packet(self, pkt: Any, flow: Any) -> bool:
        if "payload" in self.flags and not pkt.payload_len:
            return False
        if "packet" in self.flags and not pkt.data:
            return False
        return self._call(pkt, flow, None, None)

    def match_buffer(self, buf: bytes) -> bool:
        pkt, flow = self._pending
        return self._call(pkt, flow, None, buf)


class LuaBufferItem(Item):
    """The script as a step of a sticky buffer's inspection (DetectLuaMatchBuffer)."""

    def __init__(self, script: LuaScript) -> None:
        self.script = script

    def inspect(self, buf: bytes, blen: int, det: Det) -> bool:
        if not blen:
            return False
        if not self.script.match_buffer(bytes(buf[:blen])):
            return False
        nxt = self.next
        return True if nxt is None else nxt(buf, blen, det)


def prime(path: str, settings: Settings) -> tuple[frozenset[str], str | None]:
    """Suricata's DetectLuaSetupPrime: load the script, run `init`, read what it needs."""
    sb = Sandbox(path, settings.key())
    init = sb.function("init")
    if init is None:
        raise LuaScriptError("no init function in script")
    ok, res = sb._protected(init, None)
    if not ok:
        raise LuaScriptError(f"couldn't run script 'init' function: {res}")
    if not res or res[0] is None:
        raise LuaScriptError("init function in script should return table, nothing returned")
    needs = res[0]
    if sb.rt.eval("type")(needs) != b"table":
        raise LuaScriptError("init function in script should return table, returned is not table")
    flags: set[str] = set()
    buffer_name = None
    for k, v in needs.items():
        if not isinstance(k, bytes):
            continue
        key = k.decode("utf-8", "replace")
        if key in ("flowvar", "flowint"):
            continue
        if v is None or v is False:
            continue
        if key in ("packet", "payload", "ja3", "ja3s"):
            flags.add(key)
        elif key in ("buffer", "stream"):
            buffer_name = key
        elif key.startswith(("http", "dns", "tls", "ssh", "smtp", "dnp3")):
            raise LuaScriptError(f"data type {key} no longer supported, use rule hooks")
        else:
            raise LuaScriptError(f"unsupported data type {key}")
    return frozenset(flags), buffer_name


@keyword("lua", "luajit", help="lua:[!]script.lua; run a Lua script's match() (Suricata 8 sandbox)")
def lua_keyword(b: RuleBuilder, arg: str | None) -> None:
    settings = _settings(b)
    if not settings.allow_rules:
        raise RuleError("Lua rules disabled by security configuration: security.lua.allow-rules")
    text = (arg or "").strip()
    negated = text.startswith("!")
    name = text[1:].strip() if negated else text
    if not name:
        raise RuleError("lua: needs a script file name")
    _lupa()
    path = script_path(b, name, settings.rule_path)
    try:
        flags, buffer_name = prime(path, settings)
    except LuaScriptError as e:
        raise RuleError(f"lua: {e}") from None
    hook = getattr(getattr(b.sig, "firewall", None), "hook", None)
    if "ja3" in flags or "ja3s" in flags:
        # needs ja3/ja3s (suricata.ja3): run on a TLS rule hook's transaction only
        if hook is None or hook.kind == "pkt" or (b.sig.app_proto or hook.proto) != "tls":
            raise RuleError("lua: the ja3/ja3s needs are supported on a tls rule hook only "
                            "(alert tls:client_hello_done ...)")
        flags = flags - {"ja3", "ja3s"}
    script = LuaScript(path, negated, settings.key(), flags, buffer_name, b.sig)
    _mark(b)
    if b.buffer == "pkt_data" and hook is not None and hook.kind != "pkt" and not flags:
        # Suricata appends the script to the hook's list: it runs on the transaction
        from netsentry.applayer.registry import ALIASES
        from netsentry.rules.keywords.applayer import tx_check
        proto = b.sig.app_proto or hook.proto
        tx_check(b, ALIASES.get(proto, proto), None, script.stash_tx)
        b.final_checks.append(script.match_hook)
    elif b.buffer == "pkt_data":
        b.final_checks.append(script.match_packet)
    else:
        b.packet_checks.append(script.stash)
        b.add_item(LuaBufferItem(script))


# --- luaxform -------------------------------------------------------------------------

class LuaXform:
    """A `luaxform` transform's script and arguments (hashable by identity, as a buffer key)."""

    def __init__(self, path: str, args: tuple[str, ...], settings_key: tuple[Any, ...], text: str) -> None:
        self.path = path
        self.args = args
        self.settings_key = settings_key
        self.text = text
        self._sb: Sandbox | None = None
        self._failed = False

    def __reduce__(self) -> Any:
        return (LuaXform, (self.path, self.args, self.settings_key, self.text))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LuaXform) and (self.path, self.args, self.settings_key) == \
            (other.path, other.args, other.settings_key)

    def __hash__(self) -> int:
        return hash((self.path, self.args, self.settings_key))

    def apply(self, data: bytes) -> bytes:
        if not data:
            return data
        sb = self._sb
        if sb is None:
            if self._failed:
                return data
            try:
                sb = Sandbox(self.path, self.settings_key)
                sb.thread_init()
                sb.match_fn = sb.function("transform")
            except (LuaScriptError, RuleError) as e:
                self._failed = True
                log.error("luaxform: %s", e)
                return data
            self._sb = sb
        if sb.match_fn is None:
            return data
        argt = sb.rt.table_from([a.encode() for a in self.args])
        ok, res = sb.run(sb.match_fn, bytes(data), argt)
        if not ok or len(res) != 2:
            return data
        out, count = res
        if isinstance(out, (int, float)) and not isinstance(out, bool):
            out = _b(out)
        if not isinstance(out, bytes) or not isinstance(count, (int, float)) or isinstance(count, bool):
            return data
        n = int(count)
        if n <= 0:
            return data
        return out[:n]


def _apply_luaxform(data: bytes, xf: LuaXform) -> bytes:
    return xf.apply(data)


@keyword("luaxform", help="luaxform:script.lua[, arg]...; transform the sticky buffer with a Lua script")
def luaxform_keyword(b: RuleBuilder, arg: str | None) -> None:
    settings = _settings(b)
    if not settings.allow_rules:
        raise RuleError("Lua rules disabled by security configuration: security.lua.allow-rules")
    if b.buffer == "base64_data":
        raise RuleError("transform 'luaxform' cannot apply to base64_data (Suricata: no transforms there)")
    if b.buffer == "pkt_data":
        raise RuleError("transform 'luaxform' must directly follow a sticky buffer "
                        "(the packet payload / pkt_data is none)")
    text = arg or ""
    parts = [p for p in text.split(",") if p]
    if not parts or not parts[0].strip():
        raise RuleError("luaxform: Lua script name not supplied")
    _lupa()
    path = script_path(b, parts[0].strip(), settings.rule_path)
    try:
        sb = Sandbox(path, settings.key())
        if sb.function("transform") is None:
            raise LuaScriptError("no transform function in script")
    except LuaScriptError as e:
        raise RuleError(f"luaxform: {e}") from None
    _mark(b)
    b.add_transform(("luaxform", LuaXform(path, tuple(parts[1:]), settings.key(), text)))


def _register_transform() -> None:
    from netsentry.rules.keywords.applayer import TRANSFORMS
    TRANSFORMS["luaxform"] = _apply_luaxform


_register_transform()


_ACTIVE: list[bool] = [False]      # a Lua state was made in this process


def stats() -> dict[str, int]:
    """detect.lua.* (Suricata's names), once this process ran a Lua script; else nothing,
    so the stats of a ruleset without Lua stay as they were."""
    if not _ACTIVE[0]:
        return {}
    return {f"detect.lua.{k}": v for k, v in STATS.items()}


__all__ = ["LuaScript", "LuaXform", "Sandbox", "STATS", "stats", "time"]
