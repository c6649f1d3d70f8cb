"""Suricata rule language: parser, variables, keyword registry, per-signature verification.

Where things are:
  loader.py      load_rules(paths, config) -> RuleSet (files, continuations, duplicates)
  parser.py      one rule: header, option splitting (Suricata's), keyword setup, fast pattern
  registry.py    the keyword table and RuleBuilder, the rule under construction
  keywords/      one module per family: meta payload byte header flow threshold applayer
  inspect.py     the payload inspection chain (content/pcre/byte_*/isdataat, relative semantics)
  signature.py   Signature, what detect/ calls: header_match, match, post_match, fast_pattern
  addresses.py ports.py variables.py classification.py numeric.py pcre.py: the value syntaxes
  check.py       `netsentry rules check`

Adding a keyword: write its setup function in the family module with
``@keyword("name", help=...)``; it parses the value (raise RuleError with the
reason) and attaches a packet check (``b.packet_checks``), an inspection item
(``b.add_item``), a content modifier (``b.last_content``) or a post-match
action. Add its tests to that family's test file. Nothing else changes.
"""

from netsentry.rules.errors import RuleError, UnsupportedError
from netsentry.rules.inspect import Content
from netsentry.rules.loader import RuleSet, load_rules
from netsentry.rules.signature import Signature, Threshold

__all__ = ["Content", "RuleError", "RuleSet", "Signature", "Threshold", "UnsupportedError", "load_rules"]
