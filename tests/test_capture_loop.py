"""The capture loop's one source (netsentry/capture_loop.py) and its two forms.

The compiled loop tests a C flag per optional part; the pure-Python loop is
the same source with those flags specialised away. These tests hold the
source to the convention that makes the second form correct (every tagged
line carries its own part's flag, or sits in a block whose head does), and
check that the app layer's packet gate skips only calls that did nothing.
"""

from __future__ import annotations

import re
from itertools import combinations
from pathlib import Path

import pytest

from netsentry import capture_loop as cl
from netsentry.cli import main

REPO = Path(__file__).resolve().parents[1]
SIGNATURES = REPO / "signatures" / "netsentry.rules"


def _tagged() -> list[tuple[int, str, str]]:
    out = []
    for i, line in enumerate(cl.loop_source()):
        code, sep, tag = line.partition("#@")
        if sep:
            out.append((i, code, tag.strip()))
    return out


def test_every_tag_names_a_part_and_every_part_has_a_flag():
    tags = {tag for _, _, tag in _tagged()}
    assert tags - {"flags"} == cl.LOOP_PARTS
    declared = {re.search(r"\b(do_\w+): cython.bint", code).group(1) for _, code, tag in _tagged() if tag == "flags"}
    assert declared == {"do_" + p.replace("-", "_") for p in cl.LOOP_PARTS}


def test_each_tagged_statement_tests_its_own_flag():
    """A tagged `if` line tests its part's flag; a tagged line without it is the body or
    continuation of the tagged line above it (same part, deeper indent or a bracket open)."""
    lines = cl.loop_source()
    for i, code, tag in _tagged():
        if tag == "flags":
            continue
        flag = "do_" + tag.replace("-", "_")
        stripped = code.strip()
        if re.search(rf"\b{flag}\b", code):
            assert stripped.startswith(("if ", "elif ")), (i, code)
            continue
        # walk up through lines of the same tag to the head that tests the flag
        j = i - 1
        while True:
            above, sep, above_tag = lines[j].partition("#@")
            assert sep and above_tag.strip() == tag, f"line {i} ({stripped!r}) is tagged {tag} but its statement is not"
            if re.search(rf"\b{flag}\b", above):
                break
            j -= 1
        head_indent = len(above) - len(above.lstrip())
        assert len(code) - len(code.lstrip()) > head_indent, (i, code)


@pytest.mark.parametrize("size", [0, 1, len(cl.LOOP_PARTS)])
def test_specialised_loop_has_no_flags_left(size):
    for combo in list(combinations(sorted(cl.LOOP_PARTS), size))[:20]:
        text = "\n".join(cl.specialise_lines(frozenset(combo)))
        assert not re.search(r"\bdo_\w+", text), combo
        compile(text, "<loop>", "exec")


def test_specialised_loop_keeps_exactly_the_parts_asked_for():
    bare = "\n".join(cl.specialise_lines(frozenset()))
    assert "stream_update(" not in bare and "sig_inspect(" not in bare and "app_packet(" not in bare
    full = "\n".join(cl.specialise_lines(cl.LOOP_PARTS))
    for call in ("stream_update(", "sig_inspect(", "app_packet(", "anomaly_inspect(", "on_verdict(",
                 "on_blocked(", "defrag(", "progress(", "on_decoder_events(", "on_app("):
        assert call in full
    assert "if interrupt:" in full and "pkt.pcap_cnt = source.pcap_cnt" in full


def test_unknown_part_is_refused():
    with pytest.raises(ValueError, match="unknown capture loop parts: \\['teleport'\\]"):
        cl.loop_for(frozenset({"teleport"}))


def _replay(tmp_path: Path, name: str, pcap: Path, *extra: str) -> bytes:
    out = tmp_path / name
    rc = main(["replay", str(pcap), "-S", str(SIGNATURES), "-l", str(out), "-q", *extra])
    assert rc == 0
    lines = (out / "eve.json").read_bytes().splitlines()
    # the stats record's uptime is wall clock
    return b"\n".join(line for line in lines if b'"event_type":"stats"' not in line)


@pytest.mark.parametrize("capture", ["benign-web.pcap", "attacks-web.pcap", "benign-dns.pcap", "benign-tls.pcap"])
@pytest.mark.parametrize("stream", ["true", "false"])
def test_app_gate_changes_no_record(tmp_path, monkeypatch, capture, stream):
    """With the gate (packet_gate) the app layer's call is skipped for packets it does
    nothing with; without it (None: every packet gets the call) the records are the same.
    With reassembly off the app layer reads TCP payloads itself, so every TCP packet passes."""
    from netsentry.sensor import Sensor

    pcap = REPO / "pcaps" / capture
    opt = ("--set", f"stream.reassembly.enabled={stream}")
    gated = _replay(tmp_path, "gated", pcap, *opt)
    monkeypatch.setattr(Sensor, "_app_gate", lambda self: None)
    ungated = _replay(tmp_path, "ungated", pcap, *opt)
    assert gated == ungated
    assert b'"event_type":"flow"' in gated


def test_app_gate_says_which_packets_the_app_layer_reads():
    from netsentry.applayer import AppLayer
    app = AppLayer({})
    protos, flags = app.packet_gate()
    assert protos == (1 << 6) | (1 << 17) and flags == 0        # no stream stage: every TCP payload
    app.tcp_from_stream = True
    # IDS: every ACK may release bytes the app layer holds until their receiver acknowledged them
    assert app.packet_gate()[1] == 0x13                          # SYN, FIN, ACK
    app.set_consumers(frozenset())
    assert app.packet_gate()[1] == 0x03                          # nobody reads a parser: SYN, FIN
    inline = AppLayer({"stream": {"inline": True}})
    inline.tcp_from_stream = True
    assert inline.packet_gate()[1] == 0x03                       # inline parses on arrival


def test_guarded_source_stops_and_polls_between_records_in_the_loop(tmp_path):
    """`Sensor.run` unwraps the lifecycle's guard (the loop tests it, no generator in
    between): a SIGHUP's callbacks run before the next record, a stop ends the run
    before the next record, and the run's packet count and last time are the processed ones."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    from netsentry.capture import open_capture
    from netsentry.config import load_config
    from netsentry.lifecycle import Lifecycle, unguard
    from netsentry.sensor import Sensor

    frames = []
    for i in range(10):
        p = Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1000 + i, dport=53) / b"x"
        p.time = 1_700_000_000 + i
        frames.append(p)
    wrpcap(str(tmp_path / "t.pcap"), frames)
    lc = Lifecycle("replay")
    seen: list[int] = []
    sensor = Sensor(load_config(None, []), [])
    lc.on_reopen(lambda: seen.append(sensor.decoder.stats()["decoder.pkts"]))

    def source():
        for i, rec in enumerate(open_capture(tmp_path / "t.pcap")):
            if i == 3:
                lc._on_hup(1, None)             # as the signal handler does, between records 3 and 4
            if i == 6:
                lc.stop_requested = lc.attention = True
            yield rec

    guarded = lc.guard(source())
    assert unguard(guarded)[1] is lc and unguard(frames) == (frames, None)
    res = sensor.run(guarded)
    assert seen == [3]                          # the reopen ran before the 4th packet was decoded
    assert res.packets == 6 and res.last_ts == 1_700_000_005
