# The compiled layout of netsentry.event.Event (Cython reads this beside event.py).
# Compiled modules that `cimport` it (output/fields.py's line writers,
# detect/alertqueue.py's dispatch) read its fields as struct members; Python code
# reads them through Cython's properties. Every field is a Python object, as in the
# pure class (pkt/flow may be any object with the fields outputs read).

cdef class Event:
    cdef public object event_type, ts, pkt, flow, alert, extra
