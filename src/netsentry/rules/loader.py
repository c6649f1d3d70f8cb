"""Load rule files into a `RuleSet`: every loadable rule, and every other one with its reason.

File format as Suricata reads it: one rule per line, a trailing backslash
joins the next line, lines starting with ``#`` (including commented-out rules)
and blank lines are skipped. A rule that fails is reported (file:line, sid,
reason) and skipped; the rest load. Duplicate sids within one gid are resolved
as Suricata does: the higher rev wins, otherwise the first loaded stays; the
loser is reported as an error.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netsentry.config import get
from netsentry.rules.addresses import AddressParser
from netsentry.rules.classification import load_classifications, load_references
from netsentry.rules.errors import RuleError
from netsentry.rules.manage import RuleFilters, load_filters
from netsentry.rules.parser import parse_rule
from netsentry.rules.ports import PortParser
from netsentry.rules.signature import Signature
from netsentry.rules.variables import address_groups, check_variables, port_groups


@dataclass
class FileStats:
    path: str
    loaded: int = 0
    skipped: int = 0
    commented: int = 0     # commented-out rules (`# alert ...`), not counted as skipped
    disabled: int = 0      # turned off by disable.conf (rules/manage.py), not counted as skipped


@dataclass
class LoadEnv:
    """What rule parsing needs from the configuration, built once per load."""

    addresses: AddressParser
    ports: PortParser
    classifications: dict[str, tuple[str, int]] | None = None   # None: no file, classtypes unchecked
    references: dict[str, str] = field(default_factory=dict)
    classification_file: str | None = None
    reference_file: str | None = None
    # state keyword families share across the rule set (e.g. the hostbits/xbits table)
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class RuleSet:
    signatures: list[Signature] = field(default_factory=list)
    errors: list[RuleError] = field(default_factory=list)
    files: list[FileStats] = field(default_factory=list)
    duplicates: list[RuleError] = field(default_factory=list)   # also in errors
    warnings: list[str] = field(default_factory=list)
    classifications: dict[str, tuple[str, int]] = field(default_factory=dict)
    references: dict[str, str] = field(default_factory=dict)
    load_seconds: float = 0.0
    # disable/enable/modify.conf (rules/manage.py) and what they changed in this load
    filters: RuleFilters | None = None
    # rules/cache.py: what the cache did (CacheOutcome), the stored engine that came with a
    # hit (handed out once by cache.engine_for) and the config digest it was built for, and
    # on a miss where to store the engine once built
    cache: Any = None
    engine: Any = field(default=None, repr=False)
    engine_config: str | None = None
    cache_store: Any = field(default=None, repr=False)
    # why this load must not be stored in the rule cache (its rules read files the key does
    # not cover and keep state that lives past the load: datasets); None: cacheable
    no_cache: str | None = None

    def reference_url(self, system: str, ref: str) -> str:
        prefix = self.references.get(system.lower())
        return prefix + ref if prefix else ref


_ACTION_WORDS = ("alert", "drop", "reject", "rejectsrc", "rejectdst", "rejectboth", "pass")


def _cfg(config: Mapping[str, Any] | None, key: str, default: Any) -> Any:
    if config is None:
        return default
    v = config.get(key, default)
    return default if v is None else v


BUNDLED_DATA = Path(__file__).resolve().parents[1] / "data"


def _find_file(name: str, config: Mapping[str, Any] | None, near: Iterable[Path]) -> Path | None:
    """An absolute path as is; a relative one next to the rules (a ruleset's own file
    wins: ET Open ships its classification.config), in cwd, default-rule-path, or bundled."""
    p = Path(name)
    if p.is_absolute():
        return p if p.is_file() else None
    candidates = [d / p for d in near]
    candidates += [Path.cwd() / p, Path(str(_cfg(config, "default-rule-path", "."))) / p]
    candidates.append(BUNDLED_DATA / p.name)
    candidates.append(Path(__file__).resolve().parents[3] / "signatures" / p.name)
    for c in candidates:
        if c.is_file():
            return c
    return None


def make_env(config: Mapping[str, Any] | None, rule_dirs: Iterable[Path] = ()) -> tuple[LoadEnv, list[RuleError], list[str]]:
    """Variables, classification.config and reference.config from the config (a dict)."""
    dirs = list(rule_dirs)
    check_variables(config)         # a bad $VAR stops start-up (ConfigError), as in Suricata
    env = LoadEnv(AddressParser(address_groups(config)), PortParser(port_groups(config)))
    # inline (IPS) or IDS stream: when an app-layer rule's packets see the flow's protocol
    # (rules/parser.py `engine_proto`)
    env.state["stream.inline"] = bool(get(config or {}, "stream.inline", False))
    env.state["config"] = config or {}      # keywords reading their own section (lua: security.lua)
    errors: list[RuleError] = []
    from netsentry.rules.keywords.datasets import configure as configure_datasets
    try:
        configure_datasets(config)      # the `datasets:` section; sets are made anew per load
    except RuleError as e:
        errors.append(e)
    warnings: list[str] = []
    from netsentry.rules.keywords.iprep import configure as configure_iprep
    env.state["iprep"], rep_errors = configure_iprep(config)     # IP reputation, read per load
    errors += [RuleError(m) for m in rep_errors]
    cls_name = str(_cfg(config, "classification-file", "classification.config"))
    cls = _find_file(cls_name, config, dirs)
    if cls is None:
        warnings.append(f"classification file '{cls_name}' not found: classtypes are not checked "
                        f"and severity defaults to 3")
    else:
        env.classifications, errs = load_classifications(cls)
        env.classification_file = str(cls)
        errors += errs
        bundled = BUNDLED_DATA / "classification.config"
        if cls.resolve() != bundled.resolve() and bundled.is_file():
            # the current list underneath: an older file (Suricata's own still lacks
            # ET's newer classtypes) does not make rules using them unloadable
            base, _ = load_classifications(bundled)
            env.classifications = {**base, **env.classifications}
    ref_name = str(_cfg(config, "reference-config-file", "reference.config"))
    ref = _find_file(ref_name, config, dirs)
    if ref is None:
        warnings.append(f"reference file '{ref_name}' not found: reference urls are not expanded")
    else:
        env.references, errs = load_references(ref)
        env.reference_file = str(ref)
        errors += errs
    return env, errors, warnings


def iter_rule_lines(text: str) -> Iterable[tuple[int, str]]:
    """(first line number, rule text) with backslash continuations joined; comments kept.

    Lines end at '\\n' only, as Suricata's fgets-based reader: str.splitlines()
    would also split at a form feed, \\r, \\v or U+2028 inside a rule, cutting it
    in two and shifting every later line number.
    """
    pending: list[str] = []
    start = 0
    for lineno, line in enumerate(text.split("\n"), 1):
        stripped = line.rstrip()
        if not pending:
            start = lineno
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        joined = "".join(pending).strip()
        pending = []
        if joined:
            yield start, joined
    if pending:
        joined = "".join(pending).strip()
        if joined:
            yield start, joined


def _resolve(path: str | Path, config: Mapping[str, Any] | None) -> list[Path]:
    p = Path(path)
    if not p.is_absolute() and not p.exists():
        alt = Path(str(_cfg(config, "default-rule-path", "."))) / p
        if alt.exists():
            p = alt
    if p.is_dir():
        return sorted(p.glob("*.rules"))
    return [p]


def load_rules(paths: Iterable[str | Path], config: Mapping[str, Any] | None = None) -> RuleSet:
    """Parse every rule of `paths` (files, or directories of *.rules). Never raises for bad rules."""
    # Loading allocates ~10^6 small objects and frees few; the cyclic GC's
    # passes over them cost ~15% of the full ET Open load (CPU 2.6 s -> 2.2 s).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _load_rules(paths, config)
    finally:
        if gc_was_enabled:
            gc.enable()


def _load_rules(paths: Iterable[str | Path], config: Mapping[str, Any] | None) -> RuleSet:
    t0 = time.perf_counter()
    files = [f for p in paths for f in _resolve(p, config)]
    env, errors, warnings = make_env(config, {f.parent for f in files})
    rs = RuleSet(errors=errors, warnings=warnings, classifications=env.classifications or {},
                 references=env.references)
    by_key: dict[tuple[int, int], int] = {}     # (gid, sid) -> index in rs.signatures
    try:
        filters: RuleFilters | None = load_filters(config)
    except RuleError as e:
        rs.errors.append(e)
        filters = None
    else:
        rs.filters = filters
        if not filters:
            filters = None
    for f in files:
        stats = FileStats(str(f))
        rs.files.append(stats)
        try:
            text = f.read_text(encoding="utf-8", errors="surrogateescape")
        except OSError as e:
            rs.errors.append(RuleError(f"cannot read rules file: {e.strerror or e}", file=str(f)))
            continue
        for lineno, rule in iter_rule_lines(text):
            if filters is not None:
                managed = filters.apply(rule, str(f), lineno)
                if managed is None:
                    stats.disabled += 1
                    continue
                rule = managed
            if rule.startswith("#"):
                if rule.lstrip("# ").split(" ", 1)[0] in _ACTION_WORDS:
                    stats.commented += 1
                continue
            try:
                sig = parse_rule(rule, env, str(f), lineno)
            except RuleError as e:
                stats.skipped += 1
                rs.errors.append(e.with_traceback(None))   # a kept traceback pins the rule's frames
                continue
            key = (sig.gid, sig.sid)
            old_i = by_key.get(key)
            if old_i is not None:
                old = rs.signatures[old_i]
                if sig.rev > old.rev:
                    dup = RuleError(f"duplicate sid {sig.sid} (gid {sig.gid}): replaced rev {old.rev} "
                                    f"from {old.file}:{old.line} with rev {sig.rev}",
                                    file=old.file, line=old.line, sid=sig.sid, category="duplicate sid")
                    rs.signatures[old_i] = sig
                    stats.loaded += 1
                    _uncount(rs, old.file)
                else:
                    dup = RuleError(f"duplicate sid {sig.sid} (gid {sig.gid}): rev {old.rev} already loaded "
                                    f"from {old.file}:{old.line}", file=str(f), line=lineno,
                                    sid=sig.sid, category="duplicate sid")
                    stats.skipped += 1
                rs.errors.append(dup)
                rs.duplicates.append(dup)
                continue
            by_key[key] = len(rs.signatures)
            rs.signatures.append(sig)
            stats.loaded += 1
        if not (stats.loaded or stats.skipped or stats.commented):
            rs.warnings.append(f"{f}: no rules in this file")
    if env.state.get("datasets_used"):
        rs.no_cache = "rules use datasets (their files and state are not in the cache key)"
    elif env.state.get("lua_used"):
        rs.no_cache = "rules use Lua scripts (their files are not in the cache key)"
    elif env.state.get("iprep_used"):
        rs.no_cache = "rules use iprep (the reputation files are not in the cache key)"
    rs.load_seconds = time.perf_counter() - t0
    return rs


def _uncount(rs: RuleSet, file: str) -> None:
    for st in rs.files:
        if st.path == file:
            st.loaded -= 1
            st.skipped += 1
            return
