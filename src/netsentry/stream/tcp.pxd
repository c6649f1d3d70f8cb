# The typed layout of netsentry.stream.tcp.Half for the compiled build (Cython reads
# this beside tcp.py). Field meanings: tcp.py. No cycle-collector header: a Half refers
# to its Overlay (tcp.py: @cython.no_gc), its tail bytes and a policy, none of which refers back to it.
# `Packet` and `Flow` are the typed records of decode/packet.pxd and flow/flow.pxd, so the
# stage reads their fields as struct members (bench/README.md, "realfast").
from netsentry.decode.packet cimport Packet
from netsentry.flow.flow cimport Flow
cdef class Half:
    cdef public object ooo, tail, wins, pending, runs, segs
    cdef public long long next_seq, off, ack, syn_ts
    cdef public int gap_before, txs_seen
    cdef public bint depth_hit, started
# `flow.stream` of a followed session: the client's direction itself, plus the server's
# (tcp.py `Session`): two objects per session instead of a tuple and two.
cdef class Session(Half):
    cdef public Half server
# The stage itself (tcp.py `StreamEngine`): its settings and counters read per packet are
# struct fields instead of instance-dict lookups, and the per-packet steps (`_update`,
# `_deliver`, `_raw_release`, `_app_trigger`, `_start`, `_drain`) are C calls between
# them. `__dict__` keeps any other attribute working as on a plain class.
cdef class StreamEngine:
    cdef dict __dict__
    cdef public object settings, hosts, urgent, urgent_limit, urg_off, new_wins, chunk
    cdef public object feed, gap_hook, counters, rst_sent, syn_q, on_memcap
    cdef public long long depth, memcap, memuse, held, overlap
    cdef public bint midstream, inline, async_oneside, synack_pickup, one_side
    cdef public bint windows, raw_acked, raw_ids, full_tail
    cdef _update(self, Packet pkt, Flow flow)
    cdef object _start(self, Packet pkt, Flow flow)
    cdef _deliver(self, Half h, Flow flow, bint to_server, Packet pkt, object data)
    cdef _drain(self, Half h, Flow flow, bint to_server, Packet pkt)
    cdef _raw_release(self, Half h, Packet pkt, Flow flow)
    cdef bint _app_trigger(self, Half h, Flow flow, bint to_server) except -1
