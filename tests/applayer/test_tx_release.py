"""Tx.release and transaction detection's kept candidate lists (applayer/tx.py)."""

from __future__ import annotations

from netsentry.applayer.http import HttpTx
from netsentry.applayer.tls import TlsTx
from netsentry.applayer.tx import CANDIDATES_TC, CANDIDATES_TS, Tx


def test_a_release_that_frees_nothing_else_keeps_the_candidate_lists() -> None:
    # TLS frees nothing but the buffer cache: its content, and the candidates worked out
    # from it, stay; the buffers themselves go
    tx = TlsTx()
    kept_ts, kept_tc = [(), [3, 7], ()], [(), [], ()]
    tx.cache.update({CANDIDATES_TS: kept_ts, CANDIDATES_TC: kept_tc, ("tls.sni", None, True): b"x"})
    tx.release()
    assert tx.cache == {CANDIDATES_TS: kept_ts, CANDIDATES_TC: kept_tc}
    # a later change of a buffer drops them as before
    tx.touch(True, frozenset({"tls.sni"}))
    assert CANDIDATES_TS not in tx.cache and CANDIDATES_TC not in tx.cache


def test_a_release_that_frees_content_drops_them() -> None:
    # HTTP frees its bodies and raw headers: lists worked out from them no longer hold
    tx = HttpTx(0)
    tx.cache.update({CANDIDATES_TS: [(), [1], ()], ("http.uri", None, True): b"/"})
    tx.release()
    assert tx.cache == {}
    plain = Tx(1)
    plain.release()
    assert plain.cache == {}
