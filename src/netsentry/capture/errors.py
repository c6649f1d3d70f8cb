"""`CaptureError`: a capture file is damaged or is not a capture at all.

Replay must stop on damage with a message a user can act on (which file,
which byte, what was wrong), and only after every good record before the
damage reached the pipeline.
"""

from __future__ import annotations


class CaptureError(Exception):
    """Bad capture input. ``str(err)`` reads ``FILE: REASON at byte N[: DETAIL]``."""

    def __init__(self, path: str, offset: int | None, reason: str, detail: str = "") -> None:
        self.path = path
        self.offset = offset
        self.reason = reason
        self.detail = detail
        msg = f"{path}: {reason}"
        if offset is not None:
            msg += f" at byte {offset}"
        if detail:
            msg += f": {detail}"
        super().__init__(msg)
