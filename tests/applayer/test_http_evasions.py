"""HTTP/1 evasions as libhtp-rs normalises them (suricata-verify http-evader-*): header
blocks (httpheaders.py), layered and lzma Content-Encoding, odd response framing, and the
hashes of files past the body limit."""

from __future__ import annotations

import gzip
import hashlib
import lzma
import zlib

import pytest

from netsentry.applayer import files as files_mod
from netsentry.applayer.files import http_files
from netsentry.applayer.http import HttpParser, configure
from netsentry.applayer.httpheaders import (DEFORMED_EOL, FOLDING, MISSING_COLON, NULL_TERMINATED, Incomplete,
                                            parse_headers)
from netsentry.detect.txdetect import get_buffer

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
REQ = b"GET /eicar.txt HTTP/1.1\r\nHost: evader.example.com\r\n\r\n"
HEAD = b"HTTP/1.1 200 ok\r\nContent-type: application/octet-stream\r\nConnection: close\r\n"


def respond(response: bytes, limits: dict | None = None, split: int = 0) -> HttpParser:
    p = HttpParser(limits)
    p.parse(REQ, True)
    if split:
        for i in range(0, len(response), split):
            p.parse(response[i:i + split], False)
    else:
        p.parse(response, False)
    p.eof(False)
    return p


def file_data(p: HttpParser) -> bytes:
    value = get_buffer(p.txs[0], "file.data", (), False)
    return value[0] if value else b""


def chunked(data: bytes, size: int = 4) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + size]), data[i:i + size])
                    for i in range(0, len(data), size)) + b"0\r\n\r\n"


# --- the header block parser -------------------------------------------------------------------

def test_plain_headers_and_the_end_of_the_block():
    used, hdrs, eoh = parse_headers(b"A: 1\r\nB:2\r\n\r\nbody", False)
    assert eoh and used == 13 and [(n, v) for n, v, _ in hdrs] == [(b"A", b"1"), (b"B", b"2")]


def test_a_name_folded_over_a_line_end_and_a_space():
    # "Transfer-Encoding\r\n :chunked": the name runs on to the colon (http-evader-298)
    used, hdrs, eoh = parse_headers(b"Transfer-Encoding\r\n :chunked\r\nX: y\r\n\r\n", True)
    assert eoh and hdrs[0][:2] == (b"Transfer-Encoding", b"chunked") and hdrs[1][:2] == (b"X", b"y")


def test_a_nul_after_a_line_end_folds_the_value():
    _, hdrs, _ = parse_headers(b"Content-Encoding:\n\x00gzip\r\nX: y\r\n\r\n", True)
    assert hdrs[0][:2] == (b"Content-Encoding", b"gzip") and hdrs[0][2] & FOLDING


def test_a_folded_value_joins_with_the_folding_character():
    _, hdrs, _ = parse_headers(b"A: one\r\n\ttwo\r\n\r\n", False)
    assert hdrs[0][1] == b"one\ttwo"


def test_deformed_line_ends_of_a_response():
    # "\n\r\r\n" ends a line, then CRLF ends the block (http-evader-410)
    data = b"Content-length: 68\n\r\r\nX5O!"
    used, hdrs, eoh = parse_headers(data, True)
    assert eoh and data[used:] == b"X5O!" and hdrs[0][1] == b"68"
    # an empty fold: "\n \n\n" ends the value, then LF ends the block (http-evader-423)
    data = b"Content-length: 88\n \n\n\x1f\x8b"
    used, hdrs, eoh = parse_headers(data, True)
    assert eoh and data[used:] == b"\x1f\x8b" and hdrs[0][1] == b"88"
    _, hdrs, _ = parse_headers(b"A: 1\r\n\r\r\nB: 2\r\n\r\n", True)
    assert hdrs[0][2] & DEFORMED_EOL


def test_a_line_without_colon_is_flagged():
    _, hdrs, eoh = parse_headers(b"A: 1\r\nnot a header\r\n\r\n", False)
    assert eoh and hdrs[1][0] == b"" and hdrs[1][2] & MISSING_COLON == MISSING_COLON


def test_the_parser_waits_for_the_byte_after_a_line_end():
    with pytest.raises(Incomplete):
        parse_headers(b"A: 1\r\n", False)              # a space next would fold
    used, hdrs, eoh = parse_headers(b"A: 1\r\nB: 2\r\n", False)
    assert not eoh and used == 6 and len(hdrs) == 1


def test_a_lone_cr_ends_a_response_line_only():
    _, resp, _ = parse_headers(b"A: 1\rB: 2\r\n\r\n", True)
    _, req, _ = parse_headers(b"A: 1\rB: 2\r\n\r\n", False)
    assert [h[:2] for h in resp] == [(b"A", b"1"), (b"B", b"2")] and req[0][:2] == (b"A", b"1\rB: 2")


def test_null_terminated_header_is_not_flagged_in_a_value():
    _, hdrs, _ = parse_headers(b"A: x\x00y\r\n\r\n", False)
    assert hdrs[0][1] == b"x\x00y" and not hdrs[0][2] & NULL_TERMINATED


# --- the parser on whole responses -------------------------------------------------------------

@pytest.mark.parametrize("te", [b"Transfer-Encoding\n :chunked", b"Transfer-Encoding\r :chunked",
                                b"Transfer-Encoding\r\n :chunked", b"Transfer-Encoding\r\n :\r\n chunked",
                                b"Transfer-Encoding\r\n \r\n :\r\n chunked", b"Transfer-Encoding:\n\x00chunked"])
@pytest.mark.parametrize("split", [0, 7])
def test_folded_transfer_encoding_still_frames_the_body(te, split):
    p = respond(HEAD + te + b"\r\nYet-another-header: foo\r\n\r\n" + chunked(EICAR), split=split)
    assert file_data(p) == EICAR


@pytest.mark.parametrize("end", [b"\n\r\r\n", b"\n \n\n", b"\n\t\n\n"])
def test_odd_header_block_ends_with_gzip(end):
    body = gzip.compress(EICAR)
    p = respond(HEAD + b"Content-Encoding: gzip\r\nContent-length: %d" % len(body) + end + body)
    assert file_data(p) == EICAR


def test_a_nul_before_the_status_line():
    p = respond(b"\x00" + HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(EICAR))
    assert p.txs[0].status == b"200" and file_data(p) == EICAR


@pytest.mark.parametrize("status", [b"204", b"304", b"102"])
def test_a_no_body_status_with_a_body_announced_has_one(status):
    head = HEAD.replace(b"200", status)
    p = respond(head + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(EICAR))
    assert file_data(p) == EICAR
    q = respond(head + b"\r\n")
    assert q.txs[0].done[0] and file_data(q) == b""


def _layers(data: bytes, codings: list[str]) -> bytes:
    for c in codings:
        if c == "gzip":
            data = gzip.compress(data)
        elif c == "deflate":
            co = zlib.compressobj(wbits=-15)
            data = co.compress(data) + co.flush()
        else:
            data = lzma.compress(data, format=lzma.FORMAT_ALONE)
    return data


@pytest.mark.parametrize("header", [b"Content-Encoding: gzip,deflate,gzip\r\n",
                                    b"Content-Encoding: gzip\r\nContent-Encoding: deflate\r\nContent-Encoding: gzip\r\n"])
def test_three_layers_decode_with_the_libhtp_layer_limit_raised(header):
    body = _layers(EICAR, ["gzip", "deflate", "gzip"])
    response = HEAD + header + b"Content-Length: %d\r\n\r\n" % len(body) + body
    three = configure({"app-layer": {"protocols": {"http": {"libhtp": {"default-config": {
        "response-body-decompress-layer-limit": 3}}}}}})
    assert file_data(respond(response, three)) == EICAR
    assert file_data(respond(response)) != EICAR           # the default limit is 2 layers


def test_lzma_bodies_and_the_lzma_memlimit():
    body = _layers(EICAR, ["lzma"])
    response = HEAD + b"Content-Encoding: lzma\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    assert file_data(respond(response, split=9)) == EICAR
    # a window (dictionary) and an output over lzma-memlimit stop the layer there
    small = configure({"app-layer": {"protocols": {"http": {"libhtp": {"default-config": {"lzma-memlimit": 16}}}}}})
    assert file_data(respond(response, small)) == EICAR[:16]
    off = configure({"app-layer": {"protocols": {"http": {"libhtp": {"default-config": {"lzma-memlimit": 0}}}}}})
    assert file_data(respond(response, off)) == body       # lzma off: the bytes as sent


def test_lzma_layers_limit_of_lzma_enabled():
    body = _layers(EICAR, ["lzma", "gzip"])
    response = HEAD + b"Content-Encoding: lzma, gzip\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    assert file_data(respond(response)) == EICAR
    one = configure({"app-layer": {"protocols": {"http": {"libhtp": {"default-config": {"lzma-enabled": "yes"}}}}}})
    assert one["lzma-layers"] == 1 and file_data(respond(response, one)) == EICAR


def test_a_file_past_the_body_limit_keeps_its_hashes_while_hash_rules_are_loaded(monkeypatch):
    data = bytes(range(256)) * 1000
    response = HEAD + b"Content-Length: %d\r\n\r\n" % len(data) + data
    limits = configure({"app-layer": {"protocols": {"http": {"response-body-limit": 4096}}}})
    monkeypatch.setattr(files_mod, "STREAM_HASH", False)
    f = http_files(respond(response, limits, split=1400).txs[0], False)[0]
    assert f.cut and f.size == len(data) and f.digest("sha256") is None
    monkeypatch.setattr(files_mod, "STREAM_HASH", True)
    f = http_files(respond(response, limits, split=1400).txs[0], False)[0]
    assert f.cut and f.digest("sha256") == hashlib.sha256(data).hexdigest()
    assert f.digest("md5") == hashlib.md5(data).hexdigest()


def test_a_hash_list_turns_streaming_hashes_on_when_made_or_unpickled(monkeypatch):
    # the rule cache unpickles rules without running keyword setup: the list itself says so
    import pickle

    from netsentry.rules.keywords.files import HashList
    monkeypatch.setattr(files_mod, "STREAM_HASH", False)
    blob = pickle.dumps(HashList({"a" * 64}))
    assert files_mod.STREAM_HASH
    files_mod.STREAM_HASH = False
    assert pickle.loads(blob) == frozenset({"a" * 64}) and files_mod.STREAM_HASH


@pytest.mark.parametrize("resp", [False, True])
@pytest.mark.parametrize("block", [
    b"Host: a\r\nUser-Agent: x y \r\nEmpty:\r\nX-A:\tv\x00w\r\n\r\nbody",
    b"A: 1\nB: 2\r\n\r\nbody", b"A: 1\r\nB: 2\n\nbody", b"A: 1\r\n\r\r\nB: 2\r\n\r\n",
    b"A: 1\r\n folded\r\nB: 2\r\n\r\n", b"A: 1\r\nB: 2\r\n"])
def test_the_fast_paths_read_as_the_general_rules(monkeypatch, resp, block):
    import re

    from netsentry.applayer import httpheaders

    def read():
        try:
            return parse_headers(block, resp)
        except Incomplete:
            return "incomplete"
    fast = read()
    never = re.compile(rb"(?!)")
    monkeypatch.setattr(httpheaders, "_BLOCK", never)
    monkeypatch.setattr(httpheaders, "_PLAIN", never)
    assert read() == fast


def test_lf_cr_line_ends_after_the_status_line():
    # "HTTP/1.1 200 ok\n\rContent-type: ...\n\r...": the CR after the status line's LF starts
    # the header block (a line without colon), it does not end it (http-evader-405)
    head = (b"HTTP/1.1 200 ok\n\rContent-type: application/octet-stream\n\rConnection: close\n\r"
            b"Transfer-Encoding: chunked\n\rYet-another-header: foo\r\n\r\n")
    p = respond(head + chunked(EICAR))
    assert p.txs[0].header(b"transfer-encoding", False) == b"chunked" and file_data(p) == EICAR


def test_bad_http_limits_are_a_config_error_naming_the_key():
    from netsentry.config import ConfigError
    with pytest.raises(ConfigError, match="lzma-memlimit"):
        configure({"app-layer": {"protocols": {"http": {"libhtp": {"default-config": {"lzma-memlimit": "lots"}}}}}})
    with pytest.raises(ConfigError, match="response-body-decompress-layer-limit"):
        configure({"app-layer": {"protocols": {"http": {"libhtp": {"default-config": {
            "response-body-decompress-layer-limit": "x"}}}}}})
    assert configure({})["decompress-layer-limit"] == 2 and configure({})["lzma-memlimit"] == 1 << 20


def test_header_line_warnings_are_events():
    p = respond(HEAD + b"Transfer-Encoding\r\n :chunked\r\nX-Y: 1\n\r\r\n\r\n" + chunked(EICAR))
    ev = p.txs[0].events or set()
    assert {"response_invalid_lws_after_name", "response_header_name_not_token", "deformed_eol"} <= ev
    q = HttpParser()
    q.parse(b"GET / HTTP/1.1\r\nHost : a\r\n: empty\r\nX Y: z\r\n\r\n", True)
    assert {"request_invalid_lws_after_name", "request_invalid_empty_name",
            "request_header_invalid"} <= (q.txs[0].events or set())
    clean = respond(HEAD + b"Content-Length: 4\r\n\r\nabcd")
    assert not clean.txs[0].events


def test_a_body_on_a_204_is_unexpected():
    p = respond(HEAD.replace(b"200", b"204") + b"Content-Length: 4\r\n\r\nabcd")
    assert "response_body_unexpected" in (p.txs[0].events or set()) and file_data(p) == b"abcd"
