"""The HTML replay report (report/): what it aggregates, what it links, its bad inputs.

One real replay of pcaps/ (IPS mode with the bundled rules turned into drop
rules, assets configured, the anomaly engine on) feeds most tests, so the
report is checked against every kind of record the sensor writes.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from netsentry.report import ReportInputError, read_eve, write_report
from netsentry.report.aggregate import anomaly_evidence, parse_ts
from netsentry.report.html import _bins, render

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).with_name("netsentry")
ASSETS = """
assets:
  - name: web-server
    cidr: 10.0.0.10/32
    criticality: critical
  - name: dns-resolver
    cidr: 10.0.0.53/32
    criticality: high
"""


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LOGDIR of `replay pcaps/ --simulate-ips --report` with drop rules and assets."""
    tmp = tmp_path_factory.mktemp("replay")
    rules = tmp / "drop.rules"
    rules.write_text(re.sub(r"(?m)^alert ", "drop ", (REPO / "signatures/netsentry.rules").read_text()))
    config = tmp / "netsentry.yaml"
    config.write_text(ASSETS)
    logdir = tmp / "logs"
    proc = run("replay", "pcaps/", "-S", str(rules), "-c", str(config), "--simulate-ips", "-l", str(logdir),
               "--report", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert f"report: {logdir / 'report.html'}" in proc.stdout
    return logdir


def records(logdir: Path) -> list[dict]:
    return [orjson.loads(x) for x in (logdir / "eve.json").read_bytes().splitlines()]


def test_replay_report_is_self_contained_and_every_link_resolves(replay: Path):
    html = (replay / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>")
    # nothing fetched from anywhere: no scripts, stylesheets, images or frames by URL
    assert not re.search(r"<(script|link|img|iframe)\b", html)
    assert not re.search(r"""(src|href)=["'](https?:)?//""", html)
    targets = set(re.findall(r'href="#(rec-\d+)"', html))
    anchors = set(re.findall(r'id="(rec-\d+)"', html))
    assert targets and targets == anchors
    # each anchor holds the very record at that line of eve.json
    lines = (replay / "eve.json").read_bytes().splitlines()
    for anchor in sorted(targets)[:20]:
        n = int(anchor[4:])
        block = re.search(rf'id="{anchor}">line {n}</h3><pre>(.*?)</pre>', html, re.S).group(1)
        import html as html_mod
        assert orjson.loads(html_mod.unescape(block)) == orjson.loads(lines[n - 1])


def test_totals_and_tables_match_the_records(replay: Path):
    recs = records(replay)
    agg = read_eve(replay / "eve.json")
    flows = [r for r in recs if r["event_type"] == "flow"]
    alerts = [r for r in recs if r["event_type"] == "alert"]
    drops = [r for r in recs if r["event_type"] == "drop"]
    assert agg.records == len(recs)
    assert agg.by_type["flow"] == len(flows) and agg.by_type["drop"] == len(drops) > 0
    assert agg.flow_pkts == sum(r["flow"]["pkts_toserver"] + r["flow"]["pkts_toclient"] for r in flows)
    anomaly = [r for r in alerts if "anomaly" in r or "anomaly" in r.get("netsentry", {})]
    assert agg.anomaly_alerts == len(anomaly) > 0
    assert sum(r.count for r in agg.signatures.values()) == len(alerts)
    # the host with the most bytes, computed independently
    totals: dict[str, int] = {}
    for r in flows:
        b = r["flow"]["bytes_toserver"] + r["flow"]["bytes_toclient"]
        totals[r["src_ip"]] = totals.get(r["src_ip"], 0) + b
        totals[r["dest_ip"]] = totals.get(r["dest_ip"], 0) + b
    top = max(totals, key=lambda h: totals[h])
    assert agg.hosts[top][0] == totals[top]
    html = (replay / "report.html").read_text()
    assert f"<td>{top}</td><td class=\"n\">{totals[top]:,}</td>" in html
    # assets: the web server was hit, and the table says by what
    assert agg.assets[("web-server", "10.0.0.10")].count > 0
    assert "web-server" in html and "critical" in html
    # every stats decoder.pkts is the packets total shown
    stats = [r for r in recs if r["event_type"] == "stats"][-1]["stats"]
    assert f"<b>{stats['decoder']['pkts']:,}</b>" in html


def test_anomaly_alerts_show_baseline_against_observed_and_are_marked(replay: Path):
    html = (replay / "report.html").read_text()
    agg = read_eve(replay / "eve.json")
    spikes = [a for a in agg.anomalies if "baseline" in a["evidence"]]
    assert spikes, "the anomaly-spike capture must yield a baseline alert"
    ev = spikes[0]["evidence"]
    assert f"learned mean {ev['baseline']['mean']:g}" in html
    assert f"observed {ev['observed']:g} {ev['unit']}" in html
    # one red triangle on the timeline per anomaly alert
    assert html.count('<path d="M') == agg.anomaly_alerts
    assert "fixed threshold" in html                         # detectors without a baseline say so


def test_evidence_under_netsentry_and_old_top_level_both_count():
    new = {"event_type": "alert", "netsentry": {"anomaly": {"detector": "x", "observed": 2}}}
    old = {"event_type": "alert", "anomaly": {"detector": "y", "observed": 3}}
    decoder = {"event_type": "anomaly", "anomaly": {"type": "decode", "event": "decoder.ipv4.trunc_pkt"}}
    assert anomaly_evidence(new) == {"detector": "x", "observed": 2}
    assert anomaly_evidence(old) == {"detector": "y", "observed": 3}
    assert anomaly_evidence(decoder) is None      # Suricata's anomaly record is a decoder event


def test_decoder_events_assets_and_new_layout_from_a_written_log(tmp_path: Path):
    t = "2026-11-02T09:00:0{}.000000+0000"
    lines = [
        {"timestamp": t.format(1), "pcap_cnt": 7, "event_type": "anomaly", "src_ip": "10.0.0.1",
         "anomaly": {"type": "decode", "event": "decoder.ipv4.trunc_pkt"}},
        {"timestamp": t.format(2), "flow_id": 11, "pcap_cnt": 9, "event_type": "alert", "src_ip": "1.2.3.4",
         "dest_ip": "10.0.0.5", "alert": {"gid": 1, "signature_id": 9100030, "signature": "spike",
                                          "category": "Misc activity", "severity": 2},
         "netsentry": {"anomaly": {"detector": "traffic-spike", "observed": 300.0, "unit": "packets/s",
                                   "threshold": 150.0, "baseline": {"mean": 12.5, "stddev": 1.0}},
                       "asset": {"role": "dest", "ip": "10.0.0.5", "name": "db", "criticality": "high"}}},
    ]
    eve = tmp_path / "eve.json"
    eve.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    out, agg = write_report(eve)
    assert out == tmp_path / "report.html"
    assert agg.decoder_events["decoder.ipv4.trunc_pkt"].count == 1
    assert agg.anomaly_alerts == 1 and agg.assets[("db", "10.0.0.5")].count == 1
    html = out.read_text()
    assert "decoder.ipv4.trunc_pkt" in html and "learned mean 12.5" in html
    assert 'href="#rec-1"' in html and 'href="#rec-2"' in html


def test_timeline_rates_spread_each_flow_over_its_lifetime(tmp_path: Path):
    """A flow of 100 packets over seconds 0-9 and one of 30 packets within second 5:
    10 packets/s throughout, 40 in second 5 (1 s bins for a 10 s capture)."""
    def flow(start: int, end: int, pkts: int) -> dict:
        ts = "2026-11-02T09:00:{:02d}.000000+0000"
        return {"timestamp": ts.format(end), "flow_id": start, "event_type": "flow", "src_ip": "10.0.0.1",
                "dest_ip": "10.0.0.2", "dest_port": 80, "proto": "TCP",
                "flow": {"pkts_toserver": pkts, "pkts_toclient": 0, "bytes_toserver": pkts * 100,
                         "bytes_toclient": 0, "start": ts.format(start), "end": ts.format(end) }}
    alert = {"timestamp": "2026-11-02T09:00:03.500000+0000", "event_type": "alert",
             "alert": {"signature_id": 1, "signature": "x"}}
    eve = tmp_path / "eve.json"
    eve.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in (flow(0, 9, 100), flow(5, 5, 30), alert)))
    agg = read_eve(eve)
    start, width, rates, alerts, anomalies, labels = _bins(agg)
    assert width == 1 and start == parse_ts("2026-11-02T09:00:00.000000+0000")
    assert rates == pytest.approx([10, 10, 10, 10, 10, 40, 10, 10, 10, 10])
    assert alerts[3] == 60.0 and sum(alerts) == 60.0          # one alert in a 1 s bin = 60/min
    assert labels[0] == "09:00:00"


def test_report_size_is_bounded_on_many_records(tmp_path: Path):
    """20k flow records and 20k alerts over 2,000 signatures and 5,000 hosts: the report
    keeps top tables and a few samples per row, not the records."""
    eve = tmp_path / "eve.json"
    with open(eve, "wb") as f:
        for i in range(20_000):
            ts = f"2026-11-02T09:{i // 1000 % 60:02d}:{i % 60:02d}.000000+0000"
            f.write(orjson.dumps({"timestamp": ts, "flow_id": i, "event_type": "flow",
                                  "src_ip": f"10.0.{i % 5000 // 250}.{i % 250}", "dest_ip": "192.0.2.1",
                                  "dest_port": i % 1000, "proto": "TCP",
                                  "flow": {"pkts_toserver": 3, "pkts_toclient": 2, "bytes_toserver": 300,
                                           "bytes_toclient": 200, "start": ts, "end": ts}}) + b"\n")
            f.write(orjson.dumps({"timestamp": ts, "flow_id": i, "pcap_cnt": i, "event_type": "alert",
                                  "alert": {"signature_id": i % 2000, "signature": f"sig {i % 2000}",
                                            "category": "c", "severity": 2}}) + b"\n")
    out, agg = write_report(eve)
    assert agg.records == 40_000
    size = out.stat().st_size
    assert size < 400_000, size
    html = out.read_text()
    assert "1980 more signatures not listed" in html


def test_empty_file_non_eve_missing_file_get_one_line_and_exit_1(tmp_path: Path):
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    proc = run("report", str(empty))
    assert proc.returncode == 1
    assert one_line(proc) == f"netsentry: report: {empty}: empty: no complete EVE records to report on"
    text = tmp_path / "notes.txt"
    text.write_text("hello world\nsecond line\n")
    proc = run("report", str(text))
    assert proc.returncode == 1
    assert one_line(proc) == (f"netsentry: report: {text}:1: not an EVE record "
                              "(expected a JSON object with timestamp and event_type)")
    other_json = tmp_path / "other.json"
    other_json.write_text('{"a": 1}\n')
    assert "other.json:1: not an EVE record" in one_line(run("report", str(other_json)))
    proc = run("report", str(tmp_path / "missing.json"))
    assert proc.returncode == 1 and "missing.json: cannot read: No such file or directory" in one_line(proc)
    assert not list(tmp_path.glob("*.html"))
    with pytest.raises(ReportInputError):
        read_eve(empty)


def test_truncated_file_is_reported_up_to_the_cut_and_exits_1(replay: Path, tmp_path: Path):
    data = (replay / "eve.json").read_bytes()
    n = data.count(b"\n")
    cut = tmp_path / "eve.json"
    cut.write_bytes(data[:-40])                   # inside the last record
    proc = run("report", str(cut), "-o", str(tmp_path / "cut.html"))
    assert proc.returncode == 1
    assert one_line(proc) == (f"netsentry: report: {cut}:{n}: last record cut short; "
                              "the report covers the records before it")
    html = (tmp_path / "cut.html").read_text()
    assert f"record cut short (line {n})" in html
    assert f"<b>{n - 1:,}</b>" in html           # the records total


def test_unwritable_output_is_one_line(replay: Path, tmp_path: Path):
    proc = run("report", str(replay / "eve.json"), "-o", str(tmp_path / "no" / "such" / "dir.html"))
    assert proc.returncode == 1
    assert "cannot write" in one_line(proc)


def test_render_is_deterministic_but_for_its_timestamp(replay: Path):
    agg1, agg2 = read_eve(replay / "eve.json"), read_eve(replay / "eve.json")
    strip = lambda s: re.sub(r"made by netsentry \S+ at [^<]*", "", s)  # noqa: E731
    assert strip(render(agg1)) == strip(render(agg2))


def test_replay_report_flag_never_takes_the_capture_as_its_output(tmp_path: Path):
    """`--report` is a flag: `replay --report capture.pcap` replays the capture (and leaves it alone)."""
    pcap = REPO / "pcaps" / "benign-dns.pcap"
    before = pcap.read_bytes()
    proc = run("replay", "--report", str(pcap), "-l", str(tmp_path), "-q")
    assert proc.returncode == 0, proc.stderr
    assert pcap.read_bytes() == before
    assert (tmp_path / "report.html").exists()
    proc = run("replay", str(pcap), "-l", str(tmp_path / "b"), "-q", "--report-file", str(tmp_path / "x.html"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "x.html").read_text().startswith("<!DOCTYPE html>")
    assert not (tmp_path / "b" / "report.html").exists()


def test_suricata_records_of_other_types_and_timestamp_shapes(tmp_path: Path):
    """An eve.json from Suricata (app-layer records, other offsets, no fraction) reports too."""
    lines = [
        {"timestamp": "2026-11-02T10:00:00.000000+0100", "flow_id": 1, "event_type": "http",
         "src_ip": "10.0.0.1", "dest_ip": "10.0.0.2", "http": {"hostname": "example.org"}},
        {"timestamp": "2026-11-02T09:00:01+0000", "flow_id": 1, "event_type": "flow", "src_ip": "10.0.0.1",
         "dest_ip": "10.0.0.2", "dest_port": 80, "proto": "TCP",
         "flow": {"pkts_toserver": 2, "pkts_toclient": 2, "bytes_toserver": 100, "bytes_toclient": 900,
                  "start": "2026-11-02T09:00:00.500000+0000"}},
        {"timestamp": "2026-11-02T09:00:02.25Z", "event_type": "dns", "dns": {"rrname": "example.org"}},
    ]
    eve = tmp_path / "eve.json"
    eve.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    out, agg = write_report(eve)
    assert agg.by_type == {"http": 1, "flow": 1, "dns": 1}
    assert agg.first_ts == parse_ts("2026-11-02T09:00:00.000000+0000")      # the http record, 10:00+01:00
    assert agg.last_ts == parse_ts("2026-11-02T09:00:02.250000+0000")
    assert agg.hosts["10.0.0.2"][0] == 1000
    assert "http: 1" in out.read_text()
