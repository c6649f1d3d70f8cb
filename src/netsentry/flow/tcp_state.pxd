# Compiled build: `Flow` is the typed record of flow.pxd, so the TCP state step
# reads and writes its fields as C struct members.
from netsentry.flow.flow cimport Flow
# Compiled build: `Packet` is the typed record of decode/packet.pxd, read as struct members.
from netsentry.decode.packet cimport Packet
