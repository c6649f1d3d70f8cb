"""A Suricata suricata.yaml: the shared subset becomes netsentry configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from netsentry.config import ConfigError, get, load_config

SURICATA_YAML = """%YAML 1.1
---
vars:
  address-groups:
    HOME_NET: "[10.9.0.0/16]"
  port-groups:
    HTTP_PORTS: "8080"
outputs:
  - fast:
      enabled: yes
  - eve-log:
      enabled: yes
      filetype: regular
      filename: alerts.json
      types:
        - alert:
            payload: yes
        - drop:
            flows: all
            alerts: yes
        - http
        - flow
stream:
  midstream: true
  inline: auto
  reassembly:
    depth: 1mb
flow-timeouts:
  tcp:
    new: 7
    emergency-new: 3
threshold-file: threshold.config
af-packet:
  - interface: eth0
"""


def _write(tmp_path: Path, text: str = SURICATA_YAML) -> Path:
    path = tmp_path / "suricata.yaml"
    path.write_text(text)
    (tmp_path / "threshold.config").write_text("suppress gen_id 1, sig_id 5\n")
    return path


@pytest.mark.parametrize("flag", ["suricata", "c"])
def test_shared_subset_is_translated(tmp_path: Path, flag: str) -> None:
    path = _write(tmp_path)
    cfg = load_config(suricata=path) if flag == "suricata" else load_config(path)
    assert get(cfg, "vars.address-groups.HOME_NET") == "[10.9.0.0/16]"
    assert get(cfg, "vars.address-groups.EXTERNAL_NET") == "!$HOME_NET"      # defaults kept
    assert get(cfg, "vars.port-groups.HTTP_PORTS") == "8080"
    assert get(cfg, "outputs.eve-log.filename") == "alerts.json"
    assert get(cfg, "outputs.eve-log.types") == ["alert", "drop", "http", "flow"]
    assert get(cfg, "outputs.eve-log.drop.flows") == "all"
    assert get(cfg, "stream.midstream") is True
    assert get(cfg, "stream.inline") is False                                # auto: the run mode decides
    assert get(cfg, "flow.timeouts.tcp.new") == 7
    assert get(cfg, "threshold-file") == str(tmp_path / "threshold.config")  # beside the yaml


def test_overrides_win_over_the_suricata_file(tmp_path: Path) -> None:
    cfg = load_config(overrides=["stream.midstream=false"], suricata=_write(tmp_path))
    assert get(cfg, "stream.midstream") is False


def test_empty_path_means_none() -> None:
    assert load_config(suricata="") == load_config()


def test_bad_shared_value_names_key_and_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "outputs:\n  - eve-log:\n      filename: [1]\n")
    with pytest.raises(ConfigError) as err:
        load_config(suricata=path)
    assert "outputs.eve-log.filename" in str(err.value) and str(path) in str(err.value)


def test_netsentry_file_threshold_file_is_relative_to_it(tmp_path: Path) -> None:
    (tmp_path / "t.config").write_text("")
    path = tmp_path / "ns.yaml"
    path.write_text("threshold-file: t.config\n")
    assert get(load_config(path), "threshold-file") == str(tmp_path / "t.config")


def test_suricata_set_options_netsentry_lacks_are_ignored_with_a_note() -> None:
    from netsentry.config import take_notes
    take_notes()
    cfg = load_config(overrides=["stream.bypass=true", "stream.memcap-policy=drop-flow",
                                 "detect.prefilter.default=auto", "stream.midstream=true"], suricata="")
    assert get(cfg, "stream.midstream") is True
    assert get(cfg, "detect.prefilter") == "auto"            # netsentry's own key untouched
    notes = [fields["option"] for _msg, fields in take_notes()]
    assert notes == ["--set stream.bypass=true", "--set stream.memcap-policy=drop-flow",
                     "--set detect.prefilter.default=auto"]


def test_suricata_set_of_a_list_entry_by_index() -> None:
    # suricata-verify's `--set outputs.1.eve-log.types.2.anomaly.types.stream=yes`: Suricata's
    # list entries by index: an eve-log entry's own settings are used; a types entry by index
    # is noted and ignored (it says nothing about the other types), the configured types stay
    from netsentry.config import take_notes
    take_notes()
    base = get(load_config(suricata=""), "outputs.eve-log.types")
    cfg = load_config(overrides=["outputs.1.eve-log.types.2.anomaly.types.stream=yes",
                                 "outputs.1.eve-log.types.0.alert.payload=yes"], suricata="")
    assert get(cfg, "outputs.eve-log.types") == base
    notes = [fields["option"] for _msg, fields in take_notes()]
    assert notes == ["--set outputs.1.eve-log.types.2.anomaly.types.stream=yes",
                     "--set outputs.1.eve-log.types.0.alert.payload=yes"]
    cfg = load_config(overrides=["outputs.1.eve-log.community-id=true"], suricata="")
    assert get(cfg, "outputs.eve-log.community-id") is True


def test_suricata_set_still_checks_netsentrys_own_keys() -> None:
    with pytest.raises(ConfigError, match="stream.midstream"):
        load_config(overrides=["stream.midstream=maybe"], suricata="")


def test_without_the_suricata_dialect_unknown_set_keys_stay_errors() -> None:
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(overrides=["stream.bypass=true"])


def test_udp_tunnel_decoders_are_translated(tmp_path: Path) -> None:
    path = _write(tmp_path, "outputs: []\ndecoder:\n  vxlan:\n    enabled: false\n    ports: 4789\n"
                            "    reserved-bits-check: permissive\n  teredo:\n    ports: any\n  erspan: {}\n")
    cfg = load_config(suricata=path)
    assert get(cfg, "decoder.vxlan.enabled") is False
    assert get(cfg, "decoder.teredo.ports") == "any"
    assert get(cfg, "decoder.geneve.ports") == "6081"                       # default kept
    cfg = load_config(suricata=path, overrides=["decoder.vxlan.enabled=true"])
    assert get(cfg, "decoder.vxlan.enabled") is True


def test_exception_policies_are_translated(tmp_path: Path) -> None:
    # Suricata's exception-policy keys have the same names and values here (exception_policy.py)
    path = _write(tmp_path, "outputs: []\nexception-policy: bypass\nstream:\n  midstream: true\n"
                            "  midstream-policy: pass-flow\n  reassembly:\n    memcap-policy: ignore\n    depth: 1mb\n"
                            "flow:\n  memcap-policy: drop-packet\n  hash-size: 65536\n"
                            "defrag:\n  memcap-policy: pass-packet\napp-layer:\n  error-policy: drop-flow\n")
    cfg = load_config(suricata=path)
    assert get(cfg, "exception-policy") == "bypass"
    assert get(cfg, "stream.midstream-policy") == "pass-flow"
    assert get(cfg, "stream.reassembly.memcap-policy") == "ignore"
    assert get(cfg, "flow.memcap-policy") == "drop-packet"
    assert get(cfg, "defrag.memcap-policy") == "pass-packet"
    assert get(cfg, "app-layer.error-policy") == "drop-flow"


def test_bad_exception_policy_from_suricata_yaml_names_the_key(tmp_path: Path) -> None:
    from netsentry.exception_policy import ExceptionPolicies
    cfg = load_config(suricata=_write(tmp_path, "outputs: []\nexception-policy: sometimes\n"))
    with pytest.raises(ConfigError, match="exception-policy"):
        ExceptionPolicies(cfg, ips=True)


def test_flow_timeouts_left_unset_are_suricatas_built_in_ones(tmp_path: Path) -> None:
    """Suricata run with a suricata.yaml that sets no (or only some) flow timeouts uses
    its compiled-in values (tcp closed 10 s, new 30 s, established 300 s), not those of
    its sample suricata.yaml, which are netsentry's own defaults: a flow ends when
    Suricata would end it under the same file. A --set of another key does not reset
    what the file set."""
    cfg = load_config(suricata=_write(tmp_path), overrides=["stream.midstream=false"])
    assert get(cfg, "flow.timeouts.tcp.new") == 7                  # the file's
    assert get(cfg, "flow.timeouts.tcp.closed") == 10
    assert get(cfg, "flow.timeouts.tcp.established") == 300
    assert get(cfg, "flow.timeouts.udp.new") == 30
    assert get(cfg, "flow.timeouts.default.closed") == 0
    plain = load_config(None)
    assert get(plain, "flow.timeouts.tcp.closed") == 60            # netsentry's own default


def test_detect_tx_guessing_keys_are_translated(tmp_path: Path) -> None:
    """Suricata 8's detect.guess-applayer-tx / stream-tx-log-limit have the same meaning here;
    the rest of its detect section (profiles, grouping) is noted as ignored, not an error."""
    f = tmp_path / "suricata.yaml"
    f.write_text("%YAML 1.1\n---\ndetect:\n  profile: medium\n  guess-applayer-tx: true\n"
                 "  stream-tx-log-limit: 2\n")
    cfg = load_config(suricata=f)
    assert get(cfg, "detect.guess-applayer-tx") is True
    assert get(cfg, "detect.stream-tx-log-limit") == 2
    f.write_text("%YAML 1.1\n---\ndetect:\n  stream-tx-log-limit: lots\n")
    with pytest.raises(ConfigError, match="detect.stream-tx-log-limit"):
        load_config(suricata=f)
