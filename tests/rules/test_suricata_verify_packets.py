"""Per-signature verification against Suricata's own expected alerts (suricata-verify).

Every rule of a test is checked against every packet of its capture, with the
real decoder and flow table and no prefilter, thresholds or actions: what is
graded is only what this package decides (header_match, match, post_match).
Tests whose outcome depends on the engine (thresholds, pass/drop, tunnels) or
on stream reassembly are listed with the reason and not run here.
"""

from __future__ import annotations

import pytest
import yaml
from rules_helpers import SV

from netsentry.rules import load_rules

ENGINE_OR_STREAM = {
    "bug-4663": "pass/drop actions are the engine's",
    "bug-5633-gre-01": "pass action over a GRE tunnel is the engine's",
    "bug-5633-gre-02": "pass action over a GRE tunnel is the engine's",
    "bug-6244-tcp-rst-with-data": "needs TCP stream reassembly (only_stream)",
    "detection_filter-distinct-srcport": "detection_filter is applied by the engine",
    "detection_filter-distinct-srcport-no-dups": "detection_filter is applied by the engine",
    "like-ip-only-01": "flow:established on the handshake's last ACK is the flow table's call",
}


GRADED_FIELDS = {"alert.signature_id", "pcap_cnt", "src_port", "dest_port"}


def _tests() -> list[str]:
    listing = SV / "packet.txt"
    if not listing.is_file():
        return []
    return [t for t in listing.read_text().split() if t not in ENGINE_OR_STREAM]


def _alerts(test_dir, spec) -> list[dict]:
    from netsentry.capture import open_capture
    from netsentry.decode.decoder import Decoder
    from netsentry.flow.table import FlowTable

    rules = test_dir / spec["rules"] if spec.get("rules") else sorted(test_dir.glob("*.rules"))[0]
    pcap = (test_dir / spec["pcap"] if spec.get("pcap")
            else sorted([*test_dir.glob("*.pcap"), *test_dir.glob("*.pcapng")])[0])
    rs = load_rules([rules], {"classification-file": str(SV / "etc" / "classification.config")})
    assert rs.errors == [], [str(e) for e in rs.errors]
    args = " ".join(spec.get("args") or [])
    decoder = Decoder(False)
    flows = FlowTable({"midstream": "midstream=true" in args}, lambda f: None)
    alerts: list[dict] = []     # the EVE fields graded here, per alert
    for n, (ts, data, _wirelen, linktype) in enumerate(open_capture(pcap), 1):
        p = decoder.decode(data, linktype)
        p.ts, p.pcap_cnt = ts, n
        f = flows.update(p)
        for s in rs.signatures:
            protos = s.ip_protos
            if protos is not None and p.proto not in protos:
                continue
            if s.header_match(p, f) and s.match(p, f):
                s.post_match(p, f)
                if not s.noalert:
                    alerts.append({"alert.signature_id": s.sid, "pcap_cnt": n,
                                   "src_port": p.sp, "dest_port": p.dp})
    return alerts


@pytest.mark.shared
@pytest.mark.parametrize("name", _tests() or ["(suricata-verify absent)"])
def test_alerts_match_suricata(name):
    if not (SV / "tests" / name).is_dir():
        pytest.skip("../shared/suricata-verify is not present (fresh clone)")
    test_dir = SV / "tests" / name
    spec = yaml.safe_load((test_dir / "test.yaml").read_text())
    alerts = _alerts(test_dir, spec)
    graded = 0
    for check in spec.get("checks", []):
        flt = check.get("filter") or {}
        match = flt.get("match", {})
        keys = set(match) - {"event_type"}
        if match.get("event_type") != "alert" or keys - GRADED_FIELDS:
            continue
        got = sum(1 for a in alerts if all(a[k] == match[k] for k in keys))
        assert got == flt["count"], f"{name}: {match}: expected {flt['count']} alerts, got {got}"
        graded += 1
    assert graded, f"{name}: no alert check graded"
