"""BPF filters: a tcpdump expression compiled by libpcap, attached to a socket.

Why libpcap: the filter language (``tcp port 80 and not host 10.0.0.1``) is
libpcap's, and its compiler is the reference; writing a second one would only
disagree with it. It is loaded through ctypes (Debian's ``libpcap0.8``), once
at start-up, so nothing of it is on the packet path: the kernel runs the
compiled program on every frame before user space sees it.

The instructions libpcap emits (``struct bpf_insn``) have the same layout as
the kernel's ``struct sock_filter``, so the compiled array is handed to
``SO_ATTACH_FILTER`` as is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import socket
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

SO_ATTACH_FILTER = 26
_INSN = struct.Struct("=HBBI")        # code, jt, jf, k: 8 bytes, as struct sock_filter
# pcap_open_dead takes a DLT_ number; LINKTYPE_RAW (101) is DLT_RAW (12) on Linux
_DLT_OF_LINKTYPE = {101: 12}


class BpfError(Exception):
    """The filter does not compile (or libpcap is missing); the text says which filter and why."""


class _BpfInsn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class _BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(_BpfInsn))]


class _PcapPkthdr(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long), ("caplen", ctypes.c_uint32),
                ("len", ctypes.c_uint32)]


@dataclass(frozen=True)
class BpfProgram:
    """A compiled filter: its source text and the instructions (packed sock_filter array)."""

    expression: str
    code: bytes

    def __len__(self) -> int:
        return len(self.code) // _INSN.size

    def instructions(self) -> list[tuple[int, int, int, int]]:
        """(code, jt, jf, k) per instruction, as ``tcpdump -ddd`` prints them."""
        return [_INSN.unpack_from(self.code, i) for i in range(0, len(self.code), _INSN.size)]


_LIBPCAP: ctypes.CDLL | None = None


def _libpcap() -> ctypes.CDLL:
    global _LIBPCAP
    if _LIBPCAP is None:
        name = ctypes.util.find_library("pcap") or "libpcap.so.0.8"
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            raise BpfError("BPF filters need libpcap (Debian package libpcap0.8); it is not installed") from None
        lib.pcap_open_dead.restype = ctypes.c_void_p
        lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.pcap_compile.restype = ctypes.c_int
        lib.pcap_compile.argtypes = [ctypes.c_void_p, ctypes.POINTER(_BpfProgram), ctypes.c_char_p,
                                     ctypes.c_int, ctypes.c_uint32]
        lib.pcap_geterr.restype = ctypes.c_char_p
        lib.pcap_geterr.argtypes = [ctypes.c_void_p]
        lib.pcap_freecode.argtypes = [ctypes.POINTER(_BpfProgram)]
        lib.pcap_close.argtypes = [ctypes.c_void_p]
        lib.pcap_offline_filter.restype = ctypes.c_int
        lib.pcap_offline_filter.argtypes = [ctypes.POINTER(_BpfProgram), ctypes.POINTER(_PcapPkthdr),
                                            ctypes.c_char_p]
        _LIBPCAP = lib
    return _LIBPCAP


def compile_filter(expression: str, linktype: int = 1, snaplen: int = 65535) -> BpfProgram:
    """Compile `expression` for frames of pcap `linktype` (1: Ethernet). Raises BpfError."""
    lib = _libpcap()
    handle = lib.pcap_open_dead(_DLT_OF_LINKTYPE.get(linktype, linktype), snaplen)
    if not handle:
        raise BpfError(f"bpf filter {expression!r}: libpcap could not open a handle for link type {linktype}")
    prog = _BpfProgram()
    try:
        # optimize=1; netmask 0xffffffff (PCAP_NETMASK_UNKNOWN): only "ip broadcast" needs it
        if lib.pcap_compile(handle, ctypes.byref(prog), expression.encode(), 1, 0xFFFFFFFF) != 0:
            reason = (lib.pcap_geterr(handle) or b"does not compile").decode(errors="replace")
            raise BpfError(f"bpf filter {expression!r}: {reason}")
        code = ctypes.string_at(prog.bf_insns, prog.bf_len * _INSN.size)
        lib.pcap_freecode(ctypes.byref(prog))
    finally:
        lib.pcap_close(handle)
    return BpfProgram(expression, code)


def attach_filter(sock: socket.socket, program: BpfProgram) -> None:
    """SO_ATTACH_FILTER: the kernel runs `program` on every frame before queueing it to `sock`."""
    buf = ctypes.create_string_buffer(program.code, len(program.code))
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; } (pointer-aligned)
    fprog = struct.pack("HL", len(program), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)   # the kernel copies the program


def read_filter_file(path: str) -> str:
    """``-F FILE``: the expression in a file (``#`` comments and line breaks allowed, as tcpdump -F)."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise BpfError(f"{path}: cannot read BPF filter file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise BpfError(f"{path}: BPF filter file is not UTF-8 text (byte {exc.start})") from None
    return " ".join(line.split("#", 1)[0].strip() for line in lines).strip()


class FilteredCapture:
    """`replay -F`: the records of a capture `source` that the filter accepts, as tcpdump -r -F would.

    The same compiled program the kernel would run, run by libpcap in user space
    (pcap_offline_filter), compiled once per link type met. Only replays with a
    filter pay for it (a ctypes call per packet); the rest of the reader's
    interface (progress, file names) is the wrapped source's."""

    def __init__(self, source: Any, expression: str) -> None:
        self._source = source
        self.expression = expression
        self._programs: dict[int, tuple[Any, Any]] = {}
        self._hdr = _PcapPkthdr()

    def check(self, linktypes: Iterable[int]) -> None:
        """Compile for each link type up front, so a bad filter stops the replay before it starts."""
        for lt in linktypes:
            self._program(lt)

    def _program(self, linktype: int) -> tuple[Any, Any]:
        entry = self._programs.get(linktype)
        if entry is None:
            code = compile_filter(self.expression, linktype).code
            buf = ctypes.create_string_buffer(code, len(code))
            prog = _BpfProgram(len(code) // _INSN.size, ctypes.cast(buf, ctypes.POINTER(_BpfInsn)))
            entry = self._programs[linktype] = (prog, buf)
        return entry

    def __iter__(self) -> Iterator[tuple[float, bytes, int, int]]:
        run = _libpcap().pcap_offline_filter
        hdr = self._hdr
        href = ctypes.byref(hdr)
        current = -1
        pref: Any = None
        for rec in self._source:
            linktype = rec[3]
            if linktype != current:
                pref = ctypes.byref(self._program(linktype)[0])
                current = linktype
            data = rec[1]
            hdr.caplen = len(data)
            hdr.len = rec[2]
            if run(pref, href, data):
                yield rec

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)
