"""Which path runs: the compiled extension modules or their pure-Python sources.

``setup.py`` compiles the modules in its ``COMPILED_MODULES`` list with
Cython into extension modules that sit next to their ``.py`` files. CPython's
path finder prefers an extension to a source file of the same name, so a
built tree runs compiled by default. `install` (called by
``netsentry/__init__.py`` before any submodule is imported) puts one finder
in front of that choice, which hands out the ``.py`` source instead when

* ``NETSENTRY_PURE=1`` is set (the pure-Python reference path, for tests,
  debugging and comparing output), or
* the extension is *stale*: its ``.py`` was changed after it was built (an
  edit in an editable install, a ``git checkout``). Running the old compiled
  code would silently ignore the edit; the source is the same program, only
  slower, so it is used until the next ``pip install -e .``.

`COMPILED` says whether any compiled module is in use; `status` gives the
one-line description ``netsentry version`` prints (the one place the path is
reported: the EVE stats record stays identical between the two paths, which
is what tests/test_compiled.py requires).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from importlib.machinery import ModuleSpec
from typing import Sequence

PURE_ENV = "NETSENTRY_PURE"
PURE: bool = os.environ.get(PURE_ENV, "") not in ("", "0")

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_EXT_SUFFIXES = tuple(importlib.machinery.EXTENSION_SUFFIXES)


def _extension_for(source: str) -> str | None:
    """The extension module built from `source` (``x.py`` -> ``x.cpython-311-...so``), if any."""
    stem = source[:-3]
    for suffix in _EXT_SUFFIXES:
        candidate = stem + suffix
        if os.path.exists(candidate):
            return candidate
    return None


def _stale(ext: str, source: str) -> bool:
    try:
        return os.stat(source).st_mtime_ns > os.stat(ext).st_mtime_ns
    except OSError:
        return False


def _declares_type(source: str) -> bool:
    """Whether `source` has a .pxd beside it that lays out an extension type other
    compiled modules cimport (decode/packet.pxd, flow/flow.pxd)."""
    try:
        with open(source[:-3] + ".pxd", encoding="utf-8") as fh:
            return "cdef class " in fh.read()
    except OSError:
        return False


class SourceFinder:
    """A meta-path finder for ``netsentry.*``: the ``.py`` source when the pure path is
    asked for or the extension is stale; otherwise defers (None) to the normal path
    finder, which loads the extension. One ``stat`` or two per netsentry module import."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: object = None) -> ModuleSpec | None:
        if not fullname.startswith("netsentry.") or not path:
            return None
        tail = fullname.rpartition(".")[2]
        for entry in path:
            source = os.path.join(entry, tail + ".py")
            if not os.path.isfile(source):
                continue
            ext = _extension_for(source)
            if ext is None or not (PURE or LAYOUT_STALE or _stale(ext, source)):
                return None
            return importlib.util.spec_from_file_location(fullname, source)
        return None


_FINDER = SourceFinder()


def install() -> None:
    """Put `SourceFinder` first on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, SourceFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _FINDER)


def built_modules() -> dict[str, bool]:
    """Every netsentry module that has an extension built: dotted name -> stale?"""
    found: dict[str, bool] = {}
    root = os.path.dirname(_PACKAGE_DIR)
    for dirpath, dirnames, filenames in os.walk(_PACKAGE_DIR):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            if not name.endswith(".py"):
                continue
            source = os.path.join(dirpath, name)
            ext = _extension_for(source)
            if ext is not None:
                dotted = os.path.relpath(source[:-3], root).replace(os.sep, ".")
                found[dotted] = _stale(ext, source)
    return dict(sorted(found.items()))


def _compiled_in_use() -> bool:
    return not PURE and any(not stale for stale in built_modules().values())


def _layout_stale() -> bool:
    """A stale module whose .pxd lays out a type (`Packet`, `Flow`): its source would
    define a plain class where every compiled module that cimports the layout expects
    the extension type, and those fail to import ("size changed"). Then every
    module runs its source until the next build."""
    root = os.path.dirname(_PACKAGE_DIR)
    return any(stale and _declares_type(os.path.join(root, *name.split(".")) + ".py")
               for name, stale in built_modules().items())


LAYOUT_STALE: bool = not PURE and _layout_stale()
COMPILED: bool = not LAYOUT_STALE and _compiled_in_use()


def status() -> str:
    """One line for ``netsentry version``: which path runs, and why."""
    built = built_modules()
    if not built:
        return "fast path: pure Python (no compiled modules built)"
    if PURE:
        return f"fast path: pure Python ({PURE_ENV}=1; {len(built)} compiled modules built, not used)"
    stale = [name for name, is_stale in built.items() if is_stale]
    if LAYOUT_STALE:
        return (f"fast path: pure Python (stale, and other modules cimport their types: "
                f"{', '.join(stale)}; rebuild: pip install -e .)")
    line = f"fast path: compiled ({len(built) - len(stale)} of {len(built)} modules, Cython)"
    if stale:
        line += f"; stale, running their .py: {', '.join(stale)} (rebuild: pip install -e .)"
    return line
