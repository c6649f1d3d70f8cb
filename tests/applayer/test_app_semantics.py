"""Suricata 8 app-layer semantics: DNS one transaction per message, app-layer events the
HTTP and DNS parsers raise, HTTP files and the file keywords (crafted captures, replayed)."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.dns import DNSRRMX, DNSRRSOA

from applayer_helpers import replay, tcp_session, udp_exchange

from netsentry.rules.errors import RuleError
from netsentry.rules.loader import load_rules
from netsentry.config import load_config


def _alerts(records: list[dict]) -> list[dict]:
    return [r for r in records if r["event_type"] == "alert"]


def _sids(records: list[dict]) -> list[int]:
    return sorted(r["alert"]["signature_id"] for r in _alerts(records))


# --- DNS ---------------------------------------------------------------------------------

def test_dns_request_and_response_are_separate_transactions(tmp_path: Path):
    q = bytes(DNS(id=7, rd=1, qd=DNSQR(qname="a.example")))
    r = bytes(DNS(id=7, qr=1, opcode=9, qd=DNSQR(qname="a.example"),
                  an=DNSRR(rrname="a.example", rdata="192.0.2.9")))
    pcap = udp_exchange(tmp_path / "d.pcap", [(True, q), (False, r)])
    recs = replay(tmp_path, pcap, "\n".join([
        'alert dns any any -> any any (msg:"opcode"; app-layer-event:dns.invalid_opcode; sid:1;)',
        'alert dns any any -> any any (msg:"q"; dns.queries.rrname; content:"a.example"; sid:2;)',
        'alert dns any any -> any any (msg:"opc9"; dns.opcode:9; sid:3;)',
    ]))
    dns = [x for x in recs if x["event_type"] == "dns"]
    assert [(d["dns"]["type"], d["dns"]["tx_id"], d["tx_id"]) for d in dns] == [("request", 0, 0), ("response", 1, 1)]
    assert all(d["dns"]["id"] == 7 for d in dns)
    # the response's event alerts on the response, with its own record
    (ev,) = [a for a in _alerts(recs) if a["alert"]["signature_id"] == 1]
    assert ev["direction"] == "to_client" and ev["tx_id"] == 1 and ev["dns"]["type"] == "response"
    assert ev["dns"]["opcode"] == 9 and ev["dns"]["answers"][0]["rdata"] == "192.0.2.9"
    # a buffer of both sides alerts once per message; dns.opcode on the message's own header
    q_alerts = [a for a in _alerts(recs) if a["alert"]["signature_id"] == 2]
    assert sorted((a["direction"], a["tx_id"]) for a in q_alerts) == [("to_client", 1), ("to_server", 0)]
    assert [a["tx_id"] for a in _alerts(recs) if a["alert"]["signature_id"] == 3] == [1]


def test_dns_rrname_truncated_and_rrtype_index(tmp_path: Path):
    long_name = ".".join(["x" * 63] * 20)          # 1279 bytes: cut at 1025
    q = bytes(DNS(id=1, qd=DNSQR(qname=long_name)))
    r = bytes(DNS(id=2, qr=1, qd=DNSQR(qname="b.example"),
                  an=[DNSRR(rrname="b.example", type="A", rdata="192.0.2.1"),
                      DNSRR(rrname="b.example", type="AAAA", rdata="2001:db8::1")]))
    pcap = udp_exchange(tmp_path / "d.pcap", [(True, q), (False, r)])
    recs = replay(tmp_path, pcap, "\n".join([
        'alert dns any any -> any any (msg:"long"; app-layer-event:dns.name_too_long; sid:1;)',
        'alert dns any any -> any any (msg:"first A"; dns.rrtype:1,0; flow:to_client; sid:2;)',
        'alert dns any any -> any any (msg:"last A"; dns.rrtype:A,-1; flow:to_client; sid:3;)',
        'alert dns any any -> any any (msg:"all A"; dns.rrtype:1,all; flow:to_client; sid:4;)',
        'alert dns any any -> any any (msg:"any AAAA"; dns.rrtype:28; sid:5;)',
    ]))
    (a1,) = [a for a in _alerts(recs) if a["alert"]["signature_id"] == 1]
    assert a1["dns"]["queries"][0]["rrname_truncated"] is True
    assert len(a1["dns"]["queries"][0]["rrname"]) == 1025
    assert _sids(recs) == [1, 2, 5]


def test_dns_response_rrname_covers_rdata_names(tmp_path: Path):
    r = bytes(DNS(id=3, qr=1, rcode=3, qd=DNSQR(qname="c.example", qtype="MX"),
                  an=DNSRRMX(rrname="c.example", exchange="mx1.mail.example"),
                  ns=DNSRRSOA(rrname="example", mname="ns-1.dns.example", rname="admin.example")))
    q = bytes(DNS(id=3, qd=DNSQR(qname="c.example", qtype="MX")))
    pcap = udp_exchange(tmp_path / "d.pcap", [(True, q), (False, r)])
    recs = replay(tmp_path, pcap, "\n".join([
        'alert dns any any -> any any (msg:"mx"; dns.response.rrname; content:"mx1.mail.example"; sid:1;)',
        'alert dns any any -> any any (msg:"soa"; dns.response.rrname; content:"ns-1.dns.example"; sid:2;)',
        'alert dns any any -> any any (msg:"nope"; dns.response.rrname; content:"admin.example"; sid:3;)',
    ]))
    assert _sids(recs) == [1, 2]
    resp = [x for x in recs if x["event_type"] == "dns" and x["dns"]["type"] == "response"][0]
    assert resp["dns"]["answers"][0]["rdata"] == "mx1.mail.example"


def test_dns_over_tcp_message_longer_than_a_segment_on_a_detection_port(tmp_path: Path):
    q = bytes(DNS(id=5, qd=[DNSQR(qname=f"n{i}.example") for i in range(200)]))
    msg = struct.pack("!H", len(q)) + q
    pcap = tcp_session(tmp_path / "t.pcap", [(True, msg)], dport=1053, segment=1000)
    rules = 'alert dns any any -> any any (msg:"q"; dns.query; content:"n199.example"; sid:1;)'
    assert _sids(replay(tmp_path, pcap, rules)) == []          # 1053 is no DNS port by default
    recs = replay(tmp_path, pcap, rules, "app-layer.protocols.dns.tcp.detection-ports.dp=53, 1053")
    assert _sids(recs) == [1]


# --- HTTP events ---------------------------------------------------------------------------

def _get(extra: bytes = b"", body: bytes = b"", method: bytes = b"GET", uri: bytes = b"/x") -> bytes:
    return method + b" " + uri + b" HTTP/1.1\r\nHost: h.example\r\n" + extra + b"\r\n" + body


RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.mark.parametrize("request_bytes, event", [
    (_get(b"Authorization: NTLM abc\r\n"), "request_auth_unrecognized"),
    (_get(b"Content-Length: 3\r\nContent-Length: 4\r\n", b"abcd", b"POST"),
     "duplicate_content_length_field_in_request"),
    (_get(b"Transfer-Encoding: chunked\r\n", b"3;ext=1\r\nabc\r\n0\r\n\r\n", b"POST"), "request_chunk_extension"),
    (b"GET / HTTP/1.1\r\nUser-Agent: x\r\n\r\n", "missing_host_header"),
    (_get(b"X-Big: " + b"y" * 20000 + b"\r\n"), "request_field_too_long"),
])
def test_http_request_events(tmp_path: Path, request_bytes: bytes, event: str):
    pcap = tcp_session(tmp_path / "h.pcap", [(True, request_bytes), (False, RESP)], segment=1400)
    recs = replay(tmp_path, pcap, "\n".join([
        f'alert http any any -> any any (msg:"ev"; flow:established,to_server; app-layer-event:http.{event}; sid:1;)',
        'alert http any any -> any any (msg:"other"; flow:to_server; app-layer-event:http.request_chunk_extension; sid:2;)',
    ]))
    want = [1, 2] if event == "request_chunk_extension" else [1]
    assert _sids(recs) == want


def test_http_events_not_raised_on_a_clean_request(tmp_path: Path):
    pcap = tcp_session(tmp_path / "h.pcap", [(True, _get(b"Authorization: Basic YTpi\r\n")), (False, RESP)])
    names = ["request_auth_unrecognized", "missing_host_header", "duplicate_content_length_field_in_request",
             "too_many_encoding_layers", "double_encoded_uri"]
    rules = "\n".join(f'alert http any any -> any any (msg:"{n}"; app-layer-event:http.{n}; sid:{i};)'
                      for i, n in enumerate(names, 1))
    assert _sids(replay(tmp_path, pcap, rules)) == []


def test_http_double_encoded_uri_needs_double_decoding(tmp_path: Path):
    pcap = tcp_session(tmp_path / "h.pcap", [(True, _get(uri=b"/evil%2527sqli")), (False, RESP)])
    rules = 'alert http any any -> any any (msg:"dbl"; app-layer-event:http.double_encoded_uri; sid:1;)'
    assert _sids(replay(tmp_path, pcap, rules)) == []
    key = "app-layer.protocols.http.libhtp.default-config.double-decode-path=true"
    assert _sids(replay(tmp_path, pcap, rules, key)) == [1]


def test_http_response_event_too_many_layers(tmp_path: Path):
    resp = b"HTTP/1.1 200 OK\r\nContent-Encoding: identity, gzip, identity\r\nContent-Length: 2\r\n\r\nok"
    pcap = tcp_session(tmp_path / "h.pcap", [(True, _get()), (False, resp)])
    rules = 'alert http any any -> any any (msg:"layers"; app-layer-event:http.too_many_encoding_layers; sid:1;)'
    assert _sids(replay(tmp_path, pcap, rules)) == [1]


def test_app_layer_event_unknown_names(tmp_path: Path):
    config = load_config(None, [])
    rf = tmp_path / "r.rules"
    rf.write_text('alert http any any -> any any (app-layer-event:http.no_such_event; sid:1;)\n'
                  'alert ip any any -> any any (app-layer-event:nodot; sid:2;)\n')
    rs = load_rules([rf], config)
    assert len(rs.signatures) == 0 and len(rs.errors) == 2
    assert "not raised by netsentry" in str(rs.errors[0]) and "expected PROTO.EVENT" in str(rs.errors[1])


# --- files ---------------------------------------------------------------------------------

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 20


def _download(tmp_path: Path, headers: bytes = b"", uri: bytes = b"/docs/Report.PDF") -> Path:
    resp = b"HTTP/1.1 200 OK\r\n" + headers + b"Content-Length: %d\r\n\r\n" % len(PDF) + PDF
    return tcp_session(tmp_path / "f.pcap", [(True, _get(uri=uri)), (False, resp)], segment=1400)


def test_filename_fileext_filesize_on_a_download(tmp_path: Path):
    recs = replay(tmp_path, _download(tmp_path), "\n".join([
        'alert tcp any any -> any any (msg:"n"; filename:"report.pdf"; sid:1;)',
        'alert tcp any any -> any any (msg:"n!"; filename:!"other.doc"; sid:2;)',
        'alert tcp any any -> any any (msg:"n!hit"; filename:!"REPORT"; sid:3;)',
        'alert tcp any any -> any any (msg:"e"; fileext:"pdf"; sid:4;)',
        'alert tcp any any -> any any (msg:"e!"; fileext:"doc"; sid:5;)',
        'alert http any any -> any any (msg:"fn"; file.name; content:"/docs/Report.PDF"; sid:6;)',
        'alert http any any -> any any (msg:"sz"; filesize:%d; sid:7;)' % len(PDF),
        'alert http any any -> any any (msg:"sz<"; filesize:<1KB; sid:8;)',
        'alert http any any -> any any (msg:"sz>"; filesize:to_client,>4KB; sid:9;)',
    ]))
    assert _sids(recs) == [1, 2, 4, 6, 7, 9]
    (a,) = [r for r in _alerts(recs) if r["alert"]["signature_id"] == 1]
    assert a["direction"] == "to_client"


def test_content_disposition_names_the_file(tmp_path: Path):
    pcap = _download(tmp_path, b'Content-Disposition: attachment; filename="inv 42.xls"\r\n')
    recs = replay(tmp_path, pcap, 'alert http any any -> any any (msg:"x"; fileext:"xls"; filename:"inv 42"; sid:1;)')
    assert _sids(recs) == [1]


def test_filemd5_list_next_to_the_rule_file(tmp_path: Path):
    (tmp_path / "md5.list").write_text("# known bad\n" + hashlib.md5(PDF).hexdigest() + "  report\n")
    (tmp_path / "other.list").write_text("0" * 32 + "\n")
    recs = replay(tmp_path, _download(tmp_path), "\n".join([
        'alert http any any -> any any (msg:"md5"; filemd5:md5.list; sid:1;)',
        'alert http any any -> any any (msg:"md5 other"; filemd5:other.list; sid:2;)',
        'alert http any any -> any any (msg:"md5 not other"; filemd5:!other.list; sid:3;)',
    ]))
    assert _sids(recs) == [1, 3]


def test_filemd5_bad_list_is_a_rule_error(tmp_path: Path):
    (tmp_path / "bad.list").write_text("not-a-hash\n")
    rf = tmp_path / "r.rules"
    rf.write_text('alert http any any -> any any (filemd5:bad.list; sid:1;)\n'
                  'alert http any any -> any any (filemd5:missing.list; sid:2;)\n')
    rs = load_rules([rf], load_config(None, []))
    text = " | ".join(str(e) for e in rs.errors)
    assert "bad.list:1: not a 32-digit hex hash" in text and "'missing.list' not found" in text


def test_multipart_upload_files(tmp_path: Path):
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"; filename=\"one.txt\"\r\n\r\nfirst\r\n"
            b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nplain field\r\n"
            b"--XyZ\r\nContent-Disposition: form-data; name=\"b\"; filename=\"two.exe\"\r\n\r\nsecond\r\n"
            b"--XyZ--\r\n")
    req = _get(b"Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: %d\r\n" % len(body),
               body, b"POST")
    pcap = tcp_session(tmp_path / "m.pcap", [(True, req), (False, RESP)])
    recs = replay(tmp_path, pcap, "\n".join([
        'alert http any any -> any any (msg:"exe"; fileext:"exe"; flow:to_server; sid:1;)',
        'alert http any any -> any any (msg:"one"; file.name; content:"one.txt"; sid:2;)',
        'alert http any any -> any any (msg:"size6"; filesize:6; sid:3;)',
        'alert http any any -> any any (msg:"field"; filename:"f"; fileext:"txt"; sid:4;)',
    ]))
    assert _sids(recs) == [1, 2, 3]


def test_file_data_is_per_file(tmp_path: Path):
    """file.data inspects each file of a multipart upload on its own (Suricata's file
    inspection): two contents of one `file.data` must be in one file, a second `file.data;`
    starts another instance that may match another file, and other buffers (file.name)
    may match any file of the transaction."""
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"; filename=\"one.txt\"\r\n\r\n"
            b"apple pie\r\n"
            b"--XyZ\r\nContent-Disposition: form-data; name=\"b\"; filename=\"two.txt\"\r\n\r\n"
            b"banana split\r\n"
            b"--XyZ--\r\n")
    req = _get(b"Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: %d\r\n" % len(body),
               body, b"POST")
    pcap = tcp_session(tmp_path / "m.pcap", [(True, req), (False, RESP)])
    recs = replay(tmp_path, pcap, "\n".join([
        'alert http any any -> any any (msg:"one file"; file.data; content:"apple"; content:"pie"; sid:1;)',
        'alert http any any -> any any (msg:"crossed"; file.data; content:"apple"; content:"banana"; sid:2;)',
        'alert http any any -> any any (msg:"two instances"; file.data; content:"apple"; '
        'file.data; content:"banana"; sid:3;)',
        'alert http any any -> any any (msg:"name of the other"; file.data; content:"banana"; '
        'file.name; content:"one.txt"; sid:4;)',
        'alert http any any -> any any (msg:"part headers"; file.data; content:"filename"; sid:5;)',
        'alert http any any -> any any (msg:"anchored"; file.data; content:"banana"; startswith; sid:6;)',
    ]))
    assert _sids(recs) == [1, 3, 4, 6]


# --- absent --------------------------------------------------------------------------------

def test_absent_and_or_else(tmp_path: Path):
    req = b"GET / HTTP/1.1\r\nHost: h.example\r\nUser-Agent: foo\r\n\r\n"
    pcap = tcp_session(tmp_path / "a.pcap", [(True, req), (False, RESP)])
    recs = replay(tmp_path, pcap, "\n".join([
        'alert http any any -> any any (msg:"no referer"; http.referer; absent; sid:1;)',
        'alert http any any -> any any (msg:"no ua"; http.user_agent; absent; sid:2;)',
        'alert http any any -> any any (msg:"referer or"; http.uri; content:"/"; http.referer; absent: or_else; '
        'content:"example"; sid:3;)',
        'alert http any any -> any any (msg:"ua or"; http.user_agent; absent: or_else; content:"foo"; sid:4;)',
        'alert http any any -> any any (msg:"ua or no"; http.user_agent; absent: or_else; content:"bar"; sid:5;)',
        'alert http any any -> any any (msg:"no req body"; flow:to_server; http.request_body; absent; sid:6;)',
        'alert http any any -> any any (msg:"no resp body"; flow:to_client; file.data; absent; sid:7;)',
    ]))
    assert _sids(recs) == [1, 3, 4, 6]


def test_absent_needs_a_buffer(tmp_path: Path):
    rf = tmp_path / "r.rules"
    rf.write_text('alert http any any -> any any (absent; sid:1;)\n'
                  'alert http any any -> any any (http.uri; content:"x"; absent; sid:2;)\n'
                  'alert http any any -> any any (http.uri; absent: maybe; sid:3;)\n')
    rs = load_rules([rf], load_config(None, []))
    assert len(rs.errors) == 3 and not rs.signatures


# --- subslice -------------------------------------------------------------------------------

@pytest.mark.parametrize("arg, out", [
    ("2", b"rl/7.64.1"), ("-6", b"7.64.1"), ("-10,3", b"url"), ("1,30", b""), ("1,30,truncate", b"url/7.64.1"),
    ("-20", b""), ("-20, 5, truncate", b"curl/"), ("0,-8", b"cur"), ("0,-30", b""), ("0, -30, truncate", b""),
    ("5,-8", b"l/"),     # an end before the start: the two swap (Suricata)
])
def test_subslice_transform(arg: str, out: bytes):
    from netsentry.rules.keywords.applayer import _parse_subslice, _subslice
    assert _subslice(b"curl/7.64.1", _parse_subslice(arg)) == out


def test_subslice_in_a_rule(tmp_path: Path):
    pcap = tcp_session(tmp_path / "s.pcap", [(True, _get(b"User-Agent: curl/7.64.1\r\n")), (False, RESP)])
    recs = replay(tmp_path, pcap, "\n".join([
        'alert http any any -> any any (http.user_agent; content:"curl/7.64.1"; subslice:-6; content:"7.64.1"; '
        'bsize:6; startswith; sid:1;)',
        'alert http any any -> any any (http.user_agent; subslice:0,4; content:"7.64"; sid:2;)',
    ]))
    assert _sids(recs) == [1]
    rf = tmp_path / "bad.rules"
    rf.write_text('alert http any any -> any any (http.user_agent; subslice:a,b; sid:3;)\n')
    assert "subslice: expected" in str(load_rules([rf], load_config(None, [])).errors[0])


# --- domain / tld -------------------------------------------------------------------------------

def _psl_or_skip() -> None:
    from netsentry.rules.keywords import psl
    try:
        psl.load("domain")
    except RuleError as e:
        pytest.skip(str(e))


@pytest.mark.parametrize("name, dom, tld", [
    (b"suricata.io", b"suricata.io", b"io"), (b"www.bbc.co.uk", b"bbc.co.uk", b"co.uk"),
    (b"co.uk", b"", b""), (b"a.b.c.kawasaki.jp", b"b.c.kawasaki.jp", b"c.kawasaki.jp"),
    (b"city.kawasaki.jp", b"city.kawasaki.jp", b"kawasaki.jp"), (b"bad..name", b"", b""),
])
def test_public_suffix_domain_and_tld(name: bytes, dom: bytes, tld: bytes):
    _psl_or_skip()
    from netsentry.rules.keywords import psl
    assert (psl.domain(name), psl.tld(name)) == (dom, tld)


def test_domain_and_tld_transforms_on_dns_query(tmp_path: Path):
    _psl_or_skip()
    q = bytes(DNS(id=9, qd=DNSQR(qname="news.www.bbc.co.uk")))
    pcap = udp_exchange(tmp_path / "d.pcap", [(True, q)])
    recs = replay(tmp_path, pcap, "\n".join([
        'alert dns any any -> any any (dns.query; domain; content:"bbc.co.uk"; startswith; endswith; sid:1;)',
        'alert dns any any -> any any (dns.query; tld; content:"co.uk"; startswith; endswith; sid:2;)',
        'alert dns any any -> any any (dns.query; tld; content:"uk"; startswith; sid:3;)',
    ]))
    assert _sids(recs) == [1, 2]


def test_derived_buffers_after_a_rule_cache_hit(tmp_path: Path):
    """`file.data: to_client` and `absent: or_else` make buffers at parse time; a ruleset
    from the rule cache parsed nothing, so they are derived on first use (was a KeyError)."""
    import subprocess
    import sys
    pcap = _download(tmp_path)
    rules = tmp_path / "c.rules"
    rules.write_text('alert http any any -> any any (msg:"a"; http.referer; absent: or_else; content:!"x"; sid:1;)\n'
                     'alert http any any -> any any (msg:"b"; file.data: to_client; content:"PDF"; sid:2;)\n')
    outs = []
    for run in ("miss", "hit"):
        out = tmp_path / run
        out.mkdir()
        p = subprocess.run([sys.executable, "-m", "netsentry", "replay", str(pcap), "-S", str(rules), "-l", str(out),
                            "--set", f"detect.rule-cache={tmp_path / 'cache'}"], capture_output=True, text=True,
                           timeout=120)
        assert p.returncode == 0, p.stderr[-2000:]
        assert f"detect.rule_cache: {run}" in p.stderr
        outs.append(sorted(line.count('"event_type":"alert"') for line in (out / "eve.json").read_text().splitlines()))
    assert outs[0] == outs[1] and sum(outs[1]) == 2


# --- frames, header protocol of transaction rules ------------------------------------------------

def test_frames_http1_and_dns_pdu(tmp_path: Path):
    req = b"GET / HTTP/1.1\r\nHost: www.example.com\r\nAccept: */*\r\n\r\n"
    pcap = tcp_session(tmp_path / "h.pcap", [(True, req), (False, b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nuid=0(ro)")])
    recs = replay(tmp_path, pcap, "\n".join([
        'alert http any any -> any any (flow:to_server; frame:http1.request; content:"GET / HTTP/1.1|0d 0a|Host"; '
        'startswith; bsize:%d; sid:1;)' % len(req),
        'alert http1 any any -> any any (flow:to_client; frame:response; content:"uid=0"; sid:2;)',
        'alert http any any -> any any (frame:http1.response_line; content:"200 OK|0d 0a|"; endswith; sid:3;)',
        'alert http any any -> any any (frame:http1.request_body; content:"x"; sid:4;)',
    ]))
    assert _sids(recs) == [1, 2, 3]
    q = bytes(DNS(id=0x1234, rd=1, qd=DNSQR(qname="suricata.io")))
    udp = udp_exchange(tmp_path / "d.pcap", [(True, q)])
    rules = "\n".join([
        'alert udp any any -> any any (flow:to_server; frame:dns.pdu; content:"|12 34 01 00 00 01|"; startswith; sid:5;)',
        'alert tcp any any -> any any (frame:dns.pdu; content:"suricata"; sid:6;)',
        'alert tcp any any -> any any (dns.query; content:"suricata"; sid:7;)',
        'alert dns any any -> any any (dns.query; content:"suricata"; sid:8;)',
    ])
    assert _sids(replay(tmp_path, udp, rules)) == [5, 8]      # tcp rules: not on a UDP flow
    tcp = tcp_session(tmp_path / "t.pcap", [(True, struct.pack("!H", len(q)) + q)], dport=53)
    assert _sids(replay(tmp_path, tcp, rules)) == [6, 7, 8]


def test_unknown_frame_is_unsupported(tmp_path: Path):
    rf = tmp_path / "r.rules"
    rf.write_text('alert tcp any any -> any any (frame:tcp.pdu; content:"x"; sid:1;)\n')
    rs = load_rules([rf], load_config(None, []))
    assert not rs.signatures and "frame 'tcp.pdu' not supported yet" in str(rs.errors[0])
