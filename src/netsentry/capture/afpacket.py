"""AF_PACKET live capture (passive IDS): one socket per interface.

Each interface gets a raw ``AF_PACKET`` socket bound to it, in promiscuous
mode (``PACKET_ADD_MEMBERSHIP``, dropped with the socket), with the
configured BPF filter attached in the kernel and a ``PACKET_FANOUT`` group
joined, so that several workers can share an interface later: with
``cluster_flow`` the kernel hashes both directions of a flow to the same
socket (``PACKET_FANOUT_HASH`` uses the symmetric flow hash), as Suricata's
af-packet ``cluster-type: cluster_flow`` does. With one worker the group has
one member and changes nothing.

Frames are read with ``recv_into`` and ``MSG_TRUNC`` (the wire length comes
back even when the snaplen cut the frame) into one reused buffer; the only
per-packet allocation is the ``bytes`` of the frame, as with capture files.
The kernel's own counters (``PACKET_STATISTICS``: packets that reached the
socket, and packets dropped because the socket buffer was full) are read,
and so reset by the kernel, when the sensor asks for stats; they are summed
here as Suricata's ``capture.kernel_packets`` and ``capture.kernel_drops``.

Time stamps are the wall clock when the frame is read (the sensor's packet
time); see docs/daemon.md for the plain-socket against TPACKET_V3
measurement that chose this reader.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from netsentry.capture.bpf import BpfError, BpfProgram, attach_filter, compile_filter
from netsentry.capture.live import BATCH, LiveSource
from netsentry.config import ConfigError

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_STATISTICS = 6
PACKET_FANOUT = 18
PACKET_IGNORE_OUTGOING = 23
ARPHRD_LOOPBACK = 772
FANOUT_FLAG_DEFRAG = 0x8000
FANOUT_FLAG_IGNORE_OUTGOING = 0x4000
SO_RCVBUFFORCE = 33
SO_DETACH_FILTER = 27
# BPF_RET|BPF_K 0: keep no byte of any frame (the socket's filter until it is in its fanout group)
TAKE_NOTHING = BpfProgram("(nothing until in the fanout group)", struct.pack("=HBBI", 0x06, 0, 0, 0))
MSG_TRUNC = socket.MSG_TRUNC
MSG_DONTWAIT = socket.MSG_DONTWAIT

# Suricata's af-packet cluster-type names -> PACKET_FANOUT_* modes
CLUSTER_TYPES = {"cluster_flow": 0, "cluster_cpu": 2, "cluster_qm": 5, "cluster_rr": 1}
RINGS = ("socket", "tpacket-v3")

# ARPHRD_* (/sys/class/net/IF/type) -> pcap link type of the frames the socket returns
_LINKTYPE_OF_ARPHRD = {1: 1, 772: 1, 65534: 101, 776: 101, 778: 101}

_INTERFACE_KEYS = ("interface", "promisc", "snaplen", "bpf-filter", "cluster-id", "cluster-type",
                   "defrag", "buffer-size", "threads")


@dataclass(frozen=True)
class AfPacketInterface:
    """The capture settings of one interface (the `af-packet` section merged with its list item)."""

    name: str
    promisc: bool = True
    snaplen: int = 65535
    bpf_filter: str = ""
    cluster_id: int = 99
    cluster_type: str = "cluster_flow"
    defrag: bool = True
    buffer_size: int = 4 << 20
    ring: str = "tpacket-v3"
    threads: int | None = None      # workers capturing on it (None: runtime.workers; workers_live.py)


def interfaces_from_config(config: Mapping[str, Any]) -> list[AfPacketInterface]:
    """The `af-packet` section as a list of interfaces; ConfigError (with the key path) on bad values."""
    section = config.get("af-packet") or {}
    items = section.get("interfaces") or []
    if not isinstance(items, list):
        raise ConfigError(f"expected a list of interface names, got {items!r}", "af-packet.interfaces")
    ring = section.get("ring", "tpacket-v3")
    if ring not in RINGS:
        raise ConfigError(f"expected one of {', '.join(RINGS)}, got {ring!r}", "af-packet.ring")
    result = []
    seen = set()
    for i, item in enumerate(items):
        where = f"af-packet.interfaces[{i}]"
        if isinstance(item, str):
            item = {"interface": item}
        if not isinstance(item, Mapping):
            raise ConfigError(f"expected an interface name or a mapping, got {item!r}", where)
        unknown = sorted(set(map(str, item)) - set(_INTERFACE_KEYS))
        if unknown:
            raise ConfigError(f"unknown key {unknown[0]!r} (known: {', '.join(_INTERFACE_KEYS)})", where)
        merged = {k: section.get(k) for k in _INTERFACE_KEYS if k != "interface"}
        merged.update(item)
        name = merged.get("interface")
        if not isinstance(name, str) or not name or "/" in name or len(name) > 15:
            raise ConfigError(f"interface: expected an interface name, got {name!r}", where)
        if name in seen:
            raise ConfigError(f"interface {name} is listed twice", where)
        seen.add(name)
        ctype = merged.get("cluster-type", "cluster_flow")
        if ctype not in CLUSTER_TYPES:
            raise ConfigError(f"cluster-type: expected one of {', '.join(CLUSTER_TYPES)}, got {ctype!r}", where)
        snaplen = _int(merged.get("snaplen", 65535), f"{where}.snaplen", 64, 262144)
        cluster_id = _int(merged.get("cluster-id", 99), f"{where}.cluster-id", 0, 65535 - len(items))
        bufsize = _int(merged.get("buffer-size", 4 << 20), f"{where}.buffer-size", 0, 1 << 31)
        bpf = merged.get("bpf-filter") or ""
        if not isinstance(bpf, str):
            raise ConfigError(f"bpf-filter: expected a filter expression, got {bpf!r}", where)
        threads = merged.get("threads")
        if threads is not None:
            from netsentry.workers import resolve_workers
            threads = resolve_workers(threads, f"{where}.threads")
        result.append(AfPacketInterface(name, bool(merged.get("promisc", True)), snaplen, bpf.strip(),
                                        cluster_id + i, ctype, bool(merged.get("defrag", True)), bufsize,
                                        str(ring), threads))
    return result


def _int(value: Any, key: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"expected an integer from {lo} to {hi}, got {value!r}", key)
    return value


def check_filters(interfaces: Sequence[AfPacketInterface]) -> dict[str, BpfProgram]:
    """Compile every interface's filter before any socket opens (ConfigError names the interface)."""
    programs = {}
    for iface in interfaces:
        if iface.bpf_filter:
            try:
                programs[iface.name] = compile_filter(iface.bpf_filter, _linktype(iface.name), iface.snaplen)
            except BpfError as exc:
                raise ConfigError(str(exc), f"af-packet ({iface.name})") from None
    return programs


def _arphrd(name: str) -> int:
    """The interface's ARPHRD_* hardware type (sysfs); 1 (Ethernet) if unknown."""
    try:
        with open(f"/sys/class/net/{name}/type", encoding="ascii") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return 1


def _linktype(name: str) -> int:
    """The pcap link type of an interface's frames (Ethernet unless sysfs says otherwise)."""
    return _LINKTYPE_OF_ARPHRD.get(_arphrd(name), 1)


class _Capture:
    """One interface's socket and what is needed to read and account it."""

    __slots__ = ("iface", "sock", "ring", "linktype", "snaplen", "kernel_packets", "kernel_drops", "packets")

    def __init__(self, iface: AfPacketInterface, program: BpfProgram | None) -> None:
        self.iface = iface
        self.snaplen = iface.snaplen
        self.kernel_packets = 0
        self.kernel_drops = 0
        self.packets = 0
        try:
            index = socket.if_nametoindex(iface.name)
        except OSError:
            raise OSError(f"af-packet: no such interface: {iface.name}") from None
        self.linktype = _linktype(iface.name)
        try:
            # protocol 0: the kernel hooks a packet socket into receive as soon as it has a
            # protocol, on every interface until bind narrows it, so a socket opened with
            # ETH_P_ALL queues unfiltered frames from anywhere before its filter is on. With 0
            # it receives nothing until bind below, after the filter.
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except OSError as exc:
            raise OSError(f"af-packet {iface.name}: cannot open a packet socket: {exc.strerror or exc} "
                          "(needs root or CAP_NET_RAW)") from None
        self.ring = None
        try:
            if iface.ring == "tpacket-v3":
                from netsentry.capture.tpacket_v3 import RxRing
                # the ring replaces the socket buffer: buffer-size is its size. A block is handed
                # over when full or after RETIRE_MS, so on a slow link each burst takes a block:
                # the reader's latency budget is block_nr x RETIRE_MS. Many smaller blocks (about
                # 32, each at least one frame) keep that budget when a worker waits for a core
                # (1 MiB blocks, 4 of them, dropped frames with 2 workers on a busy machine).
                frame = 1 << max(11, (iface.snaplen + 100).bit_length())
                block = max(frame, min(1 << 20, 1 << max(12, (iface.buffer_size // 32).bit_length() - 1)))
                blocks = max(2, iface.buffer_size // block)
                self.ring = RxRing(sock, block_size=block, block_nr=blocks, frame_size=frame)
            elif iface.buffer_size:
                try:        # as root, past net.core.rmem_max
                    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, iface.buffer_size)
                except OSError:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, iface.buffer_size)
            # Bound, a packet socket takes every frame of the interface by itself until
            # PACKET_FANOUT below moves it into its group; the group (the other workers'
            # sockets) takes those frames too, so a worker (re)started on a busy link would
            # inspect some frames twice (both directions of a flow are meant to meet in one
            # worker). A filter that keeps nothing covers that window; the configured one (or
            # none) replaces it once the socket is a member. It goes on before bind (which
            # gives the socket its protocol), so no unfiltered frame is ever queued.
            attach_filter(sock, TAKE_NOTHING)
            sock.bind((iface.name, ETH_P_ALL))
            mode = CLUSTER_TYPES[iface.cluster_type] | (FANOUT_FLAG_DEFRAG if iface.defrag else 0)
            if _arphrd(iface.name) == ARPHRD_LOOPBACK:
                # on lo every packet is both sent and received: keep one copy (the
                # socket option for a lone socket, the fanout flag for the group's hook)
                sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
                mode |= FANOUT_FLAG_IGNORE_OUTGOING
            if iface.promisc:
                # struct packet_mreq {int ifindex; u16 type; u16 alen; u8 address[8]}
                mreq = struct.pack("iHH8s", index, PACKET_MR_PROMISC, 0, b"")
                sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
            sock.setsockopt(SOL_PACKET, PACKET_FANOUT, struct.pack("I", iface.cluster_id | (mode << 16)))
            if program is not None:
                attach_filter(sock, program)        # replaces TAKE_NOTHING in one step
            else:
                sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)
            sock.setblocking(False)
        except OSError as exc:
            if self.ring is not None:
                self.ring.close()
            sock.close()
            raise OSError(f"af-packet {iface.name}: {exc.strerror or exc}") from None
        self.sock = sock
        self.read_kernel_stats()        # frames queued between bind and now are not ours to count

    def read_kernel_stats(self) -> None:
        """PACKET_STATISTICS: the kernel's counts since the last read (reading resets them)."""
        raw = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
        tp_packets, tp_drops = struct.unpack("II", raw)
        # tp_packets counts frames delivered and dropped; Suricata reports it as kernel_packets
        self.kernel_packets += tp_packets
        self.kernel_drops += tp_drops


class AfPacketSource(LiveSource):
    """Frames from one or more interfaces as ``(ts, data, wirelen, linktype)``, until asked to stop."""

    def __init__(self, interfaces: Sequence[AfPacketInterface],
                 programs: Mapping[str, BpfProgram] | None = None) -> None:
        super().__init__()
        if not interfaces:
            raise ValueError("AfPacketSource needs at least one interface")
        programs = programs if programs is not None else check_filters(interfaces)
        self._caps: list[_Capture] = []
        try:
            for iface in interfaces:
                self._caps.append(_Capture(iface, programs.get(iface.name)))
        except OSError:
            self.close()
            raise
        self.interfaces = [c.iface.name for c in self._caps]
        # the interface of the frames being yielded (EVE's in_iface): set once per ring
        # block or socket batch, not per frame, since a batch comes from one interface
        self.iface = self.interfaces[0]

    def __iter__(self) -> Iterator[tuple[float, bytes, int, int]]:
        if self._caps[0].ring is not None:
            return self._ring_frames()
        return self._socket_frames()

    def _ring_frames(self) -> Iterator[tuple[float, bytes, int, int]]:
        """TPACKET_V3: whole blocks from each interface's ring; poll only when every ring is empty."""
        poller = self._new_poller()
        for cap in self._caps:
            poller.register(cap.sock.fileno(), select.POLLIN)
        rings = [(cap.ring, cap.linktype, cap.snaplen, cap.iface.name) for cap in self._caps]
        clock = time.time
        should_stop = self.should_stop
        while not should_stop():
            got = False
            for ring, linktype, snap, name in rings:
                if ring.ready():            # type: ignore[union-attr]
                    got = True
                    self.iface = name
                    yield from ring.frames(linktype, snap)  # type: ignore[union-attr]
            if not got:
                self._poll(poller, clock())
            self._maybe_tick(clock())

    def _socket_frames(self) -> Iterator[tuple[float, bytes, int, int]]:
        """Plain socket: one recv per frame, a batch per interface per wake-up."""
        poller = self._new_poller()
        by_fd = {}
        for cap in self._caps:
            poller.register(cap.sock.fileno(), select.POLLIN)
            by_fd[cap.sock.fileno()] = cap
        bufsize = max(c.snaplen for c in self._caps)
        buf = bytearray(bufsize)
        view = memoryview(buf)
        clock = time.time
        should_stop = self.should_stop
        while not should_stop():
            now = clock()
            ready = self._poll(poller, now)
            for fd, _ev in ready:
                cap = by_fd[fd]
                self.iface = cap.iface.name
                recv_into = cap.sock.recv_into
                snap = cap.snaplen
                linktype = cap.linktype
                n = 0
                while n < BATCH:
                    try:
                        wirelen = recv_into(buf, bufsize, MSG_TRUNC | MSG_DONTWAIT)
                    except BlockingIOError:
                        break
                    except InterruptedError:
                        continue
                    n += 1
                    yield clock(), bytes(view[:wirelen if wirelen < snap else snap]), wirelen, linktype
                cap.packets += n
            self._maybe_tick(clock())

    def stats(self) -> dict[str, int]:
        """Suricata's capture counters, summed over the interfaces."""
        for cap in self._caps:
            if cap.sock.fileno() >= 0:
                cap.read_kernel_stats()
        return {
            "capture.kernel_packets": sum(c.kernel_packets for c in self._caps),
            "capture.kernel_drops": sum(c.kernel_drops for c in self._caps),
        }

    def close(self) -> None:
        for cap in self._caps:
            if cap.sock.fileno() >= 0:
                try:
                    cap.read_kernel_stats()
                except OSError:
                    pass
                if cap.ring is not None:
                    cap.ring.close()
                cap.sock.close()


def interface_exists(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")
