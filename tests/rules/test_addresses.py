"""Rule header addresses and ports: CIDR v4/v6, ranges, negation, nested lists, variables."""

import pytest
from rules_helpers import packed

from netsentry.rules.addresses import AddressParser
from netsentry.rules.errors import RuleError
from netsentry.rules.ports import PortParser

VARS = {"HOME_NET": "[192.168.0.0/16,10.0.0.0/8]", "EXTERNAL_NET": "!$HOME_NET",
        "DNS_SERVERS": "$HOME_NET", "LOOP_A": "$LOOP_B", "LOOP_B": "$LOOP_A"}
PVARS = {"HTTP_PORTS": "[80,8080]", "SHELLCODE_PORTS": "!80", "FILE_DATA_PORTS": "[$HTTP_PORTS,110,143]",
         "ORACLE_PORTS": "1521"}


def addr(spec):
    return AddressParser(VARS).parse(spec)


@pytest.mark.parametrize("spec,ip,want", [
    ("any", "1.2.3.4", True),
    ("any", "2001:db8::1", True),
    ("10.0.0.0/8", "10.255.0.1", True),
    ("10.0.0.0/8", "11.0.0.1", False),
    ("!10.0.0.0/8", "11.0.0.1", True),
    ("!10.0.0.0/8", "10.0.0.1", False),
    ("$HOME_NET", "192.168.3.4", True),
    ("$HOME_NET", "8.8.8.8", False),
    ("$EXTERNAL_NET", "8.8.8.8", True),
    ("$EXTERNAL_NET", "10.1.1.1", False),
    ("$EXTERNAL_NET", "2001:db8::1", True),           # !v4-list still matches all of v6
    ("[10.0.0.0/8,!10.1.0.0/16]", "10.1.2.3", False),
    ("[10.0.0.0/8,!10.1.0.0/16]", "10.2.2.3", True),
    ("[!1.1.1.1]", "1.1.1.2", True),                   # only negations: everything else
    ("[!1.1.1.1]", "1.1.1.1", False),
    ("![1.1.1.1,[2.2.2.0/24,!2.2.2.2]]", "2.2.2.2", True),   # nested list inside a negation
    ("![1.1.1.1,[2.2.2.0/24,!2.2.2.2]]", "2.2.2.3", False),
    ("2001:db8::/32", "2001:db8:1::1", True),
    ("2001:db8::/32", "2001:db9::1", False),
    ("[2001:db8::1, 10.0.0.1]", "2001:db8::1", True),
    ("1.1.1.1-1.1.1.5", "1.1.1.5", True),
    ("1.1.1.1-1.1.1.5", "1.1.1.6", False),
    ("192.168.1.0/255.255.255.0", "192.168.1.77", True),
])
def test_address_specs(spec, ip, want):
    assert addr(spec).contains(packed(ip)) is want


def test_any_is_flagged_for_grouping():
    assert addr("any").is_any
    assert not addr("$HOME_NET").is_any
    assert addr("[0.0.0.0/0,::/0]").is_any


@pytest.mark.parametrize("spec,reason", [
    ("$NOPE", "undefined address variable '$NOPE'"),
    ("!any", "'!any' in address '!any' matches nothing"),
    ("$LOOP_A", "refers to itself"),
    ("[10.0.0.0/8,!10.0.0.0/8]", "matches nothing"),
    ("10.0.0.300", "invalid address '10.0.0.300'"),
    ("[1.1.1.1", "unbalanced"),
    ("[1.1.1.1,,2.2.2.2]", "empty item"),
])
def test_address_errors(spec, reason):
    with pytest.raises(RuleError, match=reason.replace("$", r"\$").replace("[", r"\[")):
        addr(spec)


def port(spec):
    return PortParser(PVARS).parse(spec)


@pytest.mark.parametrize("spec,p,want", [
    ("any", 0, True),
    ("80", 80, True), ("80", 81, False),
    ("1024:", 1024, True), ("1024:", 1023, False), ("1024:", 65535, True),
    (":1023", 0, True), (":1023", 1024, False),
    ("[80,443,8000:8100]", 8050, True), ("[80,443,8000:8100]", 8101, False),
    ("![80,443]", 443, False), ("![80,443]", 22, True),
    ("[1:100,!50]", 50, False), ("[1:100,!50]", 49, True),
    ("$HTTP_PORTS", 8080, True), ("$SHELLCODE_PORTS", 80, False), ("$SHELLCODE_PORTS", 81, True),
    ("$FILE_DATA_PORTS", 143, True), ("$FILE_DATA_PORTS", 8080, True), ("$FILE_DATA_PORTS", 25, False),
    ("$ORACLE_PORTS", 1521, True),
])
def test_port_specs(spec, p, want):
    assert port(spec).contains(p) is want


def test_port_ranges_for_grouping():
    assert port("any").ranges() is None
    assert port("[80,443,8000:8100,81]").ranges() == [(80, 81), (443, 443), (8000, 8100)]
    assert port("!80").ranges() == [(0, 79), (81, 65535)]


@pytest.mark.parametrize("spec,reason", [
    ("70000", "invalid port '70000'"), ("100:50", "invalid port range"), ("$NOPE", "undefined port variable"),
    ("!any", "matches nothing"), ("http", "invalid port 'http'"),
])
def test_port_errors(spec, reason):
    with pytest.raises(RuleError, match=reason):
        port(spec)


def test_address_index_lookup():
    from netsentry.rules.addresses import AddressIndex
    p = AddressParser(VARS)
    idx = AddressIndex([("a", p.parse("[1.1.1.1,2.2.2.0/24]")), ("b", p.parse("2.2.2.128/25")),
                        ("c", p.parse("2001:db8::/32")), ("d", p.parse("[10.0.0.0/8,!10.1.0.0/16]"))])
    assert idx.lookup(packed("1.1.1.1")) == {"a"}
    assert idx.lookup(packed("1.1.1.2")) == set()
    assert idx.lookup(packed("2.2.2.1")) == {"a"}
    assert idx.lookup(packed("2.2.2.200")) == {"a", "b"}
    assert idx.lookup(packed("2.2.3.0")) == set()
    assert idx.lookup(packed("2001:db8::5")) == {"c"}
    assert idx.lookup(packed("10.1.2.3")) == set() and idx.lookup(packed("10.2.0.0")) == {"d"}
    assert idx.lookup(packed("0.0.0.0")) == set() and idx.lookup(b"") == set()


def test_address_index_agrees_with_matchers():
    import random

    from netsentry.rules.addresses import AddressIndex
    rnd = random.Random(7)
    p = AddressParser({})
    specs = [f"[{','.join(f'{rnd.randrange(256)}.{rnd.randrange(256)}.0.0/{rnd.choice([16, 20, 24])}' for _ in range(5))}]"
             for _ in range(40)]
    matchers = {i: p.parse(s) for i, s in enumerate(specs)}
    idx = AddressIndex(matchers.items())
    hits = 0
    for _ in range(2000):
        m = matchers[rnd.randrange(40)]
        lo, hi = rnd.choice(m.v4)
        n = rnd.choice([lo, hi, hi + 1, lo - 1, rnd.randrange(lo, hi + 1), rnd.randrange(1 << 32)])
        a = (n % (1 << 32)).to_bytes(4, "big")
        want = {i for i, mm in matchers.items() if mm.contains(a)}
        hits += bool(want)
        assert idx.lookup(a) == want
    assert hits > 500          # the sample exercises both hits and misses
