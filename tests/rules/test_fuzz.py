"""Robustness: rule text never crashes the parser, payloads never crash verification.

The parser may only raise RuleError (reported, rule skipped); verification
may only return a bool, whatever the bytes (hostile traffic).
"""

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rules_helpers import env, flow, pkt

from netsentry.rules import RuleError
from netsentry.rules.parser import parse_rule
from netsentry.rules.registry import KEYWORDS, load_families

load_families()
NAMES = sorted(k for k in KEYWORDS if KEYWORDS[k].family != "applayer")
VALUE_CHARS = string.ascii_letters + string.digits + ' ,|!<>=-+*&^"\\/:;.()[]$?'

values = st.one_of(
    st.none(),
    st.text(VALUE_CHARS, max_size=20),
    st.sampled_from(['"abc"', '!"a|00 01|b"', "1", "0", "-5", "65536", "1,relative", "2,=,1,0",
                     '"/a(b)?c/Ri"', "established,to_server", "set,x", "isset,a|b", "x,+,1",
                     "type limit,track by_src,count 1,seconds 1", "1<>3", ">=4", "&0xf0=0x10",
                     "4,0,v,relative,little", "bytes 1,offset 0,oper +,rvalue 1,result r", "only", "1,2"]),
)
option = st.tuples(st.sampled_from(NAMES), values)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(option, max_size=8), st.sampled_from(["tcp", "udp", "ip", "icmp", "tcp-pkt"]))
def test_parser_raises_only_rule_errors(opts, proto):
    body = " ".join(f"{n};" if v is None else f"{n}:{v};" for n, v in opts)
    text = f"alert {proto} any any -> any any ({body} sid:1;)"
    try:
        sig = parse_rule(text, env(), "fuzz.rules", 1)
    except RuleError:
        return
    assert sig.sid == 1


RULES = [
    'content:"ab"; content:"c"; distance:0; within:3; isdataat:1,relative;',
    'content:!"x"; depth:3; pcre:"/a.+b/R";',
    'byte_extract:2,0,n; content:"z"; offset:n; byte_test:1,>,n,0,relative;',
    'byte_jump:1,0,relative,multiplier 2,post_offset -3; content:"q"; within:4;',
    'byte_math:bytes 2,offset 1,oper -,rvalue 7,result r; isdataat:!r,relative;',
    'content:"a"; nocase; endswith; bsize:<100;',
    'pcre:"/(?<=a|bc)[^x]{2,}$/sm"; content:"b"; distance:-3;',
    'byte_test:3,=,12,0,string,dec; byte_jump:2,1,string,hex,from_beginning; content:"k"; distance:0;',
]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_verification_is_total(payload):
    for opts in RULES:
        sig = parse_rule(f"alert tcp any any -> any any ({opts} sid:1;)", env())
        assert sig.match(pkt(payload), flow()) in (True, False)
