"""Decoders: raw frames to `Packet` records plus decoder events.

`Decoder` is the entry point; one module per protocol (`link`, `ipv4`,
`ipv6`, `tcp`, `udp`, `icmp`, `gre`), event names in `events`.
"""

from netsentry.decode.decoder import Decoder
from netsentry.decode.packet import Packet

__all__ = ["Decoder", "Packet"]
