"""``python -m netsentry``: the same command line as the ``netsentry`` entry point (useful
where the venv's scripts directory is not on PATH, or to pick the interpreter explicitly)."""

import sys

from netsentry.cli import entry

sys.exit(entry())
