"""Configuration: bundled defaults, a user file, and `--set` overrides.

The bundled ``data/netsentry.yaml`` is both the default configuration and the
schema. A user file or ``--set`` may only use keys that exist there, with a
value of the same type, so a typo (``flow.max-flow``) stops start-up with the
dotted key path instead of silently running with the default. Keys whose
default is an empty list or map are free-form: the stage that owns the
section validates them (we cannot know their shape here).

Errors are `ConfigError` whose text is the one line the CLI prints, e.g.::

    config error: flow.max-flows: expected an integer, got 'lots' (from /etc/netsentry.yaml)

Variables such as ``$HOME_NET`` are left as text; the rules loader resolves
them.
"""

from __future__ import annotations

import copy
import difflib
import fnmatch
import math
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

Config = dict[str, Any]

# Maps whose default is not empty but which users may extend with their own
# keys (Suricata lets you define any address/port group). Values must be
# text or a number; the rules loader checks the syntax.
OPEN_MAPS: dict[str, tuple[type, ...]] = {
    "vars.address-groups": (str,),
    "vars.port-groups": (str, int),
}

# Keys that take either of two types: the worker count is a number or "auto".
MIXED_KEYS: dict[str, tuple[type, ...]] = {
    "runtime.workers": (int, str),
    "outputs.eve-log.alert.payload-buffer-size": (int, str),    # 4096 or 4kb
    "app-layer.protocols.smtp.mime.body-md5": (bool, str),      # yes, no or auto
    "app-layer.protocols.smtp.inspected-tracker.content-limit": (int, str),
    "app-layer.protocols.smtp.inspected-tracker.content-inspect-min-size": (int, str),
    "app-layer.protocols.smtp.inspected-tracker.content-inspect-window": (int, str),
    # the round-12 parsers: yes / no / detection-only; sizes as numbers or 1mb, 64kb
    **{f"app-layer.protocols.{p}.enabled": (bool, str)
       for p in ("mqtt", "ntp", "tftp", "snmp", "krb5", "rfb", "dhcp", "telnet", "websocket", "nfs", "quic")},
    "app-layer.protocols.mqtt.max-msg-length": (int, str),
    "app-layer.protocols.tls.ja4-fingerprints": (bool, str),   # yes, no or auto
    "app-layer.protocols.websocket.max-payload-size": (int, str),
    "outputs.eve-log.mqtt.string-log-limit": (int, str),
}

# The allowed range of every numeric key (int or float default in the bundled
# YAML), checked while merging, so a value out of range stops start-up with its
# key path instead of reaching orjson ("Integer exceeds 64-bit range") or a
# stage as an absurd size. First matching pattern (fnmatch on the dotted path)
# wins; keys no pattern names get DEFAULT_RANGE. Stages may check tighter
# (e.g. anomaly windows > 0). NaN and infinities are never accepted.
U32 = (1 << 32) - 1
NUMERIC_RANGES: list[tuple[str, float, float]] = [
    ("vars.port-groups.*", 0, 65535),
    ("flow.max-flows", 1, U32),                   # flows held at once
    ("flow.timeouts.*", 0, U32),                  # seconds (Suricata: uint32)
    ("detect.pcre-time-limit", 0, 60),            # seconds
    ("detect.stream-tx-log-limit", 0, 255),
    ("detect.pcre.*", 0, U32),
    ("outputs.eve-log.community-id-seed", 0, 65535),   # uint16 in the Community ID spec
    ("stats.interval", 1, 86400),                 # seconds between stats records
    ("runtime.workers", 1, 1024),                 # worker processes
    ("anomaly.criticality-factors.*", 0, 1),
    ("anomaly.dns-tunnel.entropy", 0, 8),         # bits per character
    ("anomaly.*", 0, U32),
]
DEFAULT_RANGE: tuple[float, float] = (0, U32)

_TYPE_NAMES: dict[type, str] = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "a mapping",
}


class ConfigError(Exception):
    """A configuration problem; ``str(err)`` is the complete one-line message."""

    def __init__(self, reason: str, key: str = "", source: str = "") -> None:
        self.reason = reason
        self.key = key
        self.source = source
        text = f"config error: {key}: {reason}" if key else f"config error: {reason}"
        if source:
            text += f" (from {source})"
        super().__init__(text)


def default_config_path() -> Path:
    return Path(str(resources.files("netsentry") / "data" / "netsentry.yaml"))


def load_defaults() -> Config:
    """The bundled defaults (a fresh copy each call: callers may mutate it)."""
    return _load_yaml_file(default_config_path())


def load_config(path: str | Path | None = None, overrides: Iterable[str] = (),
                suricata: str | Path | None = None) -> Config:
    """Defaults, then a Suricata configuration `suricata` (its shared subset, see
    suricata_config.py), then the user file `path` (if any; a Suricata file is
    recognised and read the same way), then each ``key.path=value`` override."""
    schema = load_defaults()
    cfg = copy.deepcopy(schema)
    for file in (suricata, path):
        if not file:                # None, or '' (suricata-verify's {config} for a test without one)
            continue
        user = _load_yaml_file(Path(file), redefine=file is suricata)
        if user is None:            # an empty file (or only comments) changes nothing
            user = {}
        if not isinstance(user, dict):
            raise ConfigError(f"expected a mapping at the top level, got {_describe(user)}",
                              source=str(file))
        if file is suricata or _suricata_config().looks_like_suricata(user):
            user = _from_suricata(user, Path(file))
        elif isinstance(user.get("threshold-file"), str):
            user["threshold-file"] = _beside(user["threshold-file"], Path(file))
        _merge(cfg, schema, user, "", str(file))
    for item in overrides:
        try:
            apply_override(cfg, schema, item)
        except ConfigError as exc:
            # Suricata dialect (--suricata-config given, even empty): a Suricata key netsentry
            # does not have is translated where it has a meaning here, else noted and ignored,
            # as the keys of a suricata.yaml are. Keys netsentry has keep their strict checks.
            if suricata is None or not _not_ours(exc):
                raise
            _suricata_override(cfg, schema, item)
    return cfg


def _not_ours(exc: ConfigError) -> bool:
    """An override error that means "netsentry has no such key" (not "bad value")."""
    return exc.reason.startswith("unknown key") or exc.reason.endswith("got a mapping")


def _suricata_override(cfg: Config, schema: Config, item: str) -> None:
    key, _, text = item.partition("=")
    tree: Any = _parse_scalar(text)
    for part in reversed(key.strip().split(".")):
        tree = {part: tree}
    from netsentry.output import EVENT_TYPES
    translated, ignored = _suricata_config().translate(tree, Path.cwd() / "suricata.yaml", EVENT_TYPES,
                                                      whole_file=False)
    if translated:
        _merge(cfg, schema, translated, "", f"--set {item}")
    if ignored:
        _NOTES.append(("suricata option netsentry does not use was ignored", {"option": f"--set {item}"}))


def apply_override(cfg: Config, schema: Config, item: str) -> None:
    """Apply one ``--set key.path=value`` (value parsed as a YAML scalar)."""
    key, sep, text = item.partition("=")
    key = key.strip()
    source = f"--set {item}"
    if not sep or not key:
        raise ConfigError(f"--set expects key.path=value, got {item!r}")
    value = _parse_scalar(text)
    parts = key.split(".")
    # Build the nested mapping the override stands for and merge it like a
    # file, so both paths share one set of checks and messages.
    tree: Any = value
    expected = _schema_at(schema, parts)
    if isinstance(expected, _OpenValue):
        if not _is_any(value, expected.types):
            tree = text.strip()
    elif isinstance(expected, str) and not isinstance(value, str):
        tree = text.strip()         # `--set vars.address-groups.HOME_NET=[10.0.0.0/8]` is text, not a list
    current = get(cfg, ".".join(parts[:-1])) if len(parts) > 1 and parts[-1].isdigit() else None
    if isinstance(current, list):
        # `--set reputation-files.0=FILE`: item N of a list (Suricata's sequence node "0"),
        # N past the end appends
        i = int(parts[-1])
        items = list(current)
        if i < len(items):
            items[i] = tree
        else:
            items.append(tree)
        tree, parts = items, parts[:-1]
    for part in reversed(parts):
        tree = {part: tree}
    _merge(cfg, schema, tree, "", source)


def get(cfg: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    """``get(cfg, "outputs.eve-log.filename")``; `default` when any level is missing."""
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


# --- internals ----------------------------------------------------------------

def _suricata_config() -> Any:
    from netsentry import suricata_config      # imports this module: load it late
    return suricata_config


def _from_suricata(doc: dict, path: Path) -> dict:
    """A Suricata configuration's shared subset as a netsentry tree; the rest is noted once."""
    from netsentry.output import EVENT_TYPES
    tree, ignored = _suricata_config().translate(doc, path, EVENT_TYPES)
    if ignored:
        _NOTES.append(("suricata config: keys netsentry does not use were ignored",
                       {"file": str(path), "keys": ", ".join(ignored)}))
    return tree


# Notes found while loading, logged by the caller once logging is set up (the
# logging level is itself configuration, so it cannot be set up earlier).
_NOTES: list[tuple[str, dict[str, str]]] = []


def take_notes() -> list[tuple[str, dict[str, str]]]:
    """The load notes since the last call (message, fields), for the caller to log."""
    notes = list(_NOTES)
    _NOTES.clear()
    return notes


def _beside(value: str, config_file: Path) -> str:
    """A relative file name in a config file means the file next to it, when one is there."""
    if value and not Path(value).is_absolute():
        candidate = config_file.resolve().parent / value
        if candidate.exists():
            return str(candidate)
    return value


class _OpenValue:
    """What `_schema_at` returns for a new key inside one of the OPEN_MAPS."""

    def __init__(self, types: tuple[type, ...]) -> None:
        self.types = types


def _is_any(value: Any, types: tuple[type, ...]) -> bool:
    return any(_is_type(value, t) for t in types)


def _schema_at(schema: Any, parts: list[str]) -> Any:
    """The default value at `parts`, an _OpenValue inside an open map, None if unknown/free-form."""
    node = schema
    path = ""
    for part in parts:
        if path in OPEN_MAPS and isinstance(node, dict) and part not in node:
            return _OpenValue(OPEN_MAPS[path])
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
        path = f"{path}.{part}" if path else part
    return node


def _load_yaml_file(path: Path, redefine: bool = False) -> Any:
    """A YAML file; a key given twice in one mapping is an error, except with `redefine`
    (a Suricata configuration: Suricata keeps the last, "Configuration node redefined",
    and so do we, with a note)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)     # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as exc:
        if redefine:
            _NOTES.append(("suricata config: a key given twice in one mapping, the last kept "
                           "(as Suricata: configuration node redefined)",
                           {"file": str(path), "key": exc.key, "line": exc.line, "first_line": exc.first_line}))
            return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
        raise ConfigError(f"{path}:{exc.line}:{exc.column}: duplicate key '{exc.key}' "
                          f"(first at line {exc.first_line}; YAML would silently keep the last)") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        reason = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            reason = f"{exc.problem} ({exc.context})"
        raise ConfigError(f"{where}: invalid YAML: {reason}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None


class _DuplicateKey(Exception):
    def __init__(self, key: str, line: int, column: int, first_line: int) -> None:
        super().__init__(key)
        self.key, self.line, self.column, self.first_line = key, line, column, first_line


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader that refuses a key given twice in one mapping (the last would win unseen).

    On LibYAML's parser where PyYAML has it (same SafeConstructor, same marks): the pure
    Python one spent ~70 ms of a ~1 s warm-cache start on the bundled defaults alone."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue        # `<<: *anchor` merges are not duplicates
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:
                continue        # unhashable: construct_mapping reports it
            mark = key_node.start_mark
            if first is not None:
                raise _DuplicateKey(str(key), mark.line + 1, mark.column + 1, first)
            seen[key] = mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _parse_scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def _merge(cfg: dict, schema: dict, user: dict, prefix: str, source: str) -> None:
    """Validate `user` against `schema` and merge it into `cfg` in place."""
    open_types = OPEN_MAPS.get(prefix)
    for key, value in user.items():
        if not isinstance(key, str):
            key = str(key)
        path = f"{prefix}.{key}" if prefix else key
        # in an open map every value takes the map's types, a key the defaults name too
        # (FTP_PORTS: 21 there, '21' or "[21,2121]" in a Suricata file)
        if key not in schema or (open_types is not None and not isinstance(schema[key], dict)):
            if open_types is not None:
                if not _is_any(value, open_types):
                    names = " or ".join(_TYPE_NAMES[t].split(" ", 1)[1] for t in open_types)
                    raise ConfigError(f"expected a {names}, got {_describe(value)}", path, source)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    check_range(path, value, source)
                cfg[key] = value
                continue
            raise ConfigError(_unknown_key_reason(key, schema), path, source)
        default = schema[key]
        _check_type(default, value, path, source)
        if isinstance(default, (int, float)) and not isinstance(default, bool) and not isinstance(value, str):
            check_range(path, value, source)
        if isinstance(default, dict) and default:
            if value is None:       # `flow:` with nothing under it keeps the defaults
                continue
            _merge(cfg[key], default, value, path, source)
        else:
            cfg[key] = copy.deepcopy(value)


def numeric_range(path: str) -> tuple[float, float]:
    """The (low, high) bounds of the numeric key at dotted `path`."""
    for pattern, lo, hi in NUMERIC_RANGES:
        if fnmatch.fnmatchcase(path, pattern):
            return lo, hi
    return DEFAULT_RANGE


def check_range(path: str, value: Any, source: str = "") -> None:
    """ConfigError naming `path` unless `value` is a finite number within its range."""
    lo, hi = numeric_range(path)
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"expected a finite number from {_num(lo)} to {_num(hi)}, got {value}", path, source)
    if not lo <= value <= hi:
        shown = str(value) if len(str(value)) <= 24 else f"{str(value)[:20]}... ({len(str(value))} digits)"
        raise ConfigError(f"{shown} is out of range (allowed: {_num(lo)} to {_num(hi)})", path, source)


def _num(x: float) -> str:
    return str(int(x)) if x == int(x) else f"{x:g}"


def _check_type(default: Any, value: Any, path: str, source: str) -> None:
    mixed = MIXED_KEYS.get(path)
    if mixed is not None:
        if not _is_any(value, mixed):
            names = " or ".join(_TYPE_NAMES[t] for t in mixed)
            raise ConfigError(f"expected {names}, got {_describe(value)}", path, source)
        return
    if default is None:
        return                      # a null default accepts anything
    if isinstance(default, dict):
        if value is None and default:
            return
        if not isinstance(value, dict):
            raise ConfigError(f"expected a mapping, got {_describe(value)}", path, source)
        return
    if isinstance(default, list):
        if not isinstance(value, list):
            raise ConfigError(f"expected a list, got {_describe(value)}", path, source)
        if default:                 # non-empty default list: items like its items
            item_type = type(default[0])
            for i, item in enumerate(value):
                if not _is_type(item, item_type):
                    raise ConfigError(
                        f"item {i + 1}: expected {_TYPE_NAMES.get(item_type, item_type.__name__)},"
                        f" got {_describe(item)}", path, source)
        return
    if not _is_type(value, type(default)):
        want = _TYPE_NAMES.get(type(default), type(default).__name__)
        raise ConfigError(f"expected {want}, got {_describe(value)}", path, source)


def _is_type(value: Any, want: type) -> bool:
    if want is bool:
        return isinstance(value, bool)
    if want is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if want is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, want)


def _unknown_key_reason(key: str, schema: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(key, [str(k) for k in schema], n=1)
    if close:
        return f"unknown key (did you mean '{close[0]}'?)"
    return "unknown key"


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
