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

Parallel runs (`./setup.sh test`: pytest-xdist, ``--dist loadgroup``): a test
module whose tests share a module- or class-scoped fixture (a namespace lab
with its daemons, a replay of every capture) keeps all its tests on one
worker, so the fixture is built once, not once per worker
(`pytest_collection_modifyitems` gives them one ``xdist_group``). Everything a
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


_SHARED_SCOPES = ("module", "class", "package")


@pytest.hookimpl(tryfirst=True)      # before xdist's own hook reads the marks (--dist loadgroup)
def pytest_collection_modifyitems(config, items):  # noqa: ARG001 - pytest hook signature
    """One xdist group per test module that uses a module- or class-scoped fixture of the
    suite's own (see the module docstring); tests that already name a group keep it."""
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        info = getattr(item, "_fixtureinfo", None)
        defs = info.name2fixturedefs.values() if info is not None else ()
        if any(d[-1].scope in _SHARED_SCOPES and d[-1].baseid for d in defs):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
