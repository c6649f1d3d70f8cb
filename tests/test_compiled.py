"""The compiled path and the pure-Python path give byte-identical EVE output.

setup.py compiles the modules in ``COMPILED_MODULES`` with Cython; their
``.py`` files stay the reference, selected with ``NETSENTRY_PURE=1``
(netsentry/_compiled.py). This test replays every capture in pcaps/ (with
the bundled signatures) and the suricata-verify captures (each with its own
rules, suricata.yaml and options, as ../shared/suricata-verify/sv_harness.py
resolves them) through both paths, one interpreter per path
(tests/compiled_replay.py), and requires the same exit status and the same
``eve.json`` bytes for every capture.

Fields excluded from the comparison, because they come from the wall clock
rather than from the capture (`WALL_CLOCK_FIELDS`), both in ``stats`` records:
``stats.uptime`` (seconds since the sensor started, by ``time.monotonic``: a
replay that takes a second longer says 1 instead of 0) and ``timestamp``, the
wall-clock time the record is written, in a replay too, as Suricata's stats
logger writes it (output/stats.py `stats_event`). Every other field is compared.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from netsentry import _compiled

REPO = Path(__file__).resolve().parents[1]
PCAPS = sorted((REPO / "pcaps").glob("*.pcap"))
SIGNATURES = REPO / "signatures" / "netsentry.rules"
SV = REPO / ".." / "shared" / "suricata-verify"
DRIVER = Path(__file__).with_name("compiled_replay.py")
# At most this many suricata-verify tests (every k-th by name), so that both
# paths, run at once, stay within a minute on a busy 2-core machine.
SV_MAX = 80

# EVE fields that can come from the wall clock in a replay: event_type -> field
# (removed before comparing; see the module docstring).
WALL_CLOCK_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {"stats": (("timestamp",), ("stats", "uptime"))}


def _extensions_in_use() -> list[str]:
    return [name for name, stale in _compiled.built_modules().items() if not stale]


NOT_BUILT = ("no compiled extension modules are built (pip install -e . with Cython and a C compiler "
             "builds them); there is only one path to compare")


def _sv_jobs(work: Path) -> list[dict]:
    spec = importlib.util.spec_from_file_location("sv_harness", SV / "sv_harness.py")
    assert spec is not None and spec.loader is not None
    harness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(harness)
    import yaml
    dirs = sorted(p.parent for p in (SV / "tests").rglob("test.yaml"))
    step = max(1, -(-len(dirs) // SV_MAX))
    jobs = []
    for d in dirs[::step]:     # deterministic: every step-th test by name
        ty = yaml.safe_load((d / "test.yaml").read_text()) or {}
        name = "sv-" + d.name
        (work / name).mkdir(parents=True, exist_ok=True)
        try:
            pcap, rules = harness.resolve_inputs(str(d), ty, str(work / name))
        except ValueError:
            continue           # the snapshot lacks this test's capture
        argv = ["replay", pcap, "-S", rules, "-l", "{out}/" + name]
        cfg = d / "suricata.yaml"
        if cfg.is_file():
            argv += ["--suricata-config", str(cfg)]
        args, _ips = harness.test_args(str(d), ty, "{out}/" + name)
        argv += shlex.split(args)
        jobs.append({"name": name, "argv": argv})
    return jobs


def _jobs(work: Path) -> list[dict]:
    jobs = [{"name": "pcaps-" + p.stem, "argv": ["replay", str(p), "-S", str(SIGNATURES), "-l", "{out}/pcaps-" + p.stem]}
            for p in PCAPS]
    if (SV / "sv_harness.py").is_file():
        jobs += _sv_jobs(work)
    return jobs


def _start(jobs: list[dict], out: Path, pure: bool) -> subprocess.Popen[str]:
    concrete = [{"name": j["name"], "argv": [a.replace("{out}", str(out)) for a in j["argv"]]} for j in jobs]
    jobfile = out.with_suffix(".jobs.json")
    jobfile.write_text(json.dumps(concrete))
    # each path its own, empty rule cache (rules/cache.py): the two drivers run at once, and a
    # shared cache would make one path's runs hits and the other's misses in the stats record
    cache = out.with_suffix(".cache")
    cache.mkdir(mode=0o700)
    env = dict(os.environ, TZ="UTC", XDG_CACHE_HOME=str(cache))
    env.pop("NETSENTRY_PURE", None)
    if pure:
        env["NETSENTRY_PURE"] = "1"
    return subprocess.Popen([sys.executable, str(DRIVER), str(jobfile), str(out)], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _strip(line: bytes) -> bytes:
    """The record as written, or re-serialised without its wall-clock fields."""
    for event_type, fields in WALL_CLOCK_FIELDS.items():
        if b'"event_type":"%s"' % event_type.encode() in line:
            rec = json.loads(line)
            for *parents, field in fields:
                node = rec
                for key in parents:
                    node = node.get(key) or {}
                node.pop(field, None)
            return json.dumps(rec).encode()
    return line


def _eve(out: Path) -> list[bytes]:
    eve = out / "eve.json"
    return [_strip(line) for line in eve.read_bytes().splitlines()] if eve.exists() else []


@pytest.mark.skipif(not _extensions_in_use(), reason=NOT_BUILT)
@pytest.mark.skipif(_compiled.PURE, reason="NETSENTRY_PURE=1: ./setup.sh test's second (pure) run; "
                                           "this test runs both paths itself and ran in the first")
def test_compiled_and_pure_paths_write_identical_eve(tmp_path: Path) -> None:
    jobs = _jobs(tmp_path / "inputs")
    assert len(jobs) >= len(PCAPS)
    runs = {"compiled": tmp_path / "compiled", "pure": tmp_path / "pure"}
    procs = {name: _start(jobs, out, pure=(name == "pure")) for name, out in runs.items()}
    for name, proc in procs.items():
        _stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{name} driver failed: {stderr[-2000:]}"
    assert (runs["compiled"] / "fast-path").read_text().startswith("fast path: compiled"), \
        (runs["compiled"] / "fast-path").read_text()
    assert (runs["pure"] / "fast-path").read_text().startswith("fast path: pure Python"), \
        (runs["pure"] / "fast-path").read_text()
    differ = []
    records = 0
    for job in jobs:
        a, b = runs["compiled"] / job["name"], runs["pure"] / job["name"]
        exit_a, exit_b = (a / "exit").read_text(), (b / "exit").read_text()
        eve_a, eve_b = _eve(a), _eve(b)
        records += len(eve_a)
        if exit_a != exit_b:
            differ.append(f"{job['name']}: exit {exit_a.strip()} compiled, {exit_b.strip()} pure")
        elif eve_a != eve_b:
            first = next((i for i, (x, y) in enumerate(zip(eve_a, eve_b)) if x != y), min(len(eve_a), len(eve_b)))
            differ.append(f"{job['name']}: eve.json differs from record {first + 1} "
                          f"({len(eve_a)} compiled, {len(eve_b)} pure records): "
                          f"{eve_a[first:first + 1]!r} vs {eve_b[first:first + 1]!r}")
    assert not differ, f"{len(differ)} of {len(jobs)} captures differ:\n" + "\n".join(differ[:10])
    assert records > 1000, f"only {records} EVE records compared: the replays did not run"


# --- choosing the path (these run with or without a build) -----------------------------------

def _which_files(pure: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("NETSENTRY_PURE", None)
    if pure:
        env["NETSENTRY_PURE"] = "1"
    code = ("import json, netsentry.capture.pcap as a, netsentry.decode.decoder as b, netsentry._compiled as c; "
            "print(json.dumps({'pcap': a.__file__, 'decoder': b.__file__, 'COMPILED': c.COMPILED}))")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.skipif(not _extensions_in_use(), reason=NOT_BUILT)
def test_netsentry_pure_imports_the_sources_and_the_default_the_extensions() -> None:
    pure, default = _which_files(pure=True), _which_files(pure=False)
    assert pure["pcap"].endswith("pcap.py") and pure["decoder"].endswith("decoder.py")
    assert pure["COMPILED"] is False
    assert default["pcap"].endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
    assert default["COMPILED"] is True


@pytest.mark.skipif("netsentry.detect.hsdirect" not in _extensions_in_use(),
                    reason="detect/hsdirect.py is not built here (no libhs headers): both paths use the hyperscan package")
def test_the_two_paths_scan_with_different_hyperscan_bindings() -> None:
    """Where libhs is built in, the identical-eve test above compares libhs direct (compiled)
    against the hyperscan package (pure): that is what makes it a test of the binding too."""
    code = "from netsentry.detect import prefilter; print(prefilter.library())"
    env = {k: v for k, v in os.environ.items() if k != "NETSENTRY_PURE"}
    compiled = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    pure = subprocess.run([sys.executable, "-c", code], env=dict(env, NETSENTRY_PURE="1"),
                          capture_output=True, text=True, check=True)
    assert compiled.stdout.startswith("libhs ") and pure.stdout.startswith("hyperscan-py ")


def test_version_names_the_path_that_runs() -> None:
    env = dict(os.environ, NETSENTRY_PURE="1")
    proc = subprocess.run([sys.executable, "-m", "netsentry", "version"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1].startswith("fast path: pure Python")


def test_a_stale_extension_yields_to_its_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An edited .py newer than its build must run as written (editable installs, git checkout).
    source = tmp_path / "mod.py"
    ext = tmp_path / ("mod" + importlib.machinery.EXTENSION_SUFFIXES[0])
    ext.write_bytes(b"not really an extension")
    source.write_text("X = 1\n")
    finder = _compiled.SourceFinder()
    monkeypatch.setattr(_compiled, "PURE", False)
    os.utime(ext, ns=(2_000_000_000_000_000_000, 2_000_000_000_000_000_000))
    os.utime(source, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    assert finder.find_spec("netsentry.mod", [str(tmp_path)]) is None   # fresh: the normal finder loads the .so
    os.utime(source, ns=(3_000_000_000_000_000_000, 3_000_000_000_000_000_000))
    spec = finder.find_spec("netsentry.mod", [str(tmp_path)])
    assert spec is not None and spec.origin == str(source)
    monkeypatch.setattr(_compiled, "PURE", True)
    os.utime(source, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    spec = finder.find_spec("netsentry.mod", [str(tmp_path)])
    assert spec is not None and spec.origin == str(source)
    assert finder.find_spec("other.mod", [str(tmp_path)]) is None       # only netsentry's own modules


def test_a_stale_type_layout_sends_every_module_to_its_source(tmp_path: Path) -> None:
    # packet.py edited after the build: its source class is not the type the compiled
    # decoder and flow table cimport, so nothing may load compiled (they would fail
    # to import); the next build makes them agree again.
    import shutil
    pkg = tmp_path / "netsentry"
    shutil.copytree(Path(_compiled.__file__).parent, pkg,
                    ignore=shutil.ignore_patterns("__pycache__", "*.c"))
    packet_so = [p for p in (pkg / "decode").iterdir() if p.name.startswith("packet.") and p.suffix == ".so"]
    if not packet_so:
        pytest.skip(NOT_BUILT)
    (pkg / "decode" / "packet.py").touch()
    os.utime(packet_so[0], ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    code = ("import netsentry, netsentry.decode.decoder as d, netsentry.flow.table as t; "
            "from netsentry import _compiled as c; "
            "print(c.LAYOUT_STALE, c.COMPILED, d.__file__.endswith('.py'), t.__file__.endswith('.py'))")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    env.pop("NETSENTRY_PURE", None)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "False", "True", "True"]


def test_the_cython_shim_leaves_annotated_code_plain_python() -> None:
    from netsentry import _cython_shim as cython

    @cython.cfunc
    @cython.locals(n=cython.int)
    def twice(n: cython.int) -> cython.int:
        return 2 * n

    assert cython.compiled is False
    assert twice(21) == 42
    assert cython.declare(cython.Py_ssize_t, 7) == 7
