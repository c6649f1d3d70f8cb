"""Flow-rate anomaly detection: scans, sweeps, floods, connection bursts,
traffic spikes against learned per-host baselines, DNS abuse.

`AnomalyEngine(config)` is the stage the sensor calls; see docs/anomaly.md.
"""

from netsentry.anomaly.engine import AnomalyEngine
from netsentry.anomaly.state import StateError

__all__ = ["AnomalyEngine", "StateError"]
