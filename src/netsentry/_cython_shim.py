"""Stand-in for the ``cython`` module when Cython is not installed.

The modules in setup.py's ``COMPILED_MODULES`` are plain Python that Cython
compiles in its pure-Python mode; their annotations come from the ``cython``
module. Cython is only a *build* dependency, so at run time a pure install
may not have it. Those modules therefore import it as::

    try:
        import cython
    except ImportError:          # pure install without Cython: the annotations are no-ops
        from netsentry import _cython_shim as cython

When compiled, Cython resolves ``cython.*`` itself and never runs this file.
Only what netsentry's sources use is here; each item behaves as Cython's own
pure-mode shadow module (Cython/Shadow.py) does: types are plain Python
types, decorators return the function unchanged.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

F = TypeVar("F")

compiled = False

# C types used in annotations and cython.declare: Python's own types stand in
int = int            # noqa: A001 - the shim mirrors cython's names
bint = bool
char = int
uchar = int
short = int
ushort = int
uint = int
long = int
ulong = int
longlong = int
ulonglong = int
Py_ssize_t = int
size_t = int
double = float
float = float        # noqa: A001
const_uchar = int


class _TypeExpr:
    """``cython.const[cython.uchar][::1]`` and other subscripted type expressions
    evaluated in a class body (capture/pcap.py): any subscript gives itself."""

    def __getitem__(self, _item: Any) -> _TypeExpr:
        return self


const = _TypeExpr()


def declare(type_: Any = None, value: Any = None, **_kwargs: Any) -> Any:
    """``x = cython.declare(cython.int, 0)``: the value (or None), as in pure Python mode."""
    return value


def cast(type_: Any, value: Any, typecheck: bool = False) -> Any:
    return value


def _passthrough(fn: F) -> F:
    return fn


def _decorator_factory(*_args: Any, **_kwargs: Any) -> Callable[[F], F]:
    return _passthrough


cfunc = _passthrough
ccall = _passthrough
inline = _passthrough
final = _passthrough
cclass = _passthrough
no_gc = _passthrough
locals = _decorator_factory          # noqa: A001
returns = _decorator_factory
exceptval = _decorator_factory
boundscheck = _decorator_factory
wraparound = _decorator_factory
cdivision = _decorator_factory
freelist = _decorator_factory
