# Compiled build: the loop reads and writes `Packet` (decode/packet.pxd) and `Flow`
# (flow/flow.pxd) fields as struct members.
from netsentry.decode.packet cimport Packet
from netsentry.flow.flow cimport Flow
