"""The bundled signatures against the bundled captures, as a user runs them.

Two halves:

- static checks of signatures/netsentry.rules that need no engine: every rule
  has a unique sid in the documented range and family block, a ``NETSENTRY``
  msg, a classtype that classification.config defines, rev, metadata, and a
  capture that proves it (``pcaps/scenarios_signatures.EXPECTED``);
- replays through the real CLI (``netsentry replay PCAP -S
  signatures/netsentry.rules -l DIR``): every sid fires on its attack capture
  between the expected hosts, attack captures trigger only the sids they
  were built for, and no bundled signature fires on the benign captures.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict
from functools import cache
from pathlib import Path

import orjson
import pytest

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "signatures" / "netsentry.rules"
CLASSIFICATION = REPO / "signatures" / "classification.config"
REFERENCE = REPO / "signatures" / "reference.config"
PCAPS = REPO / "pcaps"
BIN = Path(sys.executable).with_name("netsentry")

BUNDLED_SIDS = range(9_000_001, 9_100_000)
# sid block -> msg family words allowed in it (signatures/README.md documents the blocks)
FAMILIES = {
    9000: ("SCAN",),
    9001: ("WEB", "ATTACK_RESPONSE"),
    9002: ("SCAN",),
    9003: ("POLICY",),
    9004: ("DNS",),
    9005: ("ICMP",),
    9006: ("POLICY", "MALWARE"),
    9007: ("POLICY", "EXPLOIT", "DOS"),
}
REQUIRED_METADATA = ("attack_target", "created_at", "signature_severity")

sys.path.insert(0, str(PCAPS))
import scenarios_signatures  # noqa: E402  (pcaps/ is not a package)

sys.path.remove(str(PCAPS))
EXPECTED = scenarios_signatures.EXPECTED
BENIGN = sorted(p.name for p in PCAPS.glob("benign-*.pcap"))
ATTACKS = sorted({e.pcap for e in EXPECTED.values()})


# --- parsing the rules file (independent of netsentry.rules, so it checks the file, not the parser) ---

def _split_options(body: str) -> list[tuple[str, str]]:
    """Suricata's option split: ';' ends an option unless escaped or inside quotes."""
    opts, cur, quoted, esc = [], [], False, False
    for ch in body:
        if esc:
            cur.append(ch)
            esc = False
        elif ch == "\\":
            cur.append(ch)
            esc = True
        elif ch == '"':
            cur.append(ch)
            quoted = not quoted
        elif ch == ";" and not quoted:
            text = "".join(cur).strip()
            if text:
                name, _, value = text.partition(":")
                opts.append((name.strip(), value.strip()))
            cur = []
        else:
            cur.append(ch)
    assert not "".join(cur).strip(), f"option text after the last ';': {''.join(cur)!r}"
    return opts


@cache
def parsed_rules() -> list[tuple[int, str, dict[str, list[str]]]]:
    """(line number, header, {option: [values]}) for every rule line."""
    rules = []
    for lineno, line in enumerate(RULES.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"(\w+ \S+ \S+ \S+ (?:->|<>) \S+ \S+) \((.*)\)", line)
        assert m, f"netsentry.rules:{lineno}: not a rule line"
        opts: dict[str, list[str]] = defaultdict(list)
        for name, value in _split_options(m.group(2)):
            opts[name].append(value)
        rules.append((lineno, m.group(1), dict(opts)))
    return rules


def rule_by_sid() -> dict[int, dict[str, list[str]]]:
    return {int(opts["sid"][0]): opts for _l, _h, opts in parsed_rules()}


def _config_names(path: Path, key: str) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line.startswith(f"config {key}:"):
            fields = [f.strip() for f in line.split(":", 1)[1].split(",")]
            out[fields[0].split()[0] if key == "reference" else fields[0]] = ",".join(fields[1:])
    return out


def test_rules_file_has_at_least_forty_rules() -> None:
    assert len(parsed_rules()) >= 40


def test_every_rule_is_complete_and_in_its_sid_block() -> None:
    classes = _config_names(CLASSIFICATION, "classification")
    ref_systems = _config_names(REFERENCE, "reference")
    seen: dict[int, int] = {}
    for lineno, header, opts in parsed_rules():
        where = f"netsentry.rules:{lineno}"
        assert header.split()[0] in ("alert", "drop", "reject", "pass"), where
        for key in ("msg", "sid", "rev", "classtype", "metadata"):
            assert len(opts.get(key, [])) == 1, f"{where}: needs exactly one {key}"
        sid = int(opts["sid"][0])
        assert sid in BUNDLED_SIDS, f"{where}: sid {sid} outside 9000001-9099999"
        assert sid not in seen, f"{where}: sid {sid} also on line {seen.get(sid)}"
        seen[sid] = lineno
        assert re.fullmatch(r"\d+", opts["rev"][0]), where
        msg = opts["msg"][0]
        assert msg.startswith('"NETSENTRY ') and msg.endswith('"'), f"{where}: msg {msg}"
        family = msg.split()[1]
        assert family in FAMILIES[sid // 1000], f"{where}: {family} rule in the {sid // 1000}xxx block"
        assert opts["classtype"][0] in classes, f"{where}: classtype {opts['classtype'][0]} not in classification.config"
        meta_keys = {item.split()[0] for item in opts["metadata"][0].split(",")}
        for key in REQUIRED_METADATA:
            assert key in meta_keys, f"{where}: metadata lacks {key}"
        for ref in opts.get("reference", []):
            assert ref.split(",")[0] in ref_systems, f"{where}: reference system in {ref} not in reference.config"


# Rules with several contents and no fast_pattern, and why the engine's own pick is right.
NO_FAST_PATTERN_OK = {
    9006001: "|16 03| and |01| are all a ClientHello offers; the port list does the narrowing",
}


def test_rules_with_several_contents_choose_their_fast_pattern() -> None:
    for lineno, _h, opts in parsed_rules():
        sid = int(opts["sid"][0])
        if len(opts.get("content", [])) > 1 and sid not in NO_FAST_PATTERN_OK:
            assert "fast_pattern" in opts, f"netsentry.rules:{lineno}: sid {sid} has several contents, no fast_pattern"


def test_every_rule_is_proved_by_a_capture() -> None:
    sids = set(rule_by_sid())
    assert sids - set(EXPECTED) == set(), "rules without a proving capture"
    assert set(EXPECTED) - sids == set(), "captures proving sids that are not in netsentry.rules"
    for sid, exp in EXPECTED.items():
        assert (PCAPS / exp.pcap).exists(), f"sid {sid}: {exp.pcap} missing"


def test_netsentry_loads_every_bundled_rule() -> None:
    loader = pytest.importorskip("netsentry.rules.loader")
    from netsentry.config import load_config
    rs = loader.load_rules([RULES], load_config())
    assert [str(e) for e in rs.errors] == []
    assert sorted(s.sid for s in rs.signatures) == sorted(rule_by_sid())


def test_rules_check_is_clean_in_strict_mode() -> None:
    """`netsentry rules check --strict signatures/netsentry.rules`: what signatures/README.md tells users to run."""
    cmd = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "netsentry.cli"]
    proc = subprocess.run(cmd + ["rules", "check", "--strict", str(RULES)], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- replays through the CLI ---------------------------------------------------------------------

def _stage_args() -> list[str]:
    """While the anomaly stage is written in parallel, replays run with it off (as tests/test_cli.py does)."""
    import netsentry.anomaly
    return [] if hasattr(netsentry.anomaly, "AnomalyEngine") else ["--set", "anomaly.enabled=false"]


def _prefilter_backends() -> list[str]:
    """Every multi-pattern backend installed here: a user on another platform gets the other one."""
    from netsentry.detect.prefilter import available_backends
    return list(available_backends())


def replay(pcaps: list[Path], logdir: Path, *extra: str) -> list[dict]:
    cmd = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "netsentry.cli"]
    cmd += ["replay", *map(str, pcaps), "-S", str(RULES), "-l", str(logdir), "-q", *_stage_args(), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, f"{' '.join(cmd)}\nexit {proc.returncode}\n{proc.stderr}"
    return [orjson.loads(line) for line in (logdir / "eve.json").read_bytes().splitlines()]


@pytest.fixture(scope="module", params=_prefilter_backends())
def alerts_by_capture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    """Each attack and benign capture replayed on its own, once per prefilter backend:
    name -> its bundled-signature alerts."""
    out = {}
    for name in ATTACKS + BENIGN:
        records = replay([PCAPS / name], tmp_path_factory.mktemp(name.replace(".", "_")),
                         "--set", f"detect.prefilter={request.param}")
        out[name] = [r for r in records if r.get("event_type") == "alert"
                     and r["alert"]["signature_id"] in BUNDLED_SIDS]
    return out


@pytest.mark.parametrize("sid", sorted(EXPECTED))
def test_signature_fires_on_its_capture_between_the_expected_hosts(sid: int, alerts_by_capture) -> None:
    exp = EXPECTED[sid]
    hits = [a for a in alerts_by_capture[exp.pcap] if a["alert"]["signature_id"] == sid]
    pairs = sorted({(a["src_ip"], a["dest_ip"]) for a in hits})
    assert (exp.src_ip, exp.dest_ip) in pairs, f"sid {sid} on {exp.pcap}: expected {exp.src_ip} -> {exp.dest_ip}, got {pairs}"


@pytest.mark.parametrize("name", ATTACKS)
def test_attack_capture_triggers_only_its_own_signatures(name: str, alerts_by_capture) -> None:
    own = {sid for sid, e in EXPECTED.items() if e.pcap == name}
    fired = {a["alert"]["signature_id"] for a in alerts_by_capture[name]}
    assert fired - own == set(), f"{name}: signatures built for other captures fired"


def test_scan_signatures_alert_once_per_scanner_not_per_packet(alerts_by_capture) -> None:
    """The flag-scan rules carry `threshold: type limit, track by_src, count 1, seconds 60`:
    each scanner in attacks-scan.pcap sends 7-10 such packets within a second, and gets one alert."""
    per_source: dict[tuple[int, str], int] = defaultdict(int)
    for a in alerts_by_capture["attacks-scan.pcap"]:
        per_source[(a["alert"]["signature_id"], a["src_ip"])] += 1
    assert per_source and set(per_source.values()) == {1}, dict(per_source)


@pytest.mark.parametrize("name", BENIGN)
def test_no_bundled_signature_fires_on_benign_traffic(name: str, alerts_by_capture) -> None:
    fired = sorted({(a["alert"]["signature_id"], a["alert"]["signature"], a["src_ip"], a["dest_ip"])
                    for a in alerts_by_capture[name]})
    assert fired == []


def test_alert_records_carry_the_rule_text(alerts_by_capture) -> None:
    """signature, category, severity, rev and metadata in EVE come from the rule and classification.config."""
    classes = {}
    for line in CLASSIFICATION.read_text().splitlines():
        if line.startswith("config classification:"):
            short, desc, prio = (f.strip() for f in line.split(":", 1)[1].split(","))
            classes[short] = (desc, int(prio))
    rules = rule_by_sid()
    checked = 0
    for name in ATTACKS:
        for a in alerts_by_capture[name]:
            opts = rules[a["alert"]["signature_id"]]
            desc, prio = classes[opts["classtype"][0]]
            assert a["alert"]["signature"] == opts["msg"][0].strip('"')
            assert a["alert"]["category"] == desc
            assert a["alert"]["severity"] == prio
            assert a["alert"]["rev"] == int(opts["rev"][0])
            assert a["alert"]["gid"] == 1
            assert "signature_severity" in a["alert"]["metadata"]
            checked += 1
    assert checked >= len(EXPECTED)


def test_readme_demo_replays_every_capture_and_fires_every_signature(tmp_path: Path) -> None:
    """`netsentry replay pcaps/ -S signatures/netsentry.rules -l logs/demo`, as the README shows:
    every bundled signature and every anomaly detector's alert next to each other."""
    records = replay([PCAPS], tmp_path)
    fired = {r["alert"]["signature_id"] for r in records if r.get("event_type") == "alert"}
    assert set(EXPECTED) <= fired
    anomaly_sids = {sid for sid in fired if 9100000 <= sid <= 9100999}
    # one per detector family; packet-flood and the bytes/s spike have no scenario of their own
    assert {9100001, 9100002, 9100010, 9100011, 9100012, 9100020, 9100021, 9100022,
            9100024, 9100030, 9100040, 9100041} <= anomaly_sids
    assert sum(1 for r in records if r.get("event_type") == "stats") == 1
