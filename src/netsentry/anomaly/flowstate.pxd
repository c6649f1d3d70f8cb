# The typed layout of netsentry.anomaly.flowstate.FlowState for the compiled build
# (Cython reads this beside flowstate.py). Compiled modules that `cimport` it
# (anomaly/engine.py, observer.py and the detectors, through their own .pxd) read
# and write its fields as C struct members. Field meanings: flowstate.py.
# Only C fields: the collector never tracks it.

cdef class FlowState:
    # counters folded so far, the second queued, the worker's flow number: 64-bit
    cdef public long long pts, ptc, bts, btc, queued, lid
    # one fold's packet deltas (a flow's packets in one second: < 2**31), the FLAG_*/PEND_*
    # bits; then traffic-spike's SCOPE_* bits and the first packet's TCP flags (9 bits) or
    # ICMP type (-1 for none), which fit 16 bits: 80 bytes instead of 96
    cdef public int dpts, dptc, flags
    cdef public short scope, first
