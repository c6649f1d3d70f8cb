"""Rule groups: which signatures a packet could match, by IP protocol and ports.

Why: verifying every rule on every packet is what makes a naive engine
collapse at thousands of rules. As Suricata's signature group heads do, we
split rules by IP protocol, then by the port ranges of the header, so a
packet only meets rules whose protocol and ports could fit, and each group
gets its own multi-pattern prefilter.

How: per protocol bucket, the port space is cut into elementary intervals at
every boundary any rule's source or destination port spec has. A packet's
(dp interval, sp interval) pair names its group; the group's members are the
rules whose port specs cover both intervals (either way round for `<>`
rules). Groups are built lazily (most interval pairs never occur) and
interned by member set, so rules that share ports share one compiled
database. The flow caches its two groups (one per direction), so the bisects
run once per flow.
"""

from __future__ import annotations

import time
from array import array
from bisect import bisect_right
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from netsentry.detect.prefilter import build_prefilter
from netsentry.detect.stream import stream_capable
from netsentry.rules.addresses import AddressIndex

try:
    import cython
except ImportError:      # Cython is a build dependency only (netsentry/_cython_shim.py)
    from netsentry import _cython_shim as cython  # type: ignore[no-redef]

if TYPE_CHECKING:  # pragma: no cover
    from netsentry.rules.inspect import Content
    from netsentry.rules.signature import Signature

PORT_MAX = 65535
ANY_PROTO = -1        # bucket key of packets whose protocol no rule names explicitly
IP_ONLY_INDEX_MIN = 16   # below this many ip-only rules in a group, testing each is cheaper
NON_IP = -2           # bucket key of non-IP frames (ARP, ...): only `pkthdr` rules apply
_NON_IP_PROTOS = ("pkthdr", "ether", "arp")   # rule protocols a non-IP frame can meet
FIRST_CANDIDATES_MEMO = 65536  # (group, src, dst) answers of first_candidates an index remembers


def fast_pattern_of(sig: Signature) -> Content | None:
    """The content the prefilter uses for `sig`, or None (rule checked on every packet).

    The parser's choice (`sig.fast_pattern`) wins when it inspects the packet
    payload and is not negated; otherwise the longest such content, as
    Suricata picks the longest pattern when none is marked.
    """
    fp = sig.fast_pattern
    if fp is not None and fp.buffer == "pkt_data" and not fp.negated and fp.fp_bytes:
        return fp
    if fp is not None:
        # A marked fast pattern in another buffer: any pkt_data content would do,
        # but the rule's own choice says the payload is not where it looks first.
        return None
    best = None
    for c in sig.contents:
        if c.buffer == "pkt_data" and not c.negated and c.pattern:
            if best is None or len(c.pattern) > len(best.pattern):
                best = c
    return best


@cython.final
@cython.cclass
class Group:
    """The rules one (protocol, dp interval, sp interval) can meet.

    always:     nums of rules without a usable fast pattern (verified on every packet)
    always_later: `always` without Suricata's ip-only rules, which a flow direction
                meets only on its first packet
    has_stream: some member is stream-capable, so TCP data keeps a stream window
    prefilter:  compiled fast patterns, or None when no member has one
    owners:     pattern id -> nums of the rules with that (pattern, nocase)
    keep:       None, or the member set to filter hits by when `prefilter` is
                the protocol bucket's shared database
    later_by_flags: None, or per TCP flags byte the `always_later` rules whose
                `flags:` checks accept it (Signature.tcp_flags_ok)
    single:     pattern id -> num when every pattern has exactly one owner and the
                group has its own database (pattern ids then run in num order, so
                sorted hits map to candidates in evaluation order), else None
    ip_only:    some member is inspected once per flow direction only
    """

    # compiled: a typed record (grouping.pxd), so detect/engine.py reads these as struct members
    if not cython.compiled:
        __slots__ = ("_members", "_parts", "always", "always_later", "prefilter", "owners", "build_seconds", "has_stream",
                     "keep", "single", "ip_only", "later_by_flags", "_ip_src", "_ip_dst", "_ip_bidir", "_later_set",
                     "_always_set", "_stream_set", "_base", "_first", "stream_alone", "stream_capable")

    def __init__(self, members: Sequence[int], sigs: Sequence[Signature], backend: str,
                 once_per_direction: frozenset[int] | set[int] = frozenset(),
                 shared: Group | None = None, ip_indexes: dict | None = None,
                 fps: Sequence[Content | None] | None = None, spec: frozenset[int] | None = None,
                 memo: dict | None = None) -> None:
        t0 = time.perf_counter()
        member_set = members if isinstance(members, frozenset) else frozenset(members)
        once = once_per_direction if isinstance(once_per_direction, frozenset) else frozenset(once_per_direction)
        self._base = None       # _PortAnyFacts of a bucket's shared group (GroupIndex.warm)
        # the signature engine's answers, -1 until it first asks (engine.py `_window_alone`,
        # `_all_stream_capable`; a group belongs to one engine's index)
        self.stream_alone = -1
        self.stream_capable = -1
        # first_candidates' answers, shared by the index's groups so that one bound holds
        # for all of them (a per-group bound times ~300 groups could grow to a million)
        self._first = memo if memo is not None else {}
        base = None             # the bucket's _PortAnyFacts, for a port group over its database
        derived = None          # what `base` remembers for this group's content-less rules
        if shared is not None and spec is not None and shared._base is not None:
            # A port group over the bucket's shared group, built per new port class while
            # packets wait (ndpi-mix with ET Open: ~290 of them, ~2,450 members each, in its
            # packet phase). Its members are the bucket's any-port rules, whose facts the
            # shared group worked out once (`_PortAnyFacts`), plus `spec`, its port-specific
            # rules (tens to hundreds): only those are sorted and intersected here, and the
            # sorted tuples are merged (sorted() of two sorted runs is one linear merge).
            # Same facts as the pass over every member below (tests/detect/test_grouping.py).
            base = shared._base
            self._always_set = self._stream_set = None
            extra_always = spec & shared._always_set
            # its sorted member tuple only when asked (`members`): the merge of ~2,450 numbers
            # was ~40% of a port group's build, and the packet path never reads it
            self._members = None
            self._parts = (base.members, spec)
            self.has_stream = base.has_stream or not spec.isdisjoint(shared._stream_set)
            # Everything below that follows from the rules without a fast pattern is the
            # same for every port group adding the same ones (most add none): worked out
            # once per such set, kept on the bucket's facts (ndpi-mix, ET Open: 272 port
            # groups, the flags table, the ip-only index key and the sorts were ~60% of
            # each one's build).
            derived = base.derived.get(extra_always)
            if derived is None:
                self.always = _merged(base.always, extra_always)
                self.always_later = _merged(base.later, extra_always - once) if once else self.always
                first_only = _merged(base.once, extra_always & once) if once else ()
        else:
            self._members = tuple(sorted(member_set))
            self._parts = None
            if fps is None:
                fps = [fast_pattern_of(s) for s in sigs]
            always_set = frozenset(n for n in self.members if fps[n] is None)
            stream_set = frozenset(n for n in self.members if stream_capable(sigs[n]))
            self._always_set = always_set
            self._stream_set = stream_set
            self.always = tuple(sorted(always_set))
            # for later packets of a flow direction: without the rules inspected once per direction
            self.always_later = tuple(sorted(always_set - once)) if once else self.always
            first_only = tuple(sorted(always_set & once)) if once else ()
            # any member to try on the stream window too (see stream.py)?
            self.has_stream = bool(stream_set)
        if derived is None:
            always = self.always
            self.ip_only = len(self.always_later) != len(always)
            # Content-less rules (no fast pattern) would be verified on every packet; the
            # bundled flag-scan rules (flags:0, flags:F,12, ...) cost ~5 s per 1M packets
            # that way. A table by flags byte keeps only those whose flags can match.
            oks = [sigs[n].tcp_flags_ok for n in self.always_later]
            self.later_by_flags = None
            if any(ok is not None for ok in oks):
                self.later_by_flags = tuple(
                    tuple(n for n, ok in zip(self.always_later, oks) if ok is None or v in ok) for v in range(256))
            self._later_set = frozenset(self.always_later)
            self._index_ip_only(first_only, sigs, ip_indexes)
            if base is not None:
                base.derived[extra_always] = (self.always, self.always_later, self.ip_only, self.later_by_flags,
                                              self._later_set, self._ip_src, self._ip_dst, self._ip_bidir)
        else:
            (self.always, self.always_later, self.ip_only, self.later_by_flags,
             self._later_set, self._ip_src, self._ip_dst, self._ip_bidir) = derived
        if shared is not None:
            # the bucket's database (GroupIndex: too many port groups to compile one
            # each); hits of rules outside this group are dropped via `keep`
            self.prefilter, self.owners = shared.prefilter, shared.owners
            self.keep = None if len(shared.members) == len(member_set) else member_set
            self.single = shared.single if self.keep is None else None
        else:
            self.keep = None
            self._compile(fps, backend)
        self.build_seconds = time.perf_counter() - t0

    @property
    def members(self) -> tuple[int, ...]:
        """The member rules' numbers, ascending (a port group over a bucket's shared
        database merges them on first use: `__init__`)."""
        got = self._members
        if got is None:
            base, spec = self._parts
            got = self._members = _merged(base, spec)
            self._parts = None
        return got

    def _compile(self, fps: Sequence[Content | None], backend: str) -> None:
        pattern_ids: dict[tuple[bytes, bool], int] = {}
        owners: list[list[int]] = []
        for num in self.members:
            fp = fps[num]
            if fp is None:
                continue
            key = (fp.fp_bytes, bool(fp.nocase))
            pid = pattern_ids.get(key)
            if pid is None:
                pid = pattern_ids[key] = len(owners)
                owners.append([])
            owners[pid].append(num)
        self.owners = tuple(tuple(o) for o in owners)
        self.single = tuple(o[0] for o in owners) if all(len(o) == 1 for o in owners) else None
        self.prefilter = build_prefilter(list(pattern_ids), backend) if owners else None

    def _index_ip_only(self, ip_only: Sequence[int], sigs: Sequence[Signature], cache: dict | None) -> None:
        """Many ip-only rules (ET Open: ~1200 reputation-list rules) are narrowed by
        address indexes instead of one header test each on every new flow direction.
        Groups of a bucket share the ip-only rules, so `cache` shares the indexes."""
        self._ip_src = self._ip_dst = None
        self._ip_bidir = ()
        if len(ip_only) <= IP_ONLY_INDEX_MIN:
            return
        key = frozenset(ip_only)
        built = cache.get(key) if cache is not None else None
        if built is None:
            oneway = [n for n in ip_only if not sigs[n].bidirectional]
            built = (AddressIndex((n, sigs[n].src) for n in oneway),
                     AddressIndex((n, sigs[n].dst) for n in oneway),
                     tuple(n for n in ip_only if sigs[n].bidirectional))
            if cache is not None:
                cache[key] = built
        self._ip_src, self._ip_dst, self._ip_bidir = built

    def first_candidates(self, src: bytes, dst: bytes) -> tuple[int, ...]:
        """`always` for the first packet of a flow direction: the ip-only rules
        narrowed to those whose addresses can contain (src, dst)."""
        if self._ip_src is None:
            return self.always
        # The answer depends on the group and the address pair only, and real traffic
        # opens many flows between the same two hosts (ndpi-mix: 14,247 first packets,
        # ~3 us each for two index lookups, an intersection and a sort; 8,980 repeat a
        # pair); remembered in the index's bounded memo, cleared when full.
        key = (self, src, dst)
        first = self._first
        cands = first.get(key)
        if cands is not None:
            return cands
        # each address's index answer remembered too (keyed by the index, which groups of a
        # bucket share): a new pair is mostly two hosts seen before in other pairs
        skey = (self._ip_src, src)
        in_src = first.get(skey)
        if in_src is None:
            in_src = first[skey] = self._ip_src.lookup(src)      # type: ignore[union-attr]
        dkey = (self._ip_dst, dst)
        in_dst = first.get(dkey)
        if in_dst is None:
            in_dst = first[dkey] = self._ip_dst.lookup(dst)      # type: ignore[union-attr]
        hits = in_src & in_dst
        if not hits and not self._ip_bidir:
            cands = self.always_later
        else:
            cands = tuple(sorted(self._later_set.union(hits, self._ip_bidir)))
        if len(first) >= FIRST_CANDIDATES_MEMO:
            first.clear()
        first[key] = cands
        return cands

    def __repr__(self) -> str:
        return f"<Group rules={len(self.members)} patterns={len(self.owners)} always={len(self.always)}>"


def _merged(base: tuple[int, ...], extra: frozenset[int]) -> tuple[int, ...]:
    """The sorted tuple `base` with the (disjoint) numbers of `extra` added."""
    if not extra:
        return base
    return tuple(sorted(base + tuple(extra)))


class _PortAnyFacts:
    """A bucket's any-port rules as every port group of it sees them, worked out once.

    Each port group of a bucket with a shared database holds these rules plus its own
    port-specific ones (`_Bucket.specific`), so `Group` merges its few facts into these
    instead of recomputing them from thousands of members."""

    __slots__ = ("members", "always", "later", "once", "has_stream", "derived")

    def __init__(self, port_any: frozenset[int], shared: Group, once: frozenset[int]) -> None:
        # per set of port-specific content-less rules a port group adds: its facts that
        # follow from them alone (Group.__init__), shared by every group adding that set
        self.derived: dict[frozenset[int], tuple[Any, ...]] = {}
        always = port_any & shared._always_set      # type: ignore[operator]
        self.members = tuple(sorted(port_any))
        self.always = tuple(sorted(always))
        self.later = tuple(sorted(always - once))
        self.once = tuple(sorted(always & once))
        self.has_stream = not port_any.isdisjoint(shared._stream_set)   # type: ignore[arg-type]


def _cut_points(ranges: list[tuple[int, int]]) -> list[int]:
    """Starts of the elementary intervals that `ranges` cut 0..65535 into."""
    cuts = {0}
    for lo, hi in ranges:
        cuts.add(lo)
        if hi < PORT_MAX:
            cuts.add(hi + 1)
    return sorted(cuts)


class _Bucket:
    """Rules of one IP protocol, indexed by port intervals."""

    __slots__ = ("key", "nums", "port_any", "dp_starts", "sp_starts", "fwd_dp", "fwd_sp", "rev_dp", "rev_sp",
                 "dp_of", "sp_of", "table")

    def __init__(self, key: int, nums: list[int], sigs: Sequence[Signature]) -> None:
        self.key = key
        self.nums = nums
        specific = []
        any_any = []
        for num in nums:
            s = sigs[num]
            if s.sp.is_any and s.dp.is_any:
                any_any.append(num)
            else:
                specific.append(num)
        self.port_any = frozenset(any_any)
        dp_ranges: list[tuple[int, int]] = []
        sp_ranges: list[tuple[int, int]] = []
        for num in specific:
            s = sigs[num]
            dp_ranges += s.dp.intervals
            sp_ranges += s.sp.intervals
            if s.bidirectional:       # mirrored: its sp is matched against the packet's dp
                dp_ranges += s.sp.intervals
                sp_ranges += s.dp.intervals
        self.dp_starts = _cut_points(dp_ranges)
        self.sp_starts = _cut_points(sp_ranges)
        # per elementary interval: the port-specific rules whose spec covers it
        self.fwd_dp = self._cover(self.dp_starts, specific, sigs, lambda s: s.dp.intervals)
        self.fwd_sp = self._cover(self.sp_starts, specific, sigs, lambda s: s.sp.intervals)
        bidir = [n for n in specific if sigs[n].bidirectional]
        self.rev_dp = self._cover(self.dp_starts, bidir, sigs, lambda s: s.sp.intervals)
        self.rev_sp = self._cover(self.sp_starts, bidir, sigs, lambda s: s.dp.intervals)
        # Intervals whose covers are the same rules are one port class: they always make
        # the same group. ET Open's tcp bucket cuts the ports into 248 x 97 intervals but
        # far fewer classes, and real traffic (ndpi-mix: ephemeral ports everywhere) met
        # a new interval pair on many flows, each costing a member-set computation over
        # thousands of rules (_Bucket.members + Group: ~10% of its packet phase).
        dp_class, self.fwd_dp, self.rev_dp = self._classes(self.fwd_dp, self.rev_dp)
        sp_class, self.fwd_sp, self.rev_sp = self._classes(self.fwd_sp, self.rev_sp)
        # port -> port class as flat lists: one index operation per port instead of a
        # bisect (lookup is per flow, and the bench capture has ~4.5 packets per flow,
        # so it is nearly per packet).
        self.dp_of = self._index(self.dp_starts, dp_class)
        self.sp_of = self._index(self.sp_starts, sp_class)
        # table[dp class][sp class] -> Group, filled on first use
        self.table: list[list[Group | None]] = [[None] * len(self.fwd_sp) for _ in self.fwd_dp]

    @staticmethod
    def _classes(fwd: list[frozenset[int]], rev: list[frozenset[int]]
                 ) -> tuple[list[int], list[frozenset[int]], list[frozenset[int]]]:
        """Per interval its class id, and per class its (forward, mirrored) covers."""
        ids: dict[tuple[frozenset[int], frozenset[int]], int] = {}
        of = [ids.setdefault((f, r), len(ids)) for f, r in zip(fwd, rev)]
        return of, [f for f, _ in ids], [r for _, r in ids]

    @staticmethod
    def _index(starts: list[int], cls: list[int]) -> Sequence[int]:
        """Port -> class id, one byte per port when the ids fit (bytes index to ints like
        the list did): 64 KiB instead of a 512 KiB list of pointers per table, two per
        bucket. The lookups are per new flow at random ports, so a table that stays in
        the cache matters (10k rules, bench-300k: flow_groups was 3% of the loop in
        py-spy while the large prefilter scans pushed it out)."""
        out: list[int] = []
        for i, lo in enumerate(starts):
            hi = starts[i + 1] if i + 1 < len(starts) else PORT_MAX + 1
            out += [cls[i]] * (hi - lo)
        if max(cls) < 256:
            return bytes(out)
        return array("I", out)

    @staticmethod
    def _cover(starts: list[int], nums: list[int], sigs: Sequence[Signature], spec) -> list[frozenset[int]]:
        cover: list[set[int]] = [set() for _ in starts]
        for num in nums:
            for lo, hi in spec(sigs[num]):
                i = bisect_right(starts, lo) - 1
                while i < len(starts) and starts[i] <= hi:
                    cover[i].add(num)
                    i += 1
        return [frozenset(c) for c in cover]

    def members(self, dpi: int, spi: int) -> frozenset[int]:
        """The rules of dp class `dpi` and sp class `spi`."""
        return self.port_any | self.specific(dpi, spi)

    def specific(self, dpi: int, spi: int) -> frozenset[int]:
        """The port-specific rules of dp class `dpi` and sp class `spi` (not in `port_any`)."""
        return (self.fwd_dp[dpi] & self.fwd_sp[spi]) | (self.rev_dp[dpi] & self.rev_sp[spi])


# An `ip` rule whose ip_proto check accepts at most this many protocols is bucketed
# under each of them instead of under every protocol.
IP_PROTO_BUCKETS_MAX = 8


def _checked_protos(s: Signature) -> tuple[int, ...] | None:
    """The IP protocols an `ip` rule's `ip_proto` checks let through, when they are few.

    Suricata's ip_proto keyword narrows the rule's protocol set, so the rule joins only
    those protocols' groups. Ours is a packet check (rules/keywords/header.py) that
    tags itself with the protocols it accepts; without this, ET Open's
    `alert ip ... ip_proto:41` was verified on every packet of ndpi-mix (107,040
    checks, none a match). The check stays in the rule, so this is only a filter."""
    if s.proto != "ip":
        return None
    accepted: frozenset[int] | None = None
    for check in s.packet_checks:
        protos = getattr(check, "ip_protos", None)
        if protos is not None:
            accepted = protos if accepted is None else accepted & protos
    if accepted is None or len(accepted) > IP_PROTO_BUCKETS_MAX:
        return None
    return tuple(sorted(accepted))


class GroupIndex:
    """Protocol buckets and lazily built, interned groups."""

    def __init__(self, sigs: Sequence[Signature], backend: str = "auto",
                 once_per_direction: set[int] | frozenset[int] = frozenset()) -> None:
        self.sigs = sigs
        self.backend = backend
        self.once_per_direction = frozenset(once_per_direction)
        self._fps = [fast_pattern_of(s) for s in sigs]     # per num, chosen once
        self._ip_indexes: dict = {}
        self._first_memo: dict = {}       # Group.first_candidates' answers, all groups
        self._shared: dict[int, Group] = {}
        by_proto: dict[int, list[int]] = {}
        any_proto: list[int] = []
        for num, s in enumerate(sigs):
            protos = s.ip_protos
            if protos is None:
                protos = _checked_protos(s)
            if s.proto == "arp":
                continue            # never an IP packet: the non-IP bucket only
            if protos is None:
                any_proto.append(num)
            else:
                for p in protos:
                    by_proto.setdefault(p, []).append(num)
        self.buckets: dict[int, _Bucket] = {
            p: _Bucket(p, sorted(nums + any_proto), sigs) for p, nums in by_proto.items()}
        self.other = _Bucket(ANY_PROTO, any_proto, sigs)
        self.buckets[ANY_PROTO] = self.other
        # `ip` rules need an IP packet; Suricata's `pkthdr` rules see every frame, its
        # `ether` rules every Ethernet frame and `arp` rules only ARP frames
        self.buckets[NON_IP] = _Bucket(NON_IP, [n for n, s in enumerate(sigs) if s.proto in _NON_IP_PROTOS], sigs)
        self._by_members: dict[frozenset[int], Group] = {}
        self._by_spec: dict[tuple[int, frozenset[int]], Group] = {}     # _build's interning by (bucket, spec)
        # per protocol key: (bucket, dp -> class, sp -> class, table), what `flow_groups`
        # reads once per new flow, in one dict probe instead of five attribute reads
        self._tables = {p: (b, b.dp_of, b.sp_of, b.table) for p, b in self.buckets.items()}
        self._other_tables = self._tables[ANY_PROTO]

    def lookup(self, proto: int, sp: int, dp: int) -> Group:
        """The group of a packet with this protocol and ports (built on first use)."""
        b = self.buckets.get(proto) or self.other
        row = b.table[b.dp_of[dp]]
        spi = b.sp_of[sp]
        g = row[spi]
        if g is None:
            g = row[spi] = self._build(b, b.dp_of[dp], spi)
        return g

    def flow_groups(self, proto: int, sp: cython.Py_ssize_t, dp: cython.Py_ssize_t) -> tuple[Group, Group]:
        """(group of packets sp -> dp, group of the reverse direction), one bucket fetch.

        A flow asks once for both directions; the bench capture averages ~4.5
        packets per flow, so this runs for about one packet in four. Compiled, the
        ports and class ids are C integers and the table a typed list, so each of
        the four index operations is a direct item read (py-spy, 10k rules: half of
        this function was generic `__getitem__` calls on Python ints).
        """
        # compiled: class ids as C integers; the rows typed lists
        dpi: cython.Py_ssize_t
        spi: cython.Py_ssize_t
        table: list
        row: list
        t = self._tables.get(proto)
        if t is None:
            t = self._other_tables
        b, dp_of, sp_of, table = t
        dpi, spi = dp_of[dp], sp_of[sp]
        row = table[dpi]
        fwd = row[spi]
        if fwd is None:
            fwd = row[spi] = self._build(b, dpi, spi)
        dpi, spi = dp_of[sp], sp_of[dp]
        row = table[dpi]
        rev = row[spi]
        if rev is None:
            rev = row[spi] = self._build(b, dpi, spi)
        return fwd, rev

    def _build(self, b: _Bucket, dpi: int, spi: int) -> Group:
        spec = b.specific(dpi, spi)
        # a bucket's members are its any-port rules plus `spec`, so (bucket, spec) names the
        # member set without making it: a class pair whose spec an earlier pair had costs
        # no union and no hash over the bucket's thousands of members (ET Open's tcp)
        key = (b.key, spec)
        g = self._by_spec.get(key)
        if g is not None:
            return g
        members = b.port_any | spec
        g = self._by_members.get(members)
        if g is None:
            g = self._by_members[members] = Group(members, self.sigs, self.backend, self.once_per_direction,
                                                  self._shared.get(b.key), self._ip_indexes, self._fps, spec,
                                                  self._first_memo)
        self._by_spec[key] = g
        return g

    def warm(self, max_pairs: int = 256) -> None:
        """Build groups at load time rather than on a packet.

        Every (dp interval, sp interval) pair of a bucket when there are at
        most `max_pairs` (interning keeps the compiles to the distinct member
        sets), else the bucket's shared database; groups over it are cheap and
        made on first use. Measured on the 10k generated set: a 5,000-pattern
        group compiles in about 0.5 s, which otherwise lands on some packet
        mid-replay.
        """
        for bkey, b in self.buckets.items():
            if len(b.dp_starts) * len(b.sp_starts) <= max_pairs:
                for dpi, row in enumerate(b.table):
                    for spi in range(len(row)):
                        row[spi] = self._build(b, dpi, spi)
            else:
                # Too many port groups to compile a database each (ET Open: 248 x 97
                # tcp intervals; building them on first use cost ~0.5 s per new port
                # pair mid-replay). One database for the whole bucket instead, as
                # Suricata's `sgh-mpm-context: single`; groups filter its hits.
                shared = Group(b.nums, self.sigs, self.backend, self.once_per_direction,
                               None, self._ip_indexes, self._fps, None, self._first_memo)
                shared._base = _PortAnyFacts(b.port_any, shared, self.once_per_direction)
                self._shared[bkey] = shared
                self._by_members.setdefault(frozenset(b.nums), shared)

    def groups(self) -> list[Group]:
        return list(self._by_members.values())

    def report(self) -> dict[str, object]:
        names = {6: "tcp", 17: "udp", 1: "icmpv4", 58: "icmpv6", 132: "sctp", ANY_PROTO: "other",
                 NON_IP: "non-ip"}
        buckets = {}
        for p, b in self.buckets.items():
            buckets[names.get(p, str(p))] = {
                "rules": len(b.nums),
                "any_port_rules": len(b.port_any),
                "port_intervals": [len(b.dp_starts), len(b.sp_starts)],
            }
        groups = [{"rules": len(g.members), "patterns": len(g.owners), "always": len(g.always),
                   "build_seconds": round(g.build_seconds, 4)} for g in self._by_members.values()]
        return {"buckets": buckets, "groups": groups}
