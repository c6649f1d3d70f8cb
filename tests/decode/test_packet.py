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
