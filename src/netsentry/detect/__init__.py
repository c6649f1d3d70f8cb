"""Signature detection: rule groups, multi-pattern prefilter, verification, thresholds, actions."""

from netsentry.detect.engine import SignatureEngine

__all__ = ["SignatureEngine"]
