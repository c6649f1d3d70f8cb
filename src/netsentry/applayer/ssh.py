"""SSH: detection only (the banner), so a flow's `app_proto` says ssh and the generic
app-layer events can tell an SSH answer to an HTTP request (Suricata's
applayer_mismatch_protocol_both_directions). Its transactions (version exchange,
key exchange: ssh.proto, ssh.software, hassh) are not parsed yet.
"""

from __future__ import annotations

from typing import Any

from netsentry.applayer.registry import Protocol, register_protocol

_BANNER = b"SSH-"


def probe(data: bytes, to_server: bool) -> bool | None:
    """Either side opens with its identification string, "SSH-protoversion-software"
    (RFC 4253 4.2; Suricata's SSH pattern)."""
    if len(data) < len(_BANNER):
        return None if _BANNER.startswith(data) else False
    return data.startswith(_BANNER)


class SshParser:
    """No transactions: nothing is read from an SSH flow beyond its protocol."""

    def __init__(self) -> None:
        self.txs: list[Any] = []

    def parse(self, data: bytes, to_server: bool, pkt: Any = None) -> None:
        pass


register_protocol(Protocol("ssh", (6,), probe, SshParser, (22,)))
