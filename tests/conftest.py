"""Fixtures every test gets.

structlog is configured process-wide and keeps the stream it was given. A CLI
test run under `capsys` configures it with pytest's capture stream, which
pytest closes after that test; the next test that logs would then write to a
closed file ("I/O operation on closed file"). So before every test the log
is reset to a sink that looks up `sys.stderr` at each write: whatever
capture (capsys, capfd, none) is active for the running test gets the lines.

The rule cache (rules/cache.py) of every run in the suite goes to one private
temporary directory, never into the user's ~/.cache, and starts empty. Under
pytest-xdist each worker process imports this file, so each worker has its own.

Parallel runs (`./setup.sh test`: pytest-xdist, ``--dist loadfile``): a test
file runs whole, in order, on one worker, so a module-scoped fixture (a
namespace lab with its daemon, a replay of every capture) is built once and
its tests see it in the order they were written. (``--dist loadgroup`` with
an ``xdist_group`` per module was tried first: with pytest 9 and xdist 3.8
the groups never formed, even from static marks, and a daemon module's tests
were split over two workers, each with its own daemon.) Everything a
test touches outside its tmp_path is per test or per worker already:
namespaces, veth pairs and their iptables/NFQUEUE rules are uuid-tagged and
per namespace (netns_lab.py; NFQUEUE queue numbers and the peers' ports live
in the test's own namespaces), loopback ports come from the kernel (port 0),
daemons' sockets and pid files sit in tmp_path, test users are named by pid.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

import pytest

from netsentry.log import setup_logging

_CACHE_HOME = tempfile.mkdtemp(prefix="netsentry-test-cache-")
os.environ["XDG_CACHE_HOME"] = _CACHE_HOME
os.environ.pop("STATE_DIRECTORY", None)


def pytest_unconfigure(config):  # noqa: ARG001 - pytest hook signature
    shutil.rmtree(_CACHE_HOME, ignore_errors=True)


class CurrentStderr:
    """A text stream that forwards to the `sys.stderr` of the moment."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return False            # JSON lines, as the daemon writes off a terminal


@pytest.fixture(autouse=True)
def fresh_structlog():
    """structlog reset per test (and again after it), never bound to a stream pytest closed."""
    setup_logging("info", "json", CurrentStderr())      # type: ignore[arg-type]
    yield
    setup_logging("info", "json", CurrentStderr())      # type: ignore[arg-type]
