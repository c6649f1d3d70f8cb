# Compiled build: the layered decoders store `Packet` fields (packet.pxd) as struct members.
from netsentry.decode.packet cimport Packet
