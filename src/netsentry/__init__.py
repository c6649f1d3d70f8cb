"""netsentry: a network intrusion detection and prevention sensor."""

__version__ = "0.1.0"
