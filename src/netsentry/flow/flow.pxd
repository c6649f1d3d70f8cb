# The typed layout of netsentry.flow.flow.Flow for the compiled build (Cython reads
# this beside flow.py). Compiled modules that `cimport` it (flow/table.py and
# flow/tcp_state.py through their own .pxd) get C field access. Field meanings:
# flow.py. Object fields first, then by size, so the record packs without holes.

cdef class Flow:
    # Python objects: identity, shared state names, per-stage slots
    cdef public object _key, vlan, client, server
    cdef public object end_reason, icmp
    cdef public object flowbits, flowints, stream, detect, anomaly, action, app_proto, app, eve
    cdef public object exception_policy
    # times (packet time, seconds)
    cdef public double start, last_seen, anomaly_due
    # counters, ids, wheel slot, sequence bookkeeping (-1: unknown)
    cdef public long long _flow_id, timeout_slot
    cdef public long long pkts_toserver, pkts_toclient, bytes_toserver, bytes_toclient
    cdef public long long _client_isn, _server_isn, _client_next_seq, _server_next_seq
    # small integers
    cdef public unsigned short client_port, server_port, tcp_flags_ts, tcp_flags_tc
    # IP protocol and version; TCP state and EVE flow.state codes (flow.py
    # TCP_STATE_NAMES, FLOW_STATE_NAMES); payload inspection off (encryption, flow.py)
    cdef public unsigned char proto, ip_version, _tcp_st, _st, payload_off
    cdef public bint established, alerted

# The flow table's constructor (flow.py): a C call, no argument tuple.
cdef Flow new_flow(object key, int proto, int ip_version, object vlan, object client,
                   object server, int client_port, int server_port, double ts)
