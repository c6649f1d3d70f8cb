"""Address checks of most rules as one bit test: which side of a flow is in HOME_NET.

Why: in ET Open nearly every rule's addresses are ``any``, ``$HOME_NET`` or
``$EXTERNAL_NET`` (3,082 and 1,898 of its 3,570 loadable rules name one of
the two), and on the bench capture 88% of the candidates the prefilter hands
to verification fail on their addresses: 1.5 header checks per packet at
two interval searches each. Whether a flow direction's source and
destination are in HOME_NET is fixed for the flow, so the engine works it out
once per flow (a *home class*, 0-3) and such a rule's address check becomes
``mask >> home_class & 1``.

Ports need no check there: a rule is a candidate only through a rule group,
and a one-way rule belongs to a group only when its port specs cover the
group's ports (grouping.py). Two-way (``<>``) rules, other address specs,
and packets without a flow keep `Signature.header_match`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from netsentry.rules.addresses import AddressMatcher, AddressParser
from netsentry.rules.errors import RuleError
from netsentry.rules.variables import address_groups

if TYPE_CHECKING:  # pragma: no cover
    from netsentry.rules.signature import Signature

ALL_CLASSES = 0b1111     # mask of a rule on any -> any: no check at all
NEEDS_HEADER = 0b10000   # mask of a rule whose addresses are not all any/HOME_NET/EXTERNAL_NET
                         # (no home class bit, so `mask & 1 << home_class` is 0 for it)

_ANY, _HOME, _EXTERNAL = 0, 1, 2
HOME_MEMO = 65536        # addresses HomeClasses.home_bits remembers the answer for


class HomeClasses:
    """HOME_NET membership of packed addresses, and per rule the home classes it accepts.

    A home class is ``src_in_home << 1 | dst_in_home``.
    """

    __slots__ = ("contains", "_home", "_external", "_in_home")

    def __init__(self, config: Mapping[str, Any]) -> None:
        parser = AddressParser(address_groups(config))
        try:
            home = parser.parse("$HOME_NET")
            external = parser.parse("!$HOME_NET")
        except RuleError:
            # a broken HOME_NET already stops rule loading with its own error;
            # without it every rule keeps its full header check
            home = external = None
        self._home = home
        self._external = external
        self.contains = home.contains if home is not None else None
        # packed address -> in HOME_NET, bounded (cleared when full): real traffic opens
        # many flows between few hosts (ndpi-mix: 9,337 new flows, two interval searches
        # each in pure Python), so most answers are one dict probe
        self._in_home: dict[bytes, bool] = {}

    def home_bits(self, src: bytes, dst: bytes) -> tuple[int, int]:
        """``1 << home class`` of the direction src -> dst and of the reverse direction."""
        contains = self.contains
        if contains is None:
            return 0, 0
        memo = self._in_home
        s = memo.get(src)
        if s is None:
            if len(memo) >= HOME_MEMO:
                memo.clear()
            s = memo[src] = bool(contains(src))
        d = memo.get(dst)
        if d is None:
            if len(memo) >= HOME_MEMO:
                memo.clear()
            d = memo[dst] = bool(contains(dst))
        return 1 << ((2 if s else 0) | (1 if d else 0)), 1 << ((2 if d else 0) | (1 if s else 0))

    def mask(self, sig: Signature) -> int:
        """Bit c set when a packet of home class c passes the rule's addresses;
        NEEDS_HEADER when only `header_match` can tell."""
        if sig.bidirectional or self._home is None:
            return ALL_CLASSES if sig._header_any else NEEDS_HEADER
        kinds = (self._kind(sig.src), self._kind(sig.dst))
        if None in kinds:
            return NEEDS_HEADER
        src_kind, dst_kind = kinds
        mask = 0
        for cls in range(4):
            if _accepts(src_kind, cls >> 1) and _accepts(dst_kind, cls & 1):
                mask |= 1 << cls
        return mask

    def masks(self, sigs: Sequence[Signature]) -> list[int]:
        return [self.mask(s) for s in sigs]

    def _kind(self, m: AddressMatcher) -> int | None:
        if m.is_any:
            return _ANY
        for kind, ref in ((_HOME, self._home), (_EXTERNAL, self._external)):
            if ref is not None and m.v4 == ref.v4 and m.v6 == ref.v6:
                return kind
        return None


def _accepts(kind: int, in_home: int) -> bool:
    if kind == _ANY:
        return True
    return bool(in_home) if kind == _HOME else not in_home
