"""What each anomaly alert is called in EVE, and the de-duplication of repeats.

Anomaly alerts are ordinary EVE ``alert`` records so SIEM parsers that know
Suricata need nothing new: gid 1 (Suricata's rule gid: dashboards that
filter on gid 1 see them), signature ids from netsentry's anomaly range
9100000-9100999 (bundled rules use 9000001-9099999), ``NETSENTRY ANOMALY ...``
signature text and Suricata classification.config categories with their
default priorities as severity. The evidence goes in our own
``netsentry.anomaly`` object (Suricata's top-level ``anomaly`` is its decoder
anomaly record, with a closed schema). An alert names the hosts it is about
and leaves out what does not apply (`HostPacket`): no ``flow_id``, no ports
unless the finding is about one, no ``dest_ip`` for a traffic spike.

Adding a kind of alert is one row in `KINDS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netsentry.event import Alert, Event, HostPacket

GID = 1
SID_FIRST, SID_LAST = 9100000, 9100999
REV = 1

RECON = ("Detection of a Network Scan", 3)          # classtype network-scan
DOS = ("Detection of a Denial of Service Attack", 2)  # classtype denial-of-service
BAD = ("Potentially Bad Traffic", 2)                 # classtype bad-unknown
MISC = ("Misc activity", 3)                          # classtype misc-activity


@dataclass(frozen=True, slots=True)
class Kind:
    sid: int
    signature: str
    category: str
    severity: int
    source_keyed: bool      # the key's source is the actor (reported by misbehaving_sources)


KINDS: dict[str, Kind] = {
    # name                 sid      signature                                           category/severity
    "tcp-port-scan": Kind(9100001, "NETSENTRY ANOMALY TCP port scan", *RECON, True),
    "udp-port-scan": Kind(9100002, "NETSENTRY ANOMALY UDP port scan", *RECON, True),
    "tcp-host-sweep": Kind(9100010, "NETSENTRY ANOMALY TCP host sweep", *RECON, True),
    "udp-host-sweep": Kind(9100011, "NETSENTRY ANOMALY UDP host sweep", *RECON, True),
    "icmp-host-sweep": Kind(9100012, "NETSENTRY ANOMALY ICMP echo sweep", *RECON, True),
    "syn-flood": Kind(9100020, "NETSENTRY ANOMALY TCP SYN flood", *DOS, False),
    "icmp-flood": Kind(9100021, "NETSENTRY ANOMALY ICMP flood", *DOS, False),
    "udp-flood": Kind(9100022, "NETSENTRY ANOMALY UDP flood", *DOS, False),
    "packet-flood": Kind(9100023, "NETSENTRY ANOMALY packet flood", *DOS, False),
    "new-connections": Kind(9100024, "NETSENTRY ANOMALY new connection burst", *BAD, True),
    "traffic-spike-packets": Kind(9100030, "NETSENTRY ANOMALY traffic spike packets/s above baseline", *MISC, False),
    "traffic-spike-bytes": Kind(9100031, "NETSENTRY ANOMALY traffic spike bytes/s above baseline", *MISC, False),
    "dns-query-flood": Kind(9100040, "NETSENTRY ANOMALY DNS query flood", *DOS, True),
    "dns-tunnel": Kind(9100041, "NETSENTRY ANOMALY DNS tunnelling-like queries", *BAD, True),
}

assert all(SID_FIRST <= k.sid <= SID_LAST for k in KINDS.values())
assert len({k.sid for k in KINDS.values()}) == len(KINDS)


@dataclass(slots=True)
class Finding:
    """A detector's verdict at a bucket boundary, before de-duplication.

    src/dst are what the EVE record's src_ip/dest_ip will show: the actor and
    the target (a flood's busiest source and its victim; a spike's host as
    source and no destination, ``b""``). proto, sp and dp are 0 when the
    finding is not about one protocol or port; EVE then leaves them out.
    """

    kind: str
    detector: str
    key: str
    src: bytes
    dst: bytes
    proto: int
    evidence: dict[str, Any]
    sp: int = 0
    dp: int = 0
    actor: bytes | None = None   # the misbehaving source, for misbehaving_sources()
    extra: dict[str, Any] = field(default_factory=dict)


class Deduplicator:
    """One alert per (detector kind, key) per interval; repeats are counted, not written."""

    def __init__(self, interval: float, table: Any) -> None:
        self.interval = float(interval)
        self.table = table          # KeyTable: (kind, key) -> [last alert ts, repeats since]
        self.suppressed = 0

    def admit(self, kind: str, key: str, ts: float) -> int | None:
        """None when this repeat is suppressed; else how many were suppressed before it."""
        k = (kind, key)
        entry = self.table.data.get(k)
        if entry is None:
            self.table.insert(k, [ts, 0])
            return 0
        if ts - entry[0] < self.interval:
            entry[1] += 1
            self.suppressed += 1
            return None
        repeats = entry[1]
        entry[0], entry[1] = ts, 0
        self.table.refresh(k, entry)
        return repeats


def make_event(f: Finding, ts: float, pcap_cnt: int, suppressed: int) -> Event:
    """The EVE alert for a finding: a record about the finding's hosts (an aggregate
    has no single packet of its own), with the evidence under ``netsentry.anomaly``."""
    kind = KINDS[f.kind]
    pkt = HostPacket()
    pkt.ts = ts
    pkt.pcap_cnt = pcap_cnt
    pkt.src = f.src
    pkt.dst = f.dst
    pkt.ip_version = 6 if len(f.src) == 16 else 4
    pkt.proto = f.proto
    pkt.sp = f.sp
    pkt.dp = f.dp
    evidence = {"detector": f.detector, "key": f.key}
    evidence.update(f.evidence)
    evidence["suppressed"] = suppressed
    alert = Alert(signature_id=kind.sid, signature=kind.signature, gid=GID, rev=REV,
                  category=kind.category, severity=kind.severity, action="allowed")
    extra: dict[str, Any] = {"netsentry": {"anomaly": evidence}}
    extra.update(f.extra)
    return Event("alert", ts, pkt, None, alert, extra)
