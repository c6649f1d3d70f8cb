"""A live source's wake-up (capture/live.py `Wake`): a ctl command or a worker parent's call gets
on_tick at once instead of at the next tick.

Shown without timing: the tick interval is made 1000 s, so on an idle socket
only the wake can bring on_tick. A safety thread sends one frame the filter
lets through after 20 s, so a broken wake fails the test instead of hanging it.
"""

from __future__ import annotations

import os
import socket
import threading

import pytest

import netsentry.capture.live as live
from netsentry.capture.afpacket import AfPacketInterface, AfPacketSource, check_filters
from netsentry.capture.live import Wake

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (AF_PACKET)")

PORT = 9  # discard: the filter passes only UDP to this port on lo, which nothing here sends but the safety


def test_wake_pending_flag_and_pipe():
    wake = Wake()
    try:
        assert not wake.pending
        wake.set()
        wake.set()              # twice: one wake-up, the pipe does not block
        assert wake.pending and os.read(wake.fd, 10)
        wake.set()
        wake.clear()
        assert not wake.pending
        with pytest.raises(BlockingIOError):
            os.read(wake.fd, 10)
    finally:
        wake.close()


@pytest.mark.parametrize("ring", ["tpacket-v3", "socket"])
def test_a_wake_brings_on_tick_on_an_idle_source(monkeypatch, ring: str):
    monkeypatch.setattr(live, "TICK_INTERVAL", 1000.0)
    iface = AfPacketInterface("lo", bpf_filter=f"udp dst port {PORT}", ring=ring)
    source = AfPacketSource([iface], check_filters([iface]))
    wake = Wake()
    source.wake = wake
    ticks: list[str] = []
    stop = threading.Event()

    def on_tick(now: float) -> None:
        ticks.append("tick")
        stop.set()

    source.on_tick = on_tick
    source.should_stop = stop.is_set

    def safety() -> None:
        if not stop.wait(20):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(b"safety", ("127.0.0.1", PORT))
            stop.set()

    threading.Timer(0.2, wake.set).start()
    guard = threading.Thread(target=safety, daemon=True)
    guard.start()
    try:
        frames = list(source)
    finally:
        source.close()
        wake.close()
    assert ticks == ["tick"], "the wake did not bring on_tick (the safety frame ended the wait)"
    assert frames == []


@pytest.mark.parametrize("ring", ["tpacket-v3", "socket"])
def test_no_frame_is_queued_before_the_filter(monkeypatch, ring: str):
    """Frames on the wire while the socket is being set up never reach the reader.

    A packet socket opened with a protocol is hooked into receive at once, on every interface,
    before its filter is attached: CI once saw loopback TCP leak through a UDP-only filter that
    way. Here a datagram the filter refuses is sent in exactly that window.
    """
    import netsentry.capture.afpacket as afpacket

    real_attach = afpacket.attach_filter

    def attach_after_traffic(sock, program) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"in the window", ("127.0.0.1", PORT + 1))
        real_attach(sock, program)

    monkeypatch.setattr(afpacket, "attach_filter", attach_after_traffic)
    monkeypatch.setattr(live, "TICK_INTERVAL", 1000.0)
    iface = AfPacketInterface("lo", bpf_filter=f"udp dst port {PORT}", ring=ring)
    source = AfPacketSource([iface], check_filters([iface]))
    wake = Wake()
    source.wake = wake
    stop = threading.Event()
    source.on_tick = lambda now: stop.set()
    source.should_stop = stop.is_set
    threading.Timer(0.3, wake.set).start()
    try:
        frames = list(source)
    finally:
        source.close()
        wake.close()
    assert stop.is_set()
    assert [f for f in frames if b"in the window" in f[1]] == []


def test_a_socket_joining_its_fanout_group_takes_no_frame_by_itself(monkeypatch):
    """A worker started (or restarted) while traffic flows: between its bind and its PACKET_FANOUT
    join its socket is an ordinary one on the interface, so a frame then reaches it *and* the
    group, and two workers inspect it. A frame sent exactly in that window, and seen by the
    group's member, must not be queued on the newcomer as well."""
    import inspect
    import select
    import uuid

    import netsentry.capture.afpacket as afpacket

    marker = uuid.uuid4().hex.encode()       # other processes may send to this port on lo too
    cluster = 1000 + os.getpid() % 60000     # a group of this test's own (lo is the machine's)
    port = PORT + 2                          # not the idle-source test's port: lo is the machine's

    def iface() -> AfPacketInterface:
        return AfPacketInterface("lo", bpf_filter=f"udp dst port {port}", ring="socket", cluster_id=cluster)

    first = AfPacketSource([iface()], check_filters([iface()]))
    sent = []
    real_arphrd = afpacket._arphrd

    def in_the_window(name: str) -> int:
        sock = inspect.currentframe().f_back.f_locals.get("sock")       # the socket being set up
        if sock is not None and not sent and sock.getsockname()[1] == afpacket.ETH_P_ALL:     # bound
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(marker, ("127.0.0.1", port))
            # once the group's member has it, the frame has passed every hook on the interface
            select.select([first._caps[0].sock], [], [], 30)
            sent.append(True)
        return real_arphrd(name)

    monkeypatch.setattr(afpacket, "_arphrd", in_the_window)
    second = AfPacketSource([iface()], check_filters([iface()]))

    def marked(source: AfPacketSource) -> int:
        n = 0
        while True:
            try:
                data = source._caps[0].sock.recv(65535, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return n
            n += marker in data

    try:
        assert sent, "the frame was not sent between bind and the fanout join"
        assert marked(first) == 1
        assert marked(second) == 0, "the joining socket queued a frame the group also took"
    finally:
        first.close()
        second.close()
