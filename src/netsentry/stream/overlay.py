"""Byte ranges from several senders laid over each other under a target policy.

Why one module for both stages: IP fragments and out-of-order TCP segments
pose the same question -- when a new piece of data overlaps bytes already
held, whose bytes does the receiving host keep? Snort's and Suricata's
"target-based" answer depends on the target's OS and on how the two pieces
lie (which starts first, which ends last). Each stage gives its policy as a
predicate `new_wins(new_start, new_end, old_start, old_end)` over the
*original* extents of the two pieces, and `Overlay.insert` applies it to
every overlapping stretch.

Pieces are kept as a short sorted list: overlaps and holes are rare, and
the typical datagram or out-of-order run has a handful of pieces.
"""

from __future__ import annotations

from collections.abc import Callable

# new_wins(new_start, new_end, old_start, old_end) -> does the new data replace the old?
Policy = Callable[[int, int, int, int], bool]


class Overlay:
    """Disjoint pieces `(start, data, orig_start, orig_end)` sorted by start."""

    __slots__ = ("pieces", "nbytes")

    def __init__(self) -> None:
        self.pieces: list[tuple[int, bytes, int, int]] = []
        self.nbytes = 0

    def insert(self, start: int, data: bytes, new_wins: Policy) -> tuple[bool, bool]:
        """Lay `data` at `start`; returns (overlapped anything, overlapped bytes differed)."""
        end = start + len(data)
        if not data:
            return False, False
        pieces = self.pieces
        if not pieces or start >= pieces[-1][0] + len(pieces[-1][1]):
            # beyond everything held (the usual out-of-order arrival): no overlap to resolve
            pieces.append((start, data, start, end))
            self.nbytes += len(data)
            return False, False
        kept: list[tuple[int, bytes, int, int]] = []
        lost: list[tuple[int, int]] = []      # stretches of the new data the old data keeps
        overlapped = different = False
        for piece in self.pieces:
            ps, pd, os_, oe = piece
            pe = ps + len(pd)
            if pe <= start or ps >= end:
                kept.append(piece)
                continue
            overlapped = True
            lo, hi = max(ps, start), min(pe, end)
            if pd[lo - ps:hi - ps] != data[lo - start:hi - start]:
                different = True
            if new_wins(start, end, os_, oe):
                if ps < lo:
                    kept.append((ps, pd[:lo - ps], os_, oe))
                if hi < pe:
                    kept.append((hi, pd[hi - ps:], os_, oe))
            else:
                kept.append(piece)
                lost.append((lo, hi))
        # the new data minus what the old data kept
        cur = start
        for lo, hi in sorted(lost):
            if lo > cur:
                kept.append((cur, data[cur - start:lo - start], start, end))
            cur = max(cur, hi)
        if cur < end:
            kept.append((cur, data[cur - start:], start, end))
        kept.sort(key=_start)
        self.pieces = kept
        self.nbytes = sum(len(p[1]) for p in kept)
        return overlapped, different

    def take_contiguous(self, start: int) -> bytes:
        """Remove and return the run of bytes beginning exactly at `start` (b"" if none)."""
        pieces = self.pieces
        run: list[bytes] = []
        cur = start
        i = 0
        while i < len(pieces):
            ps, pd, _, _ = pieces[i]
            pe = ps + len(pd)
            if pe <= cur:             # wholly before: already delivered, drop it
                i += 1
                continue
            if ps > cur:
                break
            run.append(pd[cur - ps:])
            cur = pe
            i += 1
        if i:
            del pieces[:i]
            self.nbytes = sum(len(p[1]) for p in pieces) if pieces else 0
        return b"".join(run)

    def drop_before(self, start: int) -> None:
        """Forget every byte before `start` (data already delivered or skipped over)."""
        pieces = [p if p[0] >= start else (start, p[1][start - p[0]:], p[2], p[3])
                  for p in self.pieces if p[0] + len(p[1]) > start]
        self.pieces = pieces
        self.nbytes = sum(len(p[1]) for p in pieces)

    def first_start(self) -> int | None:
        return self.pieces[0][0] if self.pieces else None


def _start(piece: tuple[int, bytes, int, int]) -> int:
    return piece[0]
