"""`Packet` behaves the same compiled (an extension type, decode/packet.pxd) and pure.

The compiled type stores its defaults in ``__cinit__``, the pure class keeps them
as class attributes: two lists that must agree, field for field.
"""

from __future__ import annotations

import copy
import importlib.util
import pickle
from pathlib import Path

import pytest

from netsentry.decode import Decoder
from netsentry.decode import packet as packet_mod
from netsentry.decode.packet import FIELDS, Packet
from netsentry.event import HostPacket

SOURCE = Path(packet_mod.__file__).with_name("packet.py")


def _pure_module():   # type: ignore[no-untyped-def]
    """packet.py run as plain Python, whatever path this process runs."""
    spec = importlib.util.spec_from_file_location("netsentry_packet_pure_copy", SOURCE)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_fields_list_every_declared_field() -> None:
    pure = _pure_module().Packet
    assert list(FIELDS) == list(pure.__annotations__)


def test_defaults_agree_with_the_pure_class() -> None:
    pure = _pure_module().Packet()
    pkt = Packet()
    for name in FIELDS:
        got, want = getattr(pkt, name), getattr(pure, name)
        assert (type(got), got) == (type(want), want), name


def test_a_field_written_from_python_is_read_back() -> None:
    pkt = Packet()
    pkt.proto = 6
    pkt.sp = 40000
    pkt.data = b"\x00" * 60
    pkt.payload_off, pkt.payload_len = 54, 4
    pkt.to_server = False
    assert (pkt.proto, pkt.sp, pkt.to_server, pkt.payload) == (6, 40000, False, b"\x00" * 4)


def test_other_attributes_still_allowed() -> None:
    # rare per-packet values a stage sets without a declared field
    pkt = Packet()
    pkt.some_note = "x"
    assert pkt.some_note == "x"
    with pytest.raises(AttributeError):
        pkt.not_set_anywhere  # noqa: B018


@pytest.mark.parametrize("clone", [copy.copy, copy.deepcopy, lambda p: pickle.loads(pickle.dumps(p))],
                         ids=["copy", "deepcopy", "pickle"])
def test_copies_keep_every_field(clone) -> None:   # type: ignore[no-untyped-def]
    frame = bytes.fromhex(
        "66778899aabb00112233445508004500002d000140004006" "0000" "0a010203c0a80709"
        "9c400050000000050000000750180400" "00000000" "474554202f")
    pkt = Decoder().decode(frame, 1)
    pkt.extra_note = 7
    other = clone(pkt)
    assert type(other) is type(pkt)
    for name in FIELDS:
        assert getattr(other, name) == getattr(pkt, name), name
    assert other.extra_note == 7
    other.data = b""            # replacing data on a copy keeps its header fields
    assert (other.ttl, other.ip_id, other.win) == (pkt.ttl, pkt.ip_id, pkt.win) == (64, 1, 1024)


def test_subclass_instances_have_the_fields() -> None:
    h = HostPacket()
    h.src = b"\x01\x02\x03\x04"
    assert (h.src_ip, h.l4_off, h.events) == ("1.2.3.4", -1, None)
    assert copy.copy(h).src == h.src


# ---- the decoder's records (packet.py `new_packet`) and reference cycles ---------------

REPO = Path(__file__).resolve().parents[2]

# Replays every sample capture and the fragment scenarios of tests/stream through the
# sensor with the collector saving what it finds, and prints how many packets it found
# in reference cycles. Run as pure Python, where every packet is a tracked object.
_CYCLE_SCRIPT = r"""
import gc, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1] + "/tests/stream")
import evasion_captures as ev
from netsentry import _compiled
from netsentry.capture import read_captures
from netsentry.config import load_config
from netsentry.decode.packet import Packet
from netsentry.output.memory import MemoryOutput
from netsentry.rules import load_rules
from netsentry.sensor import Sensor
assert _compiled.status().startswith("fast path: pure"), _compiled.status()
out_dir = Path(sys.argv[2])
caps = sorted(Path(sys.argv[1], "pcaps").glob("*.pcap"))
caps += [ev.write(name, out_dir)[0] for name in ev.SCENARIOS if "frag" in name]
config = load_config(None, [])
rules = load_rules([Path(sys.argv[1], "signatures", "netsentry.rules")], config)
gc.collect()
gc.disable()
gc.set_debug(gc.DEBUG_SAVEALL)


def cyclic_packets():
    # packets in a cycle among what the collector saved as unreachable (the cycles and
    # whatever only they held): those in a strongly connected component of more than one
    # object, or pointing at themselves. Tarjan's algorithm, iterative.
    objs = gc.garbage
    pos = {id(o): i for i, o in enumerate(objs)}
    edges = [[pos[id(r)] for r in gc.get_referents(o) if id(r) in pos] for o in objs]
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = 0
    for root in range(len(objs)):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack.add(v)
            if i < len(edges[v]):
                work.append((v, i + 1))
                w = edges[v][i]
                if w not in index:
                    work.append((w, 0))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            for w in edges[v]:
                if w in on_stack and index[w] > index[v]:
                    low[v] = min(low[v], low[w])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1 or v in edges[v]:
                    found += [objs[w] for w in comp if isinstance(objs[w], Packet)]
    return found


packets = 0
cyclic = []
for cap in caps:
    out = MemoryOutput()
    sensor = Sensor(config, [out], rules)
    sensor.run(read_captures([str(cap)]))
    sensor.finish()
    packets += sensor.result.packets
    del out, sensor
    gc.collect()
    cyclic += cyclic_packets()
    gc.garbage.clear()
print(packets, len(cyclic), sorted({repr(p)[:60] for p in cyclic})[:5])
"""


def test_no_packet_is_left_in_a_reference_cycle(tmp_path: Path) -> None:
    """Compiled, the decoder's records are not gc-tracked (`new_packet`): a packet in a
    reference cycle would never be freed. The pure path, where the collector tracks
    every packet, shows there is none: over every sample capture (alerts, flows, app
    layer, IPS verdicts kept in events) and the fragment scenarios (a fragment and its
    datagram point at each other until the capture loop unlinks them)."""
    import os
    import subprocess
    import sys
    if not (REPO / "signatures" / "netsentry.rules").exists():
        pytest.skip("no signatures/netsentry.rules in this tree")
    env = dict(os.environ, NETSENTRY_PURE="1")
    proc = subprocess.run([sys.executable, "-c", _CYCLE_SCRIPT, str(REPO), str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    packets, cyclic, sample = proc.stdout.split(" ", 2)
    assert int(packets) > 1000
    assert int(cyclic) == 0, sample


def test_unlink_reassembled_cuts_the_chain_down_and_keeps_roots() -> None:
    from netsentry.capture_loop import unlink_reassembled
    frag, dgram, inner = Packet(), Packet(), Packet()
    frag.reassembled, dgram.root = dgram, frag
    dgram.reassembled, inner.root = inner, dgram
    unlink_reassembled(frag)
    assert (frag.reassembled, dgram.reassembled, inner.reassembled) == (None, None, None)
    assert (dgram.root, inner.root) == (frag, dgram)


FRAMES = {
    # Ethernet/IPv4/TCP without options: the compiled fast path
    "fast tcp": bytes.fromhex("00112233445566778899aabb0800" "45000028000140004006" "0000c0a80001c0a80002"
                              "d431005000000001000000005010ffff00000000"),
    # an unknown link type: the layered path, nothing decoded
    "layered": b"\x01\x02\x03",
}


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_decoder_records_hold_the_defaults_in_every_field_they_do_not_set(name: str) -> None:
    frame = FRAMES[name]
    pkt = Decoder().decode(frame, 1 if name == "fast tcp" else 147)
    fresh = Packet()
    decoded = {"data", "linktype"} | ({"ip_version", "ip_off", "src", "dst", "proto", "ttl", "tos",
                                       "ip_id", "ip_flags", "ip_hlen", "ip_len", "l4_off", "sp", "dp",
                                       "tcp_flags", "seq", "ack", "win", "tcp_hlen", "payload_off",
                                       "payload_len"} if name == "fast tcp" else set())
    for field in FIELDS:
        if field not in decoded:
            got, want = getattr(pkt, field), getattr(fresh, field)
            assert (type(got), got) == (type(want), want), field
    assert pkt.data is frame
    if name == "fast tcp":
        assert (pkt.sp, pkt.dp, pkt.seq, pkt.tcp_flags, pkt.payload_len) == (54321, 80, 1, 0x10, 0)


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_an_extra_attribute_stays_on_its_own_packet(name: str) -> None:
    """Records copied from a model must not share its instance dict: a value a stage
    stores on one packet (the app layer's `pd_done`) appeared on every later one."""
    decoder, linktype = Decoder(), 1 if name == "fast tcp" else 147
    first = decoder.decode(FRAMES[name], linktype)
    first.pd_done = 3
    second = decoder.decode(FRAMES[name], linktype)
    assert not hasattr(second, "pd_done") and first.pd_done == 3
    assert not hasattr(Packet(), "pd_done")
    assert pickle.loads(pickle.dumps(first)).pd_done == 3


@pytest.mark.skipif(not packet_mod.TYPED, reason="compiled Packet only (pure records are plain objects)")
@pytest.mark.parametrize("name", sorted(FRAMES))
def test_compiled_decoder_records_are_not_gc_tracked(name: str) -> None:
    import gc
    pkt = Decoder().decode(FRAMES[name], 1 if name == "fast tcp" else 147)
    assert not gc.is_tracked(pkt)
    assert gc.is_tracked(Packet())          # Packet() itself is unchanged
    pkt.note = [pkt]                        # an extra attribute still works (and makes a cycle:
    del pkt.note                            # the reason a stage must not keep one)
