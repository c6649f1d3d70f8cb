"""Community ID (v1) of a flow, for ``outputs.eve-log.community-id``.

The Community ID is a hash of a flow's endpoints that Zeek, Suricata,
Arkime and the Elastic and Splunk pipelines compute the same way, so a SIEM
can join our alerts with the other sensors' records of the same connection.
The hashing follows the specification through Corelight's reference
implementation (the ``communityid`` package) rather than a copy of it: the
subtle parts (endpoint ordering, the ICMP request/reply type pairs) are
exactly what such a copy would get wrong.

Off by default, as in Suricata: it costs a SHA-1 per flow.
"""

from __future__ import annotations

from typing import Any

import communityid
import communityid.error

from netsentry.config import ConfigError
from netsentry.output.fields import PORT_PROTOS

ICMP_MAKERS = {1: communityid.FlowTuple.make_icmp, 58: communityid.FlowTuple.make_icmp6}
CACHE = 65536       # flows remembered; a flow's alerts and its flow record share one hash


class CommunityId:
    """Computes (and remembers per flow id) the ``community_id`` text of a flow or packet."""

    def __init__(self, seed: Any = 0, key: str = "outputs.eve-log.community-id-seed") -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= 65535:
            raise ConfigError(f"expected an integer from 0 to 65535, got {seed!r}", key)
        self._calc = communityid.CommunityID(seed=seed).calc
        self._cache: dict[int, str | None] = {}

    def of_flow(self, flow: Any) -> str | None:
        """The flow's Community ID (the same whichever direction a record describes)."""
        fid = flow.flow_id
        if fid in self._cache:
            return self._cache[fid]
        proto = flow.proto
        if proto in PORT_PROTOS:
            cid = self._hash(communityid.FlowTuple, proto, flow.client, flow.server,
                             flow.client_port, flow.server_port)
        elif proto in ICMP_MAKERS and flow.icmp is not None:
            cid = self._hash(ICMP_MAKERS[proto], flow.client, flow.server, flow.icmp[0], flow.icmp[1])
        else:
            cid = self._hash(communityid.FlowTuple, proto, flow.client, flow.server)
        if len(self._cache) >= CACHE:
            self._cache.clear()
        self._cache[fid] = cid
        return cid

    def of_packet(self, pkt: Any) -> str | None:
        """A flow-less packet's Community ID (None for a packet that is not IP)."""
        if not pkt.ip_version:
            return None
        proto = pkt.proto
        if proto in PORT_PROTOS:
            return self._hash(communityid.FlowTuple, proto, pkt.src, pkt.dst, pkt.sp, pkt.dp)
        if proto in ICMP_MAKERS and pkt.icmp_type >= 0:
            return self._hash(ICMP_MAKERS[proto], pkt.src, pkt.dst, pkt.icmp_type, pkt.icmp_code)
        return self._hash(communityid.FlowTuple, proto, pkt.src, pkt.dst)

    def _hash(self, make: Any, *parts: Any) -> str | None:
        try:
            return self._calc(make(*parts))
        except (communityid.error.Error, ValueError, TypeError):
            return None             # not hashable by the spec (never seen with decoded packets)
