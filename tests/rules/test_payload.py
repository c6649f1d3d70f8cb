"""Payload keywords: content chains with Suricata's relative semantics, pcre, isdataat, dsize, bsize."""

import pytest
from rules_helpers import flow, matches, payload_matches, pkt, rule

from netsentry.rules import RuleError, UnsupportedError
from netsentry.rules.keywords.payload import parse_content_string

M = payload_matches


# --- content string syntax ------------------------------------------------------------

@pytest.mark.parametrize("text,want", [
    ("abc", b"abc"),
    ("|41 42|c", b"ABc"),
    ("a|0d0a|b", b"a\r\nb"),
    (r"a\;b\"c\\d\:", b'a;b"c\\d:'),
    ("|00|", b"\x00"),
    ("caf\u00e9", "caf\u00e9".encode()),
])
def test_content_string(text, want):
    assert parse_content_string(text) == want


@pytest.mark.parametrize("text,reason", [
    ("|4|", "odd number of hex digits"), ("|4g|", "invalid hex character 'g'"),
    ("|41", "unterminated hex"), (r"a\x", r"invalid escape '\\x'"),
])
def test_content_string_errors(text, reason):
    with pytest.raises(RuleError, match=reason):
        parse_content_string(text)


# --- content and modifiers ---------------------------------------------------------------

def test_plain_negated_and_nocase_with_hex():
    assert M('content:"abc";', b"xxabcxx")
    assert not M('content:"abc";', b"xxABCxx")
    assert M('content:"|41 42|c"; nocase;', b"xxabCxx")           # nocase applies to hex bytes too
    assert M('content:!"evil";', b"good")
    assert not M('content:!"evil";', b"so evil")
    assert M('content:!"x";', b"")                                 # negated on an empty buffer


def test_empty_payload_never_matches_positive_content():
    assert not M('content:"a";', b"")


@pytest.mark.parametrize("opts,data,want", [
    ('content:"abc"; offset:2;', b"xxabc", True),
    ('content:"abc"; offset:3;', b"xxabc", False),
    ('content:"abc"; depth:3;', b"abcxx", True),
    ('content:"abc"; depth:4;', b"xxabc", False),
    ('content:"abc"; offset:2; depth:3;', b"xxabc", True),       # depth counts from offset
    ('content:"abc"; offset:2; depth:3;', b"xxxabc", False),
    ('content:"abc"; depth:3; offset:2;', b"xxabc", True),       # order of modifiers is irrelevant
    ('content:"abc"; offset:10;', b"xxabc", False),              # offset past the end
    ('content:!"abc"; offset:10;', b"xxabc", True),              # ...negated: matches
    ('content:"abc"; offset:3; depth:50;', b"xxxabc", True),     # depth past the end is clipped
    ('content:"abc"; startswith;', b"abcxx", True),
    ('content:"abc"; startswith;', b"xabc", False),
    ('content:"abc"; endswith;', b"xxabc", True),
    ('content:"abc"; endswith;', b"abcx", False),
    ('content:"abc"; endswith;', b"abcxabc", True),              # a later occurrence ends the buffer
    ('content:"abc"; startswith; endswith;', b"abc", True),
    ('content:"abc"; startswith; endswith;', b"abcabc", False),
])
def test_absolute_positions(opts, data, want):
    assert M(opts, data) is want


@pytest.mark.parametrize("opts,data,want", [
    ('content:"a"; content:"b"; distance:0;', b"ab", True),
    ('content:"a"; content:"b"; distance:0;', b"ba", False),
    ('content:"a"; content:"b"; distance:1;', b"ab", False),
    ('content:"a"; content:"b"; distance:1;', b"axb", True),
    ('content:"a"; content:"b"; within:1;', b"ab", True),
    ('content:"a"; content:"b"; within:1;', b"axb", False),
    # within counts from where distance puts the start (Suricata: prev + distance + within)
    ('content:"AllWorkAndNoPlayMakesWill"; content:"DullBoy"; distance:1; within:7;',
     b"AllWorkAndNoPlayMakesWill DullBoy", True),
    ('content:"a"; content:"b"; distance:-2; within:3;', b"bxa", False),
    ('content:"xa"; content:"x"; distance:-2; within:2;', b"yxa", True),    # negative distance
    ('content:"a"; content:"b"; distance:-5;', b"ba", True),               # clipped to buffer start
])
def test_relative_positions(opts, data, want):
    assert M(opts, data) is want


def test_relative_backtracking_tries_later_occurrences():
    # The first "a" is followed by "c"; Suricata's recursion retries from the next "a".
    opts = 'content:"a"; content:"b"; within:1;'
    assert M(opts, b"ac ab")
    # three-deep chain: only the last "k" leads to a full match
    opts3 = 'content:"k"; content:"v"; distance:0; within:2; content:"!"; distance:0; within:1;'
    assert M(opts3, b"k1v? k2v? kxv!")
    assert not M(opts3, b"k1v? k2v? kxvv!")


def test_negated_relative_content():
    opts = 'content:"user"; content:!"root"; distance:1; within:4;'
    assert M(opts, b"user alice")
    assert not M(opts, b"user root")
    assert M(opts, b"user root user bob")        # retry: the second "user" is not followed by root
    assert M(opts, b"user xxxxroot")             # root outside the window


def test_isdataat():
    assert M('content:"ab"; isdataat:2,relative;', b"abxy")
    assert not M('content:"ab"; isdataat:3,relative;', b"abxy")
    assert M('content:"ab"; isdataat:!3,relative;', b"abxy")
    assert M('isdataat:3;', b"abcd") and not M('isdataat:4;', b"abcd")
    assert M('isdataat:!4;', b"abcd")
    # retry at a later occurrence does not help: the next one has even less data after it
    assert not M('content:"a"; isdataat:5,relative;', b"a12 a")
    assert M('content:"a"; isdataat:5,relative;', b"a12345")


def test_dsize_and_bsize():
    assert rule("dsize:>3;").match(pkt(b"abcd"), None)
    assert not rule("dsize:>3;").match(pkt(b"abc"), None)
    assert rule("dsize:2<>5;").match(pkt(b"abc"), None)
    assert not rule("dsize:2<>5;").match(pkt(b"ab"), None)     # exclusive range
    assert rule("dsize:!0;").match(pkt(b"a"), None)
    assert rule("dsize:3;").pkt_only
    assert M('content:"a"; bsize:4;', b"abcd") and not M('content:"a"; bsize:4;', b"abc")


@pytest.mark.parametrize("opts,reason", [
    ('content:"abcd"; depth:3;', "depth 3 is smaller than the content length 4"),
    ('content:"abcd"; content:"x"; within:0;', "within 0 is smaller than the content length 1"),
    ('content:"a"; depth:2; distance:1;', "can't use a relative keyword like 'distance'"),
    ('content:"a"; within:2; offset:1;', "can't use an absolute keyword like 'offset'"),
    ('content:"a"; startswith; offset:1;', "cannot be mixed with startswith"),
    ('content:"a"; nocase; nocase;', "'nocase' given twice"),
    ('content:"";', "empty pattern"),
    ('content:abc;', "must be in double quotes"),
    ('content:"a"; depth:0;', "depth: 0 is not allowed"),
    ('isdataat:1,foo;', "isdataat: unknown option 'foo'"),
    ('content:"a"; depth:nope;', "unknown variable 'nope'"),
])
def test_content_errors(opts, reason):
    with pytest.raises(RuleError, match=reason):
        rule(opts)


# --- pcre ------------------------------------------------------------------------------

def test_pcre_flags_and_relative():
    assert M('pcre:"/a.c/";', b"xabc")
    assert not M('pcre:"/a.c/";', b"xa\nc")
    assert M('pcre:"/a.c/s";', b"xa\nc")
    assert M('pcre:"/ABC/i";', b"xabc")
    assert M('pcre:"/^b$/m";', b"a\nb\nc")
    assert M('pcre:"/a b c/x";', b"abc")
    assert M('pcre:!"/evil/";', b"good") and not M('pcre:!"/evil/";', b"evil")
    # R: anchored at the end of the previous match; ^ means "right after it"
    assert M('content:"GET "; pcre:"/^\\/index/R";', b"GET /index")
    assert not M('content:"GET "; pcre:"/^\\/index/R";', b"GET x/index")
    # content relative to a pcre match
    assert M('pcre:"/id=\\d+/"; content:"&"; within:1;', b"id=12&x")
    assert not M('pcre:"/id=\\d+/"; content:"&"; within:1;', b"id=12x&")


def test_pcre_backtracks_like_content():
    # first "k=" is followed by letters; the retry at the next pcre match succeeds
    assert M('pcre:"/k=/"; content:"1"; within:1;', b"k=a k=1")


def test_pcre_lookbehind_branches_of_different_lengths():
    # PCRE accepts (?<!a|bc); Python needs one fixed width per look-behind (ET Open sid 2030348)
    assert M('pcre:"/(?<!a|bc)x/";', b"cx") and not M('pcre:"/(?<!a|bc)x/";', b"bcx")
    assert M('pcre:"/(?<=a|bc)x/";', b"bcx") and not M('pcre:"/(?<=a|bc)x/";', b"cx")


def test_pcre_unbalanced_quote_and_translations():
    assert M("""pcre:"/^["']?post/i";""", b"'POST")
    assert M('pcre:"/(?<word>ab)\\k<word>/";', b"abab")
    assert M('pcre:"/[[:digit:]]{3}\\z/";', b"x123")
    assert not M('pcre:"/[[:digit:]]{3}\\z/";', b"x123\n")
    assert M('pcre:"/[[:digit:]]{3}\\Z/";', b"x123\n")      # PCRE \\Z allows a final newline
    assert M('pcre:"/a(?i)b/";', b"aB") and not M('pcre:"/a(?i)b/";', b"AB")


@pytest.mark.parametrize("opts,exc,reason", [
    ('http.uri; pcre:"/x/H";', RuleError, "pcre flag 'H' cannot be used with the sticky buffer 'http.uri'"),
    ('pcre:"/(?<=a+)x/";', UnsupportedError, "look-behind requires fixed-width"),
    ('pcre:"/a(?R)?b/";', UnsupportedError, "recursion"),
    ('pcre:"/a\\Kb/";', UnsupportedError, "\\\\K"),
    ('pcre:"/x/q";', RuleError, "unknown flag 'q'"),
    ('pcre:"x";', RuleError, "expected"),
])
def test_pcre_rejections(opts, exc, reason):
    with pytest.raises(exc, match=reason):
        rule(opts)


def test_prefilter_is_only_a_hint():
    # a packet containing the fast pattern but failing the rest must not match
    sig = rule('content:"needle"; fast_pattern; content:"hay"; distance:0;')
    assert sig.fast_pattern.pattern == b"needle"
    assert not sig.match(pkt(b"hay needle"), flow())
    assert sig.match(pkt(b"needle hay"), flow())


def test_recursion_limit_bounds_hostile_payloads():
    # Many candidate anchors, a chain that never completes: must terminate (and fail).
    opts = 'content:"a"; content:"a"; distance:0; content:"a"; distance:0; content:"b"; distance:0; within:1;'
    assert not M(opts, b"a" * 3000)


def test_negated_endswith_means_does_not_end_with():
    opts = 'content:!".google.com"; endswith;'
    assert M(opts, b"www.example.com")
    assert not M(opts, b"www.google.com")
    assert M(opts, b"www.google.com.evil.net")        # present, but not at the end
    assert M('content:"GET"; content:!"x"; distance:0; endswith;', b"GET abc")
    assert not M('content:"GET"; content:!"c"; distance:0; endswith;', b"GET abc")


@pytest.mark.parametrize("opts, plen, want", [
    ("dsize:!9;", 10, True),
    ("dsize:!9;", 0, False),        # Suricata: !N requires a payload
    ("dsize:>=0;", 0, False),       # so do >, >= and ranges
    ("dsize:>=0;", 1, True),
    ("dsize:<10;", 0, True),        # < and <= include the empty packet
    ("dsize:0;", 0, True),
    ("dsize:!1-5;", 0, True),       # a negated range does not require one
])
def test_dsize_payload_requirement_as_suricatas_signature_mask(opts, plen, want):
    assert rule(opts).match(pkt(b"x" * plen), None) is want


@pytest.mark.parametrize("bad", [
    "xor:extract 0 0", "xor:extract 1", 'xor:offset abc,"42"', "xor:offset 1", 'xor:""',
    'pcrexform:"abc"', "from_base64:mode nope", "from_base64:bytes 3, bytes 4", "gunzip:max-size 0",
    "zlib_deflate:size 3"])
def test_transform_options_are_checked(bad: str) -> None:
    # Suricata refuses these at load time (detect-xor-key-04..11 style); so do we, with the reason
    with pytest.raises(RuleError):
        rule(f"http.uri; {bad}; content:\"x\";", "alert http any any -> any any")


@pytest.mark.parametrize("good", [
    "xor:offset   1,  extract 1 0", 'xor:offset 2,"0d0a"', "xor:extract 4 0", 'pcrexform:"a(b)c"',
    "from_base64", "from_base64: bytes 6, offset 6, mode rfc2045", "gunzip", "zlib_deflate:max-size 1KiB"])
def test_transform_options_accepted(good: str) -> None:
    assert rule(f"http.uri; {good}; content:\"x\";", "alert http any any -> any any").tx_rule


@pytest.mark.parametrize("options", ['to_lowercase; content:"get";', 'pkt_data; to_md5; content:"x";',
                                     'content:"a"; pkt_data; subslice:1; content:"b";'])
def test_transform_on_the_payload_is_a_rule_error(options):
    # Suricata (SCDetectSignatureAddTransform): transforms must directly follow a sticky
    # buffer; the packet payload is none, so the rule is invalid, not merely unsupported
    with pytest.raises(RuleError, match="must directly follow a sticky buffer"):
        rule(options + " sid:1;")


def test_transform_on_a_packet_header_buffer_applies():
    # packet buffers (ipv4.hdr, udp.hdr, ...) are sticky buffers: transforms apply to them
    # (the items once vanished when the buffer had a transform: the rule matched anything)
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    from netsentry.decode import Decoder
    p = Decoder().decode(bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / b"x"), 1)
    ip_rule = "alert ip any any -> any any"
    assert matches(rule('ipv4.hdr; subslice:9,1; content:"|11|"; bsize:1; sid:1;', ip_rule), p)
    assert not matches(rule('ipv4.hdr; subslice:9,1; content:"|06|"; sid:1;', ip_rule), p)
    assert matches(rule('udp.hdr; to_md5; bsize:16; sid:1;', ip_rule), p)
    assert not matches(rule('udp.hdr; to_md5; bsize:15; sid:1;', ip_rule), p)
    assert matches(rule('udp.hdr; xor:"ff"; content:"|ff fe ff fd|"; depth:4; sid:1;', ip_rule), p)
