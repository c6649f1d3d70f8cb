"""Rule text -> Signature: header grammar, option splitting, files, errors with file:line sid reason."""

import pytest
from rules_helpers import SV, env, flow, matches, pkt, rule

from netsentry.rules import RuleError, UnsupportedError, load_rules
from netsentry.rules.loader import iter_rule_lines
from netsentry.rules.parser import choose_fast_pattern, parse_rule, split_options, strength


# --- header ---------------------------------------------------------------------------

@pytest.mark.parametrize("action", ["alert", "drop", "reject", "rejectsrc", "rejectdst", "rejectboth", "pass"])
def test_actions(action):
    assert rule("msg:\"x\";", f"{action} tcp any any -> any any").action == action


@pytest.mark.parametrize("proto,ip_proto", [
    ("ip", None), ("tcp", 6), ("udp", 17), ("icmp", 1), ("icmpv6", 58), ("tcp-pkt", 6),
    ("tcp-stream", 6), ("pkthdr", None),
])
def test_packet_protocols(proto, ip_proto):
    sig = rule("msg:\"x\";", f"alert {proto} any any -> any any")
    assert sig.proto == proto and sig.ip_proto == ip_proto


def test_icmp_covers_v4_and_v6_and_stream_flags():
    assert rule("", "alert icmp any any -> any any").ip_protos == (1, 58)
    assert rule("", "alert tcp-pkt any any -> any any").pkt_only
    assert rule("", "alert tcp-stream any any -> any any").needs_stream


@pytest.mark.parametrize("proto", ["rdp", "irc", "imap"])
def test_app_layer_protocols_are_reported_unsupported(proto):
    with pytest.raises(UnsupportedError, match=f"app-layer protocol '{proto}' not supported yet"):
        rule('msg:"x";', f"alert {proto} any any -> any any")


def test_header_errors():
    with pytest.raises(RuleError, match="unknown action 'log'"):
        rule("", "log tcp any any -> any any")
    with pytest.raises(RuleError, match="unknown protocol 'foo'"):
        rule("", "alert foo any any -> any any")
    with pytest.raises(RuleError, match="unknown direction '<-'"):
        rule("", "alert tcp any any <- any any")
    with pytest.raises(RuleError, match="7 fields"):
        rule("", "alert tcp any any -> any")


def test_bidirectional_header_match():
    sig = rule("", "alert tcp 10.0.0.1 1234 <> 10.0.0.2 80")
    assert sig.bidirectional
    assert matches(sig, pkt(src="10.0.0.1", sp=1234, dst="10.0.0.2", dp=80))
    assert matches(sig, pkt(src="10.0.0.2", sp=80, dst="10.0.0.1", dp=1234))
    assert not matches(sig, pkt(src="10.0.0.2", sp=1234, dst="10.0.0.1", dp=80))
    one_way = rule("", "alert tcp 10.0.0.1 1234 -> 10.0.0.2 80")
    assert not matches(one_way, pkt(src="10.0.0.2", sp=80, dst="10.0.0.1", dp=1234))


def test_header_lists_with_spaces_and_variables():
    sig = rule("", "alert tcp [10.0.0.0/8, !10.9.0.0/16] any -> $EXTERNAL_NET [80, 443]")
    assert matches(sig, pkt(src="10.1.1.1", dst="8.8.8.8", dp=443))
    assert not matches(sig, pkt(src="10.9.1.1", dst="8.8.8.8", dp=443))
    assert not matches(sig, pkt(src="10.1.1.1", dst="192.168.1.1", dp=443))
    assert sig.dp.ranges() == [(80, 80), (443, 443)]


# --- option splitting -------------------------------------------------------------------

def test_split_on_unescaped_semicolons_only():
    opts = split_options(r' msg:"a\;b"; content:"x|3b|y"; nocase; sid:5;')
    assert opts == [("msg", r'"a\;b"'), ("content", '"x|3b|y"'), ("nocase", None), ("sid", "5")]


def test_escaped_backslash_before_quote_and_semicolon_like_suricata():
    # An escaped backslash ending a quoted value: the quote, not the backslash, precedes ';'.
    sig = rule(r'content:"a\\\\"; content:"b\\"; sid:7;')
    assert [c.pattern for c in sig.contents] == [b"a\\\\", b"b\\"] and sig.sid == 7
    # Suricata's SigParseOptions skips every ';' right after a backslash, whether or not that
    # backslash is itself escaped, so `\\;` does not end the option there either.
    assert split_options(r'msg:"x\\;y"; sid:1;') == [("msg", r'"x\\;y"'), ("sid", "1")]


def test_unbalanced_quote_in_pcre_splits_like_suricata():
    # ET Open sid 2029732: a quote-tracking splitter would swallow the rest of the rule.
    sig = rule("""content:"method="; nocase; pcre:"/^["']?post/Ri"; classtype:not-suspicious; sid:2029732;""")
    assert sig.sid == 2029732 and sig.classtype == "not-suspicious"
    assert sig.match(pkt(b'<form method="POST">'), flow())
    assert not sig.match(pkt(b"<form method=get>"), flow())


@pytest.mark.parametrize("options,reason", [
    ("foo:bar;", "unknown keyword 'foo'"),
    ("classtype:nope;", "unknown classtype 'nope'"),
    ("msg:\"x\";", None),
    ("sid:0;", "sid: 0 out of range"),
    ("sid:abc;", "sid: invalid number 'abc'"),
    ("nocase;", "'nocase' needs a preceding content"),
    ("content:\"a\"; nocase:1;", "'nocase' takes no value"),
    ("content;", "'content' needs a value"),
    ("target:both;", "target: expected src_ip or dest_ip"),
    ("priority:0;", "priority: 0 out of range"),
    ("sid:1; sid:2;", "'sid' given more than once"),
])
def test_option_errors(options, reason):
    if reason is None:
        rule(options)
        return
    with pytest.raises(RuleError, match=reason):
        rule(options if "sid" in options else options + " sid:7;")


def test_option_without_semicolon():
    with pytest.raises(RuleError, match="without terminating ';'"):
        parse_rule('alert tcp any any -> any any (sid:1; content:"a")', env())


def test_rule_without_sid():
    with pytest.raises(RuleError, match="rule has no sid"):
        parse_rule('alert tcp any any -> any any (msg:"x";)', env())


def test_error_carries_file_line_sid():
    with pytest.raises(RuleError) as ei:
        parse_rule('alert tcp any any -> any any (msg:"x"; bogus; sid:42;)', env(), "a.rules", 17)
    e = ei.value
    assert (e.file, e.line, e.sid, e.reason) == ("a.rules", 17, 42, "unknown keyword 'bogus'")
    assert str(e) == "a.rules:17 sid 42: unknown keyword 'bogus'"


def test_unsupported_features_are_all_listed():
    with pytest.raises(UnsupportedError) as ei:
        rule('flow:established; pop3.command; content:"/a"; imap.command; content:"b"; sid:3;',
             "alert rdp any any -> any any")
    assert ei.value.reason == "app-layer protocol 'rdp' not supported yet"
    assert ei.value.features == ["app-layer protocol 'rdp' not supported yet",
                                 "app-layer buffer 'pop3.command' not supported yet",
                                 "app-layer buffer 'imap.command' not supported yet"]


def test_app_layer_buffer_in_tcp_rule():
    """A sticky buffer, a legacy modifier or a pcre buffer flag makes a tcp rule an HTTP
    transaction rule (Suricata infers the protocol from the buffer)."""
    for text in ('http.uri; content:"/x";', 'content:"/x"; http_uri;', 'pcre:"/x/U";', 'uricontent:"/x";'):
        sig = rule(text)
        assert sig.tx_rule and sig.app_proto == "http"
        assert [name for name, _, _ in sig.tx_chains] == ["http.uri"]
        assert sig.payload_chain is None

def test_pkt_data_returns_to_the_payload():
    sig = rule('content:"abc"; pkt_data; content:"def"; distance:0;')
    assert sig.match(pkt(b"abcdef"), None)


# --- fast pattern -------------------------------------------------------------------------

def test_fast_pattern_explicit_longest_and_strength():
    assert rule('content:"aaaa"; content:"bb"; fast_pattern;').fast_pattern.pattern == b"bb"
    assert rule('content:"aaaa"; content:"bbbbbb";').fast_pattern.pattern == b"bbbbbb"
    # equal length: higher pattern strength wins ("abcd" > "aaaa"); negated never
    assert rule('content:"aaaa"; content:"abcd";').fast_pattern.pattern == b"abcd"
    assert rule('content:!"longer-one"; content:"ab";').fast_pattern.pattern == b"ab"
    assert rule('content:!"abc";').fast_pattern is None
    assert rule('dsize:>5;').fast_pattern is None


def test_fast_pattern_only_and_chop():
    fp = rule('content:"hello world"; fast_pattern:6,5; nocase;').fast_pattern
    assert fp.fp_bytes == b"world" and fp.nocase and fp.buffer == "pkt_data"
    only = rule('content:"xyz"; fast_pattern:only;').fast_pattern
    assert only.fast_pattern_only and only.pattern == b"xyz"
    with pytest.raises(RuleError, match="past the end"):
        rule('content:"abc"; fast_pattern:2,5;')
    with pytest.raises(RuleError, match="only one content"):
        rule('content:"abc"; fast_pattern; content:"def"; fast_pattern;')


def test_strength_scores_like_suricata():
    assert strength(b"aaaa") == 3 + 1 + 1 + 1
    assert strength(b"a1\x90") == 3 + 4 + 6
    assert choose_fast_pattern([]) is None


# --- files --------------------------------------------------------------------------------

def test_multiline_rules_comments_duplicates(tmp_path):
    f = tmp_path / "t.rules"
    f.write_text(
        "# a comment\n"
        "\n"
        'alert tcp any any -> any any (msg:"one"; \\\n'
        '    content:"abc"; \\\n'
        "    sid:1; rev:1;)\n"
        '# alert tcp any any -> any any (msg:"disabled"; sid:2;)\n'
        'alert tcp any any -> any any (msg:"bad"; nocase; sid:3;)\n'
        'alert tcp any any -> any any (msg:"dup"; sid:1; rev:1;)\n'
        'alert tcp any any -> any any (msg:"newer"; sid:4; rev:1;)\n'
        'alert tcp any any -> any any (msg:"newer"; sid:4; rev:2;)\n'
        'alert rdp any any -> any any (msg:"app"; sid:5;)\n'
    )
    rs = load_rules([f], {})
    assert [(s.sid, s.rev, s.line) for s in rs.signatures] == [(1, 1, 3), (4, 2, 10)]
    assert rs.signatures[0].msg == "one" and rs.signatures[0].fast_pattern.pattern == b"abc"
    reasons = [(e.line, e.sid, e.reason) for e in rs.errors]
    assert reasons[0] == (7, 3, "'nocase' needs a preceding content")
    assert reasons[1][:2] == (8, 1) and "duplicate sid 1" in reasons[1][2]
    assert reasons[2][:2] == (9, 4) and "replaced rev 1" in reasons[2][2]
    assert reasons[3] == (11, 5, "app-layer protocol 'rdp' not supported yet")
    assert len(rs.duplicates) == 2
    st = rs.files[0]
    assert (st.loaded, st.skipped, st.commented) == (2, 4, 1)


def test_missing_file_is_an_error_not_a_crash(tmp_path):
    rs = load_rules([tmp_path / "nope.rules"], {})
    assert rs.signatures == [] and "cannot read rules file" in rs.errors[0].reason


def test_classification_from_config(tmp_path):
    (tmp_path / "c.config").write_text("config classification: my-class,Mine,2\n")
    (tmp_path / "r.rules").write_text('alert tcp any any -> any any (classtype:my-class; sid:1;)\n')
    rs = load_rules([tmp_path / "r.rules"], {"classification-file": str(tmp_path / "c.config")})
    assert rs.signatures[0].severity == 2 and rs.signatures[0].class_description == "Mine"


def test_vars_from_config(tmp_path):
    (tmp_path / "r.rules").write_text("alert tcp $MY_NET any -> any $MY_PORTS (sid:1;)\n")
    cfg = {"vars": {"address-groups": {"MY_NET": "10.9.0.0/16"}, "port-groups": {"MY_PORTS": 8443}}}
    sig = load_rules([tmp_path / "r.rules"], cfg).signatures[0]
    assert matches(sig, pkt(src="10.9.1.1", dp=8443)) and not matches(sig, pkt(src="10.8.1.1", dp=8443))


def test_iter_rule_lines_joins_continuations():
    assert list(iter_rule_lines("a \\\nb\n\nc\n")) == [(1, "a b"), (4, "c")]


# --- suricata-verify rules as parse tests ----------------------------------------------

def _sv_rule_files():
    if not SV.is_dir():
        return []
    return sorted(SV.glob("tests/*/*.rules"))


@pytest.mark.shared
def test_suricata_verify_rules_parse():
    files = _sv_rule_files()
    if not files:
        pytest.skip("../shared/suricata-verify is not present (fresh clone)")
    cfg = {"classification-file": str(SV / "etc" / "classification.config")}
    loaded, hard = 0, []
    for f in files:    # one ruleset per test: sids repeat across tests
        rs = load_rules([f], cfg)
        loaded += len(rs.signatures)
        hard += [str(e) for e in rs.errors if not isinstance(e, UnsupportedError)]
    assert loaded >= 80
    assert hard == []


def test_non_utf8_bytes_in_a_rules_file(tmp_path):
    f = tmp_path / "latin1.rules"
    f.write_bytes(b'alert tcp any any -> any any (msg:"caf\xe9"; content:"caf\xe9"; sid:1;)\n')
    rs = load_rules([f], {})
    sig = rs.signatures[0]
    assert sig.msg == "caf\ufffd"                        # valid text for EVE
    assert sig.fast_pattern.pattern == b"caf\xe9"        # the byte itself for matching
    assert sig.match(pkt(b"un caf\xe9"), None)


def test_reason_with_non_utf8_bytes_prints(tmp_path):
    f = tmp_path / "bad.rules"
    f.write_bytes(b'alert tcp any any -> any any (content:"\xe9\\x"; sid:1;)\n')
    err = load_rules([f], {}).errors[0]
    assert "invalid escape" in err.reason
    err.reason.encode("utf-8")          # printable / JSON-safe


# --- hostile rule text (issue #14) --------------------------------------------------------

@pytest.mark.parametrize("options", [
    'msg:"oops; content:"GET"; sid:1;',          # the quote opened by msg never closes before its ';'
    'msg:"; sid:1;',                             # a lone quote
    'content:!"abc; sid:1;',                     # negated, still unclosed
])
def test_unterminated_quote_is_rejected_like_suricata(options):
    with pytest.raises(RuleError, match="possible missing semicolon"):
        parse_rule(f"alert tcp any any -> any any ({options})", env(), "t.rules", 3)


def test_quote_inside_a_quoted_value_still_loads():
    sig = rule('content:"post"; pcre:"/^["\']?post/Ri"; sid:2029732;')
    assert sig.sid == 2029732
    assert rule('msg:"a \\"quoted\\" word\\; and more"; sid:5;').msg == 'a "quoted" word; and more'


@pytest.mark.parametrize("options,reason", [
    ("sid:0x10;", "sid: invalid number '0x10'"),
    ("sid:1_000;", "sid: invalid number '1_000'"),
    ("sid:+5;", "sid: invalid number"),
    ("sid:\u0661\u0662;", "sid: invalid number"),                # Arabic-Indic digits: int() takes them
    ("sid:1; rev:0x2;", "rev: invalid number"),
    ("sid:1; priority:0x1;", "priority: invalid number"),
    ("ttl:1_0; sid:1;", "ttl: invalid"),
    ("sid:1; threshold:type limit,track by_src,count 0x5,seconds 60;", "count: invalid number"),
    ("byte_test:1,=,1_0,0; sid:1;", "byte_test value: invalid number"),
])
def test_numbers_are_decimal_as_suricata(options, reason):
    with pytest.raises(RuleError, match=reason):
        parse_rule(f"alert tcp any any -> any any ({options})", env(), "t.rules", 1)


def test_hex_stays_where_suricata_reads_base_0():
    assert rule("byte_test:1,=,0x41,0; sid:7;").sid == 7
    assert rule("ttl:0x10; sid:8;").sid == 8


def test_form_feed_does_not_split_a_rule_or_shift_line_numbers(tmp_path):
    f = tmp_path / "ff.rules"
    f.write_text('alert tcp any any -> any any (msg:"a\fb"; sid:1;)\n'
                 'alert tcp any any -> any any (msg:"x"; \fcontent:"y"; sid:2;)\n'
                 'alert tcp any any -> any any (msg:"line 3"; bogus; sid:3;)\n'
                 'alert tcp any any -> any any (msg:"v\vw\x1cz"; sid:4;)\n'
                 'alert tcp any any -> any any (msg:"bad"; sid:0x5;)\n')
    rs = load_rules([f])
    assert [s.sid for s in rs.signatures] == [1, 4]
    assert rs.signatures[0].msg == "a\fb"
    lines = sorted((e.line, e.sid) for e in rs.errors)
    assert lines == [(2, 2), (3, 3), (5, None)], [str(e) for e in rs.errors]
    assert any("unknown keyword" in str(e) and e.line == 2 for e in rs.errors)
    assert list(iter_rule_lines("a\fb\nc\rd\n")) == [(1, "a\fb"), (2, "c\rd")]
