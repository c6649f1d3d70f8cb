# Compiled build: the decoder builds the typed Packet record (packet.pxd) and stores
# its fields as struct members.
from netsentry.decode.packet cimport Packet, copy_packet, new_packet

# A direct-mapped cache of packed IPv4 addresses (decoder.py `AddrCache`): the slot's
# address as a C integer beside the bytes object it hands out.
cdef class AddrCache:
    cdef unsigned int keys[8192]
    cdef list objs
    cdef object get(self, const unsigned char* p)
