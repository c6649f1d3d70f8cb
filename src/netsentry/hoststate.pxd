# Compiled build: the host judge's stand-in flow (hoststate.py `ProxyFlow`) is a C
# struct that the judge fills from a worker's rows without a Python __init__ or
# an attribute dict probe per field; the detectors (anomaly/*.py) read it as any
# flow. Field meanings: hoststate.py.
from netsentry.anomaly.flowstate cimport FlowState

cdef class ProxyFlow:
    cdef public object client, server, tcp_state, established
    cdef public long long pkts_toserver, pkts_toclient, bytes_toserver, bytes_toclient
    cdef public int proto, client_port, server_port
    cdef public double anomaly_due
    cdef public FlowState anomaly
