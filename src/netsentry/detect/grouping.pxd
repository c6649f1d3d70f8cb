# Compiled build of detect/grouping.py: `Group` is a typed record, so the signature
# engine's per-packet path (detect/engine.py, which cimports it through engine.pxd)
# reads a group's facts as struct members instead of an attribute lookup each.
# Field meanings: grouping.py's Group docstring. Every field is what the pure class
# holds (the flags are bools there too).

cdef class Group:
    cdef public object _members, _parts, always, always_later, prefilter, owners, keep, single, later_by_flags
    cdef public object _ip_src, _ip_dst, _ip_bidir, _later_set, _always_set, _stream_set, _base, _first
    cdef public bint has_stream, ip_only
    # the signature engine's answers about this group, -1 until first asked (engine.py
    # `_window_alone`, `_all_stream_capable`): a C field read per stream packet, not a dict probe
    cdef public signed char stream_alone, stream_capable
    cdef public double build_seconds
