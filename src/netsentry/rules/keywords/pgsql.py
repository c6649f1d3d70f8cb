"""PostgreSQL's keyword (applayer/pgsql.py): the `pgsql.query` sticky buffer (a simple
query's text), and the `pgsql.*` app-layer events."""

from __future__ import annotations

from netsentry.applayer import pgsql
from netsentry.rules.keywords.applayer import APP_LAYER_EVENTS, _sticky
from netsentry.rules.registry import KEYWORDS, keyword

APP_LAYER_EVENTS["pgsql"] = dict(pgsql.EVENTS)

if "pgsql.query" not in KEYWORDS:
    keyword("pgsql.query", value="none", help="pgsql.query; sticky buffer (pgsql simple query)")(
        _sticky("pgsql.query"))
