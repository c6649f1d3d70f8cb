# The typed layout of netsentry.flow.flow.Flow for the compiled build (Cython reads
# this beside flow.py). Compiled modules that `cimport` it (flow/table.py and
# flow/tcp_state.py through their own .pxd) get C field access. Field meanings:
# flow.py. Object fields first, then by size, so the record packs without holes.

cdef class Flow:
    # Python objects: identity, shared state names, per-stage slots
    cdef public object key, vlan, client, server
    cdef public object tcp_state, end_reason, state, icmp
    cdef public object flowbits, flowints, stream, detect, anomaly, action, app_proto, app, eve
    cdef public object exception_policy
    # times (packet time, seconds)
    cdef public double start, last_seen, anomaly_due
    # counters, ids, wheel slot, sequence bookkeeping (-1: unknown)
    cdef public long long _flow_id, timeout_slot
    cdef public long long pkts_toserver, pkts_toclient, bytes_toserver, bytes_toclient
    cdef public long long _client_isn, _server_isn, _client_next_seq, _server_next_seq
    # small integers
    cdef public int proto, ip_version, client_port, server_port
    cdef public int tcp_flags_ts, tcp_flags_tc
    cdef public bint established, alerted
