"""How the cyclic garbage collector runs while the capture loop does.

CPython's collector assumes most objects die young. A sensor's do not: a
flow lives for seconds to minutes (its `Flow`, keys, per-stage state), a
baseline row for hours, and the ruleset for the whole run. With the default
thresholds (700, 10, 10) every flow is walked by several young collections
before it reaches the oldest generation, and the oldest generation, which
holds every live flow, is walked again each time it has grown by a quarter.
On the 1M-packet bench capture that was a fifth of the run
(bench/README.md, "Garbage collector").

So for the duration of a capture loop:

- everything alive when the loop starts (configuration, ruleset, compiled
  prefilters, modules) is moved out of the collector's sight with
  ``gc.freeze()``: it lives until the process ends and no collection needs
  to walk it again;
- young collections run every ``GEN0`` container allocations instead of
  700, and older ones as rarely as ``GEN1``/``GEN2`` say. Per-packet objects
  (packets, events) are freed by reference counting long before that; what
  the collector finds then is the rare cycle, and memory held by such
  cycles stays bounded by the larger young generation.

Automatic collection stays on: reference cycles are still reclaimed, only
less often. Nothing here changes what the sensor computes.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Chosen on the bench capture (bench/README.md has the runs); see the module docstring.
GEN0 = 50_000
GEN1 = 20
GEN2 = 100


@contextmanager
def capture_gc() -> Iterator[None]:
    """Apply the capture-loop collector settings, and restore the previous ones after.

    Not meant to nest: leaving an inner block unfreezes what the outer one froze
    (still correct, only slower)."""
    old = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0, GEN1, GEN2)
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()
