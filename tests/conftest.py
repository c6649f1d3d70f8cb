"""Suite-wide setup: the rule cache (rules/cache.py) of every run in the suite goes to one
private temporary directory, never into the user's ~/.cache, and starts empty."""

import os
import shutil
import tempfile

_CACHE_HOME = tempfile.mkdtemp(prefix="netsentry-test-cache-")
os.environ["XDG_CACHE_HOME"] = _CACHE_HOME
os.environ.pop("STATE_DIRECTORY", None)


def pytest_unconfigure(config):  # noqa: ARG001 - pytest hook signature
    shutil.rmtree(_CACHE_HOME, ignore_errors=True)
