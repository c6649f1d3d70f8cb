"""The compiled ruleset cache (rules/cache.py): same alerts from a hit as from a cold build,
and a damaged, foreign or unsafe cache is never trusted and never stops a start."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from structlog.testing import capture_logs

import netsentry
from netsentry import _compiled
from netsentry.rules import cache
from netsentry.rules.cache import MAGIC, RuleCache, engine_for, load_ruleset

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared"
PCAPS = REPO / "pcaps"
BUNDLED = REPO / "signatures" / "netsentry.rules"
BENCH_RULES = SHARED / "bench" / "bench.rules"
ETOPEN = SHARED / "rules" / "etopen"
REALTRAFFIC = SHARED / "realtraffic" / "ndpi-mix.pcap"

RULES = """\
alert tcp any any -> any 80 (msg:"web get"; flow:to_server; content:"GET "; depth:4; sid:100; rev:1;)
alert http any any -> any any (msg:"admin uri"; http.uri; content:"/admin"; nocase; sid:101; rev:2;)
alert tcp any any -> any any (msg:"pcre"; content:"HTTP/1."; pcre:"/HTTP\\/1\\.[01]/"; sid:102; rev:1;)
alert dns any any -> any any (msg:"dns query"; dns.query; content:"example"; sid:103; rev:1;)
"""


def _cfg(cache_dir: Path | str | bool) -> dict:
    return {"detect": {"rule-cache": cache_dir if isinstance(cache_dir, bool) else str(cache_dir)}}


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    p = tmp_path / "t.rules"
    p.write_text(RULES)
    return p


def _load(rules: Path, cfg: dict):
    rs = load_ruleset([rules], cfg)
    engine = engine_for(rs, cfg)
    return rs, engine


def _entry(directory: Path) -> Path:
    entries = [p for p in directory.iterdir() if p.name.endswith(cache.SUFFIX)]
    assert len(entries) == 1, entries
    return entries[0]


# --- hit, miss, and the key ------------------------------------------------------------

def test_miss_then_hit_gives_the_same_rules_and_engine(tmp_path: Path, rules: Path) -> None:
    d = tmp_path / "c"
    rs1, e1 = _load(rules, _cfg(d))
    assert rs1.cache.status == "miss"
    assert e1.stats()["detect.rule_cache.miss"] == 1
    rs2, e2 = _load(rules, _cfg(d))
    assert rs2.cache.status == "hit"
    assert e2.stats()["detect.rule_cache.hit"] == 1 and e2.stats()["detect.rule_cache.miss"] == 0
    assert [(s.sid, s.rev, s.msg) for s in rs2.signatures] == [(s.sid, s.rev, s.msg) for s in rs1.signatures]
    assert [s.sid for s in e2.sigs] == [s.sid for s in e1.sigs]
    assert e2.tx is not None and [s.sid for s in e2.tx.sigs] == [s.sid for s in e1.tx.sigs]


def test_the_stored_engine_is_handed_out_once(tmp_path: Path, rules: Path) -> None:
    d = tmp_path / "c"
    _load(rules, _cfg(d))
    rs = load_ruleset([rules], _cfg(d))
    first, second = engine_for(rs, _cfg(d)), engine_for(rs, _cfg(d))
    assert first is not second           # a second sensor on the same ruleset builds its own


def test_a_start_up_hit_is_frozen_out_of_the_collectors_sight(tmp_path: Path, rules: Path) -> None:
    """The start-up load of a hit is moved to the permanent generation (gc.freeze), so no
    collection walks the ruleset again; a reload's hit (background_write, beside a running
    capture loop) is not, and a hit engine still matches like a cold one."""
    import gc
    d = tmp_path / "c"
    cold_rs, cold = _load(rules, _cfg(d))
    gc.collect()
    gc.unfreeze()
    try:
        reload_rs = load_ruleset([rules], _cfg(d), background_write=True)
        assert reload_rs.cache.status == "hit"
        assert gc.get_freeze_count() == 0
        rs = load_ruleset([rules], _cfg(d))
        assert rs.cache.status == "hit"
        frozen = gc.get_freeze_count()
        assert frozen > 0
        in_young = {id(o) for o in gc.get_objects(generation=0)}
        assert id(rs.signatures) not in in_young and id(rs.signatures[0]) not in in_young
        engine = engine_for(rs, _cfg(d))
        assert [s.sid for s in engine.sigs] == [s.sid for s in cold.sigs]
    finally:
        gc.unfreeze()


@pytest.mark.parametrize("cache_setting", ["dir", False])
def test_a_start_up_build_is_frozen_and_a_reload_build_is_not(tmp_path: Path, rules: Path, cache_setting) -> None:
    """A cold start-up (miss, or the cache off) freezes the ruleset and engine once built,
    as a hit does: capture_gc's collection at the loop's start would otherwise walk them
    (ET Open: 0.8 s). A reload's build runs beside the capture loop and is not frozen."""
    import gc

    def cfg(name: str) -> dict:
        return _cfg(tmp_path / name if cache_setting == "dir" else False)
    gc.collect()
    gc.unfreeze()
    try:
        rs = load_ruleset([rules], cfg("reload"), background_write=True)
        engine_for(rs, cfg("reload"))
        assert gc.get_freeze_count() == 0
        rs = load_ruleset([rules], cfg("start"))
        assert rs.cache.status == ("miss" if cache_setting == "dir" else "off")
        assert gc.get_freeze_count() == 0
        engine = engine_for(rs, cfg("start"))
        assert gc.get_freeze_count() > 0
        in_young = {id(o) for o in gc.get_objects(generation=0)}
        assert id(engine) not in in_young and id(rs.signatures[0]) not in in_young
        assert [s.sid for s in engine.sigs] == [100, 102]
    finally:
        gc.unfreeze()


def test_lambdas_of_one_line_come_back_as_themselves(tmp_path: Path) -> None:
    """byte_test's operators are lambdas written on one line (same name, same first line);
    a hit must give each rule its own, not the first of the line (detect-bytetest-01 once
    alerted 5 times cold and once warm: every operator came back as `<`)."""
    ops = ["=", ">", "<", "!=", "<=", ">=", "&", "^"]
    p = tmp_path / "b.rules"
    p.write_text("".join(f'alert tcp any any -> any any (content:"HTTP"; byte_test:1,{op},0x48,0; sid:{i};)\n'
                         for i, op in enumerate(ops, 1)))
    d = tmp_path / "c"
    cold, _ = _load(p, _cfg(d))
    warm, _ = _load(p, _cfg(d))
    assert warm.cache.status == "hit"

    def verdicts(rs) -> list[bool]:
        # each rule's byte_test against the values 0x47, 0x48 and 0x49
        out = []
        for s in rs.signatures:
            item = next(i for i in s.payload_chain.items if type(i).__name__ == "ByteTest")
            out.append(tuple(item.op(v, 0x48) != item.negated for v in (0x47, 0x48, 0x49)))
        return out
    expect = [tuple(f(v, 0x48) for v in (0x47, 0x48, 0x49)) for f in (
        lambda a, b: a == b, lambda a, b: a > b, lambda a, b: a < b, lambda a, b: a != b,
        lambda a, b: a <= b, lambda a, b: a >= b, lambda a, b: a & b != 0, lambda a, b: a ^ b != 0)]
    assert verdicts(cold) == expect
    assert verdicts(warm) == expect


def test_stored_rules_keep_their_metadata_and_alerts(tmp_path: Path) -> None:
    """The cache's reducers (shared metadata lists, Alert by its constructor, one empty
    flowbit set) give back the same rules: metadata equal and still one dict per rule
    shared by its Alert, equal value lists of different rules one object."""
    p = tmp_path / "m.rules"
    p.write_text(
        'alert tcp any any -> any any (msg:"a"; content:"aaaa"; metadata: created_at 2010_07_30, '
        'signature_severity Major; sid:1; rev:1;)\n'
        'alert tcp any any -> any any (msg:"b"; content:"bbbb"; flowbits:set,x; metadata: created_at 2010_07_30, '
        'signature_severity Minor; classtype:trojan-activity; sid:2; rev:3;)\n')
    d = tmp_path / "c"
    cold_rs, cold = _load(p, _cfg(d))
    rs, engine = _load(p, _cfg(d))
    assert rs.cache.status == "hit"
    for a, b in zip(rs.signatures, cold_rs.signatures):
        assert a.metadata == b.metadata and a.flowbits_set == b.flowbits_set
        assert a.flowbits_checked == b.flowbits_checked
    assert rs.signatures[1].flowbits_set == frozenset({"x"})
    m1, m2 = rs.signatures[0].metadata, rs.signatures[1].metadata
    assert m1["created_at"] is m2["created_at"] and m1["signature_severity"] is not m2["signature_severity"]
    alerts = {a.signature_id: a for a in engine._alerts} if hasattr(engine, "_alerts") else {}
    cold_alerts = {a.signature_id: a for a in cold._alerts} if hasattr(cold, "_alerts") else {}
    assert alerts and alerts == cold_alerts
    assert alerts[1].metadata is m1 and alerts[2].rev == 3 and alerts[2].eve is None


def test_key_follows_rule_content_and_rule_config_not_outputs(tmp_path: Path, rules: Path) -> None:
    d = tmp_path / "c"
    _load(rules, _cfg(d))
    cfg = {**_cfg(d), "outputs": {"eve-log": {"filename": "other.json"}}}
    assert load_ruleset([rules], cfg).cache.status == "hit"
    cfg = {**_cfg(d), "vars": {"address-groups": {"HOME_NET": "[10.0.0.0/8]"}}}
    assert load_ruleset([rules], cfg).cache.status == "miss"
    rules.write_text(RULES.replace("admin", "login"))
    assert load_ruleset([rules], _cfg(d)).cache.status == "miss"


def test_engine_built_for_another_config_is_not_reused(tmp_path: Path, rules: Path) -> None:
    d = tmp_path / "c"
    _load(rules, _cfg(d))
    rs = load_ruleset([rules], _cfg(d))
    other = {**_cfg(d), "stream": {"inline": True}}
    engine = engine_for(rs, other)
    assert engine.ips is True


def test_off(tmp_path: Path, rules: Path) -> None:
    for value in (False, "false", "none"):
        rs = load_ruleset([rules], {"detect": {"rule-cache": value}})
        assert rs.cache.status == "off"
    assert cache.cache_dir({"detect": {"rule-cache": "none"}}) is None


def test_default_directories(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir({}) == tmp_path / "xdg" / "netsentry"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache.cache_dir({}) == Path.home() / ".cache" / "netsentry"
    # the packaged units: StateDirectory=netsentry -> STATE_DIRECTORY=/var/lib/netsentry
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/netsentry")
    assert cache.cache_dir({"detect": {"rule-cache": "auto"}}) == Path("/var/lib/netsentry/rule-cache")


def test_packaged_units_give_the_daemon_its_state_directory() -> None:
    for unit in ("netsentry.service", "netsentry-ips.service"):
        text = (REPO / "systemd" / unit).read_text()
        assert "StateDirectory=netsentry" in text and "/var/lib/netsentry" in text


# --- damaged and foreign entries: rebuilt, logged, never an exception ---------------------

def _damage_truncate(p: Path) -> None:
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _damage_bitflip(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x10
    p.write_bytes(bytes(data))


def _damage_empty(p: Path) -> None:
    p.write_bytes(b"")


def _damage_not_ours(p: Path) -> None:
    p.write_bytes(b"\x80\x05garbage that is no cache file")


@pytest.mark.parametrize("damage, reason", [
    (_damage_truncate, "authentication failed"),
    (_damage_bitflip, "authentication failed"),
    (_damage_empty, "not a netsentry rule cache file"),
    (_damage_not_ours, "not a netsentry rule cache file"),
])
def test_damaged_entry_is_rebuilt_with_a_log_line(tmp_path: Path, rules: Path, damage, reason: str) -> None:
    d = tmp_path / "c"
    _load(rules, _cfg(d))
    damage(_entry(d))
    with capture_logs() as logs:
        rs, engine = _load(rules, _cfg(d))
    assert rs.cache.status == "rebuilt" and reason in rs.cache.reason
    assert len(rs.signatures) == 4 and engine.stats()["detect.rule_cache.rebuilt"] == 1
    assert any(e["event"].startswith("detect.rule_cache: rebuilt(") and reason in e["event"] for e in logs)
    assert load_ruleset([rules], _cfg(d)).cache.status == "hit"     # and written again


def _forge(store: RuleCache, key: str, header: dict, payload: bytes) -> None:
    """An entry with a valid HMAC (as this user's netsentry of another version would write)."""
    h = json.dumps(header).encode()
    body = struct.pack(">I", len(h)) + h + payload
    store.path_of(key).write_bytes(MAGIC + store._mac(body) + body)


def test_entry_of_another_version_is_rebuilt(tmp_path: Path, rules: Path) -> None:
    d = tmp_path / "c"
    _load(rules, _cfg(d))
    store = RuleCache(d)
    key = _entry(d).name[: -len(cache.SUFFIX)]
    _forge(store, key, {"format": cache.FORMAT, "version": "0.0.1", "key": key}, b"")
    rs = load_ruleset([rules], _cfg(d))
    assert rs.cache.status == "rebuilt" and "written by netsentry 0.0.1" in rs.cache.reason


def test_entry_stored_under_another_key_is_rebuilt(tmp_path: Path, rules: Path) -> None:
    d = tmp_path / "c"
    _load(rules, _cfg(d))
    old = _entry(d)
    rules.write_text(RULES + 'alert udp any any -> any 53 (msg:"x"; content:"y"; sid:104;)\n')
    new_key = cache.cache_key([rules], _cfg(d))
    shutil.copy(old, d / (new_key + cache.SUFFIX))           # a valid entry, for other rules
    rs = load_ruleset([rules], _cfg(d))
    assert rs.cache.status == "rebuilt" and "another key" in rs.cache.reason
    assert len(rs.signatures) == 5


def test_unauthenticated_pickle_is_never_loaded(tmp_path: Path, rules: Path) -> None:
    """A file someone else wrote (no valid HMAC) is not unpickled: its payload never runs."""
    d = tmp_path / "c"
    _load(rules, _cfg(d))
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    import pickle
    payload = pickle.dumps(Evil())
    h = json.dumps({"format": cache.FORMAT, "version": netsentry.__version__, "key": "x"}).encode()
    _entry(d).write_bytes(MAGIC + b"\0" * 32 + struct.pack(">I", len(h)) + h + payload)
    rs = load_ruleset([rules], _cfg(d))
    assert rs.cache.status == "rebuilt" and "authentication failed" in rs.cache.reason
    assert not marker.exists()


def test_authenticated_entry_still_cannot_name_arbitrary_globals(tmp_path: Path) -> None:
    """Defence in depth: the unpickler refuses globals outside netsentry and a few libraries."""
    store = RuleCache(tmp_path / "c")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    store.put("k", Evil())
    with pytest.raises(cache.CacheInvalid, match="refused global"):
        store.get("k")
    assert not marker.exists()


# --- unsafe or unusable directories: no cache, one warning --------------------------------

def test_group_writable_directory_is_refused(tmp_path: Path, rules: Path) -> None:
    d = tmp_path / "open"
    d.mkdir()
    d.chmod(0o777)
    with capture_logs() as logs:
        rs1 = load_ruleset([rules], _cfg(d))
        rs2 = load_ruleset([rules], _cfg(d))
    assert rs1.cache.status == rs2.cache.status == "unusable"
    assert "writable by group or others" in rs1.cache.reason
    assert len(rs1.signatures) == 4
    assert [e["event"] for e in logs].count("rule cache not used") == 1
    assert not any(p.name.endswith(cache.SUFFIX) for p in d.iterdir())


def test_unwritable_directory_runs_without_cache(tmp_path: Path, rules: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    rs = load_ruleset([rules], _cfg(blocker / "cache"))      # a path below a regular file
    assert rs.cache.status == "unusable" and len(rs.signatures) == 4
    engine = engine_for(rs, _cfg(blocker / "cache"))
    assert engine is not None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand a directory to another user")
def test_directory_of_another_user_is_refused(tmp_path: Path, rules: Path) -> None:
    d = tmp_path / "theirs"
    d.mkdir(mode=0o700)
    os.chown(d, 65534, 65534)
    rs = load_ruleset([rules], _cfg(d))
    assert rs.cache.status == "unusable" and "owned by uid 65534" in rs.cache.reason


def test_secret_readable_by_others_is_refused(tmp_path: Path, rules: Path) -> None:
    d = tmp_path / "c"
    _load(rules, _cfg(d))
    (d / cache.SECRET).chmod(0o644)
    rs = load_ruleset([rules], _cfg(d))
    assert rs.cache.status == "unusable" and "readable by others" in rs.cache.reason


def test_secret_and_entries_are_private(tmp_path: Path, rules: Path) -> None:
    d = tmp_path / "c"
    _load(rules, _cfg(d))
    assert (d.stat().st_mode & 0o777) == 0o700
    assert (d / cache.SECRET).stat().st_mode & 0o077 == 0
    assert _entry(d).stat().st_mode & 0o077 == 0


# --- bounded size, atomic and concurrent writes -------------------------------------------

def test_old_entries_are_pruned(tmp_path: Path) -> None:
    store = RuleCache(tmp_path / "c")
    for i in range(cache.MAX_ENTRIES + 3):
        store.put(f"k{i}", {"n": i})
        os.utime(store.path_of(f"k{i}"), (1000 + i, 1000 + i))
    store.prune()
    left = sorted(p.name for p in store.dir.iterdir() if p.name.endswith(cache.SUFFIX))
    assert left == sorted(f"k{i}{cache.SUFFIX}" for i in range(3, cache.MAX_ENTRIES + 3))
    assert store.get("k0") is None and store.get(f"k{cache.MAX_ENTRIES + 2}") == {"n": cache.MAX_ENTRIES + 2}


def test_entries_past_the_byte_budget_are_pruned_oldest_first(tmp_path: Path) -> None:
    store = RuleCache(tmp_path / "c")
    for i in range(5):
        store.put(f"k{i}", {"pad": b"x" * 100_000})
        os.utime(store.path_of(f"k{i}"), (1000 + i, 1000 + i))
    # the budget holds the three newest exactly (entry sizes differ by a few bytes: the
    # header's creation time is written as a float of varying length)
    budget = sum(store.path_of(f"k{i}").stat().st_size for i in (2, 3, 4))
    removed = store.prune(max_bytes=budget)
    assert sorted(p.name for p in removed) == [f"k0{cache.SUFFIX}", f"k1{cache.SUFFIX}"]
    assert store.get("k1") is None and store.get("k2") is not None and store.get("k4") is not None


def test_the_entry_just_written_is_kept_even_past_the_budget(tmp_path: Path) -> None:
    store = RuleCache(tmp_path / "c")
    store.put("old", {"n": 0})
    os.utime(store.path_of("old"), (1000, 1000))
    store.put("big", {"pad": b"x" * 100_000})
    os.utime(store.path_of("big"), (900, 900))      # older by mtime, but the one just written
    store.prune(keep="big", max_bytes=10)
    assert store.get("big") is not None and store.get("old") is None


def _writer(directory: str, n: int) -> None:
    store = RuleCache(Path(directory))
    for i in range(20):
        store.put("same", {"writer": n, "i": i, "pad": b"x" * 200_000})


def test_concurrent_first_writers_share_one_secret_and_leave_a_whole_entry(tmp_path: Path) -> None:
    d = tmp_path / "c"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(d), n)) for n in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    got = RuleCache(d).get("same")
    assert got["i"] == 19 and len(got["pad"]) == 200_000
    assert not [p for p in d.iterdir() if p.name.startswith(".")]      # no temporaries left


# --- through the CLI: same alerts cold and warm ---------------------------------------------

def _replay(capture: Path, rules: Path, logdir: Path, cache_dir: Path | str, *extra: str) -> tuple[list[str], str]:
    cmd = [sys.executable, "-m", "netsentry", "replay", str(capture), "-S", str(rules), "-l", str(logdir),
           "-q", "--set", f"detect.rule-cache={cache_dir}", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    lines = (logdir / "eve.json").read_text().splitlines()
    alerts = sorted(line for line in lines if '"event_type":"alert"' in line.replace(" ", ""))
    return alerts, proc.stderr


def _cold_miss_hit(tmp_path: Path, capture: Path, rules: Path) -> list[str]:
    d = tmp_path / "cache"
    cold, _ = _replay(capture, rules, tmp_path / "cold", "false")
    miss, err_miss = _replay(capture, rules, tmp_path / "miss", d)
    hit, err_hit = _replay(capture, rules, tmp_path / "hit", d)
    assert "detect.rule_cache: miss" in err_miss
    assert "detect.rule_cache: hit" in err_hit
    assert cold == miss == hit
    return cold


def test_hit_gives_the_same_alerts_as_a_cold_build(tmp_path: Path) -> None:
    alerts = _cold_miss_hit(tmp_path, PCAPS / "attacks-web.pcap", BUNDLED)
    assert alerts


def test_damaged_entry_through_the_cli(tmp_path: Path) -> None:
    d = tmp_path / "cache"
    first, _ = _replay(PCAPS / "attacks-web.pcap", BUNDLED, tmp_path / "a", d)
    _damage_truncate(_entry(d))
    again, err = _replay(PCAPS / "attacks-web.pcap", BUNDLED, tmp_path / "b", d)
    assert "detect.rule_cache: rebuilt(authentication failed" in err
    assert "Traceback" not in err and again == first


@pytest.mark.shared
@pytest.mark.skipif(not BENCH_RULES.exists(), reason=f"{BENCH_RULES} not found (fresh clone)")
def test_bench_rules_hit_gives_the_same_alerts(tmp_path: Path) -> None:
    assert _cold_miss_hit(tmp_path, PCAPS / "attacks-web.pcap", BENCH_RULES) is not None


def _pcap_slice(src: Path, dst: Path, packets: int) -> None:
    """The first `packets` records of a classic pcap (the realtraffic capture is one)."""
    with open(src, "rb") as f, open(dst, "wb") as out:
        head = f.read(24)
        out.write(head)
        endian = "<" if head[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        for _ in range(packets):
            rec = f.read(16)
            if len(rec) < 16:
                break
            incl = struct.unpack(endian + "IIII", rec)[2]
            out.write(rec + f.read(incl))


@pytest.mark.shared
@pytest.mark.slow
@pytest.mark.skipif(not (ETOPEN.exists() and REALTRAFFIC.exists()), reason="../shared ET Open or realtraffic not found")
@pytest.mark.skipif(_compiled.PURE, reason="NETSENTRY_PURE=1 (./setup.sh test's second run): the cache does not "
                    "depend on the path, this test ran in the first run, and test_compiled shows both paths agree")
def test_etopen_hit_gives_the_same_alerts_on_real_traffic(tmp_path: Path) -> None:
    rules = tmp_path / "etopen.rules"
    with open(rules, "w", encoding="utf-8", errors="surrogateescape") as out:
        for f in sorted(ETOPEN.glob("*.rules")):
            out.write(f.read_text(encoding="utf-8", errors="surrogateescape"))
            out.write("\n")
    capture = tmp_path / "slice.pcap"
    _pcap_slice(REALTRAFFIC, capture, 20_000)
    alerts = _cold_miss_hit(tmp_path, capture, rules)
    assert alerts


def _wait_for_entry(d: Path) -> None:
    """Until the entry exists (it appears by rename, whole), at most a minute."""
    import time
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(p.name.endswith(cache.SUFFIX) and not p.name.startswith(".")
                                                  for p in d.iterdir()):      # not the writer's temporary
        time.sleep(0.05)


def test_rule_reload_loads_through_the_cache(tmp_path: Path, rules: Path) -> None:
    """SIGUSR2 / ctl reload (reload.py): the second build of unchanged rules is a hit."""
    from netsentry.reload import build_ruleset
    cfg = {**_cfg(tmp_path / "c"), "rule-files": [str(rules)]}
    built1, engine1 = build_ruleset(cfg)
    _wait_for_entry(tmp_path / "c")            # a reload writes its miss in the background
    built2, engine2 = build_ruleset(cfg)
    assert built1.ruleset.cache.status == "miss" and built2.ruleset.cache.status == "hit"
    assert engine2.stats()["detect.rule_cache.hit"] == 1
    assert [s.sid for s in engine2.sigs] == [s.sid for s in engine1.sigs]


def test_reload_miss_is_written_in_the_background(tmp_path: Path, rules: Path) -> None:
    """A live reload does not wait for the entry to be written (a forked process writes it)."""
    d = tmp_path / "c"
    cfg = _cfg(d)
    rs = load_ruleset([rules], cfg, background_write=True)
    assert rs.cache.status == "miss"
    engine = engine_for(rs, cfg)
    assert engine.stats()["detect.rule_cache.miss"] == 1
    _wait_for_entry(d)
    assert load_ruleset([rules], cfg).cache.status == "hit"


def test_cached_pcres_match_as_loaded(tmp_path: Path) -> None:
    """Pcre items come back from the cache uncompiled (RE2/PCRE2: on first use) and match
    as the ones parsed from the file, whichever engine each runs on."""
    rules = tmp_path / "p.rules"
    rules.write_text(
        'alert tcp any any -> any any (msg:"re2"; content:"GET"; pcre:"/^GET \\/[a-z]+\\d{2}/"; sid:1;)\n'
        'alert tcp any any -> any any (msg:"backref"; content:"ab"; pcre:"/(ab)\\1x/"; sid:2;)\n'
        'alert tcp any any -> any any (msg:"anchored"; content:"zz"; pcre:"/zz+y/A"; sid:3;)\n')
    cold = load_ruleset([rules], _cfg(False))
    d = tmp_path / "c"
    _load(rules, _cfg(d))
    warm = load_ruleset([rules], _cfg(d))
    assert warm.cache.status == "hit"
    payloads = [b"GET /abc12 x", b"GET /ABC12", b"ababx", b"abx", b"zzzy", b"xzzzy", b""]
    from netsentry.rules.keywords.payload import Pcre
    for a, b in zip(cold.signatures, warm.signatures):
        pa = [i for i in a.payload_chain.items if isinstance(i, Pcre)][0]
        pb = [i for i in b.payload_chain.items if isinstance(i, Pcre)][0]
        assert pa.engine == pb.engine
        for p in payloads:
            assert (pa._find(p, 0) is None) == (pb._find(p, 0) is None), (a.sid, p)


def test_a_rule_fifo_bypasses_the_cache_and_is_read_once(tmp_path: Path):
    """A FIFO (or /dev/stdin) can be read once: hashing it for the key would leave the loader
    nothing (or block it for good), so such a load goes around the cache."""
    import threading
    fifo = tmp_path / "rules.fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "w") as f:
            f.write(RULES)
    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    rs = load_ruleset([fifo], _cfg(tmp_path / "cache"))
    writer.join(10)
    assert rs.cache.status == "off" and "not a regular file" in str(rs.cache)
    assert len(rs.signatures) == RULES.count("sid:")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").glob("*" + cache.SUFFIX))


# --- Hyperscan databases: only the library that serialised one loads it ----------------------

try:
    from netsentry.detect import hsdirect
except ImportError:
    hsdirect = None

NO_DIRECT = "detect/hsdirect.py is not built here (no libhs headers, or NETSENTRY_PURE=1): one library only"


def _replay_env(capture: Path, rules: Path, logdir: Path, cache_dir: Path, pure: bool) -> tuple[list[str], str]:
    env = {k: v for k, v in os.environ.items() if k != "NETSENTRY_PURE"}
    if pure:
        env["NETSENTRY_PURE"] = "1"
    cmd = [sys.executable, "-m", "netsentry", "replay", str(capture), "-S", str(rules), "-l", str(logdir),
           "-q", "--set", f"detect.rule-cache={cache_dir}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = (logdir / "eve.json").read_text().splitlines()
    return sorted(line for line in lines if '"event_type":"alert"' in line.replace(" ", "")), proc.stderr


@pytest.mark.skipif(hsdirect is None, reason=NO_DIRECT)
def test_compiled_and_pure_runs_keep_separate_entries(tmp_path: Path) -> None:
    """The compiled path's databases are libhs's, the pure path's the hyperscan wheel's own
    build: each run finds only the entry its own library wrote, and alerts agree."""
    d = tmp_path / "cache"
    runs = [("compiled", False), ("pure", True), ("compiled", False), ("pure", True)]
    seen = []
    for i, (_name, pure) in enumerate(runs):
        alerts, err = _replay_env(PCAPS / "attacks-web.pcap", BUNDLED, tmp_path / f"r{i}", d, pure)
        status = "hit" if "detect.rule_cache: hit" in err else "miss" if "detect.rule_cache: miss" in err else err
        seen.append((status, alerts))
    assert [s for s, _a in seen] == ["miss", "miss", "hit", "hit"]
    assert seen[0][1] and all(a == seen[0][1] for _s, a in seen)
    assert len([p for p in d.iterdir() if p.name.endswith(cache.SUFFIX)]) == 2


class _StoredDatabase:
    """Pickles as the direct binding's loader over `blob` (only hsdirect._load is named in
    the pickle, so the cache's unpickler allows it)."""

    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    def __reduce__(self):
        return hsdirect._load, (self.blob, 1)


def _package_blob() -> bytes:
    hyperscan = pytest.importorskip("hyperscan")
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    db.compile(expressions=[b"GET "], ids=[0], elements=1, flags=[hyperscan.HS_FLAG_SINGLEMATCH], literal=True)
    return hyperscan.dumpb(db)


def _own_blob() -> bytes:
    return hsdirect.HyperscanPrefilter([(b"GET ", False)]).__reduce__()[1][0]


@pytest.mark.skipif(hsdirect is None, reason=NO_DIRECT)
@pytest.mark.parametrize("blob, why", [
    (lambda: _package_blob(), "foreign"),               # the hyperscan wheel's library wrote it
    (lambda: _own_blob()[:-40], "truncated"),           # libhs's own bytes, cut short
    (lambda: b"\x00" * 64, "garbage"),
])
def test_authenticated_entry_with_an_unusable_database_is_rebuilt(tmp_path: Path, rules: Path, blob, why) -> None:
    """Even an entry that passes the HMAC (this user's netsentry wrote it) is not trusted to
    hold a database this library can run: libhs checks the bytes and the entry is rebuilt."""
    d = tmp_path / "c"
    _load(rules, _cfg(d))
    key = _entry(d).name[: -len(cache.SUFFIX)]
    RuleCache(d).put(key, (_StoredDatabase(blob()), None))
    with capture_logs() as logs:
        rs, engine = _load(rules, _cfg(d))
    assert rs.cache.status == "rebuilt" and "not loadable here" in rs.cache.reason, (why, rs.cache.reason)
    assert len(rs.signatures) == 4 and engine.stats()["detect.rule_cache.rebuilt"] == 1
    assert any("not loadable here" in e["event"] for e in logs)
    assert load_ruleset([rules], _cfg(d)).cache.status == "hit"     # written again, and usable


def _miss_then_hit(tmp_path: Path, pcap: str, rules: str, *sets: str) -> list[list[dict]]:
    """The EVE records of two replays sharing one rule cache: a miss, then a hit."""
    rf = tmp_path / "r.rules"
    rf.write_text(rules)
    runs = []
    for run in ("miss", "hit"):
        out = tmp_path / run
        out.mkdir()
        extra = [a for s in sets for a in ("--set", s)]
        p = subprocess.run([sys.executable, "-m", "netsentry", "replay", str(REPO / "pcaps" / pcap), "-S", str(rf),
                            "-l", str(out), "-k", "none", "--set", f"detect.rule-cache={tmp_path / 'cache'}", *extra],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr[-2000:]
        assert f"detect.rule_cache: {run}" in p.stderr
        runs.append([json.loads(line) for line in (out / "eve.json").read_text().splitlines()])
    return runs


def test_pass_rules_that_alert_keep_their_pass_verdict_after_a_hit(tmp_path: Path) -> None:
    """A stored engine is unpickled, not built: what the build registers outside itself
    (here the pass rules with `alert`, whose EVE verdict is "pass") is registered again
    (`_revive`); on a hit their alerts said "alert"."""
    runs = _miss_then_hit(tmp_path, "anomaly-portscan.pcap",
                          'pass tcp any any -> any any (msg:"p"; flags:S; alert; sid:1;)\n',
                          "outputs.eve-log.alert.verdict=true")
    verdicts = [{r["verdict"]["action"] for r in recs if r["event_type"] == "alert" and r["alert"]["signature_id"] == 1}
                for recs in runs]
    assert verdicts == [{"pass"}, {"pass"}]


@pytest.mark.skipif(not any(os.path.isfile(p) for p in ("/usr/share/publicsuffix/public_suffix_list.dat",
                                                       "/usr/share/publicsuffix/effective_tld_names.dat")),
                    reason="no public suffix list (Debian package 'publicsuffix', installed by setup.sh)")
def test_domain_transform_after_a_hit(tmp_path: Path) -> None:
    """The public suffix list is read when a `domain` rule is parsed; a ruleset from the
    cache parsed none, so the list is read on first use (the hit crashed the replay)."""
    runs = _miss_then_hit(tmp_path, "benign-dns.pcap",
                          'alert dns any any -> any any (msg:"d"; dns.query; domain; content:"com"; sid:1;)\n')
    counts = [sum(r["event_type"] == "alert" for r in recs) for recs in runs]
    assert counts[0] > 0 and counts[0] == counts[1]
