# The compiled layout of netsentry.decode.packet.Packet (Cython reads this beside
# packet.py). Compiled modules that `cimport` it (the decoder, the flow table, TCP
# state, the capture loop, through their own .pxd) read and write the fields as
# struct members; Python code reads them through slot member descriptors that
# `_install_slots` puts in place of Cython's properties at import. Every field is a
# Python object (an int, a float, bytes, ...), as in the pure class, so a Python
# reader pays what it pays for a __slots__ attribute. Field meanings: packet.py.
from libc.stdlib cimport malloc

cdef extern from "Python.h":
    ctypedef struct PyObject:
        pass
    ctypedef struct PyTypeObject:
        PyObject* tp_dict
        Py_ssize_t tp_basicsize
        Py_ssize_t tp_dictoffset
    ctypedef struct PyMemberDef:
        const char* name
        int type
        Py_ssize_t offset
        int flags
        const char* doc
    object PyDescr_NewMember(type t, PyMemberDef* m)
    void PyType_Modified(type t)
    int PyDict_SetItem(object d, object k, object v) except -1
    const char* PyUnicode_AsUTF8(object s) except NULL
    object _PyObject_GC_New(PyTypeObject* tp)
    void Py_XINCREF(PyObject* o)


cdef class Packet:
    cdef dict __dict__
    # capture
    cdef public object pcap_cnt, ts, linktype, data, wirelen, vlan
    # network
    cdef public object ip_version, ip_off, src, dst, proto, ttl, tos, ip_id, ip_flags
    cdef public object frag_offset, ip_hlen, ip_len, ip_opts, ip6_exthdrs, tunnel
    # transport
    cdef public object l4_off, sp, dp, tcp_flags, seq, ack, win, tcp_hlen, tcp_mss, tcp_wscale
    cdef public object tcp_sackok, tcp_tsval, tcp_tsecr, icmp_type, icmp_code, icmp_id, icmp_seq
    cdef public object payload_off, payload_len
    # decoder events, defragmentation
    cdef public object events, checksum_bad, frag, reassembled, root
    # set by later stages
    cdef public object flow, to_server, verdict, stream_added, stream_data, stream_old, stream_to_server
    cdef public object drop_alert, drop_reason, reject_action, pktvars, no_inspect


# The decoder's constructor (packet.py `new_packet`): a copy of a default record, not
# `Packet()`; compiled modules cimport it.
cdef Packet new_packet()
cdef Packet copy_packet(Packet model)


cdef inline object _copy_record(type cls, object template):
    """A new instance of `cls` whose every word after the object header (the field
    slots; the ``__dict__`` pointer is left NULL) is the `template`'s, each
    object referenced once more; allocated without `tp_new`, `__cinit__` or gc
    tracking (see packet.py `new_packet` for why that is safe)."""
    o = _PyObject_GC_New(<PyTypeObject*>cls)
    cdef PyObject** dst = <PyObject**><void*>o
    cdef PyObject** src = <PyObject**><void*>template
    cdef Py_ssize_t words = (<PyTypeObject*>cls).tp_basicsize // sizeof(void*)
    # the instance dict is never shared: Cython's tp_new gives every record one (the
    # template's too), and a copied pointer made one packet's extra attributes every
    # later packet's. NULL: CPython makes a dict when an attribute is first stored.
    cdef Py_ssize_t d = (<PyTypeObject*>cls).tp_dictoffset // sizeof(void*)
    cdef Py_ssize_t j
    for j in range(2, words):
        if j == d:
            dst[j] = NULL
            continue
        Py_XINCREF(src[j])
        dst[j] = src[j]
    return o


cdef inline int _install_slots(type cls, tuple names) except -1:
    """Replace the property Cython made for each of `names` by a slot member
    descriptor (T_OBJECT_EX) at the same offset. The offset is found by storing a
    fresh object through the property and finding its pointer in the instance."""
    p = cls()
    cdef Py_ssize_t n = len(names)
    cdef PyMemberDef* defs = <PyMemberDef*>malloc(sizeof(PyMemberDef) * n)
    cdef Py_ssize_t i, j
    cdef Py_ssize_t words = (<PyTypeObject*>cls).tp_basicsize // sizeof(void*)
    cdef PyObject** slots = <PyObject**><void*>p
    if defs == NULL:
        raise MemoryError()
    tp_dict = <object>(<PyTypeObject*>cls).tp_dict
    for i in range(n):
        name = names[i]
        marker = object()
        setattr(p, name, marker)
        for j in range(2, words):
            if slots[j] == <PyObject*>marker:
                break
        else:
            raise RuntimeError(f"Packet.{name}: slot not found")
        defs[i].name = PyUnicode_AsUTF8(name)   # names are module constants: kept alive by FIELDS
        defs[i].type = 16                       # T_OBJECT_EX
        defs[i].offset = j * sizeof(void*)
        defs[i].flags = 0
        defs[i].doc = NULL
        PyDict_SetItem(tp_dict, name, PyDescr_NewMember(cls, &defs[i]))
    PyType_Modified(cls)
    return 0
