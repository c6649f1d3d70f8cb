# Compiled build of output/fields.py: the line writers read `Event`, `Packet` and
# `Flow` fields as struct members; `LineBuffer` is a C block of EVE lines that
# compiled callers (detect/alertqueue.py) write records into without a Python call.
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy

from netsentry.decode.packet cimport Packet
from netsentry.event cimport Event
from netsentry.flow.flow cimport Flow


cdef class LineBuffer:
    cdef char* buf
    cdef Py_ssize_t used, cap
    cdef public object sink
    cdef public long long lines
    cpdef bint add_event(self, object event) except -1
    cpdef add_line(self, bytes line)
    cpdef drain(self)
