"""EVE field names and JSON types checked against the records suricata-verify expects.

Every `match:` of every check in ../shared/suricata-verify/tests/*/test.yaml
names fields of Suricata's EVE records with example values. For the event
types and fields we write, our records must have the same field at the same
path with the same JSON type, so checks written for Suricata can run on our
eve.json.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from netsentry.decode import Decoder
from netsentry.detect.txdetect import alert_extra
from netsentry.event import Alert, Event
from netsentry.flow.flow import Flow
from netsentry.output.eve import render
from netsentry.output.stats import stats_event

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
VERIFY = SHARED / "suricata-verify" / "tests"

pytestmark = pytest.mark.shared

# Fields this test does not build records for: file extraction (fileinfo), smb (no
# parser) and ssh (its records and alerts are checked against the schema in
# tests/applayer/test_ssh.py). HTTP, DNS and TLS are checked here (applayer/).
NOT_OURS = re.compile(r"^(fileinfo|ssh|smb)\b")
APP_TYPES = ("http", "dns", "tls")

# Fields suricata-verify checks that netsentry does not write yet, each with the
# reason. An entry here is a feature gap, not a disagreement: the test below
# also fails once we do write the field, so the list cannot go stale.
NOT_YET: dict[tuple[str, str], str] = {

}


def _expected_fields() -> dict[tuple[str, str], type]:
    if not VERIFY.is_dir():
        pytest.skip(f"{VERIFY} not present (a plain clone has no ../shared)")
    fields: dict[tuple[str, str], type] = {}
    for path in sorted(VERIFY.glob("*/test.yaml")):
        doc = yaml.safe_load(path.read_text()) or {}
        for check in doc.get("checks") or []:
            match = (check.get("filter") or {}).get("match") or {}
            etype = match.get("event_type")
            if etype not in ("alert", "flow", "drop", "stats", "anomaly", *APP_TYPES):
                continue
            for key, value in match.items():
                if NOT_OURS.match(key) or (etype, key) == ("anomaly", "anomaly.event"):
                    continue
                fields[(etype, key)] = type(value)
    return fields


def _detect_counters() -> dict[str, int]:
    """The signature engine's own counters, from a real (empty) engine."""
    from netsentry.detect import SignatureEngine
    from netsentry.rules.loader import RuleSet
    return SignatureEngine(RuleSet(), {}).stats()


def _records() -> dict[str, dict]:
    pkt = Decoder().decode(bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2")
                                 / TCP(sport=1024, dport=80, flags="S")), 1)
    pkt.ts, pkt.pcap_cnt = 1.5, 1
    flow = Flow(1, None, 6, 4, (), pkt.src, pkt.dst, 1024, 80, 1.5)
    flow.action = "drop"
    flow.tcp_state = "closed"
    flow.exception_policy = [("stream_midstream", "drop_flow")]
    alert = Alert(1, "x", action="blocked")
    flow.app_proto = "tls"
    http_tx, tls_tx = _app_txs()
    return {
        "alert": render(Event("alert", 1.5, pkt, flow, alert, extra=alert_extra(tls_tx))),
        "http": render(Event("http", 1.5, None, flow, extra={"tx_id": 0, "http": http_tx.eve()})),
        "tls": render(Event("tls", 1.5, None, flow, extra={"tx_id": 0, "tls": tls_tx.eve()})),
        "dns": render(Event("dns", 1.5, pkt, flow, extra={"tx_id": 0, "dns": {"version": 3, "type": "request"}})),
        "drop": render(Event("drop", 1.5, pkt, flow, alert)),
        "flow": render(Event("flow", 1.5, None, flow)),
        "stats": render(stats_event(1.5, 1, {"decoder.pkts": 1, **_detect_counters()})),
        "anomaly": render(Event("anomaly", 1.5, pkt, flow,
                                extra={"anomaly": {"type": "decode", "event": "decoder.ipv4.trunc_pkt"}})),
    }


def _app_txs():
    """An HTTP transaction and a TLS handshake (17 subjectAltNames, two ALPNs each way) as parsed."""
    from netsentry.applayer.http import HttpParser
    from netsentry.applayer.tls import TlsParser
    from netsentry.applayer.x509 import Certificate
    http = HttpParser()
    http.parse(b"GET /x HTTP/1.1\r\nHost: h\r\nUser-Agent: ua\r\n\r\n", True)
    http.parse(b"HTTP/1.1 301 Moved\r\nLocation: /y\r\nContent-Type: text/html\r\n"
               b"Content-Length: 2\r\n\r\nok", False)
    tls = TlsParser()
    tx = tls.tx
    tx.sni, tx.server_version = b"h", 0x0303
    tx.client_alpns, tx.server_alpns = ["h2", "http/1.1"], ["h2"]
    tx.certs.append(Certificate(der=b"\x30\x00", subject="CN=h", issuer="CN=ca", serial="01",
                                san=[f"n{i}".encode() for i in range(17)]))
    return http.txs[0], tx


_INDEXED = re.compile(r"^(?P<key>[^\[]+)\[(?P<index>\d+)\]$")


def _lookup(rec: dict, dotted: str):
    """Follow suricata-verify's path syntax: dots between keys, `key[N]` into a list."""
    node = rec
    for part in dotted.split("."):
        indexed = _INDEXED.match(part)
        key = indexed["key"] if indexed else part
        assert isinstance(node, dict) and key in node, f"missing {dotted}"
        node = node[key]
        if indexed:
            index = int(indexed["index"])
            assert isinstance(node, list) and index < len(node), f"missing {dotted}"
            node = node[index]
    return node


def _has(rec: dict, dotted: str) -> bool:
    try:
        _lookup(rec, dotted)
    except AssertionError:
        return False
    return True


def test_lookup_follows_list_indices():
    rec = {"flow": {"exception_policy": [{"target": "stream_midstream"}]}}
    assert _lookup(rec, "flow.exception_policy[0].target") == "stream_midstream"
    assert not _has(rec, "flow.exception_policy[1].target")
    assert not _has(rec, "flow.exception_policy.target")


def test_our_records_have_suricatas_fields_with_suricatas_types():
    expected = _expected_fields()
    assert expected, "no checks found in suricata-verify"
    stale = set(NOT_YET) - set(expected)
    assert not stale, f"NOT_YET names fields no suricata-verify check asks for: {sorted(stale)}"
    records = _records()
    checked = 0
    for (etype, key), want in sorted(expected.items()):
        if (etype, key) in NOT_YET:
            assert not _has(records[etype], key), (
                f"{etype}.{key} is written now: remove it from NOT_YET ({NOT_YET[(etype, key)]})")
            continue
        value = _lookup(records[etype], key)
        assert isinstance(value, want) and not (want is int and isinstance(value, bool)), (
            f"{etype}.{key}: suricata-verify expects {want.__name__}, we write {value!r}")
        checked += 1
    # the checks cover at least the 5-tuple, pcap_cnt, alert ids and flow action
    assert checked >= 10
