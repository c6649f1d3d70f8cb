"""The sensor's own log lines (start-up, rule load results, warnings), via structlog.

Detection events never go here: they go to the outputs (EVE). This is the
daemon's diary. On a terminal it renders ``key=value`` lines a person reads;
anywhere else (systemd journal, a pipe, a file) it writes one JSON object per
line that log shippers parse without a grok pattern.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR, "critical": logging.CRITICAL}
FORMATS = ("auto", "json", "console")


def setup_logging(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Configure structlog for the whole process. Raises ValueError on an unknown level/format."""
    stream = stream if stream is not None else sys.stderr
    if level not in LEVELS:
        raise ValueError(f"logging.level: expected one of {', '.join(LEVELS)}, got {level!r}")
    if fmt not in FORMATS:
        raise ValueError(f"logging.format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "auto":
        fmt = "console" if _isatty(stream) else "json"
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=_isatty(stream))
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str = "netsentry") -> Any:
    return structlog.get_logger(name)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
