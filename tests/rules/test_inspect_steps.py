"""How much work a content chain does: Suricata's retry rules, counted in inspection steps.

The step count is what the recursion budget (`Det.budget`, Suricata's
detect.inspection-recursion-limit) is charged: one per content or pcre
evaluation. The expected counts are the ones Suricata's own content-inspection
unit tests assert for the same buffer and rule (src/tests/
detect-engine-content-inspection.c), so a chain that retries more or less than
Suricata does, and could therefore run out of budget where Suricata would not,
fails here. The one that matters on real traffic: a content followed only by
`distance` contents is not retried (ET Open sid 2025185 spent ~90 ms an
evaluation retrying every `<` of a web page).
"""

from __future__ import annotations

import pytest
from rules_helpers import pkt, rule

from netsentry.rules.inspect import RECURSION_LIMIT, Det

ABC = "abcabcabcabcabcabcabcabcabcabc"   # 10 x "abc"


def steps(opts: str, data: bytes) -> tuple[bool, int]:
    chain = rule(opts).payload_chain
    det = Det(chain.nvars)
    return chain.run(data, det), RECURSION_LIMIT - det.budget


@pytest.mark.parametrize("data, opts, want, want_steps", [
    ("ab", 'content:"a"; content:"b";', True, 2),
    ("ba", 'content:"a"; content:"b"; distance:0;', False, 2),
    ("ba", 'content:"a"; pcre:"/b/R";', False, 2),
    ("ababc", 'content:"a"; content:"b"; distance:0; content:"c"; distance:0;', True, 3),
    # distance only: "d" was searched to the end after the first "b"; no retry
    ("ababc", 'content:"a"; content:"b"; distance:0; content:"d"; distance:0;', False, 3),
    # within: a later "b" gives "d" a different window, so "b" is retried
    ("ababc", 'content:"a"; content:"b"; distance:0; within:1; content:"d"; distance:0; within:1;', False, 5),
    ("ababc", 'content:"a"; content:"b"; distance:0; within:1; pcre:"/^c$/R";', True, 5),
    ("ababc", 'pcre:"/a/"; pcre:"/^b/R"; pcre:"/^c/R";', True, 5),
    ("ababc", 'pcre:"/^a/"; pcre:"/^b/R"; pcre:"/d/R";', False, 3),
    (ABC + "x", 'content:"a"; content:"b"; within:1; distance:0; content:"c"; distance:0; within:1; '
                'content:"d"; within:1; distance:0;', False, 31),
    (ABC + "x", 'content:"a"; content:"b"; distance:0; content:"c"; distance:0; content:"d"; distance:0;',
     False, 4),
    # a relative pcre after "c" retries every "c" (10), but "a" and "b" are not retried
    (ABC + "x", 'content:"a"; content:"b"; distance:0; content:"c"; distance:0; pcre:"/^d/R";', False, 13),
    (ABC + "d", 'content:"a"; content:"b"; within:1; distance:0; content:"c"; distance:0; within:1; '
                'pcre:"/^d/R";', True, 31),
    # a negated relative content makes its anchor retry, with or without within
    ("ababc", 'content:"a"; content:"b"; distance:0; within:1; content:!"a"; distance:0;', True, 5),
])
def test_steps_as_suricata(data: str, opts: str, want: bool, want_steps: int) -> None:
    assert steps(opts, data.encode()) == (want, want_steps)


def test_distance_only_chain_is_linear_not_cubic() -> None:
    # sid 2025185's shape: two distance-only contents, then a relative pcre that fails.
    # Retrying every "<" and every "<script" would cost ~n^2 steps (the budget before);
    # Suricata's rule costs one pcre per ".length".
    opts = ('content:"<script"; content:"<"; distance:0; content:".length"; distance:0; '
            'pcre:"/^\\s*\\)\\s*\\{/R";')
    data = b"<script>" + b"<a.length;" * 200
    ok, used = steps(opts, data)
    assert not ok
    assert used == 3 + 200          # "<script", "<", ".length" once each, the pcre per ".length"


def test_retrying_still_finds_a_later_match() -> None:
    # no retry of "a"/"b" must not lose a match a retry would find: "d" after "c" is only
    # reachable from a later "c", which "c" itself still retries (its follower is a pcre)
    opts = 'content:"a"; content:"b"; distance:0; content:"c"; distance:0; pcre:"/^d/R";'
    assert rule(opts).match(pkt(b"abcx abcd"), None)
    assert not rule(opts).match(pkt(b"abcx abcx"), None)
