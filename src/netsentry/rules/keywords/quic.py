"""QUIC keywords (applayer/quic.py), as Suricata's rust/src/quic/detect.rs: the sticky
buffers `quic.version` (the header's 4 version bytes), `quic.sni`, `quic.ua`,
`quic.cyu.hash` and `quic.cyu.string` (multi-buffers: one per CHLO), the `ja3.*`/`ja3s.*`
buffers and `ja4.hash` on a QUIC rule (applayer/quic.py registers their `@quic` variants),
and the `quic.*` events.

`ja4.hash` is computed for QUIC's ClientHello only: on a rule of another protocol (TLS)
it stays unsupported, reported as such.
"""

from __future__ import annotations


from netsentry.applayer import quic
from netsentry.rules.errors import UnsupportedError
from netsentry.rules.keywords.applayer import APP_LAYER_EVENTS, _sticky
from netsentry.rules.registry import KEYWORDS, Keyword, RuleBuilder, keyword

APP_LAYER_EVENTS["quic"] = dict(quic.EVENTS)

for _name in ("quic.cyu.hash", "quic.cyu.string", "quic.version", "quic.sni", "quic.ua"):
    if _name not in KEYWORDS:
        keyword(_name, value="none", help=f"{_name}; sticky buffer (quic)")(_sticky(_name))


def _ja4_hash(b: RuleBuilder, arg: str | None) -> None:
    proto = b.sig.app_proto or next(iter(b.app_protos), None)
    if proto not in (None, "quic"):
        raise UnsupportedError(f"app-layer buffer 'ja4.hash' not supported yet for {proto}",
                               category="app-layer buffer 'ja4.hash' not supported yet")
    _sticky("ja4.hash")(b, arg)


KEYWORDS["ja4.hash"] = Keyword("ja4.hash", _ja4_hash, "optional", "ja4.hash; sticky buffer (quic's ClientHello)",
                               "quic")
