"""Datasets: `dataset`, `datarep` and (Suricata 8) `datajson`, the `datasets:` config section.

As Suricata's detect-dataset.c, detect-datarep.c and datasets*.c:

- ``dataset:<cmd>,<name>[, type <t>][, load <file>][, save <file>][, state <file>]
  [, memcap <size>][, hashsize <n>][, format csv|json|ndjson][, value_key <k>]
  [, array_key <k>][, context_key <k>][, remove_key][, match subdomain]`` on the
  current sticky buffer (the whole buffer is the value; transforms apply first):
  ``set`` adds it and matches when it was new, ``isset`` / ``isnotset`` look it up,
  ``unset`` removes it and matches when it was there.
- types: ``string`` (any bytes; files hold one base64 value a line), ``md5`` and
  ``sha256`` (the buffer is the 16/32-byte digest, e.g. after `to_md5`; files hold
  hex), ``ipv4`` (4 bytes: `ip.src`/`ip.dst`), ``ip``/``ipv6`` (16 bytes; an IPv4
  address is stored as its 4 bytes followed by 12 zeros, so `ip.src` of either
  family matches, and ``::ffff:a.b.c.d`` in a file is read as a.b.c.d).
- ``datarep:<name>, <op>, <value>[, load <file>, type <t>, memcap, hashsize]``:
  each value in the set carries a reputation (file lines ``value,rep``); the rule
  matches when the buffer is in the set and its reputation is ``>``, ``<`` or
  ``==`` the value.
- ``format json``/``ndjson`` (datajson): the set's values carry a JSON object
  (``value_key`` names the value inside it, dotted for nested keys; ``array_key``
  where the array is in a JSON file; ``remove_key`` drops the value's key from the
  object); an ``isset`` match puts the object in the alert under
  ``alert.context.<context_key>``.
- sets are global and named: every rule naming a set shares it (its type, load
  and save must agree), and the ``datasets:`` section of the configuration
  declares sets (``type``, ``load`` or ``state``, ``memcap``, ``hashsize``) and
  ``defaults`` (memcap, hashsize); ``datasets.rules.allow-write: no`` refuses rules
  that save, ``datasets.rules.allow-absolute-filenames`` allows absolute save paths.
- paths: ``load`` is relative to the rule file's directory (then the default rule
  path, then as given); ``save``/``state`` are relative to the data directory
  (``default-data-dir``: ``--data-dir``, else the log directory), absolute paths
  and ``..`` refused. Sets with ``save``/``state`` are written back when the sensor
  finishes (`save_all`), strings base64, one value a line, as Suricata does.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import os
from typing import Any

from netsentry.rules.buffers import register_buffer
from netsentry.rules.errors import RuleError
from netsentry.rules.inspect import Det, Item
from netsentry.rules.registry import RuleBuilder, keyword

TYPES = {"string": "string", "md5": "md5", "sha256": "sha256", "ipv4": "ipv4", "ip": "ip", "ipv6": "ip"}
_DIGEST_LEN = {"md5": 16, "sha256": 32}
SUBDOMAIN_MAX_LOOKUPS = 20        # Suricata's DATASET_SUBDOMAIN_MAX_LOOKUPS
DEFAULT_MEMCAP = 16 * 1024 * 1024
DEFAULT_HASHSIZE = 2048
_ENTRY_COST = 64                  # bytes a value costs beyond its own, for memcap

# the sets of this process, by name (Suricata: one global list); reset per rule load
SETS: dict[str, Dataset] = {}
_CONFIG: dict[str, Any] = {}


def _size(text: Any, what: str) -> int:
    t = str(text).strip().lower().replace(" ", "")
    mult = 1
    for suffix, m in (("kib", 1024), ("mib", 1024 ** 2), ("gib", 1024 ** 3), ("kb", 1024),
                      ("mb", 1024 ** 2), ("gb", 1024 ** 3), ("k", 1024), ("m", 1024 ** 2), ("g", 1024 ** 3)):
        if t.endswith(suffix):
            t, mult = t[: -len(suffix)], m
            break
    if not t.isdigit():
        raise RuleError(f"{what}: invalid size '{text}'")
    return int(t) * mult


class Dataset:
    """One named set: values (bytes keys) -> None, a reputation (int) or a JSON object."""

    def __init__(self, name: str, kind: str, load: str = "", save: str = "",
                 memcap: int = 0, hashsize: int = 0, fmt: str = "csv") -> None:
        self.name, self.kind, self.load, self.save, self.fmt = name, kind, load, save, fmt
        self.memcap = memcap or DEFAULT_MEMCAP
        self.hashsize = hashsize or DEFAULT_HASHSIZE
        self.values: dict[bytes, Any] = {}
        self.used = 0
        self.rep = False
        self.from_yaml = False

    # --- keys ------------------------------------------------------------------------
    def key(self, data: bytes) -> bytes | None:
        """The stored form of a buffer, or None when it cannot be one of this set's values."""
        kind = self.kind
        if kind == "string":
            return data
        if kind == "ip":
            n = len(data)
            return data + bytes(12) if n == 4 else data if n == 16 else None
        if kind == "ipv4":
            return data if len(data) == 4 else None
        return data if len(data) == _DIGEST_LEN[kind] else None

    def parse_text(self, text: str, where: str) -> bytes:
        """A value as a file (or `datajson`'s value_key) writes it."""
        kind = self.kind
        try:
            if kind == "string":
                return base64.b64decode(text, validate=True)
            if kind in _DIGEST_LEN:
                raw = binascii.unhexlify(text)
                if len(raw) != _DIGEST_LEN[kind]:
                    raise ValueError("wrong length")
                return raw
            if kind == "ipv4":
                return ipaddress.IPv4Address(text).packed
            if ":" in text:
                a6 = ipaddress.IPv6Address(text)
                return a6.ipv4_mapped.packed + bytes(12) if a6.ipv4_mapped is not None else a6.packed
            return ipaddress.IPv4Address(text).packed + bytes(12)
        except (ValueError, binascii.Error):
            raise RuleError(f"dataset {self.name}: bad {kind} value '{text}' in {where}") from None

    def text(self, key: bytes) -> str:
        kind = self.kind
        if kind == "string":
            return base64.b64encode(key).decode()
        if kind in _DIGEST_LEN:
            return key.hex()
        if kind == "ipv4":
            return str(ipaddress.IPv4Address(key))
        if not any(key[4:]):
            return str(ipaddress.IPv4Address(key[:4]))
        return str(ipaddress.IPv6Address(key))

    # --- operations --------------------------------------------------------------------
    def add(self, key: bytes, value: Any = None) -> bool:
        """Add `key`; True when it was new (and fit in the memcap)."""
        if key in self.values:
            return False
        cost = len(key) + _ENTRY_COST
        if self.used + cost > self.memcap:
            return False
        self.values[key] = value
        self.used += cost
        return True

    def remove(self, key: bytes) -> bool:
        if key not in self.values:
            return False
        del self.values[key]
        self.used -= len(key) + _ENTRY_COST
        return True

    def lookup_subdomain(self, data: bytes) -> bytes | None:
        """`match subdomain`: the parent domains of `data` (each suffix from a '.')."""
        lookups = 0
        for i in range(1, len(data)):
            if data[i] == 0x2E and data[i - 1] != 0x2E:
                lookups += 1
                if lookups > SUBDOMAIN_MAX_LOOKUPS:
                    break
                k = self.key(data[i:])
                if k is not None and k in self.values:
                    return k
        return None

    # --- files ---------------------------------------------------------------------------
    def load_file(self, path: str, value_key: str = "", array_key: str = "", remove_key: bool = False) -> None:
        if self.fmt in ("json", "ndjson"):
            self._load_json(path, value_key, array_key, remove_key)
            return
        try:
            with open(path, encoding="utf-8") as fh:
                lines = fh.read().splitlines()
        except FileNotFoundError:
            if self.save and self.save == path:
                return          # `state`: the file is made on the first save
            raise RuleError(f"dataset {self.name}: cannot open load file '{path}'") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise RuleError(f"dataset {self.name}: cannot read '{path}': {exc}") from None
        for n, line in enumerate(lines, 1):
            line = line.strip()
            if not line:
                continue
            where = f"{path}:{n}"
            value, sep, rep = line.partition(",")
            if self.rep:
                if not sep:
                    raise RuleError(f"dataset {self.name}: {where}: reputation missing (value,rep)")
                try:
                    r = int(rep.strip())
                except ValueError:
                    raise RuleError(f"dataset {self.name}: {where}: bad reputation '{rep}'") from None
                if not 0 <= r <= 65535:
                    raise RuleError(f"dataset {self.name}: {where}: reputation {r} out of range 0..65535")
                self.add(self.parse_text(value.strip(), where), r)
            else:
                self.add(self.parse_text(value.strip(), where))

    def _load_json(self, path: str, value_key: str, array_key: str, remove_key: bool) -> None:
        if not value_key:
            raise RuleError(f"dataset {self.name}: format {self.fmt} needs value_key")
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise RuleError(f"dataset {self.name}: cannot read '{path}': {exc.strerror or exc}") from None
        try:
            if self.fmt == "ndjson":
                entries = [json.loads(line) for line in text.splitlines() if line.strip()]
            else:
                doc = json.loads(text)
                if array_key:
                    for part in array_key.split("."):
                        doc = doc.get(part) if isinstance(doc, dict) else None
                entries = doc if isinstance(doc, list) else None
                if entries is None:
                    raise RuleError(f"dataset {self.name}: '{path}' has no JSON array"
                                    + (f" at '{array_key}'" if array_key else ""))
        except ValueError as exc:
            raise RuleError(f"dataset {self.name}: '{path}': bad JSON: {exc}") from None
        parts = value_key.split(".")
        for entry in entries:
            node: Any = entry
            for part in parts:
                node = node.get(part) if isinstance(node, dict) else None
            if not isinstance(node, str):
                continue          # Suricata skips an entry without the value key
            if self.kind == "string":
                key = node.encode()
            else:
                key = self.parse_text(node, path)
            if remove_key:
                parent = entry
                for part in parts[:-1]:
                    parent = parent[part]
                del parent[parts[-1]]
            self.add(key, entry)

    def write(self) -> None:
        """`save`/`state`: every value, one a line (strings base64), as DatasetsSave."""
        if not self.save:
            return
        tmp = f"{self.save}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            for key in self.values:
                fh.write(self.text(key) + "\n")
        os.replace(tmp, self.save)


# --- configuration and paths -------------------------------------------------------------

def configure(config: Any) -> None:
    """A rule load starts: the `datasets:` section and the data directory; sets are made
    anew (Suricata builds them again on a reload) and the configured ones declared."""
    from netsentry.config import get
    cfg = config or {}
    section = get(cfg, "datasets", None) or {}
    _CONFIG.clear()
    _CONFIG["data_dir"] = str(get(cfg, "default-data-dir", "") or os.getcwd())
    _CONFIG["rule_path"] = str(get(cfg, "default-rule-path", "") or "")
    rules = section.get("rules") if isinstance(section, dict) else None
    rules = rules if isinstance(rules, dict) else {}
    _CONFIG["allow_write"] = _truthy(rules.get("allow-write", True))
    _CONFIG["allow_absolute"] = _truthy(rules.get("allow-absolute-filenames", False))
    defaults = section.get("defaults") if isinstance(section, dict) else None
    defaults = defaults if isinstance(defaults, dict) else {}
    _CONFIG["memcap"] = _size(defaults["memcap"], "datasets.defaults.memcap") if defaults.get("memcap") else 0
    _CONFIG["hashsize"] = int(defaults["hashsize"]) if defaults.get("hashsize") else 0
    SETS.clear()
    if not isinstance(section, dict):
        return
    for name, spec in section.items():
        if name in ("defaults", "rules", "limits", "enabled") or not isinstance(spec, dict) or "type" not in spec:
            continue
        kind = TYPES.get(str(spec["type"]))
        if kind is None:
            raise RuleError(f"datasets.{name}: unknown type '{spec['type']}'")
        save = load = ""
        if spec.get("state"):
            save = load = _data_path(str(spec["state"]))
        elif spec.get("load"):
            load = _data_path(str(spec["load"]), for_load=True)
        ds = Dataset(str(name), kind, load, save,
                     _size(spec["memcap"], f"datasets.{name}.memcap") if spec.get("memcap") else _CONFIG["memcap"],
                     int(spec.get("hashsize") or 0) or _CONFIG["hashsize"])
        ds.from_yaml = True
        if load:
            ds.load_file(load)
        SETS[ds.name] = ds


def _truthy(v: Any) -> bool:
    return v is True or str(v).lower() in ("yes", "true", "on", "1")


def _data_dir() -> str:
    return _CONFIG.get("data_dir") or os.getcwd()


def _data_path(path: str, for_load: bool = False) -> str:
    """DatasetGetPath: relative to the data directory (a load falls back to the path as given)."""
    if os.path.isabs(path):
        return path
    full = os.path.join(_data_dir(), path)
    if for_load and not os.path.exists(full):
        return path
    return full


def _save_path(path: str) -> str:
    if not _CONFIG.get("allow_write", True):
        raise RuleError("rules containing save/state datasets have been disabled "
                        "(datasets.rules.allow-write)")
    if not _CONFIG.get("allow_absolute", False):
        if os.path.isabs(path):
            raise RuleError(f"absolute paths not allowed: {path} (datasets.rules.allow-absolute-filenames)")
        if ".." in path.replace("\\", "/").split("/"):
            raise RuleError(f"directory traversals not allowed: {path}")
    return path if os.path.isabs(path) else os.path.join(_data_dir(), path)


def _load_path(b: RuleBuilder, path: str) -> str:
    """SetupLoadPath: beside the rule file, then in the default rule path, else as given."""
    if os.path.isabs(path):
        return path
    rule_file = b.env.state.get("rule_file") if b.env is not None else None
    if rule_file:
        p = os.path.join(os.path.dirname(rule_file), path)
        if os.path.exists(p):
            return p
    rule_path = _CONFIG.get("rule_path")
    if rule_path:
        p = os.path.join(rule_path, path)
        if os.path.exists(p):
            return p
    return path


def get_set(name: str, kind: str | None, load: str, save: str, memcap: int, hashsize: int,
            fmt: str = "csv", rep: bool = False, value_key: str = "", array_key: str = "",
            remove_key: bool = False) -> Dataset:
    """DatasetGetOrCreate: the named set (its type, load and save must agree), made and
    loaded on first use."""
    ds = SETS.get(name)
    if ds is not None:
        if kind is not None and ds.kind != kind:
            raise RuleError(f"dataset {name} already exists and is of type {ds.kind}")
        if (load or save) and (ds.load != load or ds.save != save):
            which = "save" if ds.save != save else "load"
            raise RuleError(f"dataset {name} {which} mismatch: "
                            f"{getattr(ds, which) or '(none)'} != {save if which == 'save' else load}")
        return ds
    if kind is None:
        raise RuleError(f"dataset {name} not defined (give its type)")
    ds = Dataset(name, kind, load, save, memcap or _CONFIG.get("memcap", 0),
                 hashsize or _CONFIG.get("hashsize", 0), fmt)
    ds.rep = rep
    if load:
        ds.load_file(load, value_key, array_key, remove_key)
    SETS[name] = ds
    return ds


def save_all() -> list[str]:
    """Write back every set with `save`/`state` (the sensor calls it when it finishes);
    the errors, one line each (a full disk must not lose the run's records)."""
    errors = []
    for ds in SETS.values():
        if ds.save:
            try:
                ds.write()
            except OSError as exc:
                errors.append(f"dataset {ds.name}: cannot save '{ds.save}': {exc.strerror or exc}")
    return errors


# --- inspection items ---------------------------------------------------------------------

class DatasetMatch(Item):
    """`dataset:` on the buffer it follows (the whole buffer, as Suricata's
    DetectDatasetBufferMatch)."""

    def __init__(self, ds: Dataset, cmd: str, subdomain: bool, context_key: str) -> None:
        self.ds, self.cmd, self.subdomain, self.context_key = ds, cmd, subdomain, context_key
        self.captured: Any = None       # datajson: the object the last isset match found

    def inspect(self, buf: bytes, blen: int, det: Det) -> bool:
        if blen and self._match(buf[:blen] if blen != len(buf) else buf):
            nxt = self.next
            return True if nxt is None else nxt(buf, blen, det)
        return False

    def _match(self, data: bytes) -> bool:
        ds = self.ds
        key = ds.key(data)
        cmd = self.cmd
        if cmd == "set":
            return key is not None and ds.add(key)
        if cmd == "unset":
            return key is not None and ds.remove(key)
        found = key if key is not None and key in ds.values else None
        if found is None and self.subdomain:
            found = ds.lookup_subdomain(data)
        if cmd == "isnotset":
            return found is None
        if found is None:
            return False
        if self.context_key:
            value = ds.values[found]
            if value is not None:
                self.captured = value
        return True


class DatarepMatch(Item):
    def __init__(self, ds: Dataset, op: str, value: int) -> None:
        self.ds, self.op, self.value = ds, op, value

    def inspect(self, buf: bytes, blen: int, det: Det) -> bool:
        ds = self.ds
        key = ds.key(buf[:blen] if blen != len(buf) else buf)
        if key is None or key not in ds.values:
            return False
        rep = ds.values[key]
        if rep is None:
            return False
        op = self.op
        if not (rep > self.value if op == ">" else rep < self.value if op == "<" else rep == self.value):
            return False
        nxt = self.next
        return True if nxt is None else nxt(buf, blen, det)


# --- alert context (datajson) ------------------------------------------------------------

def _store_context(item: DatasetMatch, sig: Any) -> Any:
    """The rule's post-match step: the object its datajson match found goes to the packet
    as the alert's context (`pkt.pktvars` with the rule as owner, as a pcre's `alert:`
    capture: output/eve.py with_vars writes it as ``alert.context.<context_key>``)."""
    def store(pkt: Any, flow: Any) -> None:
        found = item.captured
        if found is None:
            return
        item.captured = None
        if pkt.pktvars is None:
            pkt.pktvars = []
        pkt.pktvars.append(((sig.gid, sig.sid), item.context_key, found))
    return store


# --- keywords -----------------------------------------------------------------------------

def _split(arg: str) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for part in arg.split(","):
        part = part.strip(" \t")
        if not part:
            continue
        k, _, v = part.partition(" ")
        out.append((k, v.strip(" \t") if v.strip(" \t") else None))
    return out


def _check_name(name: str) -> str:
    if not name or any(c in name for c in " \t"):
        raise RuleError(f"dataset: invalid set name '{name}' (spaces are not allowed)")
    if len(name) > 63:
        raise RuleError(f"dataset: set name '{name}' too long (max 63)")
    return name


def _sticky(b: RuleBuilder, what: str) -> None:
    if b.buffer == "pkt_data" and "pkt_data" not in b.seen:
        raise RuleError(f"{what}: datasets are only supported for sticky buffers")
    b.require_packet_buffer(what)


def _mark(b: RuleBuilder) -> None:
    if b.env is not None:
        b.env.state["datasets_used"] = True


@keyword("dataset", help="dataset:set|isset|isnotset|unset,NAME[,type T,load F,save F,state F,...]; "
                         "the buffer's value in a named set")
def dataset(b: RuleBuilder, arg: str | None) -> None:
    _sticky(b, "dataset")
    parts = _split(arg or "")
    if len(parts) < 2 or parts[0][1] is not None or parts[1][1] is not None:
        raise RuleError(f"dataset: expected 'cmd,name[,options]', got '{arg}'")
    cmd, name = parts[0][0], _check_name(parts[1][0])
    if cmd not in ("set", "isset", "isnotset", "unset"):
        raise RuleError(f"dataset: unknown command '{cmd}' (set, isset, isnotset, unset)")
    kind = None
    load = save = state = ""
    memcap = hashsize = 0
    fmt = ""
    value_key = array_key = context_key = ""
    remove_key = subdomain = False
    for k, v in parts[2:]:
        if v is None:
            if k == "remove_key":
                remove_key = True
                continue
            raise RuleError(f"dataset: option '{k}' needs a value")
        if k == "type":
            kind = TYPES.get(v)
            if kind is None:
                raise RuleError(f"dataset: bad type '{v}' (string, md5, sha256, ipv4, ip)")
        elif k in ("load", "save", "state", "format"):
            if {"load": load, "save": save, "state": state, "format": fmt}[k]:
                raise RuleError(f"dataset: '{k}' can only appear once")
            if k == "load":
                load = v
            elif k == "save":
                save = v
            elif k == "state":
                state = v
            else:
                if v not in ("csv", "json", "ndjson", "jsonline"):
                    raise RuleError(f"dataset: unknown format '{v}' (csv, json, ndjson)")
                fmt = "ndjson" if v == "jsonline" else v
        elif k == "memcap":
            memcap = _size(v, "dataset memcap")
        elif k == "hashsize":
            hashsize = _size(v, "dataset hashsize")
        elif k == "match":
            if v != "subdomain":
                raise RuleError(f"dataset: unknown match mode '{v}'")
            subdomain = True
        elif k == "value_key":
            value_key = v
        elif k == "array_key":
            array_key = v
        elif k == "context_key":
            if not v.replace("_", "").isalnum():
                raise RuleError("dataset: context_key can only contain alphanumeric characters and underscores")
            context_key = v
        else:
            raise RuleError(f"dataset: unknown option '{k}'")
    if state and (load or save):
        raise RuleError("dataset: 'state' can not be mixed with 'load' and 'save'")
    fmt = fmt or "csv"
    if fmt != "csv":
        if cmd in ("set", "unset"):
            raise RuleError(f"dataset: json format is not supported for '{cmd}' command")
        if not value_key:
            raise RuleError(f"dataset: format {fmt} needs value_key")
        context_key = context_key or name
    if state:
        load = save = _save_path(state)
    else:
        if save:
            save = _save_path(save)
        if load:
            load = _load_path(b, load)
    _mark(b)
    ds = get_set(name, kind, load, save, memcap, hashsize, fmt, False, value_key, array_key, remove_key)
    item = DatasetMatch(ds, cmd, subdomain, context_key if ds.fmt != "csv" else "")
    b.add_item(item)
    if item.context_key:
        b.post_actions.append(_store_context(item, b.sig))


@keyword("datarep", help="datarep:NAME,>|<|==,VALUE[,load F,type T]; the buffer's reputation in a named set")
def datarep(b: RuleBuilder, arg: str | None) -> None:
    _sticky(b, "datarep")
    parts = _split(arg or "")
    if len(parts) < 3 or any(v is not None for _, v in parts[:3]):
        raise RuleError(f"datarep: expected 'name,op,value[,options]', got '{arg}'")
    name, op, value = _check_name(parts[0][0]), parts[1][0], parts[2][0]
    if op not in (">", "<", "=="):
        raise RuleError(f"datarep: unknown operator '{op}' (>, <, ==)")
    if not value.isdigit() or int(value) > 65535:
        raise RuleError(f"datarep: bad value '{value}' (0..65535)")
    kind = None
    load = ""
    memcap = hashsize = 0
    for k, v in parts[3:]:
        if v is None:
            raise RuleError(f"datarep: option '{k}' needs a value")
        if k == "type":
            kind = TYPES.get(v)
            if kind is None:
                raise RuleError(f"datarep: bad type '{v}'")
        elif k == "load":
            load = v
        elif k == "memcap":
            memcap = _size(v, "datarep memcap")
        elif k == "hashsize":
            hashsize = _size(v, "datarep hashsize")
        else:
            raise RuleError(f"datarep: unknown option '{k}'")
    if load and kind is None:
        raise RuleError("datarep: if load is used type must be set as well")
    if load:
        load = _load_path(b, load)
    _mark(b)
    ds = get_set(name, kind, load, "", memcap, hashsize, "csv", True)
    b.add_item(DatarepMatch(ds, op, int(value)))


# ip.src / ip.dst (Suricata 8): the packet's source / destination address as raw bytes
# (4 for IPv4, 16 for IPv6), the buffers `dataset` and `datarep` of type ip read
register_buffer("ip.src", lambda pkt, flow: pkt.src or None)
register_buffer("ip.dst", lambda pkt, flow: pkt.dst or None)


@keyword("ip.src", value="none", help="ip.src; sticky buffer: the packet's source address (raw bytes)")
def ip_src(b: RuleBuilder, arg: str | None) -> None:
    b.select_buffer("ip.src")


@keyword("ip.dst", value="none", help="ip.dst; sticky buffer: the packet's destination address (raw bytes)")
def ip_dst(b: RuleBuilder, arg: str | None) -> None:
    b.select_buffer("ip.dst")
