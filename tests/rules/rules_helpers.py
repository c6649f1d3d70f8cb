"""Helpers for the rules tests: parse one rule, build packets and flows as the decoder would."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from netsentry.decode.packet import Packet
from netsentry.flow.flow import Flow
from netsentry.rules.loader import make_env
from netsentry.rules.parser import parse_rule
from netsentry.rules.signature import Signature

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared"
SV = SHARED / "suricata-verify"
ETOPEN = SHARED / "rules" / "etopen"

CLASSIFICATION = """\
config classification: not-suspicious,Not Suspicious Traffic,3
config classification: trojan-activity,A Network Trojan was detected,1
config classification: attempted-recon,Attempted Information Leak,2
"""

_ENV = None


def env():
    """A parse environment with Suricata's default vars and a small classification table."""
    global _ENV
    if _ENV is None:
        e, _, _ = make_env({"classification-file": "/nonexistent", "reference-config-file": "/nonexistent"})
        e.classifications = {}
        for line in CLASSIFICATION.splitlines():
            name, desc, prio = line.split(":", 1)[1].strip().split(",")
            e.classifications[name] = (desc, int(prio))
        e.references = {"url": "http://", "cve": "http://cve.mitre.org/cgi-bin/cvename.cgi?name="}
        _ENV = e
    return _ENV


def rule(options: str, header: str = "alert tcp any any -> any any") -> Signature:
    """Parse `header (options sid:1;)` (a sid is added when the options have none)."""
    if "sid:" not in options:
        options = options.rstrip() + " sid:1;"
    return parse_rule(f"{header} ({options})", env(), "test.rules", 1)


def packed(ip: str) -> bytes:
    return ipaddress.ip_address(ip).packed


def pkt(payload: bytes = b"", proto: int = 6, src: str = "10.0.0.1", dst: str = "10.0.0.2",
        sp: int = 1234, dp: int = 80, **fields) -> Packet:
    """A decoded packet with `payload` as its transport payload (zero offset into data)."""
    p = Packet()
    p.data = payload
    p.payload_off = 0
    p.payload_len = len(payload)
    p.src, p.dst = packed(src), packed(dst)
    p.ip_version = 4 if len(p.src) == 4 else 6
    p.proto = proto
    p.sp, p.dp = sp, dp
    p.ttl = 64
    for k, v in fields.items():
        setattr(p, k, v)
    return p


def flow(proto: int = 6, established: bool = True) -> Flow:
    f = Flow(1, None, proto, 4, (), packed("10.0.0.1"), packed("10.0.0.2"), 1234, 80, 0.0)
    f.established = established
    return f


def matches(sig: Signature, p: Packet, f: Flow | None = None) -> bool:
    """Header and options, as the engine calls them for one candidate."""
    return sig.header_match(p, f) and sig.match(p, f)


def payload_matches(options: str, payload: bytes) -> bool:
    return rule(options).match(pkt(payload), flow())
