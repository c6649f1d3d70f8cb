"""The template protocol's keyword (applayer/template.py): `template.buffer`, and its
`template.*` app-layer event."""

from __future__ import annotations

from netsentry.applayer import template
from netsentry.rules.keywords.applayer import APP_LAYER_EVENTS, _sticky
from netsentry.rules.registry import KEYWORDS, keyword

APP_LAYER_EVENTS["template"] = dict(template.EVENTS)

if "template.buffer" not in KEYWORDS:
    keyword("template.buffer", value="optional", help="template.buffer; sticky buffer (template)")(
        _sticky("template.buffer"))
