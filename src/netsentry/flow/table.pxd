# Compiled build: `Flow` is the typed record of flow.pxd, so the table's hot path
# reads and writes its fields as C struct members.
from netsentry.flow.flow cimport Flow
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.string cimport memcpy

cdef bytes _reverse12(bytes key)
cdef bytes _slice12(bytes data, Py_ssize_t at)
# Compiled build: `Packet` is the typed record of decode/packet.pxd, read as struct members.
from netsentry.decode.packet cimport Packet
