"""Suricata rule language: parser, variables, keyword registry, per-signature verification."""

from netsentry.rules.errors import RuleError, UnsupportedError
from netsentry.rules.inspect import Content
from netsentry.rules.loader import RuleSet, load_rules
from netsentry.rules.signature import Signature, Threshold

__all__ = ["Content", "RuleError", "RuleSet", "Signature", "Threshold", "UnsupportedError", "load_rules"]
