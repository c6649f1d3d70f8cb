"""Configuration loading: defaults as schema, user file merge, --set, and the error lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from netsentry.config import ConfigError, get, load_config, load_defaults


def write(tmp_path: Path, text: str, name: str = "netsentry.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(path=None, overrides=()) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    return str(info.value)


# --- defaults ------------------------------------------------------------------

def test_defaults_mirror_suricata_vars():
    cfg = load_defaults()
    groups = cfg["vars"]["address-groups"]
    assert groups["HOME_NET"] == "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]"
    assert groups["EXTERNAL_NET"] == "!$HOME_NET"
    assert groups["AIM_SERVERS"] == "$EXTERNAL_NET"
    ports = cfg["vars"]["port-groups"]
    assert ports["HTTP_PORTS"] == "80"
    assert ports["SHELLCODE_PORTS"] == "!80"
    assert ports["ORACLE_PORTS"] == 1521
    assert ports["FILE_DATA_PORTS"] == "[$HTTP_PORTS,110,143]"
    assert ports["TEREDO_PORTS"] == 3544


def test_no_file_no_overrides_is_the_defaults():
    assert load_config() == load_defaults()


def test_defaults_are_fresh_copies():
    a = load_config()
    a["flow"]["max-flows"] = 1
    assert load_config()["flow"]["max-flows"] != 1


# --- merging -------------------------------------------------------------------

def test_user_file_merges_into_defaults(tmp_path):
    path = write(tmp_path, "flow:\n  max-flows: 1000\noutputs:\n  eve-log:\n    filename: alerts.json\n")
    cfg = load_config(path)
    assert cfg["flow"]["max-flows"] == 1000
    # siblings keep their defaults
    assert cfg["flow"]["timeouts"]["tcp"]["established"] == 600
    assert cfg["outputs"]["eve-log"]["filename"] == "alerts.json"
    assert cfg["outputs"]["eve-log"]["enabled"] is True


def test_user_lists_replace_default_lists(tmp_path):
    path = write(tmp_path, "outputs:\n  eve-log:\n    types: [alert]\nrule-files: [a.rules, b.rules]\n")
    cfg = load_config(path)
    assert cfg["outputs"]["eve-log"]["types"] == ["alert"]
    assert cfg["rule-files"] == ["a.rules", "b.rules"]


def test_empty_user_file_changes_nothing(tmp_path):
    assert load_config(write(tmp_path, "# nothing here\n")) == load_defaults()


def test_empty_section_keeps_its_defaults(tmp_path):
    cfg = load_config(write(tmp_path, "flow:\n"))
    assert cfg["flow"] == load_defaults()["flow"]


def test_user_may_add_address_and_port_groups(tmp_path):
    path = write(tmp_path, "vars:\n  address-groups:\n    LAB_NET: '[10.9.0.0/16]'\n"
                           "  port-groups:\n    ADMIN_PORTS: 8443\n")
    cfg = load_config(path)
    assert cfg["vars"]["address-groups"]["LAB_NET"] == "[10.9.0.0/16]"
    assert cfg["vars"]["address-groups"]["HOME_NET"].startswith("[192.168.0.0/16")
    assert cfg["vars"]["port-groups"]["ADMIN_PORTS"] == 8443


def test_a_default_port_group_takes_text_or_a_number(tmp_path):
    """Suricata files quote single ports ('21'); our default is the number 21."""
    cfg = load_config(write(tmp_path, "vars:\n  port-groups:\n    FTP_PORTS: '21'\n    SSH_PORTS: '[22,2222]'\n"))
    assert cfg["vars"]["port-groups"]["FTP_PORTS"] == "21"
    assert cfg["vars"]["port-groups"]["SSH_PORTS"] == "[22,2222]"
    with pytest.raises(ConfigError, match=r"vars\.port-groups\.FTP_PORTS: expected a string or integer, got a list"):
        load_config(write(tmp_path, "vars:\n  port-groups:\n    FTP_PORTS: [21]\n"))
    with pytest.raises(ConfigError, match=r"vars\.port-groups\.FTP_PORTS: 70000 is out of range"):
        load_config(write(tmp_path, "vars:\n  port-groups:\n    FTP_PORTS: 70000\n"))


def test_free_form_sections_accept_any_items(tmp_path):
    """Empty-list defaults are validated by their stage (threshold entries by detect/)."""
    cfg = load_config(write(tmp_path, "threshold:\n  - {suppress: {gen_id: 1, sig_id: 5}}\n"))
    assert cfg["threshold"] == [{"suppress": {"gen_id": 1, "sig_id": 5}}]


def test_yaml_booleans_are_booleans(tmp_path):
    cfg = load_config(write(tmp_path, "stream:\n  midstream: yes\n"))
    assert cfg["stream"]["midstream"] is True


# --- --set ---------------------------------------------------------------------

def test_set_parses_yaml_scalars():
    cfg = load_config(None, ["flow.max-flows=1000", "stream.midstream=true",
                             "logging.level=debug", "rule-files=[x.rules]"])
    assert cfg["flow"]["max-flows"] == 1000
    assert cfg["stream"]["midstream"] is True
    assert cfg["logging"]["level"] == "debug"
    assert cfg["rule-files"] == ["x.rules"]


def test_set_applies_after_the_file(tmp_path):
    path = write(tmp_path, "flow:\n  max-flows: 10\n")
    assert load_config(path, ["flow.max-flows=20"])["flow"]["max-flows"] == 20


def test_set_keeps_text_where_text_is_expected():
    # "[10.0.0.0/8]" is a YAML list; HOME_NET is text and stays text.
    cfg = load_config(None, ["vars.address-groups.HOME_NET=[10.0.0.0/8]",
                             "vars.port-groups.HTTP_PORTS=8080",
                             "vars.address-groups.LAB_NET=[10.1.0.0/16]"])
    assert cfg["vars"]["address-groups"]["HOME_NET"] == "[10.0.0.0/8]"
    assert cfg["vars"]["port-groups"]["HTTP_PORTS"] == "8080"
    assert cfg["vars"]["address-groups"]["LAB_NET"] == "[10.1.0.0/16]"


def test_set_into_free_form_section():
    assert get(load_config(None, ["rule-files=[a.rules, b.rules]"]), "rule-files") == ["a.rules", "b.rules"]


def test_detect_keys_are_in_the_schema():
    assert get(load_config(None, ["detect.prefilter=ahocorasick"]), "detect.prefilter") == "ahocorasick"
    assert error_of(None, ["detect.profile=high"]) == (
        "config error: detect.profile: unknown key (did you mean 'prefilter'?) (from --set detect.profile=high)")


# --- errors: each message asserted ----------------------------------------------

def test_wrong_type_names_key_reason_and_file(tmp_path):
    path = write(tmp_path, "flow:\n  max-flows: lots\n")
    assert error_of(path) == (f"config error: flow.max-flows: expected an integer, got 'lots' (from {path})")


def test_wrong_type_from_set():
    assert error_of(None, ["flow.max-flows=lots"]) == (
        "config error: flow.max-flows: expected an integer, got 'lots' (from --set flow.max-flows=lots)")


def test_unknown_key_suggests_the_close_one(tmp_path):
    path = write(tmp_path, "flow:\n  max-flow: 10\n")
    assert error_of(path) == (
        f"config error: flow.max-flow: unknown key (did you mean 'max-flows'?) (from {path})")


def test_unknown_top_level_key(tmp_path):
    path = write(tmp_path, "frobnicate: 1\n")
    assert error_of(path) == f"config error: frobnicate: unknown key (from {path})"


def test_unknown_key_from_set():
    assert error_of(None, ["outputs.eve-log.colour=red"]) == (
        "config error: outputs.eve-log.colour: unknown key (from --set outputs.eve-log.colour=red)")


def test_mapping_expected(tmp_path):
    path = write(tmp_path, "flow: 5\n")
    assert error_of(path) == f"config error: flow: expected a mapping, got 5 (from {path})"


def test_list_expected(tmp_path):
    path = write(tmp_path, "rule-files: local.rules\n")
    assert error_of(path) == f"config error: rule-files: expected a list, got 'local.rules' (from {path})"


def test_list_item_type(tmp_path):
    path = write(tmp_path, "outputs:\n  eve-log:\n    types: [alert, 5]\n")
    assert error_of(path) == (
        f"config error: outputs.eve-log.types: item 2: expected a string, got 5 (from {path})")


def test_boolean_expected(tmp_path):
    path = write(tmp_path, "stream:\n  midstream: maybe\n")
    assert error_of(path) == (
        f"config error: stream.midstream: expected a boolean, got 'maybe' (from {path})")


def test_open_map_value_type(tmp_path):
    path = write(tmp_path, "vars:\n  address-groups:\n    LAB_NET: [10.0.0.0/8]\n")
    assert error_of(path) == (
        f"config error: vars.address-groups.LAB_NET: expected a string, got a list (from {path})")


def test_top_level_must_be_a_mapping(tmp_path):
    path = write(tmp_path, "- a\n- b\n")
    assert error_of(path) == f"config error: expected a mapping at the top level, got a list (from {path})"


def test_invalid_yaml_names_file_line_column_and_reason(tmp_path):
    path = write(tmp_path, "flow:\n  max-flows: 10\n bad: [1, 2\n")
    msg = error_of(path)
    assert msg.startswith(f"config error: {path}:3:")
    assert "invalid YAML" in msg
    assert "\n" not in msg


def test_invalid_yaml_exact_position(tmp_path):
    path = write(tmp_path, "flow:\n  max-flows: 10\n  timeouts: {tcp: 1\n")
    msg = error_of(path)
    # the unterminated flow mapping is reported where the parser gave up, with its reason
    assert msg.startswith(f"config error: {path}:4:1: invalid YAML: ")
    assert "expected ',' or '}'" in msg


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    assert error_of(path) == f"config error: cannot read {path}: No such file or directory"


def test_set_without_equals():
    assert error_of(None, ["flow.max-flows"]) == (
        "config error: --set expects key.path=value, got 'flow.max-flows'")


def test_get_walks_dotted_paths():
    cfg = load_config()
    assert get(cfg, "outputs.eve-log.filename") == "eve.json"
    assert get(cfg, "outputs.nope.x", "dflt") == "dflt"
