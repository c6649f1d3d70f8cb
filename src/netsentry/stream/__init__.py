"""The stream stage: IP defragmentation (before the flow lookup) and TCP reassembly (after it).

`Defragmenter` (defrag.py) turns fragments into the datagram the target
would see; `StreamEngine` (tcp.py) follows each TCP session's two byte
streams, feeds new in-order bytes to the app layer and sets the inspection
window detection reads. Both are configured from their sections
(settings.py) and resolve overlaps by target policy (policy.py, overlay.py).
See docs/stream.md.
"""

from netsentry.stream.defrag import Defragmenter
from netsentry.stream.hostos import HostOS
from netsentry.stream.settings import DefragSettings, StreamSettings, parse_size
from netsentry.stream.tcp import StreamEngine

__all__ = ["Defragmenter", "DefragSettings", "HostOS", "StreamEngine", "StreamSettings", "parse_size"]
