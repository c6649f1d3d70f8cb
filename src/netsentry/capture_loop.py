"""The capture loop: the one loop every packet goes through (`Sensor.run` calls it).

One readable source, two ways to run it (`loop_for`):

* **compiled** (this module is in setup.py's ``COMPILED_MODULES``): the
  function below as it stands. Each optional part of the pipeline (a stage
  that is off, an output nobody wants) is a C ``bint`` flag set once from
  `parts` and tested per packet, which costs a compare and a branch in C.
  Compiling the loop turns its own bytecode into C; measured, that is worth
  less than cProfile suggested (1.2 s of 6.5 s there): 0.82 against 0.96 µs
  per packet for the loop alone, ~1,360 of ~66k instructions per packet in
  the bench replay, because its attribute reads and stores on packets and
  flows stay generic ``PyObject_GetAttr`` calls (bench/README.md, "The
  capture loop compiled").
* **pure Python**: a flag test per packet costs bytecode (about 0.1 µs per
  packet for the dozen flags, measured when the loop was first generated), so
  `specialise` rewrites this same source text for one set of parts: a line
  tagged ``#@ part`` is dropped when the part is off, and when it is on its
  flag test (``do_part and `` or ``if do_part: ``) is removed, leaving the
  loop the generated one always was. Both are therefore made from the lines
  below; tests/test_capture_loop.py checks that every tagged line carries its
  own flag, and tests/test_compiled.py that both paths write the same bytes.

The calling convention (what `Sensor.run` passes: the stage functions, None
for a stage that is off) is the seam other stages plug into
(docs/architecture.md, "Seams of the compiled-loop round").
"""

from __future__ import annotations

import functools
import os
import re
from typing import Any, Callable

try:
    import cython
except ImportError:      # Cython is a build dependency only (netsentry/_cython_shim.py)
    from netsentry import _cython_shim as cython

# compiled: the typed records (capture_loop.pxd cimports their .pxd), fields read in C
from netsentry.decode.packet import Packet  # noqa: F401
from netsentry.flow.flow import Flow  # noqa: F401

# True in the extension module: `loop_for` then hands out `capture_loop` itself.
COMPILED: bool = cython.compiled

# The capture loop reports progress every this many packets (a power of two,
# tested with `n & MASK`): often enough for a smooth bar, rare enough to be free.
PROGRESS_EVERY = 4096
PROGRESS_MASK = PROGRESS_EVERY - 1

# The optional parts, each the flag ``do_<part>`` (hyphens as underscores) in the loop.
# blocklist: respond/blocklist.py's dict probed only while it is non-empty.
# live: the daemon's loop ends between two packets when `interrupt` is non-empty
#   (a rule reload to swap in, see Sensor.swap_ruleset) and `run` re-enters it
#   with the new stages on the same source iterator. The test comes before the
#   packet's work: a swap asked for while the source waited (its tick polls the
#   lifecycle and control) applies to the very next packet, which is carried
#   over (`Sensor._carry`) into the new loop, not inspected by the old rules.
# sharded: a worker's share of a capture (workers.ShareSource) numbers packets by
#   their place in the whole capture, so EVE's pcap_cnt is the same with N workers.
# guarded: the replay's lifecycle (netsentry/lifecycle.py `Guarded`, unwrapped by
#   Sensor.run and passed as `guard`) is tested here, between two records, instead of
#   by a generator wrapped around the source: the run ends before a record once a
#   stop was asked for, and pending signal callbacks run between records.
# applayer: the app layer's per-packet call goes only to the packets it acts on,
#   `app_gate` = (protocols, tcp_flags) from AppLayer.packet_gate: bit p of
#   `protocols` set for each IP protocol p < 64 it takes; a TCP packet only with one
#   of `tcp_flags` set (0: every TCP packet). The others skip a call that did
#   nothing for them. None: every packet (ALL_PROTOCOLS, 0).
# bypass: a flow a `bypass` rule matched (detect/bypass.py, flow.action "bypass") is
#   counted by the flow table and nothing else; only when a loaded rule has the keyword.
# tunnels: a tunnel's inner packet (pkt.tunnel set) has its frame's outer packets inspected
#   first (Sensor.on_tunnel, detect/tunnel.py): GRE, IP-in-IP, VXLAN ... as Suricata's root
#   packet; one pointer test per packet, only with rules loaded.
LOOP_PARTS = frozenset(("flow-records", "decoder-anomalies", "signatures", "anomaly", "inline",
                        "flow-verdicts", "progress", "defrag", "stream", "applayer",
                        "blocklist", "live", "sharded", "guarded", "bypass", "tunnels"))
ALL_PROTOCOLS = (1 << 64) - 1


def capture_loop(source: Any, state: list, sensor: Any, decode: Any, flow_update: Any,
                 sig_inspect: Any, anomaly_inspect: Any, on_events: Any, on_verdict: Any,
                 on_decoder_events: Any, progress: Any, defrag: Any, stream_update: Any,
                 app_packet: Any, on_app: Any, blocked: Any = None, on_blocked: Any = None,
                 interrupt: Any = None, app_gate: Any = None, guard: Any = None,
                 parts: frozenset = LOOP_PARTS) -> None:
    """Run every record of `source` through the stages; `state` is ``[packets, last ts]``,
    updated when the loop ends (by exhaustion, a break or an exception)."""
    n: cython.Py_ssize_t
    app_protos: cython.ulong
    app_flags: cython.long
    proto: cython.ulong
    pkt: Packet
    frame: Packet
    flow: Flow
    clock: list = None
    do_live: cython.bint = "live" in parts                                  #@ flags
    do_sharded: cython.bint = "sharded" in parts                            #@ flags
    do_flow_records: cython.bint = "flow-records" in parts                  #@ flags
    do_defrag: cython.bint = "defrag" in parts                              #@ flags
    do_blocklist: cython.bint = "blocklist" in parts                        #@ flags
    do_stream: cython.bint = "stream" in parts                              #@ flags
    do_applayer: cython.bint = "applayer" in parts                          #@ flags
    do_decoder_anomalies: cython.bint = "decoder-anomalies" in parts        #@ flags
    do_signatures: cython.bint = "signatures" in parts                      #@ flags
    do_anomaly: cython.bint = "anomaly" in parts                            #@ flags
    do_flow_verdicts: cython.bint = "flow-verdicts" in parts                #@ flags
    do_inline: cython.bint = "inline" in parts                              #@ flags
    do_progress: cython.bint = "progress" in parts                          #@ flags
    do_guarded: cython.bint = "guarded" in parts                            #@ flags
    do_bypass: cython.bint = "bypass" in parts                              #@ flags
    do_tunnels: cython.bint = "tunnels" in parts                            #@ flags
    app_protos, app_flags = app_gate if app_gate is not None else (ALL_PROTOCOLS, 0)
    n, ts = state
    if do_flow_records: clock = sensor._clock                              #@ flow-records
    try:
        for record in source:
            if do_guarded and guard.attention:                              #@ guarded
                if guard.stop_requested:                                    #@ guarded
                    break                                                   #@ guarded
                guard.poll()                                                #@ guarded
            if do_live and interrupt:                                       #@ live
                sensor._carry = record                                      #@ live
                break                                                       #@ live
            ts, data, wirelen, linktype = record
            n += 1
            pkt = decode(data, linktype)
            pkt.ts = ts
            pkt.pcap_cnt = n
            if do_sharded: pkt.pcap_cnt = source.pcap_cnt                   #@ sharded
            pkt.wirelen = wirelen
            if do_flow_records: clock[0] = ts                               #@ flow-records
            if do_tunnels and pkt.tunnel is not None:                       #@ tunnels
                sensor.on_tunnel(pkt)                                       #@ tunnels
            frame = pkt
            while pkt is not None:       # a fragment, then the datagram it completed (stream/defrag.py)
                if do_defrag and pkt.frag:                                  #@ defrag
                    pkt.reassembled = defrag(pkt)                           #@ defrag
                flow = flow_update(pkt)
                if do_blocklist and blocked and pkt.src in blocked:         #@ blocklist
                    on_blocked(pkt, flow)                                   #@ blocklist
                if do_bypass and flow is not None and flow.action == "bypass":   #@ bypass
                    pkt = pkt.reassembled                                   #@ bypass
                    continue                                                #@ bypass
                # a segment with a bad checksum (only known with checksum validation on) is
                # not taken by the stream (Suricata's StreamTcp skips it) but is inspected
                # as a packet, so the tcpv4-csum:invalid kind of rule sees it
                if do_stream and flow is not None and pkt.proto == 6 and not pkt.checksum_bad:   #@ stream
                    stream_update(pkt, flow)                                #@ stream
                # the app layer's call only for what it acts on (`app_gate`, see LOOP_PARTS)
                if do_applayer and (proto := pkt.proto) < 64 and (app_protos >> proto) & 1 and (  #@ applayer
                        proto != 6 or not app_flags or pkt.tcp_flags & app_flags):   #@ applayer
                    app_packet(pkt, flow)                                   #@ applayer
                if do_decoder_anomalies and pkt.events is not None:         #@ decoder-anomalies
                    on_decoder_events(pkt, flow)                            #@ decoder-anomalies
                if do_signatures and (events := sig_inspect(pkt, flow)):    #@ signatures
                    on_events(events, pkt, flow, False)                     #@ signatures
                if do_applayer and flow is not None and (app := flow.app) is not None and app.dirty:   #@ applayer
                    on_app(pkt, flow)                                       #@ applayer
                if do_anomaly and (flow is None or ts >= flow.anomaly_due):  #@ anomaly
                    events = anomaly_inspect(pkt, flow)                     #@ anomaly
                    if events:                                              #@ anomaly
                        on_events(events, pkt, flow, True)                  #@ anomaly
                if do_flow_verdicts and flow is not None and flow.action == "drop":  #@ flow-verdicts
                    pkt.verdict = "drop"                                    #@ flow-verdicts
                if do_inline and pkt.verdict is not None:                   #@ inline
                    on_verdict(pkt, flow)                                   #@ inline
                pkt = pkt.reassembled
            pkt = frame                  # the captured packet (IPS: its verdict is the one that counts)
            # a fragment and the datagram it completed point at each other (`reassembled`,
            # `root`): the one packet cycle, cut here since packets are not gc-tracked (packet.py)
            if do_defrag and frame.reassembled is not None:                 #@ defrag
                unlink_reassembled(frame)                                   #@ defrag
            # inline, accepted, its bytes replaced by the stream stage (re-sent bytes that differed
            # from those inspected, stream/tcp.py `_inline_resend`): the source forwards the new ones
            if do_inline and frame.data is not data and frame.verdict is None:   #@ inline
                on_verdict(frame, None)                                          #@ inline
            if do_progress and not n & PROGRESS_MASK:                       #@ progress
                progress(source.bytes_read)                                 #@ progress
    finally:
        state[0] = n
        state[1] = ts


def unlink_reassembled(frame: Any) -> None:
    """Cut each ``reassembled`` link down the chain from `frame` (a fragment, the datagram
    it completed, a datagram that one completed in turn); the ``root`` links up the chain
    stay, which is what a verdict (Sensor._on_verdict) and a later reader follow. Compiled,
    packets are not gc-tracked (decode/packet.py `new_packet`): left linked both ways,
    the pair would never be freed."""
    pkt = frame
    while pkt is not None:
        nxt = pkt.reassembled
        pkt.reassembled = None
        pkt = nxt


_LOOPS: dict[frozenset[str], Callable[..., None]] = {}
_TAG = "#@"


def loop_for(parts: frozenset[str]) -> Callable[..., None]:
    """The capture loop with exactly the optional `parts` (a subset of LOOP_PARTS), called
    as `capture_loop` without its `parts` argument. Compiled: `capture_loop` with its flags
    bound. Pure Python: `specialise(parts)` of the same source (see the module docstring)."""
    loop = _LOOPS.get(parts)
    if loop is None:
        unknown = parts - LOOP_PARTS
        if unknown:
            raise ValueError(f"unknown capture loop parts: {sorted(unknown)}")
        if COMPILED:
            loop = functools.partial(capture_loop, parts=parts)
        else:
            loop = specialise(parts)
        _LOOPS[parts] = loop
    return loop


@functools.lru_cache(maxsize=1)
def loop_source() -> tuple[str, ...]:
    """The lines of `capture_loop`'s definition, as written in this module's source file
    (read from the ``.py`` beside this module, compiled or not)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "capture_loop.py")
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("def capture_loop("))
    end = next((i for i in range(start + 1, len(lines)) if lines[i][:1] not in ("", " ", "#")), len(lines))
    return tuple(lines[start:end])


def specialise_lines(parts: frozenset[str]) -> list[str]:
    """`loop_source` for one set of parts: tagged lines of parts that are off and the
    flag declarations (``#@ flags``) go, the kept tagged lines lose their flag test."""
    out = []
    for line in loop_source():
        code, sep, tag = line.partition(_TAG)
        tag = tag.strip()
        if sep and (tag == "flags" or tag not in parts):
            continue
        if sep:
            flag = "do_" + tag.replace("-", "_")
            code = re.sub(rf"\bif {flag}: |\b{flag} and ", "", code, count=1)
        out.append(code.rstrip())
    return out


def specialise(parts: frozenset[str]) -> Callable[..., None]:
    """The pure-Python loop for `parts`: `specialise_lines` compiled once in this
    module's namespace (one code object per configuration, cached by `loop_for`)."""
    namespace = dict(globals())
    exec(compile("\n".join(specialise_lines(parts)), "<netsentry capture loop>", "exec"),  # noqa: S102
         namespace)
    return namespace["capture_loop"]
