"""The compiled ruleset cache (`detect.rule-cache`): load a ruleset and its built engine from disk.

Parsing the whole loadable ET Open set (24,600 rules) and building its
engine (rule groups, Hyperscan databases, pcre compiles) costs seconds of
CPU; the result only changes when its inputs do. So the loaded `RuleSet`
and the freshly built `SignatureEngine` are stored together, keyed by
everything that went into them, and the next start with the same inputs
loads them instead (`detect.rule_cache: hit`).

What the key covers (`cache_key`): netsentry's version and a fingerprint of
its own source files (an edited checkout is a different netsentry), the
Python version and the Hyperscan version and binding (the stored code references and
databases are only valid for them: `prefilter.library()`), the rule files' paths and contents, the
files that rule management (disable/enable/modify.conf), the threshold file,
classification.config and reference.config resolve to, and the
configuration sections that can change what is compiled (`vars`,
`detect`, `threshold`, `stream`, `app-layer`, rule paths and file names).
Anything else in the configuration (outputs, flow, anomaly, ...) is not in
the key, so a different log directory still hits.

Format and trust. Signatures are graphs of Python objects holding closures
(each keyword's check is a function made at parse time), so a data-only
format would mean rewriting every keyword; the entry is a pickle instead,
with closures stored as (module, qualified name, first line, cell values)
and re-made from the *installed* module's code, never from bytes in the
file, and Hyperscan databases stored with `hyperscan.dumpb`. Unpickling
runs code chosen by whoever wrote the file, so a file is unpickled only
when it is authenticated as written by this user's netsentry:

- every entry carries an HMAC-SHA256 over its header and body, keyed by a
  32-byte secret `secret` in the cache directory, created 0600 by the first
  writer (published with link(2) so concurrent writers agree on one);
- the directory must be owned by this user and not group/world-writable,
  and the secret and each entry must be regular files owned by this user,
  not writable by others (checked with `lstat`, no symlinks followed);
  otherwise the cache is not used at all (one warning) and the rules load
  from their files.

An attacker who can write into the directory can thus at most delete
entries (a rebuild); one who can read the secret could forge entries, which
the ownership and mode checks keep to this user (who can run code as
themselves anyway). The HMAC also covers damage: a truncated or bit-flipped
file, one of another netsentry version, or one stored under another key is
ignored, logged (`rebuilt(reason)`), and replaced.

Writes are atomic (a temporary file in the directory, fsync, rename), so a
reader sees a whole entry or none, and two writers of the same key each
publish a complete one. After each write the least recently used entries
are deleted beyond `MAX_ENTRIES` or `MAX_BYTES` in all, whichever comes
first: an analyst switching between a few rulesets (ET Open's entry is about
60 MB, a small set's under 1 MB) keeps each one warm, and the directory stays
bounded. The entry just written is always kept.
"""

from __future__ import annotations

import copyreg
import gc
import hashlib
import hmac
import importlib.util
import io
import json
import os
import pickle
import stat
import sys
import tempfile
import threading
import time
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import netsentry
from netsentry.atomicfile import atomic_write
from netsentry.config import get

try:  # pragma: no cover - import guard
    import hyperscan as _hs
except ImportError:  # pragma: no cover
    _hs = None

FORMAT = 1
MAGIC = b"NETSENTRY-RULE-CACHE\n"
SUFFIX = ".ruleset"
SECRET = "secret"
MAX_ENTRIES = 32
MAX_BYTES = 512 << 20
_MAC_LEN = 32

# configuration sections that can change what rule loading and the engine build compile
KEY_SECTIONS = ("vars", "default-rule-path", "rule-files", "classification-file", "reference-config-file",
                "threshold", "threshold-file", "rule-management", "detect", "stream", "app-layer",
                "security")
_OFF = ("false", "none", "no", "off", "disabled")


class CacheUnusable(Exception):
    """The cache directory cannot be used safely (not ours, open to others, unwritable)."""


class CacheInvalid(Exception):
    """An entry that must not be used (damaged, foreign, other version); the reason is one line."""


@dataclass
class CacheOutcome:
    """What the cache did for one load: `hit`, `miss`, `rebuilt` (reason), `off`, `unusable`."""

    status: str
    reason: str | None = None
    path: str | None = None
    seconds: float = 0.0
    # the process's start-up load (not a live reload): what it builds lives for the whole run,
    # so `engine_for` moves it out of the collector's sight once the engine is built
    startup: bool = False

    def __str__(self) -> str:
        return f"{self.status}({self.reason})" if self.reason else self.status

    def counters(self) -> dict[str, int]:
        return {f"detect.rule_cache.{s}": int(self.status == s) for s in ("hit", "miss", "rebuilt")}


# --- where ------------------------------------------------------------------------

def default_cache_dir() -> Path:
    """systemd's StateDirectory= for the packaged daemon (/var/lib/netsentry), else the
    user's XDG cache directory."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return Path(state.split(":")[0]) / "rule-cache"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "netsentry"
    return Path.home() / ".cache" / "netsentry"


def cache_dir(config: Mapping[str, Any] | None) -> Path | None:
    """`detect.rule-cache`: a directory, `false`/`none` (off), or unset/`auto` (the default)."""
    value = get(config or {}, "detect.rule-cache", None)
    if value is None or value is True or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return default_cache_dir()
    if value is False or (isinstance(value, str) and value.strip().lower() in _OFF):
        return None
    return Path(str(value)).expanduser()


# --- the key ----------------------------------------------------------------------

def _source_fingerprint() -> str:
    """Names, sizes and mtimes of netsentry's own modules: a changed checkout misses."""
    root = Path(netsentry.__file__).resolve().parent
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        st = p.stat()
        h.update(f"{p.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


_FINGERPRINT: str | None = None


def _regular(path: str | Path) -> bool:
    """A rule file whose content can be read twice (once for the key, once to load it)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return True             # missing: the loader reports it, the key records it


def _file_digest(h: Any, path: str | Path | None) -> None:
    if not path:
        h.update(b"-\n")
        return
    h.update(str(path).encode("utf-8", "surrogateescape") + b"\n")
    try:
        with open(path, "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    except OSError as exc:
        h.update(f"unreadable:{exc.errno}".encode())


def config_digest(config: Mapping[str, Any] | None) -> str:
    """The part of the key that comes from the configuration alone (cheap: no file reads)."""
    cfg = config or {}
    part: dict[str, Any] = {k: cfg.get(k) for k in KEY_SECTIONS}
    # frame logging numbers every frame type, so it changes what the engine build enables
    # (detect/framedetect.py)
    part["frame-logging"] = get(cfg, "outputs.eve-log.frame-logging", False)
    return hashlib.sha256(json.dumps(part, sort_keys=True, default=str).encode()).hexdigest()


def cache_key(files: Iterable[Path], config: Mapping[str, Any] | None) -> str:
    """Hex digest of everything a load and engine build depend on (see the module docstring)."""
    global _FINGERPRINT
    if _FINGERPRINT is None:
        _FINGERPRINT = _source_fingerprint()
    from netsentry.rules.loader import _cfg, _find_file
    cfg = config or {}
    h = hashlib.sha256()
    h.update(f"format {FORMAT} netsentry {netsentry.__version__} {_FINGERPRINT}\n".encode())
    h.update(f"python {sys.implementation.cache_tag} {sys.version}\n".encode())
    # which library serialised the databases (libhs direct or the hyperscan package's
    # bundled one): an entry is only ever loaded by the library that wrote it
    from netsentry.detect.prefilter import library
    h.update(f"hyperscan {getattr(_hs, '__version__', None)} {library()}\n".encode())
    h.update(config_digest(cfg).encode())
    files = list(files)
    for f in files:
        _file_digest(h, f)
    dirs = list(dict.fromkeys(f.parent for f in files))
    for key, default in (("classification-file", "classification.config"),
                         ("reference-config-file", "reference.config")):
        _file_digest(h, _find_file(str(_cfg(cfg, key, default)), cfg, dirs))
    _file_digest(h, get(cfg, "threshold-file", "") or None)
    for key in ("disable-conf", "enable-conf", "modify-conf"):
        _file_digest(h, get(cfg, f"rule-management.{key}", "") or None)
    return h.hexdigest()


# --- pickling: closures by reference to installed code, Hyperscan by dumpb ----------

_CODE: dict[str, dict[tuple[str, int], types.CodeType]] = {}


def _code_index(module: str) -> dict[tuple[str, int, bytes], types.CodeType]:
    """Every code object of `module` (nested ones too) by (qualified name, first line,
    bytecode), from the installed module's own compiled code. The bytecode tells apart the
    lambdas of one line (`{"<": lambda a, b: a < b, ">": lambda a, b: a > b}`: same name,
    same line); two with the same bytecode are the same function."""
    index = _CODE.get(module)
    if index is None:
        spec = importlib.util.find_spec(module)
        loader = getattr(spec, "loader", None)
        top = loader.get_code(module) if loader is not None and hasattr(loader, "get_code") else None
        if top is None:
            raise CacheInvalid(f"no code for module {module}")
        index = {}
        todo = [top]
        while todo:
            code = todo.pop()
            index[(code.co_qualname, code.co_firstlineno, code.co_code)] = code
            todo.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
        _CODE[module] = index
    return index


def _make_function(module: str, qualname: str, line: int, bytecode: bytes, defaults: Any, kwdefaults: Any,
                   cells: tuple[Any, ...] | None, attrs: dict[str, Any] | None = None) -> types.FunctionType:
    if not module.startswith("netsentry."):
        raise CacheInvalid(f"function of foreign module {module}")
    code = _code_index(module).get((qualname, line, bytecode))
    if code is None:
        raise CacheInvalid(f"{module}.{qualname} (line {line}) no longer exists")
    mod = sys.modules.get(module) or importlib.import_module(module)
    closure = tuple(types.CellType(c) for c in cells) if cells is not None else None
    fn = types.FunctionType(code, mod.__dict__, code.co_name, defaults, closure)
    if kwdefaults:
        fn.__kwdefaults__ = kwdefaults
    fn.__qualname__ = qualname
    if attrs:
        fn.__dict__.update(attrs)
    return fn


def _same(obj: Any) -> Any:
    return obj


_IMMUTABLE = (type(None), bool, int, float, str, bytes)


def _immutable(value: Any) -> bool:
    if isinstance(value, _IMMUTABLE):
        return True
    if type(value) in (tuple, frozenset):
        return all(_immutable(v) for v in value)
    return False


def _load_hyperscan(blob: bytes) -> Any:
    if _hs is None:
        raise CacheInvalid("hyperscan is not installed")
    db = _hs.loadb(blob, _hs.HS_MODE_BLOCK)
    db.scratch = _hs.Scratch(db)          # a deserialised database comes without one
    return db


_EMPTY_SET: frozenset[Any] = frozenset()


class _Pickler(pickle.Pickler):
    """Closures by reference to installed code (with their cell values), Hyperscan by dumpb.

    Closures with the same code and only immutable captured values (ET Open: 17,000
    `flow:` checks, a few dozen distinct) are stored once and shared on load: they
    compute the same thing, and re-making each was a third of the load."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shared: dict[Any, Any] = {}
        from netsentry.event import Alert
        from netsentry.rules.signature import Signature
        self._by_type = {Alert: self._alert, Signature: self._signature}
        self._metadata: dict[int, tuple[Any, dict[str, list[str]]]] = {}
        self._values: dict[tuple[str, tuple[str, ...]], list[str]] = {}

    # The load of a whole-ET-Open entry makes ~850,000 objects (0.67 s): the three reducers
    # below make ~150,000 fewer of them and skip a Python call per rule (0.55 s), without
    # changing what any object reads.

    def _metadata_of(self, meta: Any) -> Any:
        """A rule's `metadata` dict with its value lists shared between rules: ET Open repeats
        the same few (`created_at 2010_07_30`, `signature_severity Major`: 180,000 lists,
        a few thousand distinct). Metadata is written by the parser only (keywords/meta.py)
        and read afterwards (EVE), so equal lists may be one object. The rule's Signature
        and its Alert hold the same dict, and still do."""
        if not meta or type(meta) is not dict:
            return meta
        got = self._metadata.get(id(meta))
        if got is None:
            values = self._values
            shared = {k: values.setdefault((k, tuple(v)), v) if type(v) is list else v for k, v in meta.items()}
            got = self._metadata[id(meta)] = (meta, shared)      # `meta` kept: its id stays its own
        return got[1]

    def _alert(self, obj: Any) -> Any:
        """A frozen slotted dataclass unpickles through `dataclasses._dataclass_setstate`,
        a Python call that walks `fields()` (24,651 of them for ET Open, ~0.1 s): its
        constructor does the same stores. `eve`/`eve_json` are the EVE writer's caches,
        empty in a freshly built engine and made again on first use."""
        return type(obj), (obj.signature_id, obj.signature, obj.gid, obj.rev, obj.category, obj.severity,
                           obj.action, self._metadata_of(obj.metadata), obj.match_on)

    def _signature(self, obj: Any) -> Any:
        """As pickle's own reduction (slots as a state dict, set in C on load), but the four
        empty flowbit/flowint sets of nearly every rule are one shared object, and the
        metadata goes through `_metadata_of`."""
        state = {}
        for name in copyreg._slotnames(type(obj)):
            try:
                value = getattr(obj, name)
            except AttributeError:
                continue
            if type(value) is frozenset and not value:
                value = _EMPTY_SET
            elif name == "metadata":
                value = self._metadata_of(value)
            state[name] = value
        return copyreg.__newobj__, (type(obj),), (None, state)

    def reducer_override(self, obj: Any) -> Any:
        by_type = self._by_type.get(type(obj))
        if by_type is not None:
            return by_type(obj)
        if type(obj) is types.FunctionType:
            q = obj.__qualname__
            if "<locals>" not in q and "<lambda>" not in q:
                return NotImplemented
            code = obj.__code__
            cells = tuple(c.cell_contents for c in obj.__closure__) if obj.__closure__ else None
            args = (obj.__module__, code.co_qualname, code.co_firstlineno, code.co_code, obj.__defaults__,
                    obj.__kwdefaults__, cells, obj.__dict__ or None)
            if not obj.__dict__ and _immutable((obj.__defaults__, cells)) and not obj.__kwdefaults__:
                key = (code, repr((obj.__defaults__, cells)))     # repr: 1, 1.0 and True differ
                first = self._shared.setdefault(key, obj)
                if first is not obj:
                    return _same, (first,)
            return _make_function, args
        if _hs is not None and type(obj) is _hs.Database:
            return _load_hyperscan, (_hs.dumpb(obj),)
        return NotImplemented


class _Unpickler(pickle.Unpickler):
    """Only netsentry's, the standard library's and the rule engines' classes (defence in depth:
    the HMAC already decides whether a file is unpickled at all)."""

    _ALLOWED = ("netsentry", "builtins", "re", "collections", "copyreg", "functools", "operator",
                "ipaddress", "enum", "pathlib", "_codecs", "re2", "pcre2", "hyperscan", "ahocorasick",
                "array", "types", "datetime", "_operator", "_collections", "_functools",
                "_collections_abc", "math", "decimal", "fractions", "struct", "zlib")

    _REFUSED = frozenset({"eval", "exec", "compile", "open", "__import__", "setattr", "delattr",
                          "input", "breakpoint", "globals", "locals", "vars"})

    def find_class(self, module: str, name: str) -> Any:
        if (module == "builtins" and name in self._REFUSED) or module.split(".", 1)[0] not in self._ALLOWED:
            raise CacheInvalid(f"refused global {module}.{name}")
        return super().find_class(module, name)


def _no_gc(fn: Any, *args: Any) -> Any:
    """Run `fn` with the cyclic GC off: (un)pickling a ruleset makes ~10^6 long-lived objects,
    and the collector's passes over them were a third of the load time."""
    was = gc.isenabled()
    gc.disable()
    try:
        return fn(*args)
    finally:
        if was:
            gc.enable()


class _MacWriter:
    """A file's write() that also feeds every byte to an HMAC."""

    __slots__ = ("f", "mac")

    def __init__(self, f: Any, mac: Any) -> None:
        self.f = f
        self.mac = mac

    def write(self, b: Any) -> int:
        self.mac.update(b)
        return self.f.write(b)


def dump(obj: Any, f: Any) -> None:
    _no_gc(_Pickler(f, protocol=pickle.HIGHEST_PROTOCOL).dump, obj)


def load(f: Any) -> Any:
    return _no_gc(_Unpickler(f).load)


def load_frozen(f: Any) -> Any:
    """`load`, then move everything alive out of the collector's sight (`gc.freeze()`).

    The unpickled ruleset (~10^6 objects, ET Open) is made with the collector off, so all
    of it sits in the youngest generation: the first young collection after the load walks
    it, then the next older one, then capture_gc's full `gc.collect()` walks it again. On
    an ET Open warm start those passes were 1.5 s of a 3.3 s replay (cProfile, charged to
    whichever call allocated next). The ruleset lives for the whole run, so it is frozen
    instead, as capture_gc would freeze it at the loop's start anyway. For the start-up
    load only: a reload runs in a thread beside the capture loop, whose live flows must
    stay collectable."""
    was = gc.isenabled()
    gc.disable()
    try:
        obj = _Unpickler(f).load()
        gc.freeze()
        return obj
    finally:
        if was:
            gc.enable()


def dumps(obj: Any) -> bytes:
    buf = io.BytesIO()
    dump(obj, buf)
    return buf.getvalue()


def loads(data: bytes | memoryview) -> Any:
    return load(io.BytesIO(data))


# --- the store ----------------------------------------------------------------------

def _check_private(st: os.stat_result, what: str, directory: bool = False) -> None:
    kind = stat.S_ISDIR if directory else stat.S_ISREG
    if not kind(st.st_mode):
        raise CacheUnusable(f"{what} is not a {'directory' if directory else 'regular file'}")
    if st.st_uid != os.geteuid():
        raise CacheUnusable(f"{what} is owned by uid {st.st_uid}, not by this user ({os.geteuid()})")
    if st.st_mode & 0o022:
        raise CacheUnusable(f"{what} is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})")


class RuleCache:
    """One cache directory: `get(key)` and `put(key, obj)` of authenticated entries."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        try:
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            _check_private(os.lstat(self.dir), f"cache directory {self.dir}", directory=True)
            if not os.access(self.dir, os.W_OK | os.X_OK):
                raise CacheUnusable(f"cache directory {self.dir} is not writable")
            self._secret = self._load_secret()
        except OSError as exc:
            raise CacheUnusable(f"cache directory {self.dir}: {exc.strerror or exc}") from None

    def _load_secret(self) -> bytes:
        path = self.dir / SECRET
        for _attempt in range(2):
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                # publish a complete secret with link(2): a concurrent first writer's link
                # fails with EEXIST and both then read the one that won
                fd, tmp = tempfile.mkstemp(prefix=".secret.", dir=self.dir)
                try:
                    os.write(fd, os.urandom(32))
                    os.fsync(fd)
                    os.close(fd)
                    try:
                        os.link(tmp, path)
                    except FileExistsError:
                        pass
                finally:
                    os.unlink(tmp)
                continue
            _check_private(st, f"cache secret {path}")
            if st.st_mode & 0o077:
                raise CacheUnusable(f"cache secret {path} is readable by others "
                                    f"(mode {stat.S_IMODE(st.st_mode):04o})")
            data = path.read_bytes()
            if len(data) != 32:
                raise CacheUnusable(f"cache secret {path} is damaged ({len(data)} bytes); delete it")
            return data
        raise CacheUnusable(f"cache secret {path} could not be created")

    def path_of(self, key: str) -> Path:
        return self.dir / (key + SUFFIX)

    def _mac(self, data: bytes | memoryview) -> bytes:
        return hmac.new(self._secret, data, hashlib.sha256).digest()

    def get(self, key: str, freeze: bool = False) -> Any:
        """The stored object for `key`, None when absent; CacheInvalid when present but unusable.
        `freeze`: `gc.freeze()` it once loaded (see `load_frozen`).

        Read from one open file twice (the HMAC over all of it, then the unpickling), never
        whole into memory: an ET Open entry is ~60 MB. Writers only ever rename whole files
        into place, so the inode read is not changed between the two passes."""
        path = self.path_of(key)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CacheInvalid(f"cannot open: {exc.strerror or exc}") from None
        with os.fdopen(fd, "rb") as f:
            try:
                _check_private(os.fstat(fd), "entry")
            except CacheUnusable as exc:
                raise CacheInvalid(str(exc)) from None
            lead = len(MAGIC) + _MAC_LEN
            head = f.read(lead + 4)
            if len(head) < len(MAGIC) or not head.startswith(MAGIC):
                raise CacheInvalid("not a netsentry rule cache file")
            if len(head) < lead + 4:
                raise CacheInvalid("truncated")
            mac = hmac.new(self._secret, head[lead:], hashlib.sha256)
            while chunk := f.read(1 << 20):
                mac.update(chunk)
            if not hmac.compare_digest(mac.digest(), head[len(MAGIC):lead]):
                raise CacheInvalid("authentication failed (damaged, truncated or not written by this user)")
            hlen = int.from_bytes(head[lead:], "big")
            f.seek(lead + 4)
            try:
                header = json.loads(f.read(hlen))
            except ValueError:
                raise CacheInvalid("bad header") from None
            if header.get("format") != FORMAT or header.get("version") != netsentry.__version__:
                raise CacheInvalid(f"written by netsentry {header.get('version')} (format {header.get('format')})")
            if header.get("key") != key:
                raise CacheInvalid("stored under another key")
            obj = load_frozen(f) if freeze else load(f)
        try:
            os.utime(path)          # last use, for pruning
        except OSError:
            pass
        return obj

    def put(self, key: str, obj: Any) -> Path:
        """Store `obj` under `key` atomically (temporary file, fsync, rename), then prune."""
        header = json.dumps({"format": FORMAT, "version": netsentry.__version__, "key": key,
                             "python": sys.version.split()[0], "created": time.time()}).encode()
        path = self.path_of(key)
        with atomic_write(path, prefix=".tmp.", suffix=SUFFIX) as f:   # prune() sweeps stale ".tmp." files
            f.write(MAGIC + bytes(_MAC_LEN))       # the HMAC, filled in once the body is written
            writer = _MacWriter(f, hmac.new(self._secret, digestmod=hashlib.sha256))
            writer.write(len(header).to_bytes(4, "big") + header)
            dump(obj, writer)
            f.flush()
            f.seek(len(MAGIC))
            f.write(writer.mac.digest())
        self.prune(keep=key)
        return path

    def prune(self, keep: str | None = None, max_entries: int = MAX_ENTRIES,
              max_bytes: int = MAX_BYTES) -> list[Path]:
        """Delete stale temporaries and the least recently used entries past either bound.

        Entries are counted newest first (by last use); once `max_entries` entries or
        `max_bytes` bytes are reached, every older one goes, except `keep`."""
        removed: list[Path] = []
        entries = []
        now = time.time()
        for p in self.dir.iterdir():
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if p.name.startswith(".tmp.") and now - st.st_mtime > 3600:
                removed.append(p)          # a writer that died mid-write
            elif p.name.endswith(SUFFIX) and not p.name.startswith("."):
                entries.append((st.st_mtime, st.st_size, p))
        entries.sort(key=lambda e: e[0], reverse=True)
        kept_name = f"{keep}{SUFFIX}"
        count = size = 0
        full = False
        for _mtime, nbytes, p in entries:
            count += 1
            size += nbytes
            full = full or count > max_entries or size > max_bytes
            if full and p.name != kept_name:
                removed.append(p)
        for p in removed:
            try:
                p.unlink()
            except OSError:
                pass
        return removed


# --- loading through the cache ---------------------------------------------------------

_warned: set[str] = set()
_warn_lock = threading.Lock()


def _log() -> Any:
    from netsentry.log import get_logger
    return get_logger()


def _warn_once(directory: Path, reason: str) -> None:
    with _warn_lock:
        if str(directory) in _warned:
            return
        _warned.add(str(directory))
    _log().warning("rule cache not used", reason=reason)


def load_ruleset(paths: Iterable[str | Path], config: Mapping[str, Any] | None = None,
                 background_write: bool = False) -> Any:
    """`load_rules` through the cache. On a hit the RuleSet carries its built engine, which
    `engine_for` hands to the sensor; on a miss the engine is stored once built (by a forked
    process when `background_write`: a live reload must not stall capture). Any thread."""
    from netsentry.rules.loader import _resolve, load_rules
    t0 = time.perf_counter()
    paths = list(paths)
    startup = not background_write
    # at start-up the rules are parsed with the collector off (its young and middle passes
    # over the growing ruleset were ~0.45 s of ET Open's 3.2 s parse), and `engine_for`
    # freezes what was built; a reload parses beside the capture loop, whose flows must
    # stay collectable, so it keeps the collector on
    build = (lambda: _no_gc(load_rules, paths, config)) if startup else (lambda: load_rules(paths, config))
    directory = cache_dir(config)
    if directory is None:
        rs = build()
        rs.cache = CacheOutcome("off", startup=startup)
        return rs
    try:
        store = RuleCache(directory)
    except CacheUnusable as exc:
        _warn_once(directory, str(exc))
        rs = build()
        rs.cache = CacheOutcome("unusable", str(exc), startup=startup)
        return rs
    files = [f for p in paths for f in _resolve(p, config)]
    stream = next((f for f in files if not _regular(f)), None)
    if stream is not None:
        # a FIFO, /dev/stdin, <(...): reading it for the key would consume what the loader
        # must read, and its content cannot be known without reading it
        rs = build()
        rs.cache = CacheOutcome("off", f"{stream} is not a regular file", startup=startup)
        return rs
    key = cache_key(files, config)
    reason = None
    try:
        entry = store.get(key, freeze=not background_write)
    except CacheInvalid as exc:
        entry, reason = None, str(exc)
    except Exception as exc:      # noqa: BLE001 - a damaged entry must never stop a start
        entry, reason = None, f"unreadable entry: {type(exc).__name__}: {exc}"
    if entry is not None:
        try:
            rs, engine = entry
            rs.engine = engine
            rs.engine_config = config_digest(config)
            rs.cache_store = None
        except (TypeError, ValueError, AttributeError) as exc:
            entry, reason = None, f"unexpected content: {exc}"
    if entry is not None:
        rs.load_seconds = time.perf_counter() - t0
        rs.cache = CacheOutcome("hit", path=str(store.path_of(key)), seconds=rs.load_seconds)
        _log().info("detect.rule_cache: hit", path=rs.cache.path, seconds=round(rs.load_seconds, 3))
        return rs
    if reason is not None:
        _log().warning(f"detect.rule_cache: rebuilt({reason})", path=str(store.path_of(key)))
    rs = build()
    if rs.no_cache:
        rs.cache = CacheOutcome("off", rs.no_cache, startup=startup)
        return rs
    rs.cache = CacheOutcome("rebuilt" if reason else "miss", reason, str(store.path_of(key)), startup=startup)
    rs.cache_store = (store, key, config_digest(config), background_write)
    return rs


def engine_for(ruleset: Any, config: Mapping[str, Any]) -> Any:
    """The signature engine of `ruleset`: the cached one if it came with it and was built for
    this configuration, else a new build (stored in the cache when the load missed). Main
    thread: the engine installs the pcre time limit (rules/pcre_limit.py)."""
    from netsentry.detect.engine import SignatureEngine
    engine = getattr(ruleset, "engine", None)
    outcome = getattr(ruleset, "cache", None)
    if engine is not None:
        ruleset.engine = None               # an engine has run-time state: hand it out once
        if ruleset.engine_config == config_digest(config):
            _revive(engine, config, getattr(ruleset, "signatures", ()))
            engine.cache_stats = outcome.counters() if outcome is not None else {}
            return engine
    # the build makes ~10^5 long-lived objects on top of the ruleset's 10^6: the collector's
    # passes over them cost as much as the build itself (ET Open: cProfile put 1.5 s on the
    # first function after the load that allocates, detect/actions.action_rank)
    engine = _no_gc(SignatureEngine, ruleset, config)
    pending = getattr(ruleset, "cache_store", None)
    if pending is not None and pending[2] == config_digest(config):
        ruleset.cache_store = None
        store, key, _digest, background = pending
        if background:
            _write_in_background(store, key, ruleset, engine)
            engine.cache_stats = outcome.counters() if outcome is not None else {}
            return engine
        t0 = time.perf_counter()
        saved_cache = ruleset.cache
        ruleset.cache = None
        try:
            path = store.put(key, (ruleset, engine))
        except Exception as exc:      # noqa: BLE001 - a cache that cannot be written is not an error
            _log().warning("rule cache not written", reason=f"{type(exc).__name__}: {exc}")
        else:
            _log().info(f"detect.rule_cache: {saved_cache}", path=str(path),
                        write_seconds=round(time.perf_counter() - t0, 3))
        finally:
            ruleset.cache = saved_cache
    if outcome is not None:
        engine.cache_stats = outcome.counters()
        if outcome.startup:
            # The ruleset and engine (ET Open: ~10^6 objects) live for the whole run and the
            # start-up parse and build leave no cycles behind (gc.collect() found 0 after
            # them), so they are frozen now instead of walked: capture_gc's full collection
            # at the loop's start was 0.8 s of a cold-cache ET Open replay (bench/README.md
            # "realc"). A cache hit is frozen by `load_frozen` already.
            gc.freeze()
    return engine


def _write_in_background(store: RuleCache, key: str, ruleset: Any, engine: Any) -> None:
    """Store the fresh engine from a forked grandchild: fork copies the engine as it is now,
    before the first packet changes it, and the main thread goes on at once (a reload swaps
    between two packets; pickling ET Open costs ~2.5 s CPU). The grandchild closes every
    inherited descriptor first (capture sockets, the control socket, outputs), logs nothing,
    and is re-parented to init, so nobody waits for it."""
    saved, ruleset.cache = ruleset.cache, None
    try:
        pid = os.fork()
    except OSError as exc:
        ruleset.cache = saved
        _log().warning("rule cache not written", reason=f"fork: {exc}")
        return
    if pid == 0:                                   # child: fork once more and leave
        status = 1
        try:
            if os.fork() == 0:
                os.closerange(3, os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 65536)
                store.put(key, (ruleset, engine))
                status = 0
            else:
                status = 0
        except BaseException:       # noqa: BLE001 - nothing to report to; the next start rebuilds
            status = 1
        finally:
            os._exit(status)
    ruleset.cache = saved
    os.waitpid(pid, 0)                             # the intermediate child exits at once
    _log().info(f"detect.rule_cache: {saved}", path=str(store.path_of(key)), write="background")


def _revive(engine: Any, config: Mapping[str, Any], sigs: Any = ()) -> None:
    """What SignatureEngine.__init__ does to the process, not to itself: the pcre time limit
    is a process-wide signal handler, installed again for a stored engine, and the pass
    rules that alert are registered again for the EVE verdict (on a hit their alerts said
    "alert" where a build says "pass")."""
    from netsentry.detect.actions import register_pass_alerts
    from netsentry.detect.engine import detect_settings
    from netsentry.detect.firewall import is_firewall_rule
    from netsentry.rules.pcre_limit import LIMIT
    register_pass_alerts([s for s in sigs if not is_firewall_rule(s)])
    _backend, _order, seconds = detect_settings(config)
    engine.pcre_limited = LIMIT.install(seconds)
    engine._pcre_timeouts_before = LIMIT.timeouts
    engine._pcre_disabled_before = LIMIT.flows_disabled
