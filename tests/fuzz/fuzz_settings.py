"""Example counts for the hostile-input fuzz suite: small in CI, large for bench/fuzz.py.

NETSENTRY_FUZZ_SCALE multiplies every test's CI count (bench/fuzz.py sets it for
the nightly run); the CI default keeps the whole suite to about a minute on 2 cores.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

SCALE = max(1, int(os.environ.get("NETSENTRY_FUZZ_SCALE", "1") or 1))


def fuzz(examples: int) -> settings:
    return settings(max_examples=examples * SCALE, deadline=None, derandomize=SCALE == 1,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])
