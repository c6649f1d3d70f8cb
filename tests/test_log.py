"""The daemon's own log lines: JSON off a terminal, key=value on one."""

from __future__ import annotations

import io

import orjson
import pytest

from netsentry.log import get_logger, setup_logging


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_json_lines_when_not_a_terminal():
    buf = io.StringIO()
    setup_logging("info", "auto", stream=buf)
    get_logger().info("rules loaded", signatures=3)
    get_logger().debug("not shown")
    (line,) = buf.getvalue().splitlines()
    rec = orjson.loads(line)
    assert rec["event"] == "rules loaded" and rec["signatures"] == 3 and rec["level"] == "info"
    assert rec["timestamp"].endswith("Z")


def test_key_value_on_a_terminal():
    term = Terminal()
    setup_logging("debug", "auto", stream=term)
    get_logger().debug("flow table", max_flows=10)
    text = term.getvalue()
    assert "flow table" in text and "max_flows" in text and "10" in text
    assert not text.lstrip().startswith("{")


def test_bad_level_and_format_are_rejected():
    with pytest.raises(ValueError, match="logging.level"):
        setup_logging("loud", "auto")
    with pytest.raises(ValueError, match="logging.format"):
        setup_logging("info", "xml")
