"""Hostile and careless configurations (issue #14): one clear line naming the key, exit 2.

Unit checks against `load_config`, and the replay command for the start-up checks
that live outside it (variables, -S, eve filename).
"""

from __future__ import annotations

import math
import struct
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from netsentry.config import (
    DEFAULT_RANGE,
    ConfigError,
    load_config,
    load_defaults,
    numeric_range,
)


def error_of(path=None, overrides=()) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    return str(info.value)


def _numeric_keys(node, prefix=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _numeric_keys(v, f"{prefix}.{k}" if prefix else k)
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield prefix, node


NUMERIC_KEYS = sorted(_numeric_keys(load_defaults()))


def test_every_numeric_default_lies_in_its_range():
    assert len(NUMERIC_KEYS) > 40
    for key, default in NUMERIC_KEYS:
        lo, hi = numeric_range(key)
        assert lo <= default <= hi, key


@pytest.mark.parametrize("key,default", NUMERIC_KEYS, ids=[k for k, _ in NUMERIC_KEYS])
def test_every_numeric_key_rejects_huge_negative_and_non_finite_values(key, default):
    lo, hi = numeric_range(key)
    for bad in ("99999999999999999999", str(hi + 1) if isinstance(default, int) else f"{hi * 2 + 1}",
                "-1" if lo >= 0 else str(lo - 1)):
        msg = error_of(overrides=[f"{key}={bad}"])
        assert msg.startswith(f"config error: {key}: ") and "out of range" in msg, msg
    if isinstance(default, float):
        for bad in (".nan", ".inf", "-.inf"):
            assert error_of(overrides=[f"{key}={bad}"]).startswith(f"config error: {key}: expected a finite")
    load_config(None, [f"{key}={default}"])          # the default itself stays valid


def test_the_reported_reproducer_in_yaml_and_set(tmp_path):
    assert error_of(overrides=["flow.max-flows=99999999999999999999"]) == (
        "config error: flow.max-flows: 99999999999999999999 is out of range (allowed: 1 to 4294967295) "
        "(from --set flow.max-flows=99999999999999999999)")
    f = tmp_path / "n.yaml"
    f.write_text("flow:\n  max-flows: 99999999999999999999\nstats:\n  interval: -1\n")
    assert error_of(f).startswith("config error: flow.max-flows: 99999999999999999999 is out of range")
    f.write_text("stats:\n  interval: -1\n")
    assert error_of(f) == f"config error: stats.interval: -1 is out of range (allowed: 1 to 86400) (from {f})"


def test_unnamed_numeric_keys_get_the_default_range():
    assert numeric_range("some.future.key") == DEFAULT_RANGE
    assert all(math.isfinite(x) for x in DEFAULT_RANGE)


def test_port_variables_numbers_are_ports():
    assert "out of range (allowed: 0 to 65535)" in error_of(overrides=["vars.port-groups.MY_PORT=70000"])


@pytest.mark.parametrize("text,line,first", [
    ("flow:\n  max-flows: 10\nflow:\n  max-flows: 20\n", 3, 1),
    ("flow:\n  max-flows: 10\n  max-flows: 20\n", 3, 2),
    ("vars:\n  address-groups:\n    HOME_NET: '10.0.0.0/8'\n    HOME_NET: 'any'\n", 4, 3),
])
def test_duplicate_yaml_keys_are_rejected_with_their_line(tmp_path, text, line, first):
    f = tmp_path / "dup.yaml"
    f.write_text(text)
    msg = error_of(f)
    assert msg.startswith(f"config error: {f}:{line}:") and "duplicate key" in msg and f"line {first}" in msg


def test_yaml_merge_keys_are_not_duplicates(tmp_path):
    f = tmp_path / "merge.yaml"
    f.write_text("flow:\n  timeouts:\n    tcp: &t {new: 5, established: 6, closed: 7}\n"
                 "    udp:\n      <<: *t\n")
    with pytest.raises(ConfigError, match="closed"):       # udp has no 'closed' key: the schema speaks,
        load_config(f)                                     # not the duplicate check


# --- start-up checks outside load_config: through the replay command ---------------------------

def _pcap(path: Path) -> Path:
    frame = (b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00"
             + struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 1, 0, 64, 17, 0, b"\x0a\0\0\x01", b"\x0a\0\0\x02")
             + struct.pack("!HHHH", 1000, 53, 8, 0))
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
                     + struct.pack("<IIII", 1_700_000_000, 0, len(frame), len(frame)) + frame)
    return path


def replay(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netsentry", "replay", str(_pcap(tmp_path / "a.pcap")),
                           "-l", str(tmp_path / "out"), "-q", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("setting,line", [
    ("vars.port-groups.HTTP_PORTS=[80,x]",
     "config error: vars.port-groups.HTTP_PORTS: invalid value '[80,x]': invalid port 'x' in '$HTTP_PORTS'"),
    ("vars.port-groups.HTTP_PORTS=\u0668\u0660",
     "config error: vars.port-groups.HTTP_PORTS: invalid value '\u0668\u0660': invalid port '\u0668\u0660' "
     "in '$HTTP_PORTS'"),
    ("vars.address-groups.DNS_SERVERS=10.0.0.300",
     "config error: vars.address-groups.DNS_SERVERS: invalid value '10.0.0.300': "
     "invalid address '10.0.0.300' in '$DNS_SERVERS'"),
    ("outputs.eve-log.filename=", "config error: outputs.eve-log.filename: expected a file name, got ''"),
    ("outputs.eve-log.filename=sub/", "config error: outputs.eve-log.filename: expected a file name, got 'sub/'"),
])
def test_bad_variables_and_file_names_stop_start_up_naming_the_key(tmp_path, setting, line):
    rules = tmp_path / "r.rules"           # a rule that does not use the bad variable
    rules.write_text('alert udp any any -> any any (msg:"x"; sid:1;)\n')
    proc = replay(tmp_path, "-S", str(rules), "--set", setting)
    assert proc.returncode == 2, proc.stderr
    errors = [x for x in proc.stderr.strip().splitlines() if not x.startswith("{")]   # not the info logs
    assert errors == [line]
    assert not (tmp_path / "out").exists()


def test_rules_option_on_a_directory_is_a_usage_error(tmp_path):
    proc = replay(tmp_path, "-S", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"netsentry replay: -S {tmp_path}: is a directory; give a rules file"]


def test_rules_option_on_an_empty_file_warns_once_and_goes_on(tmp_path):
    empty = tmp_path / "empty.rules"
    empty.write_text("")
    proc = replay(tmp_path, "-S", str(empty))
    assert proc.returncode == 0, proc.stderr
    logs = [orjson.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    warnings = [r for r in logs if r["level"] == "warning"]
    assert [r["event"] for r in warnings] == [f"{empty}: no rules in this file"]
    records = [orjson.loads(x) for x in (tmp_path / "out" / "eve.json").read_bytes().splitlines()]
    assert records[-1]["event_type"] == "stats"
