"""Replay many captures in one process; the driver of tests/test_compiled.py.

usage: python tests/compiled_replay.py JOBS.json OUTROOT

JOBS.json is a list of ``{"name": ..., "argv": [...]}``: each ``argv`` is a
``netsentry replay`` command line (without the program name) whose ``-l``
directory is ``OUTROOT/<name>``. Running them through ``netsentry.cli.main``
in one interpreter costs one start-up (about a second) instead of one per
capture, which keeps the compiled-versus-pure comparison inside its time
budget. Writes ``OUTROOT/<name>/exit`` with each command's exit status, and
``OUTROOT/fast-path`` with the path that ran (``netsentry version``'s line).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path


def main() -> int:
    jobs = json.loads(Path(sys.argv[1]).read_text())
    root = Path(sys.argv[2])
    from netsentry import _compiled
    from netsentry.cli import main as cli_main
    root.mkdir(parents=True, exist_ok=True)
    (root / "fast-path").write_text(_compiled.status() + "\n")
    for job in jobs:
        out = root / job["name"]
        out.mkdir(parents=True, exist_ok=True)
        # the summary goes to stdout/stderr; only eve.json and the status are compared
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                status = cli_main(job["argv"])
            except SystemExit as exc:   # argparse on an option the CLI does not know
                status = exc.code if isinstance(exc.code, int) else 2
        (out / "exit").write_text(f"{status}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
