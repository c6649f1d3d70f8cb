"""LLMNR keywords (applayer/llmnr.py): the `llmnr.*` sticky buffers (DNS's, on LLMNR
transactions) and the `llmnr.*` app-layer events (DNS's names)."""

from __future__ import annotations

from netsentry.applayer import llmnr
from netsentry.rules.keywords.applayer import APP_LAYER_EVENTS, _sticky
from netsentry.rules.registry import KEYWORDS, keyword

APP_LAYER_EVENTS["llmnr"] = dict(llmnr.EVENTS)

for _name in ("llmnr.queries.rrname", "llmnr.answers.rrname", "llmnr.authorities.rrname",
              "llmnr.additionals.rrname", "llmnr.response.rrname"):
    if _name not in KEYWORDS:
        keyword(_name, value="optional", help=f"{_name}; sticky buffer (llmnr)")(_sticky(_name))
