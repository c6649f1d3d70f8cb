"""QUIC keywords (applayer/quic.py), as Suricata's rust/src/quic/detect.rs: the sticky
buffers `quic.version` (the header's 4 version bytes), `quic.sni`, `quic.ua`,
`quic.cyu.hash` and `quic.cyu.string` (multi-buffers: one per CHLO), the `ja3.*`/`ja3s.*`
buffers and `ja4.hash` on a QUIC rule (applayer/quic.py registers their `@quic` variants,
the TLS ones are applayer/tls.py's), and the `quic.*` events.
"""

from __future__ import annotations


from netsentry.applayer import quic
from netsentry.rules.keywords.applayer import APP_LAYER_EVENTS, _sticky
from netsentry.rules.registry import KEYWORDS, keyword

APP_LAYER_EVENTS["quic"] = dict(quic.EVENTS)

for _name in ("quic.cyu.hash", "quic.cyu.string", "quic.version", "quic.sni", "quic.ua"):
    if _name not in KEYWORDS:
        keyword(_name, value="none", help=f"{_name}; sticky buffer (quic)")(_sticky(_name))
