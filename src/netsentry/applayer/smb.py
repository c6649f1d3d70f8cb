"""SMB and DCERPC: protocol detection only, as Suricata detects them, so a flow's
`app_proto` says smb or dcerpc and rules naming them in the header (`alert smb ...`
with payload contents: ET Open's 36 SMB rules, its DCERPC one) apply to those flows.

Neither protocol's transactions are parsed: the `smb.*` and `dce_*` keywords, SMB
files and the EVE `smb`/`dcerpc` records stay unsupported (rules using them are
reported and skipped).

- SMB (rust/src/smb/): a NetBIOS session service header (RFC 1002: type, 24-bit
  length) whose message starts with the SMB1 (``\\xffSMB``), SMB2 (``\\xfeSMB``) or
  SMB3 transform (``\\xfdSMB``) magic; a first small NetBIOS message (a session
  request) may come before it. At least 36 bytes (NBSS and SMB headers) decide.
- DCERPC (rust/src/dcerpc/): a connection-oriented header, version 5.0, with a
  valid data representation (16 bytes decide).
"""

from __future__ import annotations

from netsentry.applayer.registry import NO_RAW_TRIGGER, Protocol, register_protocol

_MIN_SMB = 36                    # NBSS header (4) + SMB header (32): Suricata's MIN_REC_SIZE
_NBSS_TYPES = frozenset({0x00, 0x81, 0x82, 0x83, 0x84, 0x85})
_SMB_MAGIC = frozenset({b"\xffSMB", b"\xfeSMB", b"\xfdSMB"})
_DCERPC_HEADER = 16


def _is_smb_record(data: bytes) -> bool:
    """A NetBIOS message of a known type carrying the SMB magic."""
    return len(data) >= 8 and data[0] in _NBSS_TYPES and data[4:8] in _SMB_MAGIC


def probe_smb(data: bytes, to_server: bool) -> bool | None:
    """Suricata's two ways in: the SMB magic at offset 4 (its pattern, on any port), then
    36 bytes to confirm; or a first small NetBIOS message (a session request) followed by
    an SMB one (its probing parser)."""
    n = len(data)
    if not n or data[0] not in _NBSS_TYPES:
        return False
    if n < 8:
        return None if data[0] != 0x00 or _magic_prefix(data[4:]) else False
    if data[4:8] in _SMB_MAGIC:
        return True if n >= _MIN_SMB else None
    if data[0] == 0x00:
        return False
    length = int.from_bytes(data[1:4], "big")
    if n - 4 >= length + 8:
        return _is_smb_record(data[4 + length:])
    return None if length < 256 else False


def _magic_prefix(b: bytes) -> bool:
    return any(m.startswith(b) for m in _SMB_MAGIC)


class _DetectionOnly:
    """No transactions: nothing is read from these flows beyond their protocol."""

    def __init__(self) -> None:
        self.txs: list[object] = []

    def parse(self, data: bytes, to_server: bool, pkt: object = None) -> None:
        pass


register_protocol(Protocol("smb", (6,), probe_smb, _DetectionOnly, (139, 445), port_decides=()))
NO_RAW_TRIGGER.add("smb")       # Suricata's SMB parser never triggers raw inspection
# DCERPC registers after SMB (the probing order of ports neither names)
from netsentry.applayer.dcerpc import probe_dcerpc  # noqa: E402,F401
