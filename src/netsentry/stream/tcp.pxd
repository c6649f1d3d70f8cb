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
