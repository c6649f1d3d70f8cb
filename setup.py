"""Optional compiled fast path: Cython compiles the modules in COMPILED_MODULES.

Everything else about the package lives in pyproject.toml; this file exists
only because extension modules cannot be declared there.

The listed files are ordinary, readable Python (some carry Cython
pure-Python-mode annotations through ``netsentry._cython_shim``). With Cython
and a C compiler present, ``pip install .`` / ``pip install -e .`` builds
each of them into an extension module that sits next to its ``.py`` file and
wins the import (CPython prefers an extension to a source file of the same
name). Without Cython or without a compiler, or when a module fails to
build, the install warns and goes on: the package then runs the pure-Python
path, which is the reference the compiled one must match byte for byte
(tests/test_compiled.py). ``NETSENTRY_PURE=1`` selects the pure path at run
time even when the extensions are built (netsentry/_compiled.py).

``NETSENTRY_NO_COMPILE=1`` at install time skips the build altogether.
"""

from __future__ import annotations

import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

# One list: the per-packet path, in pipeline order. Paths are relative to
# this file. Adding a module here is the whole of "compile it"; it must keep
# working as plain Python (tests run both paths).
COMPILED_MODULES = [
    "src/netsentry/anomaly/baseline.py",
    "src/netsentry/anomaly/dns.py",
    "src/netsentry/anomaly/engine.py",
    "src/netsentry/anomaly/flood.py",
    "src/netsentry/anomaly/flowstate.py",
    "src/netsentry/anomaly/observer.py",
    "src/netsentry/anomaly/scan.py",
    "src/netsentry/anomaly/spike.py",
    "src/netsentry/anomaly/window.py",
    "src/netsentry/applayer/dns.py",
    "src/netsentry/applayer/http.py",
    "src/netsentry/applayer/httpheaders.py",
    "src/netsentry/applayer/sip.py",
    "src/netsentry/applayer/state.py",
    "src/netsentry/applayer/tls.py",
    "src/netsentry/applayer/tx.py",
    "src/netsentry/applayer/x509.py",
    "src/netsentry/capture/pcap.py",
    "src/netsentry/capture_loop.py",
    "src/netsentry/decode/decoder.py",
    "src/netsentry/decode/link.py",
    "src/netsentry/decode/ipv4.py",
    "src/netsentry/decode/ipv6.py",
    "src/netsentry/decode/tcp.py",
    "src/netsentry/decode/udp.py",
    "src/netsentry/decode/icmp.py",
    "src/netsentry/decode/context.py",
    "src/netsentry/decode/packet.py",
    "src/netsentry/detect/alertqueue.py",
    "src/netsentry/detect/engine.py",
    "src/netsentry/detect/grouping.py",
    "src/netsentry/detect/prefilter.py",
    "src/netsentry/detect/stream.py",
    "src/netsentry/detect/txdetect.py",
    "src/netsentry/evemerge.py",
    "src/netsentry/event.py",
    "src/netsentry/flow/flow.py",
    "src/netsentry/flow/table.py",
    "src/netsentry/flow/tcp_state.py",
    "src/netsentry/hoststate.py",
    "src/netsentry/output/eve.py",
    "src/netsentry/output/fields.py",
    "src/netsentry/rules/inspect.py",
    "src/netsentry/share.py",
    "src/netsentry/stream/tcp.py",
]

# Modules that bind a C library: built only where the library's header is found, and
# linked against it. Without it the module is not built and its caller uses its
# fallback (detect/hsdirect.py -> the `hyperscan` package in detect/prefilter.py).
# path -> (header, library to link, what is used without it)
LIBRARY_MODULES = {
    "src/netsentry/detect/hsdirect.py": ("hs/hs.h", "hs",
                                          "the prefilter uses the hyperscan package (install libhyperscan-dev)"),
}


def _warn(msg: str) -> None:
    print(f"netsentry setup.py: WARNING: {msg}; netsentry will run its pure-Python path",
          file=sys.stderr)


class OptionalBuildExt(build_ext):
    """build_ext that never fails the install: a module that does not build
    stays pure Python (the .py file next to it is the same code)."""

    def finalize_options(self) -> None:
        super().finalize_options()
        if not self.parallel:   # pip passes no -j: use the cores (2 here: 90 s -> ~50 s)
            self.parallel = os.cpu_count() or 1

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - no compiler, no headers: install pure
            _warn(f"compiled extensions not built ({type(exc).__name__}: {exc})")

    def build_extension(self, ext) -> None:  # type: ignore[no-untyped-def]
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            _warn(f"{ext.name} not compiled ({type(exc).__name__}: {exc})")


def _header_dirs() -> list[str]:
    """Where the C compiler looks for system headers (enough for Debian and a /usr/local build)."""
    import sysconfig
    dirs = [os.path.join(sys.prefix, "include"), "/usr/local/include", "/usr/include"]
    multiarch = sysconfig.get_config_var("MULTIARCH")
    if multiarch:
        dirs.append(os.path.join("/usr/include", multiarch))
    return dirs


def _library_extensions() -> list:
    """`Extension`s for LIBRARY_MODULES whose header is installed; a warning for each other."""
    from setuptools import Extension
    out = []
    for path, (header, lib, without) in LIBRARY_MODULES.items():
        if not any(os.path.exists(os.path.join(d, header)) for d in _header_dirs()):
            print(f"netsentry setup.py: WARNING: {header} not found: {path} not built; {without}",
                  file=sys.stderr)
            continue
        name = os.path.relpath(path, "src")[:-3].replace(os.sep, ".")
        out.append(Extension(name, [path], libraries=[lib]))
    return out


def _extensions() -> list:
    if os.environ.get("NETSENTRY_NO_COMPILE") == "1":
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        _warn("Cython is not installed")
        return []
    try:
        return cythonize(
            COMPILED_MODULES + _library_extensions(),
            compiler_directives={
                "language_level": "3",
                # keep Python semantics where they are observable, so both
                # paths give the same records: no C-int wraparound, division
                # by zero raises, negative indexes work
                "cdivision": False,
                "wraparound": True,
                "boundscheck": True,
                # tracebacks name the .py line either way
                "binding": True,
            },
            # the generated .c files go to build/, not into src/
            build_dir="build/cython",
            quiet=True,
        )
    except Exception as exc:  # noqa: BLE001 - a Cython error must not stop a pure install
        _warn(f"cythonize failed ({type(exc).__name__}: {exc})")
        return []


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
