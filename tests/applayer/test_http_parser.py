"""HTTP/1.x parser on crafted bytes: request line, headers, bodies, responses, URI normalisation."""

from __future__ import annotations

import gzip
import zlib

import pytest

from netsentry.applayer.http import HttpParser, probe
from netsentry.applayer.uri import normalise_uri
from netsentry.detect.txdetect import get_buffer


def parse(*chunks: tuple[bool, bytes]) -> HttpParser:
    p = HttpParser()
    for to_server, data in chunks:
        p.parse(data, to_server)
    return p


def buf(tx, name: str, to_server: bool = True):
    value = get_buffer(tx, name, (), to_server)
    if name == "file.data" and value is not None:
        # one instance per file; these bodies are each one file
        assert len(value) == 1, value
        return value[0]
    return value


def test_request_line_headers_and_buffers():
    p = parse((True, b"\r\nGET /a b.html?q=1 HTTP/1.1\r\nHost: WWW.Example.com:8080\r\nUser-Agent: x\r\n"
                     b" continued\r\nCookie: c=1\r\nAccept: a\r\nAccept: b\r\n\r\n"))
    tx = p.txs[0]
    assert buf(tx, "http.method") == b"GET"
    assert buf(tx, "http.uri.raw") == b"/a b.html?q=1"           # a space in the target (libhtp)
    assert buf(tx, "http.protocol") == b"HTTP/1.1"
    assert buf(tx, "http.request_line") == b"GET /a b.html?q=1 HTTP/1.1"
    assert buf(tx, "http.host") == b"www.example.com"
    assert buf(tx, "http.host.raw") == b"WWW.Example.com:8080"
    assert buf(tx, "http.user_agent") == b"x continued"            # folded header line
    assert buf(tx, "http.accept") == b"a, b"                       # repeated header joined
    assert buf(tx, "http.cookie") == b"c=1"
    assert b"Cookie" not in buf(tx, "http.header") and buf(tx, "http.header").endswith(b"Accept: a, b\r\n")
    assert buf(tx, "http.header_names") == b"\r\nHost\r\nUser-Agent\r\nCookie\r\nAccept\r\n\r\n"
    assert buf(tx, "http.header.raw").endswith(b"Accept: b\r\n\r\n")
    assert buf(tx, "http.start").startswith(b"GET /a b.html?q=1 HTTP/1.1\r\nHost: ")
    assert buf(tx, "http.request_header") == [b"Host: WWW.Example.com:8080", b"User-Agent: x continued",
                                              b"Cookie: c=1", b"Accept: a, b"]
    assert tx.done[1] and not tx.done[0]


def test_bodies_chunked_content_length_and_transactions_in_order():
    p = parse((True, b"POST /1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab"),
              (True, b"cd\r\n3;ext=1\r\nefg\r\n0\r\nTrailer: x\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"),
              (False, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nxyz"),
              (False, b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\nrest of"),
              (False, b" the body"))
    t0, t1 = p.txs
    assert buf(t0, "http.request_body") == b"abcdefg"
    assert buf(t0, "http.stat_code", False) == b"200" and buf(t0, "file.data", False) == b"xyz"
    assert buf(t1, "http.uri") == b"/2" and buf(t1, "http.stat_msg", False) == b"Not Found"
    assert buf(t1, "http.response_body", False) == b"rest of the body"
    assert not t1.done[0]
    p.eof(False)
    assert t1.done[0]


@pytest.mark.parametrize("encoding,compress", [
    (b"gzip", lambda d: gzip.compress(d, mtime=0)),
    (b"deflate", zlib.compress),
    (b"deflate", lambda d: zlib.compress(d)[2:-4]),      # raw deflate, as some servers send it
])
def test_content_encoding_is_decoded(encoding, compress):
    body = compress(b"hello world " * 10)
    p = parse((True, b"GET / HTTP/1.1\r\n\r\n"),
              (False, b"HTTP/1.1 200 OK\r\nContent-Encoding: " + encoding + b"\r\nContent-Length: "
               + str(len(body)).encode() + b"\r\n\r\n" + body))
    assert buf(p.txs[0], "file.data", False) == b"hello world " * 10
    assert p.txs[0].resp_body_len == len(body)


def test_a_body_that_does_not_decode_stays_as_sent():
    p = parse((True, b"GET / HTTP/1.1\r\n\r\n"),
              (False, b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 9\r\n\r\nnot gzip!"))
    assert buf(p.txs[0], "file.data", False) == b"not gzip!"


def _response(headers: bytes, body: bytes) -> HttpParser:
    return parse((True, b"GET / HTTP/1.1\r\n\r\n"),
                 (False, b"HTTP/1.1 200 OK\r\n" + headers + b"Content-Length: " + str(len(body)).encode()
                  + b"\r\n\r\n" + body))


def test_gzip_with_a_wrong_trailer_still_decodes():
    # libhtp hands on what inflated; the CRC and length in the trailer are not checked
    body = bytearray(gzip.compress(b"EICAR-STANDARD " * 4, mtime=0))
    body[-4:] = (999).to_bytes(4, "little")
    body[-8:-4] = b"\0\0\0\0"
    p = _response(b"Content-Encoding: gzip\r\n", bytes(body))
    assert buf(p.txs[0], "file.data", False) == b"EICAR-STANDARD " * 4


def test_gzip_header_fields_and_a_header_split_across_segments():
    raw = gzip.compress(b"payload!", mtime=0)
    # FNAME set: the file name follows the 10-byte header, zero-terminated
    body = raw[:3] + bytes([raw[3] | 8]) + raw[4:10] + b"eicar.txt\0" + raw[10:]
    p = parse((True, b"GET / HTTP/1.1\r\n\r\n"),
              (False, b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: "
               + str(len(body)).encode() + b"\r\n\r\n" + body[:5]), (False, body[5:]))
    assert buf(p.txs[0], "file.data", False) == b"payload!"


@pytest.mark.parametrize("headers", [
    b"Content-Encoding:gz\0ip\r\n",                  # NUL bytes in the value are ignored
    b"Content\0-Encoding: gzip\r\n",                  # ... and in the header name
    b"Content-Encoding:\xa0gzip\r\n",                 # a token that contains the coding's name
    b"Content-Encoding: identity, gzip\r\n",           # unknown tokens are layers that do nothing
])
def test_content_encoding_spellings_libhtp_accepts(headers):
    p = _response(headers, gzip.compress(b"decoded", mtime=0))
    assert buf(p.txs[0], "file.data", False) == b"decoded"


def test_a_layer_that_does_not_decode_passes_its_input_on():
    # "deflate, deflate" over data deflated once: the outer layer decodes, the inner one
    # fails on the plain text and passes it through (libhtp's passthrough)
    p = _response(b"Content-Encoding: deflate\r\nContent-Encoding: deflate\r\n",
                  zlib.compress(b"X5O!P%@AP plain text")[2:-4])
    assert buf(p.txs[0], "file.data", False) == b"X5O!P%@AP plain text"


def test_only_the_first_layers_up_to_the_limit_are_decoded():
    once = gzip.compress(b"inner", mtime=0)
    thrice = gzip.compress(gzip.compress(once, mtime=0), mtime=0)
    p = _response(b"Content-Encoding: gzip, gzip, gzip\r\n", thrice)
    assert buf(p.txs[0], "file.data", False) == once       # 2 layers (the limit), not the third


def test_chunked_frames_the_body_whatever_the_version_and_content_length():
    # libhtp-rs: Transfer-Encoding chunked wins over Content-Length, on HTTP/1.0 too
    p = parse((True, b"GET / HTTP/1.0\r\n\r\n"),
              (False, b"HTTP/1.0 200 ok\r\nTransfer-Encoding: chunked\r\nContent-length: 68\r\n\r\n"
               b"5\r\nX5O!P\r\n4\r\n%@AP\r\n0\r\n\r\n"))
    assert buf(p.txs[0], "file.data", False) == b"X5O!P%@AP" and p.txs[0].done[0]
    # ... and when the body then has no chunk length, it is the body as sent
    q = parse((True, b"GET / HTTP/1.1\r\n\r\n"),
              (False, b"HTTP/0.9 200 ok\r\nTransfer-Encoding: chunked\r\nContent-length: 9\r\n\r\nX5O!P%@AP"))
    assert buf(q.txs[0], "file.data", False).startswith(b"X5O!P%@AP")


def test_a_lone_cr_ends_response_lines_not_request_lines():
    # libhtp-rs: on the response side CR alone is an end of line (status line and headers)
    p = parse((True, b"GET / HTTP/1.1\r\nX-A: 1\rX-B: 2\r\n\r\n"),
              (False, b"HTTP/1.1 200 \rTransfer-Encoding:chunked\r\nX-C: 3\rContent-Type: t\r\n\r\n"),
              (False, b"4\r\nX5O!\r\n0\r\n\r\n"))
    tx = p.txs[0]
    assert tx.status == b"200" and tx.header(b"content-type", False) == b"t"
    assert buf(tx, "file.data", False) == b"X5O!"
    assert tx.header(b"x-a") == b"1\rX-B: 2" and tx.header(b"x-b") is None
    # the status line's CR at a segment's end waits for the next byte (CRLF or not)
    q = parse((True, b"GET / HTTP/1.1\r\n\r\n"), (False, b"HTTP/1.1 204 No Content\r"),
              (False, b"\nServer: s\r\n\r\n"))
    assert q.txs[0].stat_msg == b"No Content" and q.txs[0].header(b"server", False) == b"s"


def test_a_junk_line_before_the_status_line_is_skipped_when_an_h_line_follows():
    # libhtp-rs response_line_complete: a line not starting with "http" is ignored when the
    # next one starts with 'H' (or it is at most 2 bytes); otherwise it is body
    p = parse((True, b"GET / HTTP/1.1\r\n\r\n"),
              (False, b" SIP/2.0 200 ok\r\nHTTP/1.1 200 ok\r\nContent-Length: 3\r\n\r\nabc"))
    assert p.txs[0].status == b"200" and buf(p.txs[0], "file.data", False) == b"abc"
    q = parse((True, b"GET / HTTP/1.1\r\n\r\n"), (False, b"junk line here\r\nnot http\r\n"))
    assert q.txs[0].status is None and buf(q.txs[0], "file.data", False) == b"junk line here\r\nnot http\r\n"


def test_a_folded_response_line_that_reads_name_colon_is_a_header():
    p = parse((True, b"GET / HTTP/1.1\r\nX-Foo: bar\r\n\tX-Not: folded-on-requests\r\n\r\n"),
              (False, b"HTTP/1.1 200 ok\r\nX-Foo: bar\r\n\tTransfer-Encoding: chunked\r\n"
               b"X-Bar: a\r\n b c\r\n\r\n4\r\nX5O!\r\n0\r\n\r\n"))
    tx = p.txs[0]
    # libhtp-rs joins a folded line with the folding character itself (here a tab)
    assert tx.header(b"x-foo") == b"bar\tX-Not: folded-on-requests"
    assert tx.header(b"transfer-encoding", False) == b"chunked" and tx.header(b"x-foo", False) == b"bar"
    assert tx.header(b"x-bar", False) == b"a b c"              # a real fold still folds
    assert buf(tx, "file.data", False) == b"X5O!"


@pytest.mark.parametrize("split", [False, True])
def test_an_empty_fold_ends_the_header_block(split):
    # "\n \n": libhtp-rs keeps an empty fold as the empty line that ends the headers
    head = b"HTTP/1.1 200 ok\r\nConnection: close\r\nContent-length: 4\n \n"
    cut = head.index(b"4\n") + 2      # split: the lines before the fold go one by one
    chunks = [(False, head[:cut]), (False, head[cut:] + b"X5O!")] if split else [(False, head + b"X5O!")]
    p = parse((True, b"GET / HTTP/1.1\r\n\r\n"), *chunks)
    assert buf(p.txs[0], "file.data", False) == b"X5O!" and p.txs[0].done[0]


def test_body_limit():
    p = HttpParser({"request-body-limit": 4, "response-body-limit": 4, "decompression-limit": 100,
                    "decompress-layer-limit": 2})
    p.parse(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789", True)
    assert buf(p.txs[0], "http.request_body") == b"0123" and p.txs[0].done[1]


def test_head_and_204_have_no_body():
    p = parse((True, b"HEAD / HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\n"),
              (False, b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"))
    assert [t.status for t in p.txs] == [b"200", b"204"] and all(t.complete() for t in p.txs)


def test_http09_request_and_a_response_without_request():
    p = parse((True, b"GET /old\r\n"), (False, b"<html>raw</html>"))
    assert p.txs[0].protocol == b"" and buf(p.txs[0], "file.data", False) == b"<html>raw</html>"
    q = parse((False, b"HTTP/1.0 200 OK\r\n\r\n"))
    assert q.txs[0].method is None and q.txs[0].status == b"200"


@pytest.mark.parametrize("raw,norm", [
    (b"/a/./b/../c", b"/a/c"),
    (b"/%61/%2e%2E/x", b"/x"),                  # decoded, then the dot segments removed
    (b"/x?%41=%2f%zz+%20", b"/x?A=/%zz+ "),      # query: every valid escape decoded (libhtp-rs), `+` kept
    (b"http://Host:81/p/../q?r#frag", b"/q?r"),
    (b"/a//b\\c", b"/a//b\\c"),                 # separators are not compressed by default
])
def test_uri_normalisation(raw, norm):
    assert normalise_uri(raw) == norm


def test_probe():
    assert probe(b"GET / HTTP/1.1\r\n", True) is True
    assert probe(b"HTTP/1.1 200 OK", False) is True
    assert probe(b"HTTP/1.1 200 OK", True) is False       # an answer from the client side: reversed flow
    assert probe(b"GET / HTTP/1.1\r\n", False) is False
    assert probe(b"GE", True) is None
    assert probe(b"\x16\x03\x01\x00", True) is False
    assert probe(b"SSH-2.0-OpenSSH", True) is False


def test_done_transactions_release_their_bodies():
    from netsentry.applayer.state import AppState
    st = AppState()
    st.parser = parse((True, b"POST /1 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /2 HTTP/1.1\r\n\r\n"),
                      (False, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    t0, t1 = st.txs
    t0.updated = t1.updated = 0          # detection has seen them
    st.release_done(records=False)
    assert t0.req_body == b"" and t0.resp_body == b"" and t0.status == b"200"
    assert st.release_from == 1          # the second waits for its response
    t0.logged = False
    st2 = AppState()
    st2.parser = st.parser
    st2.release_done(records=True)       # a record still to write keeps the transaction
    assert st2.release_from == 0


def test_stream_gap_in_a_body_is_skipped_elsewhere_the_direction_stops():
    p = parse((True, b"GET / HTTP/1.1\r\n\r\n"), (False, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab"))
    p.gap(False, 5)
    p.parse(b"fgh", False)
    tx = p.txs[0]
    assert tx.complete() and buf(tx, "file.data", False) == b"abfgh" and tx.resp_body_len == 10
    p.gap(True, 7)                          # inside a request line: framing lost
    p.parse(b"GET /after HTTP/1.1\r\n\r\n", True)
    assert len(p.txs) == 1


@pytest.mark.parametrize("chunks, body", [
    (b"f,\r\nX5O!P%@AP[4\\PZX\r\n3,\r\nabc\r\n0\r\n\r\n", b"X5O!P%@AP[4\\PZXabc"),   # junk after the size
    (b"\r\n\r\n5\r\nhello\r\n\r\n\r\n1\r\n!\r\n0\r\n\r\n", b"hello!"),             # empty lines skipped
    (b"5;ext=1\r\nhello\r\n0\r\n\r\n", b"hello"),
    (b"X5O!P%@AP[4\\PZX no length", b"X5O!P%@AP[4\\PZX no length"),                # not chunked after all
    (b"5\r\nhello\r\nzz\r\nrest", b"hellozz\r\nrest"),                                # a bad size later: the rest
])
def test_chunked_response_body_as_libhtp_rs_reads_it(chunks: bytes, body: bytes):
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    p = parse((True, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), (False, head + chunks))
    assert buf(p.txs[0], "file.data", False) == body
