"""Offline capture sources: classic pcap and pcapng files.

``open_capture(path)`` detects the format by magic; iterating the reader
yields ``(ts, data, wirelen, linktype)`` tuples. ``read_captures(paths)``
chains files in order. Damage raises ``CaptureError`` after every good
record before it; in a chain it ends that file instead (logged, kept in
``CaptureChain.damaged``) and the next file is read.
"""

from netsentry.capture.errors import CaptureError
from netsentry.capture.reader import CaptureChain, CaptureReader, first_timestamp, open_capture, read_captures

__all__ = ["CaptureChain", "CaptureError", "CaptureReader", "first_timestamp", "open_capture", "read_captures"]
