# Compiled build: `Flow` is the typed record of flow.pxd, so the table's hot path
# reads and writes its fields as C struct members.
from netsentry.flow.flow cimport Flow, new_flow
from netsentry.decode.packet cimport Packet
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.ref cimport PyObject, Py_XINCREF, Py_XDECREF
from libc.stdint cimport uint32_t, uint64_t
from cpython.mem cimport PyMem_RawCalloc, PyMem_RawFree
from libc.string cimport memcpy

# Live flows are kept out of the collector's sight (flow/table.py `_untrack`,
# `_collectable`): the record stays a gc type, only its tracking changes.
cdef extern from "Python.h":
    void PyObject_GC_UnTrack(object op)
    void PyObject_GC_Track(object op)
    bint PyObject_GC_IsTracked(object op)

cdef bytes _reverse12(bytes key)
cdef bytes _slice12(bytes data, Py_ssize_t at)
cdef void _collectable(object flow)

# One slot of FlowIndex: the normalised IPv4 address pair and port pair (the lower
# (address, port) end first), which end is the flow's client, and the flow (a strong
# reference; NULL: empty). 24 bytes.
cdef struct IndexSlot:
    uint64_t addrs
    uint32_t ports
    uint32_t client_lo
    PyObject* flow

cdef class FlowIndex:
    cdef IndexSlot* slots
    cdef Py_ssize_t mask, count, grow_at
    cdef uint64_t seed
    cdef Py_ssize_t find(self, uint64_t addrs, uint32_t ports)
    cdef int insert(self, uint64_t addrs, uint32_t ports, bint client_lo, Flow flow) except? -1
    cdef void clear(self)
    cdef bint remove(self, Flow flow)
    cdef int _resize(self, Py_ssize_t size) except? -1
