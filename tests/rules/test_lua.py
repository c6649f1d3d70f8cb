"""Lua in rules (rules/keywords/lua.py, lua_libs.lua): the `lua` keyword, `luaxform`, the
suricata.* libraries, the sandbox and its limits, and errors reported instead of crashes."""

from __future__ import annotations

import hashlib
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("lupa", reason="the lupa package (Lua) is not installed")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "applayer"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from applayer_helpers import alerts, hits, replay, tcp_session  # noqa: E402
from rules_helpers import pkt  # noqa: E402

from netsentry.config import load_config  # noqa: E402
from netsentry.rules.keywords import lua  # noqa: E402
from netsentry.rules.loader import load_rules  # noqa: E402

_OK = b"HTTP/1.1 200 OK\r\nServer: Apache\r\nContent-Length: 4\r\n\r\nroot"


def _get(uri: bytes = b"/index.html") -> bytes:
    return b"GET " + uri + b" HTTP/1.1\r\nHost: www.example.com\r\n\r\n"


def _script(tmp_path: Path, name: str, body: str) -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(body))
    return p


def _pcap(tmp_path: Path, n: int = 1, uri: bytes = b"/index.html") -> Path:
    ex: list[tuple[bool, bytes]] = []
    for _ in range(n):
        ex += [(True, _get(uri)), (False, _OK)]
    return tcp_session(tmp_path / "s.pcap", ex)


def _load(tmp_path: Path, rules: str, *overrides: str):
    rf = tmp_path / "t.rules"
    rf.write_text(rules)
    return load_rules([rf], load_config(None, list(overrides)))


MATCH_ALWAYS = """
function init(args) return {} end
function match(args) return 1 end
"""


# --- the libraries, each function a script checks ------------------------------------------

def test_packet_library(tmp_path: Path) -> None:
    _script(tmp_path, "p.lua", """
        local packet = require("suricata.packet")
        function init(args) return {packet = true} end
        function match(args)
            local p = packet.get()
            local payload = p:payload()
            if not payload:find("GET /index.html HTTP/1.1", 1, true) then return 0 end
            local ipver, src, dst, proto, sp, dp = p:tuple()
            if ipver ~= 4 or proto ~= 6 or dp ~= 80 or sp ~= p:sp() or dp ~= p:dp() then return 0 end
            if src ~= "10.0.0.5" or dst ~= "192.0.2.80" then return 0 end
            if p:pcap_cnt() < 1 or #p:packet() <= #payload then return 0 end
            local sec, usec = p:timestamp()
            if type(sec) ~= "number" or not p:timestring_iso8601():match("^%d+%-%d+%-%d+T") then return 0 end
            if not p:timestring_legacy():match("^%d+/%d+/%d+%-") then return 0 end
            return 1
        end
    """)
    recs = replay(tmp_path, _pcap(tmp_path), 'alert tcp any any -> any any (flow:to_server; lua:p.lua; sid:1;)\n',
                  f"default-rule-path={tmp_path}")
    assert len(alerts(recs, 1)) == 1


def test_packet_ports_fail_on_icmp_with_suricatas_message(tmp_path: Path) -> None:
    _script(tmp_path, "icmp.lua", """
        local packet = require("suricata.packet")
        function init(args) return {} end
        function match(args)
            local p = packet.get()
            local sp, err = p:sp()
            local dp, err2 = p:dp()
            if sp == nil and err == "sp only available for tcp, udp and sctp"
               and dp == nil and err2 == "dp only available for tcp, udp and sctp" then
                return 1
            end
            return 0
        end
    """)
    script = lua.LuaScript(str(tmp_path / "icmp.lua"), False, lua.Settings({}).key(), frozenset(), None)
    icmp = pkt(b"abc", proto=1, icmp_type=8, icmp_code=0)
    assert script.match_packet(icmp, None) is True
    assert script.match_packet(pkt(b"abc", proto=6), None) is False


def test_flow_library_and_negation(tmp_path: Path) -> None:
    _script(tmp_path, "f.lua", """
        local flow = require("suricata.flow")
        function init(args) return {} end
        function match(args)
            local f = flow.get()
            if f == nil then return 0 end
            local ipver, src, dst, proto, sp, dp = f:tuple()
            local alproto = f:app_layer_proto()
            if ipver == 4 and src == "10.0.0.5" and dst == "192.0.2.80" and proto == 6 and dp == 80
               and alproto == "http" then
                return 1
            end
            return 0
        end
    """)
    recs = replay(tmp_path, _pcap(tmp_path),
                  'alert http any any -> any any (http.uri; content:"/index"; lua:f.lua; sid:1;)\n'
                  'alert http any any -> any any (http.uri; content:"/index"; lua:!f.lua; sid:2;)\n',
                  f"default-rule-path={tmp_path}")
    assert len(alerts(recs, 1)) == 1
    assert alerts(recs, 2) == []


def test_flowvar_set_in_one_rule_read_in_another_and_logged(tmp_path: Path) -> None:
    _script(tmp_path, "set.lua", """
        local flowvarlib = require("suricata.flowvar")
        function init() flowvarlib.register("test_var") return {} end
        function thread_init() fv = flowvarlib.get("test_var") end
        function match()
            if fv:value() ~= nil then return 0 end
            fv:set("foobarbaz", 6)
            return 1
        end
    """)
    _script(tmp_path, "get.lua", """
        local flowvarlib = require("suricata.flowvar")
        function init() return {} end
        function thread_init() fv = flowvarlib.get("test_var") end
        function match() if fv:value() == "foobar" then return 1 end return 0 end
    """)
    recs = replay(tmp_path, _pcap(tmp_path, 2),
                  'alert http any any -> any any (http.request_line; content:"GET"; lua:set.lua; sid:1;)\n'
                  'alert http any any -> any any (http.request_line; content:"GET"; lua:get.lua; sid:2;)\n',
                  f"default-rule-path={tmp_path}", "outputs.eve-log.metadata=true")
    first = alerts(recs, 1)
    assert len(first) == 1                      # the second request finds the value set
    assert first[0]["metadata"]["flowvars"] == [{"test_var": "foobar"}]
    assert len(alerts(recs, 2)) == 2


def test_flowint_library(tmp_path: Path) -> None:
    _script(tmp_path, "i.lua", """
        local flowint = require("suricata.flowint")
        function init() flowint.register("n") flowint.register("d") return {} end
        function thread_init() n = flowint.get("n") d = flowint.get("d") end
        function match()
            local before = n:value()
            local after = n:incr()
            if before == nil and after ~= 1 then return 0 end
            if d:value() == nil then d:set(10) else d:decr() end
            if n:value() == 3 and d:value() == 8 then return 1 end
            return 0
        end
    """)
    recs = replay(tmp_path, _pcap(tmp_path, 4),
                  'alert http any any -> any any (http.uri; content:"/"; lua:i.lua; sid:1;)\n'
                  'alert http any any -> any any (http.uri; content:"/"; flowint:n,==,3; sid:2;)\n',
                  f"default-rule-path={tmp_path}")
    assert hits(recs, 1) == [hits(recs, 1)[0]]  # the third request: n 3, d 10 -> 9 -> 8
    # the keyword sees what Lua stored; a rule reading a flowint runs before the others (as
    # Suricata orders them), so it sees the third request's count on the fourth
    assert len(alerts(recs, 2)) == 1
    assert hits(recs, 2)[0] > hits(recs, 1)[0]


def test_too_many_flowints_is_a_rule_error(tmp_path: Path) -> None:
    _script(tmp_path, "many.lua", """
        local flowint = require("suricata.flowint")
        function init() for i = 1, 97 do flowint.register("x" .. i) end return {} end
        function match() return 1 end
    """)
    rs = _load(tmp_path, 'alert ip any any -> any any (lua:many.lua; sid:1;)\n', f"default-rule-path={tmp_path}")
    assert not rs.signatures
    assert "too many flowints registered" in str(rs.errors[0])


def _unit(tmp_path: Path, body: str, restricted: bool = False, max_bytes: int = 500000,
          max_instructions: int = 500000) -> lua.Sandbox:
    p = _script(tmp_path, "u.lua", body)
    return lua.Sandbox(str(p), (max_bytes, max_instructions, restricted))


def _call(sb: lua.Sandbox, expr: str):
    return sb._protected(sb.rt.eval(f"function() {expr} end"))


def test_base64_and_hashlib_libraries(tmp_path: Path) -> None:
    sb = _unit(tmp_path, """
        base64 = require("suricata.base64")
        hashlib = require("suricata.hashlib")
    """)
    ok, res = _call(sb, 'return base64.encode("www.suricata-ids.org"), base64.encode_nopad("ab"), '
                        'base64.decode("YWI="), base64.decode_nopad("YWI"), base64.decode_padopt("YWI"), '
                        'base64.decode_rfc2045("YW I=")')
    assert ok and res == (b"d3d3LnN1cmljYXRhLWlkcy5vcmc=", b"YWI", b"ab", b"ab", b"ab", b"ab")
    ok, res = _call(sb, 'return base64.decode("!!")')
    assert ok and res == (None,)
    for algo in ("sha256", "sha1", "md5"):
        want = hashlib.new(algo, b"www.suricata-ids.org")
        ok, res = _call(sb, f'local h = hashlib.{algo}() h:update("www.") h:update("suricata-ids.org") '
                            f'local h2 = hashlib.{algo}() h2:update("www.suricata-ids.org") '
                            f'return hashlib.{algo}_digest("www.suricata-ids.org"), '
                            f'hashlib.{algo}_hexdigest("www.suricata-ids.org"), h:finalize(), h2:finalize_to_hex()')
        assert ok and res == (want.digest(), want.hexdigest().encode(), want.digest(), want.hexdigest().encode())


def test_log_and_config_libraries(tmp_path: Path) -> None:
    sb = _unit(tmp_path, """
        logger = require("suricata.log")
        config = require("suricata.config")
    """)
    ok, res = _call(sb, 'logger.info("a") logger.notice("b", 1) logger.warning("c") logger.error("d") '
                        'logger.debug("e") logger.config("f") logger.perf("g") return type(config.log_path())')
    assert ok and res == (b"string",)


def test_dataset_library_adds_and_looks_up(tmp_path: Path) -> None:
    _script(tmp_path, "ds.lua", """
        local dataset = require("suricata.dataset")
        function init() return {} end
        function thread_init()
            d = dataset.new()
            local ret, err = d:get("uris")
            if err ~= nil then error(err) end
            local _, err2 = dataset.new():get("nope")
            missing = err2
        end
        function match()
            local http = require("suricata.http")
            local uri = http.get_tx():request_uri_normalized()
            local ret = d:add(uri, #uri)
            if missing ~= "dataset not found" then return 0 end
            return ret
        end
    """)
    recs = replay(tmp_path, _pcap(tmp_path, 2),
                  'alert http any any -> any any (http.uri; content:"/"; lua:ds.lua; sid:1;)\n'
                  'alert http any any -> any any (http.uri; dataset:isset,uris,type string; sid:2;)\n',
                  f"default-rule-path={tmp_path}", f"default-data-dir={tmp_path}")
    assert len(alerts(recs, 1)) == 1            # added once: the second request's URI is known
    assert len(alerts(recs, 2)) == 2


def test_http_library_reads_the_transaction(tmp_path: Path) -> None:
    _script(tmp_path, "h.lua", """
        local http = require("suricata.http")
        function init() return {} end
        function match()
            local tx = http.get_tx()
            if tx:request_line() == "GET /a?b HTTP/1.1" and tx:request_host() == "www.example.com"
               and tx:request_uri_raw() == "/a?b" then
                return 1
            end
            return 0
        end
    """)
    recs = replay(tmp_path, _pcap(tmp_path, 1, b"/a?b"),
                  'alert http any any -> any any (http.method; content:"GET"; lua:h.lua; sid:1;)\n',
                  f"default-rule-path={tmp_path}")
    assert len(alerts(recs, 1)) == 1


def test_buffer_is_passed_when_init_asks_for_it(tmp_path: Path) -> None:
    _script(tmp_path, "b.lua", """
        function init() return {buffer = true} end
        function match(args) if args["buffer"] == "/index.html" and args["offset"] == 1 then return 1 end return 0 end
    """)
    recs = replay(tmp_path, _pcap(tmp_path),
                  'alert http any any -> any any (http.uri; lua:b.lua; sid:1;)\n', f"default-rule-path={tmp_path}")
    assert len(alerts(recs, 1)) == 1


# --- luaxform -----------------------------------------------------------------------------

def test_luaxform_transforms_with_rule_arguments(tmp_path: Path) -> None:
    _script(tmp_path, "x.lua", """
        function transform(input, args)
            if args[1] ~= " bytes 4" or args[2] ~= " x" then return nil, 0 end
            local s = string.upper(input)
            return s, 4
        end
    """)
    _script(tmp_path, "none.lua", "function transform(input, args) return nil, 0 end\n")
    _script(tmp_path, "one.lua", "function transform(input, args) return string.upper(input) end\n")
    recs = replay(tmp_path, _pcap(tmp_path),
                  'alert http any any -> any any (http.uri; luaxform:x.lua, bytes 4, x; bsize:4; content:"/IND"; sid:1;)\n'
                  'alert http any any -> any any (http.uri; luaxform:none.lua; content:"/index.html"; sid:2;)\n'
                  'alert http any any -> any any (http.uri; luaxform:one.lua; content:"/index.html"; sid:3;)\n',
                  f"default-rule-path={tmp_path}")
    assert len(alerts(recs, 1)) == 1
    assert len(alerts(recs, 2)) == 1            # nil: the buffer as it was
    assert len(alerts(recs, 3)) == 1            # one value where two are needed: unchanged


@pytest.mark.parametrize("rule, why", [
    ('alert http any any -> any any (http.uri; luaxform:missing.lua; content:"x"; sid:1;)', "couldn't load file"),
    ('alert http any any -> any any (http.uri; luaxform:notx.lua; content:"x"; sid:1;)', "no transform function"),
    ('alert http any any -> any any (luaxform:t.lua; content:"x"; sid:1;)', "sticky buffer"),
    ('alert http any any -> any any (lua:noinit.lua; sid:1;)', "no init function"),
    ('alert http any any -> any any (lua:badinit.lua; sid:1;)', "should return table"),
    ('alert http any any -> any any (lua:oldneeds.lua; sid:1;)', "no longer supported"),
    ('alert http any any -> any any (lua:syntax.lua; sid:1;)', "couldn't load file"),
    ('alert http any any -> any any (lua:missing.lua; sid:1;)', "couldn't load file"),
])
def test_bad_scripts_are_rule_errors_with_file_and_line(tmp_path: Path, rule: str, why: str) -> None:
    _script(tmp_path, "notx.lua", "function other() end\n")
    _script(tmp_path, "t.lua", "function transform(i, a) return i, #i end\n")
    _script(tmp_path, "noinit.lua", "function match() return 1 end\n")
    _script(tmp_path, "badinit.lua", "function init() return 1 end\nfunction match() return 1 end\n")
    _script(tmp_path, "oldneeds.lua", 'function init() return {["http.uri"] = true} end\nfunction match() return 1 end\n')
    _script(tmp_path, "syntax.lua", "function init( return {} end\n")
    rs = _load(tmp_path, "# comment\n" + rule + "\n")
    assert not rs.signatures
    assert len(rs.errors) == 1
    err = rs.errors[0]
    assert why in str(err)
    assert err.line == 2 and err.file.endswith("t.rules")


def test_allow_rules_false_refuses_lua(tmp_path: Path) -> None:
    _script(tmp_path, "m.lua", MATCH_ALWAYS)
    rs = _load(tmp_path, 'alert ip any any -> any any (lua:m.lua; sid:1;)\n', "security.lua.allow-rules=false")
    assert not rs.signatures and "security.lua.allow-rules" in str(rs.errors[0])
    rs = _load(tmp_path, 'alert ip any any -> any any (lua:m.lua; sid:1;)\n')
    assert len(rs.signatures) == 1              # Suricata 8: on unless turned off
    assert rs.no_cache                          # script files are not in the cache key


def test_missing_lupa_is_a_rule_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _script(tmp_path, "m.lua", MATCH_ALWAYS)
    monkeypatch.setitem(sys.modules, "lupa.lua54", None)     # as if the package were absent
    rs = _load(tmp_path, 'alert ip any any -> any any (lua:m.lua; sid:1;)\n')
    assert not rs.signatures
    assert "lupa" in str(rs.errors[0]) and rs.errors[0].line == 1


def test_scripts_are_found_beside_the_rules_then_in_default_rule_path(tmp_path: Path) -> None:
    other = tmp_path / "scripts"
    other.mkdir()
    _script(other, "far.lua", MATCH_ALWAYS)
    _script(tmp_path, "near.lua", MATCH_ALWAYS)
    rs = _load(tmp_path, 'alert ip any any -> any any (lua:near.lua; sid:1;)\n'
                         'alert ip any any -> any any (lua:far.lua; sid:2;)\n', f"default-rule-path={other}")
    assert not rs.errors and len(rs.signatures) == 2


# --- the sandbox ----------------------------------------------------------------------------

def test_infinite_loop_stops_at_the_instruction_limit(tmp_path: Path) -> None:
    _script(tmp_path, "loop.lua", """
        function init() return {} end
        function match() while true do end return 1 end
    """)
    before = dict(lua.STATS)
    recs = replay(tmp_path, _pcap(tmp_path),
                  'alert tcp any any -> any any (flow:to_server; content:"GET"; lua:loop.lua; sid:1;)\n'
                  'alert tcp any any -> any any (flow:to_server; content:"GET"; lua:!loop.lua; sid:2;)\n',
                  f"default-rule-path={tmp_path}", "security.lua.max-instructions=10000")
    assert alerts(recs, 1) == []
    assert len(alerts(recs, 2)) == 1            # an error is "no match", so the negation matches
    assert lua.STATS["instruction_limit_errors"] - before["instruction_limit_errors"] == 2
    assert lua.STATS["errors"] - before["errors"] == 2


def test_limits_and_blocked_functions(tmp_path: Path) -> None:
    sb = _unit(tmp_path, "x = 1\n", max_bytes=100000, max_instructions=1000)
    assert _call(sb, "local t = 0 for i = 1, 100000 do t = t + 1 end") == (False, "instruction limit exceeded")
    assert sb.limit_hit()
    assert _call(sb, "return 1") == (True, (1,))        # the counter starts again per call
    assert _call(sb, 'local t = {} for i = 1, 50 do t[i] = string.rep("a", 10000) .. i end')[1] == \
        "memory limit exceeded"
    ok, err = _call(sb, "return pcall(print)")
    assert not ok and err.endswith("Blocked Lua function called: pcall") and sb.blocked_hit()
    ok, err = _call(sb, 'return io.open("/etc/passwd")')
    assert not ok and "attempt to index a nil value (global 'io')" in err
    for name in ("os", "debug", "package", "coroutine", "python", "load", "dofile", "loadstring"):
        ok, res = _call(sb, f"return type({name})")
        assert ok and res[0] in (b"nil", b"function"), name
    ok, err = _call(sb, "return load('return 1')")
    assert not ok and "Blocked Lua function called: load" in err
    ok, err = _call(sb, 'return require("os")')
    assert not ok and "Module not found: os" in err
    ok, res = _call(sb, 'return ("abc"):upper(), string.format("%d", 5), math.floor(2.5), utf8.char(65)')
    assert ok and res == (b"ABC", b"5", 2, b"A")


def test_restricted_functions_can_be_allowed(tmp_path: Path) -> None:
    sb = _unit(tmp_path, "x = 1\n", restricted=True)
    ok, res = _call(sb, 'return type(io), type(getmetatable), pcall(function() return 1 end), '
                        'require("suricata.base64").encode("a")')
    assert ok and res == (b"table", b"function", True, b"YQ==")
    ok, res = _call(sb, "return type(python)")
    assert ok and res == (b"nil",)


def test_python_objects_are_not_reachable(tmp_path: Path) -> None:
    sb = _unit(tmp_path, "h = require('suricata.hashlib').sha256()\n")
    ok, err = _call(sb, "return h.h.__class__")
    assert not ok and "not accessible" in err


def test_script_error_is_counted_and_logged_not_raised(tmp_path: Path) -> None:
    _script(tmp_path, "err.lua", """
        function init() return {} end
        function match() foobar() return 1 end
    """)
    before = lua.STATS["errors"]
    recs = replay(tmp_path, _pcap(tmp_path, 2),
                  'alert tcp any any -> any any (flow:to_server; content:"GET"; lua:err.lua; sid:1;)\n'
                  'alert tcp any any -> any any (flow:to_server; content:"GET"; lua:!err.lua; sid:2;)\n',
                  f"default-rule-path={tmp_path}")
    assert alerts(recs, 1) == []
    assert len(alerts(recs, 2)) == 2
    assert lua.STATS["errors"] - before == 4
    assert lua.stats()["detect.lua.errors"] == lua.STATS["errors"]


def test_dns_library_on_a_rule_hook(tmp_path: Path) -> None:
    from scapy.all import DNS, DNSQR, DNSRR, raw

    from applayer_helpers import udp_exchange
    q = DNS(id=4242, rd=1, qd=DNSQR(qname="www.example.org", qtype="A"))
    r = DNS(id=4242, qr=1, rd=1, ra=1, qd=DNSQR(qname="www.example.org", qtype="A"),
            an=DNSRR(rrname="www.example.org", type="A", ttl=60, rdata="192.0.2.7"))
    pcap = udp_exchange(tmp_path / "d.pcap", [(True, raw(q)), (False, raw(r))])
    _script(tmp_path, "req.lua", """
        local dns = require("suricata.dns")
        function init() return {} end
        function match()
            local tx = dns.get_tx()
            local q = tx:queries()
            if tx:txid() == 4242 and tx:rrname() == "www.example.org" and q[0].type == "A"
               and q[0].rrname == "www.example.org" and tx:recursion_desired() then
                return 1
            end
            return 0
        end
    """)
    _script(tmp_path, "resp.lua", """
        local dns = require("suricata.dns")
        function init() return {} end
        function match()
            local tx = dns.get_tx()
            local a = tx:answers()
            if a[0] == nil then return 0 end
            if tx:rcode() == 0 and tx:rcode_string() == "NOERROR" and a[0].addr == "192.0.2.7"
               and a[0].ttl == 60 and next(tx:authorities()) == nil then
                return 1
            end
            return 0
        end
    """)
    recs = replay(tmp_path, pcap,
                  'alert dns:request_complete any any -> any any (lua:req.lua; sid:1;)\n'
                  'alert dns:response_complete any any -> any any (lua:resp.lua; sid:2;)\n'
                  'alert dns:request_complete any any -> any any (lua:resp.lua; sid:3;)\n',
                  f"default-rule-path={tmp_path}")
    assert len(alerts(recs, 1)) == 1
    assert len(alerts(recs, 2)) == 1
    assert alerts(recs, 3) == []                # the hook's transaction: the request has no answers


def test_rule_library_reads_the_running_rule(tmp_path: Path) -> None:
    _script(tmp_path, "r.lua", """
        local rule = require("suricata.rule")
        function init() return {} end
        function match()
            local r = rule.get_rule()
            if r:sid() == 7 and r:rev() == 3 and r:gid() == 1 and r:msg() == "M" and r:action() == "alert" then
                return 1
            end
            return 0
        end
    """)
    recs = replay(tmp_path, _pcap(tmp_path),
                  'alert tcp any any -> any any (msg:"M"; flow:to_server; content:"GET"; lua:r.lua; sid:7; rev:3;)\n'
                  'alert tcp any any -> any any (msg:"N"; flow:to_server; content:"GET"; lua:r.lua; sid:8; rev:3;)\n',
                  f"default-rule-path={tmp_path}")
    assert len(alerts(recs, 7)) == 1
    assert alerts(recs, 8) == []


def test_ntp_library_reads_the_message_header(tmp_path: Path) -> None:
    from applayer_helpers import udp_exchange
    # client (v4, mode 3, stratum 0) then server (v3, mode 4, stratum 2, refid LOCL)
    req = bytes([(4 << 3) | 3, 0, 6, 0xEC]) + b"\0" * 8 + b"\0\0\0\0" + b"\0" * 32
    resp = bytes([(3 << 3) | 4, 2, 6, 0xEC]) + b"\0" * 8 + b"LOCL" + b"\0" * 32
    pcap = udp_exchange(tmp_path / "n.pcap", [(True, req), (False, resp)], sport=49152, dport=123)
    for name, cond in (("v4", 'tx:version() == 4 and tx:mode() == 3 and tx:stratum() == 0 '
                              'and tx:reference_id() == "\\0\\0\\0\\0"'),
                       ("v3", 'tx:version() == 3 and tx:mode() == 4 and tx:stratum() == 2 '
                              'and tx:reference_id() == "LOCL"'),
                       ("none", 'tx:version() == 4 and tx:mode() == 4')):
        _script(tmp_path, f"{name}.lua", f"""
            local ntp = require("suricata.ntp")
            function init() return {{}} end
            function match()
                local tx, err = ntp.get_tx()
                if tx == nil then return 0 end
                if {cond} then return 1 end
                return 0
            end
        """)
    recs = replay(tmp_path, pcap,
                  'alert ntp any any -> any any (lua:v4.lua; sid:1;)\n'
                  'alert ntp any any -> any any (lua:v3.lua; sid:2;)\n'
                  'alert ntp any any -> any any (lua:none.lua; sid:3;)\n',
                  f"default-rule-path={tmp_path}")
    assert len(alerts(recs, 1)) == 1
    assert len(alerts(recs, 2)) == 1
    assert alerts(recs, 3) == []


def test_pcre_capture_before_its_first_slash_feeds_a_flowvar_lua_reads(tmp_path: Path) -> None:
    # Suricata's pcre parser searches for the first unescaped '/': "^/GET (.*)$/G" is the
    # regex "GET (.*)$" with flag G, and its capture goes to the flowvar named after it
    _script(tmp_path, "get.lua", """
        local flowvar = require("suricata.flowvar")
        function init() return {} end
        function thread_init() v = flowvar.get("TestVar") end
        function match() if v:value() == "/index.html HTTP/1.1" then return 1 end return 0 end
    """)
    recs = replay(tmp_path, _pcap(tmp_path),
                  'alert http any any -> any any (http.request_line; pcre:"^/GET (.*)$/G, flow:TestVar"; '
                  'flowbits:set,seen; noalert; sid:1;)\n'
                  'alert http any any -> any any (flow:to_server; lua:get.lua; flowbits:isset,seen; sid:2;)\n',
                  f"default-rule-path={tmp_path}", "outputs.eve-log.metadata=true")
    got = alerts(recs, 2)
    assert got                                  # each to-server packet after the capture
    assert all(a["metadata"]["flowvars"] == [{"TestVar": "/index.html HTTP/1.1"}] for a in got)


def test_ja3_library_on_a_tls_rule_hook(tmp_path: Path) -> None:
    """suricata.ja3 with `needs["ja3s"]` (suricata-verify tls/tls-ja3s): the ServerHello's
    ja3s on a tls:server_hello hook; the same needs on a plain tls rule are refused."""
    from tls_builders import client_hello, handshake_record, server_hello
    pcap = tcp_session(tmp_path / "t.pcap", [(True, handshake_record(client_hello("a.example"))),
                                             (False, handshake_record(server_hello()))], dport=443)
    _script(tmp_path, "ja3s.lua", """
        local ja3 = require("suricata.ja3")
        function init() ja3.enable_ja3(); return {ja3s = true} end
        function match()
            local tx = ja3.get_tx()
            if tx:ja3s_get_string() == "771,49199,65281" and tx:ja3s_get_hash() == "%s" then
                return 1
            end
            return 0
        end
    """ % hashlib.md5(b"771,49199,65281").hexdigest())  # noqa: S324
    recs = replay(tmp_path, pcap,
                  'alert tls:server_hello any any -> any any (lua:ja3s.lua; sid:1;)\n',
                  f"default-rule-path={tmp_path}")
    assert len(alerts(recs, 1)) == 1
    rf = tmp_path / "plain.rules"
    rf.write_text('alert tls any any -> any any (lua:ja3s.lua; sid:3;)\n')
    errs = load_rules([rf], load_config(None, [f"default-rule-path={tmp_path}"])).errors
    assert len(errs) == 1 and "rule hook" in str(errs[0])
