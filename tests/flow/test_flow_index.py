"""The flow table's lookup under churn: many flows filed, found from both ends, ended
in an order unrelated to filing, found again or not (compiled: the C index, FlowIndex,
with its resizes and backward-shift deletions; pure Python: the dicts), and the flow
keys and ids the rest of the sensor derives from a flow, equal on both paths."""

from __future__ import annotations

import random

from flow_helpers import C, S, table, tcp, udp
from scapy.all import IP, UDP, Ether, raw  # type: ignore[import-untyped]

from netsentry.decode import Decoder
from netsentry.flow.table import flow_id_for


def _addr(i: int) -> str:
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def test_thousands_of_flows_found_from_both_ends_through_growth_and_removal() -> None:
    t, ended = table({"timeouts": {"udp": {"new": 10, "established": 10}}})
    rng = random.Random(7)
    n = 6000                         # grows the compiled index several times (1024 slots first)
    ends = [(_addr(rng.randrange(1 << 20)), _addr(rng.randrange(1 << 20)), rng.randrange(1, 65536),
             rng.randrange(1, 65536)) for _ in range(n)]
    ends = list(dict.fromkeys(ends))
    flows = {}
    for i, (a, b, pa, pb) in enumerate(ends):
        flows[i] = t.update(udp(a, b, pa, pb, 1.0 + i * 1e-4))
    assert len(set(map(id, flows.values()))) == len(ends) and len(t) == len(ends)
    # every third flow's server answers, as to-client: those stay live past the others' timeout
    for i, (a, b, pa, pb) in enumerate(ends):
        if i % 3 == 0:
            back = udp(b, a, pb, pa, 9.0)
            assert t.update(back) is flows[i] and back.to_server is False
    t.expire(15.0)                   # the others (last seen ~1-2 s, timeout 10) end, interleaved
    gone = {id(f) for f in ended}
    assert gone == {id(flows[i]) for i in flows if i % 3}
    assert len(t) == len(ends) - len(gone) and t.key_entries() in (len(t), 2 * len(t))
    for i, (a, b, pa, pb) in enumerate(ends):
        pkt = udp(a, b, pa, pb, 15.5)
        f = t.update(pkt)
        if i % 3 == 0:
            assert f is flows[i] and pkt.to_server is True and f.pkts_toserver == 2
        else:
            assert f is not flows[i] and f.pkts_toserver == 1 and (f.client_port, f.server_port) == (pa, pb)
    t.flush()
    assert t.key_entries() == 0 and len(t) == 0


def test_keys_and_flow_ids_are_those_of_the_address_and_port_bytes() -> None:
    """A flow in the compiled index stores no key; `Flow.key` rebuilds the client ->
    server bytes, so flow ids (CRC of the key) are the pure path's."""
    t, _ = table()
    f = t.update(tcp(S, C, 80, 40000, "SA", 5.0))          # SYN-ACK first: its receiver is the client
    key = bytes(map(int, C.split("."))) + bytes(map(int, S.split("."))) + (40000).to_bytes(2, "big") + (80).to_bytes(2, "big")
    assert f.key == key and (f.client_ip, f.client_port) == (C, 40000)
    assert f.flow_id == flow_id_for(key, 6, 5.0)
    g = t.update(udp(C, S, 1234, 53, 6.0))
    assert g.key == bytes(map(int, C.split("."))) + bytes(map(int, S.split("."))) + b"\x04\xd2\x00\x35"


def test_ip_options_and_vlan_tags_file_flows_consistently() -> None:
    """An IPv4 header with options puts the ports elsewhere; a VLAN tag makes another
    flow."""
    t, _ = table()
    plain = t.update(udp(C, S, 1000, 2000, 1.0))
    opts = Decoder().decode(raw(Ether() / IP(src=S, dst=C, options=b"\x01\x01\x01\x00") / UDP(sport=2000, dport=1000)
                                / b"r"), 1)
    opts.ts = 1.1
    assert opts.l4_off == 14 + 24 and t.update(opts) is plain and opts.to_server is False
    tagged = t.update(tcp(C, S, 1000, 2000, "S", 1.2, vlan=7))
    assert tagged is not None and tagged.proto == 6
    again = t.update(tcp(C, S, 1000, 2000, "S", 1.3))
    assert again is not tagged and again.vlan == () and tagged.vlan == (7,)
    assert plain.pkts_toclient == 1
