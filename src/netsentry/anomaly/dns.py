"""DNS abuse seen in queries: query floods per source and tunnelling-like names.

Only packets toward port 53 reach this module (the engine marks such flows
once, at their first packet), and only queries (QR bit clear) count. Over TCP
(zone transfers, large answers, and tunnels that prefer it: iodine and
dnscat2 can) a message is preceded by its 2-byte length (RFC 7766); the
first message of each client segment is read (one query per segment is what
resolvers and tunnel clients send).
The question name is read straight from the payload: labels are length
prefixed from offset 12 of the DNS header, so a few slices give the name
without a DNS library or any object per query. A compression pointer in a
question (legal, never seen from real stubs) ends the parse.

A query looks like tunnelling (iodine, dnscat2, DNS exfiltration) when one
label is very long (``long-label``; real hostnames rarely pass 30, the
protocol maximum is 63), or when the part below the registered domain is
long (``min-length``) *and* random-looking: its Shannon entropy is at least
``entropy`` bits per character (English-like names stay around 3-3.5,
base32/base64 payloads reach 4.3-5). One such name is often a CDN or an
anti-virus lookup; many from one source within the window is a channel, so
the alert needs ``queries`` of them.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from netsentry.anomaly.alerts import Finding
from netsentry.anomaly.detector import Context, Detector, register
from netsentry.anomaly.settings import Section
from netsentry.anomaly.window import TumblingWindow, top_items
from netsentry.decode.packet import ip_to_str

EXAMPLES = 3
MAX_LABELS = 64


def question_labels(data: bytes, off: int, end: int) -> list[bytes] | None:
    """The labels of the first question of a DNS query at data[off:end], or None."""
    i = off + 12
    labels = []
    while i < end:
        n = data[i]
        if n == 0:
            return labels
        if n & 0xC0 or len(labels) >= MAX_LABELS:
            return None
        j = i + 1 + n
        if j > end:
            return None
        labels.append(data[i + 1:j])
        i = j
    return None


def entropy(s: bytes) -> float:
    """Shannon entropy of `s` in bits per character."""
    n = len(s)
    if n == 0:
        return 0.0
    # an explicit loop, not sum() over a generator: the compiled build (setup.py
    # COMPILED_MODULES) inlines sum(), and a loop adds in the same order on both paths
    acc = 0.0
    for c in Counter(s).values():
        acc += c * math.log2(c)
    return math.log2(n) - acc / n


@register("dns-query-flood", "dns-tunnel")
class DnsAbuse(Detector):
    def __init__(self, ctx: Context, sec: Section) -> None:
        super().__init__(ctx, sec)
        flood, tunnel = sec.sub("dns-query-flood"), sec.sub("dns-tunnel")
        self.flood_on = flood.flag("enabled")
        self.flood_window = TumblingWindow(flood.count("window"))
        self.rate = float(flood.positive("rate"))
        self.flood_min = max(1, int(self.rate * self.flood_window.length * ctx.min_factor))
        self.flood_detail_from = max(2, self.flood_min // 4)
        self.queries = ctx.table("dns-query-flood")         # src -> queries, or [queries, resolvers{}, alerted]
        self.tunnel_on = tunnel.flag("enabled")
        self.tunnel_window = TumblingWindow(tunnel.count("window"))
        self.tunnel_queries = tunnel.count("queries")
        self.tunnel_min = max(1, int(self.tunnel_queries * ctx.min_factor))
        self.long_label = tunnel.count("long-label")
        self.min_length = tunnel.count("min-length")
        self.entropy = float(tunnel.positive("entropy"))
        self.shortest = min(self.long_label, self.min_length)   # wire length below which no name is suspicious
        self.suspects = ctx.table("dns-tunnel")     # src -> [count, examples, max label, max entropy, domains, resolver, alerted]
        self.flood_candidates: dict[bytes, list] = {}
        self.tunnel_candidates: dict[bytes, list] = {}
        self.parsed = 0

    def on_query(self, pkt: Any) -> None:
        data = pkt.data
        off = pkt.payload_off
        end = off + pkt.payload_len
        if pkt.proto == 6:          # DNS over TCP: the message after its 2-byte length
            if end - off < 19 or data[off + 6] or data[off + 7] != 1:
                return              # no message start here (QDCOUNT 1): a continuation, or not DNS
            end = min(end, off + 2 + (data[off] << 8 | data[off + 1]))
            off += 2
        if end - off < 17 or data[off + 2] & 0x80:
            return                  # too short for a question, or a response
        src = pkt.src
        if self.flood_on:
            table = self.queries
            counts = table.data
            v = counts.get(src)
            if v is None:
                if self.ctx.ignore_any and self.ctx.ignored(src):
                    return
                if len(counts) < table.cap:
                    counts[src] = 1
                else:
                    table.insert(src, 1)
            elif v.__class__ is int:
                # a plain count until the source gets busy (see NewConnections)
                counts[src] = v = v + 1
                if v >= self.flood_detail_from:
                    counts[src] = [v, {pkt.dst: 1}, False]     # [queries, resolvers, alerted]
            else:
                v[0] += 1
                resolvers = v[1]
                resolvers[pkt.dst] = resolvers.get(pkt.dst, 0) + 1
                if v[0] >= self.flood_min and not v[2]:
                    self.flood_candidates[src] = v
        if self.tunnel_on:
            self._check_name(pkt, src, data, off, end)

    def _check_name(self, pkt: Any, src: bytes, data: bytes, off: int, end: int) -> None:
        # The name ends at the first zero byte: a name shorter than both limits cannot be
        # suspicious, and finding that byte is one C call (ordinary names stop here; a label
        # holding a raw NUL byte is cut short too, and such names are not DNS hostnames).
        zero = data.find(0, off + 12, end)
        if zero < 0 or zero - off - 12 <= self.shortest:
            return
        labels = question_labels(data, off, end)
        self.parsed += 1
        if not labels or len(labels) < 3:
            return
        longest = max(map(len, labels))
        sub = b"".join(labels[:-2])
        ent = 0.0
        if longest >= self.long_label:
            ent = entropy(sub)
        elif len(sub) >= self.min_length:
            ent = entropy(sub)
            if ent < self.entropy:
                return
        else:
            return
        table = self.suspects
        v = table.data.get(src)
        if v is None:
            if self.ctx.ignore_any and self.ctx.ignored(src):
                return
            v = table.insert(src, [0, [], 0, 0.0, {}, pkt.dst, False])
        v[0] += 1
        name = b".".join(labels).decode("latin-1")
        if len(v[1]) < EXAMPLES:
            v[1].append(name[:120])
        v[2] = max(v[2], longest)
        v[3] = max(v[3], ent)
        domain = b".".join(labels[-2:]).decode("latin-1")
        v[4][domain] = v[4].get(domain, 0) + 1
        v[5] = pkt.dst
        if v[0] >= self.tunnel_min and not v[6]:
            self.tunnel_candidates[src] = v

    def evaluate(self, now: float, out: list[Finding]) -> None:
        factor = self.ctx.factor
        for src, v in self.flood_candidates.items():
            threshold = self.rate * factor(src)
            rate = v[0] / self.flood_window.length
            if rate < threshold:
                continue
            v[2] = True
            resolver = top_items(v[1], 1)[0][0]
            out.append(Finding(
                kind="dns-query-flood", detector="dns-query-flood", key=ip_to_str(src), src=src, dst=resolver,
                proto=17, dp=53, actor=src,
                evidence={"observed": round(rate, 3), "unit": "queries/s", "threshold": threshold,
                          "window": self.flood_window.length, "queries": v[0],
                          "resolvers": [{"ip": ip_to_str(a), "queries": c} for a, c in top_items(v[1], 5)]}))
        self.flood_candidates.clear()
        for src, v in self.tunnel_candidates.items():
            threshold = self.tunnel_queries * factor(src)
            if v[0] < threshold:
                continue
            v[6] = True
            out.append(Finding(
                kind="dns-tunnel", detector="dns-tunnel", key=ip_to_str(src), src=src, dst=v[5], proto=17,
                dp=53, actor=src,
                evidence={"observed": v[0], "unit": "suspicious queries", "threshold": threshold,
                          "window": self.tunnel_window.length, "max_label_length": v[2],
                          "max_entropy": round(v[3], 3), "examples": list(v[1]),
                          "top_domains": [{"domain": d, "queries": c} for d, c in top_items(v[4], 3)]}))
        self.tunnel_candidates.clear()

    def roll(self, ts: float) -> None:
        if self.flood_window.roll(ts):
            self.queries.clear()
            self.flood_candidates.clear()
        if self.tunnel_window.roll(ts):
            self.suspects.clear()
            self.tunnel_candidates.clear()

    def stats(self) -> dict[str, int]:
        return {"anomaly.dns.queries_parsed": self.parsed}
