"""netsentry: a network intrusion detection and prevention sensor."""

__version__ = "0.1.0"

# Before any submodule is imported: choose compiled extensions or their .py
# sources (NETSENTRY_PURE=1, stale builds); see netsentry/_compiled.py.
from netsentry import _compiled as _compiled  # noqa: E402

_compiled.install()
