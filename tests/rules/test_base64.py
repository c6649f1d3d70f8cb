"""base64_decode / base64_data: decoding inside a buffer, as Suricata's content inspection does."""

import base64

import pytest
from rules_helpers import flow, pkt, rule

from netsentry.rules import RuleError


def m(options: str, payload: bytes) -> bool:
    return rule(options).match(pkt(payload), flow())


B64 = base64.b64encode(b"thisisatest").decode()         # dGhpc2lzYXRlc3Q=


def test_relative_offset_and_bytes_decode_after_the_previous_match():
    payload = f"GET /?arg={B64} HTTP/1.0".encode()
    assert m('content:"arg"; base64_decode:bytes 17, offset 1, relative; base64_data; content:"thisisatest";',
             payload)
    # 10 bytes decode to "thisisa": the tail is not there
    assert not m('content:"arg"; base64_decode:bytes 10, offset 1, relative; base64_data; content:"test";',
                 payload)
    assert not m('content:"arg"; base64_decode:bytes 17, offset 1, relative; base64_data; content:"toast";',
                 payload)


def test_decoded_buffer_offsets_count_from_its_own_start():
    payload = b"xx=" + base64.b64encode(b"\x00\x01PSObject")
    assert m('content:"="; base64_decode:relative; base64_data; content:"|00 01|"; depth:2; '
             'content:"PSObject"; distance:0;', payload)
    assert m('content:"="; base64_decode:relative; base64_data; content:"|00 01|"; startswith;', payload)
    assert not m('content:"="; base64_decode:relative; base64_data; content:"PSObject"; startswith;', payload)


def test_decoding_stops_at_the_first_byte_outside_the_alphabet():
    payload = b"k=" + base64.b64encode(b"first") + b"!" + base64.b64encode(b"second")
    assert m('content:"k="; base64_decode:relative; base64_data; content:"first";', payload)
    assert not m('content:"k="; base64_decode:relative; base64_data; content:"second";', payload)


def test_nothing_decoded_or_offset_past_the_end_is_no_match():
    assert not m('content:"k="; base64_decode:relative; base64_data; content:!"x";', b"k=!!!!")
    assert not m('content:"k="; base64_decode:offset 10, relative; base64_data; content:!"x";', b"k=QUJD")
    assert m('content:"k="; base64_decode:relative; base64_data; content:!"x";', b"k=QUJD")


def test_relative_decode_retries_the_next_occurrence_of_its_anchor():
    payload = b"k=!!!! k=" + base64.b64encode(b"secret")
    assert m('content:"k="; base64_decode:relative; base64_data; content:"secret";', payload)


def test_decoded_contents_are_never_the_fast_pattern():
    sig = rule('content:"k="; base64_decode:relative; base64_data; content:"a-much-longer-pattern";')
    assert sig.fast_pattern is not None and sig.fast_pattern.pattern == b"k="
    sig = rule('http.cookie; content:"k="; base64_decode:relative; base64_data; content:"a-longer-one";',
               "alert http any any -> any any")
    assert sig.tx_fast_pattern.pattern == b"k="


@pytest.mark.parametrize("options,error", [
    ('content:"a"; base64_data; content:"b";', "needs a base64_decode before it"),
    ('content:"a"; base64_decode:bytes x; base64_data; content:"b";', "invalid number"),
    ('content:"a"; base64_decode:bytes 0; base64_data; content:"b";', "out of range"),
    ('content:"a"; base64_decode:relative, relative; base64_data; content:"b";', "given twice"),
    ('content:"a"; base64_decode:depth 3; base64_data; content:"b";', "bad option"),
    ('base64_decode:relative; base64_data; content:"b";', "needs a preceding content"),
    ('content:"a"; base64_decode; base64_data; to_lowercase; content:"b";', "cannot apply to base64_data"),
])
def test_bad_options_are_rule_errors(options, error):
    with pytest.raises(RuleError, match=error):
        rule(options)


def test_a_pickled_rule_matches_after_its_chain_was_wired():
    # the rule cache pickles signatures; the decoded list's chain is rebuilt on first use
    import pickle
    sig = rule('content:"k="; base64_decode:relative; base64_data; content:"secret";')
    payload = b"k=" + base64.b64encode(b"secret")
    assert sig.match(pkt(payload), flow())               # wires the chain
    again = pickle.loads(pickle.dumps(sig))
    assert again.match(pkt(payload), flow()) and not again.match(pkt(b"k=" + base64.b64encode(b"other")), flow())
