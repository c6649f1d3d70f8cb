"""Buffer inspection: a rule's payload keywords as a chain with Suricata's relative semantics.

A `Chain` is the compiled list of inspection items of one buffer (contents,
pcre, byte_*, isdataat, bsize) in rule order. Running it mirrors Suricata's
`DetectEngineContentInspection` (detect-engine-content-inspection.c):

- `det.buffer_offset` is where the previous relative-capable item left off
  (end of the last content/pcre match, after a byte_jump/byte_extract);
- a content or pcre that matched calls the rest of the chain; if the rest
  fails and some later item is relative to it (`relative_next`), it searches
  again one byte after its previous match start (Suricata's recursion), else
  matching is abandoned (`det.discontinue`). A content retries only when that
  can find something new (`retry_next`, Suricata's DETECT_CONTENT_WITHIN_NEXT
  since 4.0): not when the only items relative to it are positive contents
  with `distance` and no `within`, because such a content already searched to
  the end of the buffer, and a later match of this one only shrinks its
  window (ET Open sid 2025185 spent ~90 ms an evaluation on such retries);
- a failed absolute (non-relative) content ends everything at once, a found
  negated "single" content too;
- a recursion budget bounds the work on hostile payloads, as Suricata's
  `inspection_recursion_limit` (3000) does.

Each item's `inspect(buf, blen, det)` returns True when it and every item
after it matched; `next` is the following item's `inspect` (None for the
last), wired once by `Chain.__init__`, so no per-packet list walking.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

RECURSION_LIMIT = 3000   # Suricata's default detect.inspection-recursion-limit


class Det:
    """Per-run inspection state (Suricata's det_ctx fields that matter here)."""

    __slots__ = ("buffer_offset", "discontinue", "budget", "vars", "lower", "pcre_start")

    def __init__(self, nvars: int) -> None:
        self.buffer_offset = 0
        self.discontinue = False
        self.budget = RECURSION_LIMIT
        self.vars = [0] * nvars if nvars else None
        self.lower: bytes | None = None     # the buffer lowercased, made once on the first nocase search
        self.pcre_start = 0


Next = Callable[[bytes, int, Det], bool] | None


class Item:
    """Base of inspection items. Subclasses implement `inspect`."""

    relative: bool = False        # this item is relative to the previous content/pcre
    can_be_relative_to: bool = False  # content and pcre: others may be relative to it
    relative_next: bool = False   # a later item is relative to this one
    retry_next: bool = False      # content: search again after a failed rest (Chain sets it)
    next: Next = None

    def inspect(self, buf: bytes, blen: int, det: Det) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError


class Value:
    """A numeric keyword argument: a constant, or a byte_extract/byte_math variable slot."""

    __slots__ = ("const", "slot", "name")

    def __init__(self, const: int = 0, slot: int | None = None, name: str = "") -> None:
        self.const = const
        self.slot = slot
        self.name = name

    @property
    def is_var(self) -> bool:
        return self.slot is not None

    def get(self, det: Det) -> int:
        return det.vars[self.slot] if self.slot is not None else self.const  # type: ignore[index]

    def __repr__(self) -> str:
        return self.name if self.slot is not None else str(self.const)


# Longest prefilter pattern (see Content.fp_bytes); docs/limits.md.
MAX_PREFILTER_PATTERN = 1024


@dataclass(eq=False)
class Content(Item):
    """One `content` with its modifiers; also what detect/ feeds to the prefilter.

    `pattern` is the literal bytes as written; with `nocase` matching folds
    ASCII case. `fast_pattern_only` / `fast_pattern_chop` are the rule's
    `fast_pattern` arguments; `fp_bytes` is the slice the prefilter should
    use (the chop when given).
    """

    pattern: bytes = b""
    nocase: bool = False
    negated: bool = False
    buffer: str = "pkt_data"
    offset: Value | None = None
    depth: Value | None = None
    distance: Value | None = None
    within: Value | None = None
    startswith: bool = False
    endswith: bool = False
    fast_pattern: bool = False
    fast_pattern_only: bool = False
    fast_pattern_chop: tuple[int, int] | None = None
    rawbytes: bool = False

    can_be_relative_to = True

    @property
    def fp_bytes(self) -> bytes:
        """At most MAX_PREFILTER_PATTERN bytes: Hyperscan refuses literals over 16,000
        bytes (about 4,000 when a NUL makes us escape them), which used to kill a
        replay that `rules check` had passed. A prefix still occurs wherever the
        content does, and the verifier checks the whole content, so the rule loads
        and matches exactly as before, only prefiltered on its first bytes."""
        if self.fast_pattern_chop is not None:
            off, length = self.fast_pattern_chop
            return self.pattern[off:off + min(length, MAX_PREFILTER_PATTERN)]
        return self.pattern[:MAX_PREFILTER_PATTERN]

    @property
    def is_relative(self) -> bool:
        return self.distance is not None or self.within is not None

    @property
    def is_single(self) -> bool:
        """Suricata's DETECT_CONTENT_IS_SINGLE: no position constraint of any kind."""
        return not (self.is_relative or self.relative_next or self.depth is not None
                    or self.offset is not None)

    def prepare(self) -> None:
        """Freeze the fields into locals the hot path reads (call after the last modifier)."""
        self.relative = self.is_relative
        self._needle = self.pattern.lower() if self.nocase else self.pattern
        self._len = len(self.pattern)
        self._has_var = any(v is not None and v.is_var
                            for v in (self.offset, self.depth, self.distance, self.within))
        if not self.relative and not self._has_var and not self.negated:
            # Most ET Open contents: a fixed window, so offset/depth are constants.
            self._off = self.offset.const if self.offset is not None else 0
            self._dep = self.depth.const + self._off if self.depth is not None else None
            self.inspect = self._inspect_absolute  # type: ignore[method-assign]

    def _inspect_absolute(self, buf: bytes, blen: int, det: Det) -> bool:
        """`inspect` for a positive content with constant offset/depth (same semantics)."""
        det.budget -= 1
        if det.budget <= 0:
            det.discontinue = True
            return False
        if self.nocase:
            hay = det.lower
            if hay is None:
                hay = det.lower = buf.lower()
        else:
            hay = buf
        start = self._off
        depth = self._dep
        if depth is None or depth > blen:
            depth = blen
        needle, clen, nxt, endswith = self._needle, self._len, self.next, self.endswith
        if endswith and depth < blen:
            det.discontinue = True
            return False
        while True:
            found = hay.find(needle, start, depth) if start <= depth else -1
            if found < 0:
                det.discontinue = True      # independent of earlier matches: fatal
                return False
            match_offset = found + clen
            det.buffer_offset = match_offset
            if not endswith or match_offset == blen:
                if nxt is None:
                    return True
                if nxt(buf, blen, det):
                    return True
                if det.discontinue:
                    return False
                if not self.retry_next:
                    det.discontinue = True
                    return False
            start = found + 1

    def inspect(self, buf: bytes, blen: int, det: Det) -> bool:
        det.budget -= 1
        if det.budget <= 0:
            det.discontinue = True
            return False
        if self.nocase:
            hay = det.lower
            if hay is None:
                hay = det.lower = buf.lower()
        else:
            hay = buf
        needle, clen, negated, nxt = self._needle, self._len, self.negated, self.next
        prev_buffer_offset = det.buffer_offset
        prev_offset = 0
        relative = self.relative
        while True:
            if relative:
                offset = prev_buffer_offset
                depth = blen
                distance = 0
                if self.distance is not None:
                    distance = self.distance.get(det)
                    if distance < 0 and -distance > offset:
                        offset = 0
                    else:
                        offset += distance
                if self.within is not None:
                    lim = prev_buffer_offset + self.within.get(det) + distance
                    if depth > lim:
                        depth = lim
            else:
                offset = self.offset.get(det) if self.offset is not None else 0
                depth = self.depth.get(det) + offset if self.depth is not None else blen
            # (Suricata before 7.0.11 also added the offset to the depth when a variable
            # fed `distance`; 7.0.11 limited that to offset/depth variables, which the
            # absolute branch above already counts from the offset: suricata-verify bug-7390.)
            if prev_offset:
                offset = prev_offset
            if depth > blen:
                depth = blen
            if offset > depth or depth <= 0:
                if negated:
                    return True if nxt is None else nxt(buf, blen, det)
                return False
            if self.endswith:
                # Only an occurrence ending the buffer counts, for a negated
                # content too ("does not end with"; Suricata >= 6.0.11,
                # suricata-verify detect-content-ends-with-negated-*).
                start = blen - clen
                found = start if (depth >= blen and start >= offset
                                  and hay.startswith(needle, start)) else -1
            elif clen > depth - offset:
                found = -1
            else:
                found = hay.find(needle, offset, depth)
            if found < 0:
                if negated:
                    return True if nxt is None else nxt(buf, blen, det)
                if not relative:
                    det.discontinue = True   # independent of earlier matches: fatal
                return False
            if negated:
                if self.is_single:
                    det.discontinue = True
                return False
            match_offset = found + clen
            det.buffer_offset = match_offset
            if not self.endswith or match_offset == blen:
                if nxt is None:
                    return True
                if nxt(buf, blen, det):
                    return True
                if det.discontinue:
                    return False
                if not self.retry_next:
                    det.discontinue = True
                    return False
            prev_offset = found + 1


def _distance_only(item: Item) -> bool:
    """A positive content placed by `distance` alone: it searches from its anchor's match
    to the end of the buffer, so a later anchor match can only narrow what it finds."""
    return (isinstance(item, Content) and not item.negated and item.distance is not None
            and item.within is None)


def retries(items: Sequence[Item], i: int) -> bool:
    """Must content `items[i]` look for its next occurrence when the rest of the chain fails?

    Only when some item relative to it (the relative items after it, up to and including
    the next content or pcre, which is what `relative` anchors to) could match at a later
    occurrence where it failed at this one: a content with `within`, a negated content,
    a relative pcre, byte_test/byte_jump/byte_extract/isdataat. As Suricata (since 4.0,
    DETECT_CONTENT_WITHIN_NEXT vs DISTANCE_NEXT), positive `distance`-only contents do not
    count. Same matches as retrying on every relative follower, with fewer searches."""
    item = items[i]
    if not item.relative_next:
        return False
    followers = []
    for nxt in items[i + 1:]:
        if nxt.relative:
            followers.append(nxt)
        if nxt.can_be_relative_to:
            break
    if not followers:
        return True         # marked by the parser but not seen here: keep retrying (as before)
    return not all(_distance_only(f) for f in followers)


class Chain:
    """The inspection items of one buffer, wired for `run`."""

    __slots__ = ("items", "nvars", "_first", "buffer")

    def __init__(self, items: list[Item], nvars: int, buffer: str = "pkt_data") -> None:
        self.items = tuple(items)
        self.nvars = nvars
        self.buffer = buffer
        for i, item in enumerate(self.items):
            item.next = self.items[i + 1].inspect if i + 1 < len(self.items) else None
            if isinstance(item, Content):
                item.retry_next = retries(self.items, i)
        self._first = self.items[0].inspect if self.items else None

    def run(self, buf: bytes, det: Det | None = None) -> bool:
        """True when the whole chain matches `buf` (det may be shared to keep byte variables)."""
        first = self._first
        if first is None:
            return True
        if det is None:
            det = Det(self.nvars)
        return first(buf, len(buf), det)
