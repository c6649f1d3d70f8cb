"""Bounded fuzzing of everything an attacker or a careless admin controls (issue #14).

- whole replays, in-process, of generated and mutated pcap/pcapng files (both byte
  orders, every block type, timestamp extremes) against rules with pcre, byte_math
  and long contents: the exit status is 0 or 1 (never a traceback), and then the
  output is whole: every line of eve.json is JSON and the last record is the stats;
- the decoder behind every link type: at most 15 events a packet;
- rule keyword arguments built from the tokens hostile rules are made of;
- configuration values for every numeric key, and random YAML documents.

CI runs each property with a small example count (about a minute in all on 2
cores); bench/fuzz.py runs the same properties with NETSENTRY_FUZZ_SCALE for
nightly use.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import orjson
import pytest
import yaml
from capture_builders import block, epb, idb, pb, pcap_file, shb, spb
from decode_frames import LINKTYPES, sample_frames
from fuzz_settings import fuzz
from hypothesis import given
from hypothesis import strategies as st

from netsentry.cli import main
from netsentry.config import ConfigError, load_config, load_defaults
from netsentry.decode import Decoder
from netsentry.decode.packet import MAX_EVENTS
from netsentry.rules import RuleError
from netsentry.rules.loader import make_env
from netsentry.rules.parser import parse_rule
from netsentry.rules.registry import KEYWORDS, load_families

pytestmark = pytest.mark.slow

_DIR = Path(tempfile.mkdtemp(prefix="netsentry-hostile-fuzz-"))
RULES = _DIR / "hostile.rules"
RULES.write_text("\n".join([
    'alert ip any any -> any any (msg:"content"; content:"GET"; sid:1;)',
    'alert udp any any -> any any (msg:"re2 pcre"; pcre:"/^(?:.[a-z0-9-]{2,}){2,}\\x00\\x00(?:\\x01|\\x1c)/i"; sid:2;)',
    'alert tcp any any -> any any (msg:"budgeted pcre"; pcre:"/(a+)+\\1!/"; sid:3;)',
    'alert ip any any -> any any (msg:"byte_math"; byte_extract:4,0,n; '
    'byte_math:bytes 1,offset 4,oper <<,rvalue n,result r; byte_test:1,>,r,0; sid:4;)',
    'alert ip any any -> any any (msg:"long"; content:"|00|' + "A" * 17000 + '"; sid:5;)',
    'alert ip any any -> any any (msg:"byte_jump"; byte_jump:2,0,relative,multiplier 65535; '
    'isdataat:!1,relative; sid:6;)',
]) + "\n")

# --- captures ------------------------------------------------------------------------------------

SAMPLES = [f for _, f, lt in sample_frames() if lt == 1]
frames = st.lists(st.sampled_from(SAMPLES) | st.binary(max_size=120), max_size=6)
EXTREME_TICKS = st.sampled_from([0, 1, 2**32 - 1, 2**32, 2**63, 2**64 - 1, 1_700_000_000 * 10**6])


@st.composite
def pcap_files(draw):
    recs = [(draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 2**32 - 1)), f) for f in draw(frames)]
    return ".pcap", pcap_file(recs, order=draw(st.sampled_from("<>")), nano=draw(st.booleans()),
                              linktype=draw(st.sampled_from(LINKTYPES + [1, 1, 0xFFFF])),
                              snaplen=draw(st.sampled_from([0, 64, 65535, 2**32 - 1])))


@st.composite
def pcapng_files(draw):
    out = []
    for _section in range(draw(st.integers(1, 2))):
        order = draw(st.sampled_from("<>"))
        out.append(shb(order))
        n_if = draw(st.integers(1, 2))
        for _ in range(n_if):
            out.append(idb(draw(st.sampled_from(LINKTYPES + [1, 1])), draw(st.sampled_from([0, 64, 70000])),
                           tsresol=draw(st.none() | st.sampled_from([0, 6, 9, 19, 127, 0x80, 0x94, 0xFF])),
                           tsoffset=draw(st.none() | st.sampled_from([0, -(2**63), 2**63 - 1, 10**12])),
                           order=order))
        for f in draw(frames):
            kind = draw(st.sampled_from(["epb", "epb", "spb", "pb", "other"]))
            ifid = draw(st.integers(0, n_if - 1))
            ticks = draw(EXTREME_TICKS | st.integers(0, 2**64 - 1))
            if kind == "epb":
                out.append(epb(ifid, ticks, f, order=order))
            elif kind == "spb":
                out.append(spb(f, order=order))
            elif kind == "pb":
                out.append(pb(ifid, ticks, f, order=order))
            else:
                out.append(block(draw(st.sampled_from([4, 5, 0xA, 0xBAD, 0x40000BAD])), f, order=order))
    return ".pcapng", b"".join(out)


@st.composite
def mutated(draw, base):
    suffix, raw = draw(base)
    data = bytearray(raw)
    for _ in range(draw(st.integers(0, 4))):
        if not data:
            break
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    return suffix, bytes(data)


_RUN = [0]


def replay_is_whole(suffix: str, data: bytes) -> None:
    _RUN[0] += 1
    work = _DIR / f"run{_RUN[0] % 4}"
    work.mkdir(exist_ok=True)
    cap = work / f"in{suffix}"
    cap.write_bytes(data)
    logdir = work / "out"
    eve = logdir / "eve.json"
    if eve.exists():
        eve.unlink()
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["replay", str(cap), "-S", str(RULES), "-l", str(logdir), "-q",
                     "--set", "anomaly.enabled=true", "--set", "logging.level=error"])
    assert code in (0, 1), (code, err.getvalue())
    assert "Traceback" not in err.getvalue()
    if not eve.exists():
        # only a file refused before any packet (not a capture, empty, bad header): exit 1, one line
        assert code == 1 and len(err.getvalue().strip().splitlines()) == 1, err.getvalue()
        return
    records = [orjson.loads(line) for line in eve.read_bytes().splitlines()]
    assert records and records[-1]["event_type"] == "stats"
    for r in records:
        ts = r["timestamp"]
        assert len(ts) == 31 and ts[4] == "-" and ts[:4].isdigit(), ts
    anomalies: dict[int, int] = {}
    for r in records:
        if r["event_type"] == "anomaly" and "pcap_cnt" in r:
            anomalies[r["pcap_cnt"]] = anomalies.get(r["pcap_cnt"], 0) + 1
    assert all(n <= MAX_EVENTS for n in anomalies.values())


@fuzz(20)
@given(mutated(pcap_files()))
def test_replay_of_hostile_pcap_keeps_the_output_whole(case):
    replay_is_whole(*case)


@fuzz(30)
@given(mutated(pcapng_files()))
def test_replay_of_hostile_pcapng_keeps_the_output_whole(case):
    replay_is_whole(*case)


# --- decoders -------------------------------------------------------------------------------------

_decoder = Decoder()


@fuzz(300)
@given(st.sampled_from(SAMPLES) | st.binary(max_size=300), st.sampled_from(LINKTYPES),
       st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=6))
def test_decoders_keep_at_most_15_events(frame, linktype, flips):
    data = bytearray(frame)
    for at, value in flips:
        if data:
            data[at % len(data)] = value
    pkt = _decoder.decode(bytes(data), linktype)
    assert pkt.events is None or len(pkt.events) <= MAX_EVENTS


@fuzz(50)
@given(st.lists(st.sampled_from([0, 60, 43, 44, 51]), min_size=1, max_size=40),
       st.lists(st.integers(0, 255), max_size=40))
def test_ipv6_extension_header_chains(chain, lengths):
    import ipaddress
    import struct
    body = b""
    for i, nh in enumerate(chain):
        nxt = chain[i + 1] if i + 1 < len(chain) else 59
        hlen = (lengths[i] if i < len(lengths) else 0) % 4
        body += bytes((nxt, hlen)) + b"\x1e\x00" * (3 + 4 * hlen)
    hdr = struct.pack("!IHBB16s16s", 6 << 28, len(body), chain[0], 64,
                      ipaddress.ip_address("::1").packed, ipaddress.ip_address("::2").packed)
    pkt = _decoder.decode(b"\x02" * 6 + b"\x04" * 6 + b"\x86\xdd" + hdr + body, 1)
    assert pkt.events is None or len(pkt.events) <= MAX_EVENTS


# --- rule keywords ----------------------------------------------------------------------------------

load_families()
NAMES = sorted(k for k in KEYWORDS if KEYWORDS[k].family != "applayer")
TOKENS = ["0", "1", "-1", "0x10", "1_000", "+5", "\u0661", "99999999999999999999", "18446744073709551616",
          "4294967296", "65536", "relative", "string", "dec", "hex", "oct", "big", "little", "bitmask 0xff",
          "<<", ">>", "*", "/", "rvalue n", "result r", "bytes 8", "offset -65535", "oper <<",
          "multiplier 65535", "align 4", "post_offset 99999", "from_end", '"', "\\;", "|00|", "!", "\f",
          '"/(a+)+$/"', '"/^["\']?post/Ri"', "n", "r", "track by_src", "count 0x5", "type limit"]
args = st.lists(st.sampled_from(TOKENS), max_size=7).map(lambda t: ",".join(t))


@fuzz(400)
@given(st.lists(st.tuples(st.sampled_from(NAMES), st.none() | args), min_size=1, max_size=5),
       st.binary(max_size=80))
def test_keyword_arguments_load_or_fail_with_a_rule_error(options, payload):
    env, _, _ = make_env({"classification-file": "/nonexistent", "reference-config-file": "/nonexistent"})
    body = "byte_extract:8,0,n; " + " ".join(f"{n};" if v is None else f"{n}:{v};" for n, v in options)
    try:
        sig = parse_rule(f"alert udp any any -> any any ({body} sid:9;)", env, "fuzz.rules", 1)
    except RuleError as e:
        assert e.reason and "\n" not in str(e)
        return
    if sig.payload_chain is not None:
        assert sig.payload_chain.run(payload) in (True, False)


# --- configuration ----------------------------------------------------------------------------------

def _numeric_keys(node, prefix=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _numeric_keys(v, f"{prefix}.{k}" if prefix else k)
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield prefix


NUMERIC = sorted(_numeric_keys(load_defaults()))
VALUES = st.sampled_from(["-1", "0", "1e400", ".nan", ".inf", "-.inf", "99999999999999999999", "0x10",
                          "1_000", "''", "[]", "{}", "true", "null", "1.5", "-0.0", "65536", "4294967296"])


@fuzz(80)
@given(st.lists(st.tuples(st.sampled_from(NUMERIC), VALUES | st.integers().map(str)), min_size=1, max_size=4))
def test_numeric_config_values_load_or_fail_with_one_line(settings_):
    try:
        cfg = load_config(None, [f"{k}={v}" for k, v in settings_])
    except ConfigError as e:
        assert str(e).startswith("config error: ") and "\n" not in str(e)
        return
    orjson.dumps(cfg)       # what the outputs would serialise: never "Integer exceeds 64-bit range"


@fuzz(100)
@given(st.text(alphabet=" :-\n\t{}[],&*!|>'\"#%@`?abcflow.max-s0123456789", max_size=120))
def test_random_yaml_documents_load_or_fail_with_one_line(text):
    f = _DIR / "random.yaml"
    f.write_text(text)
    try:
        load_config(f)
    except ConfigError as e:
        assert "\n" not in str(e)
    except RecursionError:      # pragma: no cover - would be a finding
        pytest.fail("recursion")
    assert yaml is not None
