# Compiled build: the decoder builds the typed Packet record (packet.pxd) and stores
# its fields as struct members.
from netsentry.decode.packet cimport Packet
