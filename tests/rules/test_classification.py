"""classification.config: the bundled current list, and a ruleset's own file beside its rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from netsentry.rules import load_rules
from netsentry.rules.classification import load_classifications
from netsentry.rules.loader import BUNDLED_DATA

ET_NEWER = ("command-and-control", "pup-activity", "coin-mining", "exploit-kit", "credential-theft",
            "targeted-activity", "external-ip-check", "domain-c2", "social-engineering")


def _rule(tmp: Path, classtype: str) -> Path:
    path = tmp / "r.rules"
    path.write_text(f'alert tcp any any -> any any (msg:"x"; content:"a"; classtype:{classtype}; sid:1;)\n')
    return path


def test_bundled_list_has_ets_newer_classtypes() -> None:
    table, errors = load_classifications(BUNDLED_DATA / "classification.config")
    assert not errors
    assert set(ET_NEWER) <= set(table)
    assert table["command-and-control"] == ("Malware Command and Control Activity Detected", 1)
    assert table["trojan-activity"][1] == 1 and table["not-suspicious"][1] == 3


@pytest.mark.parametrize("classtype", ET_NEWER)
def test_rules_with_newer_classtypes_load(tmp_path: Path, classtype: str) -> None:
    rs = load_rules([_rule(tmp_path, classtype)], {})
    assert not rs.errors and rs.signatures[0].class_description


def test_rulesets_own_file_beside_the_rules_wins(tmp_path: Path, monkeypatch) -> None:
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    (elsewhere / "classification.config").write_text("config classification: my-class,From cwd,3\n")
    monkeypatch.chdir(elsewhere)
    rules_dir = tmp_path / "ruleset"
    rules_dir.mkdir()
    (rules_dir / "classification.config").write_text(
        "config classification: my-class,Ruleset's own,2\n"
        "config classification: trojan-activity,Renamed by the ruleset,4\n")
    rs = load_rules([_rule(rules_dir, "my-class")], {})
    sig = rs.signatures[0]
    assert (sig.class_description, sig.severity) == ("Ruleset's own", 2)
    assert rs.classifications["trojan-activity"] == ("Renamed by the ruleset", 4)   # overrides bundled
    assert "coin-mining" in rs.classifications                                      # bundled fills in


def test_unknown_classtype_is_still_an_error(tmp_path: Path) -> None:
    rs = load_rules([_rule(tmp_path, "no-such-class")], {})
    assert not rs.signatures and "no-such-class" in str(rs.errors[0])
