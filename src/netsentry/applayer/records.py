"""The transaction records (EVE `http`, `dns`, `tls`) a flow has ready to log.

When, as Suricata's tx loggers: an HTTP or TLS transaction once it is complete
(both sides, or the handshake) or when its flow ends; DNS one record per
message (a request when it is seen, the response when it is seen, Suricata 8's
dns v3). HTTP and TLS records name the client as `src_ip` (the flow's
direction), DNS records the packet's.
"""

from __future__ import annotations

from typing import Any

from netsentry.event import Event

# the EVE record types transactions make, and the app-layer protocol each comes from
RECORD_TYPES: dict[str, str] = {"http": "http", "dns": "dns", "tls": "tls", "smtp": "smtp", "ftp": "ftp",
                                "ftp_data": "ftp-data", "ssh": "ssh",
                                "sip": "sip", "llmnr": "llmnr", "template": "template", "dcerpc": "dcerpc",
                                "smb": "smb", "pgsql": "pgsql", "ldap": "ldap", "enip": "enip", "modbus": "modbus", "dnp3": "dnp3", "ike": "ike",
                                "mqtt": "mqtt", "ntp": "ntp", "tftp": "tftp", "snmp": "snmp", "krb5": "krb5", "dhcp": "dhcp", "rfb": "rfb", "websocket": "websocket",
                                "nfs": "nfs", "quic": "quic"}


def tx_records(flow: Any, pkt: Any, ts: float, final: bool) -> list[Event]:
    st = flow.app
    txs = st.txs
    out: list[Event] = []
    i = st.log_from
    n = len(txs)
    while i < n:
        tx = txs[i]
        i += 1
        if tx.logged:
            continue
        proto = tx.proto
        per_message = getattr(tx, "message_records", None)
        if per_message is not None:
            objects_ = getattr(tx, "message_objects", False)     # records of several objects (nfs: rpc + nfs)
            for rec in per_message(final):
                out.append(Event(proto, ts, pkt if pkt is not None else None, flow,
                                 extra={"tx_id": tx.tx_id, **rec} if objects_ else {"tx_id": tx.tx_id, proto: rec}))
            continue
        if final or tx.complete():
            tx.logged = True
            objects = getattr(tx, "eve_objects", None)
            if objects is not None:
                # a record of several objects (smtp + email) or named unlike the protocol
                # (ftp-data's `ftp_data`): the first key is its event type
                objs = objects()
                if not objs:
                    continue            # nothing to say (an SSH flow with no banner)
                if isinstance(objs, list):
                    # several records (DNS over HTTP/2: the http record and the dns messages')
                    for o in objs:
                        out.append(Event(next(iter(o)), ts, None, flow, extra={"tx_id": tx.tx_id, **o}))
                    continue
                out.append(Event(next(iter(objs)), ts, None, flow, extra={"tx_id": tx.tx_id, **objs}))
                continue
            out.append(Event(proto, ts, None, flow, extra={"tx_id": tx.tx_id, proto: tx.eve()}))
    while st.log_from < n and txs[st.log_from].logged:
        st.log_from += 1
    return out
