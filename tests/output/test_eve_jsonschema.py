"""Every EVE record we write validates against Suricata's own JSON schema for EVE.

../shared/eve-schema/schema.json is Suricata's etc/schema.json: every object
in it is closed (``additionalProperties: false``), so a SIEM pipeline that
validates or maps Suricata's records rejects a field it does not know. The
records come from real replays: every sample capture in pcaps/ against the
bundled signatures (with community-id, pcap-file, sensor-name and the alert
options payload, payload-printable and packet on, so those fields are checked too) and every suricata-verify capture of core.txt and stretch.txt
against its own rules, in simulated IPS mode so drop records are written.

The check excludes exactly two paths, where netsentry's own fields live by
design (docs/architecture.md, "the netsentry object"): the top-level
``netsentry`` object and ``stats.netsentry``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from netsentry.cli import main
from netsentry.log import setup_logging

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a dev dependency (pip install -e .[dev])")

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared"
SCHEMA = SHARED / "eve-schema" / "schema.json"
VERIFY = SHARED / "suricata-verify"
PCAPS = REPO / "pcaps"

pytestmark = [pytest.mark.shared,
              pytest.mark.skipif(not SCHEMA.exists(), reason=f"{SCHEMA} not present (a plain clone has no ../shared)")]

OURS = "netsentry"


def strip_ours(rec: dict[str, Any]) -> dict[str, Any]:
    """The record without the two paths that are netsentry's own (and only those)."""
    rec = dict(rec)
    rec.pop(OURS, None)
    stats = rec.get("stats")
    if isinstance(stats, dict) and OURS in stats:
        rec["stats"] = {k: v for k, v in stats.items() if k != OURS}
    return rec


def violations(validator: Any, eve: Path) -> list[str]:
    out = []
    for n, line in enumerate(eve.read_bytes().splitlines(), 1):
        rec = json.loads(line)
        for err in validator.iter_errors(strip_ours(rec)):
            path = "/".join(str(p) for p in err.absolute_path) or "(record)"
            out.append(f"{eve}:{n}: {rec.get('event_type')}: {path}: {err.message[:200]}")
    return out


def verify_cases() -> list[tuple[Path, Path | None]]:
    """(capture, rules) of every suricata-verify test listed in core.txt and stretch.txt."""
    cases = []
    names: list[str] = []
    for listing in ("core.txt", "stretch.txt"):
        path = VERIFY / listing
        if path.exists():
            names += [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    for name in dict.fromkeys(names):
        testdir = VERIFY / "tests" / name
        doc = yaml.safe_load((testdir / "test.yaml").read_text()) or {} if (testdir / "test.yaml").exists() else {}
        if doc.get("pcap"):
            capture = (testdir / doc["pcap"]).resolve()
        else:
            found = sorted(p for p in testdir.glob("*") if p.suffix in (".pcap", ".pcapng"))
            capture = found[0] if found else None
        if capture is None or not capture.exists():
            continue
        rules = testdir / "test.rules"
        cases.append((capture, rules if rules.exists() else None))
    return cases


@pytest.fixture(scope="module")
def validator() -> Any:
    schema = json.loads(SCHEMA.read_text())
    return jsonschema.Draft202012Validator(schema)


def test_strip_ours_removes_exactly_the_two_paths(validator):
    rec = {"timestamp": "2024-01-01T00:00:00.000000+0000", "event_type": "stats",
           "netsentry": {"x": 1}, "stats": {"uptime": 1, "netsentry": {"y": 2}}}
    assert list(validator.iter_errors(strip_ours(rec))) == []
    # anything else of ours is still caught: the check can fail
    rec["stats"]["anomaly"] = {"alerts": 1}
    rec["anomaly"] = {"detector": "port-scan"}
    assert len(list(validator.iter_errors(strip_ours(rec)))) == 2


def test_every_record_of_every_replay_validates(validator, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    logging.getLogger("scapy").setLevel(logging.ERROR)
    runs: list[tuple[list[str], Path]] = []
    for capture in sorted(PCAPS.glob("*.pcap")):
        runs.append(([str(capture), "-S", str(REPO / "signatures" / "netsentry.rules"),
                      "--set", "outputs.eve-log.community-id=true", "--set", "outputs.eve-log.pcap-file=true",
                      "--set", "outputs.eve-log.sensor-name=sensor-1",
                      "--set", "outputs.eve-log.alert={payload: true, payload-printable: true, packet: true}"],
                     tmp_path / f"pcaps-{capture.stem}"))
    for i, (capture, rules) in enumerate(verify_cases()):
        args = [str(capture), "--simulate-ips"]
        if rules is not None:
            args += ["-S", str(rules)]
        runs.append((args, tmp_path / f"sv-{i}"))
    assert len(runs) > 40, "too few captures found to say anything"
    problems: list[str] = []
    types: Counter[str] = Counter()
    for args, logdir in runs:
        try:
            status = main(["replay", *args, "-l", str(logdir), "-q"])
        finally:
            # main() pointed the daemon log at capsys' stream, closed after this test
            setup_logging(stream=sys.__stderr__)
        capsys.readouterr()
        eve = logdir / "eve.json"
        if status != 0 or not eve.exists():
            continue        # refused captures (unsupported link types) are tested elsewhere
        types.update(json.loads(line)["event_type"] for line in eve.read_bytes().splitlines())
        problems += violations(validator, eve)
    assert not problems, f"{len(problems)} schema violations, e.g.:\n" + "\n".join(problems[:20])
    # every event type netsentry writes was seen and checked
    assert {"alert", "drop", "anomaly", "flow", "stats"} <= set(types), types
