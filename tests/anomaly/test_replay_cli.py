"""End to end through `netsentry replay`: anomaly alerts and asset enrichment land in eve.json."""

from __future__ import annotations

import json
import subprocess
import sys

from anomaly_helpers import PCAPS


def replay(tmp_path, pcap, config_text=""):
    cfg = tmp_path / "netsentry.yaml"
    cfg.write_text(config_text)
    out = tmp_path / "logs"
    proc = subprocess.run([sys.executable, "-m", "netsentry.cli", "replay", str(PCAPS / pcap), "-l", str(out),
                           "-c", str(cfg)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in (out / "eve.json").read_text().splitlines()]


def test_anomaly_alerts_and_assets_in_eve(tmp_path):
    records = replay(tmp_path, "anomaly-portscan.pcap", """
assets:
  - name: web-frontend
    cidr: 10.0.0.10
    criticality: critical
  - name: dmz
    cidr: 10.0.0.0/24
    criticality: medium
""")
    alerts = {r["netsentry"]["anomaly"]["key"]: r for r in records
              if r["event_type"] == "alert" and "anomaly" in r.get("netsentry", {})}
    assert not [r for r in records if r["event_type"] == "alert" and "anomaly" in r]
    assert set(alerts) == {"203.0.113.50>10.0.0.10/tcp", "203.0.113.51>10.0.0.25/tcp",
                           "203.0.113.52>10.0.0.53/udp"}
    web = alerts["203.0.113.50>10.0.0.10/tcp"]
    assert web["alert"]["signature_id"] == 9100001 and web["alert"]["gid"] == 1
    assert web["alert"]["severity"] == 1                       # 3, raised by 2 for a critical asset
    assert web["netsentry"]["assets"] == [
        {"role": "dest", "ip": "10.0.0.10", "name": "web-frontend", "criticality": "critical"}]
    assert web["src_ip"] == "203.0.113.50" and web["dest_ip"] == "10.0.0.10" and web["proto"] == "TCP"
    assert "flow_id" not in web and "src_port" not in web and "dest_port" not in web
    mail = alerts["203.0.113.51>10.0.0.25/tcp"]
    assert mail["alert"]["severity"] == 3 and mail["netsentry"]["assets"][0]["name"] == "dmz"
    stats = [r for r in records if r["event_type"] == "stats"]
    assert stats[-1]["stats"]["netsentry"]["anomaly"]["alerts"] == 3


def test_bad_asset_is_a_config_error(tmp_path):
    cfg = tmp_path / "netsentry.yaml"
    cfg.write_text("assets:\n  - {name: a, cidr: 10.0.0.300/8, criticality: high}\n")
    proc = subprocess.run([sys.executable, "-m", "netsentry.cli", "replay", str(PCAPS / "benign-dns.pcap"),
                           "-l", str(tmp_path / "o"), "-c", str(cfg)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "assets[0].cidr: invalid network '10.0.0.300/8'" in proc.stderr
