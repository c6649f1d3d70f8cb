# The typed layout of netsentry.anomaly.flowstate.FlowState for the compiled build
# (Cython reads this beside flowstate.py). Compiled modules that `cimport` it
# (anomaly/engine.py, observer.py and the detectors, through their own .pxd) read
# and write its fields as C struct members. Field meanings: flowstate.py.
# Only C fields: the collector never tracks it.

cdef class FlowState:
    cdef public long long pts, ptc, bts, btc, dpts, dptc, queued, lid
    cdef public int flags, scope, first
