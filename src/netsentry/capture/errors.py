"""`CaptureError`: a capture file is damaged or is not a capture at all.

Damage gets a message a user can act on (which file, which packet, which
byte, what was wrong), and only after every good record before the damage
reached the pipeline. Iterating one file raises it; a replay
(`CaptureChain`) instead ends that file there, logs the error and goes on
with the next file, as Suricata's pcap file source does.
"""

from __future__ import annotations


class CaptureError(Exception):
    """Bad capture input. ``str(err)`` reads ``FILE: REASON at byte N[ (packet K)][: DETAIL]``.

    ``packet`` is the 1-based number, within its file, of the record the damage
    was found in (K - 1 packets before it were read); None for file-level errors."""

    def __init__(self, path: str, offset: int | None, reason: str, detail: str = "",
                 packet: int | None = None) -> None:
        self.path = path
        self.offset = offset
        self.reason = reason
        self.detail = detail
        self.packet = packet
        msg = f"{path}: {reason}"
        if offset is not None:
            msg += f" at byte {offset}"
        if packet is not None:
            msg += f" (packet {packet})"
        if detail:
            msg += f": {detail}"
        super().__init__(msg)
