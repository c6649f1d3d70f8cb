"""The daemon tests log through structlog; each gets its own sink, so a stream an earlier
test configured (and pytest has since closed) is never written to."""

import io

import pytest

from netsentry.log import setup_logging


@pytest.fixture(autouse=True)
def fresh_log_sink():
    sink = io.StringIO()
    setup_logging("info", "json", sink)
    return sink
