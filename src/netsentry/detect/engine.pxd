# Compiled build: `Packet` and `Flow` are the typed records of decode/packet.pxd and
# flow/flow.pxd, so SignatureEngine's hot path reads their fields as struct members
# instead of an attribute lookup per field (bench/README.md, "realfast").
from netsentry.decode.packet cimport Packet
from netsentry.flow.flow cimport Flow
# `Group` a typed record (grouping.pxd): the per-packet reads of a group's facts are
# struct members.
from netsentry.detect.grouping cimport Group

# glibc's memmem (string.h; Python.h's pyconfig.h defines _GNU_SOURCE): `_contents_in`'s search
cdef extern from "string.h":
    const void *memmem(const void *haystack, size_t haystacklen, const void *needle, size_t needlelen) nogil


# What the candidate loops read about one rule (engine.py `_Rule`): C fields for the flags
cdef class _Rule:
    cdef public object sig, alert, pairs, stream_pairs, how
    cdef public long amask
    cdef public bint confirmed, stream_only, plain, capable, nocase, stream_nocase, pkt_too

