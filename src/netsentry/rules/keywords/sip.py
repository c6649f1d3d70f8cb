"""SIP keywords (applayer/sip.py): the `sip.*` sticky buffers the generic list of
rules/keywords/applayer.py does not name (the header multi-buffers) and the
`sip.*` app-layer events."""

from __future__ import annotations

from netsentry.applayer import sip
from netsentry.rules.keywords.applayer import APP_LAYER_EVENTS, _sticky
from netsentry.rules.registry import KEYWORDS, keyword

APP_LAYER_EVENTS["sip"] = dict(sip.EVENTS)

for _name in ("sip.method", "sip.uri", "sip.request_line", "sip.stat_code", "sip.stat_msg",
              "sip.response_line", "sip.protocol", "sip.from", "sip.to", "sip.via", "sip.user_agent",
              "sip.ua", "sip.content_type", "sip.content_length",
              "sdp.origin", "sdp.session_name", "sdp.session_info", "sdp.uri", "sdp.email",
              "sdp.phone_number", "sdp.connection_data", "sdp.bandwidth", "sdp.time", "sdp.repeat_time",
              "sdp.timezone", "sdp.encryption_key", "sdp.attribute", "sdp.media.media",
              "sdp.media.media_info", "sdp.media.connection_data", "sdp.media.encryption_key"):
    if _name not in KEYWORDS:
        keyword(_name, value="optional", help=f"{_name}; sticky buffer (sip)")(_sticky(_name))
